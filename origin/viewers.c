/*
 * Viewer sessions (viewers_internal.h): a striped, fixed-size session table
 * and a small stream table, both bounded.
 *
 * Threads: any. A stripe's mutex guards its slots; streams_lock guards the
 * stream table and is only taken (inside a stripe's lock) when a session is
 * created or removed. The sweep (expired sessions out, stream counts down)
 * runs from the counting calls, at most every VIEWERS_SWEEP_MS, one thread
 * at a time (sweep_lock, tried, never waited for).
 *
 * Session identity is a 64-bit keyed hash of (stream id, kind, parts): the
 * key is random per process, so a client cannot aim collisions at one
 * stripe; a probe sequence is also bounded (VIEWERS_PROBE_MAX), and a session
 * that finds no room is refused and counted. Two sessions colliding on 64
 * bits count as one: negligible at these sizes.
 */
#include "viewers_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "hash.h"

#define VIEWERS_STRIPES 16
#define VIEWERS_PROBE_MAX 64
#define VIEWERS_SWEEP_MS 200

typedef struct viewers_slot {
    uint64_t key;      /* 0: empty */
    int64_t last_ms;
    uint32_t stream;   /* index in the stream table */
} viewers_slot_t;

typedef struct viewers_stripe {
    pthread_mutex_t lock;
    viewers_slot_t *slots;
    viewers_slot_t *scratch; /* sweep's copy */
    size_t mask;             /* slots - 1 (a power of two) */
    size_t used;             /* occupied slots, expired ones included */
    size_t limit;            /* most sessions this stripe takes */
} viewers_stripe_t;

typedef struct viewers_stream {
    char id[STORE_ID_MAX];
    uint64_t count; /* sessions in the table (expired not yet swept included) */
} viewers_stream_t;

struct viewers {
    int64_t ttl_ms;
    size_t max_per_stream;
    uint64_t seed[2];
    viewers_net_t proxies[VIEWERS_PROXIES_MAX];
    size_t nproxies;
    viewers_stripe_t stripes[VIEWERS_STRIPES];
    pthread_mutex_t streams_lock;
    viewers_stream_t *streams; /* VIEWERS_STREAMS_MAX */
    size_t nstreams;           /* high-water mark of used entries */
    pthread_mutex_t sweep_lock;
    _Atomic int64_t swept_ms;
    _Atomic uint64_t created, refused;
};

/* ---- addresses ------------------------------------------------------------ */

static int viewers_addr_parse(const char *s, size_t len, uint8_t out[16])
{
    char buf[INET6_ADDRSTRLEN + 1];
    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len == 0 || len >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    struct in_addr a4;
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a4, 4);
        return 0;
    }
    if (inet_pton(AF_INET6, buf, out) == 1)
        return 0;
    return -EINVAL;
}

static bool viewers_is_v4(const uint8_t a[16])
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(a, prefix, 12) == 0;
}

