/*
 * The admin listener: a libmicrohttpd daemon of its own (never routes on the
 * public origin) serving the stream API, /api/v1/stats and /metrics.
 *
 * Who may ask: with --admin-token every request needs "Authorization:
 * Bearer TOKEN" (compared in constant time, as SHA-256 digests so that not
 * even the length leaks); without a token only loopback peers are answered,
 * so a default install never exposes stream keys to the network.
 *
 * Threads: MHD's internal thread runs every handler. Handlers call the
 * store (thread-safe) and the report module (thread-safe); per-request
 * state (the POST body being read) lives in the request's own context and is
 * freed by the completion callback.
 *
 * Stream lifecycle against the store: create = registry add (the key is
 * hashed there and shown only in the 201 answer); delete = registry remove
 * (the key stops working on every node) + lease revoke (whichever node has
 * the publisher cuts it); rotate = registry rotate (+ revoke with
 * --key-rotation cut); disconnect = lease revoke only; the per-stream
 * recording override ("record") = a registry field (store_stream_set_record),
 * read by the recorder through store_stream_record(); the stream's own
 * ladder ("ladder") = a registry field (store_stream_set_ladder) holding
 * the canonical text of transcode's grammar (transcode_ladder_from_json
 * checks it here, the worker applies it at the stream's next broadcast).
 *
 * Simulcast outputs (/api/v1/streams/ID/outputs[/OID]) are outputs_api.c's:
 * a registry field (store_stream_set_outputs) with output/'s grammar, and
 * the engine's live status (meta "outputs"); their URLs only ever masked.
 *
 * Recordings (/api/v1/streams/ID/recordings, /api/v1/recordings/RID) are
 * read from --recordings-dir by recordings.c; their URLs point at the
 * public origin's /vod/.
 */
#include "admin.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <microhttpd.h>
#include <strings.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "hls_names.h"
#include "hls_playlist.h"
#include "log.h"
#include "netaddr.h"
#include "origin.h"
#include "outputs_api_internal.h"
#include "clips_internal.h"
#include "recordings_internal.h"
#include "web.h"

#define ADMIN_BODY_MAX 65536
#define ADMIN_API "/api/v1/streams"
#define ADMIN_ID_BYTES 16  /* 128-bit ids, 32 hex characters */
#define ADMIN_KEY_BYTES 32 /* 256-bit keys */

struct admin {
    struct MHD_Daemon *daemon;
    store_t *store;
    report_t *report;
    pthread_mutex_t token_lock; /* has_token, token_digest (SIGHUP changes them) */
    bool has_token;
    uint8_t token_digest[SHA256_DIGEST_LENGTH];
    char *public_http_url;
    char *public_rtmp_url;
    char *recordings_dir; /* NULL: none */
    clip_service_t *clips; /* NULL: clips cannot be made here */
    bool rotate_cuts;
    bool record; /* --record */
    int port;
    char *listen_host;   /* the host part of --admin-listen, lower case */
    char *allowed_hosts; /* --admin-allowed-hosts, lower case; NULL: none */
    transcode_rung_spec_t *rungs; /* [rung.NAME] sections, for "ladder"; NULL: none */
    size_t nrungs;
    int (*metadata_cb)(void *opaque, const char *stream_id, const uint8_t *payload, size_t len,
                       ingest_metadata_stamp_t *out);
    void *metadata_opaque;
};

/* One request's state: the body read so far. */
typedef struct admin_req {
    char *body;
    size_t len;
    bool too_big;
} admin_req_t;

/* ---- replies ------------------------------------------------------------- */

/* Queues obj (consumed) as a one-line JSON answer, with one extra header
 * when hname is not NULL. */
static enum MHD_Result admin_reply_json_hdr(struct MHD_Connection *c, unsigned int status,
                                            json_t *obj, const char *hname, const char *hvalue)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(obj);
    if (!text)
        return MHD_NO;
    size_t n = strlen(text);
    /* One line per document: easy to read with curl, and jq is happy. */
    char *withnl = realloc(text, n + 2);
    if (!withnl) {
        free(text);
        return MHD_NO;
    }
    withnl[n] = '\n';
    withnl[n + 1] = '\0';
    struct MHD_Response *r =
        MHD_create_response_from_buffer(n + 1, withnl, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(withnl);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (hname)
        MHD_add_response_header(r, hname, hvalue);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result admin_reply_json(struct MHD_Connection *c, unsigned int status,
                                        json_t *obj)
{
    return admin_reply_json_hdr(c, status, obj, NULL, NULL);
}

static enum MHD_Result admin_reply_error(struct MHD_Connection *c, unsigned int status,
                                         const char *msg)
{
    json_t *o = json_pack("{s:s}", "error", msg);
    return admin_reply_json(c, status, o);
}

/* A dashboard file: never framed, revalidated on every load (no-cache). */
static enum MHD_Result admin_reply_asset(struct MHD_Connection *c, const web_asset_t *a)
{
    if (!a)
        return admin_reply_error(c, MHD_HTTP_NOT_FOUND, "not found");
    return (enum MHD_Result)web_reply_asset(c, a, "no-cache", false);
}

static enum MHD_Result admin_reply_empty(struct MHD_Connection *c, unsigned int status)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result admin_reply_method(struct MHD_Connection *c, const char *allow)
{
    return admin_reply_json_hdr(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                                json_pack("{s:s}", "error", "method not allowed"), "Allow", allow);
}

/* A store failure as the API says it: -ENOENT is the caller's 404, -EIO a
 * 503 the platform may retry. */
static enum MHD_Result admin_reply_store_error(struct MHD_Connection *c, int rc)
{
    if (rc == -ENOENT)
        return admin_reply_error(c, MHD_HTTP_NOT_FOUND, "no such stream");
    if (rc == -EIO)
        return admin_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "store unavailable; retry");
    return admin_reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, strerror(-rc));
}

/* ---- access ---------------------------------------------------------------- */

static bool admin_peer_is_loopback(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return false;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

/* The host part of a Host header value (without port or brackets), lower
 * case, into out; false when it is not a host[:port] at all. */
static bool admin_host_part(const char *v, char *out, size_t cap)
{
    size_t n;
    if (v[0] == '[') {
        const char *e = strchr(v, ']');
        if (!e || (e[1] != '\0' && e[1] != ':'))
            return false;
        v++;
        n = (size_t)(e - v);
    } else {
        const char *colon = strchr(v, ':');
        if (colon && strchr(colon + 1, ':'))
            return false;
        n = colon ? (size_t)(colon - v) : strlen(v);
    }
    if (n == 0 || n >= cap)
        return false;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)v[i]);
    out[n] = '\0';
    if (n > 1 && out[n - 1] == '.')
        out[n - 1] = '\0';
    return true;
}

