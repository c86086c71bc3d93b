/* Unit tests for ingest/meter.c, driven by a simulated clock: sliding-window
 * bit rate and fps of a steady publisher, the spread of an unsteady one, a
 * stalled publisher's rates falling to zero, late and dropped frames, codec
 * and size from real configuration records, and the shared table across a
 * takeover. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "meter_internal.h"
#include "test_util.h"

/* x264 1280x720 high, 30 fps VUI timing (tests/unit/test_codec_config.c). */
static const char avcc_hex[] =
    "0164001fffe1001a6764001facd9405005bb0110000003001000000303c0f183196001000468ef8fcbfdf8f800";
static const uint8_t asc[] = {0x11, 0x90}; /* AAC-LC 48 kHz stereo */

static uint8_t payload[20000];

static void configs(ingest_meters_t *t, ingest_meter_t *m, int64_t now)
{
    uint8_t avcc[64];
    size_t n = unhex(avcc_hex, avcc, sizeof(avcc));
    ingest_meter_media(t, m, MEDIA_PACKET_VIDEO_CONFIG, MEDIA_CODEC_H264, 0, avcc, n, now);
    ingest_meter_media(t, m, MEDIA_PACKET_AUDIO_CONFIG, MEDIA_CODEC_AAC, 0, asc, sizeof(asc), now);
}

/* Feeds [from, to) ms of 30 fps video of vbytes per frame (vbytes_odd in odd
 * seconds) and 48 kHz AAC frames of 400 bytes; dts follows the clock. */
static void feed(ingest_meters_t *t, ingest_meter_t *m, int64_t start, int64_t from, int64_t to,
                 size_t vbytes, size_t vbytes_odd)
{
    int64_t nv = (from - start) * 30 / 1000, na = (from - start) * 48 / 1024;
    for (int64_t now = from; now < to; now++) {
        while ((nv * 1000) / 30 <= now - start) {
            size_t b = ((now / 1000) & 1) ? vbytes_odd : vbytes;
            ingest_meter_media(t, m, MEDIA_PACKET_VIDEO, MEDIA_CODEC_H264, now - start, payload, b,
                               now);
            nv++;
        }
        while ((na * 1024) / 48 <= now - start) {
            ingest_meter_media(t, m, MEDIA_PACKET_AUDIO, MEDIA_CODEC_AAC, now - start, payload,
                               400, now);
            na++;
        }
    }
}

static void test_steady_publisher(void **state)
{
    (void)state;
    ingest_meters_t t;
    ingest_meters_init(&t);
    ingest_meter_t m;
    int64_t start = 100500; /* mid-second: the partial first second never counts */
    ingest_meter_start(&t, &m, 7, "shop", "203.0.113.5:4242", start);
    ingest_stream_stats_t st;
    assert_int_equal(ingest_meters_get(&t, "shop", &st, start), 0);
    assert_int_equal(st.window_s, 0);
    configs(&t, &m, start);
    feed(&t, &m, start, start, start + 7000, 8000, 8000);
    assert_int_equal(ingest_meters_get(&t, "shop", &st, start + 7000), 0);
    /* 30 x 8000 x 8 = 1920 kb/s video + 46.875 x 400 x 8 = 150 kb/s audio */
    assert_int_equal(st.window_s, INGEST_METER_WINDOW);
    assert_true(fabs(st.bitrate_kbps - 2070) < 40);
    assert_true(fabs(st.fps - 30) < 0.5);
    assert_true(st.bitrate_stddev_kbps < 40);
    assert_int_equal(st.width, 1280);
    assert_int_equal(st.height, 720);
    assert_string_equal(st.video_codec, "h264");
    assert_string_equal(st.audio_codec, "aac");
    assert_true(fabs(st.nominal_fps - 30) < 0.01);
    /* Counters are as of the table's copy, made when a packet opens a new
     * second (the one at 107.000 s included): 6.5 s of frames, plus one. */
    assert_int_equal(st.video_frames, 196);
    assert_int_equal(st.late_frames, 0);
    assert_int_equal(st.uptime_ms, 7000);
    assert_string_equal(st.peer, "203.0.113.5:4242");
    assert_string_equal(st.stream_id, "shop");

    /* The publisher goes quiet: its silent seconds count as zero. */
    assert_int_equal(ingest_meters_get(&t, "shop", &st, start + 10000), 0);
    assert_true(st.bitrate_kbps < 2070 * 0.5);
    assert_true(st.fps < 15);
    assert_int_equal(ingest_meters_get(&t, "shop", &st, start + 14000), 0);
    assert_true(st.bitrate_kbps == 0 && st.fps == 0);

    ingest_meter_end(&t, &m);
    assert_int_equal(ingest_meters_get(&t, "shop", &st, start + 14000), -ENOENT);
    ingest_meters_deinit(&t);
}

