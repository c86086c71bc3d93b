/*
 * The public origin on libmicrohttpd. MHD runs its own listening thread and
 * a pool of worker threads (epoll where available); the access handler runs
 * on those threads, parses the path with http_path_parse(), takes a blob
 * reference from the store and hands the bytes to MHD without copying. The
 * reference is dropped by MHD's free callback once the response is sent, so
 * a slow viewer holds only its own reference, never a lock or a thread.
 * The origin never knows which store backend runs: a store that cannot be
 * read (-EIO) is a 503 with Retry-After, never a 404.
 *
 * CDN-facing semantics (docs/cdn.md) live in pure helpers: http_cache.c
 * (Cache-Control policy, ETag/Range/Accept-Encoding parsing), token.c
 * (signed playback) and playlist_rewrite.c (the token in playlist URIs).
 * The unsigned hot path allocates nothing of its own: the ETag and the gzip
 * variant are computed once per blob and cached on it (common/blob.h), and a
 * 206 body points into the same refcounted blob. Only signed playback
 * allocates per request, for the rewritten playlist.
 *
 * LL-HLS requests that must wait (a blocking playlist reload, a part not
 * produced yet: RFC 8216bis 6.2.5.2, 6.2.6) get a small per-request state
 * (MHD's req_cls), join llhls.c's hub and suspend their connection; the hub
 * resumes it when the stream changes or the hold limit passes, and MHD calls
 * the access handler again, which reads the store again. Every other
 * request allocates nothing. NOTIFY_COMPLETED frees the state.
 *
 * Limits (docs/configuration.md): MHD enforces the connection limits
 * (--http-max-connections, --http-max-connections-per-ip: closed at accept,
 * counted from MHD's log message, which is rate-limited here) and the
 * inactivity timeout (--http-timeout; a suspended, held connection does not
 * time out). --http-max-held caps the requests held at once: one over it is
 * answered at once, a playlist with the current one (what a plain reload
 * would get, so hls.js just polls once without directives) and a part or
 * segment with 503 and Retry-After.
 *
 * Recordings (/vod/RID/...) are files, not store objects: vod.c opens them
 * below --recordings-dir on each request (no cache: a recording may be
 * finalised or deleted by another node sharing the directory). Playlists
 * are read whole into a blob of this request and answered like a live one
 * (content ETag, gzip, token rewriting); everything else is answered from
 * its file descriptor (MHD sends it with sendfile), so a multi-gigabyte
 * recording.mp4 is never read into memory; its ETag comes from the file's
 * size and modification time. The token of a recording is the token of its
 * stream (recording.json's stream_id).
 *
 * Thumbnails: /hls/ID/thumbnail.jpg is a stored object like any other
 * (playback rules, ETag, Range); ?width=N scales it through the
 * params' thumbnail_scale callback, and the results are kept in a small
 * LRU cache (thumb_cache.c) keyed by stream, the stored JPEG's ETag and
 * width, so a burst of CDN misses decodes once. Thumbnail requests are not
 * viewers (a listing page fetches every channel's).
 *
 * Measuring (origin_get_stats): each connection gets a small context when
 * MHD accepts it (freed when it closes, so a kept-alive connection's
 * requests allocate nothing) holding the current request's start time, kind
 * and body size; NOTIFY_COMPLETED adds the request to relaxed atomic
 * counters by kind and status (the status MHD queued) and to the latency
 * histogram. Viewer sessions are counted by viewers.c on every playback
 * request of a stream that passed authorisation.
 *
 * Audience (issue 22): POST /beacon/ID is the one route that takes a body.
 * The first call sees the headers: a Content-Length over BEACON_BODY_MAX is
 * answered 413 at once (libmicrohttpd then closes the connection unread);
 * otherwise the body is copied into a buffer hung on the connection's
 * context (allocated for the beacon, freed when it is answered), and the
 * last call parses it (beacon.c), checks the token and that the stream is
 * live, and hands it to this node's session table (audience_sessions.c),
 * whose thread writes the records to the store. GET /hls/ID/viewers.json
 * answers from the store meta "audience" that the aggregator writes.
 */
#include "origin.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include <openssl/crypto.h>

#include <jansson.h>

#include "audience_sessions_internal.h"
#include "beacon_internal.h"
#include "clock.h"
#include "hls_names.h"
#include "http_cache_internal.h"
#include "http_header.h"
#include "http_path_internal.h"
#include "llhls_internal.h"
#include "log.h"
#include "netaddr.h"
#include "web.h"
#include "playlist_rewrite_internal.h"
#include "thumb_cache_internal.h"
#include "token_internal.h"
#include "viewers_internal.h"
#include "vod_internal.h"

struct origin {
    struct MHD_Daemon *daemon;
    store_t *store;
    int port;
    llhls_hub_t *hub;        /* held LL-HLS requests */
    double segment_duration; /* --segment-duration: fallback target duration */
    atomic_int reqs;         /* origin_req_t alive (held, or answered and not yet sent) */
    /* A copy of the parameters; its strings point at the owned copies below. */
    origin_params_t params;
    char *cors_origin;   /* Access-Control-Allow-Origin value */
    char *secret;        /* playback secret, NULL when playback is open */
    char *recordings_dir; /* NULL: no /vod/ */
    size_t secret_len;
    bool cors_any;       /* cors_origin is "*": no Vary: Origin */
    viewers_t *viewers;
    audience_sessions_t *audience; /* beacon sessions; NULL with --beacons off */
    _Atomic uint64_t beacons[ORIGIN_BEACON_RESULTS];
    thumb_cache_t *thumbs; /* scaled thumbnails (?width=N) */
    /* Counters (origin_stats_t), relaxed atomics bumped on MHD's threads. */
    _Atomic uint64_t requests[ORIGIN_KINDS][ORIGIN_CODES];
    _Atomic uint64_t bytes[ORIGIN_KINDS];
    _Atomic uint64_t latency[ORIGIN_KINDS][ORIGIN_LATENCY_BUCKETS + 1];
    _Atomic uint64_t latency_sum_us[ORIGIN_KINDS];
    _Atomic uint64_t connections;
    _Atomic uint64_t held_refused;        /* --http-max-held reached */
    _Atomic uint64_t hints_moved;         /* hinted parts answered with the next segment's part 0 */
    _Atomic uint64_t demand_writes;       /* rungs on demand: store_demand_note writes */
    _Atomic uint64_t cold_holds;          /* rungs on demand: playlist requests held for an idle rung */
    _Atomic uint64_t connections_refused; /* MHD refused at accept */
    _Atomic int64_t refused_log_ms;       /* last "connection limit" warning */
    _Atomic uint64_t refused_logged;      /* connections_refused at that warning */
    _Atomic int64_t mhd_log_ms;           /* last other libmicrohttpd warning */
    _Atomic uint64_t mhd_log_dropped;     /* others not logged since */
    _Atomic uint64_t heads_cut;           /* connections closed at the request-head deadline */
    unsigned int max_held;
    /* Held requests per client address (origin_hold_slot_take), for the
     * fair share of --http-max-held-per-ip. */
    pthread_mutex_t held_lock;
    struct origin_held_addr *held_by_addr[256];
    unsigned int max_held_per_ip;
    /* The request-head deadline (origin_head_main): every open connection,
     * and a thread that closes those whose request head is not in after
     * head_deadline_ms. */
    pthread_mutex_t conns_lock;
    pthread_cond_t head_cond;
    struct origin_conn *conns;
    int64_t head_deadline_ms;
    bool head_stopping;
    bool head_started;
    pthread_t head_thread;
};

/* A connection's socket context: the origin, and the request in progress. */
typedef struct origin_conn {
    origin_t *o;
    int64_t start_us;   /* MHD's first call for the request */
    origin_kind_t kind;
    uint64_t bytes;     /* body bytes of the queued response */
    /* The request-head deadline: when this connection began waiting for a
     * request head (accepted, or its last request answered), and whether
     * the head is in; the list links are under o->conns_lock. */
    _Atomic int64_t head_since_ms;
    atomic_bool head_in;
    bool cut;
    int fd;
    struct origin_conn *prev, *next;
    /* The body of a POST /beacon/ID being read (origin_beacon_body), from
     * its first byte to its answer; NULL otherwise. */
    struct origin_beacon_body *beacon;
    size_t discarded; /* bytes of an oversized chunked beacon thrown away */
} origin_conn_t;

/* A beacon's body, bounded: one byte past BEACON_BODY_MAX and it is
 * answered 413 at once, the rest never read. */
typedef struct origin_beacon_body {
    size_t len;
    char data[BEACON_BODY_MAX];
} origin_beacon_body_t;

const double origin_latency_bounds[ORIGIN_LATENCY_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

static const unsigned int origin_codes[ORIGIN_CODES - 1] = {
    200, 204, 206, 304, 400, 403, 404, 405, 413, 414, 416, 429, 499, 500, 503};
static const char *const origin_code_labels[ORIGIN_CODES] = {
    "200", "204", "206", "304", "400", "403", "404", "405", "413", "414", "416", "429", "499",
    "500", "503", "other"};

const char *origin_kind_name(origin_kind_t k)
{
    static const char *const names[ORIGIN_KINDS] = {"playlist", "part", "segment", "init",
                                                    "other"};
    return (unsigned)k < ORIGIN_KINDS ? names[k] : "other";
}

const char *origin_code_label(size_t i)
{
    return i < ORIGIN_CODES ? origin_code_labels[i] : "other";
}

static size_t origin_code_index(unsigned int status)
{
    for (size_t i = 0; i < ORIGIN_CODES - 1; i++)
        if (origin_codes[i] == status)
            return i;
    return ORIGIN_CODES - 1;
}

/* The state of a request that may wait (LL-HLS); NULL req_cls for others. */
typedef struct origin_req {
    llhls_hold_t hold;
    http_route_t route; /* what was asked for */
    llhls_query_t query;
    int64_t msn, part;  /* a part or segment (part -1) asked for */
    bool playlist;      /* a media playlist with directives, else a part or segment */
    bool cold;          /* the playlist of an idle rung (rungs on demand): wait for it */
    bool store_away;    /* the last look found the store away (-EIO): held through it */
    bool saw_outage;    /* some look did: a stream missing just after is not yet a 404 */
    /* A plain reload held through an outage: the position first read after
     * it (the playlist may be the one replicated before the master died),
     * and whether the last look held it back for being no newer. */
    bool stale_set, stale_held;
    int64_t stale_msn, stale_part;
    int64_t deadline_ms;
    uint8_t addr[16];   /* the client address it is counted under (origin_hold_slot_take) */
} origin_req_t;

/* How many requests one client address holds. */
typedef struct origin_held_addr {
    uint8_t addr[16];
    unsigned int count;
    struct origin_held_addr *next;
} origin_held_addr_t;

/* req_cls of a request between MHD's first and second call (see
 * origin_access_cb); a held LL-HLS request's is its origin_req_t. */
static char origin_request_seen;
/* ... and of one whose body is being thrown away (answered 413 at the end). */
static char origin_request_body;
/* ... and of a POST /beacon/ID, whose body is read into its connection's
 * origin_beacon_body_t. */
static char origin_request_beacon;
/* ... and of one answered before its body was read (a beacon whose
 * Content-Length is over the limit): libmicrohttpd closes the connection
 * without reading it. */
static char origin_request_answered;
/* ... and of a beacon whose (chunked) body went over the limit: the rest is
 * thrown away, boundedly, and answered 413 (origin_beacon_upload). */
static char origin_request_beacon_over;

/* How long a shutdown waits for held requests to be answered. */
#define ORIGIN_DRAIN_MS 5000

static const char origin_allowed_methods[] = "GET, HEAD, OPTIONS";
static const char origin_unavailable_text[] = "store unavailable, retry shortly\n";
#define ORIGIN_RETRY_AFTER_S "1"
/* Rate limit of the "store unavailable" warning: one a second, any thread. */
static _Atomic int64_t origin_unavailable_log_ms;

static void origin_blob_free_cb(void *cls)
{
    blob_unref(cls);
}

/* The origin a connection belongs to: set as the socket context when MHD
 * accepts it (origin_notify_cb), so the small reply helpers need no extra
 * argument. */
static origin_conn_t *origin_conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static const origin_t *origin_of(struct MHD_Connection *c)
{
    const origin_conn_t *cc = origin_conn_of(c);
    return cc ? cc->o : NULL;
}

/* The body size of the answer being queued, for the bytes counters. */
static void origin_note_bytes(struct MHD_Connection *c, uint64_t n)
{
    origin_conn_t *cc = origin_conn_of(c);
    if (cc)
        cc->bytes = n;
}

static void origin_notify_cb(void *cls, struct MHD_Connection *c, void **socket_context,
                             enum MHD_ConnectionNotificationCode toe)
{
    origin_t *o = cls;
    (void)c;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        /* Without a context (no memory) the connection is served unmeasured. */
        origin_conn_t *cc = calloc(1, sizeof(*cc));
        if (cc) {
            cc->o = o;
            const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
            cc->fd = ci ? ci->connect_fd : -1;
            atomic_store(&cc->head_since_ms, clock_mono_ms());
            pthread_mutex_lock(&o->conns_lock);
            cc->next = o->conns;
            if (o->conns)
                o->conns->prev = cc;
            o->conns = cc;
            pthread_mutex_unlock(&o->conns_lock);
        }
        *socket_context = cc;
        atomic_fetch_add_explicit(&o->connections, 1, memory_order_relaxed);
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        /* libmicrohttpd closes the socket after this: once the context is
         * off the list, origin_head_main cannot touch a reused descriptor. */
        origin_conn_t *cc = *socket_context;
        if (cc) {
            pthread_mutex_lock(&o->conns_lock);
            if (cc->prev)
                cc->prev->next = cc->next;
            else
                o->conns = cc->next;
            if (cc->next)
                cc->next->prev = cc->prev;
            pthread_mutex_unlock(&o->conns_lock);
            free(cc->beacon);
        }
        free(cc);
        *socket_context = NULL;
        atomic_fetch_sub_explicit(&o->connections, 1, memory_order_relaxed);
    }
}

