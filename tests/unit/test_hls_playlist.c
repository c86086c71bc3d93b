/*
 * Tests for common/hls_playlist.c: the renderer turns models into exact
 * RFC 8216 / RFC 8216bis (LL-HLS) text and decides nothing on its own.
 */
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hls_playlist.h"

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

static char *render_text(const hls_media_playlist_t *pl)
{
    blob_t *b = NULL;
    assert_int_equal(hls_playlist_render_media(pl, &b), 0);
    assert_non_null(b);
    char *text = test_malloc(b->size + 1);
    memcpy(text, b->data, b->size);
    text[b->size] = '\0';
    blob_unref(b);
    return text;
}

/* Line number (from 0) of the first line that starts with prefix, or -1. */
static int line_of(const char *text, const char *prefix)
{
    int n = 0;
    for (const char *l = text; *l; n++) {
        if (strncmp(l, prefix, strlen(prefix)) == 0)
            return n;
        const char *nl = strchr(l, '\n');
        if (!nl)
            break;
        l = nl + 1;
    }
    return -1;
}

/* Line number of the last line that starts with prefix, or -1. */
static int last_line_of(const char *text, const char *prefix)
{
    int n = 0, found = -1;
    for (const char *l = text; *l; n++) {
        if (strncmp(l, prefix, strlen(prefix)) == 0)
            found = n;
        const char *nl = strchr(l, '\n');
        if (!nl)
            break;
        l = nl + 1;
    }
    return found;
}

static int count_lines(const char *text)
{
    int n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    return n;
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
                        "#EXTINF:1.9996,\n9.m4s\n");
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

/* A recording's playlist (the recorder's model): EXT-X-PLAYLIST-TYPE:VOD
 * and EXT-X-INDEPENDENT-SEGMENTS after the sequence numbers, the end list;
 * a discontinuity names the init segment again even when it is the same. */
static void test_media_vod(void **state)
{
    (void)state;
    hls_segment_t segs[] = {
        {.msn = 7, .duration = 2.002, .pdt_ms = 1000},
        {.msn = 9, .duration = 1.8, .pdt_ms = 7000, .discontinuity = true},
    };
    hls_media_playlist_t pl = {
        .target_duration = 2,
        .media_sequence = 7,
        .map_uri = "init.mp4",
        .segments = segs,
        .nsegments = 2,
        .ended = true,
        .playlist_type = HLS_PLAYLIST_TYPE_VOD,
        .independent_segments = true,
    };
    blob_t *b = NULL;
    assert_int_equal(hls_playlist_render_media(&pl, &b), 0);
    assert_blob_text(b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n"
                        "#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-PLAYLIST-TYPE:VOD\n"
                        "#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n"
                        "#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:01.000Z\n#EXTINF:2.002,\n7.m4s\n"
                        "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init.mp4\"\n"
                        "#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:07.000Z\n#EXTINF:1.800,\n9.m4s\n"
                        "#EXT-X-ENDLIST\n");
}

/* Segments keep the init segment they were made with: the first shown
 * names its own, a later one only when it changes, and the parts in
 * progress the playlist's current one. */
