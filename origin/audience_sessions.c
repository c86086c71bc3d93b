/*
 * This node's audience sessions and the limits of beacons
 * (audience_sessions_internal.h). One mutex over three chained hash tables:
 * sessions by (stream, session id), streams by id (session counts), and
 * client addresses by keyed hash (a token bucket, session counts per
 * stream). MHD's threads call audience_sessions_beacon(); the
 * "audience-flush" thread (or a test) calls audience_sessions_flush(),
 * which copies dirty records out in batches under the mutex and writes
 * them to the store with it dropped. Memory is bounded by the caps: every
 * entry belongs to a live session, except idle addresses, which the flush
 * forgets once their bucket is full again.
 */
#include "audience_sessions_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "clock.h"
#include "hash.h"
#include "log.h"

#define AUD_SESSION_BUCKETS 65536u
#define AUD_STREAM_BUCKETS 1024u
#define AUD_ADDR_BUCKETS 16384u
#define AUD_BATCH 512          /* records written per store round without the mutex */
#define AUD_LOG_EVERY_MS 10000 /* store errors are said at most this often */
#define AUD_FULL_RETRY_S 10    /* Retry-After of a cap: the players' beacon interval */
#define AUD_FIELD_MAX (sizeof(AUDIENCE_FIELD_PREFIX) + AUDIENCE_SESSION_MAX)

typedef struct aud_stream {
    char id[STORE_ID_MAX];
    uint32_t sessions;
    struct aud_stream *next;
} aud_stream_t;

/* An address's sessions in one stream. */
typedef struct aud_addr_stream {
    aud_stream_t *stream;
    uint32_t sessions;
    struct aud_addr_stream *next;
} aud_addr_stream_t;

typedef struct aud_addr {
    uint8_t key[16]; /* the keyed hash, never the address */
    int64_t tokens;  /* thousandths of a beacon */
    int64_t refill_ms;
    uint32_t sessions;
    aud_addr_stream_t *streams;
    struct aud_addr *next;
} aud_addr_t;

typedef struct aud_session {
    char id[AUDIENCE_SESSION_MAX + 1];
    aud_stream_t *stream;
    aud_addr_t *addr;
    aud_addr_stream_t *addr_stream;
    audience_session_t s;
    int64_t last_ms;
    int64_t tokens;
    int64_t refill_ms;
    bool dirty;
    struct aud_session *next;
} aud_session_t;

/* A record on its way to the store. */
typedef struct aud_write {
    char stream[STORE_ID_MAX];
    char field[AUD_FIELD_MAX];
    char value[AUDIENCE_RECORD_MAX];
    int64_t ttl_ms;
} aud_write_t;

struct audience_sessions {
    audience_sessions_params_t p;
    uint8_t addr_key[32];
    uint64_t seed; /* of the tables' hash, so ids cannot be chosen to collide */
    pthread_mutex_t lock;
    aud_session_t **sessions; /* AUD_SESSION_BUCKETS */
    aud_stream_t *streams[AUD_STREAM_BUCKETS];
    aud_addr_t **addrs; /* AUD_ADDR_BUCKETS */
    size_t nsessions, naddrs;
    aud_write_t *batch; /* AUD_BATCH, the flush's */
    pthread_mutex_t flush_lock; /* one flush at a time */
    /* store errors: counted, said at most every AUD_LOG_EVERY_MS */
    _Atomic uint64_t store_errors;
    uint64_t errors_logged;
    int64_t error_log_ms;
    int last_error;
    /* the flush thread */
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond;
    bool stopping, started;
    pthread_t thread;
};

/* common/hash.h from a random seed; 0xff between the two parts, so that
 * ("ab","c") != ("a","bc"). */
static uint64_t aud_hash(uint64_t seed, const void *a, size_t alen, const void *b, size_t blen)
{
    static const unsigned char sep = 0xff;
    uint64_t h = hash_bytes(HASH_FNV1A_INIT ^ seed, a, alen);
    h = hash_bytes(h, &sep, 1);
    return hash_mix(hash_bytes(h, b, blen));
}

