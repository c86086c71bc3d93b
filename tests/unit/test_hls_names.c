/* Unit tests for common/hls_names.c: every name the builders make parses
 * back to what built it, and nothing else parses. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hls_names.h"

static hls_name_t parse(const char *s)
{
    hls_name_t h;
    bool ok = hls_name_parse(s, strlen(s), &h);
    assert_int_equal(ok, h.kind != HLS_NAME_NONE);
    return h;
}

static void test_builders_round_trip(void **state)
{
    (void)state;
    char b[HLS_NAME_FILE_MAX];
    const int64_t msns[] = {0, 1, 9, 10, 12345, 999999999999999};
    for (size_t i = 0; i < sizeof(msns) / sizeof(msns[0]); i++) {
        assert_true(hls_name_segment(b, sizeof(b), msns[i]) > 0);
        hls_name_t h = parse(b);
        assert_int_equal(h.kind, HLS_NAME_KIND_SEGMENT);
        assert_int_equal(h.msn, msns[i]);
        assert_int_equal(h.part, -1);
        assert_true(hls_name_part(b, sizeof(b), msns[i], 7) > 0);
        h = parse(b);
        assert_int_equal(h.kind, HLS_NAME_KIND_PART);
        assert_int_equal(h.msn, msns[i]);
        assert_int_equal(h.part, 7);
        assert_true(hls_name_init(b, sizeof(b), msns[i]) > 0);
        h = parse(b);
        assert_int_equal(h.kind, HLS_NAME_KIND_INIT);
        assert_int_equal(h.msn, msns[i]);
    }
    assert_int_equal(hls_name_segment(b, sizeof(b), 42), 6);
    assert_string_equal(b, "42.m4s");
    assert_int_equal(hls_name_part(b, sizeof(b), 42, 3), 8);
    assert_string_equal(b, "42.3.m4s");
    assert_int_equal(hls_name_init(b, sizeof(b), -1), 8);
    assert_string_equal(b, "init.mp4");
    assert_int_equal(parse(b).msn, -1);
    assert_int_equal(hls_name_init(b, sizeof(b), 5), 10);
    assert_string_equal(b, "init-5.mp4");
    assert_int_equal(hls_name_join(b, sizeof(b), "720p", HLS_NAME_PLAYLIST), 15);
    assert_string_equal(b, "720p/index.m3u8");
}

static void test_builders_refuse(void **state)
{
    (void)state;
    char b[6];
    assert_int_equal(hls_name_segment(b, sizeof(b), 123), -ENAMETOOLONG); /* "123.m4s" */
    assert_int_equal(hls_name_segment(b, sizeof(b), 1), 5);
    assert_int_equal(hls_name_segment(b, sizeof(b), -1), -EINVAL);
    assert_int_equal(hls_name_part(b, sizeof(b), 1, -2), -EINVAL);
    assert_int_equal(hls_name_join(b, sizeof(b), "720p", "x"), -ENAMETOOLONG);
}

static void test_playlists(void **state)
{
    (void)state;
    assert_int_equal(parse("master.m3u8").kind, HLS_NAME_KIND_MASTER);
    assert_int_equal(parse("index.m3u8").kind, HLS_NAME_KIND_PLAYLIST);
    assert_int_equal(parse("index-skip.m3u8").kind, HLS_NAME_KIND_PLAYLIST);
    assert_int_equal(parse("index-skip2.m3u8").kind, HLS_NAME_KIND_PLAYLIST);
}

static void test_rejects(void **state)
{
    (void)state;
    const char *bad[] = {"",          "m4s",         ".m4s",         "01.m4s",
                         "1.01.m4s",  "1..m4s",      "1.m4s.m4s",    "-1.m4s",
                         "1.M4S",     "a.m4s",       "1 .m4s",       "init-.mp4",
                         "init-01.mp4", "init-1.m4s", "init.mp4x",   "Index.m3u8",
                         "1234567890123456.m4s",     "1.1234567890123456.m4s",
                         "thumbnail.jpg", "recording.mp4", "next-msn", "720p/1.m4s"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        hls_name_t h;
        assert_false(hls_name_parse(bad[i], strlen(bad[i]), &h));
        assert_int_equal(h.kind, HLS_NAME_NONE);
    }
    /* Exactly the length given: a name inside a longer buffer. */
    hls_name_t h;
    assert_true(hls_name_parse("12.m4s?x", 6, &h));
    assert_int_equal(h.msn, 12);
    assert_true(hls_name_parse("123456789012345.m4s", 19, &h)); /* 15 digits: the most */
}

static void test_immutable(void **state)
{
    (void)state;
    assert_true(hls_name_immutable("720p/12.m4s"));
    assert_true(hls_name_immutable("720p/12.3.m4s"));
    assert_true(hls_name_immutable("audio/init.mp4"));
    assert_true(hls_name_immutable("audio/init-40.mp4"));
    assert_true(hls_name_immutable("12.m4s"));
    assert_false(hls_name_immutable("720p/index.m3u8"));
    assert_false(hls_name_immutable("720p/index-skip2.m3u8"));
    assert_false(hls_name_immutable("master.m3u8"));
    assert_false(hls_name_immutable("thumbnail.jpg"));
    assert_false(hls_name_immutable("next-msn"));
    assert_false(hls_name_immutable("720p/"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builders_round_trip),
        cmocka_unit_test(test_builders_refuse),
        cmocka_unit_test(test_playlists),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_immutable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
