/* Unit tests for origin/beacon.c: a good beacon, every field's refusal
 * (naming the field), the size and nesting bounds, duplicates, and the
 * token kept as sent (or marked too long). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "beacon_internal.h"

#define SID "\"session\":\"abcdefghijklmnop\""

static int parse(const char *body, beacon_t *b, const char **why)
{
    return beacon_parse(body, strlen(body), b, why);
}

/* The refusal of body names `field` (its text contains it). */
static void refused(const char *body, const char *field)
{
    beacon_t b;
    const char *why = NULL;
    int rc = parse(body, &b, &why);
    if (rc != -EPROTO)
        fail_msg("accepted (%d): %s", rc, body);
    assert_non_null(why);
    if (!strstr(why, field))
        fail_msg("\"%s\" does not name %s (body %s)", why, field, body);
    assert_string_equal(b.session, ""); /* nothing half-filled */
}

static void test_good(void **state)
{
    (void)state;
    beacon_t b;
    const char *why = NULL;
    const char *body = "{" SID ",\"state\":\"playing\",\"rendition\":\"720p\",\"latency_ms\":2500,"
                       "\"startup_ms\":800,\"stalls\":2,\"stall_ms\":1200,\"watch_ms\":60000,"
                       "\"dropped_frames\":7,\"errors\":1,\"player\":\"hls.js 1.5.20\","
                       "\"token\":\"123~~~sig\",\"unknown\":{\"x\":[1,2]}}";
    assert_int_equal(parse(body, &b, &why), 0);
    assert_null(why);
    assert_string_equal(b.session, "abcdefghijklmnop");
    assert_int_equal(b.s.state, AUDIENCE_PLAYING);
    assert_string_equal(b.s.rendition, "720p");
    assert_int_equal(b.s.latency_ms, 2500);
    assert_int_equal(b.s.startup_ms, 800);
    assert_int_equal(b.s.stalls, 2);
    assert_int_equal(b.s.stall_ms, 1200);
    assert_int_equal(b.s.watch_ms, 60000);
    assert_int_equal(b.s.dropped_frames, 7);
    assert_int_equal(b.s.errors, 1);
    assert_string_equal(b.player, "hls.js 1.5.20");
    assert_true(b.has_token);
    assert_string_equal(b.token, "123~~~sig");
    assert_int_equal(b.token_len, 9);
    /* What is parsed always formats as a record. */
    char rec[AUDIENCE_RECORD_MAX];
    assert_true(audience_record_format(&b.s, rec, sizeof(rec)) > 0);
}

static void test_minimal(void **state)
{
    (void)state;
    beacon_t b;
    const char *why;
    assert_int_equal(parse("{" SID ",\"state\":\"starting\",\"rendition\":null}", &b, &why), 0);
    assert_int_equal(b.s.state, AUDIENCE_STARTING);
    assert_string_equal(b.s.rendition, "");
    assert_int_equal(b.s.latency_ms, -1); /* not reported */
    assert_int_equal(b.s.startup_ms, -1);
    assert_int_equal(b.s.stalls, 0);
    assert_false(b.has_token);
    /* Every state by name; the bounds themselves are in range. */
    const char *states[] = {"starting", "playing", "stalled", "paused", "ended", "error"};
    for (size_t i = 0; i < 6; i++) {
        char body[256];
        snprintf(body, sizeof(body), "{" SID ",\"state\":\"%s\",\"latency_ms\":3600000,"
                 "\"dropped_frames\":100000000,\"stall_ms\":0}", states[i]);
        assert_int_equal(parse(body, &b, &why), 0);
        assert_int_equal(b.s.state, (audience_state_t)i);
        assert_int_equal(b.s.latency_ms, 3600000);
    }
    /* 64 characters of session, all the allowed kinds. */
    assert_int_equal(parse("{\"session\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-\","
                           "\"state\":\"paused\"}", &b, &why), 0);
}

