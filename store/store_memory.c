/*
 * The embedded memory store: one process, any number of threads.
 *
 * Objects live in a chained hash table keyed by "stream_id/name", each
 * holding a reference to an immutable blob and an optional expiry time. A
 * single rwlock guards the table: commits (the packager, a few per second per
 * stream) take it for writing, gets (origin threads, many) for reading and
 * leave with their own blob reference, so no reader holds the lock while it
 * sends bytes. Expired objects are invisible to gets at once and are freed
 * by a sweep that runs at most once a second inside a commit.
 *
 * The stream registry is a small array under its own lock; keys are kept as
 * SHA-256 hashes only and compared with CRYPTO_memcmp. Remove and rotate
 * change it under the write lock, so an auth sees the old key or the new one,
 * never both or neither.
 *
 * With a state directory (store_set_state_dir) the registry is also kept
 * on disk (store/store_state.c, SQLite). Every change is written first,
 * under the registry write lock, and applied in memory only once it is on
 * disk: a change that cannot be written is refused (-EIO) and the two never
 * disagree. Reads (auth, list) never touch the disk. A --stream seed follows
 * store_seed_decide (store_state_internal.h): a configured key that is unchanged since
 * the last start leaves an API rotation in place; a changed one wins; and
 * store_stream_seed_done removes configured streams the configuration has
 * dropped since the last start.
 *
 * Meta records (store_meta_put) are a chained hash table keyed by
 * "stream_id/field" under their own mutex, each with a monotonic expiry;
 * expired ones are invisible at once and unlinked by a sweep of the whole
 * table once the puts since the last sweep outnumber the records (so a put
 * costs O(1) amortized: the audience's thousands of session records, one
 * put per session per second, made the old list quadratic).
 *
 * One process means one node: leases are always granted (store.c keeps the
 * lease list; ingest settles duplicates within the process), and a commit
 * wakes the stream's watchers directly, after the write lock is released.
 *
 * Bounded memory (store_set_memory_limit): every object records what it
 * costs (blob bytes plus an estimate of the allocations around it) and
 * belongs to its stream's group, which keeps the stream's byte total and the
 * time of its last commit. A commit that takes the total over the limit
 * sweeps what has expired, then evicts, under the same write lock: first the
 * expiring objects of idle groups (no live publisher, i.e. no lease held in
 * this process, or no commit for idle_ms), the group whose last commit is
 * the oldest first; then objects that a STORE_OP_EXPIRE gave their grace
 * time (they left a live playlist), the soonest to expire first. What is
 * left (live windows, playlists, init segments, parts, objects without a
 * TTL) is never evicted: the commit goes through over the limit and a
 * warning is logged at most every 10 s. When a pass finds nothing to evict,
 * the next one waits a second, so a store kept over the limit by live data
 * does not rescan the table on every commit. The list of leased streams is
 * taken (from store.c, under its callback lock) before the write lock, and
 * only when the commit may take the store over the limit. Groups with no objects left are
 * freed at the end of the commit (or drop) that emptied them.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "clock.h"
#include "hash.h"
#include "log.h"
#include "store_internal.h"
#include "store_state_internal.h"

#define MEM_LOG "store"
/* A stream with no commit for this long is idle (store_set_memory_limit). */
#define MEM_IDLE_MS_DEFAULT 10000
/* Over the limit with nothing to evict: warn at most this often, and look
 * again for something to evict at most this often. */
#define MEM_WARN_EVERY_MS 10000
#define MEM_RETRY_MS 1000
/* Per-allocation overhead of glibc malloc, for the cost estimate. */
#define MEM_MALLOC_OVERHEAD 16

/* The objects of one stream: what they cost and when it last committed. */
typedef struct mem_group {
    struct mem_group *next;
    int64_t last_commit_ms; /* monotonic */
    size_t nobjects;
    uint64_t bytes;
    char id[STORE_ID_MAX];
} mem_group_t;

typedef struct mem_object {
    struct mem_object *next;
    mem_group_t *group;
    uint64_t hash;
    int64_t expires_ms; /* monotonic; 0 = never */
    size_t cost;        /* bytes counted for it in the store's total */
    bool left;          /* its expiry came from STORE_OP_EXPIRE: out of the playlist */
    blob_t *blob;
    char key[]; /* "stream_id/name" */
} mem_object_t;

typedef struct mem_stream {
    char id[STORE_ID_MAX];
    char *name;
    int64_t created_ms;
    int record; /* STORE_RECORD_DEFAULT, _OFF, _ON */
    char ladder[STORE_LADDER_MAX]; /* "": none */
    char *outputs;                 /* simulcast outputs, opaque text; NULL: none */
    uint8_t key_hash[32];
    bool seeded;           /* from the configuration: seed_hash is its key there */
    bool seen;             /* seeded by this process (store_stream_seed_done) */
    uint8_t seed_hash[32];
} mem_stream_t;

typedef struct mem_meta {
    struct mem_meta *next; /* in its bucket */
    uint64_t hash;         /* mem_hash(stream_id, field) */
    int64_t expires_ms;    /* monotonic */
    char *value;
    char stream_id[STORE_ID_MAX];
    char field[]; /* NUL-terminated */
} mem_meta_t;

typedef struct store_memory {
    store_t base;
    pthread_rwlock_t lock;
    mem_object_t **buckets;
    size_t nbuckets;
    size_t count;
    int64_t last_sweep_ms;
    /* The memory bound; all under `lock`. */
    mem_group_t *groups;
    uint64_t bytes;        /* sum of the objects' costs */
    uint64_t limit;        /* 0: unlimited */
    int64_t idle_ms;
    uint64_t evictions;
    int64_t retry_after_ms; /* no eviction pass before this (nothing was evictable) */
    int64_t last_warn_ms;
    /* Copies of bytes and limit readable without the lock: whether a commit
     * should fetch the list of leased streams first. */
    _Atomic uint64_t bytes_hint, limit_hint;

    pthread_rwlock_t reg_lock;
    mem_stream_t *streams;
    size_t nstreams;
    size_t cap_streams;
    store_state_t *state; /* NULL: the registry is in memory only; under reg_lock */

    pthread_mutex_t meta_lock;
    mem_meta_t **meta; /* meta_nbuckets chains (a power of two) */
    size_t meta_nbuckets;
    size_t meta_count; /* records in the table, expired or not */
    size_t meta_puts;  /* since the last sweep */

    char node_id[128];
} store_memory_t;

