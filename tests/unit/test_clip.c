/*
 * Tests for transcode/clip.c's pure parts: which GOPs of a range are
 * copied, encoded again or left out (the smart cut's plan), the range's
 * first and last frames, and the NAL unit conversions the joins need.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clip.h"
#include "clip_internal.h"

/* 3 GOPs of 4 frames, 10 ticks apart, no reordering: keyframes at 0, 40, 80. */
static void frames_simple(clip_frame_t f[12])
{
    for (int i = 0; i < 12; i++) {
        f[i].pts = i * 10;
        f[i].key = i % 4 == 0;
    }
}

static void test_plan_partial_ends(void **state)
{
    (void)state;
    clip_frame_t f[12];
    frames_simple(f);
    clip_gop_t *g = NULL;
    size_t n = 0;
    int64_t lo = 0, hi = 0;
    /* [20, 100): frames 2..9: GOP 0 partial, GOP 1 whole, GOP 2 partial */
    assert_int_equal(clip_plan(f, 12, 20, 100, &g, &n, &lo, &hi), 0);
    assert_int_equal(n, 3);
    assert_int_equal(g[0].action, CLIP_GOP_ENCODE);
    assert_int_equal(g[0].selected, 2);
    assert_int_equal(g[1].action, CLIP_GOP_COPY);
    assert_int_equal(g[1].first, 4);
    assert_int_equal(g[1].end, 8);
    assert_int_equal(g[2].action, CLIP_GOP_ENCODE);
    assert_int_equal(g[2].selected, 2);
    assert_int_equal(lo, 20);
    assert_int_equal(hi, 90);
    free(g);
}

static void test_plan_on_keyframes_copies_only(void **state)
{
    (void)state;
    clip_frame_t f[12];
    frames_simple(f);
    clip_gop_t *g = NULL;
    size_t n = 0;
    int64_t lo = 0, hi = 0;
    /* [40, 80): exactly GOP 1 */
    assert_int_equal(clip_plan(f, 12, 40, 80, &g, &n, &lo, &hi), 0);
    assert_int_equal(g[0].action, CLIP_GOP_SKIP);
    assert_int_equal(g[1].action, CLIP_GOP_COPY);
    assert_int_equal(g[2].action, CLIP_GOP_SKIP);
    assert_int_equal(lo, 40);
    assert_int_equal(hi, 70);
    free(g);
    /* a range inside one GOP: only that GOP, encoded */
    assert_int_equal(clip_plan(f, 12, 45, 65, &g, &n, &lo, &hi), 0);
    assert_int_equal(g[1].action, CLIP_GOP_ENCODE);
    assert_int_equal(g[1].selected, 2);
    assert_int_equal(lo, 50);
    assert_int_equal(hi, 60);
    free(g);
}

static void test_plan_reordered(void **state)
{
    (void)state;
    /* decode order I P B B | I P B B with pts 0 30 10 20 | 40 70 50 60 */
    clip_frame_t f[8] = {{0, true},  {30, false}, {10, false}, {20, false},
                         {40, true}, {70, false}, {50, false}, {60, false}};
    clip_gop_t *g = NULL;
    size_t n = 0;
    int64_t lo = 0, hi = 0;
    /* [10, 80): frames 10, 20, 30 of GOP 0 (not the I at 0): encoded; GOP 1 whole */
    assert_int_equal(clip_plan(f, 8, 10, 80, &g, &n, &lo, &hi), 0);
    assert_int_equal(n, 2);
    assert_int_equal(g[0].action, CLIP_GOP_ENCODE);
    assert_int_equal(g[0].selected, 3);
    assert_int_equal(g[1].action, CLIP_GOP_COPY);
    assert_int_equal(lo, 10);
    assert_int_equal(hi, 70);
    free(g);
}

static void test_plan_refusals(void **state)
{
    (void)state;
    clip_frame_t f[12];
    frames_simple(f);
    clip_gop_t *g = NULL;
    size_t n = 0;
    int64_t lo = 0, hi = 0;
    assert_int_equal(clip_plan(f, 12, 500, 600, &g, &n, &lo, &hi), -ERANGE); /* after */
    assert_int_equal(clip_plan(f, 12, 50, 50, &g, &n, &lo, &hi), -ERANGE);   /* empty */
    assert_int_equal(clip_plan(f, 0, 0, 10, &g, &n, &lo, &hi), -ERANGE);
    /* segments starting on a non-keyframe: its frames cannot be decoded */
    f[0].key = false;
    assert_int_equal(clip_plan(f, 12, 0, 30, &g, &n, &lo, &hi), -ERANGE);
    assert_int_equal(clip_plan(f, 12, 40, 50, &g, &n, &lo, &hi), 0); /* after it: fine */
    free(g);
}

