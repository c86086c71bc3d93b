/* Unit tests for common/buf.h: growth, NUL termination, printf of any
 * length, the sticky oom flag and the `max` bound, take. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"

static void test_append_grows_and_terminates(void **state)
{
    (void)state;
    buf_t b = {0};
    for (int i = 0; i < 1000; i++)
        buf_u8(&b, (uint8_t)('a' + i % 26));
    assert_false(b.oom);
    assert_int_equal(b.len, 1000);
    assert_true(b.cap > 1000);
    assert_int_equal(b.data[1000], '\0');
    assert_int_equal(b.bytes[27], 'b');
    buf_puts(&b, "xyz");
    assert_int_equal(b.len, 1003);
    assert_string_equal(b.data + 1000, "xyz");
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    buf_deinit(&b);
    assert_null(b.data);
}

static void test_printf_any_length(void **state)
{
    (void)state;
    buf_t b = {0};
    buf_printf(&b, "%s=%d;", "n", 42);
    char big[5000];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    buf_printf(&b, "[%s]", big); /* longer than any first allocation */
    buf_printf(&b, "%03d", 7);
    assert_false(b.oom);
    assert_int_equal(b.len, 5 + 1 + 4999 + 1 + 3);
    assert_memory_equal(b.data, "n=42;[", 6);
    assert_int_equal(b.data[6 + 4998], 'q');
    assert_string_equal(b.data + 6 + 4999, "]007");
    size_t len = 0;
    char *s = buf_take(&b, &len);
    assert_non_null(s);
    assert_int_equal(len, strlen(s));
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(s);
}

static void test_max_sets_sticky_oom(void **state)
{
    (void)state;
    buf_t b = {.max = 10};
    buf_puts(&b, "0123456789"); /* exactly max */
    assert_false(b.oom);
    buf_u8(&b, 'x');
    assert_true(b.oom);
    assert_int_equal(b.len, 10);
    buf_printf(&b, "%d", 1); /* sticky: later appends do nothing */
    assert_int_equal(b.len, 10);
    size_t len = 99;
    assert_null(buf_take(&b, &len));
    assert_int_equal(len, 0);
    assert_null(b.data); /* take freed it */
    assert_int_equal(b.max, 10); /* and kept the bound */
    buf_printf(&b, "%s", "0123456789ab"); /* printf past max also fails */
    assert_true(b.oom);
    buf_deinit(&b);
}

static void test_take_empty_is_a_string(void **state)
{
    (void)state;
    buf_t b = {0};
    char *s = buf_take(&b, NULL);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_grows_and_terminates),
        cmocka_unit_test(test_printf_any_length),
        cmocka_unit_test(test_max_sets_sticky_oom),
        cmocka_unit_test(test_take_empty_is_a_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
