/*
 * Scaled-thumbnail cache (thumb_cache_internal.h): a fixed array scanned
 * linearly (64 entries: a scan costs less than hashing would), one mutex and
 * one condition variable. An entry is "pending" while one thread makes it
 * with the lock released; threads asking for the same key wait on the
 * condition variable, then take the result or, if making it failed, try
 * themselves. Eviction takes the least recently used ready entry; when every
 * entry is pending the blob is made and returned without being cached.
 * Cached blobs are immutable and shared by reference.
 */
#include "thumb_cache_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

typedef struct tc_entry {
    bool used;
    bool pending;
    char stream_id[STORE_ID_MAX];
    char etag[BLOB_ETAG_MAX];
    int width;
    blob_t *blob;   /* owned reference; NULL while pending */
    uint64_t stamp; /* last use */
} tc_entry_t;

struct thumb_cache {
    pthread_mutex_t lock;
    pthread_cond_t done;
    uint64_t clock;
    size_t cap;
    tc_entry_t *e;
};

int thumb_cache_new(size_t cap, thumb_cache_t **out)
{
    *out = NULL;
    if (cap < 1 || cap > 1024)
        return -EINVAL;
    thumb_cache_t *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->e = calloc(cap, sizeof(*c->e));
    if (!c->e) {
        free(c);
        return -ENOMEM;
    }
    c->cap = cap;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->done, NULL);
    *out = c;
    return 0;
}

void thumb_cache_free(thumb_cache_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->cap; i++)
        blob_unref(c->e[i].blob);
    pthread_cond_destroy(&c->done);
    pthread_mutex_destroy(&c->lock);
    free(c->e);
    free(c);
}

static tc_entry_t *tc_find(thumb_cache_t *c, const char *stream_id, const char *etag, int width)
{
    for (size_t i = 0; i < c->cap; i++) {
        tc_entry_t *e = &c->e[i];
        if (e->used && e->width == width && strcmp(e->etag, etag) == 0 &&
            strcmp(e->stream_id, stream_id) == 0)
            return e;
    }
    return NULL;
}

/* A free slot, else the least recently used ready one (emptied); NULL
 * when every entry is being made. */
static tc_entry_t *tc_victim(thumb_cache_t *c)
{
    tc_entry_t *v = NULL;
    for (size_t i = 0; i < c->cap; i++) {
        tc_entry_t *e = &c->e[i];
        if (!e->used)
            return e;
        if (!e->pending && (!v || e->stamp < v->stamp))
            v = e;
    }
    if (v) {
        blob_unref(v->blob);
        memset(v, 0, sizeof(*v));
    }
    return v;
}

int thumb_cache_get(thumb_cache_t *c, const char *stream_id, const char *etag, int width,
                    thumb_cache_make_cb make, void *opaque, blob_t **out, int *hit)
{
    *out = NULL;
    *hit = 0;
    if (strlen(stream_id) >= STORE_ID_MAX || strlen(etag) >= BLOB_ETAG_MAX)
        return make(opaque, out); /* cannot be a key: made, not cached */
    pthread_mutex_lock(&c->lock);
    tc_entry_t *e;
    while ((e = tc_find(c, stream_id, etag, width)) != NULL && e->pending)
        pthread_cond_wait(&c->done, &c->lock);
    if (e) {
        e->stamp = ++c->clock;
        *out = blob_ref(e->blob);
        *hit = 1;
        pthread_mutex_unlock(&c->lock);
        return 0;
    }
    e = tc_victim(c);
    if (e) {
        e->used = true;
        e->pending = true;
        snprintf(e->stream_id, sizeof(e->stream_id), "%s", stream_id);
        snprintf(e->etag, sizeof(e->etag), "%s", etag);
        e->width = width;
    }
    pthread_mutex_unlock(&c->lock);

    blob_t *b = NULL;
    int ret = make(opaque, &b);
    if (!e) {
        *out = b;
        return ret;
    }
    pthread_mutex_lock(&c->lock);
    if (ret == 0) {
        e->pending = false;
        e->blob = blob_ref(b);
        e->stamp = ++c->clock;
        *out = b;
    } else {
        memset(e, 0, sizeof(*e));
    }
    pthread_cond_broadcast(&c->done);
    pthread_mutex_unlock(&c->lock);
    return ret;
}

size_t thumb_cache_size(thumb_cache_t *c)
{
    size_t n = 0;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->cap; i++)
        n += c->e[i].used;
    pthread_mutex_unlock(&c->lock);
    return n;
}
