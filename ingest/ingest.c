/*
 * The RTMP listener and its thread: binds the listen socket, runs one
 * libevent loop that accepts connections and hands each to rtmp_session.c,
 * and tears everything down on ingest_close().
 *
 * Threads: ingest_open() and ingest_close() run on the caller's thread; the
 * loop thread owns the listener and every session while it runs. To stop,
 * ingest_close() activates a stop event (libevent is made thread-aware with
 * evthread_use_pthreads), joins the thread, and only then frees sessions
 * itself: by then nothing else touches them.
 *
 * Ownership: ingest_t owns the event base, the listener, every session, and
 * the thread. The store and hooks belong to the caller. A store thread may
 * report a lost lease at any time: it only queues the session id under
 * lost_lock and activates lost_ev; the loop does the rest. Publish
 * authorisation answers (ingest_auth_done, any thread) travel the same way,
 * under auth_lock through auth_ev, and so do the answers of the store calls
 * a publish needs, which run on the store worker (store_jobs.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "clock.h"
#include "ingest.h"
#include "ingest_internal.h"
#include "log.h"
#include "netaddr.h"
#include "srt_internal.h"

struct ingest {
    ingest_shared_t sh;
    struct evconnlistener *listener;
    struct evconnlistener *tls_listener;
    int tls_port;
    char *tls_cert, *tls_key; /* paths, read again on reload */
    struct event *stop_ev;
    /* New limits from another thread (SIGHUP), applied on the loop. */
    pthread_mutex_t limits_lock;
    ingest_limits_t limits_next;
    struct event *limits_ev;
    pthread_t thread;
    int port;
    char listen[128];
};

static pthread_once_t ingest_evthread_once = PTHREAD_ONCE_INIT;
static int ingest_evthread_ret;

static void ingest_evthread_init(void)
{
    ingest_evthread_ret = evthread_use_pthreads();
}

void ingest_limits_default(ingest_limits_t *lim)
{
    lim->max_message_size = 4u << 20;
    lim->max_chunk_size = 65536;
    lim->max_chunk_streams = 64;
    lim->max_amf_depth = 16;
    lim->max_amf_string = 65535;
    lim->handshake_timeout_ms = 10000;
    lim->idle_timeout_ms = 30000;
    lim->stall_timeout_ms = 10000;
    lim->queue_bytes = 32u << 20;
    lim->max_connections = 1000;
    lim->max_connections_per_ip = 32;
    lim->max_publishers = 100;
    lim->max_key_failures = 10;
    lim->key_lockout_s = 300;
    lim->auth_timeout_ms = 5000;
    lim->max_unpublished_bytes = 32u << 20;
    lim->max_input_width = 3840;
    lim->max_input_height = 2160;
    lim->max_input_fps = 120;
}

/* Zero fields (a caller that skipped ingest_limits_default) get defaults. */
static void ingest_limits_fill(ingest_limits_t *lim)
{
    ingest_limits_t d;
    ingest_limits_default(&d);
    if (!lim->max_message_size)
        lim->max_message_size = d.max_message_size;
    if (!lim->max_chunk_size)
        lim->max_chunk_size = d.max_chunk_size;
    if (!lim->max_chunk_streams)
        lim->max_chunk_streams = d.max_chunk_streams;
    if (!lim->max_amf_depth)
        lim->max_amf_depth = d.max_amf_depth;
    if (!lim->max_amf_string)
        lim->max_amf_string = d.max_amf_string;
    if (!lim->auth_timeout_ms)
        lim->auth_timeout_ms = d.auth_timeout_ms;
    if (!lim->handshake_timeout_ms)
        lim->handshake_timeout_ms = d.handshake_timeout_ms;
    if (!lim->queue_bytes)
        lim->queue_bytes = d.queue_bytes;
    if (!lim->idle_timeout_ms)
        lim->idle_timeout_ms = d.idle_timeout_ms;
    if (!lim->stall_timeout_ms)
        lim->stall_timeout_ms = d.stall_timeout_ms;
    if (!lim->max_connections)
        lim->max_connections = d.max_connections;
    if (!lim->max_connections_per_ip)
        lim->max_connections_per_ip = d.max_connections_per_ip;
    if (!lim->max_publishers)
        lim->max_publishers = d.max_publishers;
    if (!lim->max_key_failures)
        lim->max_key_failures = d.max_key_failures;
    if (!lim->key_lockout_s)
        lim->key_lockout_s = d.key_lockout_s;
    if (!lim->max_unpublished_bytes)
        lim->max_unpublished_bytes = d.max_unpublished_bytes;
    if (!lim->max_input_width || !lim->max_input_height) {
        lim->max_input_width = d.max_input_width;
        lim->max_input_height = d.max_input_height;
    }
    if (!lim->max_input_fps)
        lim->max_input_fps = d.max_input_fps;
}

