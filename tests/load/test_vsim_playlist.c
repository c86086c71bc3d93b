/* Unit tests of tests/load/vsim_playlist.c, the viewer simulator's playlist
 * reader: master variants and audio groups, LL-HLS part numbering across
 * segment boundaries, EXT-X-MAP changes at a discontinuity, delta updates,
 * URI resolution, and the limits and malformed inputs it must refuse. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vsim_playlist.h"

static const char master_text[] =
    "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n"
    "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"en\",DEFAULT=NO,AUTOSELECT=YES,URI=\"audio2/index.m3u8\"\n"
    "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",NAME=\"main\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/index.m3u8\"\n"
    "#EXT-X-STREAM-INF:BANDWIDTH=2928000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,AUDIO=\"aac\"\n"
    "720p/index.m3u8\n"
    "#EXT-X-STREAM-INF:BANDWIDTH=928000,CODECS=\"avc1.64001e,mp4a.40.2\",RESOLUTION=640x360,AUDIO=\"aac\"\r\n"
    "360p/index.m3u8\r\n";

static void test_master(void **state)
{
    (void)state;
    vsim_master_t m;
    assert_int_equal(vsim_master_parse(master_text, strlen(master_text), &m), 0);
    assert_int_equal(m.nvariants, 2);
    assert_string_equal(m.variants[0].uri, "720p/index.m3u8");
    assert_int_equal(m.variants[0].bandwidth, 2928000);
    assert_string_equal(m.variants[1].uri, "360p/index.m3u8"); /* CRLF stripped */
    assert_int_equal(m.variants[1].bandwidth, 928000);
    assert_int_equal(m.naudio, 2);
    /* The DEFAULT=YES rendition of the variant's group wins over the first. */
    assert_string_equal(vsim_master_audio_uri(&m, &m.variants[1]), "audio/index.m3u8");

    /* A variant without AUDIO has no audio track. */
    const char *noaudio = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv/index.m3u8";
    assert_int_equal(vsim_master_parse(noaudio, strlen(noaudio), &m), 0);
    assert_null(vsim_master_audio_uri(&m, &m.variants[0]));
}

static void test_master_refuses(void **state)
{
    (void)state;
    vsim_master_t m;
    const char *notm3u = "<html>404</html>\n";
    assert_int_equal(vsim_master_parse(notm3u, strlen(notm3u), &m), -EPROTO);
    const char *novariant = "#EXTM3U\n#EXT-X-VERSION:3\n";
    assert_int_equal(vsim_master_parse(novariant, strlen(novariant), &m), -EPROTO);
    const char *badbw = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=x\nv.m3u8\n";
    assert_int_equal(vsim_master_parse(badbw, strlen(badbw), &m), -EPROTO);
    /* More variants than the cap. */
    char big[8192] = "#EXTM3U\n";
    for (int i = 0; i < VSIM_MAX_VARIANTS + 1; i++)
        strcat(big, "#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n");
    assert_int_equal(vsim_master_parse(big, strlen(big), &m), -EMSGSIZE);
    /* A URI longer than VSIM_URI_MAX. */
    char *longuri = malloc(VSIM_URI_MAX + 64);
    strcpy(longuri, "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n");
    size_t n = strlen(longuri);
    memset(longuri + n, 'a', VSIM_URI_MAX + 10);
    assert_int_equal(vsim_master_parse(longuri, n + VSIM_URI_MAX + 10, &m), -EMSGSIZE);
    free(longuri);
}

/* What sluice renders: two complete segments (the first with its parts no
 * longer listed), one with parts, parts of the segment in progress. */
static const char ll_text[] =
    "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n"
    "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.002\n"
    "#EXT-X-PART-INF:PART-TARGET=0.334\n"
    "#EXT-X-MEDIA-SEQUENCE:40\n"
    "#EXT-X-MAP:URI=\"init.mp4\"\n"
    "#EXT-X-PROGRAM-DATE-TIME:2026-11-22T08:00:00.000Z\n"
    "#EXTINF:2.000,\n40.m4s\n"
    "#EXT-X-PROGRAM-DATE-TIME:2026-11-22T08:00:02.000Z\n"
    "#EXT-X-PART:DURATION=1.000,URI=\"41.0.m4s\",INDEPENDENT=YES\n"
    "#EXT-X-PART:DURATION=1.000,URI=\"41.1.m4s\"\n"
    "#EXTINF:2.000,\n41.m4s\n"
    "#EXT-X-PART:DURATION=0.334,URI=\"42.0.m4s\",INDEPENDENT=YES\n"
    "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"42.1.m4s\"\n"
    "#EXT-X-RENDITION-REPORT:URI=\"../audio/index.m3u8\",LAST-MSN=42,LAST-PART=0\n";

