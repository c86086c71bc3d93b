/* Unit tests for the memory store: atomic commits, expiry, registry and its
 * management, meta records, node id, stats and lease revocation, and the
 * memory bound (store_set_memory_limit): its eviction order and the bound. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "store.h"

static store_t *open_memory(void)
{
    store_t *st = NULL;
    assert_int_equal(store_open("memory", &st), 0);
    assert_string_equal(store_backend_name(st), "memory");
    return st;
}

static void put(store_t *st, const char *id, const char *name, const char *text, int64_t ttl)
{
    blob_t *b = blob_new(text, strlen(text));
    store_op_t op = {.kind = STORE_OP_PUT, .name = name, .blob = b, .ttl_ms = ttl};
    assert_int_equal(store_commit(st, id, &op, 1), 0);
    blob_unref(b);
}

static void assert_object(store_t *st, const char *id, const char *name, const char *text)
{
    blob_t *b = NULL;
    assert_int_equal(store_get(st, id, name, &b), 0);
    assert_int_equal(b->size, strlen(text));
    assert_memory_equal(b->data, text, b->size);
    blob_unref(b);
}

static void test_put_get_replace_delete(void **state)
{
    (void)state;
    store_t *st = open_memory();
    blob_t *b = NULL;
    assert_int_equal(store_get(st, "s1", "master.m3u8", &b), -ENOENT);
    put(st, "s1", "master.m3u8", "v1", 0);
    put(st, "s2", "master.m3u8", "other", 0);
    assert_object(st, "s1", "master.m3u8", "v1");
    put(st, "s1", "master.m3u8", "v2", 0);
    assert_object(st, "s1", "master.m3u8", "v2");
    assert_object(st, "s2", "master.m3u8", "other");
    store_op_t del = {.kind = STORE_OP_DELETE, .name = "master.m3u8"};
    assert_int_equal(store_commit(st, "s1", &del, 1), 0);
    assert_int_equal(store_get(st, "s1", "master.m3u8", &b), -ENOENT);
    assert_object(st, "s2", "master.m3u8", "other");
    store_close(st);
}

static void test_reader_keeps_blob_after_replace(void **state)
{
    (void)state;
    store_t *st = open_memory();
    put(st, "s", "a", "first", 0);
    blob_t *held = NULL;
    assert_int_equal(store_get(st, "s", "a", &held), 0);
    put(st, "s", "a", "second", 0);
    /* The reader's snapshot is immutable and still valid. */
    assert_memory_equal(held->data, "first", 5);
    blob_unref(held);
    store_close(st);
}

static void test_batch_and_many_objects(void **state)
{
    (void)state;
    store_t *st = open_memory();
    enum { N = 2000 };
    char names[N][24];
    store_op_t ops[N];
    blob_t *b = blob_new("x", 1);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "720p/%d.m4s", i);
        ops[i] = (store_op_t){.kind = STORE_OP_PUT, .name = names[i], .blob = b};
    }
    assert_int_equal(store_commit(st, "big", ops, N), 0); /* grows the table */
    blob_unref(b);
    for (int i = 0; i < N; i += 97)
        assert_object(st, "big", names[i], "x");
    assert_int_equal(store_drop_objects(st, "big"), 0);
    blob_t *got = NULL;
    assert_int_equal(store_get(st, "big", names[5], &got), -ENOENT);
    store_close(st);
}

