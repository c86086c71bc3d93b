/*
 * The audience beacon's body -> beacon_t (beacon_internal.h). The size and
 * nesting are checked by one pass over the bytes before jansson builds
 * anything, so a body can cost at most BEACON_BODY_MAX bytes of parsing and
 * a handful of small allocations. Every refusal names its field in a static
 * text: nothing the client sent is echoed back. Pure; any thread.
 */
#include "beacon_internal.h"

#include <errno.h>
#include <string.h>

#include <jansson.h>

/* The deepest nesting of objects and arrays, strings skipped; -1 when it
 * passes max (the scan stops there). Malformed JSON is jansson's to find. */
static int beacon_depth(const char *p, size_t n, int max)
{
    int depth = 0, deepest = 0;
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_string) {
            if (c == '\\')
                i++; /* the escaped character, whatever it is */
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                return -1;
            if (depth > deepest)
                deepest = depth;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return deepest;
}

/* An optional integer field in [0, max]: absent or null leaves *out alone.
 * Returns false when present and not a whole number in range. */
static bool beacon_int(json_t *root, const char *key, int64_t max, int64_t *out)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return true;
    if (!json_is_integer(v))
        return false;
    json_int_t x = json_integer_value(v);
    if (x < 0 || x > max)
        return false;
    *out = (int64_t)x;
    return true;
}

/* The integer fields, each with its bound and the text naming it. */
typedef struct beacon_int_field {
    const char *key;
    int64_t max;
    size_t offset; /* into audience_session_t */
    const char *why;
} beacon_int_field_t;

#define BEACON_INT(key, max, field)                                                             \
    {key, max, offsetof(audience_session_t, field),                                            \
     "\"" key "\" must be an integer from 0 to " #max}

static const beacon_int_field_t beacon_ints[] = {
    BEACON_INT("latency_ms", 3600000, latency_ms),
    BEACON_INT("startup_ms", 600000, startup_ms),
    BEACON_INT("stalls", 1000000, stalls),
    BEACON_INT("stall_ms", 86400000, stall_ms),
    BEACON_INT("watch_ms", 86400000, watch_ms),
    BEACON_INT("dropped_frames", 100000000, dropped_frames),
    BEACON_INT("errors", 1000000, errors),
};

/* The spelled-out bounds above are audience.h's: a change there must show
 * here (and in the texts) at build time. */
_Static_assert(AUDIENCE_LATENCY_MS_MAX == 3600000, "latency bound");
_Static_assert(AUDIENCE_STARTUP_MS_MAX == 600000, "startup bound");
_Static_assert(AUDIENCE_COUNT_MAX == 1000000, "count bound");
_Static_assert(AUDIENCE_DURATION_MS_MAX == 86400000, "duration bound");
_Static_assert(AUDIENCE_DROPPED_MAX == 100000000, "dropped bound");

static int beacon_fields(json_t *root, beacon_t *out, const char **why)
{
    if (!json_is_object(root)) {
        *why = "the body must be a JSON object";
        return -EPROTO;
    }
    json_t *v = json_object_get(root, "session");
    if (!v) {
        *why = "\"session\" is missing";
        return -EPROTO;
    }
    if (!json_is_string(v) || !audience_session_id_valid(json_string_value(v), json_string_length(v))) {
        *why = "\"session\" must be 16 to 64 characters of A-Z a-z 0-9 _ -";
        return -EPROTO;
    }
    memcpy(out->session, json_string_value(v), json_string_length(v));
    out->session[json_string_length(v)] = '\0';

    v = json_object_get(root, "state");
    if (!v) {
        *why = "\"state\" is missing";
        return -EPROTO;
    }
    if (!json_is_string(v) ||
        audience_state_parse(json_string_value(v), json_string_length(v), &out->s.state) != 0) {
        *why = "\"state\" must be one of starting, playing, stalled, paused, ended, error";
        return -EPROTO;
    }

    v = json_object_get(root, "rendition");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v) ||
            !audience_rendition_valid(json_string_value(v), json_string_length(v))) {
            *why = "\"rendition\" must be null or 1 to 15 characters of a-z 0-9 _ -";
            return -EPROTO;
        }
        memcpy(out->s.rendition, json_string_value(v), json_string_length(v));
        out->s.rendition[json_string_length(v)] = '\0';
    }

    for (size_t i = 0; i < sizeof(beacon_ints) / sizeof(beacon_ints[0]); i++) {
        const beacon_int_field_t *f = &beacon_ints[i];
        if (!beacon_int(root, f->key, f->max, (int64_t *)((char *)&out->s + f->offset))) {
            *why = f->why;
            return -EPROTO;
        }
    }

    v = json_object_get(root, "player");
    if (v && !json_is_null(v)) {
        const char *p = json_is_string(v) ? json_string_value(v) : NULL;
        size_t n = p ? json_string_length(v) : 0;
        bool ok = p && n <= BEACON_PLAYER_MAX;
        for (size_t i = 0; ok && i < n; i++)
            ok = p[i] >= 0x20 && p[i] <= 0x7e;
        if (!ok) {
            *why = "\"player\" must be at most 40 printable ASCII characters";
            return -EPROTO;
        }
        memcpy(out->player, p, n);
        out->player[n] = '\0';
    }

    v = json_object_get(root, "token");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v)) {
            *why = "\"token\" must be a string";
            return -EPROTO;
        }
        size_t n = json_string_length(v);
        if (n > TOKEN_MAX + 1)
            n = TOKEN_MAX + 1;
        memcpy(out->token, json_string_value(v), n);
        out->token[n] = '\0';
        out->token_len = n;
        out->has_token = true;
    }
    return 0;
}

int beacon_parse(const char *body, size_t len, beacon_t *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    audience_session_init(&out->s);
    *why = NULL;
    if (len > BEACON_BODY_MAX) {
        *why = "the body is over 2048 bytes";
        return -EMSGSIZE;
    }
    if (len == 0) {
        *why = "the body is empty (a JSON object is expected)";
        return -EPROTO;
    }
    if (beacon_depth(body, len, BEACON_DEPTH_MAX) < 0) {
        *why = "the body nests too deep";
        return -EPROTO;
    }
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        *why = json_error_code(&jerr) == json_error_duplicate_key
                   ? "the body repeats a field"
                   : "the body is not valid JSON";
        return -EPROTO;
    }
    int rc = beacon_fields(root, out, why);
    json_decref(root);
    if (rc < 0) {
        /* Nothing half-filled leaves on a refusal. */
        const char *keep = *why;
        memset(out, 0, sizeof(*out));
        audience_session_init(&out->s);
        *why = keep;
    }
    return rc;
}
