/* Unit tests for origin/http_cache.c: the Cache-Control policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http_cache_internal.h"

static void test_cache_control(void **state)
{
    (void)state;
    origin_params_t p = {.segment_duration = 2, .part_duration = 0.333};
    assert_string_equal(http_cache_control(HTTP_OBJECT_INIT, false, &p),
                        "public, max-age=31536000, immutable");
    assert_string_equal(http_cache_control(HTTP_OBJECT_SEGMENT, false, &p),
                        "public, max-age=31536000, immutable");
    assert_string_equal(http_cache_control(HTTP_OBJECT_PART, true, &p),
                        "public, max-age=31536000, immutable");
    /* init.mp4 may change between broadcasts; init-N.mp4 never does */
    http_route_t r = {.object_type = HTTP_OBJECT_INIT};
    strcpy(r.object, "720p/init.mp4");
    assert_string_equal(http_cache_control_route(&r, false, &p), "public, max-age=2");
    strcpy(r.object, "720p/init-1795329.mp4");
    assert_string_equal(http_cache_control_route(&r, false, &p),
                        "public, max-age=31536000, immutable");
    r.object_type = HTTP_OBJECT_SEGMENT;
    strcpy(r.object, "720p/12.m4s");
    assert_string_equal(http_cache_control_route(&r, false, &p),
                        "public, max-age=31536000, immutable");
    /* A recording: playlists a minute (it may be deleted), the rest
     * immutable, init.mp4 included (a recording's directory is its own). */
    http_route_t v = {.kind = HTTP_ROUTE_VOD, .object_type = HTTP_OBJECT_PLAYLIST};
    strcpy(v.object, "720p/index.m3u8");
    assert_string_equal(http_cache_control_route(&v, false, &p), "public, max-age=60");
    strcpy(v.object, "master.m3u8");
    assert_string_equal(http_cache_control_route(&v, false, &p), "public, max-age=60");
    v.object_type = HTTP_OBJECT_INIT;
    strcpy(v.object, "720p/init.mp4");
    assert_string_equal(http_cache_control_route(&v, false, &p),
                        "public, max-age=31536000, immutable");
    v.object_type = HTTP_OBJECT_MP4;
    strcpy(v.object, "recording.mp4");
    assert_string_equal(http_cache_control_route(&v, false, &p),
                        "public, max-age=31536000, immutable");
    /* the live thumbnail: a segment duration, at least 1 s */
    r.object_type = HTTP_OBJECT_THUMBNAIL;
    strcpy(r.object, "thumbnail.jpg");
    assert_string_equal(http_cache_control_route(&r, false, &p), "public, max-age=2");
    p.segment_duration = 0.5;
    assert_string_equal(http_cache_control_route(&r, false, &p), "public, max-age=1");
    p.segment_duration = 2;
    /* half a 0.333 s part rounds down to 0 */
    assert_string_equal(http_cache_control(HTTP_OBJECT_PLAYLIST, false, &p), "public, max-age=0");
    p.part_duration = 0;
    assert_string_equal(http_cache_control(HTTP_OBJECT_PLAYLIST, false, &p), "public, max-age=1");
    p.segment_duration = 6;
    assert_string_equal(http_cache_control(HTTP_OBJECT_PLAYLIST, false, &p), "public, max-age=3");
    p.segment_duration = 30;
    assert_string_equal(http_cache_control(HTTP_OBJECT_PLAYLIST, false, &p),
                        "public, max-age=15");
    assert_string_equal(http_cache_control(HTTP_OBJECT_PLAYLIST, true, &p), "public, max-age=30");
    p.playlist_no_cache = true;
    assert_string_equal(http_cache_control(HTTP_OBJECT_PLAYLIST, false, &p), "no-cache");
    /* blocking answers keep their own lifetime, at least 1 s */
    p.segment_duration = 2;
    assert_string_equal(http_cache_control(HTTP_OBJECT_PLAYLIST, true, &p), "public, max-age=2");
    p.segment_duration = 0.5;
    assert_string_equal(http_cache_control(HTTP_OBJECT_PLAYLIST, true, &p), "public, max-age=1");
    assert_string_equal(HTTP_CACHE_CONTROL_ERROR, "max-age=1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_control),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
