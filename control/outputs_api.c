/*
 * The admin API of a stream's simulcast outputs (outputs_api_internal.h):
 * request bodies checked with output/output_def.h's grammar, the
 * definitions read, changed and written back through the store's registry
 * field, answers merged with the engine's live status (meta "outputs").
 * URLs leave here only masked. Runs on the admin listener's thread.
 */
#include "outputs_api_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <microhttpd.h>

#include "clock.h"
#include "hls_playlist.h"
#include "log.h"
#include "output_def.h"

#define OUTPUTS_LOG "admin"

/* One process's read-modify-write of a stream's definitions at a time. */
static pthread_mutex_t outputs_lock = PTHREAD_MUTEX_INITIALIZER;

static void reply(outputs_api_reply_t *out, unsigned int status, json_t *body)
{
    out->status = status;
    out->body = body;
    out->allow = NULL;
}

static void reply_error(outputs_api_reply_t *out, unsigned int status, const char *msg)
{
    reply(out, status, json_pack("{s:s}", "error", msg));
}

static void reply_store_error(outputs_api_reply_t *out, int rc)
{
    if (rc == -ENOENT)
        reply_error(out, MHD_HTTP_NOT_FOUND, "no such stream");
    else if (rc == -EIO)
        reply_error(out, MHD_HTTP_SERVICE_UNAVAILABLE, "store unavailable; retry");
    else if (rc == -EPROTO || rc == -EMSGSIZE)
        reply_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR,
                    "the stream's stored outputs cannot be read");
    else
        reply_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, strerror(rc < 0 ? -rc : rc));
}

/* The stream's definitions. 0, or a negative errno (the store's, or
 * -EPROTO/-EMSGSIZE for text output_defs_parse refuses: logged). */
static int outputs_load(store_t *st, const char *stream_id, output_def_t **defs, size_t *n)
{
    *defs = NULL;
    *n = 0;
    char *text = NULL;
    int rc = store_stream_get_outputs(st, stream_id, &text);
    if (rc < 0)
        return rc;
    rc = output_defs_parse(text, defs, n);
    free(text);
    if (rc < 0)
        log_error(OUTPUTS_LOG, "stream %s: its stored simulcast outputs cannot be read (%s)",
                  stream_id, strerror(-rc));
    return rc;
}

static int outputs_save(store_t *st, const char *stream_id, const output_def_t *defs, size_t n)
{
    char *text = output_defs_format(defs, n);
    if (!text)
        return -ENOMEM;
    /* No outputs: no field at all. */
    int rc = store_stream_set_outputs(st, stream_id, n ? text : "");
    free(text);
    return rc;
}

