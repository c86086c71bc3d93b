/*
 * Tests for output/output_def.c: the destination URL check (accepted and
 * refused forms, reasons that never quote the URL), masking of every secret
 * (RTMP keys, userinfo, SRT streamid/passphrase and unknown keys), the
 * rendition and id grammars, and the registry text (round trip, refusals of
 * bad and oversized text).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "output_def.h"

static void accept(const char *url, output_scheme_t want)
{
    output_scheme_t s = 0;
    char why[256] = "";
    int rc = output_url_check(url, &s, why, sizeof(why));
    if (rc != 0)
        fail_msg("refused %s: %s", url, why);
    assert_int_equal(s, want);
}

/* Refused with a reason that names the url and quotes none of it. */
static void refuse(const char *url, const char *secret)
{
    char why[256] = "";
    assert_int_equal(output_url_check(url, NULL, why, sizeof(why)), -EINVAL);
    assert_non_null(strstr(why, "url"));
    if (secret)
        assert_null(strstr(why, secret));
    for (const char *p = why; *p; p++)
        assert_true(*p >= 0x20 && *p < 0x7f);
}

static void test_url_accept(void **state)
{
    (void)state;
    accept("rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl-mnop", OUTPUT_SCHEME_RTMP);
    accept("rtmp://a.rtmp.youtube.com/live2", OUTPUT_SCHEME_RTMP);
    accept("rtmps://live-api-s.facebook.com:443/rtmp/FB-1-0-Ab?s_bl=1&s_sc=2",
           OUTPUT_SCHEME_RTMPS);
    accept("rtmp://live.twitch.tv/app/live_123_abc", OUTPUT_SCHEME_RTMP);
    accept("RTMP://127.0.0.1:1935/live/key", OUTPUT_SCHEME_RTMP);
    accept("rtmp://user:pass@example.com/app/key", OUTPUT_SCHEME_RTMP);
    accept("rtmp://[::1]:1935/live/key", OUTPUT_SCHEME_RTMP);
    accept("rtmp://[2001:db8::1]/live/key", OUTPUT_SCHEME_RTMP);
    accept("rtmp://host/app?token=x", OUTPUT_SCHEME_RTMP);
    accept("srt://127.0.0.1:9000", OUTPUT_SCHEME_SRT);
    accept("srt://host.example:9000?streamid=abc&passphrase=0123456789&latency=200",
           OUTPUT_SCHEME_SRT);
    accept("srt://host:9000/?streamid=#!::r=live/KEY,m=publish", OUTPUT_SCHEME_SRT);
    /* 1023 bytes is the longest. */
    char long_url[OUTPUT_URL_MAX];
    memset(long_url, 'k', sizeof(long_url) - 1);
    long_url[sizeof(long_url) - 1] = '\0';
    memcpy(long_url, "rtmp://h/app/", 13);
    accept(long_url, OUTPUT_SCHEME_RTMP);
}

static void test_url_refuse(void **state)
{
    (void)state;
    assert_int_equal(output_url_check(NULL, NULL, NULL, 0), -EINVAL);
    refuse("", NULL);
    refuse("http://example.com/live/SECRETKEY", "SECRETKEY");
    refuse("rtmp:/host/app/key", NULL);
    refuse("rtmp://", NULL);
    refuse("rtmp:///app/SECRETKEY", "SECRETKEY");
    refuse("rtmp://host", NULL);
    refuse("rtmp://host/", NULL);
    refuse("rtmp://host//SECRETKEY", "SECRETKEY");
    refuse("rtmp://host?x=SECRET", "SECRET");
    refuse("rtmp://host:0/app/SECRETKEY", "SECRETKEY");
    refuse("rtmp://host:65536/app/SECRETKEY", "SECRETKEY");
    refuse("rtmp://host:12a/app/SECRETKEY", "SECRETKEY");
    refuse("rtmp://host:/app/SECRETKEY", "SECRETKEY");
    refuse("rtmp://ho$t/app/SECRETKEY", "SECRETKEY");
    refuse("rtmp://user:SECRET@/app/key", "SECRET");
    refuse("rtmp://[::1/app/key", NULL);
    refuse("rtmp://[::1]x/app/key", NULL);
    refuse("rtmp://host/app/SECRET KEY", "SECRET");
    refuse("rtmp://host/app/SECRET\tKEY", "SECRET");
    refuse("rtmp://host/app/SECRET\"KEY", "SECRET");
    refuse("rtmp://host/app/SECRET\\KEY", "SECRET");
    refuse("rtmp://host/app/SECRET\xc3\xa9", "SECRET");
    refuse("srt://host?streamid=SECRET", "SECRET");
    refuse("srt://host:9000/path?streamid=SECRET", "SECRET");
    refuse("srt://user:SECRET@host:9000", "SECRET");
    char long_url[OUTPUT_URL_MAX + 1];
    memset(long_url, 'k', sizeof(long_url) - 1);
    long_url[sizeof(long_url) - 1] = '\0';
    memcpy(long_url, "rtmp://h/app/", 13);
    refuse(long_url, "kkkk");
}

