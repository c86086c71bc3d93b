/*
 * SRT ingest: a listener on --srt-listen whose publishers send MPEG-TS,
 * demuxed with libavformat (a custom AVIOContext over srt_recvmsg) into the
 * same media packets RTMP produces: H.264 (HEVC) as AVCC with an avcC (hvcC)
 * built from the in-band parameter sets by common/codec_config.c, AAC as raw frames with an
 * AudioSpecificConfig (from the ADTS headers), milliseconds from near
 * zero. Everything after the stream's queue is the RTMP path's.
 *
 * The stream key is checked in libsrt's listen callback, before libsrt
 * accepts the caller (fail closed): the stream id's grammar
 * (srt_streamid.c), the address lockout after bad keys, the connection
 * limits, then the key registry (store_stream_auth_hash), asked on the
 * "srt-auth" thread and waited for SRT_AUTH_WAIT_MS at most, so that a slow
 * Redis cannot hold libsrt's receiver thread (a lookup that does not answer
 * in time refuses with 1503, as RTMP refuses with "store unavailable").
 * Refusals carry an SRT_REJX_* code (1400 no or malformed stream id, 1401
 * unknown key, 1403 locked out, 1405 m=request, 1402 over a limit, 1503 the
 * store did not answer). With a publish authoriser (publish_auth_cb, the
 * webhook) the answer cannot come inside the callback: a key the registry
 * does not know is accepted at the SRT level, then asked about before any
 * stream is created, and the connection is closed on a refusal.
 *
 * Threads: the "srt-listen" thread accepts; each publisher has a thread
 * ("srt:N") that reads, demuxes and pushes, so one publisher's slow or
 * hostile stream never holds another's; "srt-auth" does the registry
 * lookups. Every part of a publish that RTMP does on the ingest loop (the
 * duplicate policy against RTMP and SRT publishers, publish_start/live/
 * end_cb, the meter's start and end, timed metadata's, the bad-key lockout)
 * runs on the loop through srt_loop_call, which the calling thread waits
 * for. The stream's lease is taken and given back on the publisher thread.
 *
 * Ownership: the listener owns its conns (l->conns under l->lock); a conn
 * owns its SRT socket, its thread, its demuxer and one reference to its
 * stream's queue while it publishes (c->queue under c->qlock: the loop may
 * end a publish while the thread pushes). The stream key lives only on the
 * listen callback's stack and is never logged; only its SHA-256 goes on.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/error.h>
#include <openssl/sha.h>
#include <srt/access_control.h>
#include <srt/srt.h>

#include "clock.h"
#include "codec_config.h"
#include "ingest_internal.h"
#include "log.h"
#include "netaddr.h"
#include "srt_internal.h"
#include "srt_streamid_internal.h"

/* How long the listen callback waits for the key registry. */
#define SRT_AUTH_WAIT_MS 300
/* Registry lookups waiting at once; past it callers are refused (1402). */
#define SRT_AUTH_PENDING_MAX 64
/* How often a blocked read wakes up to look at the stop flag and stalls. */
#define SRT_READ_WAKE_MS 250
/* The demuxer's read buffer; SRT live messages are at most 1456 bytes. */
#define SRT_IO_BUF 16384
#define SRT_MSG_MAX 1500
/* The largest access unit taken from the demuxer. */
#define SRT_AU_MAX (8u << 20)
#define SRT_AVCC_MAX 4096
/* Refusal log lines: at most one per reason per this long. */
#define SRT_REFUSAL_LOG_MS 10000

typedef struct srt_conn srt_conn_t;

/* A registry lookup for the listen callback (two owners: the waiting
 * callback and the srt-auth thread; freed by the last, under auth_lock). */
typedef struct srt_lookup {
    struct srt_lookup *next;
    uint8_t hash[32];
    int rc;
    char id[STORE_ID_MAX];
    bool done;
    int refs;
} srt_lookup_t;

/* What the listen callback decided about a socket, for its accept. */
typedef struct srt_pending {
    SRTSOCKET sock;
    uint8_t hash[32];
    bool known; /* the registry knows the key... */
    char id[STORE_ID_MAX]; /* ...as this stream */
    int64_t created_ms;
} srt_pending_t;

struct srt_conn {
    srt_listener_t *l;
    srt_conn_t *next;
    SRTSOCKET sock;
    uint64_t id; /* session id, unique across RTMP and SRT (lease-lost notices) */
    char peer[INET6_ADDRSTRLEN + 10];
    char host[INET6_ADDRSTRLEN];
    ingest_addr_t addr;
    char ctx[160];
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;  /* set by close, a takeover, a lost lease */
    atomic_bool done;  /* the thread has finished: joinable */
    uint8_t hash[32];
    bool known;
    char registry_id[STORE_ID_MAX];

    /* authorisation (l->lock) */
    bool authorizing, auth_done;
    uint64_t auth_ticket;
    ingest_auth_answer_t answer;

    /* publishing: set and cleared on the loop; queue also under qlock */
    pthread_mutex_t qlock;
    media_queue_t *queue;
    bool publishing;
    char stream_id[STORE_ID_MAX];
    ingest_meter_t meter;
    size_t tmeta_hint;
    store_lease_t *lease;
    int64_t publish_ms;
    char refusal[160];

    /* the publisher thread's own */
    int64_t last_media_ms;
    int64_t last_stats_ms;
    uint8_t msg[SRT_MSG_MAX];
    size_t msg_len, msg_pos;
    const char *end_why; /* why reading ended */
    uint64_t bytes_in, media_bytes, video_packets, audio_packets, dropped;
    int64_t drop_log_ms;
    int video_index, audio_index;
    media_codec_t video_codec; /* H.264 or HEVC, from the first video stream taken */
    bool fps_started; /* --max-input-fps: the current window's start and frames */
    int64_t fps_start_ts;
    uint32_t fps_frames;
    bool base_set;
    int64_t base_ms;
    uint8_t *au;
    size_t au_cap;
    uint8_t avcc[SRT_AVCC_MAX];
    size_t avcc_len;
    uint8_t asc[2];
    bool have_asc;
    int64_t audio_next_ms; /* where the next audio PES starts, when it has no PTS */
    bool audio_next_set;
    media_codec_t audio_codec;       /* AAC, or MPA / AC3 / OPUS (encoded to AAC downstream) */
    AVCodecParserContext *opus_parser; /* MPA / AC3 / OPUS: frames out of a PES */
    AVCodecContext *opus_ctx;
    bool warned_codec[8];
};

struct srt_listener {
    ingest_shared_t *sh;
    ingest_limits_t limits; /* a copy: the loop's may change on SIGHUP */
    SRTSOCKET lsock;
    int eid;
    int port;
    char listen[128];
    int latency_ms;
    bool encrypted;
    pthread_t thread, auth_thread;
    bool thread_started, auth_started;
    atomic_bool stop;
    atomic_int in_callback; /* listen callbacks running (close waits for 0) */

    pthread_mutex_t lock; /* conns, pending, auth state of conns */
    pthread_cond_t cond;  /* authorisation answers */
    srt_conn_t *conns;
    srt_pending_t *pending;
    size_t npending, cap_pending;

    pthread_mutex_t auth_lock; /* the lookups */
    pthread_cond_t auth_cond;
    srt_lookup_t *lookups;
    size_t nlookups;
    bool auth_stop;

    pthread_mutex_t log_lock;
    int64_t refusal_log_ms[8];
    uint64_t refusal_unlogged[8];
};

/* ---- running a function on the ingest loop ----------------------------- */

typedef struct srt_call {
    void (*fn)(void *arg);
    void *arg;
    pthread_mutex_t m;
    pthread_cond_t c;
    bool done;
} srt_call_t;

static void srt_call_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    srt_call_t *call = arg;
    call->fn(call->arg);
    pthread_mutex_lock(&call->m);
    call->done = true;
    pthread_cond_signal(&call->c);
    pthread_mutex_unlock(&call->m);
}

/* Runs fn(arg) on the ingest loop and waits for it. The loop runs as long
 * as the listener is open (ingest_close closes SRT first). */
static int srt_loop_call(srt_listener_t *l, void (*fn)(void *), void *arg)
{
    srt_call_t call = {.fn = fn, .arg = arg};
    pthread_mutex_init(&call.m, NULL);
    pthread_cond_init(&call.c, NULL);
    struct timeval now = {0, 0};
    int ret = event_base_once(l->sh->base, -1, EV_TIMEOUT, srt_call_cb, &call, &now);
    if (ret == 0) {
        pthread_mutex_lock(&call.m);
        while (!call.done)
            pthread_cond_wait(&call.c, &call.m);
        pthread_mutex_unlock(&call.m);
    }
    pthread_mutex_destroy(&call.m);
    pthread_cond_destroy(&call.c);
    return ret == 0 ? 0 : -ENOMEM;
}

