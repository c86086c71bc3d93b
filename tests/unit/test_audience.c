/* common/audience.c: session states, names and the store record. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "audience.h"

static void test_states_round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < AUDIENCE_STATES; i++) {
        const char *name = audience_state_name((audience_state_t)i);
        assert_non_null(name);
        audience_state_t back;
        assert_int_equal(audience_state_parse(name, strlen(name), &back), 0);
        assert_int_equal(back, i);
    }
    audience_state_t s;
    assert_int_equal(audience_state_parse("play", 4, &s), -EINVAL);
    assert_int_equal(audience_state_parse("playing", 6, &s), -EINVAL); /* "playin" */
    assert_int_equal(audience_state_parse("PLAYING", 7, &s), -EINVAL);
    assert_null(audience_state_name(AUDIENCE_STATES));
    assert_true(audience_state_watching(AUDIENCE_STALLED));
    assert_true(audience_state_watching(AUDIENCE_PAUSED));
    assert_false(audience_state_watching(AUDIENCE_ENDED));
    assert_false(audience_state_watching(AUDIENCE_ERROR));
}

static void test_names(void **state)
{
    (void)state;
    assert_true(audience_session_id_valid("abcdefghijklmnop", 16));
    assert_false(audience_session_id_valid("abcdefghijklmno", 15));
    char id[66];
    memset(id, 'A', sizeof(id));
    assert_true(audience_session_id_valid(id, 64));
    assert_false(audience_session_id_valid(id, 65));
    assert_false(audience_session_id_valid("abcdefghijklmno.", 16));
    assert_false(audience_session_id_valid("abcdefghijklmno ", 16));
    assert_true(audience_rendition_valid("720p", 4));
    assert_true(audience_rendition_valid("audio", 5));
    assert_false(audience_rendition_valid("720P", 4)); /* one spelling */
    assert_false(audience_rendition_valid("", 0));
    assert_false(audience_rendition_valid("a/b", 3));
    assert_false(audience_rendition_valid("abcdefghijklmnop", 16));
    assert_false(audience_rendition_valid("-", 1)); /* the record's "unknown" */
    assert_true(audience_rendition_valid("-a", 2));
}

static void test_record_round_trip(void **state)
{
    (void)state;
    audience_session_t s;
    audience_session_init(&s);
    char buf[AUDIENCE_RECORD_MAX];
    int n = audience_record_format(&s, buf, sizeof(buf));
    assert_int_equal(n, (int)strlen(buf));
    assert_string_equal(buf, "1 starting - -1 -1 0 0 0 0 0");
    /* Only an ended session's record begins with the final prefix. */
    const char *fin = audience_record_final_prefix();
    assert_int_not_equal(strncmp(buf, fin, strlen(fin)), 0);
    s.state = AUDIENCE_ENDED;
    assert_true(audience_record_format(&s, buf, sizeof(buf)) > 0);
    assert_int_equal(strncmp(buf, fin, strlen(fin)), 0);
    s.state = AUDIENCE_STARTING;

    s.state = AUDIENCE_STALLED;
    strcpy(s.rendition, "480p");
    s.latency_ms = 2345;
    s.startup_ms = 812;
    s.stalls = 3;
    s.stall_ms = 1500;
    s.watch_ms = 60000;
    s.dropped_frames = 7;
    s.errors = 1;
    assert_true(audience_record_format(&s, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "1 stalled 480p 2345 812 3 1500 60000 7 1");
    audience_session_t back;
    assert_int_equal(audience_record_parse(buf, &back), 0);
    assert_memory_equal(&back, &s, sizeof(s));

    /* The largest record fits the documented buffer. */
    strcpy(s.rendition, "abcdefghijklmno");
    s.latency_ms = AUDIENCE_LATENCY_MS_MAX;
    s.startup_ms = AUDIENCE_STARTUP_MS_MAX;
    s.stalls = s.errors = AUDIENCE_COUNT_MAX;
    s.stall_ms = s.watch_ms = AUDIENCE_DURATION_MS_MAX;
    s.dropped_frames = AUDIENCE_DROPPED_MAX;
    assert_true(audience_record_format(&s, buf, sizeof(buf)) > 0);
    assert_int_equal(audience_record_format(&s, buf, 10), -ENAMETOOLONG);
}

static void test_record_refuses_out_of_range(void **state)
{
    (void)state;
    audience_session_t s;
    char buf[AUDIENCE_RECORD_MAX];
    audience_session_init(&s);
    s.watch_ms = -1;
    assert_int_equal(audience_record_format(&s, buf, sizeof(buf)), -EINVAL);
    audience_session_init(&s);
    s.latency_ms = AUDIENCE_LATENCY_MS_MAX + 1;
    assert_int_equal(audience_record_format(&s, buf, sizeof(buf)), -EINVAL);
    audience_session_init(&s);
    strcpy(s.rendition, "720P");
    assert_int_equal(audience_record_format(&s, buf, sizeof(buf)), -EINVAL);
    audience_session_init(&s);
    s.state = AUDIENCE_STATES;
    assert_int_equal(audience_record_format(&s, buf, sizeof(buf)), -EINVAL);
}

static void test_parse_accepts_only_the_written_form(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "1",
        "2 playing 720p 1 1 0 0 0 0 0",        /* another version */
        "1 playing 720p 1 1 0 0 0 0",          /* a field short */
        "1 playing 720p 1 1 0 0 0 0 0 0",      /* one too many */
        "1 playing 720p 1 1 0 0 0 0 0 ",       /* trailing space */
        "1  playing 720p 1 1 0 0 0 0 0",       /* double space */
        "1 playing 720p 01 1 0 0 0 0 0",       /* leading zero */
        "1 playing 720p -2 1 0 0 0 0 0",       /* only -1 is negative */
        "1 playing 720p 1 1 -1 0 0 0 0",       /* stalls has no "unknown" */
        "1 playing 720p 1 1 0 0 86400001 0 0", /* over the bound */
        "1 playing 720p 1 1 0 0 99999999999999 0 0",
        "1 Playing 720p 1 1 0 0 0 0 0",
        "1 playing 720p/x 1 1 0 0 0 0 0",
        "1 playing 720p 1 1 0 0 0 0 0\n",
        "1 playing 720p 1 1 0 0 0 0 x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        audience_session_t s;
        if (audience_record_parse(bad[i], &s) != -EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    audience_session_t s;
    assert_int_equal(audience_record_parse("1 paused - -1 -1 0 0 0 0 0", &s), 0);
    assert_int_equal(s.state, AUDIENCE_PAUSED);
    assert_string_equal(s.rendition, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_states_round_trip),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_record_round_trip),
        cmocka_unit_test(test_record_refuses_out_of_range),
        cmocka_unit_test(test_parse_accepts_only_the_written_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