static void test_refusals(void **state)
{
    (void)state;
    refused("", "body");
    refused("[]", "object");
    refused("\"x\"", "JSON"); /* jansson takes only an object or array at the top */
    refused("{", "JSON");
    refused("{\"state\":\"playing\"}", "\"session\"");
    refused("{\"session\":\"short\",\"state\":\"playing\"}", "\"session\"");
    refused("{\"session\":\"abcdefghijklmno!\",\"state\":\"playing\"}", "\"session\"");
    refused("{\"session\":1234567890123456,\"state\":\"playing\"}", "\"session\"");
    refused("{\"session\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-x\","
            "\"state\":\"paused\"}", "\"session\"");
    refused("{" SID "}", "\"state\"");
    refused("{" SID ",\"state\":\"dancing\"}", "\"state\"");
    refused("{" SID ",\"state\":\"PLAYING\"}", "\"state\"");
    refused("{" SID ",\"state\":null}", "\"state\"");
    refused("{" SID ",\"state\":\"playing\",\"rendition\":\"720P\"}", "\"rendition\"");
    refused("{" SID ",\"state\":\"playing\",\"rendition\":\"\"}", "\"rendition\"");
    refused("{" SID ",\"state\":\"playing\",\"rendition\":\"abcdefghijklmnop\"}", "\"rendition\"");
    refused("{" SID ",\"state\":\"playing\",\"rendition\":720}", "\"rendition\"");
    refused("{" SID ",\"state\":\"playing\",\"latency_ms\":3600001}", "\"latency_ms\"");
    refused("{" SID ",\"state\":\"playing\",\"latency_ms\":-1}", "\"latency_ms\"");
    refused("{" SID ",\"state\":\"playing\",\"latency_ms\":1.5}", "\"latency_ms\"");
    refused("{" SID ",\"state\":\"playing\",\"latency_ms\":\"5\"}", "\"latency_ms\"");
    refused("{" SID ",\"state\":\"playing\",\"startup_ms\":600001}", "\"startup_ms\"");
    refused("{" SID ",\"state\":\"playing\",\"stalls\":1000001}", "\"stalls\"");
    refused("{" SID ",\"state\":\"playing\",\"stall_ms\":86400001}", "\"stall_ms\"");
    refused("{" SID ",\"state\":\"playing\",\"watch_ms\":86400001}", "\"watch_ms\"");
    refused("{" SID ",\"state\":\"playing\",\"dropped_frames\":100000001}", "\"dropped_frames\"");
    refused("{" SID ",\"state\":\"playing\",\"errors\":true}", "\"errors\"");
    refused("{" SID ",\"state\":\"playing\",\"player\":\"01234567890123456789012345678901234567890\"}",
            "\"player\"");
    refused("{" SID ",\"state\":\"playing\",\"player\":\"a\\u0007b\"}", "\"player\"");
    refused("{" SID ",\"state\":\"playing\",\"player\":\"caf\\u00e9\"}", "\"player\"");
    refused("{" SID ",\"state\":\"playing\",\"token\":5}", "\"token\"");
    /* Duplicates, a NUL, and overflowing numbers. */
    refused("{" SID "," SID ",\"state\":\"playing\"}", "repeats");
    refused("{\"session\":\"abcdefghijklmno\\u0000\",\"state\":\"playing\"}", "JSON");
    refused("{" SID ",\"state\":\"playing\",\"stalls\":99999999999999999999999}", "JSON");
}

static void test_bounds(void **state)
{
    (void)state;
    beacon_t b;
    const char *why;
    /* 2048 bytes is fine, 2049 is not (and says so as -EMSGSIZE). */
    char body[BEACON_BODY_MAX + 2];
    int n = snprintf(body, sizeof(body), "{" SID ",\"state\":\"playing\",\"pad\":\"");
    memset(body + n, 'x', sizeof(body) - (size_t)n);
    memcpy(body + BEACON_BODY_MAX - 2, "\"}", 2);
    assert_int_equal(beacon_parse(body, BEACON_BODY_MAX, &b, &why), 0);
    assert_int_equal(beacon_parse(body, BEACON_BODY_MAX + 1, &b, &why), -EMSGSIZE);
    assert_non_null(strstr(why, "2048"));
    /* Nesting: four levels pass, five are refused before jansson sees them;
     * brackets inside strings do not count. */
    assert_int_equal(parse("{" SID ",\"state\":\"playing\",\"a\":{\"b\":[[1]]}}", &b, &why), 0);
    refused("{" SID ",\"state\":\"playing\",\"a\":{\"b\":[[[1]]]}}", "deep");
    assert_int_equal(parse("{" SID ",\"state\":\"playing\",\"a\":\"[[[[[[{{{{\\\"[[[\"}", &b, &why), 0);
    char deep[BEACON_BODY_MAX];
    memset(deep, '[', sizeof(deep));
    assert_int_equal(beacon_parse(deep, sizeof(deep), &b, &why), -EPROTO);
    /* A token longer than a token may be is kept one byte over TOKEN_MAX. */
    char big[600];
    n = snprintf(big, sizeof(big), "{" SID ",\"state\":\"playing\",\"token\":\"");
    memset(big + n, 'a', 300);
    snprintf(big + n + 300, sizeof(big) - (size_t)n - 300, "\"}");
    assert_int_equal(parse(big, &b, &why), 0);
    assert_true(b.has_token);
    assert_int_equal(b.token_len, TOKEN_MAX + 1);
    assert_int_equal(strlen(b.token), TOKEN_MAX + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