static void test_expiry(void **state)
{
    (void)state;
    store_t *st = open_memory();
    put(st, "s", "short", "gone soon", 50);
    put(st, "s", "keep", "stays", 0);
    put(st, "s", "later", "expire me", 0);
    store_op_t ex = {.kind = STORE_OP_EXPIRE, .name = "later", .ttl_ms = 50};
    assert_int_equal(store_commit(st, "s", &ex, 1), 0);
    assert_object(st, "s", "short", "gone soon");
    usleep(120 * 1000);
    blob_t *b = NULL;
    assert_int_equal(store_get(st, "s", "short", &b), -ENOENT);
    assert_int_equal(store_get(st, "s", "later", &b), -ENOENT);
    assert_object(st, "s", "keep", "stays");
    store_close(st);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    store_t *st = open_memory();
    char longname[STORE_NAME_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    blob_t *b = blob_new("x", 1);
    store_op_t ops[2] = {{.kind = STORE_OP_PUT, .name = "ok", .blob = b},
                         {.kind = STORE_OP_PUT, .name = longname, .blob = b}};
    assert_int_equal(store_commit(st, "s", ops, 2), -ENAMETOOLONG);
    blob_t *got = NULL;
    assert_int_equal(store_get(st, "s", "ok", &got), -ENOENT); /* nothing applied */
    assert_int_equal(store_commit(st, "bad/id", ops, 1), -EINVAL);
    blob_unref(b);
    store_close(st);
    assert_int_equal(store_open("nope://x", &st), -EINVAL);
    assert_null(st);
    /* A Redis URL is the Redis backend's (test_store_redis.c); a malformed
     * one is refused here before anything connects. */
    assert_int_equal(store_open("redis://", &st), -EINVAL);
    assert_int_equal(store_open("redis://127.0.0.1:99999", &st), -EINVAL);
    assert_int_equal(store_open("redis://127.0.0.1:6379/x", &st), -EINVAL);
    assert_null(st);
    store_close(NULL);
}

static void test_registry(void **state)
{
    (void)state;
    store_t *st = open_memory();
    char id[STORE_ID_MAX];
    assert_int_equal(store_stream_add(st, "shop1", "Shop one", "k3y-one"), 0);
    assert_int_equal(store_stream_add(st, "shop2", NULL, "k3y-two"), 0);
    assert_int_equal(store_stream_add(st, "shop1", "again", "k3y-three"), -EEXIST);
    assert_int_equal(store_stream_add(st, "shop3", "dup key", "k3y-one"), -EEXIST);
    assert_int_equal(store_stream_add(st, "bad id!", "x", "k"), -EINVAL);
    assert_int_equal(store_stream_add(st, "nokey", "x", ""), -EINVAL);
    assert_int_equal(store_stream_auth(st, "k3y-two", id), 0);
    assert_string_equal(id, "shop2");
    assert_int_equal(store_stream_auth(st, "k3y-one", id), 0);
    assert_string_equal(id, "shop1");
    assert_int_equal(store_stream_auth(st, "k3y-on", id), -ENOENT);
    assert_string_equal(id, "");
    assert_int_equal(store_stream_auth(st, "", id), -ENOENT);
    assert_int_equal(store_stream_exists(st, "shop1"), 0);
    assert_int_equal(store_stream_exists(st, "shop9"), -ENOENT);
    store_close(st);
}


/* ---- registry management, meta, node id, stats, revoke ------------------- */

static void test_registry_manage(void **state)
{
    (void)state;
    store_t *st = open_memory();
    char id[STORE_ID_MAX];
    store_stream_info_t info;
    int64_t before = clock_wall_ms();
    /* Added out of order; names are user text, any bytes but NUL. */
    assert_int_equal(store_stream_add(st, "zeta", "Zeta | shop\nline", "key-z"), 0);
    assert_int_equal(store_stream_add(st, "alpha", "Caf\xc3\xa9 du port", "key-a"), 0);
    assert_int_equal(store_stream_add(st, "mid", NULL, "key-m"), 0);
    int64_t after = clock_wall_ms();
    assert_int_equal(store_stream_seed(st, "seeded", "key-s"), 0);

    assert_int_equal(store_stream_get(st, "alpha", &info), 0);
    assert_string_equal(info.id, "alpha");
    assert_string_equal(info.name, "Caf\xc3\xa9 du port");
    assert_true(info.created_ms >= before && info.created_ms <= after);
    assert_int_equal(store_stream_get(st, "zeta", &info), 0);
    assert_string_equal(info.name, "Zeta | shop\nline");
    assert_int_equal(store_stream_get(st, "mid", &info), 0);
    assert_string_equal(info.name, "mid"); /* no name: the id */
    assert_int_equal(store_stream_get(st, "seeded", &info), 0);
    assert_int_equal(info.created_ms, 0);
    assert_int_equal(store_stream_get(st, "nope", &info), -ENOENT);
    assert_int_equal(store_stream_get(st, "bad id!", &info), -ENOENT);

    /* Names: 255 bytes fit, 256 do not. */
    char name[STORE_NAME_LEN_MAX + 1];
    memset(name, 'n', sizeof(name));
    name[STORE_NAME_LEN_MAX - 1] = '\0';
    assert_int_equal(store_stream_add(st, "long", name, "key-l"), 0);
    assert_int_equal(store_stream_get(st, "long", &info), 0);
    assert_int_equal(strlen(info.name), STORE_NAME_LEN_MAX - 1);
    name[STORE_NAME_LEN_MAX - 1] = 'n';
    name[STORE_NAME_LEN_MAX] = '\0';
    assert_int_equal(store_stream_add(st, "longer", name, "key-l2"), -ENAMETOOLONG);
    assert_int_equal(store_stream_exists(st, "longer"), -ENOENT);

    store_stream_info_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_stream_list(st, &list, &n), 0);
    assert_int_equal(n, 5);
    const char *want[] = {"alpha", "long", "mid", "seeded", "zeta"};
    for (size_t i = 0; i < n; i++)
        assert_string_equal(list[i].id, want[i]);
    assert_string_equal(list[4].name, "Zeta | shop\nline");
    free(list);

    /* remove: the key stops working at once; the id and the key are free again */
    assert_int_equal(store_stream_remove(st, "alpha"), 0);
    assert_int_equal(store_stream_auth(st, "key-a", id), -ENOENT);
    assert_int_equal(store_stream_exists(st, "alpha"), -ENOENT);
    assert_int_equal(store_stream_get(st, "alpha", &info), -ENOENT);
    assert_int_equal(store_stream_remove(st, "alpha"), -ENOENT);
    assert_int_equal(store_stream_auth(st, "key-z", id), 0); /* the others are untouched */
    assert_string_equal(id, "zeta");
    assert_int_equal(store_stream_add(st, "alpha2", "again", "key-a"), 0);

    /* rotate: old key refused, new key works, record kept */
    assert_int_equal(store_stream_rotate(st, "zeta", "key-z2"), 0);
    assert_int_equal(store_stream_auth(st, "key-z", id), -ENOENT);
    assert_int_equal(store_stream_auth(st, "key-z2", id), 0);
    assert_string_equal(id, "zeta");
    assert_int_equal(store_stream_get(st, "zeta", &info), 0);
    assert_string_equal(info.name, "Zeta | shop\nline");
    /* to another stream's key: refused, nothing changes */
    assert_int_equal(store_stream_rotate(st, "zeta", "key-m"), -EEXIST);
    assert_int_equal(store_stream_auth(st, "key-m", id), 0);
    assert_string_equal(id, "mid");
    assert_int_equal(store_stream_auth(st, "key-z2", id), 0);
    assert_string_equal(id, "zeta");
    assert_int_equal(store_stream_rotate(st, "nope", "key-x"), -ENOENT);
    assert_int_equal(store_stream_rotate(st, "zeta", ""), -EINVAL);

    /* The recording override: none until set; set, cleared, kept by a
     * rotation, visible in the list; store_stream_record() applies it. */
    assert_int_equal(store_stream_get(st, "mid", &info), 0);
    assert_int_equal(info.record, STORE_RECORD_DEFAULT);
    assert_true(store_stream_record(st, "mid", true));
    assert_false(store_stream_record(st, "mid", false));
    assert_int_equal(store_stream_set_record(st, "mid", STORE_RECORD_OFF), 0);
    assert_false(store_stream_record(st, "mid", true));
    assert_int_equal(store_stream_set_record(st, "zeta", STORE_RECORD_ON), 0);
    assert_int_equal(store_stream_rotate(st, "zeta", "key-z3"), 0);
    assert_true(store_stream_record(st, "zeta", false));
    assert_false(store_stream_record(st, "mid", true));
    assert_int_equal(store_stream_list(st, &list, &n), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(list[i].record, strcmp(list[i].id, "mid") == 0    ? STORE_RECORD_OFF
                                         : strcmp(list[i].id, "zeta") == 0 ? STORE_RECORD_ON
                                                                           : STORE_RECORD_DEFAULT);
    free(list);
    assert_int_equal(store_stream_set_record(st, "mid", STORE_RECORD_DEFAULT), 0);
    assert_true(store_stream_record(st, "mid", true));
    assert_int_equal(store_stream_set_record(st, "mid", 2), -EINVAL);
    assert_int_equal(store_stream_set_record(st, "nope", STORE_RECORD_ON), -ENOENT);
    assert_false(store_stream_record(st, "nope", false)); /* unknown: the default */
    assert_true(store_stream_record(st, "nope", true));

    /* remove them all: an empty list is NULL */
    const char *all[] = {"alpha2", "long", "mid", "seeded", "zeta"};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(store_stream_remove(st, all[i]), 0);
    list = (store_stream_info_t *)&n; /* must be overwritten */
    assert_int_equal(store_stream_list(st, &list, &n), 0);
    assert_null(list);
    assert_int_equal(n, 0);
    store_close(st);
}

typedef struct meta_seen {
    int n;
    char fields[8][64];
    char values[8][64];
} meta_seen_t;

static void meta_collect(void *opaque, const char *field, const char *value)
{
    meta_seen_t *m = opaque;
    assert_true(m->n < 8);
    snprintf(m->fields[m->n], sizeof(m->fields[0]), "%s", field);
    snprintf(m->values[m->n], sizeof(m->values[0]), "%s", value);
    m->n++;
}

static const char *meta_seen_value(const meta_seen_t *m, const char *field)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->fields[i], field) == 0)
            return m->values[i];
    return NULL;
}

