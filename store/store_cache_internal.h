/*
 * A bounded in-process cache of immutable store objects (init segments,
 * segments, parts), so that a node reads a hot object from a shared store
 * once, not once per viewer. LRU, bounded in bytes and in age; entries are
 * blob references, so a hit costs no copy. Playlists never go in.
 *
 * Invalidation: the writer's change notice names what it replaced;
 * store_cache_evict drops those names and bumps a generation. A reader takes
 * the generation before it reads the shared store and inserts only if it is
 * unchanged, so a value read before a replacement can never be cached after
 * the notice of that replacement was handled.
 *
 * Threads: any; one mutex. Used by store/store_redis.c only.
 */
#ifndef SLUICE_STORE_STORE_CACHE_INTERNAL_H
#define SLUICE_STORE_STORE_CACHE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "blob.h"

typedef struct store_cache store_cache_t;

typedef struct store_cache_stats {
    uint64_t hits, misses, inserts, evictions;
    size_t bytes, entries;
} store_cache_stats_t;

/* max_bytes 0 disables the cache (every get misses). NULL on OOM. */
store_cache_t *store_cache_new(size_t max_bytes, int64_t max_age_ms);
void store_cache_free(store_cache_t *c);

/* 0 and a new reference in *out, or -ENOENT. */
int store_cache_get(store_cache_t *c, const char *stream_id, const char *name, blob_t **out);
uint64_t store_cache_generation(store_cache_t *c);
/* Inserts (takes its own reference) unless the generation moved past gen or
 * the blob alone is over a quarter of the budget. */
void store_cache_put(store_cache_t *c, uint64_t gen, const char *stream_id, const char *name,
                     blob_t *blob);
/* Drops one name (name NULL: every object of the stream) and bumps the
 * generation. */
void store_cache_evict(store_cache_t *c, const char *stream_id, const char *name);
/* Drops everything and bumps the generation (notices may have been missed). */
void store_cache_clear(store_cache_t *c);
void store_cache_get_stats(store_cache_t *c, store_cache_stats_t *out);

#endif