/* Addresses remembered for bad keys. Past this the stalest entry is reused:
 * an attacker with many addresses can only make us forget, never grow. */
#define INGEST_KEY_FAILURES_MAX 4096
#define INGEST_KEY_WINDOW_MS 60000
#define INGEST_REFUSAL_LOG_MS 10000

void ingest_addr_from(ingest_addr_t *a, const struct sockaddr *sa)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memset(a, 0, sizeof(*a));
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
        memcpy(a->b, v4mapped, sizeof(v4mapped));
        memcpy(a->b + 12, &in4->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        memcpy(a->b, &in6->sin6_addr, 16);
        /* IPv6 by its /64 (S11); an IPv4 peer on a dual-stack socket
         * arrives IPv4-mapped and keeps its whole address. */
        netaddr_client_group(a->b);
    }
}

static ingest_key_failure_t *ingest_key_failure_find(ingest_shared_t *sh, const ingest_addr_t *a)
{
    for (size_t i = 0; i < sh->nkey_failures; i++)
        if (memcmp(&sh->key_failures[i].addr, a, sizeof(*a)) == 0)
            return &sh->key_failures[i];
    return NULL;
}

bool ingest_addr_locked_out(ingest_shared_t *sh, const ingest_addr_t *a, int64_t now_ms)
{
    const ingest_key_failure_t *f = ingest_key_failure_find(sh, a);
    return f && f->locked_until_ms > now_ms;
}

bool ingest_key_failed(ingest_shared_t *sh, const ingest_addr_t *a, int64_t now_ms)
{
    INGEST_COUNT(sh, bad_keys);
    ingest_key_failure_t *f = ingest_key_failure_find(sh, a);
    if (!f) {
        if (sh->nkey_failures < INGEST_KEY_FAILURES_MAX) {
            f = &sh->key_failures[sh->nkey_failures++];
        } else {
            /* Reuse the entry that matters least: not locked, oldest window. */
            f = &sh->key_failures[0];
            for (size_t i = 1; i < sh->nkey_failures; i++) {
                ingest_key_failure_t *c = &sh->key_failures[i];
                bool c_locked = c->locked_until_ms > now_ms;
                bool f_locked = f->locked_until_ms > now_ms;
                if ((f_locked && !c_locked) ||
                    (f_locked == c_locked && c->window_ms < f->window_ms))
                    f = c;
            }
        }
        memset(f, 0, sizeof(*f));
        f->addr = *a;
        f->window_ms = now_ms;
    }
    if (now_ms - f->window_ms >= INGEST_KEY_WINDOW_MS) {
        f->window_ms = now_ms;
        f->count = 0;
    }
    f->count++;
    if (f->count >= sh->limits.max_key_failures && f->locked_until_ms <= now_ms) {
        f->locked_until_ms = now_ms + (int64_t)sh->limits.key_lockout_s * 1000;
        f->count = 0;
        INGEST_COUNT(sh, lockouts);
        return true;
    }
    return false;
}

