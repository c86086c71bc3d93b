/*
 * Store front end: picks the backend from the URL, validates arguments once
 * for every backend, and hashes stream keys so that no backend ever sees one
 * in clear. It also owns what is the same for every backend: the lists of
 * change watches and of this process's leases, and the firing of their
 * callbacks when a backend reports a change or a lost lease.
 *
 * It also counts operations for store_get_stats (relaxed atomics: a counter
 * needs no ordering) and checks the limits of the registry-management and
 * meta calls (name and field lengths), so backends trust their arguments.
 *
 * Threads: any. cb_lock guards both lists and is held while a callback runs,
 * which is what lets store_watch_remove/store_lease_release promise that the
 * callback is over when they return.
 */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "clock.h"
#include "hash.h"
#include "store_internal.h"

#define STORE_META_VALUE_MAX 65536

static void store_count(store_t *st, atomic_uint_least64_t *counter, int rc)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
    if (rc == -EIO)
        atomic_fetch_add_explicit(&st->n_errors, 1, memory_order_relaxed);
}

struct store_watch {
    store_watch_t *next;
    store_t *st;
    store_watch_cb cb;
    void *opaque;
    bool armed;
    char stream_id[STORE_ID_MAX];
};

struct store_lease {
    store_lease_t *next;
    store_t *st;
    store_lease_lost_cb lost_cb;
    void *opaque;
    bool lost;
    char stream_id[STORE_ID_MAX];
};

void store_base_init(store_t *st, const store_backend_t *backend)
{
    st->backend = backend;
    pthread_mutex_init(&st->cb_lock, NULL);
    st->watches = NULL;
    st->leases = NULL;
    atomic_init(&st->n_commits, 0);
    atomic_init(&st->n_gets, 0);
    atomic_init(&st->n_registry, 0);
    atomic_init(&st->n_meta, 0);
    atomic_init(&st->n_errors, 0);
    pthread_mutex_init(&st->demand_lock, NULL);
    memset(st->demand, 0, sizeof(st->demand));
}

void store_base_deinit(store_t *st)
{
    /* Owners remove their watches and leases before closing the store;
     * whatever is left is freed here so nothing leaks. */
    while (st->watches) {
        store_watch_t *w = st->watches;
        st->watches = w->next;
        free(w);
    }
    while (st->leases) {
        store_lease_t *l = st->leases;
        st->leases = l->next;
        free(l);
    }
    pthread_mutex_destroy(&st->cb_lock);
    pthread_mutex_destroy(&st->demand_lock);
}

int store_open(const char *url, store_t **out)
{
    *out = NULL;
    if (strcmp(url, "memory") == 0 || strcmp(url, "memory://") == 0)
        return store_memory_open(out);
    if (strncmp(url, "redis://", 8) == 0 || strncmp(url, "redis-sentinel://", 17) == 0)
        return store_redis_open(url, out);
    return -EINVAL;
}

int store_url_check(const char *url)
{
    if (strcmp(url, "memory") == 0 || strcmp(url, "memory://") == 0)
        return 0;
    if (strncmp(url, "redis://", 8) == 0 || strncmp(url, "redis-sentinel://", 17) == 0)
        return store_redis_url_check(url) == 0 ? 0 : -EINVAL;
    return -EINVAL;
}

void store_close(store_t *st)
{
    if (st)
        st->backend->close(st);
}

const char *store_backend_name(const store_t *st)
{
    return st->backend->name;
}

int store_ping(store_t *st)
{
    return st->backend->ping(st);
}

int store_id_valid(const char *id)
{
    return store_id_valid_n(id, strlen(id));
}

int store_id_valid_n(const char *id, size_t n)
{
    if (n == 0 || n >= STORE_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int store_commit(store_t *st, const char *stream_id, const store_op_t *ops, size_t n)
{
    if (!store_id_valid(stream_id))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!ops[i].name || strlen(ops[i].name) > STORE_NAME_MAX)
            return -ENAMETOOLONG;
        if (ops[i].kind == STORE_OP_PUT && !ops[i].blob)
            return -EINVAL;
    }
    int rc = st->backend->commit(st, stream_id, ops, n);
    store_count(st, &st->n_commits, rc);
    return rc;
}