static void test_media_ll(void **state)
{
    (void)state;
    vsim_media_t m = {0};
    assert_int_equal(vsim_media_parse(ll_text, strlen(ll_text), &m), 0);
    assert_true(vsim_media_is_ll(&m));
    assert_int_equal(m.target_duration, 2);
    assert_int_equal(m.media_sequence, 40);
    assert_false(m.endlist);
    assert_int_equal(m.nitems, 5);
    /* 40.m4s: a whole segment without listed parts: wanted in LL mode. */
    assert_int_equal(m.items[0].msn, 40);
    assert_int_equal(m.items[0].part, VSIM_PART_WHOLE);
    assert_false(m.items[0].has_parts);
    assert_true(vsim_item_wanted(&m.items[0], true));
    assert_string_equal(vsim_media_uri(&m, &m.items[0]), "40.m4s");
    assert_string_equal(vsim_media_map(&m, m.items[0].map), "init.mp4");
    /* 41.0, 41.1 (the last part of a completed segment), 41.m4s */
    assert_int_equal(m.items[1].msn, 41);
    assert_int_equal(m.items[1].part, 0);
    assert_true(m.items[1].independent);
    assert_false(m.items[1].last_in_segment);
    assert_int_equal(m.items[2].part, 1);
    assert_true(m.items[2].last_in_segment);
    assert_string_equal(vsim_media_uri(&m, &m.items[2]), "41.1.m4s");
    assert_true(m.items[3].has_parts);
    assert_false(vsim_item_wanted(&m.items[3], true));
    assert_true(vsim_item_wanted(&m.items[3], false));
    assert_false(vsim_item_wanted(&m.items[2], false));
    /* 42.0: a part of the segment in progress */
    assert_int_equal(m.items[4].msn, 42);
    assert_int_equal(m.items[4].part, 0);
    assert_false(m.items[4].last_in_segment);
    assert_true(m.items[4].duration > 0.33 && m.items[4].duration < 0.34);
    vsim_media_deinit(&m);
}

static void test_media_classic_discontinuity_and_end(void **state)
{
    (void)state;
    const char *text = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:7\n"
                       "#EXT-X-DISCONTINUITY-SEQUENCE:1\n#EXT-X-MAP:URI=\"init.mp4\"\n"
                       "#EXTINF:4.0,\n7.m4s\n"
                       "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init-123.mp4\"\n"
                       "#EXTINF:3.5,\n8.m4s\n#EXTINF:4,\n9.m4s\n#EXT-X-ENDLIST";
    vsim_media_t m = {0};
    assert_int_equal(vsim_media_parse(text, strlen(text), &m), 0);
    assert_false(vsim_media_is_ll(&m));
    assert_true(m.endlist);
    assert_int_equal(m.nitems, 3);
    assert_false(m.items[0].discontinuity);
    assert_true(m.items[1].discontinuity);
    assert_false(m.items[2].discontinuity);
    assert_int_equal(m.items[1].msn, 8);
    assert_string_equal(vsim_media_map(&m, m.items[0].map), "init.mp4");
    assert_string_equal(vsim_media_map(&m, m.items[1].map), "init-123.mp4");
    assert_string_equal(vsim_media_map(&m, m.items[2].map), "init-123.mp4");
    assert_true(m.items[1].duration == 3.5);
    vsim_media_deinit(&m);
}

static void test_media_skip(void **state)
{
    (void)state;
    const char *text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:100\n"
                       "#EXT-X-SKIP:SKIPPED-SEGMENTS=5\n#EXTINF:2,\n105.m4s\n";
    vsim_media_t m = {0};
    assert_int_equal(vsim_media_parse(text, strlen(text), &m), 0);
    assert_int_equal(m.nitems, 1);
    assert_int_equal(m.items[0].msn, 105);
    vsim_media_deinit(&m);
}