static void masked(const char *url, const char *want)
{
    char out[OUTPUT_URL_MAX];
    output_url_mask(url, out, sizeof(out));
    assert_string_equal(out, want);
}

static void test_url_mask(void **state)
{
    (void)state;
    masked("rtmp://a.rtmp.youtube.com/live2/abcd-efgh", "rtmp://a.rtmp.youtube.com/live2/****");
    masked("rtmp://a.rtmp.youtube.com/live2", "rtmp://a.rtmp.youtube.com/live2");
    masked("rtmp://h/app/k1/k2?x=y", "rtmp://h/app/****");
    masked("rtmps://live-api-s.facebook.com:443/rtmp/FB-1?s_bl=1&s_sc=2",
           "rtmps://live-api-s.facebook.com:443/rtmp/****");
    masked("rtmp://h/app?token=SECRET&x", "rtmp://h/app?token=****&****");
    masked("rtmp://h/app?token=SECRET/KEY", "rtmp://h/app?token=****");
    masked("rtmp://user:pass@h:1935/app/key", "rtmp://****@h:1935/app/****");
    masked("RTMP://h/app/key", "RTMP://h/app/****");
    masked("srt://h:9000?streamid=SECRET&passphrase=PASS&latency=200&mode=caller",
           "srt://h:9000?streamid=****&passphrase=****&latency=200&mode=caller");
    masked("srt://h:9000?unknown=SECRET&bare&latency", "srt://h:9000?unknown=****&****&latency");
    masked("srt://h:9000/?streamid=#!::r=live/KEY,m=publish", "srt://h:9000/?streamid=****");
    masked("srt://h:9000/path/SECRET", "srt://h:9000/****");
    masked("srt://u:SECRET@h:9000", "srt://****@h:9000");
    masked("srt://h:9000", "srt://h:9000");
    /* Not one of ours: only the scheme and host survive. */
    masked("http://h/SECRET", "http://h/****");
    masked("no scheme SECRET", "****");
    masked("://SECRET", "****");
    masked(NULL, "");
    masked("rtmp://h\x01x/app/key", "rtmp://h?x/app/****");
    /* Truncated, always terminated, never more than cap - 1 bytes. */
    char small[12];
    memset(small, 'X', sizeof(small));
    output_url_mask("rtmp://host.example/app/SECRET", small, sizeof(small));
    assert_string_equal(small, "rtmp://host");
    char one[1] = {'X'};
    output_url_mask("rtmp://h/a/k", one, 1);
    assert_int_equal(one[0], '\0');
}

static void scrubbed(const char *text, const char *url, const char *want)
{
    char out[512];
    output_text_scrub(text, url, out, sizeof(out));
    assert_string_equal(out, want);
}