int viewers_parse_proxies(const char *spec, viewers_net_t *out, size_t cap)
{
    size_t n = 0;
    if (!spec)
        return 0;
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *slash = memchr(p, '/', len);
        size_t alen = slash ? (size_t)(slash - p) : len;
        bool blank = true;
        for (size_t i = 0; i < len; i++)
            if (p[i] != ' ' && p[i] != '\t')
                blank = false;
        if (!blank) {
            if (n == cap)
                return -E2BIG;
            viewers_net_t *net = &out[n];
            if (viewers_addr_parse(p, alen, net->addr) < 0)
                return -EINVAL;
            int maxbits = viewers_is_v4(net->addr) ? 32 : 128;
            int bits = maxbits;
            if (slash) {
                const char *b = slash + 1;
                size_t blen = len - alen - 1;
                while (blen > 0 && b[blen - 1] == ' ')
                    blen--;
                if (blen == 0 || blen > 3)
                    return -EINVAL;
                bits = 0;
                for (size_t i = 0; i < blen; i++) {
                    if (b[i] < '0' || b[i] > '9')
                        return -EINVAL;
                    bits = bits * 10 + (b[i] - '0');
                }
                if (bits > maxbits)
                    return -EINVAL;
            }
            net->bits = viewers_is_v4(net->addr) ? bits + 96 : bits;
            n++;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return (int)n;
}

static bool viewers_net_match(const viewers_net_t *net, const uint8_t a[16])
{
    int full = net->bits / 8, rest = net->bits % 8;
    if (memcmp(net->addr, a, (size_t)full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t m = (uint8_t)(0xff << (8 - rest));
    return (net->addr[full] & m) == (a[full] & m);
}

static bool viewers_trusted(const viewers_t *v, const uint8_t a[16])
{
    for (size_t i = 0; i < v->nproxies; i++)
        if (viewers_net_match(&v->proxies[i], a))
            return true;
    return false;
}

static void viewers_sockaddr(const struct sockaddr *sa, uint8_t out[16])
{
    memset(out, 0, 16);
    if (!sa)
        return;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &in4->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    }
}

void viewers_client_addr(const viewers_t *v, const struct sockaddr *peer, const char *xff,
                         uint8_t out[16])
{
    viewers_sockaddr(peer, out);
    if (!xff || !viewers_trusted(v, out))
        return;
    /* Right to left: each hop was added by the one after it; the first
     * address not among our proxies is the client as far as we can trust. */
    size_t end = strlen(xff);
    for (int hops = 0; hops < VIEWERS_XFF_HOPS_MAX && end > 0; hops++) {
        size_t start = end;
        while (start > 0 && xff[start - 1] != ',')
            start--;
        uint8_t a[16];
        if (viewers_addr_parse(xff + start, end - start, a) < 0)
            return; /* garbage: keep the last address we could trust */
        memcpy(out, a, 16);
        if (!viewers_trusted(v, a))
            return;
        end = start > 0 ? start - 1 : 0;
    }
}

/* ---- table ------------------------------------------------------------------ */

static uint64_t viewers_key(const viewers_t *v, const char *stream_id, char kind, const void *a,
                            size_t alen, const void *b, size_t blen)
{
    uint64_t h = HASH_FNV1A_INIT ^ v->seed[0];
    h = hash_bytes(h, stream_id, strlen(stream_id) + 1);
    h = hash_bytes(h, &kind, 1);
    h = hash_bytes(h, &alen, sizeof(alen));
    h = hash_bytes(h, a, alen);
    h = hash_bytes(h, b, blen);
    h = hash_mix(h ^ v->seed[1]);
    return h ? h : 1;
}

int viewers_new(const char *trusted_proxies, int64_t ttl_ms, size_t max_total,
                size_t max_per_stream, viewers_t **out)
{
    viewers_t *v = calloc(1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    int n = viewers_parse_proxies(trusted_proxies, v->proxies, VIEWERS_PROXIES_MAX);
    if (n < 0) {
        free(v);
        return n == -E2BIG ? -E2BIG : -EINVAL;
    }
    v->nproxies = (size_t)n;
    v->ttl_ms = ttl_ms > 0 ? ttl_ms : 4000;
    v->max_per_stream = max_per_stream ? max_per_stream : 20000;
    if (!max_total)
        max_total = 65536;
    if (RAND_bytes((unsigned char *)v->seed, sizeof(v->seed)) != 1) {
        free(v);
        return -EIO;
    }
    size_t per = (max_total + VIEWERS_STRIPES - 1) / VIEWERS_STRIPES;
    size_t slots = 16;
    while (slots < per * 2) /* load at most one half */
        slots *= 2;
    v->streams = calloc(VIEWERS_STREAMS_MAX, sizeof(*v->streams));
    pthread_mutex_init(&v->streams_lock, NULL);
    pthread_mutex_init(&v->sweep_lock, NULL);
    bool ok = v->streams != NULL;
    for (size_t i = 0; i < VIEWERS_STRIPES; i++) {
        viewers_stripe_t *s = &v->stripes[i];
        pthread_mutex_init(&s->lock, NULL);
        s->slots = calloc(slots, sizeof(*s->slots));
        s->scratch = calloc(slots, sizeof(*s->scratch));
        s->mask = slots - 1;
        s->limit = per;
        ok = ok && s->slots && s->scratch;
    }
    if (!ok) {
        viewers_free(v);
        return -ENOMEM;
    }
    *out = v;
    return 0;
}

void viewers_free(viewers_t *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < VIEWERS_STRIPES; i++) {
        pthread_mutex_destroy(&v->stripes[i].lock);
        free(v->stripes[i].slots);
        free(v->stripes[i].scratch);
    }
    pthread_mutex_destroy(&v->streams_lock);
    pthread_mutex_destroy(&v->sweep_lock);
    free(v->streams);
    free(v);
}

/* streams_lock held. The index of stream_id, created if needed (reusing an
 * entry with no sessions), or -1 when the table is full. */
static int viewers_stream_index(viewers_t *v, const char *stream_id)
{
    int free_idx = -1;
    for (size_t i = 0; i < v->nstreams; i++) {
        if (v->streams[i].count > 0 || v->streams[i].id[0]) {
            if (strcmp(v->streams[i].id, stream_id) == 0)
                return (int)i;
        }
        if (v->streams[i].count == 0 && free_idx < 0)
            free_idx = (int)i;
    }
    if (free_idx < 0) {
        if (v->nstreams == VIEWERS_STREAMS_MAX)
            return -1;
        free_idx = (int)v->nstreams++;
    }
    snprintf(v->streams[free_idx].id, sizeof(v->streams[free_idx].id), "%s", stream_id);
    v->streams[free_idx].count = 0;
    return free_idx;
}

static void viewers_sweep(viewers_t *v, int64_t now_ms);

/* One attempt; false when a cap refused the session (nothing counted yet). */
static bool viewers_touch_once(viewers_t *v, uint64_t key, const char *stream_id, int64_t now_ms)
{
    viewers_stripe_t *s = &v->stripes[key % VIEWERS_STRIPES];
    size_t h = (size_t)(key / VIEWERS_STRIPES);
    pthread_mutex_lock(&s->lock);
    viewers_slot_t *reuse = NULL;
    for (size_t i = 0; i < VIEWERS_PROBE_MAX; i++) {
        viewers_slot_t *slot = &s->slots[(h + i) & s->mask];
        if (slot->key == key) {
            slot->last_ms = now_ms; /* the hot path: a known session */
            pthread_mutex_unlock(&s->lock);
            return true;
        }
        if (slot->key == 0) {
            if (!reuse)
                reuse = slot;
            break;
        }
        if (!reuse && slot->last_ms + v->ttl_ms < now_ms)
            reuse = slot; /* expired, not swept yet */
    }
    bool fresh = reuse && reuse->key == 0;
    if (!reuse || (fresh && s->used >= s->limit)) {
        pthread_mutex_unlock(&s->lock);
        return false;
    }
    pthread_mutex_lock(&v->streams_lock);
    int idx = viewers_stream_index(v, stream_id);
    if (idx < 0 || v->streams[idx].count >= v->max_per_stream) {
        pthread_mutex_unlock(&v->streams_lock);
        pthread_mutex_unlock(&s->lock);
        return false;
    }
    if (!fresh && v->streams[reuse->stream].count > 0)
        v->streams[reuse->stream].count--;
    v->streams[idx].count++;
    pthread_mutex_unlock(&v->streams_lock);
    if (fresh)
        s->used++;
    reuse->key = key;
    reuse->last_ms = now_ms;
    reuse->stream = (uint32_t)idx;
    pthread_mutex_unlock(&s->lock);
    atomic_fetch_add_explicit(&v->created, 1, memory_order_relaxed);
    return true;
}

void viewers_touch(viewers_t *v, const char *stream_id, char kind, const void *a, size_t alen,
                   const void *b, size_t blen, int64_t now_ms)
{
    uint64_t key = viewers_key(v, stream_id, kind, a, alen, b, blen);
    if (viewers_touch_once(v, key, stream_id, now_ms))
        return;
    /* A cap counts sessions that expired but were not swept yet: sweep
     * (rate-limited) and try once more before refusing. */
    viewers_sweep(v, now_ms);
    if (!viewers_touch_once(v, key, stream_id, now_ms))
        atomic_fetch_add_explicit(&v->refused, 1, memory_order_relaxed);
}

/* Drops expired sessions and rebuilds each stripe's probe chains. */
static void viewers_sweep(viewers_t *v, int64_t now_ms)
{
    int64_t last = atomic_load(&v->swept_ms);
    if (now_ms - last < VIEWERS_SWEEP_MS && now_ms >= last)
        return;
    if (pthread_mutex_trylock(&v->sweep_lock) != 0)
        return;
    atomic_store(&v->swept_ms, now_ms);
    for (size_t i = 0; i < VIEWERS_STRIPES; i++) {
        viewers_stripe_t *s = &v->stripes[i];
        pthread_mutex_lock(&s->lock);
        size_t n = 0;
        bool gone = false;
        for (size_t j = 0; j <= s->mask; j++) {
            viewers_slot_t *slot = &s->slots[j];
            if (slot->key == 0)
                continue;
            if (slot->last_ms + v->ttl_ms < now_ms) {
                pthread_mutex_lock(&v->streams_lock);
                if (v->streams[slot->stream].count > 0)
                    v->streams[slot->stream].count--;
                pthread_mutex_unlock(&v->streams_lock);
                gone = true;
            } else {
                s->scratch[n++] = *slot;
            }
        }
        if (gone) {
            memset(s->slots, 0, (s->mask + 1) * sizeof(*s->slots));
            for (size_t j = 0; j < n; j++) {
                size_t h = (size_t)(s->scratch[j].key / VIEWERS_STRIPES);
                size_t k = 0;
                while (s->slots[(h + k) & s->mask].key != 0)
                    k++;
                s->slots[(h + k) & s->mask] = s->scratch[j];
            }
            s->used = n;
        }
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&v->sweep_lock);
}

uint64_t viewers_count(viewers_t *v, const char *stream_id, int64_t now_ms)
{
    if (!v)
        return 0;
    viewers_sweep(v, now_ms);
    uint64_t n = 0;
    pthread_mutex_lock(&v->streams_lock);
    for (size_t i = 0; i < v->nstreams; i++) {
        if (v->streams[i].count > 0 && strcmp(v->streams[i].id, stream_id) == 0) {
            n = v->streams[i].count;
            break;
        }
    }
    pthread_mutex_unlock(&v->streams_lock);
    return n;
}

int viewers_list(viewers_t *v, int64_t now_ms, origin_stream_viewers_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!v)
        return 0;
    viewers_sweep(v, now_ms);
    pthread_mutex_lock(&v->streams_lock);
    size_t cnt = 0;
    for (size_t i = 0; i < v->nstreams; i++)
        cnt += v->streams[i].count > 0;
    origin_stream_viewers_t *res = cnt ? calloc(cnt, sizeof(*res)) : NULL;
    if (cnt && !res) {
        pthread_mutex_unlock(&v->streams_lock);
        return -ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < v->nstreams && k < cnt; i++) {
        if (v->streams[i].count == 0)
            continue;
        snprintf(res[k].stream_id, sizeof(res[k].stream_id), "%s", v->streams[i].id);
        res[k].viewers = v->streams[i].count;
        k++;
    }
    pthread_mutex_unlock(&v->streams_lock);
    *out = res;
    *n = cnt;
    return 0;
}

void viewers_get_stats(viewers_t *v, int64_t now_ms, uint64_t *alive, uint64_t *created,
                       uint64_t *refused)
{
    *alive = *created = *refused = 0;
    if (!v)
        return;
    viewers_sweep(v, now_ms);
    pthread_mutex_lock(&v->streams_lock);
    for (size_t i = 0; i < v->nstreams; i++)
        *alive += v->streams[i].count;
    pthread_mutex_unlock(&v->streams_lock);
    *created = atomic_load_explicit(&v->created, memory_order_relaxed);
    *refused = atomic_load_explicit(&v->refused, memory_order_relaxed);
}