/* The engine's live status of the stream's outputs, or NULL. */
static json_t *outputs_live_status(store_t *st, const char *stream_id)
{
    char *text = NULL;
    json_t *j = NULL;
    if (store_meta_get(st, stream_id, OUTPUTS_META_FIELD, &text) == 0 && text)
        j = json_loads(text, 0, NULL);
    free(text);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static bool outputs_state_known(const char *s)
{
    return s && (strcmp(s, "connecting") == 0 || strcmp(s, "live") == 0 ||
                 strcmp(s, "retrying") == 0 || strcmp(s, "failed") == 0);
}

static json_int_t outputs_int(const json_t *entry, const char *key)
{
    const json_t *v = json_object_get(entry, key);
    if (json_is_integer(v))
        return json_integer_value(v) > 0 ? json_integer_value(v) : 0;
    if (json_is_real(v) && json_real_value(v) > 0 && json_real_value(v) < 9e18)
        return (json_int_t)json_real_value(v);
    return 0;
}

/* A string of the engine's entry, scrubbed of the output's secrets (the
 * engine should never write them; this is the second lock on that door). */
static json_t *outputs_text(const json_t *entry, const char *key, const output_def_t *d)
{
    const char *s = json_string_value(json_object_get(entry, key));
    if (!s)
        return json_null();
    char clean[512];
    output_text_scrub(s, d->url, clean, sizeof(clean));
    return json_string(clean);
}

/*
 * One output as the API shows it. entry: the engine's live entry for it
 * (may be NULL). state_override: the state to show instead of the entry's
 * (a change just made), or NULL.
 */
static json_t *outputs_json(const output_def_t *d, const json_t *entry, const char *state_override)
{
    char masked[OUTPUT_URL_MAX], created[40];
    output_url_mask(d->url, masked, sizeof(masked));
    hls_playlist_format_pdt(d->created_ms, created, sizeof(created));
    const char *state = "idle";
    if (!d->enabled) {
        entry = NULL; /* stopped within ~2 s; what it said last is not its state */
    } else if (state_override) {
        state = state_override;
    } else if (entry) {
        const char *s = json_string_value(json_object_get(entry, "state"));
        state = outputs_state_known(s) ? s : "idle";
    }
    if (!json_is_object(entry))
        entry = NULL;
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "id", json_string(d->id));
    json_object_set_new(o, "url", json_string(masked));
    json_object_set_new(o, "rendition", json_string(d->rendition));
    json_object_set_new(o, "enabled", json_boolean(d->enabled));
    json_object_set_new(o, "state", json_string(state));
    json_object_set_new(o, "bytes", json_integer(outputs_int(entry, "bytes")));
    json_object_set_new(o, "bitrate_kbps", json_integer(outputs_int(entry, "bitrate_kbps")));
    json_object_set_new(o, "dropped_packets",
                        json_integer(outputs_int(entry, "dropped_packets")));
    json_object_set_new(o, "skips", json_integer(outputs_int(entry, "skips")));
    json_object_set_new(o, "connected_since", outputs_text(entry, "connected_since", d));
    json_object_set_new(o, "last_error", outputs_text(entry, "last_error", d));
    json_object_set_new(o, "retries", json_integer(outputs_int(entry, "retries")));
    json_object_set_new(o, "created", d->created_ms > 0 ? json_string(created) : json_null());
    json_object_set_new(o, "created_ms", json_integer(d->created_ms));
    return o;
}

static ssize_t outputs_find(const output_def_t *defs, size_t n, const char *oid)
{
    for (size_t i = 0; oid && i < n; i++)
        if (strcmp(defs[i].id, oid) == 0)
            return (ssize_t)i;
    return -1;
}

/* ---- request bodies ------------------------------------------------------ */

typedef struct outputs_body {
    json_t *root;
    const char *url;       /* NULL: not given */
    const char *rendition; /* NULL: not given */
    int enabled;           /* -1: not given */
} outputs_body_t;

/* Parses and checks a POST or PATCH body. false with the 400 in *out. */
static bool outputs_body_read(const char *body, size_t len, outputs_body_t *b,
                              outputs_api_reply_t *out)
{
    memset(b, 0, sizeof(*b));
    b->enabled = -1;
    json_error_t jerr;
    b->root = len ? json_loadb(body, len, 0, &jerr) : NULL;
    if (!json_is_object(b->root)) {
        reply_error(out, MHD_HTTP_BAD_REQUEST,
                    "body must be a JSON object like {\"url\": \"rtmp://host/app/key\"}");
        return false;
    }
    const char *k;
    json_t *v;
    json_object_foreach(b->root, k, v)
    {
        if (strcmp(k, "url") == 0) {
            if (!json_is_string(v)) {
                reply_error(out, MHD_HTTP_BAD_REQUEST, "\"url\" must be a string");
                return false;
            }
            b->url = json_string_value(v);
        } else if (strcmp(k, "rendition") == 0) {
            if (!json_is_string(v) || !output_rendition_ok(json_string_value(v))) {
                reply_error(out, MHD_HTTP_BAD_REQUEST,
                            "\"rendition\" must be \"source\" or a rung name "
                            "([a-z0-9][a-z0-9_-]{0,30})");
                return false;
            }
            b->rendition = json_string_value(v);
        } else if (strcmp(k, "enabled") == 0) {
            if (!json_is_boolean(v)) {
                reply_error(out, MHD_HTTP_BAD_REQUEST, "\"enabled\" must be true or false");
                return false;
            }
            b->enabled = json_is_true(v);
        } else {
            reply_error(out, MHD_HTTP_BAD_REQUEST,
                        "unknown field: only \"url\", \"rendition\" and \"enabled\"");
            return false;
        }
    }
    if (b->url) {
        char why[200];
        /* The reason never quotes the URL. A URL with a NUL inside is
         * refused by jansson already. */
        if (strlen(b->url) != json_string_length(json_object_get(b->root, "url")) ||
            output_url_check(b->url, NULL, why, sizeof(why)) < 0) {
            reply_error(out, MHD_HTTP_BAD_REQUEST, why); /* "url ...": names the field */
            return false;
        }
    }
    return true;
}