void ingest_log_refusal(ingest_shared_t *sh, ingest_refusal_t why, const char *peer,
                        const char *detail)
{
    int64_t now = clock_mono_ms();
    if (sh->refusal_log_ms[why] && now - sh->refusal_log_ms[why] < INGEST_REFUSAL_LOG_MS) {
        sh->refusal_unlogged[why]++;
        return;
    }
    if (sh->refusal_unlogged[why])
        log_warn("rtmp", "refused %s: %s (and %llu more since the last such line)", peer, detail,
                 (unsigned long long)sh->refusal_unlogged[why]);
    else
        log_warn("rtmp", "refused %s: %s", peer, detail);
    sh->refusal_log_ms[why] = now;
    sh->refusal_unlogged[why] = 0;
}

void ingest_get_stats(const ingest_t *in, ingest_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!in)
        return;
    const uint64_t *src = (const uint64_t *)&in->sh.stats;
    uint64_t *dst = (uint64_t *)out;
    /* Every field is a uint64_t (static_assert below). */
    for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}
_Static_assert(sizeof(ingest_stats_t) % sizeof(uint64_t) == 0, "ingest_stats_t: uint64_t only");

void ingest_note_input_refusal(ingest_shared_t *sh, const char *stream_id, const char *reason)
{
    pthread_mutex_lock(&sh->refusals_lock);
    ingest_input_refusal_t *r = &sh->refusals[sh->nrefusals % INGEST_INPUT_REFUSALS];
    r->seq = ++sh->nrefusals;
    snprintf(r->stream_id, sizeof(r->stream_id), "%s", stream_id);
    snprintf(r->reason, sizeof(r->reason), "%s", reason);
    r->wall_ms = clock_wall_ms();
    pthread_mutex_unlock(&sh->refusals_lock);
}

void ingest_input_refusals(ingest_t *in, uint64_t *seq,
                           void (*cb)(void *opaque, const ingest_input_refusal_t *r),
                           void *opaque)
{
    if (!in)
        return;
    ingest_shared_t *sh = &in->sh;
    pthread_mutex_lock(&sh->refusals_lock);
    uint64_t first = sh->nrefusals > INGEST_INPUT_REFUSALS ? sh->nrefusals - INGEST_INPUT_REFUSALS : 0;
    if (*seq > first)
        first = *seq;
    for (uint64_t i = first; i < sh->nrefusals; i++)
        cb(opaque, &sh->refusals[i % INGEST_INPUT_REFUSALS]);
    *seq = sh->nrefusals;
    pthread_mutex_unlock(&sh->refusals_lock);
}

/* The OpenSSL error queue as one log-able line (and emptied). */
static void ingest_tls_error(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    if (!e)
        snprintf(buf, len, "unknown error");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
}

/* A server context for TLS 1.2 and later with the certificate chain and key
 * of the given PEM files. Returns 0 or a negative errno (logged). */
