/* Unit tests for origin/http_path.c: the public path grammar. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http_path_internal.h"

static int parse(const char *path, http_route_t *r)
{
    return http_path_parse(path, strlen(path), r);
}

static void test_valid_paths(void **state)
{
    (void)state;
    http_route_t r;
    assert_int_equal(parse("/healthz", &r), 0);
    assert_int_equal(r.kind, HTTP_ROUTE_HEALTHZ);
    assert_int_equal(parse("/readyz", &r), 0);
    assert_int_equal(r.kind, HTTP_ROUTE_READYZ);

    assert_int_equal(parse("/hls/demo/master.m3u8", &r), 0);
    assert_int_equal(r.kind, HTTP_ROUTE_HLS);
    assert_int_equal(r.object_type, HTTP_OBJECT_PLAYLIST);
    assert_string_equal(r.stream_id, "demo");
    assert_string_equal(r.object, "master.m3u8");

    assert_int_equal(parse("/hls/Shop_1-a/720p/index.m3u8", &r), 0);
    assert_int_equal(r.object_type, HTTP_OBJECT_PLAYLIST);
    assert_string_equal(r.stream_id, "Shop_1-a");
    assert_string_equal(r.object, "720p/index.m3u8");

    assert_int_equal(parse("/hls/demo/audio/init.mp4", &r), 0);
    assert_int_equal(r.object_type, HTTP_OBJECT_INIT);
    assert_string_equal(http_path_content_type(r.object_type), "video/mp4");

    assert_int_equal(parse("/hls/demo/720p/init-1795329.mp4", &r), 0);
    assert_int_equal(r.object_type, HTTP_OBJECT_INIT);
    assert_string_equal(r.object, "720p/init-1795329.mp4");

    assert_int_equal(parse("/hls/demo/720p/0.m4s", &r), 0);
    assert_int_equal(r.object_type, HTTP_OBJECT_SEGMENT);
    assert_string_equal(r.object, "720p/0.m4s");
    assert_string_equal(http_path_content_type(r.object_type), "video/iso.segment");

    assert_int_equal(parse("/hls/demo/720p/123456789.2.m4s", &r), 0);
    assert_int_equal(parse("/hls/demo/720p/7181278600.m4s", &r), 0); /* clock-based numbers */
    assert_int_equal(parse("/hls/demo/720p/123456789012345.12.m4s", &r), 0);
    assert_int_equal(r.object_type, HTTP_OBJECT_PART);
    assert_string_equal(http_path_content_type(HTTP_OBJECT_PLAYLIST),
                        "application/vnd.apple.mpegurl");

    assert_int_equal(parse("/hls/Shop_1-a/thumbnail.jpg", &r), 0);
    assert_int_equal(r.kind, HTTP_ROUTE_HLS);
    assert_int_equal(r.object_type, HTTP_OBJECT_THUMBNAIL);
    assert_string_equal(r.stream_id, "Shop_1-a");
    assert_string_equal(r.object, "thumbnail.jpg");
    assert_string_equal(http_path_content_type(r.object_type), "image/jpeg");

    assert_int_equal(parse("/player/Shop_1-a", &r), 0);
    assert_int_equal(r.kind, HTTP_ROUTE_PLAYER);
    assert_string_equal(r.stream_id, "Shop_1-a");
    assert_int_equal(parse("/assets/hls.min.js", &r), 0);
    assert_int_equal(r.kind, HTTP_ROUTE_ASSET);
    assert_string_equal(r.object, "hls.min.js");

    /* Audience: the beacon endpoint and the public count. */
    assert_int_equal(parse("/beacon/Shop_1-a", &r), 0);
    assert_int_equal(r.kind, HTTP_ROUTE_BEACON);
    assert_string_equal(r.stream_id, "Shop_1-a");
    assert_int_equal(parse("/hls/Shop_1-a/viewers.json", &r), 0);
    assert_int_equal(r.kind, HTTP_ROUTE_HLS);
    assert_int_equal(r.object_type, HTTP_OBJECT_VIEWERS);
    assert_string_equal(r.stream_id, "Shop_1-a");
    assert_string_equal(http_path_content_type(r.object_type), "application/json");
}

static void test_rejected_paths(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "/", "/hls", "/hls/", "/hls/demo", "/hls/demo/", "/hls/demo/index.m3u8",
        "/hls/demo/720p/", "/hls/demo/720p/01.m4s", "/hls/demo/720p/1.m4", "/hls/demo/720p/-1.m4s",
        "/hls/demo/720p/1234567890123456.m4s", "/hls/demo/720p/1..m4s", "/hls/demo/720p/1.2.3.m4s",
        "/hls/demo/../720p/1.m4s", "/hls/../etc/passwd", "/hls/de mo/master.m3u8",
        "/hls/demo/720P/1.m4s", "/hls/demo/720p/sub/1.m4s", "/hls/demo/master.m3u8/",
        "/hls/demo/abcdefghijklmnopq/init.mp4", "/HLS/demo/master.m3u8", "/healthz/",
        "/hls/demo/720p/index.m3u8x", "/hls//master.m3u8", "/hls/demo/720p/init-.mp4",
        "/hls/demo/720p/init-01.mp4", "/hls/demo/720p/init-1.m4s", "/hls/demo/720p/init-1x.mp4",
        "/hls/demo/720p/init-1234567890123456.mp4",
        "/hls/demo/720p/thumbnail.jpg", "/hls/demo/thumbnail.jpeg", "/hls/demo/Thumbnail.jpg",
        "/hls/demo/thumbnail.jpg/",
        "/player/", "/player", "/player/de mo", "/player/demo/", "/player/demo/x",
        "/player/../dashboard", "/assets/", "/assets/.hidden", "/assets/../etc/passwd",
        "/assets/a/b.js", "/assets/a%2fb", "/assets/a b.js",
        "/beacon/", "/beacon", "/beacon/demo/", "/beacon/de mo", "/beacon/../hls",
        "/hls/demo/720p/viewers.json", "/hls/demo/viewers.json/", "/hls/demo/Viewers.json",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        http_route_t r;
        if (parse(bad[i], &r) != -ENOENT)
            fail_msg("accepted '%s'", bad[i]);
        assert_int_equal(r.kind, HTTP_ROUTE_NONE);
    }
}