/* ---- handlers ------------------------------------------------------------ */

static void outputs_list(store_t *st, const char *stream_id, outputs_api_reply_t *out)
{
    output_def_t *defs;
    size_t n;
    int rc = outputs_load(st, stream_id, &defs, &n);
    if (rc < 0) {
        reply_store_error(out, rc);
        return;
    }
    json_t *live = n ? outputs_live_status(st, stream_id) : NULL;
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, outputs_json(&defs[i], json_object_get(live, defs[i].id),
                                                NULL));
    json_decref(live);
    free(defs);
    reply(out, arr ? MHD_HTTP_OK : MHD_HTTP_INTERNAL_SERVER_ERROR,
          arr ? json_pack("{s:o}", "outputs", arr) : NULL);
}

static void outputs_get(store_t *st, const char *stream_id, const char *oid,
                        outputs_api_reply_t *out)
{
    output_def_t *defs;
    size_t n;
    int rc = outputs_load(st, stream_id, &defs, &n);
    if (rc < 0) {
        reply_store_error(out, rc);
        return;
    }
    ssize_t i = outputs_find(defs, n, oid);
    if (i < 0) {
        free(defs);
        reply_error(out, MHD_HTTP_NOT_FOUND, "no such output");
        return;
    }
    json_t *live = outputs_live_status(st, stream_id);
    reply(out, MHD_HTTP_OK, outputs_json(&defs[i], json_object_get(live, oid), NULL));
    json_decref(live);
    free(defs);
}

