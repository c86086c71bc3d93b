/* Unit tests for output/output.c's pure parts (output_internal.h): an
 * output's clock (continuity across a publisher's return, monotonic
 * tracks), the retry schedule, the bit-rate window and the status text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "output_internal.h"

static int64_t map(output_clock_t *c, int track, int64_t dts, bool *rebased)
{
    int64_t d, p;
    bool r = output_clock_map(c, track, dts, dts, &d, &p);
    if (rebased)
        *rebased = r;
    assert_int_equal(p, d);
    return d;
}

static void test_clock_starts_at_zero_and_keeps_gaps(void **state)
{
    (void)state;
    output_clock_t c;
    output_clock_reset(&c);
    assert_int_equal(map(&c, 0, 5000, NULL), 0);
    assert_int_equal(map(&c, 1, 5010, NULL), 10);
    assert_int_equal(map(&c, 0, 5066, NULL), 66);
    /* A pause of a few seconds is kept as it is (not a jump). */
    assert_int_equal(map(&c, 0, 9066, NULL), 4066);
    /* pts keeps its composition offset. */
    int64_t d, p;
    output_clock_map(&c, 0, 9133, 9233, &d, &p);
    assert_int_equal(d, 4133);
    assert_int_equal(p, 4233);
    /* A pts before its dts is sent at the dts. */
    output_clock_map(&c, 0, 9200, 9100, &d, &p);
    assert_int_equal(p, d);
}

static void test_clock_continues_after_a_publishers_return(void **state)
{
    (void)state;
    output_clock_t c;
    output_clock_reset(&c);
    bool r;
    for (int64_t t = 0; t <= 60000; t += 40) {
        map(&c, 0, t, &r);
        assert_false(r);
        map(&c, 1, t + 5, &r);
        assert_false(r);
    }
    /* The publisher came back; its clock starts again near 0. */
    int64_t v = map(&c, 0, 100, &r);
    assert_true(r);
    assert_int_equal(v, 60005 + OUTPUT_REBASE_GAP_MS); /* after the newest of both tracks */
    /* The audio of the new publisher shares the new base: no second jump. */
    int64_t a = map(&c, 1, 110, &r);
    assert_false(r);
    assert_int_equal(a, v + 10);
    assert_int_equal(map(&c, 0, 140, &r), v + 40);
    assert_false(r);
    /* A publisher whose clock jumps far ahead continues right after too. */
    v = map(&c, 0, 1000000, &r);
    assert_true(r);
    assert_int_equal(v, a + 30 + OUTPUT_REBASE_GAP_MS);
}

static void test_clock_is_strictly_monotonic_per_track(void **state)
{
    (void)state;
    output_clock_t c;
    output_clock_reset(&c);
    assert_int_equal(map(&c, 0, 1000, NULL), 0);
    assert_int_equal(map(&c, 0, 1000, NULL), 1);  /* repeated */
    assert_int_equal(map(&c, 0, 990, NULL), 2);   /* slightly back: not a jump */
    assert_int_equal(map(&c, 0, 1040, NULL), 40);
    /* The other track is independent: it may be behind the video. */
    assert_int_equal(map(&c, 1, 1010, NULL), 10);
    assert_int_equal(map(&c, 1, 1010, NULL), 11);
}

static void test_backoff_schedule(void **state)
{
    (void)state;
    assert_int_equal(output_backoff_ms(0), 0);
    assert_int_equal(output_backoff_ms(1), 1000);
    assert_int_equal(output_backoff_ms(2), 2000);
    assert_int_equal(output_backoff_ms(3), 4000);
    assert_int_equal(output_backoff_ms(4), 8000);
    assert_int_equal(output_backoff_ms(5), 10000);
    assert_int_equal(output_backoff_ms(6), 10000);
    assert_int_equal(output_backoff_ms(1000000), 10000);
}

static void test_codec_fits(void **state)
{
    (void)state;
    char why[256] = "";
    assert_true(output_codec_fits(OUTPUT_SCHEME_RTMP, MEDIA_CODEC_H264, why, sizeof(why)));
    assert_true(output_codec_fits(OUTPUT_SCHEME_SRT, MEDIA_CODEC_H264, why, sizeof(why)));
    assert_true(output_codec_fits(OUTPUT_SCHEME_SRT, MEDIA_CODEC_HEVC, why, sizeof(why)));
    assert_false(output_codec_fits(OUTPUT_SCHEME_RTMPS, MEDIA_CODEC_HEVC, why, sizeof(why)));
    assert_non_null(strstr(why, "HEVC video cannot be sent over RTMP"));
    assert_false(output_codec_fits(OUTPUT_SCHEME_RTMP, MEDIA_CODEC_AV1, why, sizeof(why)));
    assert_non_null(strstr(why, "AV1"));
    assert_false(output_codec_fits(OUTPUT_SCHEME_SRT, MEDIA_CODEC_AV1, why, sizeof(why)));
    assert_non_null(strstr(why, "MPEG-TS"));
}