static void test_media_refuses(void **state)
{
    (void)state;
    vsim_media_t m = {0};
    static const char *const bad[] = {
        "",
        "#EXTM3\n",
        "#EXTM3U\nseg.m4s\n",                                  /* URI without EXTINF */
        "#EXTM3U\n#EXTINF:x,\nseg.m4s\n",                      /* bad duration */
        "#EXTM3U\n#EXT-X-TARGETDURATION:99999\n",              /* absurd target */
        "#EXTM3U\n#EXT-X-PART:DURATION=1,URI=\"a.m4s\n",       /* unterminated quote */
        "#EXTM3U\n#EXT-X-PART:DURATION=1\n",                   /* no URI */
        "#EXTM3U\n#EXT-X-MAP:BYTERANGE=\"1@0\"\n",             /* no URI */
        "#EXTM3U\n#EXTINF:1,\na.m4s\n#EXT-X-MEDIA-SEQUENCE:3\n", /* sequence after a segment */
        "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:-4\n",
        "#EXTM3U\n#EXT-X-PART-INF:PART-TARGET=nan\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(vsim_media_parse(bad[i], strlen(bad[i]), &m), -EPROTO);
        vsim_media_deinit(&m);
    }
    /* A NUL inside a URI is refused, not truncated. */
    const char nul[] = "#EXTM3U\n#EXTINF:1,\na\0b.m4s\n";
    assert_int_equal(vsim_media_parse(nul, sizeof(nul) - 1, &m), -EPROTO);
    vsim_media_deinit(&m);
    /* Over the size cap. */
    size_t big = VSIM_PLAYLIST_MAX_BYTES + 1;
    char *text = malloc(big);
    memset(text, '\n', big);
    memcpy(text, "#EXTM3U\n", 8);
    assert_int_equal(vsim_media_parse(text, big, &m), -EMSGSIZE);
    vsim_media_deinit(&m);
    /* More items than the cap (but under the byte cap). */
    size_t per = strlen("#EXTINF:1,\na\n");
    size_t len = 8 + per * (VSIM_MAX_ITEMS + 1);
    text = realloc(text, len);
    memcpy(text, "#EXTM3U\n", 8);
    for (size_t i = 0; i < VSIM_MAX_ITEMS + 1; i++)
        memcpy(text + 8 + i * per, "#EXTINF:1,\na\n", per);
    assert_int_equal(vsim_media_parse(text, len, &m), -EMSGSIZE);
    vsim_media_deinit(&m);
    free(text);
}

/* A struct that held a parse is reused: its storage is kept, its content is
 * the new playlist's only, also after a failed parse in between. */
static void test_media_reuse(void **state)
{
    (void)state;
    vsim_media_t m = {0};
    assert_int_equal(vsim_media_parse(ll_text, strlen(ll_text), &m), 0);
    assert_int_equal(m.nitems, 5);
    const char *small = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nonly.m4s\n#EXT-X-ENDLIST\n";
    assert_int_equal(vsim_media_parse(small, strlen(small), &m), 0);
    assert_int_equal(m.nitems, 1);
    assert_false(vsim_media_is_ll(&m));
    assert_true(m.endlist);
    assert_int_equal(m.nmaps, 0);
    assert_string_equal(vsim_media_uri(&m, &m.items[0]), "only.m4s");
    assert_int_equal(vsim_media_parse("x", 1, &m), -EPROTO);
    assert_int_equal(vsim_media_parse(ll_text, strlen(ll_text), &m), 0);
    assert_int_equal(m.nitems, 5);
    assert_false(m.endlist);
    assert_string_equal(vsim_media_uri(&m, &m.items[4]), "42.0.m4s");
    vsim_media_deinit(&m);
}

static void test_resolve(void **state)
{
    (void)state;
    char out[256];
    const char *base = "http://127.0.0.1:8080/hls/demo/360p/index.m3u8?_HLS_msn=4";
    assert_int_equal(vsim_resolve(base, "4.1.m4s", out, sizeof(out)), 0);
    assert_string_equal(out, "http://127.0.0.1:8080/hls/demo/360p/4.1.m4s");
    assert_int_equal(vsim_resolve(base, "../audio/index.m3u8", out, sizeof(out)), 0);
    assert_string_equal(out, "http://127.0.0.1:8080/hls/demo/360p/../audio/index.m3u8");
    assert_int_equal(vsim_resolve(base, "/hls/x/init.mp4", out, sizeof(out)), 0);
    assert_string_equal(out, "http://127.0.0.1:8080/hls/x/init.mp4");
    assert_int_equal(vsim_resolve(base, "http://elsewhere/a", out, sizeof(out)), 0);
    assert_string_equal(out, "http://elsewhere/a");
    assert_int_equal(vsim_resolve("http://h:1", "a.m3u8", out, sizeof(out)), 0);
    assert_string_equal(out, "http://h:1/a.m3u8");
    assert_int_equal(vsim_resolve(base, "a-rather-long-name.m4s", out, 40), -EMSGSIZE);
}

static void test_positions(void **state)
{
    (void)state;
    assert_true(vsim_pos_cmp(4, 2, 5, 0) < 0);
    assert_true(vsim_pos_cmp(5, 0, 4, VSIM_PART_WHOLE) > 0);
    assert_true(vsim_pos_cmp(4, VSIM_PART_WHOLE, 4, 7) > 0);
    assert_int_equal(vsim_pos_cmp(4, 3, 4, 3), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_master),
        cmocka_unit_test(test_master_refuses),
        cmocka_unit_test(test_media_ll),
        cmocka_unit_test(test_media_classic_discontinuity_and_end),
        cmocka_unit_test(test_media_skip),
        cmocka_unit_test(test_media_refuses),
        cmocka_unit_test(test_media_reuse),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_positions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