int store_get(store_t *st, const char *stream_id, const char *name, blob_t **out)
{
    *out = NULL;
    if (!store_id_valid(stream_id) || strlen(name) > STORE_NAME_MAX)
        return -ENOENT;
    int rc = st->backend->get(st, stream_id, name, out);
    store_count(st, &st->n_gets, rc);
    return rc;
}

int store_drop_objects(store_t *st, const char *stream_id)
{
    return st->backend->drop_objects(st, stream_id);
}

void store_key_hash(const char *key, uint8_t out[32])
{
    unsigned int len = 32;
    EVP_Digest(key, strlen(key), out, &len, EVP_sha256(), NULL);
}

int store_stream_add(store_t *st, const char *id, const char *name, const char *key)
{
    if (!store_id_valid(id) || !key || !*key)
        return -EINVAL;
    if (name && strlen(name) >= STORE_NAME_LEN_MAX)
        return -ENAMETOOLONG;
    uint8_t hash[32];
    store_key_hash(key, hash);
    int rc = st->backend->stream_add(st, id, name ? name : id, hash, clock_wall_ms());
    store_count(st, &st->n_registry, rc);
    return rc;
}

int store_stream_auth(store_t *st, const char *key, char *id_out)
{
    id_out[0] = '\0';
    if (!key || !*key)
        return -ENOENT;
    uint8_t hash[32];
    store_key_hash(key, hash);
    int rc = st->backend->stream_auth(st, hash, id_out);
    store_count(st, &st->n_registry, rc);
    return rc;
}

int store_stream_auth_hash(store_t *st, const uint8_t hash[32], char *id_out)
{
    id_out[0] = '\0';
    int rc = st->backend->stream_auth(st, hash, id_out);
    store_count(st, &st->n_registry, rc);
    return rc;
}

int store_stream_exists(store_t *st, const char *id)
{
    if (!store_id_valid(id))
        return -ENOENT;
    int rc = st->backend->stream_exists(st, id);
    store_count(st, &st->n_registry, rc);
    return rc;
}

int store_stream_seed(store_t *st, const char *id, const char *key)
{
    if (!store_id_valid(id) || !key || !*key)
        return -EINVAL;
    uint8_t hash[32];
    store_key_hash(key, hash);
    int rc;
    if (st->backend->stream_seed) {
        rc = st->backend->stream_seed(st, id, hash);
    } else {
        rc = st->backend->stream_add(st, id, id, hash, 0);
        if (rc == -EEXIST) {
            char owner[STORE_ID_MAX];
            if (st->backend->stream_auth(st, hash, owner) == 0 && strcmp(owner, id) == 0)
                rc = 0; /* seeded before: the same id with the same key */
        }
    }
    store_count(st, &st->n_registry, rc);
    return rc;
}

/* ---- registry management ------------------------------------------------- */

int store_stream_get(store_t *st, const char *id, store_stream_info_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!store_id_valid(id))
        return -ENOENT;
    int rc = st->backend->stream_get(st, id, out);
    store_count(st, &st->n_registry, rc);
    return rc;
}

static int store_info_cmp(const void *a, const void *b)
{
    return strcmp(((const store_stream_info_t *)a)->id, ((const store_stream_info_t *)b)->id);
}

int store_stream_list(store_t *st, store_stream_info_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = st->backend->stream_list(st, out, n);
    store_count(st, &st->n_registry, rc);
    if (rc < 0) {
        free(*out);
        *out = NULL;
        *n = 0;
        return rc;
    }
    if (*n == 0) {
        free(*out);
        *out = NULL;
    } else {
        qsort(*out, *n, sizeof(**out), store_info_cmp);
    }
    return 0;
}

