/* The backend vtable behind store.h; only common/store*.c include this. */
#ifndef SLUICE_COMMON_STORE_INTERNAL_H
#define SLUICE_COMMON_STORE_INTERNAL_H

#include <pthread.h>

#include "store.h"

typedef struct store_backend {
    const char *name;
    void (*close)(store_t *st);
    int (*ping)(store_t *st);
    int (*commit)(store_t *st, const char *stream_id, const store_op_t *ops, size_t n);
    int (*get)(store_t *st, const char *stream_id, const char *name, blob_t **out);
    int (*drop_objects)(store_t *st, const char *stream_id);
    int (*stream_add)(store_t *st, const char *id, const char *name, const uint8_t hash[32]);
    int (*stream_auth)(store_t *st, const uint8_t hash[32], char *id_out);
    int (*stream_exists)(store_t *st, const char *id);
    /* Optional (NULL: stream_add, with the same id and key counting as 0). */
    int (*stream_seed)(store_t *st, const char *id, const uint8_t hash[32]);
    /* Optional (NULL: always granted). 0, -EBUSY or -EIO. */
    int (*lease_acquire)(store_t *st, const char *stream_id, bool takeover);
    void (*lease_release)(store_t *st, const char *stream_id);
} store_backend_t;

typedef struct store_watch_list store_watch_list_t;

/* The part of every store that store.c owns: the backend, and the
 * registries of watches and leases, whose callbacks the backend fires
 * through store_notify_changed() and store_notify_lease_lost(). */
struct store {
    const store_backend_t *backend;
    pthread_mutex_t cb_lock; /* watches and leases; held while a callback runs */
    store_watch_t *watches;
    store_lease_t *leases;
};

/* Backends call these once their own struct is set up / before freeing it. */
void store_base_init(store_t *st, const store_backend_t *backend);
void store_base_deinit(store_t *st);

/* Fires (and disarms) every watch on stream_id. Any thread; takes cb_lock. */
void store_notify_changed(store_t *st, const char *stream_id);
/* Fires the lost_cb of this process's lease on stream_id, if any. */
void store_notify_lease_lost(store_t *st, const char *stream_id);

int store_memory_open(store_t **out);
/* url starts with "redis://". */
int store_redis_open(const char *url, store_t **out);

/* SHA-256 of a key. */
void store_key_hash(const char *key, uint8_t out[32]);

#endif