/* "id/name" (common/hash.h). */
static uint64_t mem_hash(const char *stream_id, const char *name)
{
    uint64_t h = hash_bytes(HASH_FNV1A_INIT, stream_id, strlen(stream_id));
    h = hash_bytes(h, "/", 1);
    return hash_mix(hash_bytes(h, name, strlen(name)));
}

static bool mem_key_matches(const mem_object_t *o, const char *stream_id, const char *name)
{
    size_t il = strlen(stream_id);
    return strncmp(o->key, stream_id, il) == 0 && o->key[il] == '/' &&
           strcmp(o->key + il + 1, name) == 0;
}

static void mem_object_free(mem_object_t *o)
{
    blob_unref(o->blob);
    free(o);
}

/* What an object counts for: the blob (header and bytes), the object with
 * its key, and an allocator overhead for each of the two. */
static size_t mem_object_cost(const mem_object_t *o)
{
    return sizeof(blob_t) + o->blob->size + sizeof(*o) + strlen(o->key) + 1 +
           2 * MEM_MALLOC_OVERHEAD;
}

/* Accounts for o, newly in the table as a member of g. Write lock held. */
static void mem_object_added(store_memory_t *m, mem_object_t *o, mem_group_t *g)
{
    o->group = g;
    g->nobjects++;
    g->bytes += o->cost;
    m->bytes += o->cost;
    m->count++;
}

/* Frees o, already unlinked from its chain, and takes it out of the
 * accounting. Its group stays (even empty) until mem_groups_gc. */
static void mem_object_drop(store_memory_t *m, mem_object_t *o)
{
    o->group->nobjects--;
    o->group->bytes -= o->cost;
    m->bytes -= o->cost;
    m->count--;
    mem_object_free(o);
}

static mem_group_t *mem_group_find(store_memory_t *m, const char *stream_id)
{
    for (mem_group_t *g = m->groups; g; g = g->next)
        if (strcmp(g->id, stream_id) == 0)
            return g;
    return NULL;
}

/* Frees the groups that have no object left. Write lock held. */
static void mem_groups_gc(store_memory_t *m)
{
    for (mem_group_t **pp = &m->groups; *pp;) {
        mem_group_t *g = *pp;
        if (g->nobjects == 0) {
            *pp = g->next;
            free(g);
        } else {
            pp = &g->next;
        }
    }
}

/* Unlinks o from its bucket chain. Write lock held. */
static void mem_unlink(store_memory_t *m, mem_object_t *o)
{
    mem_object_t **pp = &m->buckets[o->hash & (m->nbuckets - 1)];
    while (*pp != o)
        pp = &(*pp)->next;
    *pp = o->next;
}

/* Doubles the table when the load factor passes 1. Write lock held. */
static void mem_grow(store_memory_t *m)
{
    size_t nb = m->nbuckets * 2;
    mem_object_t **b = calloc(nb, sizeof(*b));
    if (!b)
        return; /* keep the longer chains; still correct */
    for (size_t i = 0; i < m->nbuckets; i++) {
        mem_object_t *o = m->buckets[i];
        while (o) {
            mem_object_t *next = o->next;
            o->next = b[o->hash & (nb - 1)];
            b[o->hash & (nb - 1)] = o;
            o = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
}

static mem_object_t **mem_find(store_memory_t *m, const char *stream_id, const char *name,
                               uint64_t h)
{
    mem_object_t **pp = &m->buckets[h & (m->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == h && mem_key_matches(*pp, stream_id, name))
            return pp;
    return pp;
}

static void mem_sweep(store_memory_t *m, int64_t now)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        mem_object_t **pp = &m->buckets[i];
        while (*pp) {
            mem_object_t *o = *pp;
            if (o->expires_ms && o->expires_ms <= now) {
                *pp = o->next;
                mem_object_drop(m, o);
            } else {
                pp = &o->next;
            }
        }
    }
    m->last_sweep_ms = now;
}

/* What an eviction pass did, for the log line written after the lock. */
typedef struct mem_evict_report {
    char idle_ids[4][STORE_ID_MAX]; /* the first idle streams evicted */
    size_t nidle;                   /* idle streams evicted */
    uint64_t objects, bytes;        /* evicted */
    bool warn;                      /* still over the limit: warn now */
    uint64_t over_bytes, limit;
} mem_evict_report_t;

static int mem_group_cmp(const void *a, const void *b)
{
    const mem_group_t *x = *(mem_group_t *const *)a, *y = *(mem_group_t *const *)b;
    if (x->last_commit_ms != y->last_commit_ms)
        return x->last_commit_ms < y->last_commit_ms ? -1 : 1;
    return strcmp(x->id, y->id);
}

static int mem_object_expiry_cmp(const void *a, const void *b)
{
    const mem_object_t *x = *(mem_object_t *const *)a, *y = *(mem_object_t *const *)b;
    if (x->expires_ms != y->expires_ms)
        return x->expires_ms < y->expires_ms ? -1 : 1;
    return strcmp(x->key, y->key);
}

static void mem_evict(store_memory_t *m, mem_object_t *o, mem_evict_report_t *rep)
{
    mem_unlink(m, o);
    rep->objects++;
    rep->bytes += o->cost;
    m->evictions++;
    mem_object_drop(m, o);
}

/* Evicts every expiring object of g. Write lock held. */
static void mem_evict_group(store_memory_t *m, mem_group_t *g, mem_evict_report_t *rep)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        mem_object_t **pp = &m->buckets[i];
        while (*pp) {
            mem_object_t *o = *pp;
            if (o->group == g && o->expires_ms) {
                *pp = o->next;
                rep->objects++;
                rep->bytes += o->cost;
                m->evictions++;
                mem_object_drop(m, o);
            } else {
                pp = &o->next;
            }
        }
    }
}

/* The streams with a live publisher in this process (store_leases_list). */
typedef struct mem_leased {
    bool known; /* the list was taken */
    char *ids;
    size_t n;
} mem_leased_t;

