/*
 * A small bounded cache of scaled thumbnails (?width=N), keyed by stream,
 * the entity tag of the stored thumbnail they were made from, and width, so
 * that a burst of CDN misses decodes and encodes each one once. Least
 * recently used entries go first. A miss is made by the caller's callback
 * outside the lock; other requests for the same key wait for it instead of
 * making it again (single flight). Any thread.
 */
#ifndef SLUICE_ORIGIN_THUMB_CACHE_INTERNAL_H
#define SLUICE_ORIGIN_THUMB_CACHE_INTERNAL_H

#include <stddef.h>

#include "blob.h"

typedef struct thumb_cache thumb_cache_t;

/* Makes the blob for a miss: 0 with *out (a new reference), or a negative
 * errno (nothing is cached). */
typedef int (*thumb_cache_make_cb)(void *opaque, blob_t **out);

/* cap entries at most (1..1024). 0, -EINVAL, -ENOMEM. */
int thumb_cache_new(size_t cap, thumb_cache_t **out) __attribute__((warn_unused_result));
/* thumb_cache_free(NULL) does nothing. No call may be in progress. */
void thumb_cache_free(thumb_cache_t *c);

/* *out = a new reference to the cached blob of (stream_id, etag, width),
 * made by make(opaque) on a miss. Returns 0 or make's error. *hit says
 * whether it came from the cache (tests, metrics). */
int thumb_cache_get(thumb_cache_t *c, const char *stream_id, const char *etag, int width,
                    thumb_cache_make_cb make, void *opaque, blob_t **out, int *hit)
    __attribute__((warn_unused_result));

/* Entries held now (ready or being made). */
size_t thumb_cache_size(thumb_cache_t *c);

#endif
