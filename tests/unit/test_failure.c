/*
 * Tests for transcode/failure.c: the per-thread note a failing stage leaves
 * for its stream worker's log line.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "failure_internal.h"

static void test_clauses_in_order(void **state)
{
    (void)state;
    failure_reset();
    assert_string_equal(failure_text(), "");
    failure_note("muxer of %s: %s", "480p", "Invalid argument");
    failure_note("%s, segment %d part %d", "480p", 17, 3);
    assert_string_equal(failure_text(), "muxer of 480p: Invalid argument; 480p, segment 17 part 3");
    failure_reset();
    assert_string_equal(failure_text(), "");
}

static void test_cut_at_the_limit(void **state)
{
    (void)state;
    char big[FAILURE_TEXT_MAX * 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    failure_reset();
    failure_note("%s", big);
    assert_int_equal(strlen(failure_text()), FAILURE_TEXT_MAX - 1);
    failure_note("more"); /* full: ignored, still terminated */
    assert_int_equal(strlen(failure_text()), FAILURE_TEXT_MAX - 1);
    failure_reset();
    failure_note("%.*s", FAILURE_TEXT_MAX - 3, big);
    failure_note("tail");
    assert_int_equal(strlen(failure_text()), FAILURE_TEXT_MAX - 1);
    assert_int_equal(strncmp(failure_text() + FAILURE_TEXT_MAX - 3, "; ", 2), 0);
    failure_reset();
}

static void *other_thread(void *arg)
{
    (void)arg;
    failure_note("other thread");
    return NULL;
}

static void test_per_thread(void **state)
{
    (void)state;
    failure_reset();
    failure_note("this thread");
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, other_thread, NULL), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_string_equal(failure_text(), "this thread");
    failure_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clauses_in_order),
        cmocka_unit_test(test_cut_at_the_limit),
        cmocka_unit_test(test_per_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