/* Response headers hls.js and other players read from a cross-origin fetch. */
static const char origin_expose_headers[] =
    "Content-Length, Content-Range, Content-Type, ETag, Last-Modified, Age, Date";

/* CORS and Vary on every answer. `playlist`: the body depends on
 * Accept-Encoding. Never a cookie, never Allow-Credentials: playback is
 * authorised by URL tokens only, so a CDN can cache the answers. */
static void origin_add_common_headers(const origin_t *o, struct MHD_Response *r, bool playlist)
{
    bool any = !o || o->cors_any;
    MHD_add_response_header(r, "Access-Control-Allow-Origin", any ? "*" : o->cors_origin);
    MHD_add_response_header(r, "Access-Control-Expose-Headers", origin_expose_headers);
    if (playlist)
        MHD_add_response_header(r, "Vary", any ? "Accept-Encoding" : "Accept-Encoding, Origin");
    else if (!any)
        MHD_add_response_header(r, "Vary", "Origin");
}

/* Queues a small text response (errors, health). */
static enum MHD_Result origin_reply_text(struct MHD_Connection *c, unsigned int status,
                                         const char *text, const char *cache_control)
{
    /* Copied: some texts are built on the caller's stack (/readyz), and
     * libmicrohttpd sends after the handler has returned. */
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    origin_note_bytes(c, strlen(text));
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    /* No error is ever cached for long, whatever the caller asked for
     * (health answers stay no-store). */
    MHD_add_response_header(r, "Cache-Control",
                            status >= 400 && strcmp(cache_control, "no-store") != 0
                                ? HTTP_CACHE_CONTROL_ERROR
                                : cache_control);
    origin_add_common_headers(origin_of(c), r, false);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, "Allow", origin_allowed_methods);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* An embedded web file (web_reply_asset), or 404 with the origin's own
 * headers when the build has no such file. */
static enum MHD_Result origin_reply_asset(struct MHD_Connection *c, const web_asset_t *a,
                                          const char *cache_control)
{
    if (!a)
        return origin_reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n", "no-cache");
    return (enum MHD_Result)web_reply_asset(c, a, cache_control, true);
}

/* Request headers a player may send cross-origin without asking each time. */
static const char origin_allow_headers[] =
    "Range, If-None-Match, If-Modified-Since, If-Range, Cache-Control, Pragma";

/* A preflight's Access-Control-Request-Headers may be echoed when it is a
 * plain, short list of header names (a player's own custom headers). */
static bool origin_header_list_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        if (n >= 256 || !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                          (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == ',' ||
                          ch == ' '))
            return false;
    }
    return n > 0;
}

static enum MHD_Result origin_reply_options(struct MHD_Connection *c)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    origin_add_common_headers(origin_of(c), r, false);
    MHD_add_response_header(r, "Access-Control-Allow-Methods", origin_allowed_methods);
    const char *asked =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Headers");
    if (asked && origin_header_list_ok(asked)) {
        MHD_add_response_header(r, "Access-Control-Allow-Headers", asked);
        MHD_add_response_header(r, "Vary", "Access-Control-Request-Headers");
    } else {
        MHD_add_response_header(r, "Access-Control-Allow-Headers", origin_allow_headers);
    }
    MHD_add_response_header(r, "Access-Control-Max-Age", "86400");
    MHD_add_response_header(r, "Allow", origin_allowed_methods);
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, r);
    MHD_destroy_response(r);
    return ret;
}

/* 503 with a static text, Retry-After and a one-second cache lifetime. */
static enum MHD_Result origin_reply_503(struct MHD_Connection *c, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", HTTP_CACHE_CONTROL_ERROR);
    MHD_add_response_header(r, "Retry-After", ORIGIN_RETRY_AFTER_S);
    origin_add_common_headers(origin_of(c), r, false);
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_SERVICE_UNAVAILABLE, r);
    MHD_destroy_response(r);
    return ret;
}

/* The store cannot answer (Redis away): never a 404 a CDN would keep, but a
 * 503 that says when to come back and may be cached for a second only, so a
 * CDN shields us from a stampede without holding on to the outage. */
static enum MHD_Result origin_reply_unavailable(struct MHD_Connection *c,
                                                const http_route_t *route, int rc)
{
    int64_t now = clock_mono_ms();
    int64_t last = atomic_load(&origin_unavailable_log_ms);
    if (now - last >= 1000 && atomic_compare_exchange_strong(&origin_unavailable_log_ms, &last, now))
        log_warn("origin", "store unavailable (%s): answering 503 (e.g. %s/%s)", strerror(-rc),
                 route->stream_id, route->object);
    return origin_reply_503(c, origin_unavailable_text);
}

/* Headers of every representation of an object: 200, 206 and 304 alike
 * (RFC 9110 15.4.5: a 304 carries what a 200 would for caching). */
static void origin_add_object_headers(const origin_t *o, struct MHD_Response *r,
                                      const http_route_t *route, bool blocking, const char *etag,
                                      const char *last_modified, bool gzip)
{
    bool playlist = route->object_type == HTTP_OBJECT_PLAYLIST;
    MHD_add_response_header(r, "Cache-Control",
                            http_cache_control_route(route, blocking, &o->params));
    MHD_add_response_header(r, "ETag", etag);
    MHD_add_response_header(r, "Last-Modified", last_modified);
    if (gzip)
        MHD_add_response_header(r, "Content-Encoding", "gzip");
    if (!playlist)
        MHD_add_response_header(r, "Accept-Ranges", "bytes");
    origin_add_common_headers(o, r, playlist);
}

/* Signed playback: the playlist with the request's (verified) token added to
 * every URI in it, as a new blob of this request only. NULL on OOM. */
static blob_t *origin_signed_playlist(struct MHD_Connection *c, const blob_t *blob)
{
    const char *token = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token");
    if (!token)
        return NULL; /* origin_authorize() let it through: cannot happen */
    char param[sizeof("token=") + TOKEN_MAX];
    int pn = snprintf(param, sizeof(param), "token=%s", token);
    if (pn < 0 || (size_t)pn >= sizeof(param))
        return NULL;
    const char *text = (const char *)blob->data;
    size_t need = playlist_rewrite(text, blob->size, param, (size_t)pn, NULL, 0);
    blob_t *out = blob_new_uninit(need);
    if (!out)
        return NULL;
    playlist_rewrite(text, blob->size, param, (size_t)pn, (char *)out->data, need);
    out->created_ms = blob->created_ms;
    return out;
}

/* 416 for a Range outside a representation of `size` bytes. */
static enum MHD_Result origin_reply_416(const origin_t *o, struct MHD_Connection *c,
                                        uint64_t size)
{
    char content_range[64];
    snprintf(content_range, sizeof(content_range), "bytes */%" PRIu64, size);
    static const char text[] = "range not satisfiable\n";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof(text) - 1, (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    MHD_add_response_header(r, "Content-Range", content_range);
    MHD_add_response_header(r, "Cache-Control", HTTP_CACHE_CONTROL_ERROR);
    MHD_add_response_header(r, "Accept-Ranges", "bytes");
    origin_add_common_headers(o, r, false);
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_RANGE_NOT_SATISFIABLE, r);
    MHD_destroy_response(r);
    return ret;
}

/*
 * Answers with an object the caller took from the store, taking ownership of
 * the reference `blob` on every path. `blocking` marks the answer to an
 * LL-HLS blocking playlist reload (its own cache lifetime). Conditional
 * (If-None-Match -> 304), ranged (Range/If-Range -> 206/416) and gzip
 * (playlists) answers are all decided here.
 */