static void test_meta(void **state)
{
    (void)state;
    store_t *st = open_memory();
    char *v = NULL;
    assert_int_equal(store_meta_get(st, "s", "status", &v), -ENOENT);
    assert_null(v);
    assert_int_equal(store_meta_put(st, "s", "status", "{\"live\": true}", 60000), 0);
    assert_int_equal(store_meta_put(st, "s", "viewers:node-a", "12", 60000), 0);
    assert_int_equal(store_meta_put(st, "s", "viewers:node-b", "3 and spaces", 60000), 0);
    assert_int_equal(store_meta_put(st, "s", "viewers:node-c", "old", 80), 0);
    assert_int_equal(store_meta_put(st, "other", "viewers:node-a", "99", 60000), 0);
    assert_int_equal(store_meta_get(st, "s", "status", &v), 0);
    assert_string_equal(v, "{\"live\": true}");
    free(v);
    assert_int_equal(store_meta_put(st, "s", "status", "replaced", 60000), 0);
    assert_int_equal(store_meta_get(st, "s", "status", &v), 0);
    assert_string_equal(v, "replaced");
    free(v);

    meta_seen_t seen = {0};
    assert_int_equal(store_meta_scan(st, "s", "viewers:", meta_collect, &seen), 0);
    assert_int_equal(seen.n, 3);
    assert_string_equal(meta_seen_value(&seen, "viewers:node-a"), "12");
    assert_string_equal(meta_seen_value(&seen, "viewers:node-b"), "3 and spaces");
    assert_string_equal(meta_seen_value(&seen, "viewers:node-c"), "old");

    usleep(200 * 1000); /* node-c's record expires */
    assert_int_equal(store_meta_get(st, "s", "viewers:node-c", &v), -ENOENT);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_meta_scan(st, "s", "viewers:", meta_collect, &seen), 0);
    assert_int_equal(seen.n, 2);
    assert_null(meta_seen_value(&seen, "viewers:node-c"));
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_meta_scan(st, "s", "", meta_collect, &seen), 0);
    assert_int_equal(seen.n, 3); /* no prefix: every field, status included */
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_meta_scan(st, "none", "", meta_collect, &seen), 0);
    assert_int_equal(seen.n, 0);

    assert_int_equal(store_meta_put(st, "s", "f", "v", 0), -EINVAL);
    assert_int_equal(store_meta_put(st, "s", "", "v", 1000), -EINVAL);
    assert_int_equal(store_meta_put(st, "bad id!", "f", "v", 1000), -EINVAL);
    store_close(st);
}