/* Whether name is one of the comma-separated names in list ("*": any). */
static bool admin_name_listed(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if ((n == 1 && *p == '*') || (n == len && strncmp(p, name, n) == 0))
            return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}

/* DNS rebinding: a page that points its own name at this listener reaches
 * it with that name in Host. An IP literal cannot be rebound, localhost
 * and *.localhost are loopback by definition (RFC 6761), and the names the
 * operator lists (and the listen address's own name) are this listener's;
 * any other name is refused. No Host at all (HTTP/1.0) comes from no
 * browser. The port is not compared: an SSH tunnel changes it. */
static bool admin_host_ok(const admin_t *a, struct MHD_Connection *c, char *host, size_t cap)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    if (!v || !*v) {
        snprintf(host, cap, "(none)");
        return true;
    }
    if (!admin_host_part(v, host, cap)) {
        snprintf(host, cap, "(malformed)");
        return false;
    }
    unsigned char bin[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, host, bin) == 1 || inet_pton(AF_INET6, host, bin) == 1)
        return true;
    size_t n = strlen(host);
    if (strcmp(host, "localhost") == 0 || (n > 10 && strcmp(host + n - 10, ".localhost") == 0))
        return true;
    if (a->listen_host && strcmp(host, a->listen_host) == 0)
        return true;
    return admin_name_listed(a->allowed_hosts, host);
}

/* The request came through an HTTP proxy: then the TCP peer is the proxy,
 * and a loopback peer says nothing of the client. */
static const char *admin_proxy_header(struct MHD_Connection *c)
{
    static const char *const names[] = {"Forwarded", "X-Forwarded-For", "X-Forwarded-Host",
                                        "X-Forwarded-Proto", "X-Real-IP", "Via"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, names[i]))
            return names[i];
    return NULL;
}

static bool admin_method_changes(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
           strcmp(method, "OPTIONS") != 0;
}

/* Whether a Content-Type value is application/json (parameters allowed). */
static bool admin_is_json(const char *ct)
{
    static const char json[] = "application/json";
    size_t n = sizeof(json) - 1;
    if (strncasecmp(ct, json, n) != 0)
        return false;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

/* CSRF: a request that changes state must come from this listener's own
 * page or from a client that is no browser page at all. A browser says
 * where a request comes from (Sec-Fetch-Site, Origin); a cross-site page
 * can only send "simple" requests, whose Content-Type is never JSON, so a
 * state-changing request that names a Content-Type must name
 * application/json (one with a body must name it: admin_access_cb). NULL
 * when allowed, else why not, with the answer's *status. */
static const char *admin_cross_site(struct MHD_Connection *c, const char *method,
                                    unsigned int *status)
{
    *status = MHD_HTTP_FORBIDDEN;
    if (!admin_method_changes(method))
        return NULL;
    const char *sfs = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-Fetch-Site");
    if (sfs && strcasecmp(sfs, "same-origin") != 0 && strcasecmp(sfs, "none") != 0)
        return "cross-site request refused (Sec-Fetch-Site)";
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (origin) {
        const char *hp = strstr(origin, "://");
        const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
        if (!hp || !host || strcasecmp(hp + 3, host) != 0)
            return "cross-site request refused (Origin is not this listener)";
    }
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    if (ct && !admin_is_json(ct)) {
        *status = MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
        return "Content-Type must be application/json";
    }
    return NULL;
}

/* true when the request may proceed, else the refusal is queued in *denied. */
static bool admin_allowed(admin_t *a, struct MHD_Connection *c, const char *url,
                          const char *method, enum MHD_Result *denied)
{
    char host[256];
    if (!admin_host_ok(a, c, host, sizeof(host))) {
        log_warn("admin", "%s %s refused: Host '%s' is not a name of this listener "
                 "(--admin-allowed-hosts)", method, url, host);
        *denied = admin_reply_error(c, MHD_HTTP_MISDIRECTED_REQUEST,
                                    "this Host is not a name of the admin listener; "
                                    "add it to --admin-allowed-hosts");
        return false;
    }
    unsigned int status;
    const char *why = admin_cross_site(c, method, &status);
    if (why) {
        log_warn("admin", "%s %s refused: %s", method, url, why);
        *denied = admin_reply_error(c, status, why);
        return false;
    }
    pthread_mutex_lock(&a->token_lock);
    bool has_token = a->has_token;
    uint8_t want[SHA256_DIGEST_LENGTH];
    memcpy(want, a->token_digest, sizeof(want));
    pthread_mutex_unlock(&a->token_lock);
    if (!has_token) {
        const char *proxy = admin_proxy_header(c);
        if (proxy) {
            log_warn("admin", "%s %s refused: it came through a proxy (%s) and no "
                     "--admin-token is set", method, url, proxy);
            *denied = admin_reply_error(c, MHD_HTTP_FORBIDDEN,
                                        "a request through a proxy is not a loopback client; "
                                        "set --admin-token");
            return false;
        }
        if (admin_peer_is_loopback(c))
            return true;
        *denied = admin_reply_error(c, MHD_HTTP_FORBIDDEN,
                                    "the admin API answers loopback clients only unless "
                                    "--admin-token is set");
        return false;
    }
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    static const char bearer[] = "Bearer ";
    bool ok = false;
    if (h && strncasecmp(h, bearer, sizeof(bearer) - 1) == 0) {
        const char *t = h + sizeof(bearer) - 1;
        uint8_t d[SHA256_DIGEST_LENGTH];
        SHA256((const unsigned char *)t, strlen(t), d);
        ok = CRYPTO_memcmp(d, want, sizeof(d)) == 0;
    } else if (h) {
        /* Basic, for a browser opening the dashboard: any user name, the
         * token as the password (the browser asks for it and then sends it
         * with the dashboard's own API calls). */
        char *pass = NULL;
        char *user = MHD_basic_auth_get_username_password(c, &pass);
        if (pass) {
            uint8_t d[SHA256_DIGEST_LENGTH];
            SHA256((const unsigned char *)pass, strlen(pass), d);
            ok = CRYPTO_memcmp(d, want, sizeof(d)) == 0;
            OPENSSL_cleanse(pass, strlen(pass));
        }
        MHD_free(user);
        MHD_free(pass);
    }
    OPENSSL_cleanse(want, sizeof(want));
    if (ok)
        return true;
    why = h ? "invalid admin token" : "missing Authorization: Bearer token";
    /* A browser (the dashboard) is offered Basic so that it asks for the
     * token; API clients are told about Bearer. */
    *denied = admin_reply_json_hdr(c, MHD_HTTP_UNAUTHORIZED, json_pack("{s:s}", "error", why),
                                   "WWW-Authenticate",
                                   strncmp(url, "/dashboard", 10) == 0
                                       ? "Basic realm=\"sluice admin\", charset=\"UTF-8\""
                                       : "Bearer realm=\"sluice admin\"");
    return false;
}

/* ---- streams ------------------------------------------------------------- */

static void admin_hex(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* A fresh 256-bit key, base64url without padding (43 characters). */
static int admin_new_key(char out[64])
{
    uint8_t raw[ADMIN_KEY_BYTES];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -EIO;
    char b64[64];
    int n = EVP_EncodeBlock((unsigned char *)b64, raw, sizeof(raw));
    OPENSSL_cleanse(raw, sizeof(raw));
    int j = 0;
    for (int i = 0; i < n && b64[i] != '='; i++)
        out[j++] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    out[j] = '\0';
    OPENSSL_cleanse(b64, sizeof(b64));
    return 0;
}

static json_t *admin_urls(const admin_t *a, json_t *o, const char *id)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s/hls/%s/" HLS_NAME_MASTER, a->public_http_url, id);
    json_object_set_new(o, "playback_url", json_string(buf));
    snprintf(buf, sizeof(buf), "%s/player/%s", a->public_http_url, id);
    json_object_set_new(o, "player_url", json_string(buf));
    return o;
}

/* A stored ladder as the API shows it: the object as set, or null (the
 * server's ladder). */
static json_t *admin_ladder_json(const char *stored)
{
    json_t *v = stored && stored[0] ? json_loads(stored, 0, NULL) : NULL;
    return v ? v : json_null();
}

/* A body's "ladder": checked by transcode's grammar (the one owner) and
 * put in its canonical text in out; null (allowed in both POST and PATCH)
 * gives "": the server's ladder. false with the 400 queued. */
static bool admin_ladder_value(const admin_t *a, struct MHD_Connection *c, const json_t *v,
                               char out[TRANSCODE_LADDER_TEXT_MAX], enum MHD_Result *ret)
{
    out[0] = '\0';
    if (json_is_null(v))
        return true;
    transcode_ladder_t l;
    char err[300];
    if (transcode_ladder_from_json(v, a->rungs, a->nrungs, &l, err, sizeof(err)) < 0) {
        *ret = admin_reply_error(c, MHD_HTTP_BAD_REQUEST, err);
        return false;
    }
    if (transcode_ladder_format(&l, out) < 0) {
        *ret = admin_reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return false;
    }
    return true;
}

/* The status object of one registered stream (docs/api.md, "Status").
 * with_outputs: add "outputs", how many simulcast outputs it has (one more
 * store read: in a stream's own status, not in the list, which the
 * dashboard polls every 2 s for every stream). */
static json_t *admin_status(const admin_t *a, const store_stream_info_t *info, bool with_outputs)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "id", json_string(info->id));
    json_object_set_new(o, "name", json_string(info->name));
    if (info->created_ms > 0)
        json_object_set_new(o, "created_ms", json_integer(info->created_ms));
    admin_urls(a, o, info->id);
    /* The effective value: the stream's override, else --record. */
    json_object_set_new(o, "record",
                        json_boolean(info->record == STORE_RECORD_DEFAULT ? a->record
                                                                          : info->record ==
                                                                                STORE_RECORD_ON));
    json_object_set_new(o, "ladder", admin_ladder_json(info->ladder));
    /* How many simulcast outputs it has (their state: .../outputs). */
    int noutputs = with_outputs ? outputs_api_count(a->store, info->id) : -1;
    if (noutputs >= 0)
        json_object_set_new(o, "outputs", json_integer(noutputs));
    report_stream_status(a->report, info->id, o);
    return o;
}