/* ---- refusals ----------------------------------------------------------- */

enum {
    SRT_LOG_LIMIT = 0,
    SRT_LOG_LOCKED,
    SRT_LOG_STORE,
    SRT_LOG_NO_ID,   /* no stream id, or an HSv4 caller */
    SRT_LOG_MODE,    /* m=request and other modes */
    SRT_LOG_BAD_ID,  /* malformed, too long */
};

/* One line per reason per SRT_REFUSAL_LOG_MS, with the count held back. */
static void srt_log_refusal(srt_listener_t *l, int why, const char *peer, const char *detail)
{
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&l->log_lock);
    bool skip = l->refusal_log_ms[why] && now - l->refusal_log_ms[why] < SRT_REFUSAL_LOG_MS;
    uint64_t held = l->refusal_unlogged[why];
    if (skip) {
        l->refusal_unlogged[why]++;
    } else {
        l->refusal_log_ms[why] = now;
        l->refusal_unlogged[why] = 0;
    }
    pthread_mutex_unlock(&l->log_lock);
    if (skip)
        return;
    if (held)
        log_warn("srt", "refused %s before accept: %s (and %llu more since the last such line)",
                 peer, detail, (unsigned long long)held);
    else
        log_warn("srt", "refused %s before accept: %s", peer, detail);
}

/* The lockout bookkeeping is the loop's (ingest.c): asked through it. */
typedef struct srt_key_call {
    ingest_shared_t *sh;
    ingest_addr_t addr;
    bool count; /* count a bad key; else only look */
    bool result;
} srt_key_call_t;

static void srt_key_call_fn(void *arg)
{
    srt_key_call_t *k = arg;
    int64_t now = clock_mono_ms();
    if (k->count)
        k->result = ingest_key_failed(k->sh, &k->addr, now);
    else
        k->result = ingest_addr_locked_out(k->sh, &k->addr, now);
}

static bool srt_locked_out(srt_listener_t *l, const ingest_addr_t *a)
{
    srt_key_call_t k = {.sh = l->sh, .addr = *a, .count = false};
    if (srt_loop_call(l, srt_key_call_fn, &k) < 0)
        return true; /* fail closed */
    return k.result;
}

/* Counts a bad key from a; true when that locks the address out. */
static bool srt_key_failed(srt_listener_t *l, const ingest_addr_t *a)
{
    srt_key_call_t k = {.sh = l->sh, .addr = *a, .count = true};
    if (srt_loop_call(l, srt_key_call_fn, &k) < 0)
        return false;
    return k.result;
}

/* ---- the registry lookup thread ----------------------------------------- */

static void srt_lookup_unref(srt_listener_t *l, srt_lookup_t *q)
{
    /* under auth_lock */
    (void)l;
    if (--q->refs == 0)
        free(q);
}

static void *srt_auth_main(void *arg)
{
    srt_listener_t *l = arg;
    pthread_mutex_lock(&l->auth_lock);
    for (;;) {
        while (!l->lookups && !l->auth_stop)
            pthread_cond_wait(&l->auth_cond, &l->auth_lock);
        if (!l->lookups)
            break;
        srt_lookup_t *q = l->lookups;
        l->lookups = q->next;
        l->nlookups--;
        bool abandoned = q->refs == 1; /* the callback gave up on it */
        pthread_mutex_unlock(&l->auth_lock);
        int rc = -ECANCELED;
        char id[STORE_ID_MAX] = "";
        if (!abandoned)
            rc = store_stream_auth_hash(l->sh->store, q->hash, id);
        pthread_mutex_lock(&l->auth_lock);
        q->rc = rc;
        memcpy(q->id, id, sizeof(id));
        q->done = true;
        pthread_cond_broadcast(&l->auth_cond);
        srt_lookup_unref(l, q);
    }
    pthread_mutex_unlock(&l->auth_lock);
    return NULL;
}

/* The registry's answer for hash within SRT_AUTH_WAIT_MS: 0 (id filled),
 * -ENOENT, -ETIMEDOUT, -EBUSY (too many waiting), another negative errno. */
static int srt_lookup(srt_listener_t *l, const uint8_t hash[32], char id[STORE_ID_MAX])
{
    srt_lookup_t *q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    memcpy(q->hash, hash, 32);
    q->refs = 2;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)SRT_AUTH_WAIT_MS * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&l->auth_lock);
    if (l->nlookups >= SRT_AUTH_PENDING_MAX || l->auth_stop) {
        pthread_mutex_unlock(&l->auth_lock);
        free(q);
        return -EBUSY;
    }
    srt_lookup_t **tail = &l->lookups;
    while (*tail)
        tail = &(*tail)->next;
    *tail = q;
    l->nlookups++;
    pthread_cond_broadcast(&l->auth_cond);
    int ret = 0;
    while (!q->done && ret == 0)
        ret = pthread_cond_timedwait(&l->auth_cond, &l->auth_lock, &until);
    int rc = q->done ? q->rc : -ETIMEDOUT;
    if (q->done && rc == 0)
        memcpy(id, q->id, STORE_ID_MAX);
    srt_lookup_unref(l, q);
    pthread_mutex_unlock(&l->auth_lock);
    return rc;
}

/* ---- the listen callback (libsrt's receiver thread) ----------------------- */

static void srt_format_addr(const struct sockaddr *sa, char *host, size_t hlen, char *peer,
                            size_t plen)
{
    host[0] = '\0';
    int port = 0;
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, host, (socklen_t)hlen);
        port = ntohs(a->sin_port);
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, host, (socklen_t)hlen);
        port = ntohs(a->sin6_port);
    }
    if (!host[0])
        snprintf(host, hlen, "?");
    snprintf(peer, plen, "%s:%d", host, port);
}

/* Open connections (and ones accepted but not yet taken) from a; l->lock. */
static size_t srt_count_from(srt_listener_t *l, const ingest_addr_t *a, size_t *total)
{
    size_t n = 0, all = 0;
    for (srt_conn_t *c = l->conns; c; c = c->next) {
        if (atomic_load(&c->done))
            continue;
        all++;
        if (memcmp(&c->addr, a, sizeof(*a)) == 0)
            n++;
    }
    all += l->npending;
    *total = all;
    return n;
}

static int srt_refuse(SRTSOCKET ns, int code)
{
    srt_setrejectreason(ns, code);
    return -1;
}

static int srt_listen_check(srt_listener_t *l, SRTSOCKET ns, int hsversion,
                            const struct sockaddr *peer, const char *streamid);

/* libsrt's listen callback: counted, so that close never frees the
 * listener under one that is running. */
static int srt_listen_cb(void *opaque, SRTSOCKET ns, int hsversion, const struct sockaddr *peer,
                         const char *streamid)
{
    srt_listener_t *l = opaque;
    atomic_fetch_add(&l->in_callback, 1);
    int ret = srt_listen_check(l, ns, hsversion, peer, streamid);
    atomic_fetch_sub(&l->in_callback, 1);
    return ret;
}