int audience_sessions_new(const audience_sessions_params_t *p, audience_sessions_t **out)
{
    *out = NULL;
    if (!p->store || p->timeout_ms <= 0)
        return -EINVAL;
    audience_sessions_t *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->p = *p;
    if (!t->p.per_address)
        t->p.per_address = 50;
    if (!t->p.max_total)
        t->p.max_total = AUDIENCE_SESSIONS_MAX;
    if (!t->p.max_per_stream)
        t->p.max_per_stream = AUDIENCE_SESSIONS_PER_STREAM_MAX;
    t->sessions = calloc(AUD_SESSION_BUCKETS, sizeof(*t->sessions));
    t->addrs = calloc(AUD_ADDR_BUCKETS, sizeof(*t->addrs));
    t->batch = calloc(AUD_BATCH, sizeof(*t->batch));
    if (!t->sessions || !t->addrs || !t->batch) {
        free(t->sessions);
        free(t->addrs);
        free(t->batch);
        free(t);
        return -ENOMEM;
    }
    if (RAND_bytes(t->addr_key, sizeof(t->addr_key)) != 1 ||
        RAND_bytes((unsigned char *)&t->seed, sizeof(t->seed)) != 1) {
        log_error("audience", "cannot draw the address hash key: OpenSSL's RAND_bytes failed");
        free(t->sessions);
        free(t->addrs);
        free(t->batch);
        free(t);
        return -EIO;
    }
    pthread_mutex_init(&t->lock, NULL);
    pthread_mutex_init(&t->flush_lock, NULL);
    pthread_mutex_init(&t->stop_lock, NULL);
    pthread_cond_init(&t->stop_cond, NULL);
    *out = t;
    return 0;
}

static void *aud_flush_main(void *arg)
{
    audience_sessions_t *t = arg;
    pthread_mutex_lock(&t->stop_lock);
    while (!t->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&t->stop_cond, &t->stop_lock, &ts);
        if (t->stopping)
            break;
        pthread_mutex_unlock(&t->stop_lock);
        audience_sessions_flush(t, clock_mono_ms());
        pthread_mutex_lock(&t->stop_lock);
    }
    pthread_mutex_unlock(&t->stop_lock);
    return NULL;
}

int audience_sessions_start(audience_sessions_t *t)
{
    int rc = pthread_create(&t->thread, NULL, aud_flush_main, t);
    if (rc != 0) {
        log_error("audience", "cannot start the session flush thread: %s", strerror(rc));
        return -rc;
    }
    pthread_setname_np(t->thread, "audience-flush");
    t->started = true;
    return 0;
}

void audience_sessions_free(audience_sessions_t *t)
{
    if (!t)
        return;
    if (t->started) {
        pthread_mutex_lock(&t->stop_lock);
        t->stopping = true;
        pthread_cond_signal(&t->stop_cond);
        pthread_mutex_unlock(&t->stop_lock);
        pthread_join(t->thread, NULL);
        /* What players said in the last second still reaches the store. */
        audience_sessions_flush(t, clock_mono_ms());
    }
    for (size_t i = 0; i < AUD_SESSION_BUCKETS; i++)
        for (aud_session_t *s = t->sessions[i], *next; s; s = next) {
            next = s->next;
            free(s);
        }
    for (size_t i = 0; i < AUD_STREAM_BUCKETS; i++)
        for (aud_stream_t *s = t->streams[i], *next; s; s = next) {
            next = s->next;
            free(s);
        }
    for (size_t i = 0; i < AUD_ADDR_BUCKETS; i++)
        for (aud_addr_t *a = t->addrs[i], *next; a; a = next) {
            next = a->next;
            for (aud_addr_stream_t *as = a->streams, *n2; as; as = n2) {
                n2 = as->next;
                free(as);
            }
            free(a);
        }
    OPENSSL_cleanse(t->addr_key, sizeof(t->addr_key));
    free(t->sessions);
    free(t->addrs);
    free(t->batch);
    pthread_mutex_destroy(&t->lock);
    pthread_mutex_destroy(&t->flush_lock);
    pthread_mutex_destroy(&t->stop_lock);
    pthread_cond_destroy(&t->stop_cond);
    free(t);
}

/* ---- token buckets (thousandths of a beacon) ---------------------------- */