/* Whether the stream is live now, on any node (its status says so). */
static bool admin_stream_live(const admin_t *a, const char *id)
{
    json_t *o = json_object();
    if (!o)
        return false;
    report_stream_status(a->report, id, o);
    const char *state = json_string_value(json_object_get(o, "state"));
    bool live = state && strcmp(state, "live") == 0;
    json_decref(o);
    return live;
}

/* /api/v1/streams/ID/outputs[/OID] (outputs_api.c). rest: what follows
 * "/outputs". */
static enum MHD_Result admin_outputs(admin_t *a, struct MHD_Connection *c, const char *method,
                                     const char *id, const char *rest, const admin_req_t *rq)
{
    const char *oid = NULL;
    if (rest[0] == '/' && rest[1] != '\0') {
        oid = rest + 1;
        if (strchr(oid, '/'))
            return admin_reply_error(c, MHD_HTTP_NOT_FOUND, "not found");
    } else if (rest[0] != '\0' && strcmp(rest, "/") != 0) {
        return admin_reply_error(c, MHD_HTTP_NOT_FOUND, "not found");
    }
    bool changes = strcmp(method, MHD_HTTP_METHOD_POST) == 0 || strcmp(method, "PATCH") == 0;
    outputs_api_reply_t out;
    outputs_api_handle(a->store, method, id, oid, rq->body, rq->len,
                       changes && admin_stream_live(a, id), &out);
    if (out.status == MHD_HTTP_NO_CONTENT) {
        json_decref(out.body);
        return admin_reply_empty(c, out.status);
    }
    if (out.allow)
        return admin_reply_json_hdr(c, out.status, out.body, "Allow", out.allow);
    return admin_reply_json(c, out.status, out.body);
}

/* A body's "record": true, false, or (allow_null) null for "follow
 * --record". *out = STORE_RECORD_*; false with the error queued. */
static bool admin_record_value(struct MHD_Connection *c, json_t *v, bool allow_null, int *out,
                               enum MHD_Result *ret)
{
    if (json_is_boolean(v)) {
        *out = json_is_true(v) ? STORE_RECORD_ON : STORE_RECORD_OFF;
        return true;
    }
    if (allow_null && json_is_null(v)) {
        *out = STORE_RECORD_DEFAULT;
        return true;
    }
    *ret = admin_reply_error(c, MHD_HTTP_BAD_REQUEST,
                             allow_null ? "\"record\" must be true, false or null"
                                        : "\"record\" must be true or false");
    return false;
}

/* A display name: 1..255 bytes of UTF-8 (jansson checked that) without
 * control characters. */
