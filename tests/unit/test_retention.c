/*
 * Tests for record/retention.c: retention's choice (record_retention_select,
 * pure) by age and by size, never a recording still being written.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "retention.h"

static void test_retention_select(void **state)
{
    (void)state;
    const int64_t now = 1000000;
    record_entry_t e[] = {
        {.id = "live-old", .recording = true, .finished_s = now - 9000, .bytes = 500},
        {.id = "a", .finished_s = now - 5000, .bytes = 100},
        {.id = "b", .finished_s = now - 3000, .bytes = 300},
        {.id = "c", .finished_s = now - 2000, .bytes = 200},
        {.id = "d", .finished_s = now - 100, .bytes = 50},
    };
    bool del[5];
    /* Nothing configured: nothing deleted. */
    assert_int_equal(record_retention_select(e, 5, now, 0, 0, del), 0);
    for (int i = 0; i < 5; i++)
        assert_false(del[i]);
    /* Age: older than 2500 s, never the one still recording. */
    assert_int_equal(record_retention_select(e, 5, now, 2500, 0, del), 2);
    assert_false(del[0]);
    assert_true(del[1] && del[2]);
    assert_false(del[3] || del[4]);
    /* Bytes: total 1150; down to 800 takes the oldest finished ones, not
     * the largest (b) first nor the recording one. */
    assert_int_equal(record_retention_select(e, 5, now, 0, 800, del), 2);
    assert_false(del[0]);
    assert_true(del[1] && del[2]);
    assert_false(del[3] || del[4]);
    assert_int_equal(record_retention_select(e, 5, now, 0, 1050, del), 1);
    assert_true(del[1]);
    assert_false(del[2] || del[3] || del[4]);
    /* Not reachable without the recording one: every finished one goes. */
    assert_int_equal(record_retention_select(e, 5, now, 0, 100, del), 4);
    assert_false(del[0]);
    /* Both: age first, then bytes among the rest. */
    assert_int_equal(record_retention_select(e, 5, now, 4000, 800, del), 2);
    assert_true(del[1] && del[2]);
    assert_int_equal(record_retention_select(e, 5, now, 4000, 600, del), 3);
    assert_true(del[1] && del[2] && del[3]);
    assert_false(del[4]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retention_select),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