static void test_annexb_to_lp(void **state)
{
    (void)state;
    const uint8_t in[] = {0,    0,    0, 1, 0x67, 0xaa, 0xbb, 0, 0, 1,
                          0x68, 0xcc, 0, 0, 0,    1,    0x65, 1, 2, 3};
    uint8_t out[64];
    int n = clip_annexb_to_lp(in, sizeof(in), out, sizeof(out));
    const uint8_t want[] = {0,    0,    0, 3, 0x67, 0xaa, 0xbb, 0, 0, 0, 2,
                            0x68, 0xcc, 0, 0, 0,    4,    0x65, 1, 2, 3};
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(out, want, sizeof(want));
    assert_int_equal(clip_annexb_to_lp(in, sizeof(in), out, 8), -EMSGSIZE);
    const uint8_t bad[] = {1, 2, 3, 4};
    assert_int_equal(clip_annexb_to_lp(bad, sizeof(bad), out, sizeof(out)), -EPROTO);
}

static void test_avcc_param_sets(void **state)
{
    (void)state;
    const uint8_t avcc[] = {1,    0x64, 0,    0x1f, 0xff, 0xe1, 0,    3,
                            0x67, 0x64, 0x00, 1,    0,    2,    0x68, 0xee};
    uint8_t out[64];
    int n = clip_avcc_param_sets(avcc, sizeof(avcc), out, sizeof(out));
    const uint8_t want[] = {0, 0, 0, 3, 0x67, 0x64, 0x00, 0, 0, 0, 2, 0x68, 0xee};
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(out, want, sizeof(want));
    assert_int_equal(clip_avcc_param_sets(avcc, 10, out, sizeof(out)), -EPROTO); /* cut short */
    uint8_t short_len[sizeof(avcc)];
    memcpy(short_len, avcc, sizeof(avcc));
    short_len[4] = 0xfd; /* 2-byte lengths: not ours */
    assert_int_equal(clip_avcc_param_sets(short_len, sizeof(avcc), out, sizeof(out)), -EPROTO);
}

static void test_hls_master_filter(void **state)
{
    (void)state;
    const char *m =
        "#EXTM3U\n#EXT-X-VERSION:7\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",URI=\"audio/index.m3u8\"\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=5000000,RESOLUTION=1920x1080\n1080p/index.m3u8\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\n360p/index.m3u8\n";
    blob_t *src = blob_new(m, strlen(m));
    clip_hls_rend_t rends[2] = {{.name = "360p"}, {.name = "audio"}};
    clip_input_t in = {.hls = rends, .nhls = 2};
    blob_t *out = clip_hls_master(src, &in);
    assert_non_null(out);
    const char *want =
        "#EXTM3U\n#EXT-X-VERSION:7\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",URI=\"audio/index.m3u8\"\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\n360p/index.m3u8\n";
    assert_int_equal(out->size, strlen(want));
    assert_memory_equal(out->data, want, out->size);
    blob_unref(out);
    /* without audio: its EXT-X-MEDIA goes too */
    in.nhls = 1;
    out = clip_hls_master(src, &in);
    assert_null(memmem(out->data, out->size, "EXT-X-MEDIA", 11));
    assert_non_null(memmem(out->data, out->size, "360p/index.m3u8", 15));
    blob_unref(out);
    blob_unref(src);
}

static void test_make_refuses(void **state)
{
    (void)state;
    char **paths = calloc(2, sizeof(*paths));
    assert_non_null(paths);
    paths[0] = strdup("/nonexistent/init.mp4");
    paths[1] = strdup("/nonexistent/1.m4s");
    clip_input_t in = {.video = {.paths = paths, .n = 2}, .start_ms = 0, .duration_ms = 1000};
    clip_result_t res;
    char why[128];
    assert_int_equal(clip_make(&in, "/nonexistent/clip.mp4", NULL, &res, why, sizeof(why)),
                     -ENOENT);
    in.duration_ms = 0;
    assert_int_equal(clip_make(&in, "/nonexistent/clip.mp4", NULL, &res, why, sizeof(why)),
                     -ERANGE);
    clip_track_deinit(&in.video);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_partial_ends),
        cmocka_unit_test(test_plan_on_keyframes_copies_only),
        cmocka_unit_test(test_plan_reordered),
        cmocka_unit_test(test_plan_refusals),
        cmocka_unit_test(test_annexb_to_lp),
        cmocka_unit_test(test_avcc_param_sets),
        cmocka_unit_test(test_hls_master_filter),
        cmocka_unit_test(test_make_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