static bool admin_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= STORE_NAME_LEN_MAX)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static enum MHD_Result admin_create(admin_t *a, struct MHD_Connection *c, const admin_req_t *rq)
{
    const char *name = NULL;
    int record = STORE_RECORD_DEFAULT;
    char ladder[TRANSCODE_LADDER_TEXT_MAX] = "";
    json_t *body = NULL;
    if (rq->len > 0) {
        json_error_t jerr;
        body = json_loadb(rq->body, rq->len, 0, &jerr);
        if (!body) {
            char msg[300];
            snprintf(msg, sizeof(msg), "body is not valid JSON: %s (line %d, column %d)",
                     jerr.text, jerr.line, jerr.column);
            return admin_reply_error(c, MHD_HTTP_BAD_REQUEST, msg);
        }
        if (!json_is_object(body)) {
            json_decref(body);
            return admin_reply_error(c, MHD_HTTP_BAD_REQUEST, "body must be a JSON object");
        }
        json_t *jn = json_object_get(body, "name");
        if (jn && !json_is_string(jn)) {
            json_decref(body);
            return admin_reply_error(c, MHD_HTTP_BAD_REQUEST, "\"name\" must be a string");
        }
        name = jn ? json_string_value(jn) : NULL;
        if (name && !admin_name_valid(name)) {
            json_decref(body);
            return admin_reply_error(c, MHD_HTTP_BAD_REQUEST,
                                     "\"name\" must be 1-255 bytes without control characters");
        }
        json_t *jr = json_object_get(body, "record");
        enum MHD_Result bad;
        if (jr && !admin_record_value(c, jr, true, &record, &bad)) {
            json_decref(body);
            return bad;
        }
        json_t *jl = json_object_get(body, "ladder");
        if (jl && !admin_ladder_value(a, c, jl, ladder, &bad)) {
            json_decref(body);
            return bad;
        }
    }
    uint8_t raw[ADMIN_ID_BYTES];
    char id[2 * ADMIN_ID_BYTES + 1], key[64];
    if (RAND_bytes(raw, sizeof(raw)) != 1 || admin_new_key(key) != 0) {
        json_decref(body);
        return admin_reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "no randomness available");
    }
    admin_hex(raw, sizeof(raw), id);
    int rc = store_stream_add(a->store, id, name ? name : id, key);
    if (rc < 0) {
        json_decref(body);
        OPENSSL_cleanse(key, sizeof(key));
        log_warn("admin", "stream create failed: %s", strerror(-rc));
        return admin_reply_store_error(c, rc);
    }
    if ((record != STORE_RECORD_DEFAULT &&
         (rc = store_stream_set_record(a->store, id, record)) < 0) ||
        (ladder[0] && (rc = store_stream_set_ladder(a->store, id, ladder)) < 0)) {
        /* Not half made: a stream that would not record or transcode as
         * asked is gone. */
        if (store_stream_remove(a->store, id) < 0)
            log_warn("admin", "stream %s: half created (record or ladder not set) and not "
                              "removed", id);
        json_decref(body);
        OPENSSL_cleanse(key, sizeof(key));
        log_warn("admin", "stream create failed: %s", strerror(-rc));
        return admin_reply_store_error(c, rc);
    }
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "name", json_string(name ? name : id));
    json_object_set_new(o, "stream_key", json_string(key));
    json_object_set_new(o, "rtmp_url", json_string(a->public_rtmp_url));
    char full[1024];
    snprintf(full, sizeof(full), "%s/%s", a->public_rtmp_url, key);
    json_object_set_new(o, "rtmp_publish_url", json_string(full));
    OPENSSL_cleanse(full, sizeof(full));
    OPENSSL_cleanse(key, sizeof(key));
    admin_urls(a, o, id);
    json_object_set_new(o, "record", json_boolean(record == STORE_RECORD_DEFAULT
                                                      ? a->record
                                                      : record == STORE_RECORD_ON));
    json_object_set_new(o, "ladder", admin_ladder_json(ladder));
    log_info("admin", "stream %s created (\"%s\")%s%s", id, name ? name : id,
             ladder[0] ? ", ladder " : "", ladder);
    json_decref(body);
    return admin_reply_json(c, MHD_HTTP_CREATED, o);
}

static enum MHD_Result admin_list(admin_t *a, struct MHD_Connection *c)
{
    store_stream_info_t *infos = NULL;
    size_t n = 0;
    int rc = store_stream_list(a->store, &infos, &n);
    if (rc < 0)
        return admin_reply_store_error(c, rc);
    json_t *arr = json_array();
    for (size_t i = 0; i < n && arr; i++)
        json_array_append_new(arr, admin_status(a, &infos[i], false));
    free(infos);
    json_t *o = arr ? json_pack("{s:o}", "streams", arr) : NULL;
    return admin_reply_json(c, MHD_HTTP_OK, o);
}

static enum MHD_Result admin_get(admin_t *a, struct MHD_Connection *c, const char *id)
{
    store_stream_info_t info;
    int rc = store_stream_get(a->store, id, &info);
    if (rc < 0)
        return admin_reply_store_error(c, rc);
    return admin_reply_json(c, MHD_HTTP_OK, admin_status(a, &info, true));
}

static enum MHD_Result admin_delete(admin_t *a, struct MHD_Connection *c, const char *id)
{
    int rc = store_stream_remove(a->store, id);
    if (rc < 0)
        return admin_reply_store_error(c, rc);
    /* The key is dead everywhere now; cut whoever is still publishing it. */
    rc = store_lease_revoke(a->store, id);
    if (rc < 0)
        log_warn("admin", "stream %s deleted, but its publisher could not be told to stop (%s); "
                          "it is cut when its node next renews its lease", id, strerror(-rc));
    log_info("admin", "stream %s deleted", id);
    return admin_reply_empty(c, MHD_HTTP_NO_CONTENT);
}

static enum MHD_Result admin_rotate(admin_t *a, struct MHD_Connection *c, const char *id)
{
    char key[64];
    if (admin_new_key(key) != 0)
        return admin_reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "no randomness available");
    int rc = store_stream_rotate(a->store, id, key);
    if (rc < 0) {
        OPENSSL_cleanse(key, sizeof(key));
        return admin_reply_store_error(c, rc);
    }
    if (a->rotate_cuts && store_lease_revoke(a->store, id) < 0)
        log_warn("admin", "stream %s: key rotated, but its publisher could not be cut", id);
    log_info("admin", "stream %s: key rotated%s", id,
             a->rotate_cuts ? ", live publisher cut" : "; a live publisher may finish");
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "stream_key", json_string(key));
    json_object_set_new(o, "rtmp_url", json_string(a->public_rtmp_url));
    char full[1024];
    snprintf(full, sizeof(full), "%s/%s", a->public_rtmp_url, key);
    json_object_set_new(o, "rtmp_publish_url", json_string(full));
    OPENSSL_cleanse(full, sizeof(full));
    OPENSSL_cleanse(key, sizeof(key));
    return admin_reply_json(c, MHD_HTTP_OK, o);
}