typedef struct lost_count {
    int n;
    char id[STORE_ID_MAX];
} lost_count_t;

static void lost_cb(void *opaque, const char *stream_id)
{
    lost_count_t *c = opaque;
    c->n++;
    snprintf(c->id, sizeof(c->id), "%s", stream_id);
}

static void test_node_id_stats_revoke(void **state)
{
    (void)state;
    store_t *a = open_memory();
    store_t *b = open_memory();
    assert_true(strlen(store_node_id(a)) > 0);
    assert_string_not_equal(store_node_id(a), store_node_id(b));
    assert_string_equal(store_node_id(a), store_node_id(a)); /* stable */

    store_stats_t s0, s1;
    store_get_stats(a, &s0);
    assert_true(s0.connected);
    assert_int_equal(s0.commits + s0.gets + s0.registry_ops + s0.meta_ops + s0.errors, 0);
    put(a, "x", "index.m3u8", "pl", 0);
    blob_t *got = NULL;
    assert_int_equal(store_get(a, "x", "index.m3u8", &got), 0);
    blob_unref(got);
    assert_int_equal(store_get(a, "x", "missing", &got), -ENOENT);
    assert_int_equal(store_stream_add(a, "x", "X", "kx"), 0);
    char id[STORE_ID_MAX];
    assert_int_equal(store_stream_auth(a, "kx", id), 0);
    assert_int_equal(store_meta_put(a, "x", "f", "v", 1000), 0);
    store_get_stats(a, &s1);
    assert_int_equal(s1.commits, 1);
    assert_int_equal(s1.gets, 2);
    assert_int_equal(s1.registry_ops, 2);
    assert_int_equal(s1.meta_ops, 1);
    assert_int_equal(s1.errors, 0); /* -ENOENT is an answer, not an error */

    /* revoke: the local lease's lost_cb runs once, before revoke returns */
    lost_count_t lost = {0}, other = {0};
    store_lease_t *l = NULL, *lo = NULL;
    assert_int_equal(store_lease_acquire(a, "x", true, lost_cb, &lost, &l), 0);
    assert_int_equal(store_lease_acquire(a, "y", true, lost_cb, &other, &lo), 0);
    assert_int_equal(store_lease_revoke(a, "x"), 0);
    assert_int_equal(lost.n, 1);
    assert_string_equal(lost.id, "x");
    assert_int_equal(other.n, 0); /* another stream's lease is untouched */
    assert_int_equal(store_lease_revoke(a, "x"), 0); /* at most once per lease */
    assert_int_equal(lost.n, 1);
    assert_int_equal(store_lease_revoke(a, "nobody"), 0);
    assert_int_equal(store_lease_revoke(a, "bad id!"), -EINVAL);
    store_lease_release(l);
    store_lease_release(lo);
    assert_int_equal(other.n, 0);
    store_close(a);
    store_close(b);
}

