/*
 * Tests for control/outputs_api.c against the memory store: the routes'
 * answers (201/200/204, 400 naming the field, 404, 405, 409), the
 * definitions kept in the registry, the merge with the engine's live status
 * ("idle" without an entry), and that no answer ever holds a destination's
 * key.
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
#include <jansson.h>

#include "output_def.h"
#include "outputs_api_internal.h"
#include "store.h"

#define KEY "SECRETKEY-0123456789"
#define YT "rtmp://a.rtmp.youtube.com/live2/" KEY

typedef struct fixture {
    store_t *st;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(store_open("memory", &f->st), 0);
    assert_int_equal(store_stream_add(f->st, "s1", "One", "publish-key-1"), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    store_close(f->st);
    free(f);
    return 0;
}

/* One request; the answer's body as text (malloc'd, "" for none) in *text.
 * Asserts that no answer holds the key in clear. */
static unsigned int call(fixture_t *f, const char *method, const char *stream, const char *oid,
                         const char *body, bool live, json_t **answer)
{
    outputs_api_reply_t r;
    memset(&r, 0xff, sizeof(r));
    outputs_api_handle(f->st, method, stream, oid, body, body ? strlen(body) : 0, live, &r);
    if (r.body) {
        char *text = json_dumps(r.body, JSON_COMPACT);
        assert_non_null(text);
        if (strstr(text, KEY) || strstr(text, "pass-word"))
            fail_msg("an answer holds a secret: %s", text);
        free(text);
    } else {
        assert_int_equal(r.status, 204);
    }
    if (r.status == 405)
        assert_non_null(r.allow);
    if (answer)
        *answer = r.body;
    else
        json_decref(r.body);
    return r.status;
}

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    assert_non_null(s);
    return s;
}

/* The error of a 400 names the field. */
static void bad(fixture_t *f, const char *method, const char *oid, const char *body,
                const char *names)
{
    json_t *a;
    assert_int_equal(call(f, method, "s1", oid, body, false, &a), 400);
    const char *err = str(a, "error");
    if (!strstr(err, names))
        fail_msg("error '%s' does not name %s", err, names);
    json_decref(a);
}