static enum MHD_Result admin_disconnect(admin_t *a, struct MHD_Connection *c, const char *id)
{
    int rc = store_stream_exists(a->store, id);
    if (rc < 0)
        return admin_reply_store_error(c, rc);
    rc = store_lease_revoke(a->store, id);
    if (rc < 0)
        return admin_reply_store_error(c, rc);
    log_info("admin", "stream %s: publisher disconnect requested", id);
    return admin_reply_empty(c, MHD_HTTP_NO_CONTENT);
}

/* POST /api/v1/streams/ID/metadata {"payload": "<UTF-8, at most 1024
 * bytes>"}: 202 {"id", "media_time_ms", "program_date_time"}, the stamp at
 * the live edge; the program date-time is the START-DATE of the item's
 * EXT-X-DATERANGE (the packager repeats the one stamped here). 400 for a
 * body that is no JSON object with a string "payload" (jansson refuses
 * invalid UTF-8 and \u0000), 413 over 1024 bytes, 404 when the stream is
 * not live on this node (metadata goes to the node that ingests it), 429
 * over 5 a second (burst 10) with Retry-After, 503 with Retry-After while
 * the stream has no packaged media yet. */
static enum MHD_Result admin_metadata(admin_t *a, struct MHD_Connection *c, const char *id,
                                      const admin_req_t *rq)
{
    json_error_t jerr;
    json_t *body = rq->len > 0 ? json_loadb(rq->body, rq->len, 0, &jerr) : NULL;
    if (!body)
        return admin_reply_error(c, MHD_HTTP_BAD_REQUEST,
                                 "body must be JSON (UTF-8) like {\"payload\": \"text\"}");
    json_t *jp = json_is_object(body) ? json_object_get(body, "payload") : NULL;
    if (!json_is_string(jp)) {
        json_decref(body);
        return admin_reply_error(c, MHD_HTTP_BAD_REQUEST, "\"payload\" must be a string");
    }
    size_t len = json_string_length(jp);
    if (len > MEDIA_TIMED_METADATA_MAX) {
        json_decref(body);
        return admin_reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE,
                                 "\"payload\" is over 1024 bytes");
    }
    ingest_metadata_stamp_t st = {0};
    int rc = a->metadata_cb ? a->metadata_cb(a->metadata_opaque, id,
                                             (const uint8_t *)json_string_value(jp), len, &st)
                            : -ENOENT;
    json_decref(body);
    char retry[16];
    switch (rc) {
    case 0:
        break;
    case -ENOENT:
        return admin_reply_error(c, MHD_HTTP_NOT_FOUND,
                                 "stream is not live on this node (or does not exist): post "
                                 "metadata to the node that ingests it");
    case -EAGAIN:
        return admin_reply_json_hdr(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                                    json_pack("{s:s}", "error",
                                              "the stream has no packaged media yet; retry"),
                                    "Retry-After", "1");
    case -EBUSY:
        snprintf(retry, sizeof(retry), "%d", st.retry_after_s > 0 ? st.retry_after_s : 1);
        return admin_reply_json_hdr(c, MHD_HTTP_TOO_MANY_REQUESTS,
                                    json_pack("{s:s}", "error",
                                              "over 5 metadata items a second for this stream "
                                              "(burst 10)"),
                                    "Retry-After", retry);
    case -EMSGSIZE:
        return admin_reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "\"payload\" is over 1024 bytes");
    case -EILSEQ:
        return admin_reply_error(c, MHD_HTTP_BAD_REQUEST, "\"payload\" is not valid UTF-8");
    default:
        return admin_reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, strerror(-rc));
    }
    char pdt[40];
    hls_playlist_format_pdt(st.pdt_ms, pdt, sizeof(pdt));
    log_info("admin", "stream %s: timed metadata %" PRIu32 " (%zu bytes) at %" PRId64 " ms, %s",
             id, st.id, len, st.media_time_ms, pdt);
    return admin_reply_json(c, MHD_HTTP_ACCEPTED,
                            json_pack("{s:I,s:I,s:s}", "id", (json_int_t)st.id, "media_time_ms",
                                      (json_int_t)st.media_time_ms, "program_date_time", pdt));
}

/* PATCH /api/v1/streams/ID {"record": true|false|null, "ladder": {...}|null}:
 * 200 with the status and "applies": "next_publish" (a live broadcast keeps
 * what it started with). Only "record" and "ladder" may be changed; any
 * other key is a 400, so that a client never believes it changed something
 * it did not. Both are checked before either is written. */
static enum MHD_Result admin_patch(admin_t *a, struct MHD_Connection *c, const char *id,
                                   const admin_req_t *rq)
{
    json_error_t jerr;
    json_t *body = rq->len ? json_loadb(rq->body, rq->len, 0, &jerr) : NULL;
    if (!json_is_object(body)) {
        json_decref(body);
        return admin_reply_error(c, MHD_HTTP_BAD_REQUEST, "body must be a JSON object");
    }
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "record") != 0 && strcmp(k, "ladder") != 0) {
            json_decref(body);
            return admin_reply_error(c, MHD_HTTP_BAD_REQUEST,
                                     "only \"record\" and \"ladder\" can be changed");
        }
    }
    json_t *jr = json_object_get(body, "record"), *jl = json_object_get(body, "ladder");
    int record = STORE_RECORD_DEFAULT;
    char ladder[TRANSCODE_LADDER_TEXT_MAX];
    enum MHD_Result bad;
    if (!jr && !jl) {
        json_decref(body);
        return admin_reply_error(c, MHD_HTTP_BAD_REQUEST,
                                 "nothing to change (\"record\", \"ladder\")");
    }
    if ((jr && !admin_record_value(c, jr, true, &record, &bad)) ||
        (jl && !admin_ladder_value(a, c, jl, ladder, &bad))) {
        json_decref(body);
        return bad;
    }
    json_decref(body);
    int rc = 0;
    if (jr && (rc = store_stream_set_record(a->store, id, record)) < 0)
        return admin_reply_store_error(c, rc);
    if (jr)
        log_info("admin", "stream %s: record %s", id,
                 record == STORE_RECORD_DEFAULT ? "follows --record"
                 : record == STORE_RECORD_ON    ? "on"
                                                : "off");
    if (jl && (rc = store_stream_set_ladder(a->store, id, ladder)) < 0)
        return admin_reply_store_error(c, rc);
    if (jl)
        log_info("admin", "stream %s: ladder %s%s from its next publish", id,
                 ladder[0] ? ladder : "back to the server's", ladder[0] ? "," : "");
    store_stream_info_t info;
    if ((rc = store_stream_get(a->store, id, &info)) < 0)
        return admin_reply_store_error(c, rc);
    json_t *o = admin_status(a, &info, true);
    if (o)
        json_object_set_new(o, "applies", json_string("next_publish"));
    return admin_reply_json(c, MHD_HTTP_OK, o);
}