static enum MHD_Result origin_reply_blob(origin_t *o, struct MHD_Connection *c,
                                         const http_route_t *route, blob_t *blob, bool blocking)
{
    bool playlist = route->object_type == HTTP_OBJECT_PLAYLIST;
    blob_t *body = blob; /* the reference the response will hold */
    if (playlist && o->secret) {
        body = origin_signed_playlist(c, blob);
        blob_unref(blob);
        if (!body)
            return MHD_NO;
    }
    bool gzip = false;
    const char *ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding");
    if (playlist && ae && http_header_accepts_gzip(ae, strlen(ae))) {
        /* A stored playlist's gzip is made once and cached on its blob; a
         * signed one is this request's own, so it is compressed fast. */
        blob_t *gz = NULL;
        if (!o->secret) {
            gz = blob_gzip(body);
            if (gz)
                blob_ref(gz);
        } else if (body->size <= UINT32_MAX) {
            gz = blob_gzip_new(body->data, body->size, 1);
        }
        if (gz) {
            blob_unref(body);
            body = gz;
            gzip = true;
        }
    }
    char etag_buf[BLOB_ETAG_MAX];
    const char *etag = blob_etag(body, etag_buf);
    char last_modified[HTTP_DATE_MAX];
    http_header_format_date(body->created_ms, last_modified);

    unsigned int status = MHD_HTTP_OK;
    struct MHD_Response *r = NULL;
    const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
    if (inm && http_header_none_match(inm, strlen(inm), etag)) {
        /* MHD never sends a body with a 304 but always a Content-Length,
         * which RFC 9110 8.6 allows only when it is the 200's length: so the
         * 304 is built over the full body (not copied, never sent). */
        r = MHD_create_response_from_buffer_with_free_callback_cls(body->size, body->data,
                                                                   origin_blob_free_cb, body);
        if (!r) {
            blob_unref(body);
            return MHD_NO;
        }
        origin_add_object_headers(o, r, route, blocking, etag, last_modified, false);
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_NOT_MODIFIED, r);
        MHD_destroy_response(r);
        return ret;
    }

    uint64_t first = 0, count = body->size;
    char content_range[64] = "";
    const char *range = playlist ? NULL : MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
    const char *if_range = range ? MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-Range")
                                 : NULL;
    if (range && (!if_range || http_header_if_range(if_range, strlen(if_range), etag,
                                                   last_modified))) {
        switch (http_header_range(range, strlen(range), body->size, &first, &count)) {
        case HTTP_RANGE_OK:
            status = MHD_HTTP_PARTIAL_CONTENT;
            snprintf(content_range, sizeof(content_range),
                     "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, first + count - 1,
                     (uint64_t)body->size);
            break;
        case HTTP_RANGE_UNSATISFIABLE: {
            uint64_t size = body->size;
            blob_unref(body);
            return origin_reply_416(o, c, size);
        }
        case HTTP_RANGE_IGNORE:
        default:
            first = 0;
            count = body->size;
            break;
        }
    }
    /* Zero copy: the (partial) body points into the blob, whose reference
     * MHD drops through origin_blob_free_cb once the response is gone. */
    r = MHD_create_response_from_buffer_with_free_callback_cls(
        (size_t)count, body->data + first, origin_blob_free_cb, body);
    if (!r) {
        blob_unref(body);
        return MHD_NO;
    }
    origin_note_bytes(c, (uint64_t)count);
    MHD_add_response_header(r, "Content-Type", http_path_content_type(route->object_type));
    if (status == MHD_HTTP_PARTIAL_CONTENT)
        MHD_add_response_header(r, "Content-Range", content_range);
    origin_add_object_headers(o, r, route, blocking, etag, last_modified, gzip);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result origin_reply_object(origin_t *o, struct MHD_Connection *c,
                                           const http_route_t *route, bool blocking)
{
    blob_t *blob = NULL;
    int rc = store_get(o->store, route->stream_id, route->object, &blob);
    if (rc == -ENOENT)
        return origin_reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n", "no-cache");
    if (rc < 0)
        return origin_reply_unavailable(c, route, rc);
    return origin_reply_blob(o, c, route, blob, blocking);
}

#define ORIGIN_THUMB_CACHE 64

/* Widths a thumbnail is scaled to: a request's N goes up to the next of
 * them (the page scales the picture down), so a client cycling through
 * every N costs at most these scalings per picture, not 1265 (review S16). */
static const int origin_thumb_widths[] = {80, 120, 160, 240, 320, 480, 640, 960, 1280};

/* "?width=N": 1 with *width for N a decimal integer in 16..1280 without
 * a sign or leading zero, rounded up to origin_thumb_widths; 0 without the
 * argument; -1 for anything else. */
static int origin_thumbnail_width(struct MHD_Connection *c, int *width)
{
    const char *v = NULL;
    size_t n = 0;
    if (MHD_lookup_connection_value_n(c, MHD_GET_ARGUMENT_KIND, "width", 5, &v, &n) != MHD_YES)
        return 0;
    if (!v || n == 0 || n > 4 || v[0] == '0')
        return -1;
    int w = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        w = w * 10 + (v[i] - '0');
    }
    if (w < 16 || w > 1280)
        return -1;
    size_t i = 0;
    while (origin_thumb_widths[i] < w)
        i++;
    *width = origin_thumb_widths[i];
    return 1;
}

typedef struct origin_thumb_job {
    const origin_t *o;
    blob_t *src;
    int width;
} origin_thumb_job_t;

static int origin_thumb_make_cb(void *opaque, blob_t **out)
{
    origin_thumb_job_t *j = opaque;
    int rc = j->o->params.thumbnail_scale(j->src->data, j->src->size, j->width, out);
    if (rc == 0)
        (*out)->created_ms = j->src->created_ms; /* not shared yet */
    return rc;
}

/* /hls/ID/thumbnail.jpg[?width=N]: the stored JPEG, or a cached scaled copy. */
static enum MHD_Result origin_reply_thumbnail(origin_t *o, struct MHD_Connection *c,
                                              const http_route_t *route)
{
    int width = 0;
    int wr = origin_thumbnail_width(c, &width);
    if (wr < 0 || (wr > 0 && (!o->params.thumbnail_scale || !o->thumbs)))
        return origin_reply_text(c, MHD_HTTP_BAD_REQUEST,
                                 "width must be an integer from 16 to 1280\n", "no-cache");
    if (wr == 0)
        return origin_reply_object(o, c, route, false);
    blob_t *src = NULL;
    int rc = store_get(o->store, route->stream_id, route->object, &src);
    if (rc == -ENOENT)
        return origin_reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n", "no-cache");
    if (rc < 0)
        return origin_reply_unavailable(c, route, rc);
    char etag_buf[BLOB_ETAG_MAX];
    const char *etag = blob_etag(src, etag_buf);
    origin_thumb_job_t job = {.o = o, .src = src, .width = width};
    blob_t *scaled = NULL;
    int hit;
    rc = thumb_cache_get(o->thumbs, route->stream_id, etag, width, origin_thumb_make_cb, &job,
                         &scaled, &hit);
    blob_unref(src);
    if (rc < 0) {
        log_warn("origin", "stream %s: thumbnail at width %d: %s", route->stream_id, width,
                 strerror(-rc));
        return origin_reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot scale thumbnail\n",
                                 "no-cache");
    }
    return origin_reply_blob(o, c, route, scaled, false);
}

/*
 * Signed playback: true when the request may go on (playback is open, or
 * its token is valid for this stream, now, from this address); otherwise a
 * 403 saying why is queued into *ret. The token itself is never logged.
 */
static bool origin_authorize(origin_t *o, struct MHD_Connection *c, const http_route_t *route,
                             enum MHD_Result *ret)
{
    if (!o->secret)
        return true;
    const char *token = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    token_status_t st =
        token_verify(o->secret, o->secret_len, route->stream_id, token, token ? strlen(token) : 0,
                     clock_wall_ms() / 1000, ci ? ci->client_addr : NULL);
    if (st == TOKEN_OK)
        return true;
    log_debug("origin", "stream %s: playback refused (%.*s)", route->stream_id,
              (int)strlen(token_status_text(st)) - 1, token_status_text(st));
    *ret = origin_reply_text(c, MHD_HTTP_FORBIDDEN, token_status_text(st), "no-cache");
    return false;
}

/* ---- LL-HLS: requests that may wait (RFC 8216bis 6.2.5, 6.2.6) --------- */

static void origin_conn_suspend_cb(void *conn)
{
    MHD_suspend_connection(conn);
}

static void origin_conn_resume_cb(void *conn)
{
    MHD_resume_connection(conn);
}

/* The store name of `leaf` in the rendition of `object` ("720p/12.3.m4s",
 * "index.m3u8" -> "720p/index.m3u8"). */
static int origin_rendition_name(const char *object, const char *leaf, char *out, size_t outlen)
{
    const char *slash = strrchr(object, '/');
    if (!slash)
        return -EINVAL;
    int n = snprintf(out, outlen, "%.*s/%s", (int)(slash - object), object, leaf);
    return n > 0 && (size_t)n < outlen ? 0 : -ENAMETOOLONG;
}

static bool origin_is_media_playlist(const char *object)
{
    const char *slash = strrchr(object, '/');
    return slash && strcmp(slash + 1, HLS_NAME_PLAYLIST) == 0;
}

/* The position of the rendition's full playlist: 0, -ENOENT, -EIO, -EPROTO. */
static int origin_read_position(origin_t *o, const http_route_t *route, llhls_position_t *pos)
{
    char name[STORE_NAME_MAX + 1];
    memset(pos, 0, sizeof(*pos));
    if (origin_rendition_name(route->object, HLS_NAME_PLAYLIST, name, sizeof(name)) != 0)
        return -ENOENT;
    blob_t *b = NULL;
    int rc = store_get(o->store, route->stream_id, name, &b);
    if (rc < 0)
        return rc;
    rc = llhls_position_parse((const char *)b->data, b->size, pos);
    blob_unref(b);
    return rc;
}

/* Whole segments a woken rung's playlist has before a request held for it
 * is answered (origin_llhls_look). One: a second one costs every player a
 * whole segment more and did not help Shaka (tests/interop/rungs_on_demand.py). */
#define ORIGIN_COLD_SEGMENTS 1

/* Rungs on demand: the rendition of a playlist, part or segment request
 * ("720p" of "720p/12.3.m4s"), unless audio (encoded once, never idle);
 * false for anything else. */
static bool origin_video_rendition(const http_route_t *route, char *out, size_t outlen)
{
    const char *slash = strchr(route->object, '/');
    size_t n = slash ? (size_t)(slash - route->object) : 0;
    if (n == 0 || n >= outlen || (n == 5 && memcmp(route->object, "audio", 5) == 0))
        return false;
    memcpy(out, route->object, n);
    out[n] = '\0';
    return true;
}

/* Someone asked for a video rendition: noted in the store (at most once a
 * second per rendition on this node, store_demand_note) BEFORE any hold,
 * since this request may be the one that wakes an idle rung. */
static void origin_demand_note(origin_t *o, const http_route_t *route)
{
    char rend[32];
    if (!origin_video_rendition(route, rend, sizeof(rend)))
        return;
    int rc = store_demand_note(o->store, route->stream_id, rend, clock_wall_ms());
    if (rc == 1)
        atomic_fetch_add_explicit(&o->demand_writes, 1, memory_order_relaxed);
}

/* Whether a media playlist that is not in the store is an idle rung's:
 * the master names its rendition (a rung the master dropped, or a stream
 * that is gone, is a plain 404). Only asked once the playlist is found
 * missing, so a rung that is there costs no extra store read. */
static bool origin_rung_cold(origin_t *o, const http_route_t *route)
{
    char rend[32];
    if (!o->params.rungs_on_demand || !origin_video_rendition(route, rend, sizeof(rend)))
        return false;
    blob_t *b = NULL;
    if (store_get(o->store, route->stream_id, HLS_NAME_MASTER, &b) < 0)
        return false;
    char line[48];
    int n = snprintf(line, sizeof(line), "\n%s/" HLS_NAME_PLAYLIST "\n", rend);
    bool named = n > 0 && (size_t)n < sizeof(line) &&
                 memmem(b->data, b->size, line, (size_t)n) != NULL;
    blob_unref(b);
    return named;
}

/* q asked for a hinted part that the segment ended before: from now on it
 * asks for part 0 of the next segment, which took that part's place in
 * time (llhls_decide_object). 0, or -ENAMETOOLONG. */
static int origin_req_to_next_segment(origin_req_t *q)
{
    char leaf[HLS_NAME_FILE_MAX], name[STORE_NAME_MAX + 1];
    (void)hls_name_part(leaf, sizeof(leaf), q->msn + 1, 0);
    int rc = origin_rendition_name(q->route.object, leaf, name, sizeof(name));
    if (rc < 0)
        return rc;
    memcpy(q->route.object, name, sizeof(name));
    q->msn++;
    q->part = 0;
    return 0;
}