static bool mem_is_idle(const store_memory_t *m, const mem_group_t *g, const mem_leased_t *l,
                        int64_t now)
{
    if (now - g->last_commit_ms >= m->idle_ms)
        return true; /* a publisher that stalled, or none */
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->ids + i * STORE_ID_MAX, g->id) == 0)
            return false;
    return true;
}

/* Brings the store back under its limit if it can (the order is in the
 * file comment). Write lock held. */
static void mem_enforce(store_memory_t *m, int64_t now, const mem_leased_t *leased,
                        mem_evict_report_t *rep)
{
    if (!m->limit || m->bytes <= m->limit || now < m->retry_after_ms || !leased->known)
        return;
    mem_sweep(m, now);

    /* 1. Ended or idle streams, the one whose last commit is the oldest first. */
    size_t ng = 0;
    for (mem_group_t *g = m->groups; g; g = g->next)
        ng++;
    mem_group_t **idle = ng ? malloc(ng * sizeof(*idle)) : NULL;
    size_t ni = 0;
    if (idle) {
        for (mem_group_t *g = m->groups; g; g = g->next)
            if (mem_is_idle(m, g, leased, now))
                idle[ni++] = g;
        qsort(idle, ni, sizeof(*idle), mem_group_cmp);
        for (size_t i = 0; i < ni && m->bytes > m->limit; i++) {
            uint64_t before = rep->objects;
            mem_evict_group(m, idle[i], rep);
            if (rep->objects > before) {
                if (rep->nidle < sizeof(rep->idle_ids) / sizeof(rep->idle_ids[0]))
                    snprintf(rep->idle_ids[rep->nidle], STORE_ID_MAX, "%s", idle[i]->id);
                rep->nidle++;
            }
        }
        free(idle);
    }

    /* 2. Objects kept only for their grace time, the soonest due first. */
    if (m->bytes > m->limit) {
        size_t nl = 0;
        for (size_t i = 0; i < m->nbuckets; i++)
            for (mem_object_t *o = m->buckets[i]; o; o = o->next)
                if (o->left && o->expires_ms)
                    nl++;
        mem_object_t **left = nl ? malloc(nl * sizeof(*left)) : NULL;
        if (left) {
            size_t k = 0;
            for (size_t i = 0; i < m->nbuckets; i++)
                for (mem_object_t *o = m->buckets[i]; o; o = o->next)
                    if (o->left && o->expires_ms)
                        left[k++] = o;
            qsort(left, k, sizeof(*left), mem_object_expiry_cmp);
            for (size_t i = 0; i < k && m->bytes > m->limit; i++)
                mem_evict(m, left[i], rep);
            free(left);
        }
    }

    /* 3. Only what must stay is left: accept it, say so now and then. */
    if (m->bytes > m->limit) {
        m->retry_after_ms = now + MEM_RETRY_MS;
        if (now - m->last_warn_ms >= MEM_WARN_EVERY_MS || m->last_warn_ms == 0) {
            m->last_warn_ms = now;
            rep->warn = true;
            rep->over_bytes = m->bytes;
            rep->limit = m->limit;
        }
    }
}

static void mem_evict_log(const mem_evict_report_t *rep)
{
    if (rep->nidle > 0)
        log_info(MEM_LOG,
                 "memory limit: evicted %zu idle stream%s (%s%s%s%s%s%s%s%s), %" PRIu64
                 " objects, %" PRIu64 " bytes in all",
                 rep->nidle, rep->nidle == 1 ? "" : "s", rep->idle_ids[0],
                 rep->nidle > 1 ? ", " : "", rep->nidle > 1 ? rep->idle_ids[1] : "",
                 rep->nidle > 2 ? ", " : "", rep->nidle > 2 ? rep->idle_ids[2] : "",
                 rep->nidle > 3 ? ", " : "", rep->nidle > 3 ? rep->idle_ids[3] : "",
                 rep->nidle > 4 ? ", ..." : "", rep->objects, rep->bytes);
    else if (rep->objects > 0)
        log_debug(MEM_LOG, "memory limit: evicted %" PRIu64 " objects past their playlists, %" PRIu64
                  " bytes", rep->objects, rep->bytes);
    if (rep->warn)
        log_warn(MEM_LOG,
                 "memory limit: %" PRIu64 " bytes held, over the limit of %" PRIu64
                 " with only live data left (live windows, playlists, init segments, parts); "
                 "accepting it (raise --store-memory-limit)",
                 rep->over_bytes, rep->limit);
}