/* Adds the public URLs of a recording object (its "id" set). */
static void admin_recording_urls(const admin_t *a, json_t *rec)
{
    const char *rid = json_string_value(json_object_get(rec, "id"));
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s/vod/%s/" HLS_NAME_MASTER, a->public_http_url, rid);
    json_object_set_new(rec, "playback_url", json_string(buf));
    if (json_is_string(json_object_get(rec, "poster"))) {
        snprintf(buf, sizeof(buf), "%s/vod/%s/poster.jpg", a->public_http_url, rid);
        json_object_set_new(rec, "poster_url", json_string(buf));
    }
    if (json_is_string(json_object_get(rec, "mp4"))) {
        snprintf(buf, sizeof(buf), "%s/vod/%s/recording.mp4", a->public_http_url, rid);
        json_object_set_new(rec, "mp4_url", json_string(buf));
    }
}

static enum MHD_Result admin_recordings_error(struct MHD_Connection *c, int rc)
{
    if (rc == -ENOENT)
        return admin_reply_error(c, MHD_HTTP_NOT_FOUND, "no such recording");
    if (rc == -EBUSY)
        return admin_reply_error(c, MHD_HTTP_CONFLICT,
                                 "the recording is still being written; delete it once it ends");
    if (rc == -ENOMEM)
        return MHD_NO;
    return admin_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                             "the recordings directory cannot be read; retry");
}

/* GET /api/v1/streams/ID/recordings */
static enum MHD_Result admin_stream_recordings(admin_t *a, struct MHD_Connection *c,
                                               const char *id)
{
    int rc = store_stream_exists(a->store, id);
    if (rc < 0)
        return admin_reply_store_error(c, rc);
    json_t *arr;
    rc = recordings_list(a->recordings_dir, id, &arr);
    if (rc < 0)
        return admin_recordings_error(c, rc);
    size_t i;
    json_t *rec;
    json_array_foreach(arr, i, rec)
        admin_recording_urls(a, rec);
    return admin_reply_json(c, MHD_HTTP_OK, json_pack("{s:o}", "recordings", arr));
}

/* /api/v1/recordings/RID: GET, DELETE */
static enum MHD_Result admin_route_recording(admin_t *a, struct MHD_Connection *c,
                                             const char *method, const char *rid)
{
    if (strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0) {
        json_t *rec;
        int rc = recordings_get(a->recordings_dir, rid, &rec);
        if (rc < 0)
            return admin_recordings_error(c, rc);
        admin_recording_urls(a, rec);
        return admin_reply_json(c, MHD_HTTP_OK, rec);
    }
    if (strcmp(method, MHD_HTTP_METHOD_DELETE) == 0) {
        int rc = recordings_delete(a->recordings_dir, rid);
        if (rc < 0)
            return admin_recordings_error(c, rc);
        log_info("admin", "recording %s deleted", rid);
        return admin_reply_empty(c, MHD_HTTP_NO_CONTENT);
    }
    return admin_reply_method(c, "GET, DELETE");
}

/* ---- clips (clips.c; docs/clips.md) --------------------------------------- */

static void admin_clip_urls(admin_t *a, json_t *clip)
{
    const char *cid = json_string_value(json_object_get(clip, "id"));
    if (!cid)
        return;
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s/vod/%s/" CLIP_MP4, a->public_http_url, cid);
    json_object_set_new(clip, "mp4_url", json_string(buf));
    snprintf(buf, sizeof(buf), "%s/vod/%s/" CLIP_POSTER, a->public_http_url, cid);
    json_object_set_new(clip, "poster_url", json_string(buf));
    /* the HLS form, once made (whole segments: docs/clips.md) */
    if (json_is_string(json_object_get(clip, "hls"))) {
        snprintf(buf, sizeof(buf), "%s/vod/%s/" HLS_NAME_MASTER, a->public_http_url, cid);
        json_object_set_new(clip, "hls_url", json_string(buf));
    } else {
        json_object_set_new(clip, "hls_url", json_null());
    }
}

/* POST /api/v1/streams/ID/clips, POST /api/v1/recordings/RID/clips */
static enum MHD_Result admin_clip_create(admin_t *a, struct MHD_Connection *c,
                                         const clips_source_t *src, const admin_req_t *rq)
{
    if (!a->recordings_dir || !a->clips)
        return admin_reply_error(c, MHD_HTTP_CONFLICT, "clips need --recordings-dir");
    json_error_t jerr;
    json_t *body = rq->len > 0 ? json_loadb(rq->body, rq->len, 0, &jerr) : NULL;
    clips_range_t range;
    char why[256] = "";
    int rc = clips_range_parse(body, src->rid != NULL, &range, why, sizeof(why));
    json_decref(body);
    if (rc < 0)
        return admin_reply_error(c, MHD_HTTP_BAD_REQUEST, why);
    json_t *clip = NULL;
    rc = clips_create(a->recordings_dir, a->store, a->clips, src, &range, &clip, why, sizeof(why));
    switch (rc) {
    case 0:
        break;
    case -ENOENT:
        return admin_reply_error(c, MHD_HTTP_NOT_FOUND, why[0] ? why : "no such source");
    case -ERANGE:
        return admin_reply_error(c, MHD_HTTP_UNPROCESSABLE_CONTENT, why);
    case -EINVAL:
        return admin_reply_error(c, MHD_HTTP_BAD_REQUEST, why);
    case -EBUSY:
        return admin_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, why);
    case -ENOMEM:
        return MHD_NO;
    default:
        return admin_reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                                 why[0] ? why : "the recordings directory cannot be written; retry");
    }
    log_info("admin", "clip %s of %s requested", json_string_value(json_object_get(clip, "id")),
             src->rid ? src->rid : src->stream_id);
    admin_clip_urls(a, clip);
    return admin_reply_json(c, MHD_HTTP_CREATED, clip);
}