static void test_create_and_list(void **state)
{
    fixture_t *f = *state;
    json_t *a;
    assert_int_equal(call(f, "POST", "s1", NULL, "{\"url\":\"" YT "\"}", false, &a), 201);
    char oid[OUTPUT_ID_MAX];
    snprintf(oid, sizeof(oid), "%s", str(a, "id"));
    assert_true(output_id_ok(oid));
    assert_string_equal(str(a, "url"), "rtmp://a.rtmp.youtube.com/live2/****");
    assert_string_equal(str(a, "rendition"), "source");
    assert_true(json_is_true(json_object_get(a, "enabled")));
    assert_string_equal(str(a, "state"), "idle");
    assert_int_equal(json_integer_value(json_object_get(a, "bytes")), 0);
    assert_true(json_is_null(json_object_get(a, "last_error")));
    assert_true(json_integer_value(json_object_get(a, "created_ms")) > 1700000000000);
    assert_non_null(strstr(str(a, "created"), "T"));
    json_decref(a);

    /* Live and enabled: connecting; live but disabled: idle. */
    assert_int_equal(call(f, "POST", "s1", NULL,
                          "{\"url\":\"srt://h:9000?streamid=" KEY "&latency=200\","
                          "\"rendition\":\"720p\"}",
                          true, &a),
                     201);
    assert_string_equal(str(a, "state"), "connecting");
    assert_string_equal(str(a, "url"), "srt://h:9000?streamid=****&latency=200");
    assert_string_equal(str(a, "rendition"), "720p");
    json_decref(a);
    assert_int_equal(call(f, "POST", "s1", NULL,
                          "{\"url\":\"rtmps://u:pass-word@h:443/app/k\",\"enabled\":false}", true,
                          &a),
                     201);
    assert_string_equal(str(a, "state"), "idle");
    assert_string_equal(str(a, "url"), "rtmps://****@h:443/app/****");
    json_decref(a);

    /* The registry holds them, in order, with the key in clear. */
    char *text = NULL;
    assert_int_equal(store_stream_get_outputs(f->st, "s1", &text), 0);
    assert_non_null(strstr(text, YT));
    output_def_t *defs;
    size_t n;
    assert_int_equal(output_defs_parse(text, &defs, &n), 0);
    free(text);
    assert_int_equal(n, 3);
    assert_string_equal(defs[0].id, oid);
    assert_false(defs[2].enabled);
    free(defs);
    assert_int_equal(outputs_api_count(f->st, "s1"), 3);

    assert_int_equal(call(f, "GET", "s1", NULL, NULL, false, &a), 200);
    json_t *list = json_object_get(a, "outputs");
    assert_int_equal(json_array_size(list), 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(str(json_array_get(list, i), "state"), "idle");
    assert_string_equal(str(json_array_get(list, 0), "id"), oid);
    json_decref(a);
    assert_int_equal(call(f, "HEAD", "s1", oid, NULL, false, &a), 200);
    assert_string_equal(str(a, "id"), oid);
    json_decref(a);

    /* At most 8. */
    for (int i = 3; i < OUTPUT_MAX_PER_STREAM; i++)
        assert_int_equal(call(f, "POST", "s1", NULL, "{\"url\":\"rtmp://h/app/k\"}", false, NULL),
                         201);
    assert_int_equal(call(f, "POST", "s1", NULL, "{\"url\":\"rtmp://h/app/k\"}", false, &a), 409);
    assert_non_null(strstr(str(a, "error"), "8"));
    json_decref(a);
    assert_int_equal(outputs_api_count(f->st, "s1"), OUTPUT_MAX_PER_STREAM);
}

static void test_refusals(void **state)
{
    fixture_t *f = *state;
    bad(f, "POST", NULL, NULL, "JSON object");
    bad(f, "POST", NULL, "[1]", "JSON object");
    bad(f, "POST", NULL, "{", "JSON object");
    bad(f, "POST", NULL, "{}", "\"url\"");
    bad(f, "POST", NULL, "{\"url\":1}", "\"url\"");
    bad(f, "POST", NULL, "{\"url\":\"http://h/" KEY "\"}", "url");
    bad(f, "POST", NULL, "{\"url\":\"rtmp://h\"}", "url");
    bad(f, "POST", NULL, "{\"url\":\"rtmp://h/app/" KEY " x\"}", "url");
    bad(f, "POST", NULL, "{\"url\":\"rtmp://h/app/" KEY "\\u0000x\"}", "JSON object");
    bad(f, "POST", NULL, "{\"url\":\"rtmp://h/app/k\",\"rendition\":\"720P\"}", "\"rendition\"");
    bad(f, "POST", NULL, "{\"url\":\"rtmp://h/app/k\",\"rendition\":7}", "\"rendition\"");
    bad(f, "POST", NULL, "{\"url\":\"rtmp://h/app/k\",\"enabled\":\"yes\"}", "\"enabled\"");
    bad(f, "POST", NULL, "{\"url\":\"rtmp://h/app/k\",\"rendtion\":\"720p\"}", "unknown field");
    assert_int_equal(outputs_api_count(f->st, "s1"), 0); /* nothing was added */

    json_t *a;
    assert_int_equal(call(f, "POST", "nope", NULL, "{\"url\":\"rtmp://h/app/k\"}", false, &a),
                     404);
    assert_string_equal(str(a, "error"), "no such stream");
    json_decref(a);
    assert_int_equal(call(f, "GET", "nope", NULL, NULL, false, NULL), 404);
    assert_int_equal(call(f, "GET", "nope", "o0123456789abcdef", NULL, false, NULL), 404);
    assert_int_equal(call(f, "GET", "s1", "o0123456789abcdef", NULL, false, &a), 404);
    assert_string_equal(str(a, "error"), "no such output");
    json_decref(a);
    assert_int_equal(call(f, "GET", "s1", "../x", NULL, false, NULL), 404);
    assert_int_equal(call(f, "DELETE", "s1", "o0123456789abcdef", NULL, false, NULL), 404);
    assert_int_equal(call(f, "PATCH", "s1", "o0123456789abcdef", "{\"enabled\":true}", false,
                          NULL),
                     404);
    assert_int_equal(call(f, "PUT", "s1", NULL, NULL, false, NULL), 405);
    assert_int_equal(call(f, "DELETE", "s1", NULL, NULL, false, NULL), 405);
    assert_int_equal(call(f, "POST", "s1", "o0123456789abcdef", NULL, false, NULL), 405);

    /* Stored text no version writes: a 500, never a crash or a leak. */
    assert_int_equal(store_stream_set_outputs(f->st, "s1", "[{\"id\":1}]"), 0);
    assert_int_equal(call(f, "GET", "s1", NULL, NULL, false, NULL), 500);
    assert_int_equal(call(f, "POST", "s1", NULL, "{\"url\":\"rtmp://h/app/k\"}", false, NULL),
                     500);
    assert_int_equal(outputs_api_count(f->st, "s1"), -EPROTO);
}

static void test_patch_delete_and_live(void **state)
{
    fixture_t *f = *state;
    json_t *a;
    assert_int_equal(call(f, "POST", "s1", NULL, "{\"url\":\"" YT "\"}", false, &a), 201);
    char o1[OUTPUT_ID_MAX], o2[OUTPUT_ID_MAX];
    snprintf(o1, sizeof(o1), "%s", str(a, "id"));
    json_decref(a);
    assert_int_equal(call(f, "POST", "s1", NULL, "{\"url\":\"rtmp://h/app/k2\"}", false, &a),
                     201);
    snprintf(o2, sizeof(o2), "%s", str(a, "id"));
    json_decref(a);

    /* The engine's live status: o1 live (its last error quotes the key,
     * which must not come through), o2 without an entry: idle. */
    char meta[1024];
    snprintf(meta, sizeof(meta),
             "{\"%s\":{\"state\":\"live\",\"bytes\":123456,\"bitrate_kbps\":2400,"
             "\"dropped_packets\":3,\"skips\":1,\"connected_since\":\"2026-12-07T17:00:00Z\","
             "\"last_error\":\"" YT ": I/O error\",\"retries\":2,\"url\":\"x\"},"
             "\"o0000000000000000\":{\"state\":\"live\"}}",
             o1);
    assert_int_equal(store_meta_put(f->st, "s1", OUTPUTS_META_FIELD, meta, 10000), 0);
    assert_int_equal(call(f, "GET", "s1", NULL, NULL, true, &a), 200);
    json_t *list = json_object_get(a, "outputs");
    assert_int_equal(json_array_size(list), 2);
    json_t *e1 = json_array_get(list, 0), *e2 = json_array_get(list, 1);
    assert_string_equal(str(e1, "state"), "live");
    assert_int_equal(json_integer_value(json_object_get(e1, "bytes")), 123456);
    assert_int_equal(json_integer_value(json_object_get(e1, "bitrate_kbps")), 2400);
    assert_int_equal(json_integer_value(json_object_get(e1, "dropped_packets")), 3);
    assert_int_equal(json_integer_value(json_object_get(e1, "skips")), 1);
    assert_int_equal(json_integer_value(json_object_get(e1, "retries")), 2);
    assert_string_equal(str(e1, "connected_since"), "2026-12-07T17:00:00Z");
    assert_string_equal(str(e1, "last_error"),
                        "rtmp://a.rtmp.youtube.com/live2/****: I/O error");
    assert_string_equal(str(e1, "url"), "rtmp://a.rtmp.youtube.com/live2/****");
    assert_string_equal(str(e2, "state"), "idle");
    json_decref(a);

    /* PATCH: disabled shows idle at once; enabled again while live:
     * connecting; a new URL is kept and shown masked. */
    assert_int_equal(call(f, "PATCH", "s1", o1, "{\"enabled\":false}", true, &a), 200);
    assert_string_equal(str(a, "state"), "idle");
    assert_false(json_is_true(json_object_get(a, "enabled")));
    assert_int_equal(json_integer_value(json_object_get(a, "bytes")), 0);
    json_decref(a);
    assert_int_equal(call(f, "GET", "s1", o1, NULL, true, &a), 200);
    assert_string_equal(str(a, "state"), "idle");
    json_decref(a);
    assert_int_equal(call(f, "PATCH", "s1", o1, "{\"enabled\":true}", true, &a), 200);
    assert_string_equal(str(a, "state"), "connecting");
    json_decref(a);
    /* No change: the live state as it is. */
    assert_int_equal(call(f, "PATCH", "s1", o1, "{\"enabled\":true}", true, &a), 200);
    assert_string_equal(str(a, "state"), "live");
    json_decref(a);
    assert_int_equal(call(f, "PATCH", "s1", o1, "{\"enabled\":true}", false, &a), 200);
    assert_string_equal(str(a, "state"), "idle");
    json_decref(a);
    assert_int_equal(call(f, "PATCH", "s1", o2,
                          "{\"url\":\"srt://h:1?passphrase=" KEY "\",\"rendition\":\"480p\"}",
                          false, &a),
                     200);
    assert_string_equal(str(a, "url"), "srt://h:1?passphrase=****");
    assert_string_equal(str(a, "rendition"), "480p");
    json_decref(a);
    bad(f, "PATCH", o2, "{}", "nothing to change");
    bad(f, "PATCH", o2, "{\"url\":\"srt://h\"}", "url");
    bad(f, "PATCH", o2, "{\"rendition\":\"\"}", "\"rendition\"");
    bad(f, "PATCH", o2, "{\"id\":\"o0000000000000000\"}", "unknown field");
    char *text = NULL;
    assert_int_equal(store_stream_get_outputs(f->st, "s1", &text), 0);
    assert_non_null(strstr(text, "srt://h:1?passphrase=" KEY));
    assert_non_null(strstr(text, "\"480p\""));
    free(text);

    /* DELETE: gone, the other one stays; the last one leaves no field. */
    assert_int_equal(call(f, "DELETE", "s1", o1, NULL, false, NULL), 204);
    assert_int_equal(call(f, "DELETE", "s1", o1, NULL, false, NULL), 404);
    assert_int_equal(call(f, "GET", "s1", o2, NULL, false, NULL), 200);
    assert_int_equal(outputs_api_count(f->st, "s1"), 1);
    assert_int_equal(call(f, "DELETE", "s1", o2, NULL, false, NULL), 204);
    assert_int_equal(store_stream_get_outputs(f->st, "s1", &text), 0);
    assert_string_equal(text, "");
    free(text);
    assert_int_equal(call(f, "GET", "s1", NULL, NULL, false, &a), 200);
    assert_int_equal(json_array_size(json_object_get(a, "outputs")), 0);
    json_decref(a);
}

/* /metrics' rows: only defined, enabled outputs with a live entry, with
 * their rendition from the definitions. */
static void test_metric_rows(void **state)
{
    fixture_t *f = *state;
    outputs_api_metric_t *rows = NULL;
    size_t n = 0;
    assert_int_equal(outputs_api_metrics(f->st, "s1", &rows, &n), 0); /* nothing yet */
    assert_int_equal(n, 0);
    json_t *a;
    char id[3][OUTPUT_ID_MAX];
    const char *bodies[3] = {"{\"url\":\"" YT "\",\"rendition\":\"720p\"}",
                             "{\"url\":\"rtmp://h/app/k\",\"enabled\":false}",
                             "{\"url\":\"srt://h:1\"}"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(call(f, "POST", "s1", NULL, bodies[i], false, &a), 201);
        snprintf(id[i], sizeof(id[i]), "%s", str(a, "id"));
        json_decref(a);
    }
    assert_int_equal(outputs_api_metrics(f->st, "s1", &rows, &n), 0); /* no live status */
    assert_int_equal(n, 0);
    char meta[1024];
    snprintf(meta, sizeof(meta),
             "{\"%s\":{\"state\":\"live\",\"bytes\":1000,\"bitrate_kbps\":2400,"
             "\"dropped_packets\":4,\"retries\":1},"
             "\"%s\":{\"state\":\"live\",\"bytes\":5},"
             "\"%s\":{\"state\":\"retrying\",\"bytes\":-3,\"retries\":\"x\"},"
             "\"o0000000000000000\":{\"state\":\"live\"}}",
             id[0], id[1], id[2]);
    assert_int_equal(store_meta_put(f->st, "s1", OUTPUTS_META_FIELD, meta, 10000), 0);
    assert_int_equal(outputs_api_metrics(f->st, "s1", &rows, &n), 0);
    assert_int_equal(n, 2); /* the disabled one and the unknown one are left out */
    assert_string_equal(rows[0].stream, "s1");
    assert_string_equal(rows[0].id, id[0]);
    assert_string_equal(rows[0].rendition, "720p");
    assert_true(rows[0].up);
    assert_int_equal(rows[0].bytes, 1000);
    assert_int_equal(rows[0].dropped_packets, 4);
    assert_int_equal(rows[0].retries, 1);
    assert_true(rows[0].bitrate_kbps == 2400);
    assert_string_equal(rows[1].id, id[2]);
    assert_string_equal(rows[1].rendition, "source");
    assert_false(rows[1].up);
    assert_int_equal(rows[1].bytes, 0);
    assert_int_equal(rows[1].retries, 0);
    /* Appends. */
    assert_int_equal(outputs_api_metrics(f->st, "s1", &rows, &n), 0);
    assert_int_equal(n, 4);
    free(rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_patch_delete_and_live, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metric_rows, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