/* One look at the store for q: 0 with the decision, or -EIO. A hinted
 * part that will not come turns q into a request for the part that came
 * instead, looked up at once. */
static int origin_llhls_look(origin_t *o, origin_req_t *q, llhls_position_t *pos,
                             llhls_decision_t *d)
{
    int rc = origin_read_position(o, &q->route, pos);
    if (q->playlist) {
        if (rc == -ENOENT && !q->cold)
            q->cold = origin_rung_cold(o, &q->route); /* an idle rung's: wait for it */
        /* Missing just after an outage: Redis may have come back empty and
         * the ingest node not re-announced yet; wait, never a 404. */
        if (rc == -ENOENT)
            *d = q->cold || q->saw_outage ? LLHLS_WAIT : LLHLS_NOT_FOUND;
        else if (rc == -EPROTO)
            *d = LLHLS_ANSWER; /* not a playlist we can place: serve it as it is */
        else if (rc < 0)
            return rc;
        else
            *d = llhls_decide_playlist(pos, &q->query);
        /* A plain reload held through a store outage: the first playlist
         * read after the store came back may be the one the replica had
         * when the master died, the ingest node's re-announce a few ms
         * behind. A player given it unchanged waits half a target duration
         * before its next reload (hls.js: a "MISSED" playlist), so answer
         * one newer than that first read (the usual hold limit; past it,
         * the playlist as it is). */
        q->stale_held = false;
        if (rc == 0 && *d == LLHLS_ANSWER && q->saw_outage && !q->query.has_msn &&
            q->query.skip == LLHLS_SKIP_NONE && !pos->ended) {
            if (!q->stale_set) {
                q->stale_set = true;
                q->stale_msn = pos->next_msn;
                q->stale_part = pos->next_part;
                q->stale_held = true;
            } else if (pos->next_msn < q->stale_msn ||
                       (pos->next_msn == q->stale_msn && pos->next_part <= q->stale_part)) {
                q->stale_held = true;
            }
            if (q->stale_held)
                *d = LLHLS_WAIT;
        }
        /* A woken rung's playlist is answered once it has ORIGIN_COLD_SEGMENTS
         * whole segments: hls.js calls one with parts only empty
         * (levelEmptyError, then a retry). */
        if (rc == 0 && q->cold && *d == LLHLS_ANSWER && pos->segments < ORIGIN_COLD_SEGMENTS &&
            !pos->ended)
            *d = LLHLS_WAIT;
        return 0;
    }
    if (rc < 0 && rc != -ENOENT && rc != -EPROTO)
        return rc;
    /* The object is read AFTER its playlist: a part is committed together
     * with the playlist that names it, so one missing now was missing for
     * that playlist too, and the decision below is not stale. */
    for (int look = 0; look < 2; look++) {
        blob_t *b = NULL;
        int orc = store_get(o->store, q->route.stream_id, q->route.object, &b);
        blob_unref(b);
        if (orc == 0)
            *d = LLHLS_ANSWER;
        else if (orc != -ENOENT)
            return orc;
        else
            *d = rc == 0 ? llhls_decide_object(pos, q->msn, q->part)
                 : q->saw_outage ? LLHLS_WAIT : LLHLS_NOT_FOUND;
        if (*d != LLHLS_NEXT_SEGMENT)
            break;
        atomic_fetch_add_explicit(&o->hints_moved, 1, memory_order_relaxed);
        if (origin_req_to_next_segment(q) < 0) {
            *d = LLHLS_NOT_FOUND;
            break;
        }
        /* Part 0 of msn + 1 is never NEXT_SEGMENT again: a second look
         * answers, waits or refuses. */
    }
    return 0;
}

/* A media playlist answer: the delta update asked for when the playlist
 * offers one (RFC 8216bis 6.2.5.1: ignored without CAN-SKIP-UNTIL or with
 * EXT-X-ENDLIST), read after the wait; else the full playlist. */
static enum MHD_Result origin_reply_playlist(origin_t *o, struct MHD_Connection *c,
                                             const origin_req_t *q, const llhls_position_t *pos,
                                             bool blocking)
{
    http_route_t route = q->route;
    if (q->query.skip != LLHLS_SKIP_NONE && pos->can_skip && !pos->ended) {
        char name[STORE_NAME_MAX + 1];
        const char *leaf =
            q->query.skip == LLHLS_SKIP_V2 ? HLS_NAME_PLAYLIST_SKIP2 : HLS_NAME_PLAYLIST_SKIP;
        blob_t *b = NULL;
        if (origin_rendition_name(q->route.object, leaf, name, sizeof(name)) == 0 &&
            store_get(o->store, route.stream_id, name, &b) == 0)
            snprintf(route.object, sizeof(route.object), "%s", name);
        blob_unref(b);
    }
    return origin_reply_object(o, c, &route, blocking);
}

static enum MHD_Result origin_llhls_answer(origin_t *o, struct MHD_Connection *c,
                                           const origin_req_t *q, const llhls_position_t *pos,
                                           llhls_decision_t d)
{
    if (d == LLHLS_BAD_REQUEST)
        return origin_reply_text(c, MHD_HTTP_BAD_REQUEST,
                                 "_HLS_msn/_HLS_part too far ahead of the playlist\n", "no-cache");
    if (q->playlist && d == LLHLS_ANSWER)
        return origin_reply_playlist(o, c, q, pos, q->query.has_msn);
    if (q->playlist && d == LLHLS_WAIT) /* 6.2.5.2: not there after 3 target durations */
        return origin_reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                                 "playlist not updated within the hold limit\n", "max-age=1");
    /* A playlist that is not there, or a part or segment: there now, or
     * 404 for one past the hold limit or never coming (6.2.6). */
    return origin_reply_object(o, c, &q->route, false);
}

/* Arm, read, decide; answer, or suspend until the hub resumes the
 * connection (MHD then calls the access handler, which comes back here). */
static enum MHD_Result origin_llhls_run(origin_t *o, struct MHD_Connection *c, origin_req_t *q)
{
    for (;;) {
        /* The watch goes on BEFORE the read, so no commit is missed. */
        int rc = llhls_hold_arm(o->hub, &q->hold, q->route.stream_id, c, q->deadline_ms);
        llhls_position_t pos;
        llhls_decision_t d = LLHLS_WAIT;
        if (rc == 0)
            rc = origin_llhls_look(o, q, &pos, &d);
        if (rc == -ESHUTDOWN) {
            memset(&pos, 0, sizeof(pos));
            rc = 0;
        }
        q->store_away = rc == -EIO;
        q->saw_outage |= q->store_away;
        if (rc == -EIO && !llhls_hold_expired(&q->hold)) {
            /* The store is away (a Redis failover): hold on; its return
             * fires every watch (store_notify_all_changed) and we read
             * again. Past the hold limit, the 503 below. */
            memset(&pos, 0, sizeof(pos));
            d = LLHLS_WAIT;
            rc = 0;
        }
        if (rc < 0) {
            llhls_hold_leave(&q->hold);
            return origin_reply_unavailable(c, &q->route, rc);
        }
        if (d != LLHLS_WAIT || llhls_hold_expired(&q->hold)) {
            llhls_hold_leave(&q->hold);
            if (d == LLHLS_WAIT && q->store_away)
                return origin_reply_unavailable(c, &q->route, -EIO);
            if (d == LLHLS_WAIT && q->stale_held)
                d = LLHLS_ANSWER; /* no newer one within the limit: this one */
            return origin_llhls_answer(o, c, q, &pos, d);
        }
        if (llhls_hold_suspend(&q->hold))
            return MHD_YES;
        /* The stream changed while we read: read again. */
    }
}

/* /readyz: 200 "ready" while the store answers, else 503. Through Sentinel
 * the body also says how many failovers this node followed and when the
 * last was; never an address (this is the public listener). */
static enum MHD_Result origin_reply_readyz(origin_t *o, struct MHD_Connection *c)
{
    bool up = store_ping(o->store) == 0;
    store_stats_t ss;
    store_get_stats(o->store, &ss);
    char body[160];
    if (!ss.sentinel) {
        snprintf(body, sizeof(body), up ? "ready\n" : "store unreachable\n");
    } else if (!up) {
        snprintf(body, sizeof(body),
                 "store unreachable: no Redis master for %.1f s (redis-sentinel, failovers %" PRIu64
                 ")\n", (double)ss.outage_ms / 1000.0, ss.failovers);
    } else if (ss.last_failover_ms > 0) {
        int64_t ago = (clock_wall_ms() - ss.last_failover_ms) / 1000;
        snprintf(body, sizeof(body),
                 "ready\nstore: redis-sentinel, failovers %" PRIu64 ", last %" PRId64 " s ago\n",
                 ss.failovers, ago > 0 ? ago : 0);
    } else {
        snprintf(body, sizeof(body), "ready\nstore: redis-sentinel, failovers 0\n");
    }
    return origin_reply_text(c, up ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body, "no-store");
}

/* The address a client's held requests count under: the peer, or behind a
 * trusted proxy the client it forwards (viewers_client_addr), grouped as
 * every per-address limit is (netaddr_client_group). */
static void origin_hold_addr(const origin_t *o, struct MHD_Connection *c, uint8_t out[16])
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const char *xff = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-For");
    viewers_client_addr(o->viewers, ci ? ci->client_addr : NULL, xff, out);
    netaddr_client_group(out);
}

static origin_held_addr_t **origin_held_slot(origin_t *o, const uint8_t addr[16])
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < 16; i++)
        h = (h ^ addr[i]) * 16777619u;
    origin_held_addr_t **p = &o->held_by_addr[h % (sizeof(o->held_by_addr) / sizeof(o->held_by_addr[0]))];
    while (*p && memcmp((*p)->addr, addr, 16) != 0)
        p = &(*p)->next;
    return p;
}

/* Counts a held request in o->reqs, and under its client address, unless
 * --http-max-held are already there, or half of them are and this address
 * holds its share (--http-max-held-per-ip) already: false then. */
static bool origin_hold_slot_take(origin_t *o, const uint8_t addr[16])
{
    bool ok = false;
    pthread_mutex_lock(&o->held_lock);
    int cur = atomic_load(&o->reqs);
    origin_held_addr_t **p = origin_held_slot(o, addr);
    if (cur >= 0 && (unsigned int)cur < o->max_held &&
        !(*p && (unsigned int)cur >= o->max_held / 2 && (*p)->count >= o->max_held_per_ip)) {
        if (!*p && (*p = calloc(1, sizeof(**p))))
            memcpy((*p)->addr, addr, 16);
        if (*p) {
            (*p)->count++;
            atomic_fetch_add(&o->reqs, 1);
            ok = true;
        }
    }
    pthread_mutex_unlock(&o->held_lock);
    return ok;
}

static void origin_hold_slot_give(origin_t *o, const uint8_t addr[16])
{
    pthread_mutex_lock(&o->held_lock);
    origin_held_addr_t **p = origin_held_slot(o, addr);
    if (*p && --(*p)->count == 0) {
        origin_held_addr_t *gone = *p;
        *p = gone->next;
        free(gone);
    }
    atomic_fetch_sub(&o->reqs, 1);
    pthread_mutex_unlock(&o->held_lock);
}

/* A part or segment that would be waited for, with no room to hold it. */
static enum MHD_Result origin_reply_busy(struct MHD_Connection *c)
{
    return origin_reply_503(c, "too many requests waiting, retry shortly\n");
}

/* A media playlist, part or segment request: served at once when it can
 * be (no allocation), else held. */