/* GET /api/v1/clips, GET/DELETE /api/v1/clips/CID */
static enum MHD_Result admin_route_clips(admin_t *a, struct MHD_Connection *c, const char *method,
                                         const char *cid)
{
    bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
               strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (!cid) {
        if (!get)
            return admin_reply_method(c, "GET");
        json_t *arr;
        int rc = clips_list(a->recordings_dir, &arr);
        if (rc < 0)
            return admin_recordings_error(c, rc);
        size_t i;
        json_t *clip;
        json_array_foreach(arr, i, clip)
            admin_clip_urls(a, clip);
        return admin_reply_json(c, MHD_HTTP_OK, json_pack("{s:o}", "clips", arr));
    }
    if (get) {
        json_t *clip;
        int rc = clips_get(a->recordings_dir, cid, &clip);
        if (rc == -ENOENT)
            return admin_reply_error(c, MHD_HTTP_NOT_FOUND, "no such clip");
        if (rc < 0)
            return admin_recordings_error(c, rc);
        admin_clip_urls(a, clip);
        return admin_reply_json(c, MHD_HTTP_OK, clip);
    }
    if (strcmp(method, MHD_HTTP_METHOD_DELETE) == 0) {
        int rc = clips_delete(a->recordings_dir, cid);
        if (rc == -ENOENT)
            return admin_reply_error(c, MHD_HTTP_NOT_FOUND, "no such clip");
        if (rc < 0)
            return admin_recordings_error(c, rc);
        log_info("admin", "clip %s deleted", cid);
        return admin_reply_empty(c, MHD_HTTP_NO_CONTENT);
    }
    return admin_reply_method(c, "GET, DELETE");
}

/* ---- routing ------------------------------------------------------------- */

static enum MHD_Result admin_route_stream(admin_t *a, struct MHD_Connection *c,
                                          const char *method, const char *rest,
                                          const admin_req_t *rq)
{
    /* rest: "ID", "ID/rotate-key" or "ID/disconnect" */
    const char *slash = strchr(rest, '/');
    size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
    char id[STORE_ID_MAX];
    if (idlen == 0 || idlen >= sizeof(id))
        return admin_reply_error(c, MHD_HTTP_NOT_FOUND, "no such stream");
    memcpy(id, rest, idlen);
    id[idlen] = '\0';
    if (!store_id_valid(id))
        return admin_reply_error(c, MHD_HTTP_NOT_FOUND, "no such stream");
    bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    if (!slash || slash[1] == '\0') {
        if (strcmp(method, MHD_HTTP_METHOD_GET) == 0)
            return admin_get(a, c, id);
        if (strcmp(method, MHD_HTTP_METHOD_DELETE) == 0)
            return admin_delete(a, c, id);
        if (strcmp(method, "PATCH") == 0)
            return admin_patch(a, c, id, rq);
        return admin_reply_method(c, "GET, PATCH, DELETE");
    }
    if (strcmp(slash, "/recordings") == 0) {
        bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
                   strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
        return get ? admin_stream_recordings(a, c, id) : admin_reply_method(c, "GET");
    }
    if (strcmp(slash, "/clips") == 0) {
        clips_source_t src = {.stream_id = id};
        return post ? admin_clip_create(a, c, &src, rq) : admin_reply_method(c, "POST");
    }
    if (strcmp(slash, "/rotate-key") == 0)
        return post ? admin_rotate(a, c, id) : admin_reply_method(c, "POST");
    if (strcmp(slash, "/disconnect") == 0)
        return post ? admin_disconnect(a, c, id) : admin_reply_method(c, "POST");
    if (strcmp(slash, "/metadata") == 0)
        return post ? admin_metadata(a, c, id, rq) : admin_reply_method(c, "POST");
    if (strncmp(slash, "/outputs", 8) == 0)
        return admin_outputs(a, c, method, id, slash + 8, rq);
    return admin_reply_error(c, MHD_HTTP_NOT_FOUND, "not found");
}