static void test_text_scrub(void **state)
{
    (void)state;
    const char *yt = "rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl";
    scrubbed("cannot open rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl: refused", yt,
             "cannot open rtmp://a.rtmp.youtube.com/live2/****: refused");
    scrubbed("stream abcd-efgh-ijkl not found", yt, "stream **** not found");
    scrubbed("no secret here, live2 ok", yt, "no secret here, live2 ok");
    const char *fb = "rtmps://u:pw@h/rtmp/FB-123-0-Ab?s_bl=1&s_sc=XYZW1";
    scrubbed("key FB-123-0-Ab, sig XYZW1, user u", fb, "key ****, sig ****, user u");
    const char *srt = "srt://h:9000?streamid=#!::r=live/KEY1,m=publish&passphrase=verysecret1"
                      "&latency=200";
    scrubbed("bad passphrase verysecret1 for #!::r=live/KEY1,m=publish (latency 200)", srt,
             "bad passphrase **** for **** (latency 200)");
    /* "live" is a word of the streamid: masked too (better too much than too little). */
    scrubbed("r=live/KEY1 refused", srt, "r=****/**** refused");
    scrubbed("bytes\x01\xff", NULL, "bytes??");
    scrubbed(NULL, yt, "");
    char small[8];
    output_text_scrub("abcd-efgh-ijkl and more", yt, small, sizeof(small));
    assert_string_equal(small, "**** an");
}

static void test_rendition_and_id(void **state)
{
    (void)state;
    assert_true(output_rendition_ok("source"));
    assert_true(output_rendition_ok("720p"));
    assert_true(output_rendition_ok("a"));
    assert_true(output_rendition_ok("hd_low-1"));
    assert_true(output_rendition_ok("a234567890123456789012345678901")); /* 31 */
    assert_false(output_rendition_ok("a2345678901234567890123456789012")); /* 32 */
    assert_false(output_rendition_ok(""));
    assert_false(output_rendition_ok(NULL));
    assert_false(output_rendition_ok("_x"));
    assert_false(output_rendition_ok("-x"));
    assert_false(output_rendition_ok("720P"));
    assert_false(output_rendition_ok("7 20p"));
    assert_false(output_rendition_ok("../x"));

    char a[OUTPUT_ID_MAX], b[OUTPUT_ID_MAX];
    output_new_id(a);
    output_new_id(b);
    assert_true(output_id_ok(a));
    assert_true(output_id_ok(b));
    assert_int_equal(strlen(a), 17);
    assert_string_not_equal(a, b);
    assert_true(output_id_ok("o0123456789abcdef"));
    assert_false(output_id_ok("o0123456789abcde"));
    assert_false(output_id_ok("o0123456789abcdef0"));
    assert_false(output_id_ok("o0123456789ABCDEF"));
    assert_false(output_id_ok("x0123456789abcdef"));
    assert_false(output_id_ok(NULL));
}