typedef struct {
    store_t *st;
    int stop;
} race_ctx_t;

static void *reader(void *arg)
{
    race_ctx_t *c = arg;
    while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
        blob_t *pl = NULL, *seg = NULL;
        /* A playlist that names segment N is always committed with N. */
        if (store_get(c->st, "r", "index.m3u8", &pl) == 0) {
            char name[32];
            snprintf(name, sizeof(name), "%s.m4s", (const char *)pl->data);
            assert_int_equal(store_get(c->st, "r", name, &seg), 0);
            blob_unref(seg);
            blob_unref(pl);
        }
    }
    return NULL;
}

static void test_atomic_commit_under_readers(void **state)
{
    (void)state;
    race_ctx_t c = {open_memory(), 0};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, reader, &c);
    for (int n = 0; n < 3000; n++) {
        char seg[32], num[16];
        snprintf(seg, sizeof(seg), "%d.m4s", n);
        snprintf(num, sizeof(num), "%d", n);
        blob_t *s = blob_new("media", 5), *p = blob_new(num, strlen(num));
        /* The segment is listed after the playlist on purpose: the commit,
         * not the order of its operations, makes both visible at once. */
        store_op_t ops[2] = {{.kind = STORE_OP_PUT, .name = "index.m3u8", .blob = p},
                             {.kind = STORE_OP_PUT, .name = seg, .blob = s}};
        assert_int_equal(store_commit(c.st, "r", ops, 2), 0);
        blob_unref(s);
        blob_unref(p);
    }
    __atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    store_close(c.st);
}