static int srt_listen_check(srt_listener_t *l, SRTSOCKET ns, int hsversion,
                            const struct sockaddr *peer, const char *streamid)
{
    ingest_shared_t *sh = l->sh;
    char host[INET6_ADDRSTRLEN], who[INET6_ADDRSTRLEN + 10];
    srt_format_addr(peer, host, sizeof(host), who, sizeof(who));
    if (atomic_load(&l->stop))
        return srt_refuse(ns, SRT_REJX_DOWN);
    if (hsversion < 5) {
        srt_log_refusal(l, SRT_LOG_NO_ID, who, "SRT version 4 caller (no stream id)");
        return srt_refuse(ns, SRT_REJX_VERSION);
    }
    ingest_addr_t addr;
    ingest_addr_from(&addr, peer);

    if (srt_locked_out(l, &addr)) {
        INGEST_COUNT(sh, refused_locked_out);
        srt_log_refusal(l, SRT_LOG_LOCKED, who, "address locked out after bad stream keys");
        return srt_refuse(ns, SRT_REJX_FORBIDDEN);
    }
    size_t total = 0;
    pthread_mutex_lock(&l->lock);
    size_t from = srt_count_from(l, &addr, &total);
    pthread_mutex_unlock(&l->lock);
    if (total >= l->limits.max_connections) {
        INGEST_COUNT(sh, refused_max_connections);
        srt_log_refusal(l, SRT_LOG_LIMIT, who, "connection limit reached (--rtmp-max-connections)");
        return srt_refuse(ns, SRT_REJX_OVERLOAD);
    }
    if (from >= l->limits.max_connections_per_ip) {
        INGEST_COUNT(sh, refused_per_ip);
        srt_log_refusal(l, SRT_LOG_LIMIT, who,
                        "too many connections from this address (--rtmp-max-connections-per-ip)");
        return srt_refuse(ns, SRT_REJX_OVERLOAD);
    }

    char key[SRT_STREAMID_KEY_MAX + 1];
    const char *why = NULL;
    int ret = srt_streamid_parse(streamid, streamid ? strlen(streamid) : 0, key, sizeof(key),
                                 &why);
    if (ret < 0) {
        char detail[96];
        snprintf(detail, sizeof(detail), "%s", why);
        srt_log_refusal(l, ret == -ENOENT ? SRT_LOG_NO_ID
                           : ret == -EPERM ? SRT_LOG_MODE
                                           : SRT_LOG_BAD_ID,
                        who, detail);
        if (ret == -EPROTO || ret == -EMSGSIZE) /* garbage counts like a bad key */
            (void)srt_key_failed(l, &addr);
        return srt_refuse(ns, ret == -EPERM ? SRT_REJX_BAD_MODE : SRT_REJX_BAD_REQUEST);
    }
    uint8_t hash[SHA256_DIGEST_LENGTH];
    SHA256((const uint8_t *)key, strlen(key), hash);
    explicit_bzero(key, sizeof(key));

    char id[STORE_ID_MAX] = "";
    ret = srt_lookup(l, hash, id);
    bool ask = sh->hooks.publish_auth_cb != NULL;
    if (ret == -ENOENT && !ask) {
        bool locked = srt_key_failed(l, &addr);
        /* Not rate limited: RTMP logs each bad key too, and the lockout
         * bounds them per address. */
        if (locked)
            log_warn("srt", "refused %s before accept: unknown stream key; %u bad keys within a "
                            "minute, address locked out for %u s",
                     who, l->limits.max_key_failures, l->limits.key_lockout_s);
        else
            log_warn("srt", "refused %s before accept: unknown stream key", who);
        return srt_refuse(ns, SRT_REJX_UNAUTHORIZED);
    }
    if (ret < 0 && ret != -ENOENT) {
        INGEST_COUNT(sh, store_timeouts);
        char detail[128];
        snprintf(detail, sizeof(detail), "stream registry unavailable (%s)", strerror(-ret));
        srt_log_refusal(l, SRT_LOG_STORE, who, detail);
        return srt_refuse(ns, ret == -EBUSY ? SRT_REJX_OVERLOAD : SRT_REJX_DOWN);
    }
    /* Over the publisher limit: refused before accept too (the local
     * duplicate policy may still free a slot; the loop checks again). */
    if (__atomic_load_n(&sh->stats.publishers_live, __ATOMIC_RELAXED) >=
        (uint64_t)l->limits.max_publishers) {
        INGEST_COUNT(sh, refused_max_publishers);
        srt_log_refusal(l, SRT_LOG_LIMIT, who, "publisher limit reached (--rtmp-max-publishers)");
        return srt_refuse(ns, SRT_REJX_OVERLOAD);
    }

    pthread_mutex_lock(&l->lock);
    if (l->npending == l->cap_pending) {
        size_t cap = l->cap_pending ? l->cap_pending * 2 : 8;
        srt_pending_t *p = realloc(l->pending, cap * sizeof(*p));
        if (!p) {
            pthread_mutex_unlock(&l->lock);
            return srt_refuse(ns, SRT_REJX_ISE);
        }
        l->pending = p;
        l->cap_pending = cap;
    }
    srt_pending_t *p = &l->pending[l->npending++];
    memset(p, 0, sizeof(*p));
    p->sock = ns;
    memcpy(p->hash, hash, sizeof(hash));
    p->known = ret == 0;
    snprintf(p->id, sizeof(p->id), "%s", p->known ? id : "");
    p->created_ms = clock_mono_ms();
    pthread_mutex_unlock(&l->lock);
    log_debug("srt", "%s passed the key check (%s)", who,
              ret == 0 ? "registry" : "unknown key: the authoriser decides");
    return 0;
}

/* ---- publishing (on the loop) ------------------------------------------- */

static void srt_conn_update_ctx(srt_conn_t *c)
{
    if (c->stream_id[0])
        snprintf(c->ctx, sizeof(c->ctx), "srt#%" PRIu64 " %s %s", c->id, c->peer, c->stream_id);
    else
        snprintf(c->ctx, sizeof(c->ctx), "srt#%" PRIu64 " %s", c->id, c->peer);
}

/* Ends c's publish; loop thread. dropped: see ingest_hooks_t. */
static void srt_conn_end_publish(srt_conn_t *c, const char *why, bool dropped)
{
    ingest_shared_t *sh = c->l->sh;
    if (!c->publishing)
        return;
    c->publishing = false;
    pthread_mutex_lock(&c->qlock);
    media_queue_t *q = c->queue;
    c->queue = NULL;
    ingest_meter_end(&sh->meters, &c->meter);
    pthread_mutex_unlock(&c->qlock);
    ingest_tmeta_end(&sh->tmeta, c->id);
    media_packet_t *eos = media_packet_new(MEDIA_PACKET_EOS, 0);
    if (eos)
        eos->dropped = dropped;
    if (!eos || media_queue_push(q, eos) < 0)
        log_error(c->ctx, "could not queue end-of-stream");
    media_queue_unref(q);
    INGEST_GAUGE_SUB(sh, publishers_live);
    if (sh->hooks.publish_end_cb)
        sh->hooks.publish_end_cb(sh->hooks.opaque, c->stream_id, dropped,
                                 c->refusal[0] ? c->refusal : NULL);
    double secs = (double)(clock_mono_ms() - c->publish_ms) / 1000.0;
    log_info(c->ctx,
             "publish ended (%s%s): %.1f s, %" PRIu64 " bytes received, %" PRIu64
             " media bytes, %" PRIu64 " video and %" PRIu64 " audio packets, %" PRIu64 " dropped",
             why, dropped ? "; the stream waits for it to come back" : "", secs, c->bytes_in,
             c->media_bytes, c->video_packets, c->audio_packets, c->dropped);
}

static srt_conn_t *srt_find_publisher(srt_listener_t *l, const char *stream_id,
                                      const srt_conn_t *except)
{
    for (srt_conn_t *c = l->conns; c; c = c->next)
        if (c != except && c->publishing && strcmp(c->stream_id, stream_id) == 0)
            return c;
    return NULL;
}

bool srt_has_publisher(srt_listener_t *l, const char *stream_id)
{
    pthread_mutex_lock(&l->lock);
    bool has = srt_find_publisher(l, stream_id, NULL) != NULL;
    pthread_mutex_unlock(&l->lock);
    return has;
}

size_t srt_count_publishers(srt_listener_t *l)
{
    size_t n = 0;
    pthread_mutex_lock(&l->lock);
    for (srt_conn_t *c = l->conns; c; c = c->next)
        n += c->publishing;
    pthread_mutex_unlock(&l->lock);
    return n;
}

void srt_end_publisher(srt_listener_t *l, const char *stream_id, const char *why)
{
    pthread_mutex_lock(&l->lock);
    srt_conn_t *c = srt_find_publisher(l, stream_id, NULL);
    pthread_mutex_unlock(&l->lock);
    if (!c)
        return;
    log_info(c->ctx, "%s; disconnecting this SRT publisher", why);
    atomic_store(&c->stop, true);
    srt_conn_end_publish(c, why, true);
}

void srt_lease_lost(srt_listener_t *l, uint64_t session_id)
{
    pthread_mutex_lock(&l->lock);
    srt_conn_t *c = l->conns;
    while (c && c->id != session_id)
        c = c->next;
    pthread_mutex_unlock(&l->lock);
    if (!c)
        return;
    atomic_store(&c->stop, true);
    if (c->publishing) {
        log_info(c->ctx, "stream %s was taken over by a publisher on another node; "
                         "disconnecting this one", c->stream_id);
        srt_conn_end_publish(c, "taken over by another node", false);
    }
}