/* Refills to now and takes one beacon; false (and *retry_s) when empty. */
static bool aud_bucket_take(int64_t *tokens, int64_t *refill_ms, int64_t rate, int64_t burst,
                            int64_t now_ms, unsigned int *retry_s)
{
    if (now_ms > *refill_ms) {
        int64_t add = (now_ms - *refill_ms) * rate; /* rate/s = rate thousandths per ms */
        *tokens = *tokens + add > burst * 1000 ? burst * 1000 : *tokens + add;
        *refill_ms = now_ms;
    }
    if (*tokens >= 1000) {
        *tokens -= 1000;
        return true;
    }
    int64_t wait_ms = (1000 - *tokens + rate - 1) / rate;
    *retry_s = (unsigned int)((wait_ms + 999) / 1000);
    if (*retry_s < 1)
        *retry_s = 1;
    return false;
}

/* ---- the tables (under t->lock) ----------------------------------------- */

static aud_stream_t **aud_stream_slot(audience_sessions_t *t, const char *id)
{
    aud_stream_t **pp =
        &t->streams[aud_hash(t->seed, id, strlen(id), NULL, 0) & (AUD_STREAM_BUCKETS - 1)];
    while (*pp && strcmp((*pp)->id, id) != 0)
        pp = &(*pp)->next;
    return pp;
}

static aud_session_t **aud_session_slot(audience_sessions_t *t, const char *stream_id,
                                        const char *session)
{
    uint64_t h = aud_hash(t->seed, stream_id, strlen(stream_id), session, strlen(session));
    aud_session_t **pp = &t->sessions[h & (AUD_SESSION_BUCKETS - 1)];
    while (*pp && (strcmp((*pp)->id, session) != 0 || strcmp((*pp)->stream->id, stream_id) != 0))
        pp = &(*pp)->next;
    return pp;
}

static aud_addr_t **aud_addr_slot(audience_sessions_t *t, const uint8_t key[16])
{
    aud_addr_t **pp = &t->addrs[aud_hash(t->seed, key, 16, NULL, 0) & (AUD_ADDR_BUCKETS - 1)];
    while (*pp && memcmp((*pp)->key, key, 16) != 0)
        pp = &(*pp)->next;
    return pp;
}

/* An address with no sessions whose bucket is full again holds nothing a
 * fresh entry would not: it can be forgotten. */
static bool aud_addr_idle(const aud_addr_t *a, int64_t now_ms)
{
    return a->sessions == 0 &&
           (a->tokens + (now_ms - a->refill_ms) * AUDIENCE_ADDR_RATE >= AUDIENCE_ADDR_BURST * 1000);
}

static void aud_forget_idle_addrs(audience_sessions_t *t, int64_t now_ms)
{
    for (size_t i = 0; i < AUD_ADDR_BUCKETS; i++) {
        aud_addr_t **pp = &t->addrs[i];
        while (*pp) {
            aud_addr_t *a = *pp;
            if (aud_addr_idle(a, now_ms)) {
                *pp = a->next;
                free(a); /* no sessions: no per-stream entries left either */
                t->naddrs--;
            } else {
                pp = &a->next;
            }
        }
    }
}

/* Takes the session out of every table and frees it. */
static void aud_session_remove(audience_sessions_t *t, aud_session_t **pp)
{
    aud_session_t *s = *pp;
    *pp = s->next;
    t->nsessions--;
    aud_addr_stream_t *as = s->addr_stream;
    aud_addr_t *a = s->addr;
    a->sessions--;
    if (--as->sessions == 0) {
        aud_addr_stream_t **ap = &a->streams;
        while (*ap != as)
            ap = &(*ap)->next;
        *ap = as->next;
        free(as);
    }
    aud_stream_t *st = s->stream;
    if (--st->sessions == 0) {
        aud_stream_t **sp = aud_stream_slot(t, st->id);
        *sp = st->next;
        free(st);
    }
    free(s);
}

static bool aud_expired(const audience_sessions_t *t, const aud_session_t *s, int64_t now_ms)
{
    return now_ms - s->last_ms > t->p.timeout_ms;
}

/* Removes every expired session that was already written (a dirty one is
 * written by the flush first). */
static void aud_sweep(audience_sessions_t *t, int64_t now_ms)
{
    for (size_t i = 0; i < AUD_SESSION_BUCKETS; i++) {
        aud_session_t **pp = &t->sessions[i];
        while (*pp) {
            if (!(*pp)->dirty && aud_expired(t, *pp, now_ms))
                aud_session_remove(t, pp);
            else
                pp = &(*pp)->next;
        }
    }
}