/* ---- the memory bound ---------------------------------------------------- */

#define SEG_BYTES 10000

static void put_seg(store_t *st, const char *id, const char *name, int64_t ttl)
{
    static char fill[SEG_BYTES];
    memset(fill, 'm', sizeof(fill));
    blob_t *b = blob_new(fill, sizeof(fill));
    store_op_t op = {.kind = STORE_OP_PUT, .name = name, .blob = b, .ttl_ms = ttl};
    assert_int_equal(store_commit(st, id, &op, 1), 0);
    blob_unref(b);
}

static void expire(store_t *st, const char *id, const char *name, int64_t ttl)
{
    store_op_t op = {.kind = STORE_OP_EXPIRE, .name = name, .ttl_ms = ttl};
    assert_int_equal(store_commit(st, id, &op, 1), 0);
}

static bool present(store_t *st, const char *id, const char *name)
{
    blob_t *b = NULL;
    int rc = store_get(st, id, name, &b);
    blob_unref(b);
    assert_true(rc == 0 || rc == -ENOENT);
    return rc == 0;
}

static store_stats_t stats_of(store_t *st)
{
    store_stats_t s;
    store_get_stats(st, &s);
    return s;
}

static void sleep_ms(int ms)
{
    usleep((useconds_t)ms * 1000);
}

static void watch_flag_cb(void *opaque, const char *stream_id)
{
    (void)stream_id;
    __atomic_store_n((int *)opaque, 1, __ATOMIC_RELEASE);
}

/* Ended streams (no lease) go first, the one that ended first first; then
 * what left a playlist, the soonest due first; a live window never, even
 * over the limit; objects without a TTL never. An eviction looks like an
 * expiry: -ENOENT, and no watcher woken. */
