/*
 * Store front end: picks the backend from the URL, validates arguments once
 * for every backend, and hashes stream keys so that no backend ever sees one
 * in clear. It also owns what is the same for every backend: the lists of
 * change watches and of this process's leases, and the firing of their
 * callbacks when a backend reports a change or a lost lease.
 *
 * Threads: any. cb_lock guards both lists and is held while a callback runs,
 * which is what lets store_watch_remove/store_lease_release promise that the
 * callback is over when they return.
 */
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "store_internal.h"

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
}

int store_open(const char *url, store_t **out)
{
    *out = NULL;
    if (strcmp(url, "memory") == 0 || strcmp(url, "memory://") == 0)
        return store_memory_open(out);
    if (strncmp(url, "redis://", 8) == 0)
        return store_redis_open(url, out);
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
    size_t n = strlen(id);
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
    return st->backend->commit(st, stream_id, ops, n);
}

int store_get(store_t *st, const char *stream_id, const char *name, blob_t **out)
{
    *out = NULL;
    if (!store_id_valid(stream_id) || strlen(name) > STORE_NAME_MAX)
        return -ENOENT;
    return st->backend->get(st, stream_id, name, out);
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
    uint8_t hash[32];
    store_key_hash(key, hash);
    return st->backend->stream_add(st, id, name ? name : id, hash);
}

int store_stream_auth(store_t *st, const char *key, char *id_out)
{
    id_out[0] = '\0';
    if (!key || !*key)
        return -ENOENT;
    uint8_t hash[32];
    store_key_hash(key, hash);
    return st->backend->stream_auth(st, hash, id_out);
}

int store_stream_exists(store_t *st, const char *id)
{
    if (!store_id_valid(id))
        return -ENOENT;
    return st->backend->stream_exists(st, id);
}

int store_stream_seed(store_t *st, const char *id, const char *key)
{
    if (!store_id_valid(id) || !key || !*key)
        return -EINVAL;
    uint8_t hash[32];
    store_key_hash(key, hash);
    if (st->backend->stream_seed)
        return st->backend->stream_seed(st, id, hash);
    int rc = st->backend->stream_add(st, id, id, hash);
    if (rc == -EEXIST) {
        char owner[STORE_ID_MAX];
        if (st->backend->stream_auth(st, hash, owner) == 0 && strcmp(owner, id) == 0)
            return 0; /* seeded before: the same id with the same key */
    }
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