static int ingest_tls_ctx_new(const char *cert, const char *key, SSL_CTX **out)
{
    char err[256];
    *out = NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return -ENOMEM;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        goto fail;
    /* A session is one long-lived connection: no resumption cache to keep. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        ingest_tls_error(err, sizeof(err));
        log_error("rtmps", "--tls-cert %s: %s", cert, err);
        SSL_CTX_free(ctx);
        return -EINVAL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        ingest_tls_error(err, sizeof(err));
        log_error("rtmps", "--tls-key %s: %s", key, err);
        SSL_CTX_free(ctx);
        return -EINVAL;
    }
    *out = ctx;
    return 0;
fail:
    ingest_tls_error(err, sizeof(err));
    log_error("rtmps", "TLS set-up: %s", err);
    SSL_CTX_free(ctx);
    return -EINVAL;
}

static void ingest_accept(ingest_t *in, evutil_socket_t fd, struct sockaddr *sa, int socklen,
                          bool tls)
{
    ingest_shared_t *sh = &in->sh;
    ingest_addr_t addr;
    ingest_addr_from(&addr, sa);
    char peer[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, peer, sizeof(peer));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, peer, sizeof(peer));
    /* Refusals close at once, before any byte is read or any memory kept. */
    if (__atomic_load_n(&sh->stats.connections_open, __ATOMIC_RELAXED) >=
        sh->limits.max_connections) {
        INGEST_COUNT(sh, refused_max_connections);
        ingest_log_refusal(sh, INGEST_REFUSAL_MAX_CONNECTIONS, peer,
                           "connection limit reached (--rtmp-max-connections)");
        close(fd);
        return;
    }
    if (ingest_addr_locked_out(sh, &addr, clock_mono_ms())) {
        INGEST_COUNT(sh, refused_locked_out);
        ingest_log_refusal(sh, INGEST_REFUSAL_LOCKED_OUT, peer,
                           "address locked out after repeated bad stream keys");
        close(fd);
        return;
    }
    if (rtmp_session_count_from(sh, &addr) >= sh->limits.max_connections_per_ip) {
        INGEST_COUNT(sh, refused_per_ip);
        ingest_log_refusal(sh, INGEST_REFUSAL_PER_IP, peer,
                           "too many connections from this address (--rtmp-max-connections-per-ip)");
        close(fd);
        return;
    }
    SSL *ssl = NULL;
    if (tls) {
        pthread_mutex_lock(&sh->tls_lock);
        ssl = SSL_new(sh->tls_ctx); /* holds its own reference to the context */
        pthread_mutex_unlock(&sh->tls_lock);
        if (!ssl) {
            log_error("rtmps", "could not set up a TLS connection: out of memory");
            close(fd);
            return;
        }
    }
    int ret = rtmp_session_new(sh, fd, sa, socklen, ssl);
    if (ret < 0)
        log_error("rtmp", "could not set up a connection: %s", strerror(-ret));
}

static void ingest_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                             int socklen, void *arg)
{
    (void)l;
    ingest_accept(arg, fd, sa, socklen, false);
}

static void ingest_accept_tls_cb(struct evconnlistener *l, evutil_socket_t fd,
                                 struct sockaddr *sa, int socklen, void *arg)
{
    (void)l;
    ingest_accept(arg, fd, sa, socklen, true);
}

static void ingest_accept_error_cb(struct evconnlistener *l, void *arg)
{
    (void)l;
    (void)arg;
    int err = EVUTIL_SOCKET_ERROR();
    /* EMFILE and friends: libevent keeps the listener; say why new
     * publishers cannot get in. */
    log_warn("rtmp", "accept failed: %s", evutil_socket_error_to_string(err));
}

static void ingest_reap_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rtmp_session_reap(arg);
}

/* ingest_set_limits: the loop takes the new limits; sessions and publishes
 * from now on obey them (open sessions' chunk parsers keep theirs). */
static void ingest_limits_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ingest_t *in = arg;
    pthread_mutex_lock(&in->limits_lock);
    in->sh.limits = in->limits_next;
    pthread_mutex_unlock(&in->limits_lock);
    in->sh.unpublished.limit = in->sh.limits.max_unpublished_bytes;
    log_info("rtmp", "limits reloaded");
}

void ingest_lost_push(ingest_shared_t *sh, uint64_t session_id)
{
    pthread_mutex_lock(&sh->lost_lock);
    if (sh->nlost == sh->cap_lost) {
        size_t cap = sh->cap_lost ? sh->cap_lost * 2 : 8;
        uint64_t *p = realloc(sh->lost, cap * sizeof(*p));
        if (p) {
            sh->lost = p;
            sh->cap_lost = cap;
        }
    }
    if (sh->nlost < sh->cap_lost)
        sh->lost[sh->nlost++] = session_id;
    pthread_mutex_unlock(&sh->lost_lock);
    event_active(sh->lost_ev, 0, 0);
}

/* Lease-lost notices queued by a store thread (rtmp_session.c): disconnect
 * those publishers here, on the loop that owns them. */