/* The address's keyed hash: IPv4 by itself, IPv6 by its /64. */
static void aud_addr_key(const audience_sessions_t *t, const uint8_t addr[16], uint8_t out[16])
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    uint8_t a[16];
    memcpy(a, addr, 16);
    if (memcmp(a, v4mapped, sizeof(v4mapped)) != 0)
        memset(a + 8, 0, 8);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (!HMAC(EVP_sha256(), t->addr_key, (int)sizeof(t->addr_key), a, sizeof(a), mac, &maclen) ||
        maclen < 16) {
        /* Cannot happen with a working OpenSSL; every address then shares
         * one entry, which limits harder, never softer. */
        memset(out, 0, 16);
        return;
    }
    memcpy(out, mac, 16);
    OPENSSL_cleanse(a, sizeof(a));
}

audience_verdict_t audience_sessions_beacon(audience_sessions_t *t, const char *stream_id,
                                            const char *session, const uint8_t addr[16],
                                            const audience_session_t *s, int64_t now_ms,
                                            unsigned int *retry_after_s)
{
    *retry_after_s = 0;
    uint8_t key[16];
    aud_addr_key(t, addr, key); /* outside the lock: the HMAC is the costly part */
    audience_verdict_t verdict = AUDIENCE_ACCEPTED;
    pthread_mutex_lock(&t->lock);
    aud_session_t **sp = aud_session_slot(t, stream_id, session);
    aud_session_t *known = *sp;
    if (known && aud_expired(t, known, now_ms) && !known->dirty) {
        /* Gone already, only not swept: it starts again under the caps. */
        aud_session_remove(t, sp);
        sp = aud_session_slot(t, stream_id, session);
        known = NULL;
    }
    if (known && !aud_bucket_take(&known->tokens, &known->refill_ms, AUDIENCE_SESSION_RATE,
                                  AUDIENCE_SESSION_BURST, now_ms, retry_after_s)) {
        verdict = AUDIENCE_LIMIT_SESSION;
        goto done;
    }
    aud_addr_t **ap = aud_addr_slot(t, key);
    aud_addr_t *a = *ap;
    if (!a) {
        if (t->naddrs >= AUDIENCE_ADDRS_MAX) {
            aud_forget_idle_addrs(t, now_ms);
            ap = aud_addr_slot(t, key);
        }
        if (t->naddrs >= AUDIENCE_ADDRS_MAX || !(a = calloc(1, sizeof(*a)))) {
            verdict = AUDIENCE_LIMIT_FULL;
            *retry_after_s = AUD_FULL_RETRY_S;
            goto done;
        }
        memcpy(a->key, key, 16);
        a->tokens = AUDIENCE_ADDR_BURST * 1000;
        a->refill_ms = now_ms;
        *ap = a;
        t->naddrs++;
    }
    if (!aud_bucket_take(&a->tokens, &a->refill_ms, AUDIENCE_ADDR_RATE, AUDIENCE_ADDR_BURST, now_ms,
                         retry_after_s)) {
        verdict = AUDIENCE_LIMIT_ADDRESS;
        goto done;
    }
    if (!known) {
        aud_stream_t **stp = aud_stream_slot(t, stream_id);
        aud_stream_t *st = *stp;
        aud_addr_stream_t *as = a->streams;
        while (as && as->stream != st)
            as = as->next;
        if (st && as && as->sessions >= t->p.per_address) {
            verdict = AUDIENCE_LIMIT_PER_ADDRESS;
            *retry_after_s = AUD_FULL_RETRY_S;
            goto done;
        }
        if (t->nsessions >= t->p.max_total || (st && st->sessions >= t->p.max_per_stream)) {
            verdict = AUDIENCE_LIMIT_FULL;
            *retry_after_s = AUD_FULL_RETRY_S;
            goto done;
        }
        aud_session_t *n = calloc(1, sizeof(*n));
        bool new_st = !st, new_as = !as;
        if (new_st)
            st = calloc(1, sizeof(*st));
        if (new_as)
            as = calloc(1, sizeof(*as));
        if (!n || !st || !as) {
            free(n);
            if (new_st)
                free(st);
            if (new_as)
                free(as);
            verdict = AUDIENCE_LIMIT_FULL;
            *retry_after_s = AUD_FULL_RETRY_S;
            goto done;
        }
        if (new_st) {
            snprintf(st->id, sizeof(st->id), "%s", stream_id);
            *stp = st;
        }
        if (new_as) {
            as->stream = st;
            as->next = a->streams;
            a->streams = as;
        }
        snprintf(n->id, sizeof(n->id), "%s", session);
        n->stream = st;
        n->addr = a;
        n->addr_stream = as;
        n->tokens = (AUDIENCE_SESSION_BURST - 1) * 1000;
        n->refill_ms = now_ms;
        st->sessions++;
        as->sessions++;
        a->sessions++;
        t->nsessions++;
        *sp = n;
        known = n;
    }
    known->s = *s;
    known->last_ms = now_ms;
    known->dirty = true;
done:
    pthread_mutex_unlock(&t->lock);
    OPENSSL_cleanse(key, sizeof(key));
    return verdict;
}