static int mem_commit(store_t *st, const char *stream_id, const store_op_t *ops, size_t n)
{
    store_memory_t *m = (store_memory_t *)st;
    int64_t now = clock_mono_ms();
    size_t idlen = strlen(stream_id);

    /* Allocate every new object (and the stream's group, in case it has
     * none yet) before taking the lock, so that a failure leaves nothing
     * half-applied. */
    mem_object_t **fresh = calloc(n ? n : 1, sizeof(*fresh));
    mem_group_t *spare = calloc(1, sizeof(*spare));
    if (!fresh || !spare) {
        free(fresh);
        free(spare);
        return -ENOMEM;
    }
    snprintf(spare->id, sizeof(spare->id), "%s", stream_id);
    for (size_t i = 0; i < n; i++) {
        if (ops[i].kind != STORE_OP_PUT)
            continue;
        size_t nl = strlen(ops[i].name);
        mem_object_t *o = malloc(sizeof(*o) + idlen + 1 + nl + 1);
        if (!o) {
            for (size_t j = 0; j < i; j++)
                if (fresh[j])
                    mem_object_free(fresh[j]);
            free(fresh);
            free(spare);
            return -ENOMEM;
        }
        memcpy(o->key, stream_id, idlen);
        o->key[idlen] = '/';
        memcpy(o->key + idlen + 1, ops[i].name, nl + 1);
        o->hash = mem_hash(stream_id, ops[i].name);
        o->expires_ms = ops[i].ttl_ms > 0 ? now + ops[i].ttl_ms : 0;
        o->left = false;
        o->blob = blob_ref(ops[i].blob);
        o->next = NULL;
        o->group = NULL;
        o->cost = mem_object_cost(o);
        fresh[i] = o;
    }

    /* Which streams are live, if this commit may take the store over its
     * limit (store_leases_list must not run under our lock). */
    mem_leased_t leased = {.known = false, .ids = NULL, .n = 0};
    uint64_t limit = atomic_load_explicit(&m->limit_hint, memory_order_relaxed);
    if (limit) {
        uint64_t incoming = 0;
        for (size_t i = 0; i < n; i++)
            if (fresh[i])
                incoming += fresh[i]->cost;
        if (atomic_load_explicit(&m->bytes_hint, memory_order_relaxed) + incoming > limit)
            leased.known = store_leases_list(st, &leased.ids, &leased.n) == 0;
    }

    mem_evict_report_t rep;
    memset(&rep, 0, sizeof(rep));
    pthread_rwlock_wrlock(&m->lock);
    mem_group_t *g = mem_group_find(m, stream_id);
    if (!g) {
        g = spare;
        spare = NULL;
        g->next = m->groups;
        m->groups = g;
    }
    g->last_commit_ms = now;
    for (size_t i = 0; i < n; i++) {
        const store_op_t *op = &ops[i];
        uint64_t h = mem_hash(stream_id, op->name);
        mem_object_t **pp = mem_find(m, stream_id, op->name, h);
        switch (op->kind) {
        case STORE_OP_PUT:
            if (*pp) { /* replace in place */
                mem_object_t *old = *pp;
                fresh[i]->next = old->next;
                *pp = fresh[i];
                mem_object_drop(m, old);
            } else {
                *pp = fresh[i];
            }
            mem_object_added(m, fresh[i], g);
            break;
        case STORE_OP_EXPIRE:
            if (*pp) {
                (*pp)->expires_ms = op->ttl_ms > 0 ? now + op->ttl_ms : 0;
                (*pp)->left = op->ttl_ms > 0;
            }
            break;
        case STORE_OP_DELETE:
            if (*pp) {
                mem_object_t *old = *pp;
                *pp = old->next;
                mem_object_drop(m, old);
            }
            break;
        }
    }
    if (m->count > m->nbuckets)
        mem_grow(m);
    if (now - m->last_sweep_ms >= 1000)
        mem_sweep(m, now);
    mem_enforce(m, now, &leased, &rep);
    mem_groups_gc(m);
    atomic_store_explicit(&m->bytes_hint, m->bytes, memory_order_relaxed);
    pthread_rwlock_unlock(&m->lock);
    free(leased.ids);
    free(fresh);
    free(spare);
    mem_evict_log(&rep);
    store_notify_changed(st, stream_id);
    return 0;
}

static int mem_set_memory_limit(store_t *st, uint64_t limit_bytes, int64_t idle_ms)
{
    store_memory_t *m = (store_memory_t *)st;
    pthread_rwlock_wrlock(&m->lock);
    m->limit = limit_bytes;
    atomic_store_explicit(&m->limit_hint, limit_bytes, memory_order_relaxed);
    m->idle_ms = idle_ms > 0 ? idle_ms : MEM_IDLE_MS_DEFAULT;
    m->retry_after_ms = 0;
    pthread_rwlock_unlock(&m->lock);
    return 0;
}

static void mem_memory_stats(store_t *st, store_stats_t *out)
{
    store_memory_t *m = (store_memory_t *)st;
    pthread_rwlock_rdlock(&m->lock);
    out->memory_bytes = m->bytes;
    out->memory_limit = m->limit;
    out->evictions = m->evictions;
    pthread_rwlock_unlock(&m->lock);
}

static int mem_get(store_t *st, const char *stream_id, const char *name, blob_t **out)
{
    store_memory_t *m = (store_memory_t *)st;
    uint64_t h = mem_hash(stream_id, name);
    int64_t now = clock_mono_ms();
    int ret = -ENOENT;
    pthread_rwlock_rdlock(&m->lock);
    mem_object_t **pp = mem_find(m, stream_id, name, h);
    if (*pp && (!(*pp)->expires_ms || (*pp)->expires_ms > now)) {
        *out = blob_ref((*pp)->blob);
        ret = 0;
    }
    pthread_rwlock_unlock(&m->lock);
    return ret;
}

static int mem_drop_objects(store_t *st, const char *stream_id)
{
    store_memory_t *m = (store_memory_t *)st;
    size_t il = strlen(stream_id);
    pthread_rwlock_wrlock(&m->lock);
    for (size_t i = 0; i < m->nbuckets; i++) {
        mem_object_t **pp = &m->buckets[i];
        while (*pp) {
            mem_object_t *o = *pp;
            if (strncmp(o->key, stream_id, il) == 0 && o->key[il] == '/') {
                *pp = o->next;
                mem_object_drop(m, o);
            } else {
                pp = &o->next;
            }
        }
    }
    mem_groups_gc(m);
    atomic_store_explicit(&m->bytes_hint, m->bytes, memory_order_relaxed);
    pthread_rwlock_unlock(&m->lock);
    return 0;
}

static int mem_ping(store_t *st)
{
    (void)st;
    return 0;
}

/* Writes s as it will be to the state directory, if there is one. 0 or
 * -EIO. reg_lock held for writing. */
static int mem_persist(store_memory_t *m, const mem_stream_t *s)
{
    if (!m->state)
        return 0;
    store_state_row_t row;
    memset(&row, 0, sizeof(row));
    snprintf(row.id, sizeof(row.id), "%s", s->id);
    snprintf(row.name, sizeof(row.name), "%s", s->name);
    memcpy(row.key_hash, s->key_hash, 32);
    row.created_ms = s->created_ms;
    row.record = s->record;
    snprintf(row.ladder, sizeof(row.ladder), "%s", s->ladder);
    row.outputs = s->outputs;
    row.seeded = s->seeded;
    memcpy(row.seed_hash, s->seed_hash, 32);
    int rc = store_state_put(m->state, &row);
    OPENSSL_cleanse(&row, sizeof(row));
    return rc;
}

/* Room for one more registry entry. reg_lock held for writing. */
static int mem_streams_reserve(store_memory_t *m)
{
    if (m->nstreams < m->cap_streams)
        return 0;
    size_t cap = m->cap_streams ? m->cap_streams * 2 : 8;
    mem_stream_t *s = realloc(m->streams, cap * sizeof(*s));
    if (!s)
        return -ENOMEM;
    m->streams = s;
    m->cap_streams = cap;
    return 0;
}

/* Persists s (owning its name) and appends it; on failure s->name is
 * freed. reg_lock held for writing, room reserved. */
