/* The backend vtable behind store.h; only store/store*.c include this. */
#ifndef SLUICE_COMMON_STORE_INTERNAL_H
#define SLUICE_COMMON_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "store.h"

typedef struct store_backend {
    const char *name;
    void (*close)(store_t *st);
    int (*ping)(store_t *st);
    int (*commit)(store_t *st, const char *stream_id, const store_op_t *ops, size_t n);
    int (*get)(store_t *st, const char *stream_id, const char *name, blob_t **out);
    int (*drop_objects)(store_t *st, const char *stream_id);
    /* created_ms: wall clock, 0 when unknown (seeds). */
    int (*stream_add)(store_t *st, const char *id, const char *name, const uint8_t hash[32],
                      int64_t created_ms);
    int (*stream_auth)(store_t *st, const uint8_t hash[32], char *id_out);
    int (*stream_exists)(store_t *st, const char *id);
    /* Optional (NULL: stream_add, with the same id and key counting as 0). */
    int (*stream_seed)(store_t *st, const char *id, const uint8_t hash[32]);
    /* Optional (NULL: always granted). 0, -EBUSY or -EIO. */
    int (*lease_acquire)(store_t *st, const char *stream_id, bool takeover);
    void (*lease_release)(store_t *st, const char *stream_id);

    /* Registry management; arguments already checked by store.c. */
    int (*stream_get)(store_t *st, const char *id, store_stream_info_t *out);
    /* *out malloc'd (NULL when n is 0), any order: store.c sorts it. */
    int (*stream_list)(store_t *st, store_stream_info_t **out, size_t *n);
    int (*stream_remove)(store_t *st, const char *id);
    int (*stream_rotate)(store_t *st, const char *id, const uint8_t hash[32]);
    /* record: STORE_RECORD_DEFAULT, _OFF or _ON (checked). stream_get and
     * stream_list fill store_stream_info_t.record. */
    int (*stream_set_record)(store_t *st, const char *id, int record);
    /* ladder: "" (none) or checked text under STORE_LADDER_MAX. stream_get
     * and stream_list fill store_stream_info_t.ladder. */
    int (*stream_set_ladder)(store_t *st, const char *id, const char *ladder);
    /* text: "" (none) or checked text under STORE_OUTPUTS_MAX. get: a
     * malloc'd copy ("" for none), -ENOENT no such stream. */
    int (*stream_set_outputs)(store_t *st, const char *id, const char *text);
    int (*stream_get_outputs)(store_t *st, const char *id, char **text_out);

    /* Meta records. ttl_ms > 0. final_prefix: NULL, or keep (return 1) an
     * unexpired value that begins with it. */
    int (*meta_put)(store_t *st, const char *stream_id, const char *field, const char *value,
                    int64_t ttl_ms, const char *final_prefix);
    int (*meta_get)(store_t *st, const char *stream_id, const char *field, char **value_out);
    int (*meta_scan)(store_t *st, const char *stream_id, const char *prefix, store_meta_cb cb,
                     void *opaque);

    /* Optional (NULL: fire this process's lost_cb only). */
    int (*lease_revoke)(store_t *st, const char *stream_id);
    const char *(*node_id)(const store_t *st);
    /* Optional (NULL: always connected). */
    bool (*connected)(store_t *st);
    /* Optional (NULL: -ENOTSUP / nothing to report): the memory bound. */
    int (*set_memory_limit)(store_t *st, uint64_t limit_bytes, int64_t idle_ms);
    void (*memory_stats)(store_t *st, store_stats_t *out);
    /* Optional (NULL: not replicated): the Sentinel fields of store_stats_t. */
    void (*ha_stats)(store_t *st, store_stats_t *out);
    /* Optional (NULL: -ENOTSUP / 0): the persisted registry. */
    int (*set_state_dir)(store_t *st, const char *dir, size_t *loaded, char *why, size_t whylen);
    int (*stream_seed_done)(store_t *st, size_t *removed);
} store_backend_t;

typedef struct store_watch_list store_watch_list_t;

/* The part of every store that store.c owns: the backend, and the
 * registries of watches and leases, whose callbacks the backend fires
 * through store_notify_changed() and store_notify_lease_lost(). */
#define STORE_DEMAND_SLOTS 256

struct store {
    const store_backend_t *backend;
    pthread_mutex_t cb_lock; /* watches and leases; held while a callback runs */
    store_watch_t *watches;
    store_lease_t *leases;
    /* store_get_stats; relaxed atomics, they only count. */
    atomic_uint_least64_t n_commits, n_gets, n_registry, n_meta, n_errors;
    /* store_demand_note's throttle: this node's last write per stream and
     * rendition, in slots by hash (a collision costs one extra write). */
    pthread_mutex_t demand_lock;
    struct store_demand_slot {
        char key[STORE_ID_MAX + 32]; /* "ID/RENDITION" */
        int64_t at_ms;
    } demand[STORE_DEMAND_SLOTS];
};

/* Backends call these once their own struct is set up / before freeing it. */
void store_base_init(store_t *st, const store_backend_t *backend);
void store_base_deinit(store_t *st);

/* Fires (and disarms) every watch on stream_id. Any thread; takes cb_lock. */
void store_notify_changed(store_t *st, const char *stream_id);
/* Fires (and disarms) every watch on every stream: the store is back after
 * an outage (a failover), so whoever waited on it reads again. */
void store_notify_all_changed(store_t *st);
/* Fires the lost_cb of this process's lease on stream_id, if any. */
void store_notify_lease_lost(store_t *st, const char *stream_id);

int store_memory_open(store_t **out);
/* url starts with "redis://" or "redis-sentinel://". */
int store_redis_open(const char *url, store_t **out);
/* Parses a redis:// or redis-sentinel:// URL as store_redis_open would, opening nothing:
 * 0 or -EINVAL (-ENOMEM). */
int store_redis_url_check(const char *url);

/* The ids of the streams this process holds a lease on (lost ones left
 * out): *ids = a malloc'd buffer of *n ids of STORE_ID_MAX bytes each, NULL
 * when there are none. 0 or -ENOMEM. Takes cb_lock, so never call it with
 * a backend lock held (a lease's callback may run under cb_lock). */
int store_leases_list(store_t *st, char **ids, size_t *n);

/* SHA-256 of a key. */
void store_key_hash(const char *key, uint8_t out[32]);

#endif