int store_stream_remove(store_t *st, const char *id)
{
    if (!store_id_valid(id))
        return -ENOENT;
    int rc = st->backend->stream_remove(st, id);
    store_count(st, &st->n_registry, rc);
    return rc;
}

int store_stream_rotate(store_t *st, const char *id, const char *new_key)
{
    if (!new_key || !*new_key)
        return -EINVAL;
    if (!store_id_valid(id))
        return -ENOENT;
    uint8_t hash[32];
    store_key_hash(new_key, hash);
    int rc = st->backend->stream_rotate(st, id, hash);
    store_count(st, &st->n_registry, rc);
    return rc;
}

int store_stream_set_record(store_t *st, const char *id, int record)
{
    if (record != STORE_RECORD_DEFAULT && record != STORE_RECORD_OFF && record != STORE_RECORD_ON)
        return -EINVAL;
    if (!store_id_valid(id))
        return -ENOENT;
    int rc = st->backend->stream_set_record(st, id, record);
    store_count(st, &st->n_registry, rc);
    return rc;
}

int store_stream_set_ladder(store_t *st, const char *id, const char *ladder)
{
    if (!ladder)
        ladder = "";
    size_t n = strnlen(ladder, STORE_LADDER_MAX);
    if (n >= STORE_LADDER_MAX)
        return -EMSGSIZE;
    for (size_t i = 0; i < n; i++)
        if (ladder[i] < 0x20 || ladder[i] > 0x7e)
            return -EINVAL;
    if (!store_id_valid(id))
        return -ENOENT;
    int rc = st->backend->stream_set_ladder(st, id, ladder);
    store_count(st, &st->n_registry, rc);
    return rc;
}

int store_stream_set_outputs(store_t *st, const char *id, const char *text)
{
    if (!text)
        text = "";
    size_t n = strnlen(text, STORE_OUTPUTS_MAX);
    if (n >= STORE_OUTPUTS_MAX)
        return -EMSGSIZE;
    for (size_t i = 0; i < n; i++)
        if (text[i] < 0x20 || text[i] > 0x7e)
            return -EINVAL;
    if (!store_id_valid(id))
        return -ENOENT;
    int rc = st->backend->stream_set_outputs(st, id, text);
    store_count(st, &st->n_registry, rc);
    return rc;
}

int store_stream_get_outputs(store_t *st, const char *id, char **text_out)
{
    *text_out = NULL;
    if (!store_id_valid(id))
        return -ENOENT;
    int rc = st->backend->stream_get_outputs(st, id, text_out);
    store_count(st, &st->n_registry, rc);
    return rc;
}

bool store_stream_record(store_t *st, const char *stream_id, bool dflt)
{
    store_stream_info_t info;
    if (!st || !stream_id || store_stream_get(st, stream_id, &info) != 0 ||
        info.record == STORE_RECORD_DEFAULT)
        return dflt;
    return info.record == STORE_RECORD_ON;
}

/* ---- meta records ---------------------------------------------------------- */

static bool store_meta_field_valid(const char *field)
{
    return field && *field && strlen(field) <= STORE_NAME_MAX;
}

static int store_meta_put_final(store_t *st, const char *stream_id, const char *field,
                                const char *value, int64_t ttl_ms, const char *final_prefix)
{
    if (!store_id_valid(stream_id) || !store_meta_field_valid(field) || !value || ttl_ms <= 0 ||
        (final_prefix && !*final_prefix))
        return -EINVAL;
    if (strlen(value) > STORE_META_VALUE_MAX)
        return -EMSGSIZE;
    int rc = st->backend->meta_put(st, stream_id, field, value, ttl_ms, final_prefix);
    store_count(st, &st->n_meta, rc);
    return rc;
}

int store_meta_put(store_t *st, const char *stream_id, const char *field, const char *value,
                   int64_t ttl_ms)
{
    return store_meta_put_final(st, stream_id, field, value, ttl_ms, NULL);
}