static int mem_streams_append(store_memory_t *m, mem_stream_t *s)
{
    int ret = mem_persist(m, s);
    if (ret < 0) {
        free(s->name);
        return ret;
    }
    m->streams[m->nstreams++] = *s;
    return 0;
}

static int mem_stream_add(store_t *st, const char *id, const char *name, const uint8_t hash[32],
                          int64_t created_ms)
{
    store_memory_t *m = (store_memory_t *)st;
    int ret = 0;
    char *name_copy = strdup(name);
    if (!name_copy)
        return -ENOMEM;
    pthread_rwlock_wrlock(&m->reg_lock);
    for (size_t i = 0; i < m->nstreams; i++) {
        if (strcmp(m->streams[i].id, id) == 0 ||
            CRYPTO_memcmp(m->streams[i].key_hash, hash, 32) == 0) {
            ret = -EEXIST;
            goto out;
        }
    }
    if ((ret = mem_streams_reserve(m)) < 0)
        goto out;
    mem_stream_t s;
    memset(&s, 0, sizeof(s));
    snprintf(s.id, sizeof(s.id), "%s", id);
    s.name = name_copy;
    name_copy = NULL;
    s.created_ms = created_ms;
    s.record = STORE_RECORD_DEFAULT;
    memcpy(s.key_hash, hash, 32);
    ret = mem_streams_append(m, &s);
out:
    pthread_rwlock_unlock(&m->reg_lock);
    free(name_copy);
    return ret;
}

static int mem_stream_auth(store_t *st, const uint8_t hash[32], char *id_out)
{
    store_memory_t *m = (store_memory_t *)st;
    int ret = -ENOENT;
    pthread_rwlock_rdlock(&m->reg_lock);
    /* Visit every entry whatever matches, so timing says nothing. */
    for (size_t i = 0; i < m->nstreams; i++) {
        if (CRYPTO_memcmp(m->streams[i].key_hash, hash, 32) == 0) {
            snprintf(id_out, STORE_ID_MAX, "%s", m->streams[i].id);
            ret = 0;
        }
    }
    pthread_rwlock_unlock(&m->reg_lock);
    return ret;
}

static int mem_stream_exists(store_t *st, const char *id)
{
    store_memory_t *m = (store_memory_t *)st;
    int ret = -ENOENT;
    pthread_rwlock_rdlock(&m->reg_lock);
    for (size_t i = 0; i < m->nstreams; i++)
        if (strcmp(m->streams[i].id, id) == 0)
            ret = 0;
    pthread_rwlock_unlock(&m->reg_lock);
    return ret;
}

/* Registry slot of id, or -1. reg_lock held. */
static ssize_t mem_stream_find(const store_memory_t *m, const char *id)
{
    for (size_t i = 0; i < m->nstreams; i++)
        if (strcmp(m->streams[i].id, id) == 0)
            return (ssize_t)i;
    return -1;
}

static void mem_info_fill(store_stream_info_t *out, const mem_stream_t *s)
{
    snprintf(out->id, sizeof(out->id), "%s", s->id);
    snprintf(out->name, sizeof(out->name), "%s", s->name);
    out->created_ms = s->created_ms;
    out->record = s->record;
    snprintf(out->ladder, sizeof(out->ladder), "%s", s->ladder);
}

static int mem_stream_get(store_t *st, const char *id, store_stream_info_t *out)
{
    store_memory_t *m = (store_memory_t *)st;
    int ret = -ENOENT;
    pthread_rwlock_rdlock(&m->reg_lock);
    ssize_t i = mem_stream_find(m, id);
    if (i >= 0) {
        mem_info_fill(out, &m->streams[i]);
        ret = 0;
    }
    pthread_rwlock_unlock(&m->reg_lock);
    return ret;
}

static int mem_stream_list(store_t *st, store_stream_info_t **out, size_t *n)
{
    store_memory_t *m = (store_memory_t *)st;
    int ret = 0;
    pthread_rwlock_rdlock(&m->reg_lock);
    if (m->nstreams) {
        *out = calloc(m->nstreams, sizeof(**out));
        if (!*out) {
            ret = -ENOMEM;
        } else {
            for (size_t i = 0; i < m->nstreams; i++)
                mem_info_fill(&(*out)[i], &m->streams[i]);
            *n = m->nstreams;
        }
    }
    pthread_rwlock_unlock(&m->reg_lock);
    return ret;
}

static int mem_stream_remove(store_t *st, const char *id)
{
    store_memory_t *m = (store_memory_t *)st;
    int ret = -ENOENT;
    pthread_rwlock_wrlock(&m->reg_lock);
    ssize_t i = mem_stream_find(m, id);
    if (i >= 0 && m->state && store_state_remove(m->state, id) < 0) {
        ret = -EIO;
    } else if (i >= 0) {
        free(m->streams[i].name);
        free(m->streams[i].outputs);
        OPENSSL_cleanse(m->streams[i].key_hash, 32);
        m->streams[i] = m->streams[m->nstreams - 1]; /* order is store.c's business */
        m->nstreams--;
        ret = 0;
    }
    pthread_rwlock_unlock(&m->reg_lock);
    return ret;
}

static int mem_stream_rotate(store_t *st, const char *id, const uint8_t hash[32])
{
    store_memory_t *m = (store_memory_t *)st;
    int ret = 0;
    pthread_rwlock_wrlock(&m->reg_lock);
    ssize_t self = mem_stream_find(m, id);
    if (self < 0) {
        ret = -ENOENT;
        goto out;
    }
    for (size_t i = 0; i < m->nstreams; i++) {
        if ((ssize_t)i != self && CRYPTO_memcmp(m->streams[i].key_hash, hash, 32) == 0) {
            ret = -EEXIST;
            goto out;
        }
    }
    mem_stream_t next = m->streams[self];
    memcpy(next.key_hash, hash, 32);
    if ((ret = mem_persist(m, &next)) == 0)
        memcpy(m->streams[self].key_hash, hash, 32);
out:
    pthread_rwlock_unlock(&m->reg_lock);
    return ret;
}

/* Changes one stream's entry with edit(), persisted first (the state
 * directory), then adopted: on a failed write nothing changes. */