static enum MHD_Result origin_llhls_start(origin_t *o, struct MHD_Connection *c,
                                          const http_route_t *route, void **req_cls)
{
    origin_req_t tmp;
    memset(&tmp, 0, sizeof(tmp));
    tmp.route = *route;
    if (o->params.rungs_on_demand)
        origin_demand_note(o, route);
    if (route->object_type == HTTP_OBJECT_PLAYLIST) {
        if (!origin_is_media_playlist(route->object))
            return origin_reply_object(o, c, route, false);
        static const char *const keys[] = {"_HLS_msn", "_HLS_part", "_HLS_skip"};
        const char *v[3] = {NULL, NULL, NULL};
        size_t vl[3] = {0, 0, 0};
        for (int i = 0; i < 3; i++) {
            if (MHD_lookup_connection_value_n(c, MHD_GET_ARGUMENT_KIND, keys[i],
                                              strlen(keys[i]), &v[i], &vl[i]) != MHD_YES) {
                v[i] = NULL;
                vl[i] = 0;
            } else if (!v[i]) {
                v[i] = ""; /* "?_HLS_msn" with no value */
                vl[i] = 0;
            }
        }
        if (llhls_query_parse(v[0], vl[0], v[1], vl[1], v[2], vl[2], &tmp.query) != 0)
            return origin_reply_text(c, MHD_HTTP_BAD_REQUEST,
                                     "bad _HLS_msn/_HLS_part (RFC 8216bis 6.2.5.2)\n", "no-cache");
        if (!tmp.query.has_msn && tmp.query.skip == LLHLS_SKIP_NONE) {
            blob_t *b = NULL;
            int rc = store_get(o->store, route->stream_id, route->object, &b);
            if (rc == 0)
                return origin_reply_blob(o, c, route, b, false);
            /* The store is away (a Redis failover): a plain reload is held
             * too, up to the usual limit, and answered once the store is
             * back. hls.js falls back to a plain reload when its blocking
             * one times out (after 3 part targets or so, less than a
             * failover) and counts a 503 to it as fatal. */
            if (rc != -ENOENT && rc != -EIO)
                return origin_reply_unavailable(c, route, rc);
            /* An idle rung's playlist, plain or blocking, waits until the
             * rung is back with its first part (the usual hold limit). */
            if (rc == -ENOENT && !(o->params.rungs_on_demand && (tmp.cold = origin_rung_cold(o, route))))
                return origin_reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n", "no-cache");
        }
        tmp.playlist = true;
    } else {
        if (llhls_media_name_parse(route->object, strlen(route->object), &tmp.msn, &tmp.part) != 0)
            return origin_reply_object(o, c, route, false);
        blob_t *b = NULL;
        int rc = store_get(o->store, route->stream_id, route->object, &b);
        blob_unref(b);
        /* There, or the store is away: a whole segment (classic HLS) gets
         * its 503 with Retry-After at once; a part (LL-HLS) is held below. */
        if (rc != -ENOENT && !(rc == -EIO && tmp.part >= 0))
            return origin_reply_object(o, c, route, false);
    }
    llhls_position_t pos;
    llhls_decision_t d;
    int rc = origin_llhls_look(o, &tmp, &pos, &d);
    if (rc == -EIO) {
        /* The store is away (a Redis failover takes a few seconds): a part
         * or a blocking reload is held, up to the usual limit, rather than
         * answered 503, which LL-HLS players count as an error. */
        memset(&pos, 0, sizeof(pos));
        d = LLHLS_WAIT;
        rc = 0;
        tmp.store_away = tmp.saw_outage = true;
    }
    if (rc < 0)
        return origin_reply_unavailable(c, route, rc);
    if (d != LLHLS_WAIT)
        return origin_llhls_answer(o, c, &tmp, &pos, d);
    if (tmp.cold)
        atomic_fetch_add_explicit(&o->cold_holds, 1, memory_order_relaxed);
    origin_hold_addr(o, c, tmp.addr);
    if (!origin_hold_slot_take(o, tmp.addr)) {
        atomic_fetch_add_explicit(&o->held_refused, 1, memory_order_relaxed);
        if (tmp.playlist) /* the playlist as it is, cacheable like a plain reload's */
            return origin_reply_playlist(o, c, &tmp, &pos, false);
        return origin_reply_busy(c);
    }
    origin_req_t *q = malloc(sizeof(*q));
    if (!q) {
        origin_hold_slot_give(o, tmp.addr);
        return MHD_NO;
    }
    *q = tmp;
    int64_t limit = llhls_hold_limit_ms(&pos, o->segment_duration);
    /* An idle rung needs up to a segment (or the publisher's keyframe
     * interval) to reach the next cut, then a whole segment: five target
     * durations instead of three. */
    if (q->cold)
        limit = limit / 3 * (4 + ORIGIN_COLD_SEGMENTS);
    q->deadline_ms = clock_mono_ms() + limit;
    *req_cls = q;
    return origin_llhls_run(o, c, q);
}

/* MHD_OPTION_NOTIFY_COMPLETED: the request is over (answered, client gone,
 * or daemon stopping); a held request's state goes with it. */
static void origin_completed_cb(void *cls, struct MHD_Connection *c, void **req_cls,
                                enum MHD_RequestTerminationCode toe)
{
    origin_t *o = cls;
    (void)toe;
    origin_conn_t *cc = origin_conn_of(c);
    if (cc) { /* the next request's head is awaited from now */
        atomic_store(&cc->head_since_ms, clock_mono_ms());
        atomic_store(&cc->head_in, false);
    }
    if (cc && cc->start_us > 0 && *req_cls) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
        unsigned int status = ci ? ci->http_status : 0;
        if (status == 0)
            status = 499; /* nothing was queued: the client left first */
        origin_kind_t k = cc->kind;
        int64_t us = clock_mono_us() - cc->start_us;
        if (us < 0)
            us = 0;
        size_t b = 0;
        while (b < ORIGIN_LATENCY_BUCKETS && (double)us > origin_latency_bounds[b] * 1e6)
            b++;
        atomic_fetch_add_explicit(&o->requests[k][origin_code_index(status)], 1,
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&o->bytes[k], status == 499 ? 0 : cc->bytes,
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&o->latency[k][b], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&o->latency_sum_us[k], (uint64_t)us, memory_order_relaxed);
        cc->start_us = 0;
    }
    if (cc && cc->beacon) { /* a beacon's body: answered, or the client left */
        free(cc->beacon);
        cc->beacon = NULL;
    }
    if (cc)
        cc->discarded = 0;
    origin_req_t *q = *req_cls;
    if (!q || *req_cls == (void *)&origin_request_seen || *req_cls == (void *)&origin_request_body ||
        *req_cls == (void *)&origin_request_beacon || *req_cls == (void *)&origin_request_answered ||
        *req_cls == (void *)&origin_request_beacon_over)
        return;
    llhls_hold_leave(&q->hold);
    origin_hold_slot_give(o, q->addr);
    free(q);
    *req_cls = NULL;
}

static origin_kind_t origin_route_kind(const http_route_t *route)
{
    switch (route->object_type) {
    case HTTP_OBJECT_PLAYLIST: return ORIGIN_KIND_PLAYLIST;
    case HTTP_OBJECT_PART: return ORIGIN_KIND_PART;
    case HTTP_OBJECT_SEGMENT: return ORIGIN_KIND_SEGMENT;
    case HTTP_OBJECT_INIT: return ORIGIN_KIND_INIT;
    default: return ORIGIN_KIND_OTHER;
    }
}

/* A playback request: its session is the player's `sid`, else the signed
 * token's SID, else address (X-Forwarded-For from a trusted proxy) and
 * User-Agent. Lookups only; nothing is allocated for a known session. */
static void origin_count_viewer(origin_t *o, struct MHD_Connection *c, const http_route_t *route)
{
    int64_t now = clock_mono_ms();
    const char *sid = NULL;
    size_t sid_len = 0;
    if (MHD_lookup_connection_value_n(c, MHD_GET_ARGUMENT_KIND, "sid", 3, &sid, &sid_len) ==
            MHD_YES &&
        sid && sid_len > 0) {
        viewers_touch(o->viewers, route->stream_id, 's', sid, sid_len, NULL, 0, now);
        return;
    }
    const char *token = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token");
    token_fields_t tf;
    if (token && token_parse(token, strlen(token), &tf) == 0 && tf.sid_len > 0) {
        viewers_touch(o->viewers, route->stream_id, 't', tf.sid, tf.sid_len, NULL, 0, now);
        return;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const char *xff = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-For");
    const char *ua = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "User-Agent");
    uint8_t addr[16];
    viewers_client_addr(o->viewers, ci ? ci->client_addr : NULL, xff, addr);
    viewers_touch(o->viewers, route->stream_id, 'a', addr, sizeof(addr), ua ? ua : "",
                  ua ? strlen(ua) : 0, now);
}

/* ---- audience: beacons (POST /beacon/ID) and viewers.json --------------- */

static const char origin_beacon_methods[] = "POST, OPTIONS";

const char *origin_beacon_result_name(origin_beacon_result_t r)
{
    static const char *const names[ORIGIN_BEACON_RESULTS] = {
        "accepted", "bad_request", "forbidden", "not_found", "too_large", "limited"};
    return (unsigned)r < ORIGIN_BEACON_RESULTS ? names[r] : "other";
}

static void origin_beacon_count(origin_t *o, origin_beacon_result_t r)
{
    atomic_fetch_add_explicit(&o->beacons[r], 1, memory_order_relaxed);
}

/* A JSON answer: {"error": why} (why NULL: json is the body, or none for
 * a 204). Takes json. CORS as every answer, never a cookie. */
static enum MHD_Result origin_reply_json(struct MHD_Connection *c, unsigned int status,
                                         const char *why, json_t *json,
                                         const char *cache_control, unsigned int retry_after_s)
{
    if (why) {
        json_decref(json);
        json = json_pack("{s:s}", "error", why);
    }
    char *text = json ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    struct MHD_Response *r =
        text ? MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    origin_note_bytes(c, text ? strlen(text) : 0);
    if (text)
        MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", cache_control);
    origin_add_common_headers(origin_of(c), r, false);
    if (retry_after_s) {
        char ra[16];
        snprintf(ra, sizeof(ra), "%u", retry_after_s);
        MHD_add_response_header(r, "Retry-After", ra);
    }
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, "Allow", origin_beacon_methods);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* An answer of the beacon endpoint: never stored by anyone. */
static enum MHD_Result origin_beacon_reply(origin_t *o, struct MHD_Connection *c,
                                           origin_beacon_result_t result, unsigned int status,
                                           const char *why, unsigned int retry_after_s)
{
    origin_beacon_count(o, result);
    return origin_reply_json(c, status, why, NULL, "no-store", retry_after_s);
}

/* The preflight of a beacon sent as application/json. */
static enum MHD_Result origin_beacon_options(struct MHD_Connection *c)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    origin_add_common_headers(origin_of(c), r, false);
    MHD_add_response_header(r, "Access-Control-Allow-Methods", origin_beacon_methods);
    MHD_add_response_header(r, "Access-Control-Allow-Headers", "Content-Type");
    MHD_add_response_header(r, "Access-Control-Max-Age", "86400");
    MHD_add_response_header(r, "Allow", origin_beacon_methods);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, r);
    MHD_destroy_response(r);
    return ret;
}

/* The texts of the 429s, by what was hit. */
static const char *origin_beacon_limit_text(audience_verdict_t v)
{
    switch (v) {
    case AUDIENCE_LIMIT_SESSION: return "too many beacons from this session";
    case AUDIENCE_LIMIT_ADDRESS: return "too many beacons from one address";
    case AUDIENCE_LIMIT_PER_ADDRESS: return "too many sessions from one address";
    default: return "too many sessions on this server";
    }
}

