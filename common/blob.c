/*
 * Reference-counted blobs. Any thread; the count is a C11 atomic and the
 * bytes are never written after the blob is shared.
 */
#include "blob.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"

blob_t *blob_new_uninit(size_t size)
{
    blob_t *b = malloc(sizeof(*b) + size + 1);
    if (!b)
        return NULL;
    atomic_init(&b->refs, 1);
    b->size = size;
    b->created_ms = clock_wall_ms();
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
    if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        free(b);
}
