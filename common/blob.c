/*
 * Reference-counted blobs. Any thread; the count is a C11 atomic and the
 * bytes are never written after the blob is shared. The lazily derived
 * entity tag and gzip variant are published with compare-and-swap (see
 * blob.h), so a hot 1 MB segment is hashed once, not once per viewer.
 */
#include "blob.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "clock.h"

blob_t *blob_new_uninit(size_t size)
{
    blob_t *b = malloc(sizeof(*b) + size + 1);
    if (!b)
        return NULL;
    atomic_init(&b->refs, 1);
    b->size = size;
    b->created_ms = clock_wall_ms();
    atomic_init(&b->etag_state, 0);
    b->etag[0] = '\0';
    atomic_init(&b->gzip, NULL);
    b->data[size] = 0; /* text blobs can be used as C strings */
    return b;
}

blob_t *blob_new(const void *data, size_t size)
{
    blob_t *b = blob_new_uninit(size);
    if (b && size)
        memcpy(b->data, data, size);
    return b;
}

blob_t *blob_ref(blob_t *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void blob_unref(blob_t *b)
{
    if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) {
        blob_unref(atomic_load_explicit(&b->gzip, memory_order_acquire));
        free(b);
    }
}

/* XXH64's primes and round structure; written from the published algorithm. */
#define BLOB_P1 0x9E3779B185EBCA87ULL
#define BLOB_P2 0xC2B2AE3D27D4EB4FULL
#define BLOB_P3 0x165667B19E3779F9ULL
#define BLOB_P4 0x85EBCA77C2B2AE63ULL
#define BLOB_P5 0x27D4EB2F165667C5ULL

static inline uint64_t blob_rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t blob_read64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8); /* little-endian hosts only matter for stability
                       * across nodes of one architecture; see below */
    return v;
}

static inline uint32_t blob_read32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint64_t blob_round(uint64_t acc, uint64_t in)
{
    acc += in * BLOB_P2;
    acc = blob_rotl(acc, 31);
    return acc * BLOB_P1;
}

static inline uint64_t blob_merge(uint64_t acc, uint64_t v)
{
    acc ^= blob_round(0, v);
    return acc * BLOB_P1 + BLOB_P4;
}

/* The ETag must be the same on every origin node serving the same bytes
 * (a CDN may revalidate against another node). Nodes of one deployment run
 * one architecture; on a big-endian host the tags would differ from a
 * little-endian one's, which costs a re-fetch, never a wrong answer. */
uint64_t blob_hash64(const void *data, size_t size)
{
    const uint8_t *p = data;
    const uint8_t *end = p + size;
    uint64_t h;
    if (size >= 32) {
        uint64_t v1 = BLOB_P1 + BLOB_P2, v2 = BLOB_P2, v3 = 0, v4 = 0 - BLOB_P1;
        const uint8_t *limit = end - 32;
        do {
            v1 = blob_round(v1, blob_read64(p));
            v2 = blob_round(v2, blob_read64(p + 8));
            v3 = blob_round(v3, blob_read64(p + 16));
            v4 = blob_round(v4, blob_read64(p + 24));
            p += 32;
        } while (p <= limit);
        h = blob_rotl(v1, 1) + blob_rotl(v2, 7) + blob_rotl(v3, 12) + blob_rotl(v4, 18);
        h = blob_merge(h, v1);
        h = blob_merge(h, v2);
        h = blob_merge(h, v3);
        h = blob_merge(h, v4);
    } else {
        h = BLOB_P5;
    }
    h += (uint64_t)size;
    while (p + 8 <= end) {
        h ^= blob_round(0, blob_read64(p));
        h = blob_rotl(h, 27) * BLOB_P1 + BLOB_P4;
        p += 8;
    }
    if (p + 4 <= end) {
        h ^= (uint64_t)blob_read32(p) * BLOB_P1;
        h = blob_rotl(h, 23) * BLOB_P2 + BLOB_P3;
        p += 4;
    }
    while (p < end) {
        h ^= (*p) * BLOB_P5;
        h = blob_rotl(h, 11) * BLOB_P1;
        p++;
    }
    h ^= h >> 33;
    h *= BLOB_P2;
    h ^= h >> 29;
    h *= BLOB_P3;
    h ^= h >> 32;
    return h;
}

void blob_etag_format(const void *data, size_t size, char out[BLOB_ETAG_MAX])
{
    snprintf(out, BLOB_ETAG_MAX, "\"%016" PRIx64 "-%" PRIx64 "\"", blob_hash64(data, size),
             (uint64_t)size);
}

const char *blob_etag(blob_t *b, char scratch[BLOB_ETAG_MAX])
{
    if (atomic_load_explicit(&b->etag_state, memory_order_acquire) == 2)
        return b->etag;
    blob_etag_format(b->data, b->size, scratch);
    int expected = 0;
    if (atomic_compare_exchange_strong_explicit(&b->etag_state, &expected, 1,
                                                memory_order_acq_rel, memory_order_acquire)) {
        memcpy(b->etag, scratch, BLOB_ETAG_MAX);
        atomic_store_explicit(&b->etag_state, 2, memory_order_release);
    }
    return scratch;
}

blob_t *blob_gzip_new(const void *data, size_t size, int level)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    /* windowBits 15 + 16: a gzip wrapper; zlib writes mtime 0 and no name,
     * so the same input always gives the same bytes (and the same ETag). */
    if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    uLong bound = deflateBound(&zs, (uLong)size);
    blob_t *out = blob_new_uninit((size_t)bound);
    if (!out) {
        deflateEnd(&zs);
        return NULL;
    }
    zs.next_in = (Bytef *)(uintptr_t)data;
    zs.avail_in = (uInt)size;
    zs.next_out = out->data;
    zs.avail_out = (uInt)bound;
    int rc = deflate(&zs, Z_FINISH);
    size_t produced = (size_t)zs.total_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        blob_unref(out);
        return NULL;
    }
    /* The blob keeps the bound's allocation; playlists are small and the
     * few spare bytes are not worth a realloc and a second copy. */
    out->size = produced;
    out->data[produced] = 0;
    return out;
}

blob_t *blob_gzip(blob_t *b)
{
    blob_t *gz = atomic_load_explicit(&b->gzip, memory_order_acquire);
    if (gz)
        return gz;
    if (b->size > UINT32_MAX)
        return NULL; /* one deflate() call takes a uInt: playlists never come near */
    blob_t *mine = blob_gzip_new(b->data, b->size, Z_BEST_COMPRESSION);
    if (!mine)
        return NULL;
    mine->created_ms = b->created_ms;
    blob_t *expected = NULL;
    if (atomic_compare_exchange_strong_explicit(&b->gzip, &expected, mine, memory_order_acq_rel,
                                                memory_order_acquire))
        return mine;
    blob_unref(mine); /* another thread published first; theirs is identical */
    return expected;
}