/*
 * A whole beacon is in (cc->beacon): parse (400, 413), the token under
 * --playback-secret (403), the stream live (404), this node's limits
 * (429), then 204. The order puts the checks that cost nothing first and
 * says nothing about a stream to a request that may not see it.
 */
static enum MHD_Result origin_beacon(origin_t *o, struct MHD_Connection *c,
                                     const http_route_t *route)
{
    if (!o->audience) /* --beacons off */
        return origin_beacon_reply(o, c, ORIGIN_BEACON_NOT_FOUND, MHD_HTTP_NOT_FOUND,
                                   "not found", 0);
    origin_conn_t *cc = origin_conn_of(c);
    const origin_beacon_body_t *b = cc ? cc->beacon : NULL;
    beacon_t bc;
    const char *why = NULL;
    int rc = beacon_parse(b ? b->data : "", b ? b->len : 0, &bc, &why);
    if (rc == -EMSGSIZE)
        return origin_beacon_reply(o, c, ORIGIN_BEACON_TOO_LARGE, MHD_HTTP_CONTENT_TOO_LARGE, why,
                                   0);
    if (rc < 0) {
        log_debug("origin", "stream %s: beacon refused (400: %s)", route->stream_id, why);
        return origin_beacon_reply(o, c, ORIGIN_BEACON_BAD_REQUEST, MHD_HTTP_BAD_REQUEST, why, 0);
    }

    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (o->secret) {
        token_status_t st = token_verify(o->secret, o->secret_len, route->stream_id,
                                         bc.has_token ? bc.token : NULL, bc.token_len,
                                         clock_wall_ms() / 1000, ci ? ci->client_addr : NULL);
        OPENSSL_cleanse(bc.token, sizeof(bc.token));
        if (st != TOKEN_OK) {
            /* The status text without its newline; the token is never logged. */
            char text[64];
            snprintf(text, sizeof(text), "%s", token_status_text(st));
            text[strcspn(text, "\n")] = '\0';
            log_debug("origin", "stream %s: beacon refused (%s)", route->stream_id, text);
            return origin_beacon_reply(o, c, ORIGIN_BEACON_FORBIDDEN, MHD_HTTP_FORBIDDEN, text, 0);
        }
    }

    /* Live: its master playlist is in the store (what playback reads). */
    blob_t *master = NULL;
    rc = store_get(o->store, route->stream_id, HLS_NAME_MASTER, &master);
    blob_unref(master);
    if (rc == -ENOENT)
        return origin_beacon_reply(o, c, ORIGIN_BEACON_NOT_FOUND, MHD_HTTP_NOT_FOUND,
                                   "stream is not live", 0);
    if (rc < 0)
        return origin_reply_503(c, origin_unavailable_text);

    const char *xff = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-For");
    uint8_t addr[16];
    viewers_client_addr(o->viewers, ci ? ci->client_addr : NULL, xff, addr);
    unsigned int retry = 0;
    audience_verdict_t v = audience_sessions_beacon(o->audience, route->stream_id, bc.session,
                                                    addr, &bc.s, clock_mono_ms(), &retry);
    if (v != AUDIENCE_ACCEPTED) {
        /* Neither the address nor its hash is logged (docs/security.md). */
        log_debug("origin", "stream %s: beacon refused (429: %s)", route->stream_id,
                  origin_beacon_limit_text(v));
        return origin_beacon_reply(o, c, ORIGIN_BEACON_LIMITED, MHD_HTTP_TOO_MANY_REQUESTS,
                                   origin_beacon_limit_text(v), retry ? retry : 1);
    }
    return origin_beacon_reply(o, c, ORIGIN_BEACON_ACCEPTED, MHD_HTTP_NO_CONTENT, NULL, 0);
}

/* What is read and thrown away of a beacon's body past BEACON_BODY_MAX
 * that no Content-Length announced (chunked), so that it can still be
 * answered 413; past this the connection is closed unanswered. */
#define ORIGIN_BEACON_DISCARD_MAX (64 * 1024)

/*
 * A chunk of a beacon's body. libmicrohttpd 0.9.75 refuses an answer queued
 * while a body is coming in, so a body found over BEACON_BODY_MAX here (a
 * chunked one: an announced Content-Length over it was answered before a
 * byte was read) is thrown away up to ORIGIN_BEACON_DISCARD_MAX and then
 * answered 413; a longer one has its connection closed. Returns MHD_YES to
 * read on, MHD_NO to close.
 */
static enum MHD_Result origin_beacon_upload(struct MHD_Connection *c, const char *data,
                                            size_t *size, void **req_cls)
{
    origin_conn_t *cc = origin_conn_of(c);
    size_t n = *size;
    *size = 0;
    if (!cc) /* no per-connection context (out of memory): nowhere to read into */
        return MHD_NO;
    if (*req_cls == &origin_request_beacon_over) {
        cc->discarded += n;
        return cc->discarded > ORIGIN_BEACON_DISCARD_MAX ? MHD_NO : MHD_YES;
    }
    if (!cc->beacon && !(cc->beacon = calloc(1, sizeof(*cc->beacon))))
        return MHD_NO;
    if (n > BEACON_BODY_MAX - cc->beacon->len) {
        cc->discarded = cc->beacon->len + n;
        free(cc->beacon);
        cc->beacon = NULL;
        *req_cls = &origin_request_beacon_over;
        return MHD_YES;
    }
    memcpy(cc->beacon->data + cc->beacon->len, data, n);
    cc->beacon->len += n;
    return MHD_YES;
}

/* GET /hls/ID/viewers.json: the count the aggregator last wrote (meta
 * "audience", kept 5 s), for a shop page. No token: a count is not the
 * picture. 404 for a stream that is not registered. */
static enum MHD_Result origin_viewers_json(origin_t *o, struct MHD_Connection *c,
                                           const http_route_t *route)
{
    int rc = store_stream_exists(o->store, route->stream_id);
    if (rc == -ENOENT)
        return origin_reply_json(c, MHD_HTTP_NOT_FOUND, "no such stream", NULL,
                                 HTTP_CACHE_CONTROL_ERROR, 0);
    if (rc < 0)
        return origin_reply_503(c, origin_unavailable_text);
    char *text = NULL;
    rc = store_meta_get(o->store, route->stream_id, "audience", &text);
    if (rc < 0 && rc != -ENOENT)
        return origin_reply_503(c, origin_unavailable_text);
    json_t *a = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    json_t *viewers = json_object_get(a, "viewers");
    json_t *updated = json_object_get(a, "updated");
    json_t *out;
    if (json_is_integer(viewers) && json_integer_value(viewers) >= 0) {
        out = json_pack("{s:I, s:b}", "viewers", json_integer_value(viewers), "live", 1);
        if (out && json_is_string(updated))
            json_object_set(out, "updated", updated);
    } else {
        if (a)
            log_debug("origin", "stream %s: meta \"audience\" has no viewer count; answered 0",
                      route->stream_id);
        out = json_pack("{s:i, s:b}", "viewers", 0, "live", 0);
    }
    json_decref(a);
    if (!out)
        return MHD_NO;
    return origin_reply_json(c, MHD_HTTP_OK, NULL, out, "public, max-age=5", 0);
}

/* ---- recordings (/vod/RID/...) ------------------------------------------- */

/*
 * Answers with a recording file from its descriptor, taking ownership of fd
 * on every path: 200, 206 (Range, If-Range), 304 (If-None-Match) or 416.
 * MHD reads the file as it sends it (sendfile), so its size does not matter.
 */