static int mem_stream_update(store_memory_t *m, const char *id,
                             void (*edit)(mem_stream_t *s, const void *arg), const void *arg)
{
    int ret = -ENOENT;
    pthread_rwlock_wrlock(&m->reg_lock);
    ssize_t i = mem_stream_find(m, id);
    if (i >= 0) {
        mem_stream_t next = m->streams[i];
        edit(&next, arg);
        ret = mem_persist(m, &next);
        if (ret == 0)
            m->streams[i] = next;
    }
    pthread_rwlock_unlock(&m->reg_lock);
    return ret;
}

static void mem_edit_record(mem_stream_t *s, const void *arg)
{
    s->record = *(const int *)arg;
}

static void mem_edit_ladder(mem_stream_t *s, const void *arg)
{
    snprintf(s->ladder, sizeof(s->ladder), "%s", (const char *)arg);
}

static int mem_stream_set_record(store_t *st, const char *id, int record)
{
    return mem_stream_update((store_memory_t *)st, id, mem_edit_record, &record);
}

static int mem_stream_set_ladder(store_t *st, const char *id, const char *ladder)
{
    return mem_stream_update((store_memory_t *)st, id, mem_edit_ladder, ladder);
}

/* Like mem_stream_update, for the one field kept on the heap: the new text
 * is made first, the old one freed only once the new one is adopted. */
static int mem_stream_set_outputs(store_t *st, const char *id, const char *text)
{
    store_memory_t *m = (store_memory_t *)st;
    char *copy = NULL;
    if (text[0] && !(copy = strdup(text)))
        return -ENOMEM;
    int ret = -ENOENT;
    pthread_rwlock_wrlock(&m->reg_lock);
    ssize_t i = mem_stream_find(m, id);
    if (i >= 0) {
        mem_stream_t next = m->streams[i];
        next.outputs = copy;
        ret = mem_persist(m, &next);
        if (ret == 0) {
            free(m->streams[i].outputs);
            m->streams[i].outputs = copy;
            copy = NULL;
        }
    }
    pthread_rwlock_unlock(&m->reg_lock);
    free(copy);
    return ret;
}

static int mem_stream_get_outputs(store_t *st, const char *id, char **text_out)
{
    store_memory_t *m = (store_memory_t *)st;
    int ret = -ENOENT;
    pthread_rwlock_rdlock(&m->reg_lock);
    ssize_t i = mem_stream_find(m, id);
    if (i >= 0) {
        const char *s = m->streams[i].outputs;
        *text_out = strdup(s ? s : "");
        ret = *text_out ? 0 : -ENOMEM;
    }
    pthread_rwlock_unlock(&m->reg_lock);
    return ret;
}

/* A --stream seed (store_seed_decide). */
static int mem_stream_seed(store_t *st, const char *id, const uint8_t hash[32])
{
    store_memory_t *m = (store_memory_t *)st;
    int ret = 0;
    store_seed_action_t action = STORE_SEED_KEEP;
    bool api_key_kept = false;
    pthread_rwlock_wrlock(&m->reg_lock);
    ssize_t self = mem_stream_find(m, id);
    for (size_t i = 0; i < m->nstreams; i++) {
        if ((ssize_t)i != self && CRYPTO_memcmp(m->streams[i].key_hash, hash, 32) == 0) {
            ret = -EEXIST;
            goto out;
        }
    }
    mem_stream_t *cur = self >= 0 ? &m->streams[self] : NULL;
    action = store_seed_decide(cur != NULL, cur ? cur->key_hash : hash, cur && cur->seeded,
                               cur ? cur->seed_hash : hash, hash);
    if (action == STORE_SEED_ADD) {
        if ((ret = mem_streams_reserve(m)) < 0)
            goto out;
        mem_stream_t s;
        memset(&s, 0, sizeof(s));
        snprintf(s.id, sizeof(s.id), "%s", id);
        if (!(s.name = strdup(id))) {
            ret = -ENOMEM;
            goto out;
        }
        s.record = STORE_RECORD_DEFAULT;
        memcpy(s.key_hash, hash, 32);
        s.seeded = s.seen = true;
        memcpy(s.seed_hash, hash, 32);
        ret = mem_streams_append(m, &s);
        goto out;
    }
    mem_stream_t next = *cur;
    next.seeded = next.seen = true;
    memcpy(next.seed_hash, hash, 32);
    if (action == STORE_SEED_REKEY)
        memcpy(next.key_hash, hash, 32);
    else
        api_key_kept = CRYPTO_memcmp(cur->key_hash, hash, 32) != 0;
    /* Written only when something on disk changes (a start with the same
     * configuration writes nothing). */
    if (!cur->seeded || CRYPTO_memcmp(cur->seed_hash, hash, 32) != 0 ||
        action == STORE_SEED_REKEY)
        ret = mem_persist(m, &next);
    if (ret == 0)
        *cur = next;
out:
    pthread_rwlock_unlock(&m->reg_lock);
    if (ret == 0 && action == STORE_SEED_REKEY)
        log_info(MEM_LOG, "stream '%s': the key from the configuration replaces the stored one",
                 id);
    else if (ret == 0 && api_key_kept)
        log_info(MEM_LOG, "stream '%s': keeps the key it was given through the API (rotate-key); "
                 "the configuration's key for it is unchanged and stays refused", id);
    return ret;
}

static int mem_stream_seed_done(store_t *st, size_t *removed)
{
    store_memory_t *m = (store_memory_t *)st;
    int ret = 0;
    char gone[4][STORE_ID_MAX];
    size_t ngone = 0;
    pthread_rwlock_wrlock(&m->reg_lock);
    for (size_t i = 0; i < m->nstreams;) {
        mem_stream_t *s = &m->streams[i];
        if (!s->seeded || s->seen) {
            i++;
            continue;
        }
        if (m->state && (ret = store_state_remove(m->state, s->id)) < 0)
            break;
        if (ngone < sizeof(gone) / sizeof(gone[0]))
            snprintf(gone[ngone], STORE_ID_MAX, "%s", s->id);
        ngone++;
        free(s->name);
        free(s->outputs);
        OPENSSL_cleanse(s->key_hash, 32);
        m->streams[i] = m->streams[m->nstreams - 1];
        m->nstreams--;
    }
    pthread_rwlock_unlock(&m->reg_lock);
    for (size_t i = 0; i < ngone && i < sizeof(gone) / sizeof(gone[0]); i++)
        log_info(MEM_LOG, "stream '%s' removed: it came from the configuration, which no "
                 "longer has it", gone[i]);
    *removed = ngone;
    return ret;
}

