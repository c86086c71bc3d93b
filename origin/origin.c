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
 */
#include "origin.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include <openssl/crypto.h>

#include "clock.h"
#include "http_cache_internal.h"
#include "http_path_internal.h"
#include "log.h"
#include "netaddr.h"
#include "playlist_rewrite_internal.h"
#include "token_internal.h"

struct origin {
    struct MHD_Daemon *daemon;
    store_t *store;
    int port;
    /* A copy of the parameters; its strings point at the owned copies below. */
    origin_params_t params;
    char *cors_origin;   /* Access-Control-Allow-Origin value */
    char *secret;        /* playback secret, NULL when playback is open */
    size_t secret_len;
    bool cors_any;       /* cors_origin is "*": no Vary: Origin */
};

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
static const origin_t *origin_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void origin_notify_cb(void *cls, struct MHD_Connection *c, void **socket_context,
                             enum MHD_ConnectionNotificationCode toe)
{
    (void)c;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        *socket_context = cls;
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
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
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
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(origin_unavailable_text), (void *)origin_unavailable_text, MHD_RESPMEM_PERSISTENT);
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

/* Headers of every representation of an object: 200, 206 and 304 alike
 * (RFC 9110 15.4.5: a 304 carries what a 200 would for caching). */
static void origin_add_object_headers(const origin_t *o, struct MHD_Response *r,
                                      const http_route_t *route, bool blocking, const char *etag,
                                      const char *last_modified, bool gzip)
{
    bool playlist = route->object_type == HTTP_OBJECT_PLAYLIST;
    MHD_add_response_header(r, "Cache-Control",
                            http_cache_control(route->object_type, blocking, &o->params));
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
    if (playlist && ae && http_cache_accepts_gzip(ae, strlen(ae))) {
        blob_t *gz = blob_gzip(body); /* cached on the blob after the first time */
        if (gz) {
            blob_ref(gz);
            blob_unref(body);
            body = gz;
            gzip = true;
        }
    }
    char etag_buf[BLOB_ETAG_MAX];
    const char *etag = blob_etag(body, etag_buf);
    char last_modified[HTTP_DATE_MAX];
    http_cache_format_date(body->created_ms, last_modified);

    unsigned int status = MHD_HTTP_OK;
    struct MHD_Response *r = NULL;
    const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
    if (inm && http_cache_none_match(inm, strlen(inm), etag)) {
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
    if (range && (!if_range || http_cache_if_range(if_range, strlen(if_range), etag,
                                                   last_modified))) {
        switch (http_cache_range(range, strlen(range), body->size, &first, &count)) {
        case HTTP_RANGE_OK:
            status = MHD_HTTP_PARTIAL_CONTENT;
            snprintf(content_range, sizeof(content_range),
                     "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first, first + count - 1,
                     (uint64_t)body->size);
            break;
        case HTTP_RANGE_UNSATISFIABLE: {
            snprintf(content_range, sizeof(content_range), "bytes */%" PRIu64,
                     (uint64_t)body->size);
            blob_unref(body);
            static const char text[] = "range not satisfiable\n";
            r = MHD_create_response_from_buffer(sizeof(text) - 1, (void *)text,
                                                MHD_RESPMEM_PERSISTENT);
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
    MHD_add_response_header(r, "Content-Type", http_path_content_type(route->object_type));
    if (status == MHD_HTTP_PARTIAL_CONTENT)
        MHD_add_response_header(r, "Content-Range", content_range);
    origin_add_object_headers(o, r, route, blocking, etag, last_modified, gzip);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result origin_reply_object(origin_t *o, struct MHD_Connection *c,
                                           const http_route_t *route)
{
    blob_t *blob = NULL;
    int rc = store_get(o->store, route->stream_id, route->object, &blob);
    if (rc == -ENOENT)
        return origin_reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n", "no-cache");
    if (rc < 0)
        return origin_reply_unavailable(c, route, rc);
    return origin_reply_blob(o, c, route, blob, false);
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

static enum MHD_Result origin_access_cb(void *cls, struct MHD_Connection *c, const char *url,
                                        const char *method, const char *version,
                                        const char *upload_data, size_t *upload_data_size,
                                        void **req_cls)
{
    origin_t *o = cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;

    /* libmicrohttpd (0.9.75) closes the connection after a response queued
     * in the first call for a request, before it knows the request has no
     * body: answer on the second call, so that keep-alive works. */
    static char origin_request_seen;
    if (*req_cls == NULL) {
        *req_cls = &origin_request_seen;
        return MHD_YES;
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
        if (store_ping(o->store) == 0)
            return origin_reply_text(c, MHD_HTTP_OK, "ready\n", "no-store");
        return origin_reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "store unreachable\n",
                                 "no-store");
    case HTTP_ROUTE_HLS: {
        enum MHD_Result denied;
        if (!origin_authorize(o, c, &route, &denied))
            return denied;
        return origin_reply_object(o, c, &route);
    }
    default:
        return origin_reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n", "no-cache");
    }
}

static void origin_mhd_log_cb(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && msg[n - 1] == '\n')
        msg[--n] = '\0';
    log_warn("origin", "libmicrohttpd: %s", msg);
}

/* Frees o and its copies of the configuration; the secret is wiped. */
static void origin_free_config(origin_t *o)
{
    if (o->secret)
        OPENSSL_cleanse(o->secret, o->secret_len);
    free(o->secret);
    free(o->cors_origin);
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
    if (!o->cors_origin || (params->playback_secret && *params->playback_secret && !o->secret)) {
        origin_free_config(o);
        return -ENOMEM;
    }
    o->params.cors_origin = o->cors_origin;
    o->params.playback_secret = o->secret;
    o->params.http_listen = NULL; /* not kept: the caller's string */

    unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
                         MHD_ALLOW_SUSPEND_RESUME;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The logger goes first so that MHD's own messages about the options
     * that follow already reach our log. */
    o->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, origin_access_cb, o, MHD_OPTION_EXTERNAL_LOGGER, origin_mhd_log_cb,
        NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, params->threads ? params->threads : 2u,
        MHD_OPTION_CONNECTION_LIMIT, params->max_connections ? params->max_connections : 10000u,
        MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        MHD_OPTION_NOTIFY_CONNECTION, origin_notify_cb, o, MHD_OPTION_END);
    if (!o->daemon) {
        log_error("origin", "cannot listen on %s (in use, or not an address of this host)",
                  params->http_listen);
        origin_free_config(o);
        return -EADDRINUSE;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(o->daemon, MHD_DAEMON_INFO_BIND_PORT);
    o->port = info ? info->port : -1;
    log_info("origin", "HTTP origin listening on %s (port %d)%s", params->http_listen, o->port,
             o->secret ? ", signed playback" : "");
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
    MHD_stop_daemon(o->daemon);
    origin_free_config(o);
}