static void test_memory_limit_eviction_order(void **state)
{
    (void)state;
    store_t *st = open_memory();
    assert_int_equal(store_set_memory_limit(st, 0, 60000), 0);
    put_seg(st, "old", "0.m4s", 60000);
    put_seg(st, "old", "1.m4s", 60000);
    put_seg(st, "old", "2.m4s", 60000);
    put(st, "old", "next-msn", "3", 0); /* bookkeeping without a TTL */
    sleep_ms(20);
    put_seg(st, "newer", "0.m4s", 60000);
    put_seg(st, "newer", "1.m4s", 60000);
    put_seg(st, "newer", "2.m4s", 60000);
    sleep_ms(20);
    /* "old" and "newer" have no publisher (no lease): they ended. */
    store_lease_t *lease = NULL;
    assert_int_equal(store_lease_acquire(st, "live", true, NULL, NULL, &lease), 0);
    put_seg(st, "live", "1.m4s", 60000);
    put_seg(st, "live", "2.m4s", 60000);
    put_seg(st, "live", "3.m4s", 60000);
    expire(st, "live", "1.m4s", 30000); /* left the playlist */
    expire(st, "live", "2.m4s", 20000); /* left it too, due sooner */
    int woken = 0;
    store_watch_t *w = NULL;
    assert_int_equal(store_watch_add(st, "old", watch_flag_cb, &woken, &w), 0);

    store_stats_t s = stats_of(st);
    assert_true(s.memory_bytes > 9 * SEG_BYTES && s.memory_bytes < 10 * SEG_BYTES);
    assert_int_equal(s.memory_limit, 0);
    assert_int_equal(s.evictions, 0);
    const uint64_t limit = 95000;
    assert_int_equal(store_set_memory_limit(st, limit, 60000), 0);
    assert_int_equal(stats_of(st).memory_limit, limit);

    /* Over the limit: the stream idle the longest goes, all its media. */
    put_seg(st, "live", "4.m4s", 60000);
    s = stats_of(st);
    assert_true(s.memory_bytes <= limit);
    assert_int_equal(s.evictions, 3);
    for (int i = 0; i < 3; i++) {
        char n[16];
        snprintf(n, sizeof(n), "%d.m4s", i);
        assert_false(present(st, "old", n));
        assert_true(present(st, "newer", n));
    }
    assert_true(present(st, "old", "next-msn"));
    assert_int_equal(__atomic_load_n(&woken, __ATOMIC_ACQUIRE), 0); /* like an expiry */
    store_watch_remove(w);

    /* Then the next idle stream, before anything of the live one. */
    put_seg(st, "live", "5.m4s", 60000);
    put_seg(st, "live", "6.m4s", 60000);
    assert_true(present(st, "newer", "0.m4s"));
    put_seg(st, "live", "7.m4s", 60000);
    s = stats_of(st);
    assert_true(s.memory_bytes <= limit);
    assert_int_equal(s.evictions, 6);
    assert_false(present(st, "newer", "0.m4s"));
    assert_false(present(st, "newer", "2.m4s"));
    assert_true(present(st, "live", "1.m4s"));
    assert_true(present(st, "live", "2.m4s"));

    /* Then what left the playlist, the soonest due first. */
    put_seg(st, "live", "8.m4s", 60000);
    put_seg(st, "live", "9.m4s", 60000);
    put_seg(st, "live", "10.m4s", 60000);
    s = stats_of(st);
    assert_true(s.memory_bytes <= limit);
    assert_int_equal(s.evictions, 7);
    assert_false(present(st, "live", "2.m4s"));
    assert_true(present(st, "live", "1.m4s"));
    put_seg(st, "live", "11.m4s", 60000);
    assert_int_equal(stats_of(st).evictions, 8);
    assert_false(present(st, "live", "1.m4s"));

    /* Only the live window is left: the commit is accepted over the limit
     * and nothing of it goes. */
    put_seg(st, "live", "12.m4s", 60000);
    s = stats_of(st);
    assert_true(s.memory_bytes > limit);
    assert_int_equal(s.evictions, 8);
    for (int i = 3; i <= 12; i++) {
        char n[16];
        snprintf(n, sizeof(n), "%d.m4s", i);
        assert_true(present(st, "live", n));
    }
    assert_true(present(st, "old", "next-msn"));

    /* Deleting brings the count down again; 0 lifts the limit. */
    store_op_t del = {.kind = STORE_OP_DELETE, .name = "12.m4s"};
    assert_int_equal(store_commit(st, "live", &del, 1), 0);
    assert_true(stats_of(st).memory_bytes <= limit);
    assert_int_equal(store_drop_objects(st, "live"), 0);
    assert_true(stats_of(st).memory_bytes < 1000); /* "next-msn" of "old" */
    store_lease_release(lease);
    assert_int_equal(store_set_memory_limit(st, 0, 0), 0);
    assert_int_equal(store_set_memory_limit(st, 1, -1), -EINVAL);
    store_close(st);
}

/* Streams published one after another, each ended (its lease released)
 * when the next starts: the store never holds more than the limit, and the
 * live stream's objects are all there after every commit. */
