/*
 * Immutable, reference-counted byte blobs: a finished segment, an init
 * segment, a rendered playlist. The writer fills a blob once, before anyone
 * else sees it; after that it is read-only and any thread may hold a
 * reference (h2o's shared memory refs). The count is atomic.
 *
 * Two things derived from the bytes are computed lazily, at most once per
 * blob in the steady state, and then cached on the blob for every later
 * reader: the strong HTTP entity tag (blob_etag) and a gzip-compressed
 * variant (blob_gzip). Both are lock-free: the first reader that wins a
 * compare-and-swap publishes its result; a reader racing it uses its own
 * identical copy, so nobody ever waits for another thread.
 */
#ifndef SLUICE_COMMON_BLOB_H
#define SLUICE_COMMON_BLOB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* "\"" 16 hex digits "-" up to 16 hex digits "\"" and the NUL. */
#define BLOB_ETAG_MAX 40

typedef struct blob {
    atomic_int refs;
    size_t size;
    int64_t created_ms; /* wall clock, ms since the epoch: Last-Modified */
    /* Lazy caches; touched only by blob_etag() / blob_gzip(). */
    atomic_int etag_state;        /* 0 not yet, 1 being published, 2 ready */
    char etag[BLOB_ETAG_MAX];
    _Atomic(struct blob *) gzip;  /* owned reference, NULL until asked for */
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

/* A fast, non-cryptographic 64-bit hash of data[0..size) (XXH64-style: four
 * independent lanes, about one cycle a byte per lane). Pure. */
uint64_t blob_hash64(const void *data, size_t size);

/* Formats the strong entity tag of data[0..size) into out (BLOB_ETAG_MAX
 * bytes): the quoted hash and size, e.g. "\"5f1c...e2-f8c4\"". Pure. */
void blob_etag_format(const void *data, size_t size, char out[BLOB_ETAG_MAX]);

/* The blob's entity tag (quoted, strong). Computed on the first call and
 * cached on the blob; the pointer returned is either the blob's cached copy
 * or `scratch`, valid as long as both the blob reference and scratch are.
 * Any thread; never allocates. */
const char *blob_etag(blob_t *b, char scratch[BLOB_ETAG_MAX]);

/* The gzip (RFC 1952) compression of the blob, compressed on the first call
 * and cached on the blob; returns a borrowed pointer valid while the caller
 * holds its reference to b (take blob_ref() to keep it longer), or NULL when
 * compression failed (out of memory). Deterministic output (no timestamp in
 * the header). Any thread. */
blob_t *blob_gzip(blob_t *b);

/* Compresses data[0..size) at zlib level (1 fastest .. 9 smallest) into a
 * new gzip blob (refcount 1); NULL on OOM. blob_gzip() uses 9, once per
 * stored object; a body made for one request (a signed playlist) uses 1,
 * so that a request cannot cost a level-9 compression. */
blob_t *blob_gzip_new(const void *data, size_t size, int level);

#endif