static void ingest_lost_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ingest_shared_t *sh = arg;
    pthread_mutex_lock(&sh->lost_lock);
    uint64_t *ids = sh->lost;
    size_t n = sh->nlost;
    sh->lost = NULL;
    sh->nlost = sh->cap_lost = 0;
    pthread_mutex_unlock(&sh->lost_lock);
    for (size_t i = 0; i < n; i++) {
        rtmp_session_lease_lost(sh, ids[i]);
        if (sh->srt)
            srt_lease_lost(sh->srt, ids[i]);
    }
    free(ids);
}

/* Publish authorisation answers queued by ingest_auth_done() on another
 * thread: hand each to its session here, on the loop that owns it. */
static void ingest_auth_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ingest_shared_t *sh = arg;
    pthread_mutex_lock(&sh->auth_lock);
    ingest_auth_answer_t *answers = sh->answers;
    size_t n = sh->nanswers;
    sh->answers = NULL;
    sh->nanswers = sh->cap_answers = 0;
    pthread_mutex_unlock(&sh->auth_lock);
    for (size_t i = 0; i < n; i++)
        if (!sh->srt || !srt_auth_answer(sh->srt, &answers[i]))
            rtmp_session_auth_answer(sh, &answers[i]);
    free(answers);
}

void ingest_auth_done(ingest_t *in, uint64_t ticket, ingest_auth_verdict_t verdict,
                      const char *stream_id)
{
    if (!in)
        return;
    ingest_auth_answer_t a = {.ticket = ticket, .verdict = verdict};
    if (stream_id) {
        /* Too long to be valid: keep it invalid rather than truncate it into
         * a valid id; the session checks it with store_id_valid. */
        if (strlen(stream_id) >= sizeof(a.stream_id))
            snprintf(a.stream_id, sizeof(a.stream_id), "%s", "!");
        else
            snprintf(a.stream_id, sizeof(a.stream_id), "%s", stream_id);
        a.has_id = true;
    }
    ingest_shared_t *sh = &in->sh;
    bool queued = false;
    pthread_mutex_lock(&sh->auth_lock);
    if (sh->nanswers == sh->cap_answers) {
        size_t cap = sh->cap_answers ? sh->cap_answers * 2 : 8;
        ingest_auth_answer_t *p = realloc(sh->answers, cap * sizeof(*p));
        if (p) {
            sh->answers = p;
            sh->cap_answers = cap;
        }
    }
    if (sh->nanswers < sh->cap_answers) {
        sh->answers[sh->nanswers++] = a;
        queued = true;
    }
    pthread_mutex_unlock(&sh->auth_lock);
    if (queued)
        event_active(sh->auth_ev, 0, 0);
    else
        log_error("rtmp", "publish authorisation answer lost: out of memory "
                          "(the publisher is refused at its auth timeout)");
}

static void ingest_stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ingest_t *in = arg;
    event_base_loopbreak(in->sh.base);
}