static void test_unsteady_bitrate_has_a_spread(void **state)
{
    (void)state;
    ingest_meters_t t;
    ingest_meters_init(&t);
    ingest_meter_t m;
    int64_t start = 200000;
    ingest_meter_start(&t, &m, 1, "s", "p", start);
    /* 4000 and 12000 bytes a frame in alternate seconds: 960 / 2880 kb/s. */
    feed(&t, &m, start, start, start + 8000, 4000, 12000);
    ingest_stream_stats_t st;
    assert_int_equal(ingest_meters_get(&t, "s", &st, start + 8000), 0);
    assert_true(st.bitrate_stddev_kbps > 800 && st.bitrate_stddev_kbps < 1100);
    ingest_meter_end(&t, &m);
    ingest_meters_deinit(&t);
}

static void test_late_and_dropped_frames(void **state)
{
    (void)state;
    ingest_meters_t t;
    ingest_meters_init(&t);
    ingest_meter_t m;
    ingest_meter_start(&t, &m, 1, "s", "p", 0);
    ingest_meter_media(&t, &m, MEDIA_PACKET_VIDEO, MEDIA_CODEC_H264, 0, payload, 10, 0);
    ingest_meter_media(&t, &m, MEDIA_PACKET_AUDIO, MEDIA_CODEC_AAC, 500, payload, 10, 10);
    ingest_meter_media(&t, &m, MEDIA_PACKET_VIDEO, MEDIA_CODEC_H264, 33, payload, 10, 20);
    /* Audio ahead of video is not late: each track has its own clock. */
    assert_int_equal(m.late_frames, 0);
    ingest_meter_media(&t, &m, MEDIA_PACKET_VIDEO, MEDIA_CODEC_H264, 20, payload, 10, 30);
    assert_int_equal(m.late_frames, 1); /* backwards */
    ingest_meter_media(&t, &m, MEDIA_PACKET_VIDEO, MEDIA_CODEC_H264, 1020, payload, 10, 40);
    assert_int_equal(m.late_frames, 1); /* 1000 ms: not yet a jump */
    ingest_meter_media(&t, &m, MEDIA_PACKET_VIDEO, MEDIA_CODEC_H264, 2100, payload, 10, 50);
    assert_int_equal(m.late_frames, 2); /* jump */
    ingest_meter_dropped(&m);
    ingest_meter_dropped(&m);
    /* Published at the next second (or a config). */
    ingest_meter_media(&t, &m, MEDIA_PACKET_AUDIO, MEDIA_CODEC_AAC, 1400, payload, 10, 1000);
    ingest_stream_stats_t st;
    assert_int_equal(ingest_meters_get(&t, "s", &st, 1000), 0);
    assert_int_equal(st.late_frames, 2);
    assert_int_equal(st.dropped_frames, 2);
    assert_int_equal(st.video_frames, 5);
    assert_int_equal(st.audio_frames, 2); /* the copy includes the packet that made it */
    ingest_meter_end(&t, &m);
    ingest_meters_deinit(&t);
}