static void test_media_versioned_maps(void **state)
{
    (void)state;
    hls_segment_t segs[] = {
        {.msn = 3, .duration = 2.0, .pdt_ms = 0},
        {.msn = 4, .duration = 2.0, .pdt_ms = 9000, .discontinuity = true,
         .map_uri = "init-4.mp4"},
        {.msn = 5, .duration = 2.0, .pdt_ms = 11000, .map_uri = "init-4.mp4"},
    };
    hls_media_playlist_t pl = {
        .target_duration = 2,
        .media_sequence = 3,
        .map_uri = "init-4.mp4",
        .segments = segs,
        .nsegments = 3,
    };
    blob_t *b = NULL;
    assert_int_equal(hls_playlist_render_media(&pl, &b), 0);
    assert_blob_text(b, "#EXTM3U\n"
                        "#EXT-X-VERSION:7\n"
                        "#EXT-X-TARGETDURATION:2\n"
                        "#EXT-X-MEDIA-SEQUENCE:3\n"
                        "#EXT-X-MAP:URI=\"init-4.mp4\"\n"
                        "#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:00.000Z\n"
                        "#EXTINF:2.000,\n3.m4s\n"
                        "#EXT-X-DISCONTINUITY\n"
                        "#EXT-X-MAP:URI=\"init-4.mp4\"\n"
                        "#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:09.000Z\n"
                        "#EXTINF:2.000,\n4.m4s\n"
                        "#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:11.000Z\n"
                        "#EXTINF:2.000,\n5.m4s\n");
    /* Segment 3 has no map of its own, so it is the playlist's: give it the
     * one it was made with. */
    strcpy(segs[0].map_uri, "init.mp4");
    assert_int_equal(hls_playlist_render_media(&pl, &b), 0);
    assert_blob_text(b, "#EXTM3U\n"
                        "#EXT-X-VERSION:7\n"
                        "#EXT-X-TARGETDURATION:2\n"
                        "#EXT-X-MEDIA-SEQUENCE:3\n"
                        "#EXT-X-MAP:URI=\"init.mp4\"\n"
                        "#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:00.000Z\n"
                        "#EXTINF:2.000,\n3.m4s\n"
                        "#EXT-X-DISCONTINUITY\n"
                        "#EXT-X-MAP:URI=\"init-4.mp4\"\n"
                        "#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:09.000Z\n"
                        "#EXTINF:2.000,\n4.m4s\n"
                        "#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:11.000Z\n"
                        "#EXTINF:2.000,\n5.m4s\n");
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

/* The master of a stream with audio and two video variants; cc_media and
 * cc_attr are what a source with CEA-608 captions adds (test_master_captions):
 * a CLOSED-CAPTIONS group without a URI (the captions are in the video),
 * and the group's name on every variant. */
#define MASTER_AV(cc_media, cc_attr)                                                               \
    "#EXTM3U\n"                                                                                    \
    "#EXT-X-VERSION:7\n"                                                                           \
    "#EXT-X-INDEPENDENT-SEGMENTS\n"                                                                \
    "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",DEFAULT=YES,"                       \
    "AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/index.m3u8\"\n" cc_media                            \
    "#EXT-X-STREAM-INF:BANDWIDTH=1200000,CODECS=\"avc1.4d401e,mp4a.40.2\","                        \
    "RESOLUTION=854x480,AUDIO=\"audio\"" cc_attr "\n"                                              \
    "480p/index.m3u8\n"                                                                            \
    "#EXT-X-STREAM-INF:BANDWIDTH=2928000,AVERAGE-BANDWIDTH=2800000,"                               \
    "CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=30.000,"                      \
    "AUDIO=\"audio\"" cc_attr "\n"                                                                 \
    "720p/index.m3u8\n"

static void check_master_av(bool captions, const char *want)
{
    hls_media_rendition_t media[] = {
        {.type = "AUDIO",
         .group_id = "audio",
         .name = "audio",
         .is_default = true,
         .autoselect = true,
         .channels = 2,
         .uri = "audio/index.m3u8"},
        {.type = "CLOSED-CAPTIONS",
         .group_id = "cc",
         .name = "Captions",
         .is_default = true,
         .autoselect = true,
         .instream_id = "CC1"},
    };
    const char *cc = captions ? "cc" : NULL;
    hls_variant_t v[] = {
        {.bandwidth = 1200000,
         .codecs = "avc1.4d401e,mp4a.40.2",
         .width = 854,
         .height = 480,
         .audio_group = "audio",
         .closed_captions = cc,
         .uri = "480p/index.m3u8"},
        {.bandwidth = 2928000,
         .average_bandwidth = 2800000,
         .codecs = "avc1.64001f,mp4a.40.2",
         .width = 1280,
         .height = 720,
         .frame_rate = 30.0,
         .audio_group = "audio",
         .closed_captions = cc,
         .uri = "720p/index.m3u8"},
    };
    hls_master_playlist_t m = {.independent_segments = true,
                               .media = media,
                               .nmedia = captions ? 2 : 1,
                               .variants = v,
                               .nvariants = 2};
    blob_t *b = NULL;
    assert_int_equal(hls_playlist_render_master(&m, &b), 0);
    assert_blob_text(b, want);
}

/* Without captions: no group, and no CLOSED-CAPTIONS attribute at all
 * (players then look in the video). */
static void test_master_av(void **state)
{
    (void)state;
    check_master_av(false, MASTER_AV("", ""));
}

static void test_master_captions(void **state)
{
    (void)state;
    check_master_av(true, MASTER_AV("#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\","
                                    "NAME=\"Captions\",DEFAULT=YES,AUTOSELECT=YES,"
                                    "INSTREAM-ID=\"CC1\"\n",
                                    ",CLOSED-CAPTIONS=\"cc\""));
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

/* ---- LL-HLS (RFC 8216bis) ---- */

#define PDT0 1714564800000LL /* 2024-05-01T12:00:00.000Z */

static const hls_part_t parts_a[] = {
    {.duration = 0.5, .independent = true},
    {.duration = 0.5},
    {.duration = 0.5},
    {.duration = 0.5},
};
/* A second keyframe inside the segment, and a duration that is not whole
 * milliseconds (durations go to the microsecond). */
static const hls_part_t parts_b[] = {
    {.duration = 0.5, .independent = true},
    {.duration = 0.5},
    {.duration = 0.5, .independent = true},
    {.duration = 0.4996},
};
static const hls_part_t pending3[] = {
    {.duration = 0.5, .independent = true},
    {.duration = 0.5},
    {.duration = 0.5},
};
static const hls_rendition_report_t reports3[] = {
    {.uri = "../1080p/index.m3u8", .last_msn = 14, .last_part = 3},
    {.uri = "../480p/index.m3u8", .last_msn = 14, .last_part = 2},
    {.uri = "../audio/index.m3u8", .last_msn = 14, .last_part = 2},
};

/* A live window of four 2 s segments, parts on the last two, three parts
 * of segment 14 in progress, the hint for 14.3 and three reports. */
static void ll_window(hls_segment_t segs[4], hls_media_playlist_t *pl)
{
    for (int i = 0; i < 4; i++)
        segs[i] = (hls_segment_t){.msn = 10 + i, .duration = 2.0, .pdt_ms = PDT0 + i * 2000};
    segs[2].parts = parts_a;
    segs[2].nparts = 4;
    segs[3].parts = parts_b;
    segs[3].nparts = 4;
    segs[3].duration = 1.9996;
    *pl = (hls_media_playlist_t){
        .target_duration = 2,
        .media_sequence = 10,
        .map_uri = "init.mp4",
        .segments = segs,
        .nsegments = 4,
        .part_target = 0.5,
        .part_hold_back = 1.5,
        .can_skip_until = 12.0,
        .can_skip_dateranges = true,
        .pending_parts = pending3,
        .npending = 3,
        .preload_hint = true,
        .reports = reports3,
        .nreports = 3,
    };
}

#define LL_HEAD                                                                                  \
    "#EXTM3U\n"                                                                                  \
    "#EXT-X-VERSION:7\n"                                                                         \
    "#EXT-X-TARGETDURATION:2\n"                                                                  \
    "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500,CAN-SKIP-UNTIL=12.000,"     \
    "CAN-SKIP-DATERANGES=YES\n"                                                                  \
    "#EXT-X-PART-INF:PART-TARGET=0.500\n"                                                        \
    "#EXT-X-MEDIA-SEQUENCE:10\n"                                                                 \
    "#EXT-X-MAP:URI=\"init.mp4\"\n"
#define LL_SEGMENTS                                                                              \
    "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z\n"                                        \
    "#EXTINF:2.000,\n"                                                                           \
    "10.m4s\n"                                                                                   \
    "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:02.000Z\n"                                        \
    "#EXTINF:2.000,\n"                                                                           \
    "11.m4s\n"                                                                                   \
    "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:04.000Z\n"                                        \
    "#EXT-X-PART:DURATION=0.500,URI=\"12.0.m4s\",INDEPENDENT=YES\n"                              \
    "#EXT-X-PART:DURATION=0.500,URI=\"12.1.m4s\"\n"                                              \
    "#EXT-X-PART:DURATION=0.500,URI=\"12.2.m4s\"\n"                                              \
    "#EXT-X-PART:DURATION=0.500,URI=\"12.3.m4s\"\n"                                              \
    "#EXTINF:2.000,\n"                                                                           \
    "12.m4s\n"                                                                                   \
    "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:06.000Z\n"                                        \
    "#EXT-X-PART:DURATION=0.500,URI=\"13.0.m4s\",INDEPENDENT=YES\n"                              \
    "#EXT-X-PART:DURATION=0.500,URI=\"13.1.m4s\"\n"                                              \
    "#EXT-X-PART:DURATION=0.500,URI=\"13.2.m4s\",INDEPENDENT=YES\n"                              \
    "#EXT-X-PART:DURATION=0.4996,URI=\"13.3.m4s\"\n"                                             \
    "#EXTINF:1.9996,\n"                                                                          \
    "13.m4s\n"
#define LL_REPORTS                                                                               \
    "#EXT-X-RENDITION-REPORT:URI=\"../1080p/index.m3u8\",LAST-MSN=14,LAST-PART=3\n"              \
    "#EXT-X-RENDITION-REPORT:URI=\"../480p/index.m3u8\",LAST-MSN=14,LAST-PART=2\n"               \
    "#EXT-X-RENDITION-REPORT:URI=\"../audio/index.m3u8\",LAST-MSN=14,LAST-PART=2\n"

static void test_ll_live(void **state)
{
    (void)state;
    hls_segment_t segs[4];
    hls_media_playlist_t pl;
    ll_window(segs, &pl);
    blob_t *b = NULL;
    assert_int_equal(hls_playlist_render_media(&pl, &b), 0);
    assert_blob_text(b, LL_HEAD LL_SEGMENTS
                        "#EXT-X-PART:DURATION=0.500,URI=\"14.0.m4s\",INDEPENDENT=YES\n"
                        "#EXT-X-PART:DURATION=0.500,URI=\"14.1.m4s\"\n"
                        "#EXT-X-PART:DURATION=0.500,URI=\"14.2.m4s\"\n"
                        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"14.3.m4s\"\n" LL_REPORTS);
}

/* An ended list keeps its parts and reports but never a preload hint
 * (4.4.5.3), and a delta update of it is the full playlist (6.2.5.1). */
static void test_ll_ended(void **state)
{
    (void)state;
    hls_segment_t segs[4];
    hls_media_playlist_t pl;
    ll_window(segs, &pl);
    pl.npending = 0;
    pl.ended = true;
    pl.skip = 2;
    blob_t *b = NULL;
    assert_int_equal(hls_playlist_render_media(&pl, &b), 0);
    assert_blob_text(b, LL_HEAD LL_SEGMENTS LL_REPORTS "#EXT-X-ENDLIST\n");
}

/* Ten 2 s segments 20..29 with CAN-SKIP-UNTIL=12: 20, 21 and 22 end more
 * than 12 s before the end of the last segment and are skipped. 21 starts a
 * discontinuity (skipped: EXT-X-DISCONTINUITY-SEQUENCE keeps its value), 24
 * another one (kept, with its EXT-X-MAP). */
static void ll_delta(hls_segment_t segs[10], hls_media_playlist_t *pl, bool v2)
{
    static const hls_part_t p2[] = {{.duration = 1.0, .independent = true}, {.duration = 1.0}};
    static const hls_part_t pend[] = {{.duration = 1.0, .independent = true}};
    static const hls_rendition_report_t rep[] = {
        {.uri = "../audio/index.m3u8", .last_msn = 30, .last_part = 0}};
    for (int i = 0; i < 10; i++)
        segs[i] = (hls_segment_t){.msn = 20 + i, .duration = 2.0, .pdt_ms = PDT0 + i * 2000};
    segs[1].discontinuity = true;
    segs[4].discontinuity = true;
    segs[8].parts = p2;
    segs[8].nparts = 2;
    segs[9].parts = p2;
    segs[9].nparts = 2;
    *pl = (hls_media_playlist_t){
        .target_duration = 2,
        .media_sequence = 20,
        .discontinuity_sequence = 5,
        .map_uri = "init.mp4",
        .segments = segs,
        .nsegments = 10,
        .part_target = 1.0,
        .part_hold_back = 3.0,
        .can_skip_until = 12.0,
        .can_skip_dateranges = true,
        .pending_parts = pend,
        .npending = 1,
        .preload_hint = true,
        .reports = rep,
        .nreports = 1,
        .skip = 3,
        .skip_v2 = v2,
    };
}

#define DELTA_HEAD                                                                               \
    "#EXT-X-TARGETDURATION:2\n"                                                                  \
    "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=3.000,CAN-SKIP-UNTIL=12.000,"     \
    "CAN-SKIP-DATERANGES=YES\n"                                                                  \
    "#EXT-X-PART-INF:PART-TARGET=1.000\n"                                                        \
    "#EXT-X-MEDIA-SEQUENCE:20\n"                                                                 \
    "#EXT-X-DISCONTINUITY-SEQUENCE:5\n"                                                          \
    "#EXT-X-MAP:URI=\"init.mp4\"\n"
#define DELTA_BODY                                                                               \
    "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:06.000Z\n"                                        \
    "#EXTINF:2.000,\n"                                                                           \
    "23.m4s\n"                                                                                   \
    "#EXT-X-DISCONTINUITY\n"                                                                     \
    "#EXT-X-MAP:URI=\"init.mp4\"\n"                                                              \
    "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:08.000Z\n"                                        \
    "#EXTINF:2.000,\n"                                                                           \
    "24.m4s\n"                                                                                   \
    "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:10.000Z\n"                                        \
    "#EXTINF:2.000,\n"                                                                           \
    "25.m4s\n"                                                                                   \
    "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:12.000Z\n"                                        \
    "#EXTINF:2.000,\n"                                                                           \
    "26.m4s\n"                                                                                   \
    "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:14.000Z\n"                                        \
    "#EXTINF:2.000,\n"                                                                           \
    "27.m4s\n"                                                                                   \
    "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:16.000Z\n"                                        \
    "#EXT-X-PART:DURATION=1.000,URI=\"28.0.m4s\",INDEPENDENT=YES\n"                              \
    "#EXT-X-PART:DURATION=1.000,URI=\"28.1.m4s\"\n"                                              \
    "#EXTINF:2.000,\n"                                                                           \
    "28.m4s\n"                                                                                   \
    "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:18.000Z\n"                                        \
    "#EXT-X-PART:DURATION=1.000,URI=\"29.0.m4s\",INDEPENDENT=YES\n"                              \
    "#EXT-X-PART:DURATION=1.000,URI=\"29.1.m4s\"\n"                                              \
    "#EXTINF:2.000,\n"                                                                           \
    "29.m4s\n"                                                                                   \
    "#EXT-X-PART:DURATION=1.000,URI=\"30.0.m4s\",INDEPENDENT=YES\n"                              \
    "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"30.1.m4s\"\n"                                           \
    "#EXT-X-RENDITION-REPORT:URI=\"../audio/index.m3u8\",LAST-MSN=30,LAST-PART=0\n"

static void test_ll_delta_yes(void **state)
{
    (void)state;
    hls_segment_t segs[10];
    hls_media_playlist_t pl;
    ll_delta(segs, &pl, false);
    blob_t *b = NULL;
    assert_int_equal(hls_playlist_render_media(&pl, &b), 0);
    assert_blob_text(b, "#EXTM3U\n#EXT-X-VERSION:9\n" DELTA_HEAD
                        "#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n" DELTA_BODY);
}

static void test_ll_delta_v2(void **state)
{
    (void)state;
    hls_segment_t segs[10];
    hls_media_playlist_t pl;
    ll_delta(segs, &pl, true);
    blob_t *b = NULL;
    assert_int_equal(hls_playlist_render_media(&pl, &b), 0);
    assert_blob_text(b, "#EXTM3U\n#EXT-X-VERSION:10\n" DELTA_HEAD
                        "#EXT-X-SKIP:SKIPPED-SEGMENTS=3,RECENTLY-REMOVED-DATERANGES=\"\"\n"
                        DELTA_BODY);
}

/* The full playlist of the same model is the delta's text with the three
 * segments in place of EXT-X-SKIP, at version 7. */
static void test_ll_delta_matches_full(void **state)
{
    (void)state;
    hls_segment_t segs[10];
    hls_media_playlist_t pl;
    ll_delta(segs, &pl, false);
    pl.skip = 0;
    blob_t *b = NULL;
    assert_int_equal(hls_playlist_render_media(&pl, &b), 0);
    assert_blob_text(b, "#EXTM3U\n#EXT-X-VERSION:7\n" DELTA_HEAD
                        "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z\n"
                        "#EXTINF:2.000,\n"
                        "20.m4s\n"
                        "#EXT-X-DISCONTINUITY\n"
                        "#EXT-X-MAP:URI=\"init.mp4\"\n"
                        "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:02.000Z\n"
                        "#EXTINF:2.000,\n"
                        "21.m4s\n"
                        "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:04.000Z\n"
                        "#EXTINF:2.000,\n"
                        "22.m4s\n" DELTA_BODY);
}

/* EXT-X-VERSION is the lowest the tags need: 7 (EXT-X-MAP, LL-HLS tags), 9
 * with EXT-X-SKIP, 10 with an EXT-X-SKIP that also skips date ranges; a
 * skip that must be ignored does not raise it. */
static void test_ll_versions(void **state)
{
    (void)state;
    struct {
        double part_target, can_skip_until;
        size_t skip;
        bool v2, ended;
        const char *version, *skip_line;
    } cases[] = {
        {0, 0, 0, false, false, "#EXT-X-VERSION:7\n", NULL},
        {0, 12, 3, true, false, "#EXT-X-VERSION:7\n", NULL}, /* LL off: all ignored */
        {1, 0, 0, false, false, "#EXT-X-VERSION:7\n", NULL},
        {1, 12, 0, true, false, "#EXT-X-VERSION:7\n", NULL},
        {1, 12, 3, false, false, "#EXT-X-VERSION:9\n", "#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n"},
        {1, 12, 3, true, false, "#EXT-X-VERSION:10\n",
         "#EXT-X-SKIP:SKIPPED-SEGMENTS=3,RECENTLY-REMOVED-DATERANGES=\"\"\n"},
        {1, 0, 3, false, false, "#EXT-X-VERSION:7\n", NULL}, /* no CAN-SKIP-UNTIL */
        {1, 12, 3, true, true, "#EXT-X-VERSION:7\n", NULL},  /* ended */
        {1, 12, 99, false, false, "#EXT-X-VERSION:9\n", "#EXT-X-SKIP:SKIPPED-SEGMENTS=10\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hls_segment_t segs[10];
        hls_media_playlist_t pl;
        ll_delta(segs, &pl, cases[i].v2);
        pl.part_target = cases[i].part_target;
        pl.can_skip_until = cases[i].can_skip_until;
        pl.skip = cases[i].skip;
        pl.ended = cases[i].ended;
        char *text = render_text(&pl);
        assert_int_equal(line_of(text, cases[i].version), 1);
        assert_int_equal(last_line_of(text, "#EXT-X-VERSION:"), 1);
        if (cases[i].skip_line) {
            assert_int_equal(line_of(text, "#EXT-X-SKIP:"), last_line_of(text, "#EXT-X-SKIP:"));
            assert_true(line_of(text, cases[i].skip_line) > 0);
        } else {
            assert_int_equal(line_of(text, "#EXT-X-SKIP"), -1);
        }
        test_free(text);
    }
}

/* The order the spec wants, checked on lines rather than on whole texts:
 * segment tags, then a segment's EXT-X-PART lines, then its EXTINF and URI;
 * the parts of the segment in progress after the last URI, then the hint,
 * then the rendition reports, last; EXT-X-SKIP before any segment, after
 * EXT-X-MAP. */
static void test_ll_ordering(void **state)
{
    (void)state;
    hls_segment_t segs[10];
    hls_media_playlist_t pl;
    ll_delta(segs, &pl, false);
    segs[8].discontinuity = true; /* a discontinuity on a segment with parts */
    char *text = render_text(&pl);
    int n = count_lines(text);

    int skip = line_of(text, "#EXT-X-SKIP:");
    assert_true(skip > line_of(text, "#EXT-X-MAP:"));
    assert_true(skip > line_of(text, "#EXT-X-MEDIA-SEQUENCE:"));
    assert_true(skip > line_of(text, "#EXT-X-DISCONTINUITY-SEQUENCE:"));
    assert_true(skip < line_of(text, "#EXT-X-PROGRAM-DATE-TIME:"));
    assert_true(skip < line_of(text, "#EXTINF:"));
    assert_true(skip < line_of(text, "#EXT-X-PART:"));
    assert_true(line_of(text, "#EXT-X-SERVER-CONTROL:") < line_of(text, "#EXT-X-MEDIA-SEQUENCE:"));
    assert_true(line_of(text, "#EXT-X-PART-INF:") < line_of(text, "#EXT-X-PART:"));

    /* Segment 28: DISCONTINUITY, MAP, PDT before its first EXT-X-PART; its
     * parts after 27.m4s and before its EXTINF. */
    int part0 = line_of(text, "#EXT-X-PART:DURATION=1.000,URI=\"28.0.m4s\"");
    int part1 = line_of(text, "#EXT-X-PART:DURATION=1.000,URI=\"28.1.m4s\"");
    assert_true(line_of(text, "27.m4s") < last_line_of(text, "#EXT-X-DISCONTINUITY"));
    assert_true(last_line_of(text, "#EXT-X-DISCONTINUITY") < last_line_of(text, "#EXT-X-MAP:"));
    assert_true(last_line_of(text, "#EXT-X-MAP:") <
                line_of(text, "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:16.000Z"));
    assert_int_equal(line_of(text, "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:16.000Z") + 1,
                     part0);
    assert_int_equal(part0 + 1, part1);
    assert_int_equal(part1 + 1, last_line_of(text, "#EXTINF:") - 5);
    assert_int_equal(part1 + 2, line_of(text, "28.m4s"));

    /* The segment in progress after the last URI, then hint, then reports. */
    int pending = line_of(text, "#EXT-X-PART:DURATION=1.000,URI=\"30.0.m4s\"");
    assert_int_equal(pending, line_of(text, "29.m4s") + 1);
    assert_int_equal(line_of(text, "#EXT-X-PRELOAD-HINT:"), pending + 1);
    assert_int_equal(line_of(text, "#EXT-X-RENDITION-REPORT:"), pending + 2);
    assert_int_equal(last_line_of(text, "#EXT-X-RENDITION-REPORT:"), n - 1);
    test_free(text);
}

/* Attribute formats: three decimals (durations: at least three, to the
 * microsecond), enumerated YES, quoted URIs, optional attributes left out. */
static void test_ll_attribute_formats(void **state)
{
    (void)state;
    static const hls_part_t pend[] = {{.duration = 0.3333333}, {.duration = 0.29}};
    static const hls_rendition_report_t rep[] = {
        {.uri = "../720p/index.m3u8", .last_msn = 12, .last_part = 0},
        {.uri = "../audio/index.m3u8", .last_msn = 11, .last_part = -1},
    };
    /* No segment yet: the parts in progress belong to media_sequence. */
    hls_media_playlist_t pl = {
        .target_duration = 1,
        .media_sequence = 12,
        .map_uri = "init.mp4",
        .part_target = 1.0 / 3.0,
        .part_hold_back = 1.0,
        .can_skip_dateranges = true, /* without CAN-SKIP-UNTIL: not rendered */
        .pending_parts = pend,
        .npending = 2,
        .preload_hint = true,
        .reports = rep,
        .nreports = 2,
    };
    blob_t *b = NULL;
    assert_int_equal(hls_playlist_render_media(&pl, &b), 0);
    assert_blob_text(b, "#EXTM3U\n"
                        "#EXT-X-VERSION:7\n"
                        "#EXT-X-TARGETDURATION:1\n"
                        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.000\n"
                        "#EXT-X-PART-INF:PART-TARGET=0.333\n"
                        "#EXT-X-MEDIA-SEQUENCE:12\n"
                        "#EXT-X-MAP:URI=\"init.mp4\"\n"
                        "#EXT-X-PART:DURATION=0.333333,URI=\"12.0.m4s\"\n"
                        "#EXT-X-PART:DURATION=0.290,URI=\"12.1.m4s\"\n"
                        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"12.2.m4s\"\n"
                        "#EXT-X-RENDITION-REPORT:URI=\"../720p/index.m3u8\",LAST-MSN=12,"
                        "LAST-PART=0\n"
                        "#EXT-X-RENDITION-REPORT:URI=\"../audio/index.m3u8\",LAST-MSN=11\n");

    /* A segment just closed, no part of the next one yet: the hint names
     * part 0 of the next msn. Long and never-meant durations. */
    hls_segment_t seg = {.msn = 41, .duration = 123456.789, .pdt_ms = PDT0};
    hls_media_playlist_t pl2 = {
        .target_duration = 123457,
        .media_sequence = 41,
        .segments = &seg,
        .nsegments = 1,
        .part_target = 2.0004,
        .part_hold_back = -1.0,
        .can_skip_until = 740742.0,
        .preload_hint = true,
    };
    assert_int_equal(hls_playlist_render_media(&pl2, &b), 0);
    assert_blob_text(b, "#EXTM3U\n"
                        "#EXT-X-VERSION:7\n"
                        "#EXT-X-TARGETDURATION:123457\n"
                        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.000,"
                        "CAN-SKIP-UNTIL=740742.000\n"
                        "#EXT-X-PART-INF:PART-TARGET=2.000\n"
                        "#EXT-X-MEDIA-SEQUENCE:41\n"
                        "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z\n"
                        "#EXTINF:123456.789,\n"
                        "41.m4s\n"
                        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"42.0.m4s\"\n");
}

/* part_target 0 is plain RFC 8216: every LL-HLS field is ignored and the
 * text is byte for byte what test_media_live expects. */
static void test_ll_off_is_classic(void **state)
{
    (void)state;
    hls_segment_t segs[] = {
        {.msn = 7, .duration = 2.0, .pdt_ms = 1714564800000LL, .parts = parts_a, .nparts = 4},
        {.msn = 8, .duration = 2.002, .pdt_ms = 1714564802000LL, .parts = parts_b, .nparts = 4},
        {.msn = 9, .duration = 1.9996, .pdt_ms = 1714564804002LL},
    };
    hls_media_playlist_t pl = {
        .target_duration = 2,
        .media_sequence = 7,
        .map_uri = "init.mp4",
        .segments = segs,
        .nsegments = 3,
        .part_hold_back = 1.5,
        .can_skip_until = 12,
        .can_skip_dateranges = true,
        .pending_parts = pending3,
        .npending = 3,
        .preload_hint = true,
        .reports = reports3,
        .nreports = 3,
        .skip = 1,
        .skip_v2 = true,
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
                        "#EXTINF:1.9996,\n9.m4s\n");
}

/* Decimals keep their '.' when LC_NUMERIC says ','. The locale is built
 * here with localedef (libc-bin) from a one-category source, so the test
 * needs no locale package; it first proves that printf itself now writes
 * ','. */
static void test_ll_decimal_point_ignores_locale(void **state)
{
    (void)state;
    char dir[] = "/tmp/sluice-locale-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], cmd[512];
    snprintf(path, sizeof(path), "%s/comma.src", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("LC_NUMERIC\ndecimal_point \",\"\nthousands_sep \".\"\ngrouping 3;3\n"
          "END LC_NUMERIC\n",
          f);
    assert_int_equal(fclose(f), 0);
    /* -c: write the locale although the other categories are missing
     * (localedef then exits 1 with warnings). */
    snprintf(cmd, sizeof(cmd), "localedef -c -i %s %s/comma >/dev/null 2>&1", path, dir);
    int rc = system(cmd);
    assert_true(rc != -1);
    assert_int_equal(setenv("LOCPATH", dir, 1), 0);
    assert_non_null(setlocale(LC_NUMERIC, "comma"));
    char probe[16];
    snprintf(probe, sizeof(probe), "%.1f", 2.5);
    assert_string_equal(probe, "2,5");

    hls_segment_t segs[4];
    hls_media_playlist_t pl;
    ll_window(segs, &pl);
    hls_variant_t v = {.bandwidth = 1, .frame_rate = 29.97, .uri = "a.m3u8"};
    hls_master_playlist_t m = {.variants = &v, .nvariants = 1};
    blob_t *b = NULL, *mb = NULL;
    int ret = hls_playlist_render_media(&pl, &b);
    int mret = hls_playlist_render_master(&m, &mb);

    assert_non_null(setlocale(LC_NUMERIC, "C"));
    assert_int_equal(unsetenv("LOCPATH"), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);

    assert_int_equal(ret, 0);
    assert_blob_text(b, LL_HEAD LL_SEGMENTS
                        "#EXT-X-PART:DURATION=0.500,URI=\"14.0.m4s\",INDEPENDENT=YES\n"
                        "#EXT-X-PART:DURATION=0.500,URI=\"14.1.m4s\"\n"
                        "#EXT-X-PART:DURATION=0.500,URI=\"14.2.m4s\"\n"
                        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"14.3.m4s\"\n" LL_REPORTS);
    assert_int_equal(mret, 0);
    assert_blob_text(mb, "#EXTM3U\n#EXT-X-VERSION:7\n"
                         "#EXT-X-STREAM-INF:BANDWIDTH=1,FRAME-RATE=29.970\na.m3u8\n");
}

/* ---- EXT-X-DATERANGE (timed metadata) ------------------------------------ */

/* Quoted-string when the payload may be one (valid UTF-8 without '"', CR,
 * LF or NUL), else a hexadecimal-sequence of its bytes, upper case. */
static void test_daterange_value(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(hls_playlist_daterange_value((const uint8_t *)"hi there", 8, buf,
                                                  sizeof(buf)),
                     10);
    assert_string_equal(buf, "\"hi there\"");
    /* UTF-8 stays quoted ("é"), commas and '=' too. */
    hls_playlist_daterange_value((const uint8_t *)"caf\xc3\xa9,a=b", 9, buf, sizeof(buf));
    assert_string_equal(buf, "\"caf\xc3\xa9,a=b\"");
    hls_playlist_daterange_value((const uint8_t *)"{\"t\":1}", 7, buf, sizeof(buf));
    assert_string_equal(buf, "0x7B2274223A317D");
    hls_playlist_daterange_value((const uint8_t *)"a\nb", 3, buf, sizeof(buf));
    assert_string_equal(buf, "0x610A62");
    hls_playlist_daterange_value((const uint8_t *)"a\rb", 3, buf, sizeof(buf));
    assert_string_equal(buf, "0x610D62");
    hls_playlist_daterange_value((const uint8_t *)"\xff", 1, buf, sizeof(buf));
    assert_string_equal(buf, "0xFF");
    hls_playlist_daterange_value((const uint8_t *)"a\0b", 3, buf, sizeof(buf));
    assert_string_equal(buf, "0x610062");
    hls_playlist_daterange_value((const uint8_t *)"", 0, buf, sizeof(buf));
    assert_string_equal(buf, "\"\"");
    /* Too small a buffer: nothing. */
    assert_int_equal(hls_playlist_daterange_value((const uint8_t *)"abc", 3, buf, 8), 0);
    assert_string_equal(buf, "");
}

/* The DATERANGE lines come after EXT-X-MAP, before the first segment, in
 * the model's order, START-DATE in the EXT-X-PROGRAM-DATE-TIME format. */
static void test_daterange_render(void **state)
{
    (void)state;
    hls_segment_t segs[] = {{.msn = 7, .duration = 2.0, .pdt_ms = 1000}};
    hls_daterange_t dr[] = {
        {.id = "sluice-1", .class_name = "com.sluice.metadata", .start_ms = 1500,
         .payload = (const uint8_t *)"card 1", .payload_len = 6},
        {.id = "sluice-2", .class_name = "com.sluice.metadata", .start_ms = 2999,
         .payload = (const uint8_t *)"\"q\"", .payload_len = 3},
    };
    hls_media_playlist_t pl = {.target_duration = 2,
                               .media_sequence = 7,
                               .map_uri = "init.mp4",
                               .segments = segs,
                               .nsegments = 1,
                               .dateranges = dr,
                               .ndateranges = 2};
    blob_t *b = NULL;
    assert_int_equal(hls_playlist_render_media(&pl, &b), 0);
    assert_blob_text(
        b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n"
           "#EXT-X-MAP:URI=\"init.mp4\"\n"
           "#EXT-X-DATERANGE:ID=\"sluice-1\",CLASS=\"com.sluice.metadata\","
           "START-DATE=\"1970-01-01T00:00:01.500Z\",X-PAYLOAD=\"card 1\"\n"
           "#EXT-X-DATERANGE:ID=\"sluice-2\",CLASS=\"com.sluice.metadata\","
           "START-DATE=\"1970-01-01T00:00:02.999Z\",X-PAYLOAD=0x227122\n"
           "#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:01.000Z\n#EXTINF:2.000,\n7.m4s\n");
}

/* A _HLS_skip=YES update keeps every date range; a v2 one leaves out those
 * that start before the first segment it shows (the client had them) and
 * lists the recently removed ids, tab-separated. */
static void test_daterange_delta(void **state)
{
    (void)state;
    hls_segment_t segs[10];
    hls_media_playlist_t pl;
    hls_daterange_t dr[] = {
        {.id = "sluice-1", .start_ms = PDT0 + 1000, .payload = (const uint8_t *)"a",
         .payload_len = 1}, /* in skipped segment 20 */
        {.id = "sluice-2", .start_ms = PDT0 + 6000, .payload = (const uint8_t *)"b",
         .payload_len = 1}, /* in segment 23, the first shown */
    };
    const char *removed[] = {"sluice-0", "sluice-00"};
    ll_delta(segs, &pl, false);
    pl.dateranges = dr;
    pl.ndateranges = 2;
    pl.removed_dateranges = removed;
    pl.nremoved_dateranges = 2;
    char *text = render_text(&pl);
    assert_non_null(strstr(text, "ID=\"sluice-1\""));
    assert_non_null(strstr(text, "ID=\"sluice-2\""));
    assert_null(strstr(text, "RECENTLY-REMOVED"));
    test_free(text);
    pl.skip_v2 = true;
    text = render_text(&pl);
    assert_null(strstr(text, "ID=\"sluice-1\""));
    assert_non_null(strstr(text, "ID=\"sluice-2\""));
    assert_non_null(strstr(text, "#EXT-X-SKIP:SKIPPED-SEGMENTS=3,"
                                 "RECENTLY-REMOVED-DATERANGES=\"sluice-0\tsluice-00\"\n"));
    test_free(text);
    /* The full playlist has both and no SKIP. */
    pl.skip = 0;
    text = render_text(&pl);
    assert_non_null(strstr(text, "ID=\"sluice-1\""));
    assert_null(strstr(text, "#EXT-X-SKIP"));
    test_free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pdt_format),
        cmocka_unit_test(test_media_live),
        cmocka_unit_test(test_media_ended_and_discontinuity),
        cmocka_unit_test(test_media_vod),
        cmocka_unit_test(test_media_empty),
        cmocka_unit_test(test_media_versioned_maps),
        cmocka_unit_test(test_media_long_window),
        cmocka_unit_test(test_master_av),
        cmocka_unit_test(test_master_audio_only),
        cmocka_unit_test(test_master_captions),
        cmocka_unit_test(test_ll_live),
        cmocka_unit_test(test_ll_ended),
        cmocka_unit_test(test_ll_delta_yes),
        cmocka_unit_test(test_ll_delta_v2),
        cmocka_unit_test(test_ll_delta_matches_full),
        cmocka_unit_test(test_ll_versions),
        cmocka_unit_test(test_ll_ordering),
        cmocka_unit_test(test_ll_attribute_formats),
        cmocka_unit_test(test_ll_off_is_classic),
        cmocka_unit_test(test_ll_decimal_point_ignores_locale),
        cmocka_unit_test(test_daterange_value),
        cmocka_unit_test(test_daterange_render),
        cmocka_unit_test(test_daterange_delta),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