static void test_rate_window(void **state)
{
    (void)state;
    output_rate_t r;
    output_rate_init(&r);
    assert_int_equal(output_rate_kbps(&r, 100000), 0);
    /* 250 000 bytes a second for 10 s: 2000 kb/s. */
    for (int64_t ms = 100000; ms < 110000; ms += 100)
        output_rate_add(&r, ms, 25000);
    assert_int_equal(output_rate_kbps(&r, 110000), 2000);
    /* The second still filling does not count; silence drains the window. */
    output_rate_add(&r, 110500, 10000000);
    assert_int_equal(output_rate_kbps(&r, 110900), 2000);
    /* At 113 s: the seconds 108 to 112. */
    assert_int_equal(output_rate_kbps(&r, 113000),
                     (int)((250000ull * 2 + 10000000) * 8 / 1000 / 5));
    assert_int_equal(output_rate_kbps(&r, 120000), 0);
}

static void test_status_text(void **state)
{
    (void)state;
    output_status_t s[2];
    memset(s, 0, sizeof(s));
    strcpy(s[0].id, "o0123456789abcdef");
    strcpy(s[0].masked_url, "rtmp://a.example/live/****");
    s[0].state = OUTPUT_STATE_LIVE;
    s[0].bytes = 123;
    s[0].bitrate_kbps = 2400;
    s[0].connected_since_ms = 1796662087000;
    strcpy(s[1].id, "offffffffffffffff");
    strcpy(s[1].masked_url, "srt://b.example:9000?streamid=****");
    s[1].state = OUTPUT_STATE_RETRYING;
    s[1].retries = 3;
    s[1].skips = 2;
    s[1].dropped_packets = 40;
    strcpy(s[1].last_error, "cannot connect to srt://b.example:9000?streamid=****: refused");
    char *text = output_status_format(s, 2);
    assert_non_null(text);
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    assert_non_null(v);
    json_t *a = json_object_get(v, "o0123456789abcdef");
    assert_string_equal(json_string_value(json_object_get(a, "state")), "live");
    assert_int_equal(json_integer_value(json_object_get(a, "bytes")), 123);
    assert_int_equal(json_integer_value(json_object_get(a, "bitrate_kbps")), 2400);
    assert_string_equal(json_string_value(json_object_get(a, "connected_since")),
                        "2026-12-07T16:48:07Z");
    assert_true(json_is_null(json_object_get(a, "last_error")));
    json_t *b = json_object_get(v, "offffffffffffffff");
    assert_string_equal(json_string_value(json_object_get(b, "state")), "retrying");
    assert_true(json_is_null(json_object_get(b, "connected_since")));
    assert_int_equal(json_integer_value(json_object_get(b, "retries")), 3);
    assert_int_equal(json_integer_value(json_object_get(b, "skips")), 2);
    assert_int_equal(json_integer_value(json_object_get(b, "dropped_packets")), 40);
    assert_string_equal(json_string_value(json_object_get(b, "url")),
                        "srt://b.example:9000?streamid=****");
    assert_non_null(strstr(json_string_value(json_object_get(b, "last_error")), "refused"));
    json_decref(v);
    free(text);
    text = output_status_format(NULL, 0);
    assert_string_equal(text, "{}");
    free(text);
    assert_string_equal(output_state_name(OUTPUT_STATE_FAILED), "failed");
    assert_string_equal(output_state_name(OUTPUT_STATE_CONNECTING), "connecting");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clock_starts_at_zero_and_keeps_gaps),
        cmocka_unit_test(test_clock_continues_after_a_publishers_return),
        cmocka_unit_test(test_clock_is_strictly_monotonic_per_track),
        cmocka_unit_test(test_backoff_schedule),
        cmocka_unit_test(test_codec_fits),
        cmocka_unit_test(test_rate_window),
        cmocka_unit_test(test_status_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