static enum MHD_Result origin_reply_file(origin_t *o, struct MHD_Connection *c,
                                         const http_route_t *route, int fd,
                                         const struct stat *st)
{
    char etag[VOD_ETAG_MAX];
    vod_file_etag(st, etag);
    char last_modified[HTTP_DATE_MAX];
    http_header_format_date((int64_t)st->st_mtim.tv_sec * 1000, last_modified);
    uint64_t size = (uint64_t)st->st_size;

    unsigned int status = MHD_HTTP_OK;
    uint64_t first = 0, count = size;
    char content_range[64] = "";
    const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
    bool not_modified = inm && http_header_none_match(inm, strlen(inm), etag);
    const char *range = not_modified ? NULL
                                     : MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
    const char *if_range = range ? MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-Range")
                                 : NULL;
    if (range && (!if_range || http_header_if_range(if_range, strlen(if_range), etag,
                                                   last_modified))) {
        switch (http_header_range(range, strlen(range), size, &first, &count)) {
        case HTTP_RANGE_OK:
            status = MHD_HTTP_PARTIAL_CONTENT;
            snprintf(content_range, sizeof(content_range),
                     "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, first + count - 1, size);
            break;
        case HTTP_RANGE_UNSATISFIABLE:
            close(fd);
            return origin_reply_416(o, c, size);
        case HTTP_RANGE_IGNORE:
        default:
            first = 0;
            count = size;
            break;
        }
    }
    /* A 304 is built over the whole file too (its Content-Length must be
     * the 200's, RFC 9110 8.6); MHD sends no body with it. MHD closes fd
     * when the response is destroyed. */
    struct MHD_Response *r = MHD_create_response_from_fd_at_offset64(count, fd, first);
    if (!r) {
        close(fd);
        return MHD_NO;
    }
    if (!not_modified)
        origin_note_bytes(c, count);
    MHD_add_response_header(r, "Content-Type", http_path_content_type(route->object_type));
    if (status == MHD_HTTP_PARTIAL_CONTENT)
        MHD_add_response_header(r, "Content-Range", content_range);
    origin_add_object_headers(o, r, route, false, etag, last_modified, false);
    enum MHD_Result ret = MHD_queue_response(c, not_modified ? MHD_HTTP_NOT_MODIFIED : status, r);
    MHD_destroy_response(r);
    return ret;
}

/*
 * /vod/RID/...: a file of a ready recording. With --playback-secret the
 * token must be valid for the recording's stream; a recording that does
 * not exist is refused like a bad token, so that without a valid token
 * nobody learns which recordings exist. Not ready ("recording", "failed"):
 * 404, cacheable for a second only (it may become ready).
 */
static enum MHD_Result origin_vod(origin_t *o, struct MHD_Connection *c, http_route_t *route)
{
    vod_recording_t rec = {.dirfd = -1};
    int rc = o->recordings_dir ? vod_recording_open(o->recordings_dir, route->recording_id, &rec)
                               : -ENOENT;
    if (rc == -EIO) {
        log_warn("origin", "recording %s: cannot read its directory in %s", route->recording_id,
                 o->recordings_dir);
        return origin_reply_503(c, "recording unavailable, retry shortly\n");
    }
    if (o->secret) {
        if (rc < 0) {
            const char *token = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token");
            return origin_reply_text(c, MHD_HTTP_FORBIDDEN,
                                     token_status_text(token ? TOKEN_INVALID : TOKEN_MISSING),
                                     "no-cache");
        }
        snprintf(route->stream_id, sizeof(route->stream_id), "%s", rec.stream_id);
        enum MHD_Result denied;
        if (!origin_authorize(o, c, route, &denied)) {
            vod_recording_close(&rec);
            return denied;
        }
    }
    if (rc < 0 || !rec.ready) {
        vod_recording_close(&rec);
        return origin_reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n", "no-cache");
    }
    snprintf(route->stream_id, sizeof(route->stream_id), "%s", rec.stream_id);
    struct stat st;
    int fd = vod_file_open(&rec, route->object, &st);
    vod_recording_close(&rec);
    if (fd == -ENOENT)
        return origin_reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n", "no-cache");
    if (fd < 0)
        return origin_reply_503(c, "recording unavailable, retry shortly\n");
    if (route->object_type != HTTP_OBJECT_PLAYLIST)
        return origin_reply_file(o, c, route, fd, &st);
    /* A playlist: small, read whole, then answered like a live one (token
     * added to its URIs, gzip, content ETag). */
    blob_t *blob = NULL;
    rc = vod_file_read(fd, &st, VOD_PLAYLIST_MAX, &blob);
    if (rc == -ENOMEM)
        return MHD_NO;
    if (rc < 0) {
        log_warn("origin", "recording %s: %s unreadable (%s)", route->recording_id,
                 route->object, rc == -EFBIG ? "too large" : strerror(-rc));
        return origin_reply_503(c, "recording unavailable, retry shortly\n");
    }
    return origin_reply_blob(o, c, route, blob, false);
}

static enum MHD_Result origin_access_cb(void *cls, struct MHD_Connection *c, const char *url,
                                        const char *method, const char *version,
                                        const char *upload_data, size_t *upload_data_size,
                                        void **req_cls)
{
    origin_t *o = cls;
    (void)version;
    bool beacon_path = strncmp(url, "/beacon/", 8) == 0; /* the one route with a body */

    /* The first call comes as soon as the headers are in; answer on the
     * second, once MHD holds the whole request. libmicrohttpd 0.9.75 treats a
     * response queued on the first call as "early": it discards the rest of
     * the request and sends Connection: close, so no connection would ever
     * be kept alive (every request a new TCP connection, a third of nginx's
     * rate). A marker in *req_cls tells the two calls apart. */
    if (*req_cls == NULL) {
        *req_cls = &origin_request_seen;
        origin_conn_t *cc = origin_conn_of(c);
        if (cc) {
            cc->start_us = clock_mono_us();
            cc->kind = ORIGIN_KIND_OTHER;
            cc->bytes = 0;
            atomic_store(&cc->head_in, true);
        }
        if (beacon_path && strcmp(method, MHD_HTTP_METHOD_POST) == 0) {
            /* A beacon's body is read (bounded) into the connection. One
             * announced over the limit is refused before a byte of it is
             * read: an answer this early makes libmicrohttpd close the
             * connection instead of reading on. */
            *req_cls = &origin_request_beacon;
            const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
            if (cl) {
                char *end = NULL;
                errno = 0;
                unsigned long long n = strtoull(cl, &end, 10);
                if (errno == 0 && end != cl && n > BEACON_BODY_MAX) {
                    *req_cls = &origin_request_answered;
                    return origin_beacon_reply(o, c, ORIGIN_BEACON_TOO_LARGE,
                                               MHD_HTTP_CONTENT_TOO_LARGE,
                                               "the body is over 2048 bytes", 0);
                }
            }
        }
        return MHD_YES;
    }
    if (*req_cls == &origin_request_answered) { /* whatever still comes is not read */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*req_cls == &origin_request_beacon_over) {
        if (*upload_data_size > 0)
            return origin_beacon_upload(c, upload_data, upload_data_size, req_cls);
        return origin_beacon_reply(o, c, ORIGIN_BEACON_TOO_LARGE, MHD_HTTP_CONTENT_TOO_LARGE,
                                   "the body is over 2048 bytes", 0);
    }
    if (*req_cls == &origin_request_beacon) {
        if (*upload_data_size > 0)
            return origin_beacon_upload(c, upload_data, upload_data_size, req_cls);
        http_route_t broute;
        if (http_path_parse(url, strlen(url), &broute) != 0 || broute.kind != HTTP_ROUTE_BEACON)
            return origin_beacon_reply(o, c, ORIGIN_BEACON_NOT_FOUND, MHD_HTTP_NOT_FOUND,
                                       "not found", 0);
        return origin_beacon(o, c, &broute);
    }

    /* The public origin takes no request bodies (every route is GET or
     * HEAD): one is read and thrown away (libmicrohttpd would otherwise
     * close the connection with a warning per request, a log line for
     * three bytes), then answered 413. Its size is bounded by the
     * connection's timeout like any slow request. */
    if (*upload_data_size > 0) {
        *upload_data_size = 0;
        *req_cls = &origin_request_body;
        return MHD_YES;
    }
    if (*req_cls == &origin_request_body)
        return origin_reply_text(c, MHD_HTTP_CONTENT_TOO_LARGE, "request bodies are not accepted\n",
                                 "no-store");
    if (*req_cls != &origin_request_seen) /* a held LL-HLS request, resumed */
        return origin_llhls_run(o, c, *req_cls);
    if (beacon_path) { /* POST went above; this is anything else */
        http_route_t broute;
        if (http_path_parse(url, strlen(url), &broute) != 0 || !o->audience)
            return origin_reply_json(c, MHD_HTTP_NOT_FOUND, "not found", NULL, "no-store", 0);
        if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0)
            return origin_beacon_options(c);
        return origin_reply_json(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST", NULL, "no-store", 0);
    }
    if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0)
        return origin_reply_options(c);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return origin_reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n",
                                 "no-cache");

    http_route_t route;
    int rc = http_path_parse(url, strlen(url), &route);
    if (rc == -EMSGSIZE)
        return origin_reply_text(c, MHD_HTTP_URI_TOO_LONG, "path too long\n", "no-cache");
    if (rc < 0)
        return origin_reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n", "no-cache");

    switch (route.kind) {
    case HTTP_ROUTE_HEALTHZ:
        return origin_reply_text(c, MHD_HTTP_OK, "ok\n", "no-store");
    case HTTP_ROUTE_READYZ:
        return origin_reply_readyz(o, c);
    case HTTP_ROUTE_PLAYER:
        /* One static page for every stream: its script reads the id from
         * the path, so nothing of the request is echoed into HTML. */
        return origin_reply_asset(c, web_asset_find("player.html"), "public, max-age=60");
    case HTTP_ROUTE_ASSET: {
        /* Only the player's files are public; the dashboard's are served
         * by the admin listener alone. */
        static const char *const public_assets[] = {"player.js", "player.css", "hls.min.js"};
        for (size_t i = 0; i < sizeof(public_assets) / sizeof(public_assets[0]); i++)
            if (strcmp(route.object, public_assets[i]) == 0)
                return origin_reply_asset(c, web_asset_find(route.object), "public, max-age=300");
        return origin_reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n", "no-cache");
    }
    case HTTP_ROUTE_HLS: {
        origin_conn_t *cc = origin_conn_of(c);
        if (cc)
            cc->kind = origin_route_kind(&route);
        if (route.object_type == HTTP_OBJECT_VIEWERS) /* public, and not a viewer */
            return origin_viewers_json(o, c, &route);
        enum MHD_Result denied;
        if (!origin_authorize(o, c, &route, &denied))
            return denied;
        if (route.object_type == HTTP_OBJECT_THUMBNAIL)
            return origin_reply_thumbnail(o, c, &route);
        origin_count_viewer(o, c, &route);
        if (route.object_type == HTTP_OBJECT_PLAYLIST || route.object_type == HTTP_OBJECT_PART ||
            route.object_type == HTTP_OBJECT_SEGMENT)
            return origin_llhls_start(o, c, &route, req_cls);
        return origin_reply_object(o, c, &route, false);
    }
    case HTTP_ROUTE_VOD: {
        origin_conn_t *cc = origin_conn_of(c);
        if (cc)
            cc->kind = origin_route_kind(&route);
        return origin_vod(o, c, &route);
    }
    default:
        return origin_reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n", "no-cache");
    }
}

/* How often the "connection limit reached" warning may repeat. */
#define ORIGIN_REFUSED_LOG_MS 10000

static void origin_mhd_log_cb(void *cls, const char *fmt, va_list ap)
{
    origin_t *o = cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    /* libmicrohttpd says this once per connection it closes at accept
     * (--http-max-connections or --http-max-connections-per-ip): under a
     * flood that is a line per attempt, so it is counted, and said at most
     * every 10 s with the count. */
    if (o && strstr(msg, "reached connection limit")) {
        uint64_t total =
            atomic_fetch_add_explicit(&o->connections_refused, 1, memory_order_relaxed) + 1;
        int64_t now = clock_mono_ms();
        int64_t last = atomic_load(&o->refused_log_ms);
        if ((last == 0 || now - last >= ORIGIN_REFUSED_LOG_MS) &&
            atomic_compare_exchange_strong(&o->refused_log_ms, &last, now)) {
            uint64_t before = atomic_exchange(&o->refused_logged, total);
            log_warn("origin",
                     "connection limit reached: %" PRIu64 " connection%s closed at accept "
                     "since the last warning (--http-max-connections, "
                     "--http-max-connections-per-ip)",
                     total - before, total - before == 1 ? "" : "s");
        }
        return;
    }
    /* Anything else libmicrohttpd says comes from what a client sent (an
     * oversized header, a broken request): one request would be one log
     * line, so at most one every 10 s, with how many were left out. */
    if (o) {
        int64_t now = clock_mono_ms();
        int64_t last = atomic_load(&o->mhd_log_ms);
        if ((last != 0 && now - last < ORIGIN_REFUSED_LOG_MS) ||
            !atomic_compare_exchange_strong(&o->mhd_log_ms, &last, now)) {
            atomic_fetch_add_explicit(&o->mhd_log_dropped, 1, memory_order_relaxed);
            return;
        }
        uint64_t dropped = atomic_exchange(&o->mhd_log_dropped, 0);
        if (dropped) {
            log_warn("origin", "libmicrohttpd: %s (and %" PRIu64 " more such warnings since the "
                     "last one, not logged)", msg, dropped);
            return;
        }
    }
    log_warn("origin", "libmicrohttpd: %s", msg);
}

/* The request-head deadline. --http-timeout is libmicrohttpd's idle
 * timeout: a client that sends one header byte every few seconds is never
 * idle, and would keep its connection (and, with enough of them, every
 * connection slot) for as long as it likes. This thread closes a
 * connection whose request head has not all arrived head_deadline_ms after
 * it began (shutdown(): libmicrohttpd then sees the end of the stream and
 * closes it the usual way). A kept-alive connection waiting for its next
 * request is closed by libmicrohttpd's idle timeout first. */
static void *origin_head_main(void *arg)
{
    origin_t *o = arg;
    int64_t last_log = 0;
    uint64_t logged = 0;
    pthread_mutex_lock(&o->conns_lock);
    while (!o->head_stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 500 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&o->head_cond, &o->conns_lock, &ts);
        int64_t now = clock_mono_ms();
        for (origin_conn_t *cc = o->conns; cc && !o->head_stopping; cc = cc->next) {
            if (cc->cut || cc->fd < 0 || atomic_load(&cc->head_in) ||
                now - atomic_load(&cc->head_since_ms) < o->head_deadline_ms)
                continue;
            cc->cut = true;
            shutdown(cc->fd, SHUT_RDWR);
            atomic_fetch_add_explicit(&o->heads_cut, 1, memory_order_relaxed);
        }
        uint64_t cut = atomic_load(&o->heads_cut);
        if (cut > logged && (last_log == 0 || now - last_log >= ORIGIN_REFUSED_LOG_MS)) {
            log_warn("origin", "closed %" PRIu64 " connection%s whose request head was not in "
                     "after %" PRId64 " s (--http-timeout + 1; a client sending it a byte at a time)",
                     cut - logged, cut - logged == 1 ? "" : "s", o->head_deadline_ms / 1000);
            logged = cut;
            last_log = now;
        }
    }
    pthread_mutex_unlock(&o->conns_lock);
    return NULL;
}