static int mem_set_state_dir(store_t *st, const char *dir, size_t *loaded, char *why,
                             size_t whylen)
{
    store_memory_t *m = (store_memory_t *)st;
    store_state_t *state = NULL;
    store_state_row_t *rows = NULL;
    size_t n = 0;
    int ret = 0;
    pthread_rwlock_wrlock(&m->reg_lock);
    if (m->state || m->nstreams) {
        snprintf(why, whylen, "the registry is already in use");
        ret = -EBUSY;
        goto out;
    }
    if ((ret = store_state_open(dir, &state, why, whylen)) < 0)
        goto out;
    if ((ret = store_state_load(state, &rows, &n)) < 0) {
        snprintf(why, whylen, "cannot read %s", store_state_path(state));
        goto out;
    }
    if (n) {
        m->streams = calloc(n, sizeof(*m->streams));
        if (!m->streams) {
            snprintf(why, whylen, "out of memory");
            ret = -ENOMEM;
            goto out;
        }
        m->cap_streams = n;
    }
    for (size_t i = 0; i < n; i++) {
        mem_stream_t *s = &m->streams[m->nstreams];
        if (!(s->name = strdup(rows[i].name))) {
            snprintf(why, whylen, "out of memory");
            ret = -ENOMEM;
            goto out;
        }
        snprintf(s->id, sizeof(s->id), "%s", rows[i].id);
        s->created_ms = rows[i].created_ms;
        s->record = rows[i].record;
        snprintf(s->ladder, sizeof(s->ladder), "%s", rows[i].ladder);
        s->outputs = rows[i].outputs; /* taken */
        rows[i].outputs = NULL;
        memcpy(s->key_hash, rows[i].key_hash, 32);
        s->seeded = rows[i].seeded;
        memcpy(s->seed_hash, rows[i].seed_hash, 32);
        m->nstreams++;
    }
    m->state = state;
    state = NULL;
    *loaded = n;
    log_info(MEM_LOG, "stream registry: %s (%zu stream%s loaded)", store_state_path(m->state), n,
             n == 1 ? "" : "s");
out:
    if (ret < 0) {
        for (size_t i = 0; i < m->nstreams; i++) {
            free(m->streams[i].name);
            free(m->streams[i].outputs);
        }
        free(m->streams);
        m->streams = NULL;
        m->nstreams = m->cap_streams = 0;
    }
    pthread_rwlock_unlock(&m->reg_lock);
    for (size_t i = 0; rows && i < n; i++) {
        free(rows[i].outputs);
        rows[i].outputs = NULL;
    }
    if (rows)
        OPENSSL_cleanse(rows, n * sizeof(*rows));
    store_state_rows_free(rows, n);
    store_state_close(state);
    return ret;
}

/* ---- meta records ---------------------------------------------------------- */

#define MEM_META_BUCKETS_MIN 64
#define MEM_META_SWEEP_MIN 1024 /* puts between two sweeps, at least */

static void mem_meta_free(mem_meta_t *e)
{
    free(e->value);
    free(e);
}

/* Unlinks and frees every expired record. meta_lock held. */
static void mem_meta_sweep(store_memory_t *m, int64_t now)
{
    for (size_t i = 0; i < m->meta_nbuckets; i++) {
        for (mem_meta_t **pp = &m->meta[i]; *pp;) {
            mem_meta_t *e = *pp;
            if (e->expires_ms <= now) {
                *pp = e->next;
                mem_meta_free(e);
                m->meta_count--;
            } else {
                pp = &e->next;
            }
        }
    }
    m->meta_puts = 0;
}