int store_meta_put_unless_final(store_t *st, const char *stream_id, const char *field,
                                const char *value, int64_t ttl_ms, const char *final_prefix)
{
    if (!final_prefix)
        return -EINVAL;
    return store_meta_put_final(st, stream_id, field, value, ttl_ms, final_prefix);
}

int store_meta_get(store_t *st, const char *stream_id, const char *field, char **value_out)
{
    *value_out = NULL;
    if (!store_id_valid(stream_id) || !store_meta_field_valid(field))
        return -ENOENT;
    int rc = st->backend->meta_get(st, stream_id, field, value_out);
    store_count(st, &st->n_meta, rc);
    return rc;
}

int store_meta_scan(store_t *st, const char *stream_id, const char *prefix, store_meta_cb cb,
                    void *opaque)
{
    if (!cb)
        return -EINVAL;
    if (!store_id_valid(stream_id))
        return 0; /* no such stream: nothing to report */
    int rc = st->backend->meta_scan(st, stream_id, prefix ? prefix : "", cb, opaque);
    store_count(st, &st->n_meta, rc);
    return rc;
}

/* ---- rungs on demand ------------------------------------------------------ */

static bool store_rendition_valid(const char *r)
{
    size_t n = r ? strlen(r) : 0;
    if (n == 0 || n > 31)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = r[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

int store_demand_note(store_t *st, const char *stream_id, const char *rendition, int64_t now_ms)
{
    if (!store_id_valid(stream_id) || !store_rendition_valid(rendition))
        return -EINVAL;
    char key[STORE_ID_MAX + 32];
    snprintf(key, sizeof(key), "%s/%s", stream_id, rendition);
    uint64_t h = hash_mix(hash_bytes(HASH_FNV1A_INIT, key, strlen(key)));
    struct store_demand_slot *slot = &st->demand[h % STORE_DEMAND_SLOTS];
    pthread_mutex_lock(&st->demand_lock);
    bool covered = strcmp(slot->key, key) == 0 && now_ms >= slot->at_ms &&
                   now_ms - slot->at_ms < STORE_DEMAND_THROTTLE_MS;
    pthread_mutex_unlock(&st->demand_lock);
    if (covered)
        return 0;
    char field[48], value[24];
    snprintf(field, sizeof(field), STORE_DEMAND_PREFIX "%s", rendition);
    snprintf(value, sizeof(value), "%" PRId64, now_ms);
    int rc = store_meta_put(st, stream_id, field, value, STORE_DEMAND_TTL_MS);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&st->demand_lock);
    snprintf(slot->key, sizeof(slot->key), "%s", key);
    slot->at_ms = now_ms;
    pthread_mutex_unlock(&st->demand_lock);
    return 1;
}

int store_demand_last(store_t *st, const char *stream_id, const char *rendition, int64_t *last_ms)
{
    *last_ms = 0;
    if (!store_id_valid(stream_id) || !store_rendition_valid(rendition))
        return -EINVAL;
    char field[48];
    snprintf(field, sizeof(field), STORE_DEMAND_PREFIX "%s", rendition);
    char *v = NULL;
    int rc = store_meta_get(st, stream_id, field, &v);
    if (rc < 0)
        return rc;
    char *end = NULL;
    long long ms = strtoll(v, &end, 10);
    bool ok = end && end != v && *end == '\0' && ms >= 0;
    free(v);
    if (!ok)
        return -ENOENT; /* not a record of ours: as if absent */
    *last_ms = ms;
    return 0;
}

const char *store_node_id(const store_t *st)
{
    return st->backend->node_id(st);
}

void store_get_stats(store_t *st, store_stats_t *out)
{
    out->commits = atomic_load_explicit(&st->n_commits, memory_order_relaxed);
    out->gets = atomic_load_explicit(&st->n_gets, memory_order_relaxed);
    out->registry_ops = atomic_load_explicit(&st->n_registry, memory_order_relaxed);
    out->meta_ops = atomic_load_explicit(&st->n_meta, memory_order_relaxed);
    out->errors = atomic_load_explicit(&st->n_errors, memory_order_relaxed);
    out->connected = st->backend->connected ? st->backend->connected(st) : true;
    out->memory_bytes = out->memory_limit = out->evictions = 0;
    if (st->backend->memory_stats)
        st->backend->memory_stats(st, out);
    out->sentinel = false;
    out->master[0] = out->master_name[0] = '\0';
    out->sentinels = out->sentinels_up = 0;
    out->failovers = out->replica_wait_timeouts = 0;
    out->last_failover_ms = out->last_outage_ms = out->outage_ms = 0;
    if (st->backend->ha_stats)
        st->backend->ha_stats(st, out);
}

int store_set_memory_limit(store_t *st, uint64_t limit_bytes, int64_t idle_ms)
{
    if (idle_ms < 0)
        return -EINVAL;
    if (!st->backend->set_memory_limit)
        return 0; /* not the memory store: it bounds itself (store.h) */
    return st->backend->set_memory_limit(st, limit_bytes, idle_ms);
}

int store_set_state_dir(store_t *st, const char *dir, size_t *loaded, char *why, size_t whylen)
{
    *loaded = 0;
    if (whylen)
        why[0] = '\0';
    if (!st->backend->set_state_dir) {
        snprintf(why, whylen, "the %s store keeps no state directory", st->backend->name);
        return -ENOTSUP;
    }
    if (!dir || !*dir) {
        snprintf(why, whylen, "no directory given");
        return -EINVAL;
    }
    return st->backend->set_state_dir(st, dir, loaded, why, whylen);
}

int store_stream_seed_done(store_t *st, size_t *removed)
{
    *removed = 0;
    if (!st->backend->stream_seed_done)
        return 0;
    int rc = st->backend->stream_seed_done(st, removed);
    store_count(st, &st->n_registry, rc);
    return rc;
}

/* ---- leases --------------------------------------------------------------- */

int store_lease_acquire(store_t *st, const char *stream_id, bool takeover,
                        store_lease_lost_cb lost_cb, void *opaque, store_lease_t **out)
{
    *out = NULL;
    if (!store_id_valid(stream_id))
        return -EINVAL;
    store_lease_t *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->st = st;
    l->lost_cb = lost_cb;
    l->opaque = opaque;
    strcpy(l->stream_id, stream_id);
    if (st->backend->lease_acquire) {
        int rc = st->backend->lease_acquire(st, stream_id, takeover);
        if (rc < 0) {
            free(l);
            return rc;
        }
    }
    pthread_mutex_lock(&st->cb_lock);
    l->next = st->leases;
    st->leases = l;
    pthread_mutex_unlock(&st->cb_lock);
    *out = l;
    return 0;
}

int store_lease_revoke(store_t *st, const char *stream_id)
{
    if (!store_id_valid(stream_id))
        return -EINVAL;
    int rc = 0;
    if (st->backend->lease_revoke)
        rc = st->backend->lease_revoke(st, stream_id);
    else
        store_notify_lease_lost(st, stream_id); /* one node: the only owner is here */
    store_count(st, &st->n_registry, rc);
    return rc;
}

void store_lease_release(store_lease_t *l)
{
    if (!l)
        return;
    store_t *st = l->st;
    bool last = true;
    pthread_mutex_lock(&st->cb_lock);
    for (store_lease_t **pp = &st->leases; *pp; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    }
    for (store_lease_t *o = st->leases; o; o = o->next)
        if (strcmp(o->stream_id, l->stream_id) == 0)
            last = false;
    pthread_mutex_unlock(&st->cb_lock);
    /* A lost lease is another node's now: nothing of ours to give back. */
    if (last && !l->lost && st->backend->lease_release)
        st->backend->lease_release(st, l->stream_id);
    free(l);
}

int store_leases_list(store_t *st, char **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    int rc = 0;
    pthread_mutex_lock(&st->cb_lock);
    size_t count = 0;
    for (store_lease_t *l = st->leases; l; l = l->next)
        if (!l->lost)
            count++;
    if (count) {
        *ids = malloc(count * STORE_ID_MAX);
        if (!*ids) {
            rc = -ENOMEM;
        } else {
            for (store_lease_t *l = st->leases; l; l = l->next)
                if (!l->lost)
                    memcpy(*ids + STORE_ID_MAX * (*n)++, l->stream_id, STORE_ID_MAX);
        }
    }
    pthread_mutex_unlock(&st->cb_lock);
    return rc;
}

void store_notify_lease_lost(store_t *st, const char *stream_id)
{
    pthread_mutex_lock(&st->cb_lock);
    for (store_lease_t *l = st->leases; l; l = l->next) {
        if (l->lost || strcmp(l->stream_id, stream_id) != 0)
            continue;
        l->lost = true;
        if (l->lost_cb)
            l->lost_cb(l->opaque, l->stream_id);
    }
    pthread_mutex_unlock(&st->cb_lock);
}

/* ---- watches -------------------------------------------------------------- */

int store_watch_add(store_t *st, const char *stream_id, store_watch_cb cb, void *opaque,
                    store_watch_t **out)
{
    *out = NULL;
    if (!store_id_valid(stream_id) || !cb)
        return -EINVAL;
    store_watch_t *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->st = st;
    w->cb = cb;
    w->opaque = opaque;
    w->armed = true;
    strcpy(w->stream_id, stream_id);
    pthread_mutex_lock(&st->cb_lock);
    w->next = st->watches;
    st->watches = w;
    pthread_mutex_unlock(&st->cb_lock);
    *out = w;
    return 0;
}

void store_watch_remove(store_watch_t *w)
{
    if (!w)
        return;
    store_t *st = w->st;
    pthread_mutex_lock(&st->cb_lock);
    for (store_watch_t **pp = &st->watches; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    pthread_mutex_unlock(&st->cb_lock);
    free(w);
}

void store_notify_all_changed(store_t *st)
{
    pthread_mutex_lock(&st->cb_lock);
    for (store_watch_t *w = st->watches; w; w = w->next) {
        if (!w->armed)
            continue;
        w->armed = false;
        w->cb(w->opaque, w->stream_id);
    }
    pthread_mutex_unlock(&st->cb_lock);
}

void store_notify_changed(store_t *st, const char *stream_id)
{
    pthread_mutex_lock(&st->cb_lock);
    for (store_watch_t *w = st->watches; w; w = w->next) {
        if (!w->armed || strcmp(w->stream_id, stream_id) != 0)
            continue;
        w->armed = false;
        w->cb(w->opaque, w->stream_id);
    }
    pthread_mutex_unlock(&st->cb_lock);
}

typedef struct store_waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool fired;
} store_waiter_t;

static void store_waiter_cb(void *opaque, const char *stream_id)
{
    (void)stream_id;
    store_waiter_t *wt = opaque;
    pthread_mutex_lock(&wt->lock);
    wt->fired = true;
    pthread_cond_signal(&wt->cond);
    pthread_mutex_unlock(&wt->lock);
}

int store_wait_change(store_t *st, const char *stream_id, int timeout_ms)
{
    store_waiter_t wt = {.fired = false};
    pthread_mutex_init(&wt.lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&wt.cond, &ca);
    pthread_condattr_destroy(&ca);
    store_watch_t *w = NULL;
    int rc = store_watch_add(st, stream_id, store_waiter_cb, &wt, &w);
    if (rc == 0) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&wt.lock);
        while (!wt.fired && rc == 0)
            rc = pthread_cond_timedwait(&wt.cond, &wt.lock, &until) == ETIMEDOUT ? -ETIMEDOUT : 0;
        pthread_mutex_unlock(&wt.lock);
        store_watch_remove(w);
    }
    pthread_cond_destroy(&wt.cond);
    pthread_mutex_destroy(&wt.lock);
    return rc;
}
