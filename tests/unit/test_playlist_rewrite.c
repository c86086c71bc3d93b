/* Unit tests for origin/playlist_rewrite.c: every URI of a master and of an
 * LL-HLS media playlist gets the token, nothing else changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "playlist_rewrite_internal.h"

static const char param[] = "token=1900000000~~~SIG";

/* Rewrites s and checks the size contract; returns a malloc'd C string. */
static char *rw(const char *s)
{
    size_t len = strlen(s);
    size_t need = playlist_rewrite(s, len, param, sizeof(param) - 1, NULL, 0);
    char *out = malloc(need + 1);
    assert_non_null(out);
    assert_int_equal(playlist_rewrite(s, len, param, sizeof(param) - 1, out, need), need);
    out[need] = '\0';
    /* a short buffer gets a prefix of the same bytes */
    if (need > 3) {
        char part[3];
        assert_int_equal(playlist_rewrite(s, len, param, sizeof(param) - 1, part, 3), need);
        assert_memory_equal(part, out, 3);
    }
    return out;
}

static void expect(const char *in, const char *want)
{
    char *got = rw(in);
    assert_string_equal(got, want);
    free(got);
}

static void test_master(void **state)
{
    (void)state;
    expect("#EXTM3U\n"
           "#EXT-X-VERSION:7\n"
           "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"a, b\",URI=\"audio/index.m3u8\"\n"
           "#EXT-X-STREAM-INF:BANDWIDTH=912845,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"audio\"\n"
           "360p/index.m3u8\n"
           "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"360p/iframe.m3u8\"\n",
           "#EXTM3U\n"
           "#EXT-X-VERSION:7\n"
           "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"a, b\","
           "URI=\"audio/index.m3u8?token=1900000000~~~SIG\"\n"
           "#EXT-X-STREAM-INF:BANDWIDTH=912845,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"audio\"\n"
           "360p/index.m3u8?token=1900000000~~~SIG\n"
           "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"360p/iframe.m3u8?token=1900000000~~~SIG\"\n");
}

static void test_ll_media(void **state)
{
    (void)state;
    expect("#EXTM3U\r\n"
           "#EXT-X-TARGETDURATION:2\r\n"
           "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0,CAN-SKIP-UNTIL=12\r\n"
           "#EXT-X-PART-INF:PART-TARGET=0.333\r\n"
           "#EXT-X-MAP:URI=\"init.mp4\"\r\n"
           "#EXT-X-SKIP:SKIPPED-SEGMENTS=3\r\n"
           "#EXT-X-PROGRAM-DATE-TIME:2026-11-22T03:46:45.836Z\r\n"
           "#EXT-X-PART:DURATION=0.333,URI=\"7.0.m4s\",INDEPENDENT=YES\r\n"
           "#EXTINF:2.000,\r\n"
           "7.m4s\r\n"
           "#EXT-X-PART:DURATION=0.333,URI=\"8.0.m4s\"\r\n"
           "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"8.1.m4s\"\r\n"
           "#EXT-X-RENDITION-REPORT:URI=\"../480p/index.m3u8\",LAST-MSN=8,LAST-PART=0\r\n",
           "#EXTM3U\r\n"
           "#EXT-X-TARGETDURATION:2\r\n"
           "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0,CAN-SKIP-UNTIL=12\r\n"
           "#EXT-X-PART-INF:PART-TARGET=0.333\r\n"
           "#EXT-X-MAP:URI=\"init.mp4?token=1900000000~~~SIG\"\r\n"
           "#EXT-X-SKIP:SKIPPED-SEGMENTS=3\r\n"
           "#EXT-X-PROGRAM-DATE-TIME:2026-11-22T03:46:45.836Z\r\n"
           "#EXT-X-PART:DURATION=0.333,URI=\"7.0.m4s?token=1900000000~~~SIG\",INDEPENDENT=YES\r\n"
           "#EXTINF:2.000,\r\n"
           "7.m4s?token=1900000000~~~SIG\r\n"
           "#EXT-X-PART:DURATION=0.333,URI=\"8.0.m4s?token=1900000000~~~SIG\"\r\n"
           "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"8.1.m4s?token=1900000000~~~SIG\"\r\n"
           "#EXT-X-RENDITION-REPORT:URI=\"../480p/index.m3u8?token=1900000000~~~SIG\","
           "LAST-MSN=8,LAST-PART=0\r\n");
}

static void test_queries_fragments_and_absolute(void **state)
{
    (void)state;
    expect("a.m4s?x=1\n"
           "b.m4s#t=1\n"
           "c.m4s?x=1#frag\n"
           "https://cdn.example/d.m4s\n"
           "//other.host/e.m4s\n"
           "data:text/plain,hi\n"
           "  f.m4s  \n"
           "#EXT-X-MAP:URI=\"http://x/init.mp4\"\n"
           "#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\"\n"
           "#EXTINF:2.0,URI=\"not-an-attribute\"\n"
           "#EXT-X-MAP:BYTERANGE=\"1@0\",URI=\"i.mp4\",URI=\"j.mp4\"\n"
           "#EXT-X-MAP:URI=\"unterminated\n"
           "#EXT-X-PART:DURATION=1,XURI=\"k\",URI=\"l.m4s\"\n"
           "#EXT-X-PART:junk here,URI=\"m.m4s\"\n"
           "last.m4s",
           "a.m4s?x=1&token=1900000000~~~SIG\n"
           "b.m4s?token=1900000000~~~SIG#t=1\n"
           "c.m4s?x=1&token=1900000000~~~SIG#frag\n"
           "https://cdn.example/d.m4s\n"
           "//other.host/e.m4s\n"
           "data:text/plain,hi\n"
           "  f.m4s?token=1900000000~~~SIG  \n"
           "#EXT-X-MAP:URI=\"http://x/init.mp4\"\n"
           "#EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\"\n"
           "#EXTINF:2.0,URI=\"not-an-attribute\"\n"
           "#EXT-X-MAP:BYTERANGE=\"1@0\",URI=\"i.mp4?token=1900000000~~~SIG\",URI=\"j.mp4\"\n"
           "#EXT-X-MAP:URI=\"unterminated\n"
           "#EXT-X-PART:DURATION=1,XURI=\"k\",URI=\"l.m4s?token=1900000000~~~SIG\"\n"
           "#EXT-X-PART:junk here,URI=\"m.m4s\"\n"
           "last.m4s?token=1900000000~~~SIG");
}

static void test_empty_and_blank(void **state)
{
    (void)state;
    expect("", "");
    expect("\n\n\r\n", "\n\n\r\n");
    assert_int_equal(playlist_rewrite("x", 1, param, sizeof(param) - 1, NULL, 0),
                     1 + 1 + sizeof(param) - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_master),
        cmocka_unit_test(test_ll_media),
        cmocka_unit_test(test_queries_fragments_and_absolute),
        cmocka_unit_test(test_empty_and_blank),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
