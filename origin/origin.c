/*
 * The public origin on libmicrohttpd. MHD runs its own listening thread and
 * a pool of worker threads (epoll where available); the access handler runs
 * on those threads, parses the path with http_path_parse(), takes a blob
 * reference from the store and hands the bytes to MHD without copying. The
 * reference is dropped by MHD's free callback once the response is sent, so
 * a slow viewer holds only its own reference, never a lock or a thread.
 * The origin never knows which store backend runs: a store that cannot be
 * read (-EIO) is a 503 with Retry-After, never a 404.
 */
#include "origin.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "clock.h"
#include "http_path_internal.h"
#include "log.h"
#include "netaddr.h"

struct origin {
    struct MHD_Daemon *daemon;
    store_t *store;
    int port;
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

static void origin_add_common_headers(struct MHD_Response *r)
{
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    MHD_add_response_header(r, "Access-Control-Expose-Headers", "Content-Length, Content-Type");
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
    MHD_add_response_header(r, "Cache-Control", cache_control);
    origin_add_common_headers(r);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, "Allow", origin_allowed_methods);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result origin_reply_options(struct MHD_Connection *c)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    origin_add_common_headers(r);
    MHD_add_response_header(r, "Access-Control-Allow-Methods", origin_allowed_methods);
    MHD_add_response_header(r, "Access-Control-Allow-Headers", "Range, If-None-Match");
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
    MHD_add_response_header(r, "Cache-Control", "max-age=1");
    MHD_add_response_header(r, "Retry-After", ORIGIN_RETRY_AFTER_S);
    origin_add_common_headers(r);
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_SERVICE_UNAVAILABLE, r);
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
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback_cls(
        blob->size, blob->data, origin_blob_free_cb, blob);
    if (!r) {
        blob_unref(blob);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", http_path_content_type(route->object_type));
    /* Playlists change with every segment; media objects never change once
     * written (the CDN-tuned lifetimes come with the LL-HLS work). */
    MHD_add_response_header(r, "Cache-Control", route->object_type == HTTP_OBJECT_PLAYLIST
                                                     ? "no-cache"
                                                     : "public, max-age=60");
    origin_add_common_headers(r);
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
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

    /* The first call comes as soon as the headers are in; answer on the
     * second, once MHD holds the whole request. libmicrohttpd 0.9.75 treats a
     * response queued on the first call as "early": it discards the rest of
     * the request and sends Connection: close, so no connection would ever
     * be kept alive (every request a new TCP connection, a third of nginx's
     * rate). A marker in *req_cls tells the two calls apart. */
    static char origin_headers_seen;
    if (*req_cls == NULL) {
        *req_cls = &origin_headers_seen;
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
    case HTTP_ROUTE_HLS:
        return origin_reply_object(o, c, &route);
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
    o->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, origin_access_cb, o, MHD_OPTION_EXTERNAL_LOGGER, origin_mhd_log_cb,
        NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE, nthreads,
        MHD_OPTION_CONNECTION_LIMIT, params->max_connections ? params->max_connections : 10000u,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
    if (!o->daemon) {
        log_error("origin", "cannot listen on %s (in use, or not an address of this host)",
                  params->http_listen);
        free(o);
        return -EADDRINUSE;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(o->daemon, MHD_DAEMON_INFO_BIND_PORT);
    o->port = info ? info->port : -1;
    log_info("origin", "HTTP origin listening on %s (port %d)", params->http_listen, o->port);
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
    free(o);
}