static void test_memory_limit_bound(void **state)
{
    (void)state;
    store_t *st = open_memory();
    const uint64_t limit = 200000;
    assert_int_equal(store_set_memory_limit(st, limit, 0), 0);
    uint64_t peak = 0;
    for (int k = 0; k < 12; k++) {
        char id[16];
        snprintf(id, sizeof(id), "s%d", k);
        store_lease_t *lease = NULL;
        assert_int_equal(store_lease_acquire(st, id, true, NULL, NULL, &lease), 0);
        for (int i = 0; i < 6; i++) {
            char name[16];
            snprintf(name, sizeof(name), "%d.m4s", i);
            put_seg(st, id, name, 600000); /* an ended stream keeps its media 10 min */
            put(st, id, "index.m3u8", name, 600000);
            store_stats_t s = stats_of(st);
            if (s.memory_bytes > peak)
                peak = s.memory_bytes;
            assert_true(s.memory_bytes <= limit);
            for (int j = 0; j <= i; j++) {
                snprintf(name, sizeof(name), "%d.m4s", j);
                assert_true(present(st, id, name));
            }
        }
        store_lease_release(lease); /* the publisher leaves; the next one starts */
    }
    store_stats_t s = stats_of(st);
    /* 12 streams of ~60 KB went through a 200 KB store. */
    assert_true(s.evictions >= 6 * 8);
    assert_true(peak > limit / 2);
    assert_true(present(st, "s11", "5.m4s"));
    assert_false(present(st, "s0", "0.m4s"));
    store_close(st);
}

/* A live stream (leased) that stops committing for idle_ms is idle too:
 * its media goes before a grace-time object of a stream still committing. */
static void test_memory_limit_stalled_publisher(void **state)
{
    (void)state;
    store_t *st = open_memory();
    assert_int_equal(store_set_memory_limit(st, 45000, 100), 0);
    store_lease_t *a = NULL, *b = NULL;
    assert_int_equal(store_lease_acquire(st, "stalled", true, NULL, NULL, &a), 0);
    assert_int_equal(store_lease_acquire(st, "going", true, NULL, NULL, &b), 0);
    put_seg(st, "stalled", "0.m4s", 60000);
    put_seg(st, "stalled", "1.m4s", 60000);
    put_seg(st, "going", "0.m4s", 60000);
    expire(st, "going", "0.m4s", 10000);
    put_seg(st, "going", "1.m4s", 60000);
    /* Under idle_ms, both are live: over the limit, "going"'s grace-time
     * segment is what goes. */
    put_seg(st, "going", "2.m4s", 60000);
    assert_int_equal(stats_of(st).evictions, 1);
    assert_false(present(st, "going", "0.m4s"));
    assert_true(present(st, "stalled", "0.m4s"));
    sleep_ms(250); /* "stalled" has not committed for idle_ms */
    put_seg(st, "going", "3.m4s", 60000);
    put_seg(st, "going", "4.m4s", 60000);
    assert_false(present(st, "stalled", "0.m4s"));
    assert_false(present(st, "stalled", "1.m4s"));
    assert_true(present(st, "going", "4.m4s"));
    assert_int_equal(stats_of(st).evictions, 3);
    assert_true(stats_of(st).memory_bytes <= 45000);
    store_lease_release(a);
    store_lease_release(b);
    store_close(st);
}

/* Without a limit nothing is evicted; the stats follow puts and expiry. */
static void test_memory_unlimited(void **state)
{
    (void)state;
    store_t *st = open_memory();
    for (int i = 0; i < 30; i++) {
        char name[16];
        snprintf(name, sizeof(name), "%d.m4s", i);
        put_seg(st, "a", name, i < 10 ? 50 : 60000);
    }
    store_stats_t s = stats_of(st);
    assert_true(s.memory_bytes >= 30 * SEG_BYTES);
    assert_int_equal(s.memory_limit, 0);
    sleep_ms(1100); /* the next commit sweeps the expired ten */
    put_seg(st, "a", "30.m4s", 60000);
    s = stats_of(st);
    assert_true(s.memory_bytes >= 21 * SEG_BYTES && s.memory_bytes < 22 * SEG_BYTES);
    assert_int_equal(s.evictions, 0);
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_replace_delete),
        cmocka_unit_test(test_reader_keeps_blob_after_replace),
        cmocka_unit_test(test_batch_and_many_objects),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_registry_manage),
        cmocka_unit_test(test_meta),
        cmocka_unit_test(test_node_id_stats_revoke),
        cmocka_unit_test(test_atomic_commit_under_readers),
        cmocka_unit_test(test_memory_limit_eviction_order),
        cmocka_unit_test(test_memory_limit_bound),
        cmocka_unit_test(test_memory_limit_stalled_publisher),
        cmocka_unit_test(test_memory_unlimited),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
