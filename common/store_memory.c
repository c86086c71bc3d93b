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
 * SHA-256 hashes only and compared with CRYPTO_memcmp.
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

#include <openssl/crypto.h>

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
    uint8_t key_hash[32];
} mem_stream_t;

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

static int mem_stream_add(store_t *st, const char *id, const char *name, const uint8_t hash[32])
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
    store_base_init(&m->base, &store_memory_backend);
    *out = &m->base;
    return 0;
}
