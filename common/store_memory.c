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
 * Meta records (store_meta_put) are a list under their own mutex, each with a
 * monotonic expiry; expired ones are invisible at once and unlinked by the
 * next put.
 *
 * One process means one node: leases are always granted (store.c keeps the
 * lease list; ingest settles duplicates within the process), and a commit
 * wakes the stream's watchers directly, after the write lock is released.
 */
#include <errno.h>
#include <pthread.h>
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
#include "store_internal.h"

typedef struct mem_object {
    struct mem_object *next;
    uint64_t hash;
    int64_t expires_ms; /* monotonic; 0 = never */
    blob_t *blob;
    char key[]; /* "stream_id/name" */
} mem_object_t;

typedef struct mem_stream {
    char id[STORE_ID_MAX];
    char *name;
    int64_t created_ms;
    uint8_t key_hash[32];
} mem_stream_t;

typedef struct mem_meta {
    struct mem_meta *next;
    int64_t expires_ms; /* monotonic */
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

    pthread_rwlock_t reg_lock;
    mem_stream_t *streams;
    size_t nstreams;
    size_t cap_streams;

    pthread_mutex_t meta_lock;
    mem_meta_t *meta;

    char node_id[128];
} store_memory_t;

static uint64_t mem_hash(const char *stream_id, const char *name)
{
    /* FNV-1a over "id/name". */
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = stream_id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ '/') * 1099511628211ULL;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
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
                mem_object_free(o);
                m->count--;
            } else {
                pp = &o->next;
            }
        }
    }
    m->last_sweep_ms = now;
}

static int mem_commit(store_t *st, const char *stream_id, const store_op_t *ops, size_t n)
{
    store_memory_t *m = (store_memory_t *)st;
    int64_t now = clock_mono_ms();
    size_t idlen = strlen(stream_id);

    /* Allocate every new object before taking the lock, so that a failure
     * leaves nothing half-applied. */
    mem_object_t **fresh = calloc(n ? n : 1, sizeof(*fresh));
    if (!fresh)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].kind != STORE_OP_PUT)
            continue;
        size_t nl = strlen(ops[i].name);
        mem_object_t *o = malloc(sizeof(*o) + idlen + 1 + nl + 1);
        if (!o) {
            for (size_t j = 0; j < i; j++)
                free(fresh[j]);
            free(fresh);
            return -ENOMEM;
        }
        memcpy(o->key, stream_id, idlen);
        o->key[idlen] = '/';
        memcpy(o->key + idlen + 1, ops[i].name, nl + 1);
        o->hash = mem_hash(stream_id, ops[i].name);
        o->expires_ms = ops[i].ttl_ms > 0 ? now + ops[i].ttl_ms : 0;
        o->blob = blob_ref(ops[i].blob);
        o->next = NULL;
        fresh[i] = o;
    }

    pthread_rwlock_wrlock(&m->lock);
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
                mem_object_free(old);
            } else {
                *pp = fresh[i];
                m->count++;
            }
            break;
        case STORE_OP_EXPIRE:
            if (*pp)
                (*pp)->expires_ms = op->ttl_ms > 0 ? now + op->ttl_ms : 0;
            break;
        case STORE_OP_DELETE:
            if (*pp) {
                mem_object_t *old = *pp;
                *pp = old->next;
                mem_object_free(old);
                m->count--;
            }
            break;
        }
    }
    if (m->count > m->nbuckets)
        mem_grow(m);
    if (now - m->last_sweep_ms >= 1000)
        mem_sweep(m, now);
    pthread_rwlock_unlock(&m->lock);
    free(fresh);
    store_notify_changed(st, stream_id);
    return 0;
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
                mem_object_free(o);
                m->count--;
            } else {
                pp = &o->next;
            }
        }
    }
    pthread_rwlock_unlock(&m->lock);
    return 0;
}

static int mem_ping(store_t *st)
{
    (void)st;
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
    if (m->nstreams == m->cap_streams) {
        size_t cap = m->cap_streams ? m->cap_streams * 2 : 8;
        mem_stream_t *s = realloc(m->streams, cap * sizeof(*s));
        if (!s) {
            ret = -ENOMEM;
            goto out;
        }
        m->streams = s;
        m->cap_streams = cap;
    }
    mem_stream_t *s = &m->streams[m->nstreams++];
    snprintf(s->id, sizeof(s->id), "%s", id);
    s->name = name_copy;
    name_copy = NULL;
    s->created_ms = created_ms;
    memcpy(s->key_hash, hash, 32);
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
    if (i >= 0) {
        free(m->streams[i].name);
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
    memcpy(m->streams[self].key_hash, hash, 32);
out:
    pthread_rwlock_unlock(&m->reg_lock);
    return ret;
}

/* ---- meta records ---------------------------------------------------------- */

static int mem_meta_put(store_t *st, const char *stream_id, const char *field, const char *value,
                        int64_t ttl_ms)
{
    store_memory_t *m = (store_memory_t *)st;
    size_t fl = strlen(field);
    mem_meta_t *fresh = calloc(1, sizeof(*fresh) + fl + 1);
    char *v = strdup(value);
    if (!fresh || !v) {
        free(fresh);
        free(v);
        return -ENOMEM;
    }
    int64_t now = clock_mono_ms();
    snprintf(fresh->stream_id, sizeof(fresh->stream_id), "%s", stream_id);
    memcpy(fresh->field, field, fl + 1);
    fresh->value = v;
    fresh->expires_ms = now + ttl_ms;
    pthread_mutex_lock(&m->meta_lock);
    for (mem_meta_t **pp = &m->meta; *pp;) {
        mem_meta_t *e = *pp;
        if (e->expires_ms <= now ||
            (strcmp(e->stream_id, stream_id) == 0 && strcmp(e->field, field) == 0)) {
            *pp = e->next; /* expired, or the one this put replaces */
            free(e->value);
            free(e);
        } else {
            pp = &e->next;
        }
    }
    fresh->next = m->meta;
    m->meta = fresh;
    pthread_mutex_unlock(&m->meta_lock);
    return 0;
}

static int mem_meta_get(store_t *st, const char *stream_id, const char *field, char **value_out)
{
    store_memory_t *m = (store_memory_t *)st;
    int64_t now = clock_mono_ms();
    int ret = -ENOENT;
    pthread_mutex_lock(&m->meta_lock);
    for (mem_meta_t *e = m->meta; e; e = e->next) {
        if (e->expires_ms > now && strcmp(e->stream_id, stream_id) == 0 &&
            strcmp(e->field, field) == 0) {
            *value_out = strdup(e->value);
            ret = *value_out ? 0 : -ENOMEM;
            break;
        }
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
    for (mem_meta_t *e = m->meta; e && ret == 0; e = e->next) {
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
    for (size_t i = 0; i < m->nstreams; i++)
        free(m->streams[i].name);
    free(m->streams);
    while (m->meta) {
        mem_meta_t *e = m->meta;
        m->meta = e->next;
        free(e->value);
        free(e);
    }
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
    .meta_put = mem_meta_put,
    .meta_get = mem_meta_get,
    .meta_scan = mem_meta_scan,
    .node_id = mem_node_id,
};

int store_memory_open(store_t **out)
{
    store_memory_t *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->nbuckets = 256;
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