static enum MHD_Result admin_route(admin_t *a, struct MHD_Connection *c, const char *url,
                                   const char *method, const admin_req_t *rq)
{
    bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
               strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (strcmp(url, ADMIN_API) == 0 || strcmp(url, ADMIN_API "/") == 0) {
        if (strcmp(method, MHD_HTTP_METHOD_POST) == 0)
            return admin_create(a, c, rq);
        if (get)
            return admin_list(a, c);
        return admin_reply_method(c, "GET, POST");
    }
    if (strncmp(url, ADMIN_API "/", sizeof(ADMIN_API)) == 0)
        return admin_route_stream(a, c, method, url + sizeof(ADMIN_API), rq);
    if (strncmp(url, "/api/v1/recordings/", 19) == 0) {
        const char *rid = url + 19, *slash = strchr(rid, '/');
        if (slash && strcmp(slash, "/clips") == 0) {
            char r[STORE_ID_MAX];
            size_t len = (size_t)(slash - rid);
            if (len == 0 || len >= sizeof(r))
                return admin_reply_error(c, MHD_HTTP_NOT_FOUND, "no such recording");
            memcpy(r, rid, len);
            r[len] = '\0';
            clips_source_t src = {.rid = r};
            return strcmp(method, MHD_HTTP_METHOD_POST) == 0 ? admin_clip_create(a, c, &src, rq)
                                                             : admin_reply_method(c, "POST");
        }
        return admin_route_recording(a, c, method, rid);
    }
    if (strcmp(url, "/api/v1/clips") == 0 || strcmp(url, "/api/v1/clips/") == 0)
        return admin_route_clips(a, c, method, NULL);
    if (strncmp(url, "/api/v1/clips/", 14) == 0)
        return admin_route_clips(a, c, method, url + 14);
    if (strcmp(url, "/api/v1/stats") == 0) {
        if (!get)
            return admin_reply_method(c, "GET");
        json_t *s = report_stats(a->report);
        return s ? admin_reply_json(c, MHD_HTTP_OK, s) : MHD_NO;
    }
    if (strcmp(url, "/metrics") == 0) {
        if (!get)
            return admin_reply_method(c, "GET");
        size_t len = 0;
        char *text = report_metrics(a->report, &len);
        if (!text)
            return MHD_NO;
        struct MHD_Response *r = MHD_create_response_from_buffer(len, text,
                                                                 MHD_RESPMEM_MUST_FREE);
        if (!r) {
            free(text);
            return MHD_NO;
        }
        MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        MHD_add_response_header(r, "Cache-Control", "no-store");
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (strcmp(url, "/dashboard") == 0 || strcmp(url, "/dashboard/") == 0) {
        if (!get)
            return admin_reply_method(c, "GET");
        return admin_reply_asset(c, web_asset_find("dashboard.html"));
    }
    if (strncmp(url, "/dashboard/assets/", 18) == 0) {
        if (!get)
            return admin_reply_method(c, "GET");
        static const char *const assets[] = {"dashboard.js", "dashboard.css", "uPlot.iife.min.js",
                                             "uPlot.min.css", "hls.min.js", "player.js",
                                             "player.css"};
        for (size_t i = 0; i < sizeof(assets) / sizeof(assets[0]); i++)
            if (strcmp(url + 18, assets[i]) == 0)
                return admin_reply_asset(c, web_asset_find(assets[i]));
        return admin_reply_error(c, MHD_HTTP_NOT_FOUND, "not found");
    }
    if (strcmp(url, "/healthz") == 0)
        return admin_reply_json(c, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
    return admin_reply_error(c, MHD_HTTP_NOT_FOUND, "not found");
}

static enum MHD_Result admin_access_cb(void *cls, struct MHD_Connection *c, const char *url,
                                       const char *method, const char *version,
                                       const char *upload_data, size_t *upload_data_size,
                                       void **req_cls)
{
    (void)version;
    admin_t *a = cls;
    admin_req_t *rq = *req_cls;
    if (!rq) {
        /* First call: headers only. Refuse early (before reading a body)
         * when the client is not allowed. */
        enum MHD_Result denied;
        if (!admin_allowed(a, c, url, method, &denied))
            return denied;
        rq = calloc(1, sizeof(*rq));
        if (!rq)
            return MHD_NO;
        *req_cls = rq;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rq->too_big || rq->len + n > ADMIN_BODY_MAX) {
            rq->too_big = true;
            return MHD_YES;
        }
        char *b = realloc(rq->body, rq->len + n + 1);
        if (!b)
            return MHD_NO;
        memcpy(b + rq->len, upload_data, n);
        rq->body = b;
        rq->len += n;
        b[rq->len] = '\0';
        return MHD_YES;
    }
    if (rq->too_big)
        return admin_reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "body too large (64 KiB at most)");
    /* A body names its type (a browser's cross-site "simple" request was
     * refused above by the type it names; one that names none is not JSON
     * either). */
    if (rq->len > 0 && !MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type"))
        return admin_reply_error(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                 "Content-Type must be application/json");
    return admin_route(a, c, url, method, rq);
}

static void admin_completed_cb(void *cls, struct MHD_Connection *c, void **req_cls,
                               enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    admin_req_t *rq = *req_cls;
    if (rq) {
        free(rq->body);
        free(rq);
        *req_cls = NULL;
    }
}

static void admin_mhd_log_cb(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_warn("admin", "libmicrohttpd: %s", msg);
}

static char *admin_strip_slash(const char *s)
{
    char *d = strdup(s);
    if (d) {
        size_t n = strlen(d);
        while (n > 0 && d[n - 1] == '/')
            d[--n] = '\0';
    }
    return d;
}

static void admin_free(admin_t *a)
{
    free(a->public_http_url);
    free(a->public_rtmp_url);
    free(a->recordings_dir);
    free(a->listen_host);
    free(a->allowed_hosts);
    free(a->rungs);
    OPENSSL_cleanse(a->token_digest, sizeof(a->token_digest));
    pthread_mutex_destroy(&a->token_lock);
    free(a);
}

int admin_open(const admin_params_t *params, admin_t **out)
{
    *out = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen;
    char err[300];
    if (netaddr_parse(params->listen, &ss, &sslen, err, sizeof(err)) != 0) {
        log_error("admin", "--admin-listen: %s", err);
        return -EINVAL;
    }
    admin_t *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    pthread_mutex_init(&a->token_lock, NULL);
    a->store = params->store;
    a->report = params->report;
    a->rotate_cuts = params->rotate_cuts;
    a->record = params->record;
    a->metadata_cb = params->metadata_cb;
    a->metadata_opaque = params->metadata_opaque;
    a->public_http_url = admin_strip_slash(params->public_http_url);
    a->public_rtmp_url = admin_strip_slash(params->public_rtmp_url);
    if (params->recordings_dir && *params->recordings_dir)
        a->recordings_dir = strdup(params->recordings_dir);
    a->clips = params->clips;
    if (!a->public_http_url || !a->public_rtmp_url ||
        (params->recordings_dir && *params->recordings_dir && !a->recordings_dir)) {
        admin_free(a);
        return -ENOMEM;
    }
    if (params->nrungs > 0) {
        if (!(a->rungs = calloc(params->nrungs, sizeof(*a->rungs)))) {
            admin_free(a);
            return -ENOMEM;
        }
        memcpy(a->rungs, params->rungs, params->nrungs * sizeof(*a->rungs));
        a->nrungs = params->nrungs;
    }
    char lh[256];
    if (admin_host_part(params->listen, lh, sizeof(lh)) && !(a->listen_host = strdup(lh))) {
        admin_free(a);
        return -ENOMEM;
    }
    if (params->allowed_hosts && *params->allowed_hosts) {
        /* Lower case, without blanks: "a.example, B.example" -> "a.example,b.example". */
        a->allowed_hosts = calloc(1, strlen(params->allowed_hosts) + 1);
        if (!a->allowed_hosts) {
            admin_free(a);
            return -ENOMEM;
        }
        char *w = a->allowed_hosts;
        for (const char *r = params->allowed_hosts; *r; r++)
            if (!isspace((unsigned char)*r))
                *w++ = (char)tolower((unsigned char)*r);
    }
    if (params->token && *params->token) {
        a->has_token = true;
        SHA256((const unsigned char *)params->token, strlen(params->token), a->token_digest);
    }
    unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    a->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, admin_access_cb, a, MHD_OPTION_EXTERNAL_LOGGER, admin_mhd_log_cb,
        NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, 256u,
        MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        MHD_OPTION_NOTIFY_COMPLETED, admin_completed_cb, a, MHD_OPTION_END);
    if (!a->daemon) {
        int why = netaddr_report_listen_failure("admin", params->listen, &ss, sslen);
        admin_free(a);
        return why;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_BIND_PORT);
    a->port = info ? info->port : -1;
    log_info("admin", "admin API listening on %s (port %d)%s", params->listen, a->port,
             a->has_token ? ", bearer token required"
                          : ", loopback clients only (requests through a proxy are refused: "
                            "a proxy in front of it needs --admin-token)");
    if (a->allowed_hosts && admin_name_listed(a->allowed_hosts, "*") && !a->has_token)
        log_warn("admin", "--admin-allowed-hosts '*' without --admin-token: any web page "
                          "this machine's browser opens can rebind its name to this listener");
    *out = a;
    return 0;
}

int admin_set_token(admin_t *a, const char *token)
{
    if (!a)
        return 0;
    pthread_mutex_lock(&a->token_lock);
    bool had = a->has_token;
    a->has_token = token && *token;
    if (a->has_token)
        SHA256((const unsigned char *)token, strlen(token), a->token_digest);
    else
        OPENSSL_cleanse(a->token_digest, sizeof(a->token_digest));
    pthread_mutex_unlock(&a->token_lock);
    if (had != a->has_token)
        log_info("admin", "%s", a->has_token ? "a bearer token is required from now on"
                                             : "no token any more: loopback clients only");
    return 0;
}

int admin_port(const admin_t *a)
{
    return a ? a->port : 0;
}

void admin_close(admin_t *a)
{
    if (!a)
        return;
    MHD_stop_daemon(a->daemon);
    admin_free(a);
}
