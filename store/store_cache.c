/*
 * The object cache behind store_cache_internal.h: a chained hash table of entries that
 * are also on one LRU list, all under one mutex. An entry owns one blob
 * reference and its "stream_id/name" key. The table has a fixed bucket count
 * (the byte budget, not the entry count, bounds it); the LRU tail goes first
 * when an insert would pass the budget, and an entry older than max_age is
 * treated as absent and freed when found.
 */
#include "store_cache_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

#define STORE_CACHE_BUCKETS 1024

typedef struct cache_entry {
    struct cache_entry *hnext;       /* bucket chain */
    struct cache_entry *prev, *next; /* LRU, most recent first */
    uint64_t hash;
    int64_t inserted_ms;
    blob_t *blob;
    size_t idlen;
    char key[]; /* "stream_id/name" */
} cache_entry_t;

struct store_cache {
    pthread_mutex_t lock;
    cache_entry_t *buckets[STORE_CACHE_BUCKETS];
    cache_entry_t *head, *tail;
    size_t max_bytes, bytes, entries;
    int64_t max_age_ms;
    uint64_t generation;
    store_cache_stats_t stats;
};

static uint64_t cache_hash(const char *id, const char *name)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ '/') * 1099511628211ULL;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

static bool cache_match(const cache_entry_t *e, const char *id, const char *name)
{
    size_t il = strlen(id);
    return e->idlen == il && memcmp(e->key, id, il) == 0 && strcmp(e->key + il + 1, name) == 0;
}

store_cache_t *store_cache_new(size_t max_bytes, int64_t max_age_ms)
{
    store_cache_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    pthread_mutex_init(&c->lock, NULL);
    c->max_bytes = max_bytes;
    c->max_age_ms = max_age_ms;
    return c;
}

static void cache_unlink(store_cache_t *c, cache_entry_t *e)
{
    cache_entry_t **pp = &c->buckets[e->hash % STORE_CACHE_BUCKETS];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    c->bytes -= e->blob->size;
    c->entries--;
    blob_unref(e->blob);
    free(e);
}

static cache_entry_t *cache_find(store_cache_t *c, const char *id, const char *name, uint64_t h)
{
    for (cache_entry_t *e = c->buckets[h % STORE_CACHE_BUCKETS]; e; e = e->hnext)
        if (e->hash == h && cache_match(e, id, name))
            return e;
    return NULL;
}

void store_cache_free(store_cache_t *c)
{
    if (!c)
        return;
    while (c->head)
        cache_unlink(c, c->head);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int store_cache_get(store_cache_t *c, const char *stream_id, const char *name, blob_t **out)
{
    uint64_t h = cache_hash(stream_id, name);
    int ret = -ENOENT;
    pthread_mutex_lock(&c->lock);
    cache_entry_t *e = cache_find(c, stream_id, name, h);
    if (e && clock_mono_ms() - e->inserted_ms > c->max_age_ms) {
        cache_unlink(c, e);
        e = NULL;
    }
    if (e) {
        if (e != c->head) { /* to the front of the LRU list */
            e->prev->next = e->next;
            if (e->next)
                e->next->prev = e->prev;
            else
                c->tail = e->prev;
            e->prev = NULL;
            e->next = c->head;
            c->head->prev = e;
            c->head = e;
        }
        *out = blob_ref(e->blob);
        c->stats.hits++;
        ret = 0;
    } else {
        c->stats.misses++;
    }
    pthread_mutex_unlock(&c->lock);
    return ret;
}

uint64_t store_cache_generation(store_cache_t *c)
{
    pthread_mutex_lock(&c->lock);
    uint64_t g = c->generation;
    pthread_mutex_unlock(&c->lock);
    return g;
}

void store_cache_put(store_cache_t *c, uint64_t gen, const char *stream_id, const char *name,
                     blob_t *blob)
{
    if (c->max_bytes == 0 || blob->size > c->max_bytes / 4)
        return;
    size_t il = strlen(stream_id), nl = strlen(name);
    cache_entry_t *fresh = malloc(sizeof(*fresh) + il + 1 + nl + 1);
    if (!fresh)
        return;
    memcpy(fresh->key, stream_id, il);
    fresh->key[il] = '/';
    memcpy(fresh->key + il + 1, name, nl + 1);
    fresh->idlen = il;
    fresh->hash = cache_hash(stream_id, name);
    fresh->blob = blob_ref(blob);
    fresh->inserted_ms = clock_mono_ms();

    pthread_mutex_lock(&c->lock);
    cache_entry_t *old = gen == c->generation ? cache_find(c, stream_id, name, fresh->hash)
                                              : NULL;
    if (gen != c->generation || old) {
        /* Replaced meanwhile, or another reader was first: keep what is there. */
        pthread_mutex_unlock(&c->lock);
        blob_unref(fresh->blob);
        free(fresh);
        return;
    }
    while (c->tail && c->bytes + blob->size > c->max_bytes) {
        cache_unlink(c, c->tail);
        c->stats.evictions++;
    }
    cache_entry_t **b = &c->buckets[fresh->hash % STORE_CACHE_BUCKETS];
    fresh->hnext = *b;
    *b = fresh;
    fresh->prev = NULL;
    fresh->next = c->head;
    if (c->head)
        c->head->prev = fresh;
    c->head = fresh;
    if (!c->tail)
        c->tail = fresh;
    c->bytes += blob->size;
    c->entries++;
    c->stats.inserts++;
    pthread_mutex_unlock(&c->lock);
}

void store_cache_evict(store_cache_t *c, const char *stream_id, const char *name)
{
    pthread_mutex_lock(&c->lock);
    c->generation++;
    if (name) {
        cache_entry_t *e = cache_find(c, stream_id, name, cache_hash(stream_id, name));
        if (e)
            cache_unlink(c, e);
    } else {
        size_t il = strlen(stream_id);
        for (cache_entry_t *e = c->head, *next; e; e = next) {
            next = e->next;
            if (e->idlen == il && memcmp(e->key, stream_id, il) == 0)
                cache_unlink(c, e);
        }
    }
    pthread_mutex_unlock(&c->lock);
}

void store_cache_clear(store_cache_t *c)
{
    pthread_mutex_lock(&c->lock);
    c->generation++;
    while (c->head)
        cache_unlink(c, c->head);
    pthread_mutex_unlock(&c->lock);
}

void store_cache_get_stats(store_cache_t *c, store_cache_stats_t *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->stats;
    out->bytes = c->bytes;
    out->entries = c->entries;
    pthread_mutex_unlock(&c->lock);
}