static void outputs_create(store_t *st, const char *stream_id, const char *body, size_t len,
                           bool live, outputs_api_reply_t *out)
{
    outputs_body_t b;
    if (!outputs_body_read(body, len, &b, out)) {
        json_decref(b.root);
        return;
    }
    if (!b.url) {
        json_decref(b.root);
        reply_error(out, MHD_HTTP_BAD_REQUEST,
                    "\"url\" is required: rtmp://host[:port]/app/key, rtmps://... or "
                    "srt://host:port[?streamid=...]");
        return;
    }
    pthread_mutex_lock(&outputs_lock);
    output_def_t *defs;
    size_t n;
    int rc = outputs_load(st, stream_id, &defs, &n);
    if (rc < 0) {
        pthread_mutex_unlock(&outputs_lock);
        json_decref(b.root);
        reply_store_error(out, rc);
        return;
    }
    if (n >= OUTPUT_MAX_PER_STREAM) {
        pthread_mutex_unlock(&outputs_lock);
        json_decref(b.root);
        free(defs);
        reply_error(out, MHD_HTTP_CONFLICT, "a stream has at most 8 outputs; delete one first");
        return;
    }
    output_def_t *grown = realloc(defs, (n + 1) * sizeof(*grown));
    if (!grown) {
        pthread_mutex_unlock(&outputs_lock);
        json_decref(b.root);
        free(defs);
        reply_error(out, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return;
    }
    defs = grown;
    output_def_t *d = &defs[n];
    memset(d, 0, sizeof(*d));
    do
        output_new_id(d->id);
    while (outputs_find(defs, n, d->id) >= 0);
    snprintf(d->url, sizeof(d->url), "%s", b.url);
    snprintf(d->rendition, sizeof(d->rendition), "%s",
             b.rendition ? b.rendition : OUTPUT_RENDITION_SOURCE);
    d->enabled = b.enabled != 0;
    d->created_ms = clock_wall_ms();
    json_decref(b.root);
    rc = outputs_save(st, stream_id, defs, n + 1);
    pthread_mutex_unlock(&outputs_lock);
    if (rc < 0) {
        free(defs);
        reply_store_error(out, rc);
        return;
    }
    char masked[OUTPUT_URL_MAX];
    output_url_mask(d->url, masked, sizeof(masked));
    log_info(OUTPUTS_LOG, "stream %s: output %s added: %s, rendition %s%s", stream_id, d->id,
             masked, d->rendition, d->enabled ? "" : ", disabled");
    reply(out, MHD_HTTP_CREATED,
          outputs_json(d, NULL, d->enabled && live ? "connecting" : "idle"));
    free(defs);
}

static void outputs_patch(store_t *st, const char *stream_id, const char *oid, const char *body,
                          size_t len, bool live, outputs_api_reply_t *out)
{
    outputs_body_t b;
    if (!outputs_body_read(body, len, &b, out)) {
        json_decref(b.root);
        return;
    }
    if (!b.url && !b.rendition && b.enabled < 0) {
        json_decref(b.root);
        reply_error(out, MHD_HTTP_BAD_REQUEST,
                    "nothing to change (\"url\", \"rendition\", \"enabled\")");
        return;
    }
    pthread_mutex_lock(&outputs_lock);
    output_def_t *defs;
    size_t n;
    int rc = outputs_load(st, stream_id, &defs, &n);
    ssize_t i = rc < 0 ? -1 : outputs_find(defs, n, oid);
    if (rc < 0 || i < 0) {
        pthread_mutex_unlock(&outputs_lock);
        json_decref(b.root);
        free(defs);
        if (rc < 0)
            reply_store_error(out, rc);
        else
            reply_error(out, MHD_HTTP_NOT_FOUND, "no such output");
        return;
    }
    output_def_t *d = &defs[i];
    bool restart = false; /* the engine (re)starts it: "connecting" */
    if (b.url && strcmp(b.url, d->url) != 0) {
        snprintf(d->url, sizeof(d->url), "%s", b.url);
        restart = true;
    }
    if (b.rendition && strcmp(b.rendition, d->rendition) != 0) {
        snprintf(d->rendition, sizeof(d->rendition), "%s", b.rendition);
        restart = true;
    }
    if (b.enabled >= 0 && (b.enabled != 0) != d->enabled) {
        d->enabled = b.enabled != 0;
        restart = true;
    }
    json_decref(b.root);
    rc = restart ? outputs_save(st, stream_id, defs, n) : 0;
    pthread_mutex_unlock(&outputs_lock);
    if (rc < 0) {
        free(defs);
        reply_store_error(out, rc);
        return;
    }
    char masked[OUTPUT_URL_MAX];
    output_url_mask(d->url, masked, sizeof(masked));
    if (restart)
        log_info(OUTPUTS_LOG, "stream %s: output %s changed: %s, rendition %s, %s", stream_id,
                 d->id, masked, d->rendition, d->enabled ? "enabled" : "disabled");
    json_t *status = live ? outputs_live_status(st, stream_id) : NULL;
    const char *state = !live ? "idle" : restart ? "connecting" : NULL;
    json_t *entry = json_object_get(status, d->id);
    if (live && !restart && !entry)
        state = "connecting";
    reply(out, MHD_HTTP_OK, outputs_json(d, entry, state));
    json_decref(status);
    free(defs);
}

static void outputs_delete(store_t *st, const char *stream_id, const char *oid,
                           outputs_api_reply_t *out)
{
    pthread_mutex_lock(&outputs_lock);
    output_def_t *defs;
    size_t n;
    int rc = outputs_load(st, stream_id, &defs, &n);
    ssize_t i = rc < 0 ? -1 : outputs_find(defs, n, oid);
    if (rc < 0 || i < 0) {
        pthread_mutex_unlock(&outputs_lock);
        free(defs);
        if (rc < 0)
            reply_store_error(out, rc);
        else
            reply_error(out, MHD_HTTP_NOT_FOUND, "no such output");
        return;
    }
    char masked[OUTPUT_URL_MAX];
    output_url_mask(defs[i].url, masked, sizeof(masked));
    memmove(&defs[i], &defs[i + 1], (n - (size_t)i - 1) * sizeof(*defs));
    rc = outputs_save(st, stream_id, defs, n - 1);
    pthread_mutex_unlock(&outputs_lock);
    free(defs);
    if (rc < 0) {
        reply_store_error(out, rc);
        return;
    }
    log_info(OUTPUTS_LOG, "stream %s: output %s deleted (%s)", stream_id, oid, masked);
    reply(out, MHD_HTTP_NO_CONTENT, NULL);
}

void outputs_api_handle(store_t *st, const char *method, const char *stream_id, const char *oid,
                        const char *body, size_t len, bool live, outputs_api_reply_t *out)
{
    bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
               strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (!oid) {
        if (get)
            outputs_list(st, stream_id, out);
        else if (strcmp(method, MHD_HTTP_METHOD_POST) == 0)
            outputs_create(st, stream_id, body, len, live, out);
        else {
            reply_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
            out->allow = "GET, POST";
        }
        return;
    }
    if (get)
        outputs_get(st, stream_id, oid, out);
    else if (strcmp(method, "PATCH") == 0)
        outputs_patch(st, stream_id, oid, body, len, live, out);
    else if (strcmp(method, MHD_HTTP_METHOD_DELETE) == 0)
        outputs_delete(st, stream_id, oid, out);
    else {
        reply_error(out, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
        out->allow = "GET, PATCH, DELETE";
    }
}

int outputs_api_count(store_t *st, const char *stream_id)
{
    output_def_t *defs;
    size_t n;
    int rc = outputs_load(st, stream_id, &defs, &n);
    free(defs);
    return rc < 0 ? rc : (int)n;
}

int outputs_api_metrics(store_t *st, const char *stream_id, outputs_api_metric_t **rows,
                        size_t *n)
{
    json_t *live = outputs_live_status(st, stream_id);
    if (!live)
        return 0;
    output_def_t *defs;
    size_t ndefs;
    int rc = 0;
    if (outputs_load(st, stream_id, &defs, &ndefs) < 0 || ndefs == 0) {
        json_decref(live);
        return 0;
    }
    outputs_api_metric_t *grown = realloc(*rows, (*n + ndefs) * sizeof(**rows));
    if (!grown) {
        rc = -ENOMEM;
        goto done;
    }
    *rows = grown;
    for (size_t i = 0; i < ndefs; i++) {
        const json_t *e = json_object_get(live, defs[i].id);
        if (!defs[i].enabled || !json_is_object(e))
            continue;
        outputs_api_metric_t *m = &(*rows)[(*n)++];
        memset(m, 0, sizeof(*m));
        snprintf(m->stream, sizeof(m->stream), "%s", stream_id);
        memcpy(m->id, defs[i].id, sizeof(m->id));
        memcpy(m->rendition, defs[i].rendition, sizeof(m->rendition));
        const char *state = json_string_value(json_object_get(e, "state"));
        m->up = state && strcmp(state, "live") == 0;
        m->bytes = (uint64_t)outputs_int(e, "bytes");
        m->dropped_packets = (uint64_t)outputs_int(e, "dropped_packets");
        m->retries = (uint64_t)outputs_int(e, "retries");
        m->bitrate_kbps = (double)outputs_int(e, "bitrate_kbps");
    }
done:
    free(defs);
    json_decref(live);
    return rc;
}