static void test_defs_round_trip(void **state)
{
    (void)state;
    output_def_t in[OUTPUT_MAX_PER_STREAM];
    memset(in, 0, sizeof(in));
    for (size_t i = 0; i < OUTPUT_MAX_PER_STREAM; i++) {
        output_new_id(in[i].id);
        /* The longest URLs: the text still fits the registry's limit. */
        memset(in[i].url, 'k', OUTPUT_URL_MAX - 1);
        memcpy(in[i].url, "rtmps://h/app/", 14);
        snprintf(in[i].rendition, sizeof(in[i].rendition), "%s",
                 i % 2 ? "source" : "a234567890123456789012345678901");
        in[i].enabled = i % 3 != 0;
        in[i].created_ms = INT64_C(1796000000000) + (int64_t)i;
    }
    char *text = output_defs_format(in, OUTPUT_MAX_PER_STREAM);
    assert_non_null(text);
    assert_true(strlen(text) < OUTPUT_DEFS_TEXT_MAX);
    output_def_t *out;
    size_t n;
    assert_int_equal(output_defs_parse(text, &out, &n), 0);
    assert_int_equal(n, OUTPUT_MAX_PER_STREAM);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(out[i].id, in[i].id);
        assert_string_equal(out[i].url, in[i].url);
        assert_string_equal(out[i].rendition, in[i].rendition);
        assert_int_equal(out[i].enabled, in[i].enabled);
        assert_int_equal(out[i].created_ms, in[i].created_ms);
    }
    free(out);
    free(text);

    text = output_defs_format(NULL, 0);
    assert_string_equal(text, "[]");
    assert_int_equal(output_defs_parse(text, &out, &n), 0);
    assert_null(out);
    assert_int_equal(n, 0);
    free(text);
    assert_int_equal(output_defs_parse("", &out, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(output_defs_parse(NULL, &out, &n), 0);
    assert_int_equal(n, 0);

    /* Defaults for the optional members; unknown members ignored. */
    assert_int_equal(output_defs_parse("[{\"id\":\"o0123456789abcdef\",\"url\":\"srt://h:1\","
                                       "\"later\":{\"x\":1}}]", &out, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(out[0].rendition, "source");
    assert_true(out[0].enabled);
    assert_int_equal(out[0].created_ms, 0);
    free(out);
}

static void bad(const char *text, int want)
{
    output_def_t *out = (output_def_t *)(uintptr_t)1;
    size_t n = 99;
    assert_int_equal(output_defs_parse(text, &out, &n), want);
    assert_null(out);
    assert_int_equal(n, 0);
}

static void test_defs_refuse(void **state)
{
    (void)state;
    bad("{", -EPROTO);
    bad("{}", -EPROTO);
    bad("\"x\"", -EPROTO);
    bad("[1]", -EPROTO);
    bad("[{}]", -EPROTO);
    bad("[{\"id\":\"o0123456789abcdef\"}]", -EPROTO);
    bad("[{\"url\":\"srt://h:1\"}]", -EPROTO);
    bad("[{\"id\":\"bad\",\"url\":\"srt://h:1\"}]", -EPROTO);
    bad("[{\"id\":\"o0123456789abcdef\",\"url\":\"srt://h\"}]", -EPROTO);
    bad("[{\"id\":\"o0123456789abcdef\",\"url\":1}]", -EPROTO);
    bad("[{\"id\":\"o0123456789abcdef\",\"url\":\"srt://h:1\",\"rendition\":\"X\"}]", -EPROTO);
    bad("[{\"id\":\"o0123456789abcdef\",\"url\":\"srt://h:1\",\"rendition\":1}]", -EPROTO);
    bad("[{\"id\":\"o0123456789abcdef\",\"url\":\"srt://h:1\",\"enabled\":1}]", -EPROTO);
    bad("[{\"id\":\"o0123456789abcdef\",\"url\":\"srt://h:1\",\"created_ms\":-1}]", -EPROTO);
    bad("[{\"id\":\"o0123456789abcdef\",\"url\":\"srt://h:1\",\"created_ms\":1.5}]", -EPROTO);
    bad("[{\"id\":\"o0123456789abcdef\",\"id\":\"o0123456789abcdee\",\"url\":\"srt://h:1\"}]",
        -EPROTO);
    bad("[{\"id\":\"o0123456789abcdef\",\"url\":\"srt://h:1\"},"
        "{\"id\":\"o0123456789abcdef\",\"url\":\"srt://h:2\"}]", -EPROTO);
    bad("[{\"id\":\"o0123456789abcdef\",\"url\":\"srt://h:1\"}] x", -EPROTO);
    /* A NUL inside a string would cut the URL short: refused. */
    bad("[{\"id\":\"o0123456789abcdef\",\"url\":\"srt://h:1\\u0000x\"}]", -EPROTO);

    /* Nine outputs: over the limit. */
    char nine[2048] = "[";
    for (int i = 0; i < 9; i++)
        snprintf(nine + strlen(nine), sizeof(nine) - strlen(nine),
                 "%s{\"id\":\"o000000000000000%d\",\"url\":\"srt://h:1\"}", i ? "," : "", i);
    strcat(nine, "]");
    bad(nine, -EMSGSIZE);

    /* Oversized text, even when it would be valid JSON. */
    char *big = malloc(OUTPUT_DEFS_TEXT_MAX + 1);
    assert_non_null(big);
    memset(big, ' ', OUTPUT_DEFS_TEXT_MAX);
    big[0] = '[';
    big[OUTPUT_DEFS_TEXT_MAX - 1] = ']';
    big[OUTPUT_DEFS_TEXT_MAX] = '\0';
    bad(big, -EMSGSIZE);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_accept),
        cmocka_unit_test(test_url_refuse),
        cmocka_unit_test(test_url_mask),
        cmocka_unit_test(test_text_scrub),
        cmocka_unit_test(test_rendition_and_id),
        cmocka_unit_test(test_defs_round_trip),
        cmocka_unit_test(test_defs_refuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