static void *ingest_thread_main(void *arg)
{
    ingest_t *in = arg;
    event_base_loop(in->sh.base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* Creates, binds and listens on a non-blocking socket. Returns it or -errno. */
/* Frees what ingest_open built; the thread must not be running. */
static void ingest_free(ingest_t *in)
{
    if (in->sh.base) {
        while (in->sh.sessions)
            rtmp_session_free(in->sh.sessions);
    }
    /* After the sessions: the leases they gave back go to the store first. */
    ingest_jobs_stop(&in->sh);
    if (in->listener)
        evconnlistener_free(in->listener);
    if (in->tls_listener)
        evconnlistener_free(in->tls_listener);
    SSL_CTX_free(in->sh.tls_ctx);
    pthread_mutex_destroy(&in->sh.tls_lock);
    free(in->tls_cert);
    free(in->tls_key);
    if (in->stop_ev)
        event_free(in->stop_ev);
    if (in->limits_ev)
        event_free(in->limits_ev);
    pthread_mutex_destroy(&in->limits_lock);
    if (in->sh.reap_ev)
        event_free(in->sh.reap_ev);
    if (in->sh.lost_ev)
        event_free(in->sh.lost_ev);
    free(in->sh.lost);
    if (in->sh.auth_ev)
        event_free(in->sh.auth_ev);
    free(in->sh.answers);
    pthread_mutex_destroy(&in->sh.auth_lock);
    free(in->sh.key_failures);
    pthread_mutex_destroy(&in->sh.lost_lock);
    pthread_mutex_destroy(&in->sh.refusals_lock);
    ingest_meters_deinit(&in->sh.meters);
    ingest_tmeta_deinit(&in->sh.tmeta);
    if (in->sh.base)
        event_base_free(in->sh.base);
    free(in);
}

/* The RTMPS listener: certificate first, so a bad file fails the start. */
static int ingest_open_tls(ingest_t *in, const ingest_params_t *params)
{
    if (!params->tls_cert || !params->tls_cert[0] || !params->tls_key || !params->tls_key[0]) {
        log_error("rtmps", "--rtmps-listen needs --tls-cert and --tls-key");
        return -EINVAL;
    }
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    char err[256];
    if (netaddr_parse(params->rtmps_listen, &ss, &sslen, err, sizeof(err)) < 0) {
        log_error("rtmps", "bad listen address: %s", err);
        return -EINVAL;
    }
    in->tls_cert = strdup(params->tls_cert);
    in->tls_key = strdup(params->tls_key);
    if (!in->tls_cert || !in->tls_key)
        return -ENOMEM;
    int ret = ingest_tls_ctx_new(in->tls_cert, in->tls_key, &in->sh.tls_ctx);
    if (ret < 0)
        return ret;
    int fd = netaddr_listen(&ss, sslen);
    if (fd < 0) {
        log_error("rtmps", "cannot listen on %s: %s%s", params->rtmps_listen, strerror(-fd),
                  netaddr_listen_hint(fd, &ss));
        return fd;
    }
    in->tls_port = netaddr_bound_port(fd);
    in->tls_listener = evconnlistener_new(in->sh.base, ingest_accept_tls_cb, in,
                                          LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    if (!in->tls_listener) {
        close(fd);
        return -ENOMEM;
    }
    evconnlistener_set_error_cb(in->tls_listener, ingest_accept_error_cb);
    log_info("rtmps", "listening on %s (port %d)", params->rtmps_listen, in->tls_port);
    return 0;
}

int ingest_open(const ingest_params_t *params, ingest_t **out)
{
    *out = NULL;
    if (!params || !params->rtmp_listen || !params->store)
        return -EINVAL;
    pthread_once(&ingest_evthread_once, ingest_evthread_init);
    if (ingest_evthread_ret != 0) {
        log_error("rtmp", "libevent has no pthread support");
        return -ENOSYS;
    }

    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    char err[256];
    if (netaddr_parse(params->rtmp_listen, &ss, &sslen, err, sizeof(err)) < 0) {
        log_error("rtmp", "bad listen address: %s", err);
        return -EINVAL;
    }

    int ret = -ENOMEM;
    ingest_t *in = calloc(1, sizeof(*in));
    if (!in)
        return -ENOMEM;
    in->sh.store = params->store;
    in->sh.hooks = params->hooks;
    in->sh.limits = params->limits;
    ingest_limits_fill(&in->sh.limits);
    in->sh.unpublished.limit = in->sh.limits.max_unpublished_bytes;
    in->sh.duplicate = params->duplicate;
    in->sh.drop_on_close = params->drop_on_close;
    in->sh.key_failures = calloc(INGEST_KEY_FAILURES_MAX, sizeof(*in->sh.key_failures));
    pthread_mutex_init(&in->sh.lost_lock, NULL);
    pthread_mutex_init(&in->limits_lock, NULL);
    pthread_mutex_init(&in->sh.auth_lock, NULL);
    pthread_mutex_init(&in->sh.tls_lock, NULL);
    pthread_mutex_init(&in->sh.refusals_lock, NULL);
    ingest_meters_init(&in->sh.meters);
    ingest_tmeta_init(&in->sh.tmeta);
    in->tls_port = -1;
    snprintf(in->listen, sizeof(in->listen), "%s", params->rtmp_listen);

    in->sh.base = event_base_new();
    if (!in->sh.base || !in->sh.key_failures)
        goto fail;
    in->sh.reap_ev = event_new(in->sh.base, -1, 0, ingest_reap_cb, &in->sh);
    in->stop_ev = event_new(in->sh.base, -1, 0, ingest_stop_cb, in);
    in->limits_ev = event_new(in->sh.base, -1, 0, ingest_limits_cb, in);
    in->sh.lost_ev = event_new(in->sh.base, -1, 0, ingest_lost_cb, &in->sh);
    in->sh.auth_ev = event_new(in->sh.base, -1, 0, ingest_auth_cb, &in->sh);
    if (!in->sh.reap_ev || !in->stop_ev || !in->sh.lost_ev || !in->sh.auth_ev || !in->limits_ev)
        goto fail;

    int fd = netaddr_listen(&ss, sslen);
    if (fd < 0) {
        ret = fd;
        log_error("rtmp", "cannot listen on %s: %s%s", in->listen, strerror(-ret),
                  netaddr_listen_hint(ret, &ss));
        goto fail;
    }
    in->port = netaddr_bound_port(fd);
    in->listener = evconnlistener_new(in->sh.base, ingest_accept_cb, in,
                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    if (!in->listener) {
        close(fd);
        goto fail;
    }
    evconnlistener_set_error_cb(in->listener, ingest_accept_error_cb);

    if (params->rtmps_listen && params->rtmps_listen[0]) {
        ret = ingest_open_tls(in, params);
        if (ret < 0)
            goto fail;
    }

    ret = ingest_jobs_start(&in->sh);
    if (ret < 0)
        goto fail;

    ret = pthread_create(&in->thread, NULL, ingest_thread_main, in);
    if (ret != 0) {
        ret = -ret;
        goto fail;
    }
    pthread_setname_np(in->thread, "ingest");
    log_info("rtmp", "listening on %s (port %d)", in->listen, in->port);
    /* SRT last: its threads call into the running loop; closed first. */
    if (params->srt_listen && params->srt_listen[0] && strcmp(params->srt_listen, "off") != 0) {
        srt_listener_params_t sp = {.listen = params->srt_listen,
                                    .passphrase = params->srt_passphrase,
                                    .latency_ms = params->srt_latency_ms ? params->srt_latency_ms
                                                                         : 120};
        ret = srt_listener_open(&in->sh, &sp, &in->sh.srt);
        if (ret == -EADDRINUSE && params->srt_listen_optional) {
            log_warn("srt", "SRT ingest is off: its default address %s is taken by another "
                     "program; set --srt-listen HOST:PORT (or off)", params->srt_listen);
            ret = 0;
        }
        if (ret < 0) {
            ingest_close(in);
            return ret;
        }
    }
    *out = in;
    return 0;

fail:
    ingest_free(in);
    return ret;
}

int ingest_port(const ingest_t *in)
{
    return in ? in->port : -1;
}

int ingest_tls_port(const ingest_t *in)
{
    return in ? in->tls_port : -1;
}

int ingest_srt_port(const ingest_t *in)
{
    return in && in->sh.srt ? srt_listener_port(in->sh.srt) : -1;
}

int ingest_reload_tls(ingest_t *in)
{
    if (!in || !in->sh.tls_ctx)
        return 0;
    SSL_CTX *ctx = NULL;
    int ret = ingest_tls_ctx_new(in->tls_cert, in->tls_key, &ctx);
    if (ret < 0) {
        log_error("rtmps", "certificate reload failed; the previous certificate stays in use");
        return ret;
    }
    pthread_mutex_lock(&in->sh.tls_lock);
    SSL_CTX *old = in->sh.tls_ctx;
    in->sh.tls_ctx = ctx;
    pthread_mutex_unlock(&in->sh.tls_lock);
    SSL_CTX_free(old); /* open sessions' SSLs keep it alive as long as they need */
    log_info("rtmps", "certificate reloaded from %s", in->tls_cert);
    return 0;
}

int ingest_metadata_push(ingest_t *in, const char *stream_id, const uint8_t *payload,
                         size_t len, ingest_clock_cb_t clock_cb, void *opaque,
                         ingest_metadata_stamp_t *out)
{
    if (!in || !stream_id) {
        memset(out, 0, sizeof(*out));
        return -ENOENT;
    }
    return ingest_tmeta_push(&in->sh.tmeta, stream_id, 0, 0, payload, len, clock_cb, opaque,
                             clock_mono_ms(), clock_wall_ms(), out);
}

int ingest_stream_stats(ingest_t *in, const char *stream_id, ingest_stream_stats_t *out)
{
    if (!in || !stream_id)
        return -ENOENT;
    return ingest_meters_get(&in->sh.meters, stream_id, out, clock_mono_ms());
}

int ingest_list_streams(ingest_t *in, ingest_stream_stats_t **out, size_t *n)
{
    if (!in) {
        *out = NULL;
        *n = 0;
        return 0;
    }
    return ingest_meters_list(&in->sh.meters, out, n, clock_mono_ms());
}

int ingest_set_limits(ingest_t *in, const ingest_limits_t *limits)
{
    if (!in)
        return 0;
    ingest_limits_t lim = *limits;
    ingest_limits_fill(&lim);
    pthread_mutex_lock(&in->limits_lock);
    in->limits_next = lim;
    pthread_mutex_unlock(&in->limits_lock);
    event_active(in->limits_ev, 0, 0);
    return 0;
}

void ingest_close(ingest_t *in)
{
    if (!in)
        return;
    /* SRT first, while the loop runs: its publishers end their publishes
     * through the loop. */
    srt_listener_close(in->sh.srt);
    in->sh.srt = NULL;
    /* An activated event survives until the loop runs it, even when the
     * thread has not entered the loop yet (a loopbreak would be lost). */
    event_active(in->stop_ev, EV_READ, 0);
    pthread_join(in->thread, NULL);
    /* The loop has stopped: sessions are ours to end (each live stream
     * gets its EOS in rtmp_session_free). */
    char listen[sizeof(in->listen)];
    memcpy(listen, in->listen, sizeof(listen));
    ingest_stats_t st;
    ingest_get_stats(in, &st);
    ingest_free(in);
    log_info("rtmp",
             "listener on %s closed; totals: %llu connections, refused %llu (limit) %llu (per "
             "address) %llu (locked out) %llu (publishers), %llu bad keys, %llu lockouts, "
             "timeouts %llu (handshake) %llu (idle) %llu (read) %llu (stalled), %llu limit "
             "violations, %llu "
             "protocol errors, throttled %llu times, %llu packets dropped, %llu publishes "
             "refused for a slow store, %llu for too many waiting authorisations, %llu "
             "ended for input over the limits",
             listen, (unsigned long long)st.connections_accepted,
             (unsigned long long)st.refused_max_connections, (unsigned long long)st.refused_per_ip,
             (unsigned long long)st.refused_locked_out,
             (unsigned long long)st.refused_max_publishers, (unsigned long long)st.bad_keys,
             (unsigned long long)st.lockouts, (unsigned long long)st.handshake_timeouts,
             (unsigned long long)st.idle_timeouts, (unsigned long long)st.read_timeouts,
             (unsigned long long)st.stalled_publishers,
             (unsigned long long)st.limit_violations, (unsigned long long)st.protocol_errors,
             (unsigned long long)st.throttled, (unsigned long long)st.dropped_packets,
             (unsigned long long)st.store_timeouts, (unsigned long long)st.refused_auth_busy,
             (unsigned long long)st.refused_input);
}
