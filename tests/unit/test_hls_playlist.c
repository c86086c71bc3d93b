/*
 * Tests for transcode/hls_playlist.c: the renderer turns models into exact
 * RFC 8216 text and decides nothing on its own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hls_playlist_internal.h"

static void assert_blob_text(blob_t *b, const char *want)
{
    assert_non_null(b);
    char *got = test_malloc(b->size + 1);
    memcpy(got, b->data, b->size);
    got[b->size] = '\0';
    assert_string_equal(got, want);
    test_free(got);
    blob_unref(b);
}

static void test_pdt_format(void **state)
{
    (void)state;
    char buf[40];
    hls_playlist_format_pdt(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    hls_playlist_format_pdt(1714564800123LL, buf, sizeof(buf));
    assert_string_equal(buf, "2024-05-01T12:00:00.123Z");
    hls_playlist_format_pdt(-1, buf, sizeof(buf));
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
}

static void test_media_live(void **state)
{
    (void)state;
    hls_segment_t segs[] = {
        {.msn = 7, .duration = 2.0, .pdt_ms = 1714564800000LL},
        {.msn = 8, .duration = 2.002, .pdt_ms = 1714564802000LL},
        {.msn = 9, .duration = 1.9996, .pdt_ms = 1714564804002LL},
    };
    hls_media_playlist_t pl = {
        .target_duration = 2,
        .media_sequence = 7,
        .map_uri = "init.mp4",
        .segments = segs,
        .nsegments = 3,
    };
    blob_t *b = NULL;
    assert_int_equal(hls_playlist_render_media(&pl, &b), 0);
    assert_blob_text(b, "#EXTM3U\n"
                        "#EXT-X-VERSION:7\n"
                        "#EXT-X-TARGETDURATION:2\n"
                        "#EXT-X-MEDIA-SEQUENCE:7\n"
                        "#EXT-X-MAP:URI=\"init.mp4\"\n"
                        "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z\n"
                        "#EXTINF:2.000,\n7.m4s\n"
                        "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:02.000Z\n"
                        "#EXTINF:2.002,\n8.m4s\n"
                        "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:04.002Z\n"
                        "#EXTINF:2.000,\n9.m4s\n");
}

static void test_media_ended_and_discontinuity(void **state)
{
    (void)state;
    hls_segment_t segs[] = {
        {.msn = 3, .duration = 3.0, .pdt_ms = 0},
        {.msn = 4, .duration = 0.5, .pdt_ms = 3000, .discontinuity = true},
    };
    hls_media_playlist_t pl = {
        .target_duration = 3,
        .media_sequence = 3,
        .discontinuity_sequence = 2,
        .map_uri = "init.mp4",
        .segments = segs,
        .nsegments = 2,
        .ended = true,
    };
    blob_t *b = NULL;
    assert_int_equal(hls_playlist_render_media(&pl, &b), 0);
    assert_blob_text(b, "#EXTM3U\n"
                        "#EXT-X-VERSION:7\n"
                        "#EXT-X-TARGETDURATION:3\n"
                        "#EXT-X-MEDIA-SEQUENCE:3\n"
                        "#EXT-X-DISCONTINUITY-SEQUENCE:2\n"
                        "#EXT-X-MAP:URI=\"init.mp4\"\n"
                        "#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:00.000Z\n"
                        "#EXTINF:3.000,\n3.m4s\n"
                        "#EXT-X-DISCONTINUITY\n"
                        "#EXT-X-MAP:URI=\"init.mp4\"\n"
                        "#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:03.000Z\n"
                        "#EXTINF:0.500,\n4.m4s\n"
                        "#EXT-X-ENDLIST\n");
}

static void test_media_empty(void **state)
{
    (void)state;
    hls_media_playlist_t pl = {.target_duration = 2, .media_sequence = 12, .map_uri = "init.mp4"};
    blob_t *b = NULL;
    assert_int_equal(hls_playlist_render_media(&pl, &b), 0);
    assert_blob_text(b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n"
                        "#EXT-X-MEDIA-SEQUENCE:12\n#EXT-X-MAP:URI=\"init.mp4\"\n");
}

static void test_media_long_window(void **state)
{
    (void)state;
    /* Grows the text buffer several times. */
    hls_segment_t segs[500];
    for (int i = 0; i < 500; i++)
        segs[i] = (hls_segment_t){.msn = i, .duration = 2.0, .pdt_ms = (int64_t)i * 2000};
    hls_media_playlist_t pl = {.target_duration = 2, .map_uri = "init.mp4", .segments = segs,
                               .nsegments = 500};
    blob_t *b = NULL;
    assert_int_equal(hls_playlist_render_media(&pl, &b), 0);
    assert_true(b->size > 500 * 60);
    assert_non_null(memmem(b->data, b->size, "\n499.m4s\n", 9));
    blob_unref(b);
}

static void test_master_av(void **state)
{
    (void)state;
    hls_media_rendition_t audio = {
        .type = "AUDIO", .group_id = "audio", .name = "audio", .is_default = true,
        .autoselect = true, .channels = 2, .uri = "audio/index.m3u8",
    };
    hls_variant_t v = {
        .bandwidth = 2928000, .average_bandwidth = 2800000,
        .codecs = "avc1.64001f,mp4a.40.2", .width = 1280, .height = 720,
        .frame_rate = 30.0, .audio_group = "audio", .uri = "720p/index.m3u8",
    };
    hls_master_playlist_t m = {.independent_segments = true, .media = &audio, .nmedia = 1,
                               .variants = &v, .nvariants = 1};
    blob_t *b = NULL;
    assert_int_equal(hls_playlist_render_master(&m, &b), 0);
    assert_blob_text(b, "#EXTM3U\n"
                        "#EXT-X-VERSION:7\n"
                        "#EXT-X-INDEPENDENT-SEGMENTS\n"
                        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",DEFAULT=YES,"
                        "AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/index.m3u8\"\n"
                        "#EXT-X-STREAM-INF:BANDWIDTH=2928000,AVERAGE-BANDWIDTH=2800000,"
                        "CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=30.000,"
                        "AUDIO=\"audio\"\n"
                        "720p/index.m3u8\n");
}

static void test_master_audio_only(void **state)
{
    (void)state;
    hls_variant_t v = {.bandwidth = 130000, .codecs = "mp4a.40.2", .uri = "audio/index.m3u8"};
    hls_master_playlist_t m = {.independent_segments = true, .variants = &v, .nvariants = 1};
    blob_t *b = NULL;
    assert_int_equal(hls_playlist_render_master(&m, &b), 0);
    assert_blob_text(b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n"
                        "#EXT-X-STREAM-INF:BANDWIDTH=130000,CODECS=\"mp4a.40.2\"\n"
                        "audio/index.m3u8\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pdt_format),
        cmocka_unit_test(test_media_live),
        cmocka_unit_test(test_media_ended_and_discontinuity),
        cmocka_unit_test(test_media_empty),
        cmocka_unit_test(test_media_long_window),
        cmocka_unit_test(test_master_av),
        cmocka_unit_test(test_master_audio_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