static void test_table_and_takeover(void **state)
{
    (void)state;
    ingest_meters_t t;
    ingest_meters_init(&t);
    ingest_meter_t a, b, c;
    ingest_meter_start(&t, &a, 1, "one", "p1", 0);
    ingest_meter_start(&t, &b, 2, "two", "p2", 0);
    ingest_stream_stats_t *list;
    size_t n;
    assert_int_equal(ingest_meters_list(&t, &list, &n, 0), 0);
    assert_int_equal(n, 2);
    free(list);
    /* A new publisher takes "one" over; the old one's end must not remove it. */
    ingest_meter_start(&t, &c, 3, "one", "p3", 10);
    ingest_meter_end(&t, &a);
    ingest_stream_stats_t st;
    assert_int_equal(ingest_meters_get(&t, "one", &st, 20), 0);
    assert_string_equal(st.peer, "p3");
    ingest_meter_end(&t, &c);
    ingest_meter_end(&t, &c); /* twice: nothing */
    ingest_meter_end(&t, &b);
    assert_int_equal(ingest_meters_list(&t, &list, &n, 30), 0);
    assert_int_equal(n, 0);
    assert_null(list);
    /* Packets of a meter that is not publishing are ignored. */
    ingest_meter_media(&t, &b, MEDIA_PACKET_VIDEO, MEDIA_CODEC_H264, 0, payload, 10, 5000);
    assert_int_equal(ingest_meters_get(&t, "two", &st, 5000), -ENOENT);
    ingest_meters_deinit(&t);
}

static void test_protocol_and_srt_figures(void **state)
{
    (void)state;
    ingest_meters_t t;
    ingest_meters_init(&t);
    ingest_meter_t r, s;
    ingest_meter_start(&t, &r, 1, "rtmp-stream", "p1", 0);
    ingest_meter_start(&t, &s, 2, "srt-stream", "p2", 0);
    ingest_stream_stats_t st;
    /* Before the protocol is said: "rtmp" (what every publish was). */
    assert_int_equal(ingest_meters_get(&t, "rtmp-stream", &st, 10), 0);
    assert_string_equal(st.protocol, "rtmp");
    ingest_meter_protocol(&t, &r, "rtmps");
    ingest_meter_protocol(&t, &s, "srt");
    assert_int_equal(ingest_meters_get(&t, "rtmp-stream", &st, 10), 0);
    assert_string_equal(st.protocol, "rtmps");
    assert_false(st.has_srt);
    assert_int_equal(ingest_meters_get(&t, "srt-stream", &st, 10), 0);
    assert_string_equal(st.protocol, "srt");
    assert_false(st.has_srt); /* no figures before the first second */
    ingest_srt_stats_t f = {.rtt_ms = 160.5, .packets_received = 900, .packets_lost = 30,
                            .packets_retransmitted = 28, .packets_dropped = 2,
                            .recv_buffer_ms = 610, .recv_buffer_bytes = 90000,
                            .latency_ms = 640, .recv_rate_mbps = 1.5};
    ingest_meter_srt(&t, &s, &f);
    assert_int_equal(ingest_meters_get(&t, "srt-stream", &st, 1000), 0);
    assert_true(st.has_srt);
    assert_true(st.srt.rtt_ms > 160 && st.srt.rtt_ms < 161);
    assert_int_equal(st.srt.packets_lost, 30);
    assert_int_equal(st.srt.packets_retransmitted, 28);
    assert_int_equal(st.srt.packets_dropped, 2);
    assert_int_equal(st.srt.latency_ms, 640);
    assert_int_equal(st.srt.recv_buffer_ms, 610);
    /* An ended meter takes no figures. */
    ingest_meter_end(&t, &s);
    ingest_meter_srt(&t, &s, &f);
    assert_int_equal(ingest_meters_get(&t, "srt-stream", &st, 1000), -ENOENT);
    ingest_meter_end(&t, &r);
    ingest_meters_deinit(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steady_publisher),
        cmocka_unit_test(test_unsteady_bitrate_has_a_spread),
        cmocka_unit_test(test_late_and_dropped_frames),
        cmocka_unit_test(test_table_and_takeover),
        cmocka_unit_test(test_protocol_and_srt_figures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