/* Writes t->batch[0..n) to the store with no lock of ours held. */
static size_t aud_write_batch(audience_sessions_t *t, size_t n, int64_t now_ms)
{
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        const aud_write_t *w = &t->batch[i];
        /* A session that ended stays ended: a beacon it sent before its
         * goodbye may reach this node (or another) after it. */
        int rc = store_meta_put_unless_final(t->p.store, w->stream, w->field, w->value,
                                             w->ttl_ms, audience_record_final_prefix());
        if (rc >= 0) {
            ok++;
            continue;
        }
        atomic_fetch_add(&t->store_errors, 1);
        t->last_error = rc;
    }
    uint64_t errors = atomic_load(&t->store_errors);
    if (errors > t->errors_logged &&
        (t->error_log_ms == 0 || now_ms - t->error_log_ms >= AUD_LOG_EVERY_MS)) {
        log_warn("audience",
                 "%" PRIu64 " session record%s not written to the store since the last warning "
                 "(last: %s); viewer counts may read low until it answers",
                 errors - t->errors_logged, errors - t->errors_logged == 1 ? "" : "s",
                 strerror(-t->last_error));
        t->errors_logged = errors;
        t->error_log_ms = now_ms;
    }
    return ok;
}

size_t audience_sessions_flush(audience_sessions_t *t, int64_t now_ms)
{
    size_t written = 0;
    pthread_mutex_lock(&t->flush_lock);
    pthread_mutex_lock(&t->lock);
    size_t i = 0;
    while (i < AUD_SESSION_BUCKETS) {
        size_t n = 0;
        for (; i < AUD_SESSION_BUCKETS && n < AUD_BATCH; i++) {
            aud_session_t **pp = &t->sessions[i];
            while (*pp && n < AUD_BATCH) {
                aud_session_t *s = *pp;
                if (!s->dirty) {
                    pp = &s->next;
                    continue;
                }
                aud_write_t *w = &t->batch[n];
                int len = audience_record_format(&s->s, w->value, sizeof(w->value));
                if (len >= 0) {
                    snprintf(w->stream, sizeof(w->stream), "%s", s->stream->id);
                    snprintf(w->field, sizeof(w->field), "%s%s", AUDIENCE_FIELD_PREFIX, s->id);
                    w->ttl_ms = s->s.state == AUDIENCE_ENDED ? AUDIENCE_ENDED_TTL_MS
                                                             : t->p.timeout_ms;
                    n++;
                }
                s->dirty = false;
                if (s->s.state == AUDIENCE_ENDED)
                    aud_session_remove(t, pp); /* said goodbye: it leaves at once */
                else
                    pp = &s->next;
            }
            if (*pp) /* the batch filled inside this bucket: come back to it */
                break;
        }
        if (n == 0)
            continue;
        pthread_mutex_unlock(&t->lock);
        written += aud_write_batch(t, n, now_ms);
        pthread_mutex_lock(&t->lock);
    }
    aud_sweep(t, now_ms);
    aud_forget_idle_addrs(t, now_ms);
    pthread_mutex_unlock(&t->lock);
    pthread_mutex_unlock(&t->flush_lock);
    return written;
}

uint64_t audience_sessions_count(audience_sessions_t *t)
{
    if (!t)
        return 0;
    pthread_mutex_lock(&t->lock);
    uint64_t n = t->nsessions;
    pthread_mutex_unlock(&t->lock);
    return n;
}

uint64_t audience_sessions_store_errors(audience_sessions_t *t)
{
    if (!t)
        return 0;
    return atomic_load(&t->store_errors);
}
