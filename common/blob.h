/*
 * Immutable, reference-counted byte blobs: a finished segment, an init
 * segment, a rendered playlist. The writer fills a blob once, before anyone
 * else sees it; after that it is read-only and any thread may hold a
 * reference (h2o's shared memory refs). The count is atomic.
 */
#ifndef SLUICE_COMMON_BLOB_H
#define SLUICE_COMMON_BLOB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct blob {
    atomic_int refs;
    size_t size;
    int64_t created_ms; /* wall clock, ms since the epoch: Last-Modified */
    uint8_t data[];
} blob_t;

/* A new blob holding a copy of data[0..size), refcount 1. NULL on OOM. */
blob_t *blob_new(const void *data, size_t size);
/* A new blob of `size` bytes the caller fills before sharing it. */
blob_t *blob_new_uninit(size_t size);
/* Takes another reference; returns b. */
blob_t *blob_ref(blob_t *b);
/* Drops a reference; frees on the last one. blob_unref(NULL) does nothing. */
void blob_unref(blob_t *b);

#endif
