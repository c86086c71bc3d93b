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
 * lost_lock and activates lost_ev; the loop does the rest.
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

#include "clock.h"
#include "ingest.h"
#include "ingest_internal.h"
#include "log.h"
#include "netaddr.h"

struct ingest {
    ingest_shared_t sh;
    struct evconnlistener *listener;
    struct event *stop_ev;
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
    lim->queue_bytes = 32u << 20;
    lim->max_connections = 1000;
    lim->max_connections_per_ip = 32;
    lim->max_publishers = 100;
    lim->max_key_failures = 10;
    lim->key_lockout_s = 300;
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
    if (!lim->handshake_timeout_ms)
        lim->handshake_timeout_ms = d.handshake_timeout_ms;
    if (!lim->queue_bytes)
        lim->queue_bytes = d.queue_bytes;
    if (!lim->idle_timeout_ms)
        lim->idle_timeout_ms = d.idle_timeout_ms;
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
}

/* Addresses remembered for bad keys. Past this the stalest entry is reused:
 * an attacker with many addresses can only make us forget, never grow. */
#define INGEST_KEY_FAILURES_MAX 4096
#define INGEST_KEY_WINDOW_MS 60000
#define INGEST_REFUSAL_LOG_MS 10000

void ingest_addr_from(ingest_addr_t *a, const struct sockaddr *sa)
{
    memset(a, 0, sizeof(*a));
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
        a->b[10] = a->b[11] = 0xff;
        memcpy(a->b + 12, &in4->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        memcpy(a->b, &in6->sin6_addr, 16);
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

static void ingest_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                             int socklen, void *arg)
{
    (void)l;
    ingest_t *in = arg;
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
    int ret = rtmp_session_new(sh, fd, sa, socklen);
    if (ret < 0)
        log_error("rtmp", "could not set up a connection: %s", strerror(-ret));
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
    for (size_t i = 0; i < n; i++)
        rtmp_session_lease_lost(sh, ids[i]);
    free(ids);
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
static int ingest_bind(const struct sockaddr_storage *ss, socklen_t len)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    int ret = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, 128) != 0) {
        ret = -errno;
        close(fd);
        return ret;
    }
    return fd;
}

/* Frees what ingest_open built; the thread must not be running. */
static void ingest_free(ingest_t *in)
{
    if (in->sh.base) {
        while (in->sh.sessions)
            rtmp_session_free(in->sh.sessions);
    }
    if (in->listener)
        evconnlistener_free(in->listener);
    if (in->stop_ev)
        event_free(in->stop_ev);
    if (in->sh.reap_ev)
        event_free(in->sh.reap_ev);
    if (in->sh.lost_ev)
        event_free(in->sh.lost_ev);
    free(in->sh.lost);
    free(in->sh.key_failures);
    pthread_mutex_destroy(&in->sh.lost_lock);
    if (in->sh.base)
        event_base_free(in->sh.base);
    free(in);
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
    in->sh.duplicate = params->duplicate;
    in->sh.key_failures = calloc(INGEST_KEY_FAILURES_MAX, sizeof(*in->sh.key_failures));
    pthread_mutex_init(&in->sh.lost_lock, NULL);
    snprintf(in->listen, sizeof(in->listen), "%s", params->rtmp_listen);

    in->sh.base = event_base_new();
    if (!in->sh.base || !in->sh.key_failures)
        goto fail;
    in->sh.reap_ev = event_new(in->sh.base, -1, 0, ingest_reap_cb, &in->sh);
    in->stop_ev = event_new(in->sh.base, -1, 0, ingest_stop_cb, in);
    in->sh.lost_ev = event_new(in->sh.base, -1, 0, ingest_lost_cb, &in->sh);
    if (!in->sh.reap_ev || !in->stop_ev || !in->sh.lost_ev)
        goto fail;

    int fd = ingest_bind(&ss, sslen);
    if (fd < 0) {
        ret = fd;
        log_error("rtmp", "cannot listen on %s: %s", in->listen, strerror(-ret));
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

    ret = pthread_create(&in->thread, NULL, ingest_thread_main, in);
    if (ret != 0) {
        ret = -ret;
        goto fail;
    }
    pthread_setname_np(in->thread, "ingest");
    log_info("rtmp", "listening on %s (port %d)", in->listen, in->port);
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

void ingest_close(ingest_t *in)
{
    if (!in)
        return;
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
             "timeouts %llu (handshake) %llu (idle) %llu (read), %llu limit violations, %llu "
             "protocol errors, throttled %llu times, %llu packets dropped",
             listen, (unsigned long long)st.connections_accepted,
             (unsigned long long)st.refused_max_connections, (unsigned long long)st.refused_per_ip,
             (unsigned long long)st.refused_locked_out,
             (unsigned long long)st.refused_max_publishers, (unsigned long long)st.bad_keys,
             (unsigned long long)st.lockouts, (unsigned long long)st.handshake_timeouts,
             (unsigned long long)st.idle_timeouts, (unsigned long long)st.read_timeouts,
             (unsigned long long)st.limit_violations, (unsigned long long)st.protocol_errors,
             (unsigned long long)st.throttled, (unsigned long long)st.dropped_packets);
}