bool srt_auth_answer(srt_listener_t *l, const ingest_auth_answer_t *a)
{
    bool mine = false;
    pthread_mutex_lock(&l->lock);
    for (srt_conn_t *c = l->conns; c; c = c->next) {
        if (c->authorizing && c->auth_ticket == a->ticket) {
            c->answer = *a;
            c->auth_done = true;
            c->authorizing = false;
            mine = true;
            pthread_cond_broadcast(&l->cond);
            break;
        }
    }
    pthread_mutex_unlock(&l->lock);
    return mine;
}

/* The loop's half of starting a publish. */
typedef struct srt_start_call {
    srt_conn_t *c;
    const char *id;
    int ret;          /* 0 live; else refused (reason logged) */
} srt_start_call_t;

static void srt_start_fn(void *arg)
{
    srt_start_call_t *sc = arg;
    srt_conn_t *c = sc->c;
    srt_listener_t *l = c->l;
    ingest_shared_t *sh = l->sh;
    const char *id = sc->id;
    sc->ret = -EPERM;
    if (atomic_load(&c->stop)) {
        sc->ret = -ECANCELED;
        return;
    }
    pthread_mutex_lock(&l->lock);
    srt_conn_t *old_srt = srt_find_publisher(l, id, c);
    pthread_mutex_unlock(&l->lock);
    bool old_rtmp = rtmp_session_publishing(sh, id);
    bool takeover = sh->duplicate == INGEST_DUPLICATE_TAKEOVER;
    size_t live = (size_t)__atomic_load_n(&sh->stats.publishers_live, __ATOMIC_RELAXED);
    if (takeover && (old_srt || old_rtmp) && live > 0)
        live--;
    if (live >= sh->limits.max_publishers) {
        INGEST_COUNT(sh, refused_max_publishers);
        log_warn(c->ctx, "publish refused: publisher limit reached (--rtmp-max-publishers)");
        return;
    }
    if ((old_srt || old_rtmp) && !takeover) {
        log_warn(c->ctx, "publish refused: stream %s is already live", id);
        return;
    }
    if (old_srt) {
        log_info(old_srt->ctx, "taken over by a new publisher (srt#%" PRIu64 " %s)", c->id,
                 c->peer);
        atomic_store(&old_srt->stop, true);
        srt_conn_end_publish(old_srt, "taken over", true);
    }
    if (old_rtmp)
        rtmp_session_end_publisher(sh, id, c->id, c->peer);

    media_queue_t *queue = media_queue_new(sh->limits.queue_bytes);
    if (!queue) {
        log_error(c->ctx, "publish refused: out of memory");
        sc->ret = -ENOMEM;
        return;
    }
    snprintf(c->stream_id, sizeof(c->stream_id), "%s", id);
    srt_conn_update_ctx(c);
    if (sh->hooks.publish_start_cb) {
        int ret = sh->hooks.publish_start_cb(sh->hooks.opaque, c->stream_id, queue);
        if (ret < 0) {
            media_queue_unref(queue);
            log_warn(c->ctx, "publish refused: could not start the stream (%s)", strerror(-ret));
            sc->ret = ret;
            return;
        }
    }
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&c->qlock);
    c->queue = queue;
    ingest_meter_start(&sh->meters, &c->meter, c->id, c->stream_id, c->peer, now);
    ingest_meter_protocol(&sh->meters, &c->meter, "srt");
    pthread_mutex_unlock(&c->qlock);
    pthread_mutex_lock(&l->lock);
    c->publishing = true;
    pthread_mutex_unlock(&l->lock);
    ingest_tmeta_start(&sh->tmeta, c->id, c->stream_id, queue, now);
    INGEST_COUNT(sh, publishers_live);
    c->publish_ms = now;
    int latency = l->latency_ms, len = sizeof(latency);
    (void)srt_getsockflag(c->sock, SRTO_RCVLATENCY, &latency, &len); /* the negotiated one */
    log_info(c->ctx, "publish started: stream %s from %s (SRT, latency %d ms%s)", c->stream_id,
             c->peer, latency, l->encrypted ? ", encrypted" : "");
    if (sh->hooks.publish_live_cb)
        sh->hooks.publish_live_cb(sh->hooks.opaque, c->stream_id, c->host);
    sc->ret = 0;
}

typedef struct srt_end_call {
    srt_conn_t *c;
    const char *why;
    bool dropped;
} srt_end_call_t;

static void srt_end_fn(void *arg)
{
    srt_end_call_t *e = arg;
    srt_conn_end_publish(e->c, e->why, e->dropped);
}

/* Asks publish_auth_cb on the loop. */
typedef struct srt_ask_call {
    srt_conn_t *c;
    int ret;
} srt_ask_call_t;

static void srt_ask_fn(void *arg)
{
    srt_ask_call_t *a = arg;
    srt_conn_t *c = a->c;
    srt_listener_t *l = c->l;
    ingest_shared_t *sh = l->sh;
    ingest_auth_request_t req = {
        .ticket = ++sh->next_auth_ticket,
        .app = "live",
        .client_ip = c->host,
        .registry_id = c->known ? c->registry_id : NULL,
    };
    memcpy(req.key_hash, c->hash, sizeof(req.key_hash));
    pthread_mutex_lock(&l->lock);
    c->authorizing = true;
    c->auth_done = false;
    c->auth_ticket = req.ticket;
    pthread_mutex_unlock(&l->lock);
    a->ret = sh->hooks.publish_auth_cb(sh->hooks.opaque, &req);
    if (a->ret < 0) {
        pthread_mutex_lock(&l->lock);
        c->authorizing = false;
        pthread_mutex_unlock(&l->lock);
    }
}

/* The publish authoriser's verdict on c: the stream id to publish as, or
 * NULL (refused; logged). Publisher thread. */