static void origin_head_stop(origin_t *o)
{
    if (!o->head_started)
        return;
    pthread_mutex_lock(&o->conns_lock);
    o->head_stopping = true;
    pthread_cond_signal(&o->head_cond);
    pthread_mutex_unlock(&o->conns_lock);
    pthread_join(o->head_thread, NULL);
    o->head_started = false;
}

/* Frees o and its copies of the configuration; the secret is wiped. */
static void origin_free_config(origin_t *o)
{
    origin_head_stop(o);
    pthread_mutex_destroy(&o->conns_lock);
    pthread_cond_destroy(&o->head_cond);
    for (size_t i = 0; i < sizeof(o->held_by_addr) / sizeof(o->held_by_addr[0]); i++)
        while (o->held_by_addr[i]) { /* none are left once MHD has stopped */
            origin_held_addr_t *next = o->held_by_addr[i]->next;
            free(o->held_by_addr[i]);
            o->held_by_addr[i] = next;
        }
    pthread_mutex_destroy(&o->held_lock);
    if (o->secret)
        OPENSSL_cleanse(o->secret, o->secret_len);
    free(o->secret);
    free(o->cors_origin);
    free(o->recordings_dir);
    audience_sessions_free(o->audience);
    viewers_free(o->viewers);
    thumb_cache_free(o->thumbs);
    free(o);
}

int origin_open(const origin_params_t *params, origin_t **out)
{
    *out = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen;
    char err[300];
    if (netaddr_parse(params->http_listen, &ss, &sslen, err, sizeof(err)) != 0) {
        log_error("origin", "--http-listen: %s", err);
        return -EINVAL;
    }
    origin_t *o = calloc(1, sizeof(*o));
    if (o) {
        pthread_mutex_init(&o->conns_lock, NULL);
        pthread_cond_init(&o->head_cond, NULL);
        pthread_mutex_init(&o->held_lock, NULL);
    }
    if (!o)
        return -ENOMEM;
    o->store = params->store;
    o->params = *params;
    o->cors_origin = strdup(params->cors_origin && *params->cors_origin ? params->cors_origin
                                                                         : "*");
    o->cors_any = o->cors_origin && strcmp(o->cors_origin, "*") == 0;
    if (params->playback_secret && *params->playback_secret) {
        o->secret = strdup(params->playback_secret);
        o->secret_len = strlen(params->playback_secret);
    }
    if (params->recordings_dir && *params->recordings_dir)
        o->recordings_dir = strdup(params->recordings_dir);
    if (!o->cors_origin || (params->playback_secret && *params->playback_secret && !o->secret) ||
        (params->recordings_dir && *params->recordings_dir && !o->recordings_dir)) {
        origin_free_config(o);
        return -ENOMEM;
    }
    o->params.recordings_dir = o->recordings_dir;
    o->params.cors_origin = o->cors_origin;
    o->params.playback_secret = o->secret;
    o->params.http_listen = NULL; /* not kept: the caller's string */
    o->segment_duration = params->segment_duration > 0 ? params->segment_duration : 2.0;
    o->max_held = params->max_held ? params->max_held : 5000u;
    o->max_held_per_ip = params->max_held_per_ip ? params->max_held_per_ip : 64u;
    /* A session expires after 2 target durations without a request. */
    double target = ceil(o->segment_duration);
    int vrc = viewers_new(params->trusted_proxies, (int64_t)(2 * target * 1000),
                          params->max_viewer_sessions, params->max_viewer_sessions_per_stream,
                          &o->viewers);
    if (vrc < 0) {
        log_error("origin", "--trusted-proxies: %s",
                  vrc == -E2BIG ? "too many entries (64 at most)"
                                : "not a list of addresses or ADDR/BITS networks");
        origin_free_config(o);
        return vrc == -ENOMEM ? vrc : -EINVAL;
    }
    o->params.trusted_proxies = NULL; /* parsed; the caller's string is not kept */
    if (!params->beacons_off) {
        audience_sessions_params_t ap = {
            .store = o->store,
            .timeout_ms = (int64_t)(params->audience_timeout_s ? params->audience_timeout_s : 30u) *
                          1000,
            .per_address = params->audience_per_address,
        };
        int arc = audience_sessions_new(&ap, &o->audience);
        if (arc == 0)
            arc = audience_sessions_start(o->audience);
        if (arc < 0) {
            log_error("origin", "cannot set up audience beacons: %s (--beacons off goes without)",
                      strerror(-arc));
            origin_free_config(o);
            return arc;
        }
    }
    int trc = thumb_cache_new(ORIGIN_THUMB_CACHE, &o->thumbs);
    if (trc < 0) {
        origin_free_config(o);
        return trc;
    }
    int hrc = llhls_hub_new(o->store, origin_conn_suspend_cb, origin_conn_resume_cb, &o->hub);
    if (hrc < 0) {
        origin_free_config(o);
        return hrc;
    }
    o->head_deadline_ms = ((int64_t)(params->timeout_s ? params->timeout_s : 15u) + 1) * 1000;
    int prc = pthread_create(&o->head_thread, NULL, origin_head_main, o);
    if (prc != 0) {
        log_error("origin", "cannot start the request-head deadline thread: %s", strerror(prc));
        llhls_hub_free(o->hub);
        origin_free_config(o);
        return -prc;
    }
    pthread_setname_np(o->head_thread, "origin-head");
    o->head_started = true;

    unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
                         MHD_ALLOW_SUSPEND_RESUME;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* Workers: --http-threads, or one per online CPU (0, the default);
     * each runs its own epoll loop (MHD_USE_AUTO picks epoll on Linux).
     * Per-connection memory pool 16 KB instead of 32: libmicrohttpd zeroes
     * the pool between requests on a kept-alive connection, and halving it
     * cut ~7% of the CPU per small request (docs/benchmarks.md) while
     * leaving room for the longest request headers a CDN sends.
     * MHD_USE_TURBO was measured too and did not help.
     * The logger goes first so that MHD's own messages about the options
     * that follow already reach our log. */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned int nthreads = params->threads ? params->threads
                            : ncpu > 0 && ncpu <= 256 ? (unsigned int)ncpu
                                                      : 2u;
    /* A per-IP limit of 0 is MHD's "no limit" too; it is passed either way. */
    o->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, origin_access_cb, o, MHD_OPTION_EXTERNAL_LOGGER, origin_mhd_log_cb,
        o, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE, nthreads,
        MHD_OPTION_CONNECTION_LIMIT, params->max_connections ? params->max_connections : 10000u,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, params->max_connections_per_ip,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384, MHD_OPTION_CONNECTION_TIMEOUT,
        params->timeout_s ? params->timeout_s : 15u, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        MHD_OPTION_NOTIFY_COMPLETED, origin_completed_cb, o, MHD_OPTION_NOTIFY_CONNECTION,
        origin_notify_cb, o, MHD_OPTION_END);
    if (!o->daemon) {
        int why = netaddr_report_listen_failure("origin", params->http_listen, &ss, sslen);
        llhls_hub_free(o->hub);
        origin_free_config(o);
        return why;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(o->daemon, MHD_DAEMON_INFO_BIND_PORT);
    o->port = info ? info->port : -1;
    log_info("origin", "HTTP origin listening on %s (port %d)%s", params->http_listen, o->port,
             o->secret ? ", signed playback" : "");
    if (o->audience)
        log_info("origin", "audience beacons at /beacon/ID: sessions expire after %u s, at most %u "
                 "per client address and stream",
                 params->audience_timeout_s ? params->audience_timeout_s : 30u,
                 params->audience_per_address ? params->audience_per_address : 50u);
    *out = o;
    return 0;
}

int origin_port(const origin_t *o)
{
    return o->port;
}

void origin_close(origin_t *o)
{
    if (!o)
        return;
    /* MHD must not be stopped with suspended connections: answer every held
     * request first (the hub refuses new holds from now on). */
    size_t left = llhls_hub_shutdown(o->hub, ORIGIN_DRAIN_MS);
    if (left)
        log_warn("origin", "%zu held requests not answered at shutdown", left);
    /* ... and give their answers a moment to leave (MHD_stop_daemon closes
     * connections whether or not their response went out). */
    for (int i = 0; i < ORIGIN_DRAIN_MS / 5 / 5 && atomic_load(&o->reqs) > 0; i++) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    origin_head_stop(o);
    MHD_stop_daemon(o->daemon);
    llhls_hub_free(o->hub);
    origin_free_config(o);
}

void origin_get_stats(origin_t *o, origin_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!o)
        return;
    for (size_t k = 0; k < ORIGIN_KINDS; k++) {
        for (size_t i = 0; i < ORIGIN_CODES; i++)
            out->requests[k][i] = atomic_load_explicit(&o->requests[k][i], memory_order_relaxed);
        for (size_t i = 0; i <= ORIGIN_LATENCY_BUCKETS; i++)
            out->latency[k][i] = atomic_load_explicit(&o->latency[k][i], memory_order_relaxed);
        out->bytes[k] = atomic_load_explicit(&o->bytes[k], memory_order_relaxed);
        out->latency_sum_s[k] =
            (double)atomic_load_explicit(&o->latency_sum_us[k], memory_order_relaxed) / 1e6;
    }
    /* MHD's own count when it can say (it counts across the thread pool). */
    const union MHD_DaemonInfo *di =
        o->daemon ? MHD_get_daemon_info(o->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS) : NULL;
    out->connections_open = di ? di->num_connections
                               : atomic_load_explicit(&o->connections, memory_order_relaxed);
    viewers_get_stats(o->viewers, clock_mono_ms(), &out->viewer_sessions,
                      &out->viewer_sessions_created, &out->viewer_sessions_refused);
    out->held_requests = llhls_hub_count(o->hub);
    out->held_refused = atomic_load_explicit(&o->held_refused, memory_order_relaxed);
    out->hints_moved = atomic_load_explicit(&o->hints_moved, memory_order_relaxed);
    out->demand_writes = atomic_load_explicit(&o->demand_writes, memory_order_relaxed);
    out->cold_holds = atomic_load_explicit(&o->cold_holds, memory_order_relaxed);
    out->connections_refused =
        atomic_load_explicit(&o->connections_refused, memory_order_relaxed);
    for (size_t i = 0; i < ORIGIN_BEACON_RESULTS; i++)
        out->beacons[i] = atomic_load_explicit(&o->beacons[i], memory_order_relaxed);
    out->beacon_sessions = audience_sessions_count(o->audience);
    out->beacon_store_errors = audience_sessions_store_errors(o->audience);
}

uint64_t origin_viewers(origin_t *o, const char *stream_id)
{
    return o && stream_id ? viewers_count(o->viewers, stream_id, clock_mono_ms()) : 0;
}

int origin_viewers_list(origin_t *o, origin_stream_viewers_t **out, size_t *n)
{
    if (!o) {
        *out = NULL;
        *n = 0;
        return 0;
    }
    return viewers_list(o->viewers, clock_mono_ms(), out, n);
}

int origin_check_trusted_proxies(const char *spec, char *why, size_t whylen)
{
    viewers_net_t nets[VIEWERS_PROXIES_MAX];
    int n = viewers_parse_proxies(spec, nets, VIEWERS_PROXIES_MAX);
    if (n >= 0)
        return 0;
    snprintf(why, whylen, "--trusted-proxies: %s",
             n == -E2BIG ? "too many entries (64 at most)"
                         : "not a list of addresses or ADDR/BITS networks");
    return -EINVAL;
}