/* Doubles the table when the load factor passes 1. meta_lock held. */
static void mem_meta_grow(store_memory_t *m)
{
    size_t nb = m->meta_nbuckets ? m->meta_nbuckets * 2 : MEM_META_BUCKETS_MIN;
    mem_meta_t **b = calloc(nb, sizeof(*b));
    if (!b)
        return; /* keep the longer chains; still correct */
    for (size_t i = 0; i < m->meta_nbuckets; i++) {
        mem_meta_t *e = m->meta[i];
        while (e) {
            mem_meta_t *next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    free(m->meta);
    m->meta = b;
    m->meta_nbuckets = nb;
}

/* The record of (stream_id, field), expired or not, or NULL. meta_lock held. */
static mem_meta_t *mem_meta_find(store_memory_t *m, const char *stream_id, const char *field,
                                 uint64_t h)
{
    if (!m->meta_nbuckets)
        return NULL;
    for (mem_meta_t *e = m->meta[h & (m->meta_nbuckets - 1)]; e; e = e->next) {
        if (e->hash == h && strcmp(e->stream_id, stream_id) == 0 && strcmp(e->field, field) == 0)
            return e;
    }
    return NULL;
}

static int mem_meta_put(store_t *st, const char *stream_id, const char *field, const char *value,
                        int64_t ttl_ms, const char *final_prefix)
{
    store_memory_t *m = (store_memory_t *)st;
    uint64_t h = mem_hash(stream_id, field);
    char *v = strdup(value);
    if (!v)
        return -ENOMEM;
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&m->meta_lock);
    if (++m->meta_puts >= MEM_META_SWEEP_MIN && m->meta_puts >= m->meta_count)
        mem_meta_sweep(m, now);
    mem_meta_t *e = mem_meta_find(m, stream_id, field, h);
    if (e && final_prefix && e->expires_ms > now &&
        strncmp(e->value, final_prefix, strlen(final_prefix)) == 0) {
        pthread_mutex_unlock(&m->meta_lock);
        free(v);
        return 1; /* a final record stays */
    }
    if (e) {
        free(e->value); /* the one this put replaces */
    } else {
        size_t fl = strlen(field);
        e = calloc(1, sizeof(*e) + fl + 1);
        if (!e) {
            pthread_mutex_unlock(&m->meta_lock);
            free(v);
            return -ENOMEM;
        }
        if (m->meta_count >= m->meta_nbuckets)
            mem_meta_grow(m);
        if (!m->meta_nbuckets) {
            pthread_mutex_unlock(&m->meta_lock);
            free(e);
            free(v);
            return -ENOMEM;
        }
        e->hash = h;
        snprintf(e->stream_id, sizeof(e->stream_id), "%s", stream_id);
        memcpy(e->field, field, fl + 1);
        e->next = m->meta[h & (m->meta_nbuckets - 1)];
        m->meta[h & (m->meta_nbuckets - 1)] = e;
        m->meta_count++;
    }
    e->value = v;
    e->expires_ms = now + ttl_ms;
    pthread_mutex_unlock(&m->meta_lock);
    return 0;
}

static int mem_meta_get(store_t *st, const char *stream_id, const char *field, char **value_out)
{
    store_memory_t *m = (store_memory_t *)st;
    int64_t now = clock_mono_ms();
    int ret = -ENOENT;
    pthread_mutex_lock(&m->meta_lock);
    mem_meta_t *e = mem_meta_find(m, stream_id, field, mem_hash(stream_id, field));
    if (e && e->expires_ms > now) {
        *value_out = strdup(e->value);
        ret = *value_out ? 0 : -ENOMEM;
    }
    pthread_mutex_unlock(&m->meta_lock);
    return ret;
}

static int mem_meta_scan(store_t *st, const char *stream_id, const char *prefix, store_meta_cb cb,
                         void *opaque)
{
    store_memory_t *m = (store_memory_t *)st;
    int64_t now = clock_mono_ms();
    size_t pl = strlen(prefix);
    /* Copied out first: the callback runs without the lock, so it may call
     * the store again. */
    size_t n = 0, cap = 0;
    char **pairs = NULL;
    int ret = 0;
    pthread_mutex_lock(&m->meta_lock);
    for (size_t i = 0; i < m->meta_nbuckets && ret == 0; i++) {
        for (mem_meta_t *e = m->meta[i]; e && ret == 0; e = e->next) {
            if (e->expires_ms <= now || strcmp(e->stream_id, stream_id) != 0 ||
                strncmp(e->field, prefix, pl) != 0)
                continue;
            if (n + 2 > cap) {
                size_t nc = cap ? cap * 2 : 16;
                char **np = realloc(pairs, nc * sizeof(*np));
                if (!np) {
                    ret = -ENOMEM;
                    break;
                }
                pairs = np;
                cap = nc;
            }
            pairs[n] = strdup(e->field);
            pairs[n + 1] = strdup(e->value);
            n += 2;
            if (!pairs[n - 2] || !pairs[n - 1])
                ret = -ENOMEM;
        }
    }
    pthread_mutex_unlock(&m->meta_lock);
    for (size_t i = 0; i < n; i += 2) {
        if (ret == 0)
            cb(opaque, pairs[i], pairs[i + 1]);
        free(pairs[i]);
        free(pairs[i + 1]);
    }
    free(pairs);
    return ret;
}

static const char *mem_node_id(const store_t *st)
{
    return ((const store_memory_t *)st)->node_id;
}

static void mem_close(store_t *st)
{
    store_memory_t *m = (store_memory_t *)st;
    for (size_t i = 0; i < m->nbuckets; i++) {
        mem_object_t *o = m->buckets[i];
        while (o) {
            mem_object_t *next = o->next;
            mem_object_free(o);
            o = next;
        }
    }
    free(m->buckets);
    while (m->groups) {
        mem_group_t *g = m->groups;
        m->groups = g->next;
        free(g);
    }
    for (size_t i = 0; i < m->nstreams; i++) {
        free(m->streams[i].name);
        free(m->streams[i].outputs);
    }
    free(m->streams);
    store_state_close(m->state);
    for (size_t i = 0; i < m->meta_nbuckets; i++) {
        while (m->meta[i]) {
            mem_meta_t *e = m->meta[i];
            m->meta[i] = e->next;
            mem_meta_free(e);
        }
    }
    free(m->meta);
    pthread_mutex_destroy(&m->meta_lock);
    pthread_rwlock_destroy(&m->lock);
    pthread_rwlock_destroy(&m->reg_lock);
    store_base_deinit(&m->base);
    free(m);
}

static const store_backend_t store_memory_backend = {
    .name = "memory",
    .close = mem_close,
    .ping = mem_ping,
    .commit = mem_commit,
    .get = mem_get,
    .drop_objects = mem_drop_objects,
    .stream_add = mem_stream_add,
    .stream_auth = mem_stream_auth,
    .stream_exists = mem_stream_exists,
    .stream_get = mem_stream_get,
    .stream_list = mem_stream_list,
    .stream_remove = mem_stream_remove,
    .stream_rotate = mem_stream_rotate,
    .stream_set_record = mem_stream_set_record,
    .stream_set_ladder = mem_stream_set_ladder,
    .stream_set_outputs = mem_stream_set_outputs,
    .stream_get_outputs = mem_stream_get_outputs,
    .stream_seed = mem_stream_seed,
    .stream_seed_done = mem_stream_seed_done,
    .set_state_dir = mem_set_state_dir,
    .meta_put = mem_meta_put,
    .meta_get = mem_meta_get,
    .meta_scan = mem_meta_scan,
    .node_id = mem_node_id,
    .set_memory_limit = mem_set_memory_limit,
    .memory_stats = mem_memory_stats,
};

int store_memory_open(store_t **out)
{
    store_memory_t *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->nbuckets = 256;
    m->idle_ms = MEM_IDLE_MS_DEFAULT;
    m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
    if (!m->buckets) {
        free(m);
        return -ENOMEM;
    }
    pthread_rwlock_init(&m->lock, NULL);
    pthread_rwlock_init(&m->reg_lock, NULL);
    pthread_mutex_init(&m->meta_lock, NULL);
    /* hostname-pid-random: readable in logs, unique among processes. */
    char host[64] = "host";
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "host");
    host[sizeof(host) - 1] = '\0';
    uint8_t rnd[4] = {0};
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        memset(rnd, 0, sizeof(rnd));
    snprintf(m->node_id, sizeof(m->node_id), "%s-%ld-%02x%02x%02x%02x", host, (long)getpid(),
             rnd[0], rnd[1], rnd[2], rnd[3]);
    store_base_init(&m->base, &store_memory_backend);
    *out = &m->base;
    return 0;
}