static void test_vod_paths(void **state)
{
    (void)state;
    http_route_t r;
    assert_int_equal(parse("/vod/shop1-20261122T101500Z/master.m3u8", &r), 0);
    assert_int_equal(r.kind, HTTP_ROUTE_VOD);
    assert_int_equal(r.object_type, HTTP_OBJECT_PLAYLIST);
    assert_string_equal(r.recording_id, "shop1-20261122T101500Z");
    assert_string_equal(r.stream_id, "");
    assert_string_equal(r.object, "master.m3u8");

    assert_int_equal(parse("/vod/s-20261122T101500Z-2/720p/index.m3u8", &r), 0);
    assert_int_equal(r.object_type, HTTP_OBJECT_PLAYLIST);
    assert_string_equal(r.recording_id, "s-20261122T101500Z-2");
    assert_string_equal(r.object, "720p/index.m3u8");
    assert_int_equal(parse("/vod/r/audio/init.mp4", &r), 0);
    assert_int_equal(r.object_type, HTTP_OBJECT_INIT);
    assert_int_equal(parse("/vod/r/720p/init-12.mp4", &r), 0);
    assert_int_equal(r.object_type, HTTP_OBJECT_INIT);
    assert_int_equal(parse("/vod/r/720p/0.m4s", &r), 0);
    assert_int_equal(r.object_type, HTTP_OBJECT_SEGMENT);
    assert_string_equal(r.object, "720p/0.m4s");
    assert_int_equal(parse("/vod/r/poster.jpg", &r), 0);
    assert_int_equal(r.object_type, HTTP_OBJECT_POSTER);
    assert_string_equal(http_path_content_type(r.object_type), "image/jpeg");
    assert_int_equal(parse("/vod/r/recording.mp4", &r), 0);
    assert_int_equal(r.object_type, HTTP_OBJECT_MP4);
    assert_string_equal(http_path_content_type(r.object_type), "video/mp4");

    /* A recording id has a stream id's size (record_layout.h: the recorder
     * shortens the stream id part to keep it there): 63 characters fit, 64
     * do not. */
    char p[200] = "/vod/";
    memset(p + 5, 'x', 63);
    strcpy(p + 68, "/master.m3u8");
    assert_int_equal(parse(p, &r), 0);
    assert_int_equal(strlen(r.recording_id), 63);
    memset(p + 5, 'x', 64);
    strcpy(p + 69, "/master.m3u8");
    assert_int_equal(parse(p, &r), -ENOENT);

    static const char *const bad[] = {
        "/vod", "/vod/", "/vod/r", "/vod/r/", "/vod/r/recording.json", "/vod/r/720p/journal",
        "/vod/r/720p/1.2.m4s", "/vod/r/../s/master.m3u8", "/vod/../recordings/master.m3u8",
        "/vod/./master.m3u8", "/vod/r/./master.m3u8", "/vod/.r/master.m3u8",
        "/vod/r.x/master.m3u8", "/vod/r/720p/../master.m3u8", "/vod/r/720p/sub/1.m4s",
        "/vod/r/poster.jpg/", "/vod/r/720p/poster.jpg", "/vod/r/720p/recording.mp4",
        "/vod/r/master.m3u8.tmp", "/vod/r//master.m3u8", "/vod//master.m3u8",
        "/vod/r/720P/index.m3u8", "/vod/r/index.m3u8", "/vod/r/720p/01.m4s",
        "/vod/r%2f..%2fx/master.m3u8", "/vod/r/recording.mp4x", "/VOD/r/master.m3u8",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &r) != -ENOENT)
            fail_msg("accepted '%s'", bad[i]);
        assert_int_equal(r.kind, HTTP_ROUTE_NONE);
        assert_string_equal(r.recording_id, "");
    }
}

static void test_limits(void **state)
{
    (void)state;
    char longp[HTTP_PATH_MAX + 10];
    memset(longp, 'a', sizeof(longp));
    memcpy(longp, "/hls/", 5);
    http_route_t r;
    assert_int_equal(http_path_parse(longp, sizeof(longp), &r), -EMSGSIZE);
    /* A 64-character id is one too many. */
    char id64[128] = "/hls/";
    memset(id64 + 5, 'x', 64);
    strcpy(id64 + 69, "/master.m3u8");
    assert_int_equal(parse(id64, &r), -ENOENT);
    id64[68] = '/';
    memmove(id64 + 68, "/master.m3u8", 13);
    assert_int_equal(parse(id64, &r), 0);
    /* Embedded NUL: the length, not the terminator, bounds the parse. */
    assert_int_equal(http_path_parse("/healthz\0x", 10, &r), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_paths),
        cmocka_unit_test(test_rejected_paths),
        cmocka_unit_test(test_vod_paths),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