static bool srt_conn_authorize(srt_conn_t *c, char id[STORE_ID_MAX])
{
    srt_listener_t *l = c->l;
    srt_ask_call_t a = {.c = c};
    if (srt_loop_call(l, srt_ask_fn, &a) < 0 || a.ret < 0) {
        log_error(c->ctx, "publish refused: cannot ask for authorisation");
        if (!c->known)
            (void)srt_key_failed(l, &c->addr);
        return false;
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    int64_t ns = until.tv_nsec + (int64_t)l->limits.auth_timeout_ms * 1000000;
    until.tv_sec += (time_t)(ns / 1000000000);
    until.tv_nsec = (long)(ns % 1000000000);
    pthread_mutex_lock(&l->lock);
    int ret = 0;
    while (!c->auth_done && ret == 0 && !atomic_load(&c->stop))
        ret = pthread_cond_timedwait(&l->cond, &l->lock, &until);
    bool got = c->auth_done;
    c->authorizing = false;
    ingest_auth_answer_t ans = c->answer;
    pthread_mutex_unlock(&l->lock);
    const char *why = NULL;
    if (!got)
        why = "authoriser did not answer in time";
    else if (ans.verdict != INGEST_AUTH_ACCEPTED)
        why = ans.verdict == INGEST_AUTH_REFUSED ? "not authorised" : "authoriser unavailable";
    else if (ans.has_id && !store_id_valid(ans.stream_id))
        why = "the authoriser gave an invalid stream id";
    else if (!ans.has_id && !c->known)
        why = "unknown stream key (accepted without an id)";
    if (why) {
        bool locked = !c->known && srt_key_failed(l, &c->addr);
        log_warn(c->ctx, "publish refused after the SRT handshake: %s (authorisation #%" PRIu64
                         ")%s", why, c->auth_ticket,
                 locked ? "; address locked out for bad keys" : "");
        return false;
    }
    snprintf(id, STORE_ID_MAX, "%s", ans.has_id ? ans.stream_id : c->registry_id);
    return true;
}

/* ---- media (publisher thread) ------------------------------------------- */

static void srt_conn_push(srt_conn_t *c, media_packet_type_t type, media_codec_t codec,
                          int64_t dts_ms, int64_t pts_ms, bool key, const uint8_t *data,
                          size_t len)
{
    ingest_shared_t *sh = c->l->sh;
    bool media = type == MEDIA_PACKET_VIDEO || type == MEDIA_PACKET_AUDIO;
    if (media && !c->base_set) {
        c->base_ms = dts_ms;
        c->base_set = true;
    }
    int64_t rel = c->base_set ? dts_ms - c->base_ms : 0;
    media_packet_t *p = media_packet_new(type, len);
    if (!p)
        return;
    if (len)
        memcpy(p->data, data, len);
    p->codec = codec;
    p->dts_ms = rel;
    p->pts_ms = rel + (pts_ms - dts_ms);
    p->keyframe = key;
    int64_t now = clock_mono_ms();
    if (media)
        c->last_media_ms = now;
    pthread_mutex_lock(&c->qlock);
    if (!c->queue) {
        pthread_mutex_unlock(&c->qlock);
        media_packet_free(p);
        return;
    }
    if (media)
        ingest_tmeta_note(&sh->tmeta, c->id, &c->tmeta_hint, rel);
    ingest_meter_media(&sh->meters, &c->meter, type, codec, rel, data, len, now);
    int ret = media_queue_push(c->queue, p);
    if (ret == -ENOBUFS && media)
        ingest_meter_dropped(&c->meter);
    pthread_mutex_unlock(&c->qlock);
    c->media_bytes += len;
    if (ret == 0) {
        c->video_packets += type == MEDIA_PACKET_VIDEO;
        c->audio_packets += type == MEDIA_PACKET_AUDIO;
    } else if (ret == -ENOBUFS) {
        INGEST_COUNT(sh, dropped_packets);
        c->dropped++;
        if (now - c->drop_log_ms >= 1000) {
            c->drop_log_ms = now;
            log_warn(c->ctx, "media queue full (consumer too slow): %" PRIu64
                             " packets dropped since publish", c->dropped);
        }
    }
}

static bool srt_conn_au_room(srt_conn_t *c, size_t need)
{
    if (need > SRT_AU_MAX)
        return false;
    if (need <= c->au_cap)
        return true;
    size_t cap = c->au_cap ? c->au_cap : 65536;
    while (cap < need)
        cap *= 2;
    uint8_t *p = realloc(c->au, cap);
    if (!p)
        return false;
    c->au = p;
    c->au_cap = cap;
    return true;
}

/* Input over --max-input-resolution or --max-input-fps: the publish ends
 * (the demux loop stops on false), with the reason in the log, in
 * publish_end_cb (stream.idle), the API's last_refusal and the counters,
 * in RTMP's words (rtmp_session_refuse_input). */
static bool srt_conn_refuse_input(srt_conn_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static bool srt_conn_refuse_input(srt_conn_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->refusal, sizeof(c->refusal), fmt, ap);
    va_end(ap);
    INGEST_COUNT(c->l->sh, refused_input);
    log_warn(c->ctx, "publish refused: %s", c->refusal);
    ingest_note_input_refusal(c->l->sh, c->stream_id, c->refusal);
    return false;
}

/* The picture of a new avcC / hvcC within --max-input-resolution, in either
 * orientation. A record that does not parse is passed on (the decoder has
 * the last word). */
static bool srt_conn_check_size(srt_conn_t *c, media_codec_t codec, const uint8_t *rec,
                                size_t len)
{
    const ingest_limits_t *lim = &c->l->limits;
    int width, height;
    if (codec == MEDIA_CODEC_HEVC) {
        hevc_config_t hc;
        if (hevc_parse_hvcc(rec, len, &hc) != 0 || hc.width == 0)
            return true;
        width = hc.width;
        height = hc.height;
    } else {
        h264_config_t cfg;
        if (h264_parse_avcc(rec, len, &cfg) != 0)
            return true;
        width = cfg.width;
        height = cfg.height;
    }
    uint32_t lw = lim->max_input_width, lh = lim->max_input_height;
    uint32_t big = lw > lh ? lw : lh, small = lw > lh ? lh : lw;
    uint32_t w = width > 0 ? (uint32_t)width : 0, h = height > 0 ? (uint32_t)height : 0;
    if ((w > h ? w : h) <= big && (w > h ? h : w) <= small)
        return true;
    return srt_conn_refuse_input(c, "the picture is %dx%d, over --max-input-resolution %ux%u",
                                 width, height, lw, lh);
}

/* Video frames at most --max-input-fps a second over windows of at least
 * one second of the publisher's DTS, two frames of slack (as RTMP counts). */
static bool srt_conn_check_fps(srt_conn_t *c, int64_t ts)
{
    if (!c->fps_started || ts < c->fps_start_ts) {
        c->fps_started = true;
        c->fps_start_ts = ts;
        c->fps_frames = 0;
    }
    c->fps_frames++;
    int64_t span = ts - c->fps_start_ts;
    if (span < 1000)
        return true;
    uint32_t max = c->l->limits.max_input_fps;
    double fps = (double)(c->fps_frames - 1) * 1000.0 / (double)span;
    if ((double)(c->fps_frames - 1) > (double)max * (double)span / 1000.0 + 2)
        return srt_conn_refuse_input(c, "video at %.0f frames a second, over --max-input-fps %u",
                                     fps, max);
    c->fps_start_ts = ts;
    c->fps_frames = 1;
    return true;
}

static int64_t srt_ms(int64_t ts, AVRational tb)
{
    return av_rescale_q(ts, tb, (AVRational){1, 1000});
}

static void srt_conn_warn_codec(srt_conn_t *c, int index, const char *kind, enum AVCodecID id)
{
    if (index < 0 || index >= 8 || c->warned_codec[index])
        return;
    c->warned_codec[index] = true;
    log_warn(c->ctx, "%s stream %d: codec %s is not taken over SRT (H.264, HEVC; AAC, MPEG audio, AC-3, Opus); "
                     "ignored", kind, index, avcodec_get_name(id));
}

/* The audio codecs taken: AAC as it is, the others for the transcoder to
 * encode to AAC once (transcode/audio.c). */
static media_codec_t srt_audio_codec(enum AVCodecID id)
{
    switch (id) {
    case AV_CODEC_ID_AAC: return MEDIA_CODEC_AAC;
    case AV_CODEC_ID_MP2:
    case AV_CODEC_ID_MP3: return MEDIA_CODEC_MPA;
    case AV_CODEC_ID_AC3:
    case AV_CODEC_ID_EAC3: return MEDIA_CODEC_AC3;
    case AV_CODEC_ID_OPUS: return MEDIA_CODEC_OPUS;
    default: return MEDIA_CODEC_NONE;
    }
}

/* MPEG audio, AC-3, Opus: a PES split into frames by libavcodec's parser
 * for the codec (which for Opus also removes the MPEG-TS framing, ETSI TS
 * 102 366's control headers), each frame stamped from the PES's PTS plus
 * the frames before it; the configuration (the codec's extradata) first. */
static bool srt_conn_other_audio(srt_conn_t *c, const AVStream *st, const uint8_t *data,
                                 size_t size, bool stamped, int64_t pts_ms)
{
    if (!stamped && !c->audio_next_set)
        return true;
    if (!stamped)
        pts_ms = c->audio_next_ms;
    if (!c->have_asc) {
        const AVCodecParameters *par = st->codecpar;
        size_t n = par->extradata && par->extradata_size > 0 ? (size_t)par->extradata_size : 0;
        if (n > 64) {
            srt_conn_warn_codec(c, st->index, "audio", par->codec_id);
            return true;
        }
        c->have_asc = true;
        srt_conn_push(c, MEDIA_PACKET_AUDIO_CONFIG, c->audio_codec, pts_ms, pts_ms, false,
                      par->extradata, n);
    }
    if (!c->opus_parser) {
        c->opus_parser = av_parser_init(st->codecpar->codec_id);
        c->opus_ctx = avcodec_alloc_context3(NULL);
        if (!c->opus_parser || !c->opus_ctx)
            return true;
    }
    int64_t t = pts_ms;
    while (size > 0) {
        uint8_t *out = NULL;
        int out_size = 0;
        int used = av_parser_parse2(c->opus_parser, c->opus_ctx, &out, &out_size, data,
                                    (int)(size > INT32_MAX ? INT32_MAX : size), AV_NOPTS_VALUE,
                                    AV_NOPTS_VALUE, 0);
        if (used < 0)
            break;
        data += used;
        size -= (size_t)used;
        if (out_size > 0) {
            srt_conn_push(c, MEDIA_PACKET_AUDIO, c->audio_codec, t, t, true, out,
                          (size_t)out_size);
            /* The parser's duration is in samples at the rate it found
             * (Opus: always 48 kHz). */
            int rate = c->audio_codec == MEDIA_CODEC_OPUS || c->opus_ctx->sample_rate <= 0
                           ? 48000
                           : c->opus_ctx->sample_rate;
            int64_t d = c->opus_parser->duration > 0 ? c->opus_parser->duration : rate / 50;
            t += d * 1000 / rate;
        }
        if (used == 0 && out_size == 0)
            break;
    }
    c->audio_next_ms = t;
    c->audio_next_set = true;
    return true;
}

/* One demuxed packet into media packets. false: end the publish. */
static bool srt_conn_on_packet(srt_conn_t *c, AVFormatContext *fmt, const AVPacket *pkt)
{
    if (pkt->stream_index < 0 || (unsigned)pkt->stream_index >= fmt->nb_streams || !pkt->data ||
        pkt->size <= 0)
        return true;
    AVStream *st = fmt->streams[pkt->stream_index];
    enum AVCodecID cid = st->codecpar->codec_id;
    enum AVMediaType mt = st->codecpar->codec_type;
    int64_t dts = pkt->dts != AV_NOPTS_VALUE ? pkt->dts : pkt->pts;
    int64_t pts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : dts;
    bool stamped = dts != AV_NOPTS_VALUE;
    int64_t dts_ms = stamped ? srt_ms(dts, st->time_base) : 0;
    int64_t pts_ms = stamped ? srt_ms(pts, st->time_base) : 0;
    size_t size = (size_t)pkt->size;

    if (mt == AVMEDIA_TYPE_VIDEO) {
        if (c->video_index < 0 && (cid == AV_CODEC_ID_H264 || cid == AV_CODEC_ID_HEVC)) {
            c->video_index = pkt->stream_index;
            c->video_codec = cid == AV_CODEC_ID_HEVC ? MEDIA_CODEC_HEVC : MEDIA_CODEC_H264;
        }
        if (pkt->stream_index != c->video_index) {
            srt_conn_warn_codec(c, pkt->stream_index, "video", cid);
            return true;
        }
        if (!stamped)
            return true; /* a video PES must carry a PTS (ISO/IEC 13818-1 2.4.3.7) */
        if (!srt_conn_au_room(c, size + 64))
            return true;
        bool hevc = c->video_codec == MEDIA_CODEC_HEVC;
        h264_au_info_t info;
        int n = hevc ? hevc_annexb_to_sample(pkt->data, size, c->au, c->au_cap, &info)
                     : h264_annexb_to_sample(pkt->data, size, c->au, c->au_cap, &info);
        if (n < 0)
            return true;
        if (info.has_ps) {
            uint8_t rec[SRT_AVCC_MAX];
            int alen = hevc ? hevc_hvcc_from_annexb(pkt->data, size, rec, sizeof(rec))
                            : h264_avcc_from_annexb(pkt->data, size, rec, sizeof(rec));
            if (alen > 0 && ((size_t)alen != c->avcc_len || memcmp(rec, c->avcc, (size_t)alen))) {
                if (!srt_conn_check_size(c, c->video_codec, rec, (size_t)alen))
                    return false;
                memcpy(c->avcc, rec, (size_t)alen);
                c->avcc_len = (size_t)alen;
                srt_conn_push(c, MEDIA_PACKET_VIDEO_CONFIG, c->video_codec, dts_ms, dts_ms,
                              false, rec, (size_t)alen);
            }
        }
        if (!c->avcc_len || n == 0)
            return true; /* nothing decodable before the first parameter sets */
        if (!srt_conn_check_fps(c, dts_ms))
            return false;
        srt_conn_push(c, MEDIA_PACKET_VIDEO, c->video_codec, dts_ms, pts_ms, info.idr, c->au,
                      (size_t)n);
        return true;
    }
    if (mt == AVMEDIA_TYPE_AUDIO) {
        media_codec_t ac = srt_audio_codec(cid);
        if (c->audio_index < 0 && ac != MEDIA_CODEC_NONE) {
            c->audio_index = pkt->stream_index;
            c->audio_codec = ac;
        }
        if (pkt->stream_index != c->audio_index) {
            srt_conn_warn_codec(c, pkt->stream_index, "audio", cid);
            return true;
        }
        if (c->audio_codec != MEDIA_CODEC_AAC)
            return srt_conn_other_audio(c, st, pkt->data, size, stamped, pts_ms);
        /* A PES holds one or more ADTS frames; each is 1024 samples on.
         * A PES without a PTS follows on from the previous one. */
        if (!stamped && !c->audio_next_set)
            return true;
        if (!stamped)
            pts_ms = c->audio_next_ms;
        size_t pos = 0;
        int k = 0;
        int rate = 0;
        while (pos < size) {
            aac_adts_t h;
            if (aac_parse_adts(pkt->data + pos, size - pos, &h) != 0)
                break;
            int64_t t = pts_ms + (int64_t)(k * 1024.0 * 1000.0 / h.sample_rate + 0.5);
            uint8_t asc[2];
            aac_asc_from_adts(&h, asc);
            if (!c->have_asc || memcmp(asc, c->asc, 2) != 0) {
                memcpy(c->asc, asc, 2);
                c->have_asc = true;
                srt_conn_push(c, MEDIA_PACKET_AUDIO_CONFIG, MEDIA_CODEC_AAC, t, t, false, asc, 2);
            }
            srt_conn_push(c, MEDIA_PACKET_AUDIO, MEDIA_CODEC_AAC, t, t, true,
                          pkt->data + pos + h.header_len, h.frame_len - h.header_len);
            pos += h.frame_len;
            k++;
            rate = h.sample_rate;
        }
        if (rate) {
            c->audio_next_ms = pts_ms + (int64_t)(k * 1024.0 * 1000.0 / rate + 0.5);
            c->audio_next_set = true;
        }
        return true;
    }
    return true;
}

/* ---- reading (publisher thread) ------------------------------------------- */

static void srt_conn_stats(srt_conn_t *c)
{
    SRT_TRACEBSTATS perf;
    if (srt_bstats(c->sock, &perf, 0) != 0)
        return;
    /* clear = 0: the "local" counters (pktRcvRetrans) then count since the
     * connection started, like the totals. */
    ingest_srt_stats_t s = {
        .rtt_ms = perf.msRTT,
        .packets_received = (uint64_t)(perf.pktRecvTotal > 0 ? perf.pktRecvTotal : 0),
        .packets_lost = (uint64_t)(perf.pktRcvLossTotal > 0 ? perf.pktRcvLossTotal : 0),
        .packets_retransmitted = (uint64_t)(perf.pktRcvRetrans > 0 ? perf.pktRcvRetrans : 0),
        .packets_dropped = (uint64_t)(perf.pktRcvDropTotal > 0 ? perf.pktRcvDropTotal : 0),
        .recv_buffer_ms = perf.msRcvBuf,
        .recv_buffer_bytes = perf.byteRcvBuf > 0 ? (uint64_t)perf.byteRcvBuf : 0,
        .latency_ms = perf.msRcvTsbPdDelay,
        .recv_rate_mbps = perf.mbpsRecvRate,
    };
    pthread_mutex_lock(&c->qlock);
    if (c->queue)
        ingest_meter_srt(&c->l->sh->meters, &c->meter, &s);
    pthread_mutex_unlock(&c->qlock);
}

/* The AVIOContext's read: one SRT message at a time, handed out in as many
 * pieces as the demuxer asks for. Wakes every SRT_READ_WAKE_MS to look at
 * the stop flag and at the stall timeout. */
static int srt_read_cb(void *opaque, uint8_t *buf, int size)
{
    srt_conn_t *c = opaque;
    srt_listener_t *l = c->l;
    if (c->end_why) /* sticky: the demuxer may ask again after an end */
        return AVERROR_EOF;
    while (c->msg_pos >= c->msg_len) {
        int64_t now = clock_mono_ms();
        if (atomic_load(&c->stop) || atomic_load(&l->stop)) {
            c->end_why = "closed";
            return AVERROR_EOF;
        }
        if (now - c->last_media_ms >= (int64_t)l->limits.stall_timeout_ms) {
            INGEST_COUNT(l->sh, stalled_publishers);
            log_warn(c->ctx, "no media for %.1f s (--rtmp-stall-timeout); closing",
                     (double)(now - c->last_media_ms) / 1000.0);
            c->end_why = "stalled";
            return AVERROR_EOF;
        }
        if (now - c->last_stats_ms >= 1000) {
            c->last_stats_ms = now;
            srt_conn_stats(c);
        }
        SRT_MSGCTRL mc = srt_msgctrl_default;
        int n = srt_recvmsg2(c->sock, (char *)c->msg, sizeof(c->msg), &mc);
        if (n == SRT_ERROR) {
            int err = srt_getlasterror(NULL);
            if (err == SRT_EASYNCRCV || err == SRT_ETIMEOUT)
                continue;
            c->end_why = "connection lost";
            return AVERROR_EOF;
        }
        if (n <= 0)
            continue;
        c->msg_len = (size_t)n;
        c->msg_pos = 0;
        c->bytes_in += (uint64_t)n;
    }
    size_t take = c->msg_len - c->msg_pos;
    if (take > (size_t)size)
        take = (size_t)size;
    memcpy(buf, c->msg + c->msg_pos, take);
    c->msg_pos += take;
    return (int)take;
}

static int srt_interrupt_cb(void *opaque)
{
    srt_conn_t *c = opaque;
    return atomic_load(&c->stop) || atomic_load(&c->l->stop);
}

static void srt_lease_lost_cb(void *opaque, const char *stream_id)
{
    (void)stream_id;
    srt_conn_t *c = opaque;
    ingest_shared_t *sh = c->l->sh;
    ingest_lost_push(sh, c->id);
}

/* Demuxes until the publisher goes, is cut or the listener closes. */
static void srt_conn_demux(srt_conn_t *c)
{
    AVFormatContext *fmt = avformat_alloc_context();
    uint8_t *iobuf = av_malloc(SRT_IO_BUF);
    AVIOContext *pb = NULL;
    AVPacket *pkt = av_packet_alloc();
    if (!fmt || !iobuf || !pkt) {
        av_free(iobuf);
        goto done;
    }
    pb = avio_alloc_context(iobuf, SRT_IO_BUF, 0, c, srt_read_cb, NULL, NULL);
    if (!pb) {
        av_free(iobuf);
        goto done;
    }
    fmt->pb = pb;
    /* Whole PES packets, as the muxer wrote them (one access unit, or
     * several ADTS frames), with their own PTS: libavformat's parsers would
     * split audio into frames without timestamps. */
    fmt->flags |= AVFMT_FLAG_CUSTOM_IO | AVFMT_FLAG_NOPARSE;
    fmt->interrupt_callback.callback = srt_interrupt_cb;
    fmt->interrupt_callback.opaque = c;
    const AVInputFormat *ts = av_find_input_format("mpegts");
    int ret = avformat_open_input(&fmt, NULL, ts, NULL);
    if (ret < 0) {
        /* avformat_open_input frees fmt on failure */
        fmt = NULL;
        if (!c->end_why) {
            char msg[AV_ERROR_MAX_STRING_SIZE];
            av_strerror(ret, msg, sizeof(msg));
            log_warn(c->ctx, "not an MPEG-TS stream (%s); closing", msg);
            c->end_why = "not MPEG-TS";
        }
        goto done;
    }
    while (!atomic_load(&c->stop)) {
        ret = av_read_frame(fmt, pkt);
        if (ret == AVERROR(EAGAIN))
            continue;
        if (ret < 0)
            break;
        bool go_on = srt_conn_on_packet(c, fmt, pkt);
        av_packet_unref(pkt);
        if (!go_on) {
            c->end_why = "input over the limits";
            break;
        }
    }
    if (!c->end_why)
        c->end_why = "end of stream";
done:
    av_packet_free(&pkt);
    if (fmt)
        avformat_close_input(&fmt);
    if (pb) {
        av_freep(&pb->buffer);
        avio_context_free(&pb);
    }
}

static void *srt_conn_main(void *arg)
{
    srt_conn_t *c = arg;
    srt_listener_t *l = c->l;
    ingest_shared_t *sh = l->sh;
    c->last_media_ms = clock_mono_ms();
    char id[STORE_ID_MAX];
    bool ok = true;
    if (sh->hooks.publish_auth_cb)
        ok = srt_conn_authorize(c, id);
    else
        snprintf(id, sizeof(id), "%s", c->registry_id);
    if (ok) {
        int ret = store_lease_acquire(sh->store, id, sh->duplicate == INGEST_DUPLICATE_TAKEOVER,
                                      srt_lease_lost_cb, c, &c->lease);
        if (ret < 0) {
            log_warn(c->ctx, "publish refused: %s", ret == -EBUSY
                                                        ? "stream is already live on another node"
                                                        : "store unavailable");
            ok = false;
        }
    }
    if (ok) {
        srt_start_call_t sc = {.c = c, .id = id};
        if (srt_loop_call(l, srt_start_fn, &sc) < 0 || sc.ret < 0)
            ok = false;
    }
    if (ok) {
        c->last_media_ms = clock_mono_ms();
        srt_conn_demux(c);
        bool shutdown = atomic_load(&l->stop);
        srt_end_call_t e = {
            .c = c,
            .why = c->end_why ? c->end_why : "closed",
            /* An SRT caller cannot say "unpublish": a connection that goes
             * is a publisher dropped (the reconnect window applies), unless
             * sluice refused its input; at shutdown as RTMP does. */
            .dropped = shutdown ? sh->drop_on_close : !c->refusal[0],
        };
        /* A no-op when the loop has ended it already (a takeover, a lost
         * lease): the loop owns c->publishing. */
        (void)srt_loop_call(l, srt_end_fn, &e);
    }
    store_lease_release(c->lease);
    c->lease = NULL;
    srt_close(c->sock);
    c->sock = SRT_INVALID_SOCK;
    log_debug(c->ctx, "closed (%s)", c->end_why ? c->end_why : "refused");
    atomic_store(&c->done, true);
    return NULL;
}

/* ---- accepting (listener thread) ------------------------------------------ */

static void srt_conn_free(srt_conn_t *c)
{
    if (!c)
        return;
    if (c->sock != SRT_INVALID_SOCK)
        srt_close(c->sock);
    pthread_mutex_destroy(&c->qlock);
    if (c->opus_parser)
        av_parser_close(c->opus_parser);
    avcodec_free_context(&c->opus_ctx);
    free(c->au);
    free(c);
}

/* Joins and frees the conns whose threads are done. */
static void srt_reap(srt_listener_t *l, bool all)
{
    pthread_mutex_lock(&l->lock);
    srt_conn_t **pp = &l->conns, *dead = NULL;
    while (*pp) {
        srt_conn_t *c = *pp;
        if (all || atomic_load(&c->done)) {
            *pp = c->next;
            c->next = dead;
            dead = c;
        } else {
            pp = &c->next;
        }
    }
    /* A pending entry whose socket never came out of srt_accept. */
    int64_t now = clock_mono_ms();
    for (size_t i = 0; i < l->npending;)
        if (all || now - l->pending[i].created_ms > 10000)
            l->pending[i] = l->pending[--l->npending];
        else
            i++;
    pthread_mutex_unlock(&l->lock);
    while (dead) {
        srt_conn_t *c = dead;
        dead = c->next;
        if (c->thread_started)
            pthread_join(c->thread, NULL);
        srt_conn_free(c);
    }
}

typedef struct srt_id_call {
    ingest_shared_t *sh;
    uint64_t id;
} srt_id_call_t;

static void srt_id_fn(void *arg)
{
    srt_id_call_t *i = arg;
    i->id = ++i->sh->next_session_id;
}

static void srt_accept_one(srt_listener_t *l)
{
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    SRTSOCKET s = srt_accept(l->lsock, (struct sockaddr *)&ss, &sslen);
    if (s == SRT_INVALID_SOCK)
        return;
    srt_pending_t p;
    bool found = false;
    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < l->npending; i++) {
        if (l->pending[i].sock == s) {
            p = l->pending[i];
            l->pending[i] = l->pending[--l->npending];
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&l->lock);
    if (!found) { /* fail closed: every accept went through the callback */
        log_error("srt", "accepted a socket the listen callback did not check; closed");
        srt_close(s);
        return;
    }
    INGEST_COUNT(l->sh, connections_accepted);
    srt_conn_t *c = calloc(1, sizeof(*c));
    if (!c) {
        srt_close(s);
        return;
    }
    c->l = l;
    c->sock = s;
    c->video_index = c->audio_index = -1;
    pthread_mutex_init(&c->qlock, NULL);
    atomic_init(&c->stop, false);
    atomic_init(&c->done, false);
    memcpy(c->hash, p.hash, sizeof(c->hash));
    c->known = p.known;
    snprintf(c->registry_id, sizeof(c->registry_id), "%s", p.id);
    srt_format_addr((struct sockaddr *)&ss, c->host, sizeof(c->host), c->peer, sizeof(c->peer));
    ingest_addr_from(&c->addr, (struct sockaddr *)&ss);
    srt_id_call_t ic = {.sh = l->sh};
    (void)srt_loop_call(l, srt_id_fn, &ic);
    c->id = ic.id;
    srt_conn_update_ctx(c);
    int rcvtimeo = SRT_READ_WAKE_MS;
    srt_setsockflag(s, SRTO_RCVTIMEO, &rcvtimeo, sizeof(rcvtimeo));
    pthread_mutex_lock(&l->lock);
    c->next = l->conns;
    l->conns = c;
    pthread_mutex_unlock(&l->lock);
    if (pthread_create(&c->thread, NULL, srt_conn_main, c) != 0) {
        log_error(c->ctx, "cannot start a publisher thread; closed");
        atomic_store(&c->done, true);
        return;
    }
    c->thread_started = true;
    char name[16];
    snprintf(name, sizeof(name), "srt:%" PRIu64, c->id % 100000000);
    pthread_setname_np(c->thread, name);
    log_info(c->ctx, "SRT caller accepted");
}

static void *srt_listen_main(void *arg)
{
    srt_listener_t *l = arg;
    while (!atomic_load(&l->stop)) {
        SRTSOCKET ready[8];
        int rn = 8;
        int n = srt_epoll_wait(l->eid, ready, &rn, NULL, NULL, 200, NULL, NULL, NULL, NULL);
        if (n > 0)
            for (int i = 0; i < rn; i++)
                if (ready[i] == l->lsock)
                    srt_accept_one(l);
        srt_reap(l, false);
    }
    return NULL;
}

/* ---- open / close ----------------------------------------------------------- */

static void srt_log_handler(void *opaque, int level, const char *file, int line,
                            const char *area, const char *message)
{
    (void)opaque;
    (void)file;
    (void)line;
    (void)area;
    /* libsrt's own errors (no stream ids at this level). */
    size_t n = strcspn(message, "\n");
    if (level <= 3)
        log_warn("libsrt", "%.*s", (int)(n > 300 ? 300 : n), message);
}

static pthread_once_t srt_once = PTHREAD_ONCE_INIT;
static int srt_once_ret;

static void srt_global_init(void)
{
    srt_once_ret = srt_startup();
    srt_setloglevel(3); /* LOG_ERR */
    srt_setloghandler(NULL, srt_log_handler);
}

int srt_listener_open(ingest_shared_t *sh, const srt_listener_params_t *p, srt_listener_t **out)
{
    *out = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    char err[256];
    if (netaddr_parse(p->listen, &ss, &sslen, err, sizeof(err)) < 0) {
        log_error("srt", "--srt-listen: bad address: %s", err);
        return -EINVAL;
    }
    size_t plen = p->passphrase ? strlen(p->passphrase) : 0;
    if (plen && (plen < 10 || plen > 79)) {
        log_error("srt", "--srt-passphrase must be 10 to 79 characters long");
        return -EINVAL;
    }
    pthread_once(&srt_once, srt_global_init);
    if (srt_once_ret < 0) {
        log_error("srt", "libsrt failed to start");
        return -EIO;
    }
    srt_listener_t *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->sh = sh;
    l->limits = sh->limits;
    l->lsock = SRT_INVALID_SOCK;
    l->eid = -1;
    l->latency_ms = (int)p->latency_ms;
    l->encrypted = plen > 0;
    snprintf(l->listen, sizeof(l->listen), "%s", p->listen);
    pthread_mutex_init(&l->lock, NULL);
    pthread_cond_init(&l->cond, NULL);
    pthread_mutex_init(&l->auth_lock, NULL);
    pthread_cond_init(&l->auth_cond, NULL);
    pthread_mutex_init(&l->log_lock, NULL);
    atomic_init(&l->stop, false);
    atomic_init(&l->in_callback, 0);

    int ret = -EIO;
    l->lsock = srt_create_socket();
    if (l->lsock == SRT_INVALID_SOCK)
        goto fail;
    int yes = 1, no = 0;
    int latency = (int)p->latency_ms;
    int tt = SRTT_LIVE;
    bool bad = srt_setsockflag(l->lsock, SRTO_TRANSTYPE, &tt, sizeof(tt)) != 0 ||
               srt_setsockflag(l->lsock, SRTO_RCVLATENCY, &latency, sizeof(latency)) != 0 ||
               srt_setsockflag(l->lsock, SRTO_PEERLATENCY, &latency, sizeof(latency)) != 0 ||
               srt_setsockflag(l->lsock, SRTO_RCVSYN, &yes, sizeof(yes)) != 0 ||
               srt_setsockflag(l->lsock, SRTO_SNDSYN, &yes, sizeof(yes)) != 0;
    if (ss.ss_family == AF_INET6)
        (void)srt_setsockflag(l->lsock, SRTO_IPV6ONLY, &no, sizeof(no));
    if (plen) {
        int enforce = 1;
        bad = bad || srt_setsockflag(l->lsock, SRTO_PASSPHRASE, p->passphrase, (int)plen) != 0 ||
              srt_setsockflag(l->lsock, SRTO_ENFORCEDENCRYPTION, &enforce, sizeof(enforce)) != 0;
    }
    if (bad) {
        log_error("srt", "cannot set the listener's options: %s", srt_getlasterror_str());
        ret = -EINVAL;
        goto fail;
    }
    if (srt_bind(l->lsock, (struct sockaddr *)&ss, (int)sslen) != 0) {
        log_error("srt", "cannot bind %s: %s", p->listen, srt_getlasterror_str());
        ret = -EADDRINUSE;
        goto fail;
    }
    if (srt_listen_callback(l->lsock, srt_listen_cb, l) != 0 || srt_listen(l->lsock, 64) != 0) {
        log_error("srt", "cannot listen on %s: %s", p->listen, srt_getlasterror_str());
        goto fail;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    if (srt_getsockname(l->lsock, (struct sockaddr *)&bound, &blen) == 0)
        l->port = bound.ss_family == AF_INET6
                      ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                      : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    l->eid = srt_epoll_create();
    int events = SRT_EPOLL_IN | SRT_EPOLL_ERR;
    if (l->eid < 0 || srt_epoll_add_usock(l->eid, l->lsock, &events) != 0)
        goto fail;
    if (pthread_create(&l->auth_thread, NULL, srt_auth_main, l) != 0)
        goto fail;
    l->auth_started = true;
    pthread_setname_np(l->auth_thread, "srt-auth");
    if (pthread_create(&l->thread, NULL, srt_listen_main, l) != 0)
        goto fail;
    l->thread_started = true;
    pthread_setname_np(l->thread, "srt-listen");
    log_info("srt", "listening on %s (UDP port %d, latency %u ms, %s)", l->listen, l->port,
             p->latency_ms, plen ? "encrypted" : "no passphrase");
    *out = l;
    return 0;
fail:
    srt_listener_close(l);
    return ret;
}

int srt_listener_port(const srt_listener_t *l)
{
    return l ? l->port : -1;
}

void srt_listener_close(srt_listener_t *l)
{
    if (!l)
        return;
    atomic_store(&l->stop, true);
    if (l->thread_started)
        pthread_join(l->thread, NULL);
    /* No new callers from here on; the listen callback refuses. */
    if (l->lsock != SRT_INVALID_SOCK)
        srt_close(l->lsock);
    while (atomic_load(&l->in_callback) > 0) /* at most SRT_AUTH_WAIT_MS and a loop call */
        usleep(10000);
    pthread_mutex_lock(&l->lock);
    for (srt_conn_t *c = l->conns; c; c = c->next)
        atomic_store(&c->stop, true);
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
    srt_reap(l, true); /* joins: each ends its publish on the loop */
    pthread_mutex_lock(&l->auth_lock);
    l->auth_stop = true;
    pthread_cond_broadcast(&l->auth_cond);
    pthread_mutex_unlock(&l->auth_lock);
    if (l->auth_started)
        pthread_join(l->auth_thread, NULL);
    pthread_mutex_lock(&l->auth_lock);
    while (l->lookups) { /* a callback may still wait on one: it frees its own half */
        srt_lookup_t *q = l->lookups;
        l->lookups = q->next;
        q->done = true;
        q->rc = -ECANCELED;
        srt_lookup_unref(l, q);
    }
    pthread_mutex_unlock(&l->auth_lock);
    if (l->eid >= 0)
        srt_epoll_release(l->eid);
    free(l->pending);
    pthread_mutex_destroy(&l->lock);
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->auth_lock);
    pthread_cond_destroy(&l->auth_cond);
    pthread_mutex_destroy(&l->log_lock);
    free(l);
}
