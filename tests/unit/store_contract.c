/* The store contract (store_contract.h): one test per behaviour of
 * store/include/store.h that every backend has, written against store.h alone:
 * objects and atomic commits, expiry, argument checks, watches, the stream
 * registry and its management, meta records, node ids and stats, and lease
 * revocation on the owning node. Each test runs on the cmocka thread with
 * the fixture's nodes a (the writer) and b (another node reading the same
 * data; a itself for the memory store); a few start reader or writer
 * threads of their own and join them before returning.
 *
 * Reads on b of an object that a has since replaced or expired are only
 * made for names the Redis object cache never keeps (playlists, other
 * names): a node may serve an immutable segment it already read for a
 * bounded time after it went (test_store_redis.c tests that cache). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clock.h"
#include "store.h"
#include "store_contract.h"
#include "test_util.h"

int store_contract_setup(void **state)
{
    store_contract_t *f = *state;
    if (f->reset)
        f->reset();
    f->a = f->open();
    assert_string_equal(store_backend_name(f->a), f->backend);
    f->b = f->nodes_share_data ? f->open() : f->a;
    return 0;
}

int store_contract_teardown(void **state)
{
    store_contract_t *f = *state;
    if (f->b != f->a)
        store_close(f->b);
    store_close(f->a);
    f->a = f->b = NULL;
    return 0;
}


/* ---- objects ---------------------------------------------------------------- */

void store_contract_put_get_replace_delete(void **state)
{
    store_contract_t *f = *state;
    store_t *a = f->a, *b = f->b;
    blob_t *got = NULL;
    assert_int_equal(store_get(b, "s1", "master.m3u8", &got), -ENOENT);
    assert_null(got);
    store_test_put(a, "s1", "master.m3u8", "v1", 0);
    store_test_put(a, "s2", "master.m3u8", "other", 0);
    store_test_assert_object(b, "s1", "master.m3u8", "v1"); /* another node reads it */
    store_test_put(a, "s1", "master.m3u8", "v2", 0);
    store_test_assert_object(b, "s1", "master.m3u8", "v2");
    store_test_assert_object(b, "s2", "master.m3u8", "other");

    /* Bytes, NUL included, come back as they went in; one commit, two objects. */
    blob_t *seg = blob_new("segment-bytes\0with-nul", 22);
    blob_t *pl = blob_new("#EXTM3U\n0.m4s\n", 14);
    store_op_t ops[] = {{.kind = STORE_OP_PUT, .name = "720p/0.m4s", .blob = seg},
                        {.kind = STORE_OP_PUT, .name = "720p/index.m3u8", .blob = pl}};
    assert_int_equal(store_commit(a, "s1", ops, 2), 0);
    assert_int_equal(store_get(b, "s1", "720p/0.m4s", &got), 0);
    assert_int_equal(got->size, 22);
    assert_memory_equal(got->data, seg->data, 22);
    blob_unref(got);
    store_test_assert_object(b, "s1", "720p/index.m3u8", "#EXTM3U\n0.m4s\n");
    blob_unref(seg);
    blob_unref(pl);

    store_op_t del = {.kind = STORE_OP_DELETE, .name = "master.m3u8"};
    assert_int_equal(store_commit(a, "s1", &del, 1), 0);
    assert_int_equal(store_get(b, "s1", "master.m3u8", &got), -ENOENT);
    store_test_assert_object(b, "s2", "master.m3u8", "other");
    del.name = "720p/index.m3u8";
    assert_int_equal(store_commit(a, "s1", &del, 1), 0);
    assert_int_equal(store_get(b, "s1", "720p/index.m3u8", &got), -ENOENT);
}

void store_contract_reader_keeps_blob_after_replace(void **state)
{
    store_contract_t *f = *state;
    store_test_put(f->a, "s", "a", "first", 0);
    blob_t *held = NULL;
    assert_int_equal(store_get(f->b, "s", "a", &held), 0);
    store_test_put(f->a, "s", "a", "second", 0);
    /* The reader's snapshot is immutable and still valid. */
    assert_int_equal(held->size, 5);
    assert_memory_equal(held->data, "first", 5);
    blob_unref(held);
    store_test_assert_object(f->b, "s", "a", "second");
}

void store_contract_batch_and_many_objects(void **state)
{
    store_contract_t *f = *state;
    enum { N = 2000 };
    static char names[N][24];
    static store_op_t ops[N];
    blob_t *b = blob_new("x", 1);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "720p/%d.m4s", i);
        ops[i] = (store_op_t){.kind = STORE_OP_PUT, .name = names[i], .blob = b};
    }
    assert_int_equal(store_commit(f->a, "big", ops, N), 0); /* grows the memory table */
    blob_unref(b);
    for (int i = 0; i < N; i += 97)
        store_test_assert_object(f->a, "big", names[i], "x");
    assert_int_equal(store_drop_objects(f->a, "big"), 0);
    blob_t *got = NULL;
    assert_int_equal(store_get(f->a, "big", names[5], &got), -ENOENT);
}

/* drop_objects removes every object of one stream only. */
void store_contract_drop_objects(void **state)
{
    store_contract_t *f = *state;
    store_test_put(f->a, "s1", "a.m4s", "1", 0);
    store_test_put(f->a, "s1", "index.m3u8", "pl", 0);
    store_test_put(f->a, "s2", "a.m4s", "2", 0);
    assert_int_equal(store_drop_objects(f->a, "s1"), 0);
    blob_t *got = NULL;
    assert_int_equal(store_get(f->a, "s1", "a.m4s", &got), -ENOENT);
    assert_int_equal(store_get(f->b, "s1", "index.m3u8", &got), -ENOENT);
    store_test_assert_object(f->b, "s2", "a.m4s", "2");
}

/* A PUT with a TTL and an EXPIRE of an existing object both end it; what
 * has no TTL stays. */
void store_contract_expiry(void **state)
{
    store_contract_t *f = *state;
    store_t *a = f->a, *b = f->b;
    store_test_put(a, "s", "short.m3u8", "gone soon", 200);
    store_test_put(a, "s", "keep", "stays", 0);
    store_test_put(a, "s", "later", "expire me", 0);
    store_test_put(a, "s", "720p/0.m4s", "segment", 0);
    store_op_t ex[] = {{.kind = STORE_OP_EXPIRE, .name = "later", .ttl_ms = 200},
                       {.kind = STORE_OP_EXPIRE, .name = "720p/0.m4s", .ttl_ms = 200}};
    assert_int_equal(store_commit(a, "s", ex, 2), 0);
    store_test_assert_object(b, "s", "short.m3u8", "gone soon");
    store_test_assert_object(b, "s", "later", "expire me");
    store_test_assert_object(b, "s", "720p/0.m4s", "segment");
    sleep_ms(400);
    blob_t *got = NULL;
    assert_int_equal(store_get(a, "s", "short.m3u8", &got), -ENOENT);
    assert_int_equal(store_get(b, "s", "short.m3u8", &got), -ENOENT);
    assert_int_equal(store_get(a, "s", "later", &got), -ENOENT);
    /* (b may still hold 0.m4s in a Redis object cache: immutable, and
     * bounded in age; the writer's node answers from the store.) */
    assert_int_equal(store_get(a, "s", "720p/0.m4s", &got), -ENOENT);
    store_test_assert_object(b, "s", "keep", "stays");
}

void store_contract_bad_arguments(void **state)
{
    store_contract_t *f = *state;
    char longname[STORE_NAME_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    blob_t *b = blob_new("x", 1);
    store_op_t ops[2] = {{.kind = STORE_OP_PUT, .name = "ok", .blob = b},
                         {.kind = STORE_OP_PUT, .name = longname, .blob = b}};
    assert_int_equal(store_commit(f->a, "s", ops, 2), -ENAMETOOLONG);
    blob_t *got = NULL;
    assert_int_equal(store_get(f->b, "s", "ok", &got), -ENOENT); /* nothing applied */
    assert_int_equal(store_commit(f->a, "bad/id", ops, 1), -EINVAL);
    blob_unref(b);
}

typedef struct race_ctx {
    store_t *st;
    atomic_int stop;
} race_ctx_t;

static void *race_reader(void *arg)
{
    race_ctx_t *c = arg;
    while (!atomic_load(&c->stop)) {
        blob_t *pl = NULL, *seg = NULL;
        /* A playlist that names segment N is always committed with N. */
        if (store_get(c->st, "r", "index.m3u8", &pl) == 0) {
            char name[32];
            snprintf(name, sizeof(name), "%.*s.m4s", (int)pl->size, (const char *)pl->data);
            assert_int_equal(store_get(c->st, "r", name, &seg), 0);
            blob_unref(seg);
            blob_unref(pl);
        }
    }
    return NULL;
}

void store_contract_atomic_commit_under_readers(void **state)
{
    store_contract_t *f = *state;
    race_ctx_t c = {.st = f->b};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, race_reader, &c), 0);
    for (int n = 0; n < 3000; n++) {
        char seg[32], num[16];
        snprintf(seg, sizeof(seg), "%d.m4s", n);
        snprintf(num, sizeof(num), "%d", n);
        blob_t *s = blob_new("media", 5), *p = blob_new(num, strlen(num));
        /* The segment is listed after the playlist on purpose: the commit,
         * not the order of its operations, makes both visible at once. */
        store_op_t ops[2] = {{.kind = STORE_OP_PUT, .name = "index.m3u8", .blob = p},
                             {.kind = STORE_OP_PUT, .name = seg, .blob = s}};
        assert_int_equal(store_commit(f->a, "r", ops, 2), 0);
        blob_unref(s);
        blob_unref(p);
    }
    atomic_store(&c.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
}

/* ---- watches ---------------------------------------------------------------- */

typedef struct late_commit {
    store_t *st;
    int delay_ms;
} late_commit_t;

static void *late_commit(void *arg)
{
    late_commit_t *lc = arg;
    sleep_ms(lc->delay_ms);
    store_test_put(lc->st, "w", "index.m3u8", "later", 0);
    return NULL;
}

/* A commit on a wakes a watch of its stream on b, once; another stream's
 * commit does not; store_wait_change sees a change or times out. */
void store_contract_watch(void **state)
{
    store_contract_t *f = *state;
    store_t *a = f->a, *b = f->b;
    store_test_flag_t changed = {0};
    store_watch_t *w = NULL;
    assert_int_equal(store_watch_add(b, "w", store_test_flag_cb, &changed, &w), 0);
    store_test_put(a, "u", "index.m3u8", "unrelated", 0);
    sleep_ms(100);
    assert_int_equal(atomic_load(&changed.count), 0);
    store_test_put(a, "w", "index.m3u8", "pl1", 0);
    assert_true(store_test_flag_wait(&changed, 3000));
    store_test_put(a, "w", "index.m3u8", "pl2", 0); /* one-shot */
    sleep_ms(100);
    assert_int_equal(atomic_load(&changed.count), 1);
    store_watch_remove(w);
    store_watch_remove(NULL);

    /* A watch removed before it fired never fires. */
    store_test_flag_t never = {0};
    assert_int_equal(store_watch_add(b, "w", store_test_flag_cb, &never, &w), 0);
    store_watch_remove(w);
    store_test_put(a, "w", "index.m3u8", "pl3", 0);
    sleep_ms(100);
    assert_int_equal(atomic_load(&never.count), 0);

    assert_int_equal(store_wait_change(b, "w", 100), -ETIMEDOUT);
    late_commit_t lc = {.st = a, .delay_ms = 100};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, late_commit, &lc), 0);
    assert_int_equal(store_wait_change(b, "w", 5000), 0);
    pthread_join(t, NULL);
    store_test_assert_object(b, "w", "index.m3u8", "later");
}

/* ---- the stream registry ---------------------------------------------------- */

void store_contract_registry(void **state)
{
    store_contract_t *f = *state;
    store_t *a = f->a, *b = f->b;
    char id[STORE_ID_MAX];
    assert_int_equal(store_stream_add(a, "shop1", "Shop one", "k3y-one"), 0);
    assert_int_equal(store_stream_add(a, "shop2", NULL, "k3y-two"), 0);
    /* Keys added on one node work on every node. */
    assert_int_equal(store_stream_auth(b, "k3y-one", id), 0);
    assert_string_equal(id, "shop1");
    assert_int_equal(store_stream_exists(b, "shop1"), 0);
    assert_int_equal(store_stream_add(b, "shop1", "again", "k3y-three"), -EEXIST);
    assert_int_equal(store_stream_add(b, "shop3", "dup key", "k3y-one"), -EEXIST);
    assert_int_equal(store_stream_add(a, "bad id!", "x", "k"), -EINVAL);
    assert_int_equal(store_stream_add(a, "nokey", "x", ""), -EINVAL);
    assert_int_equal(store_stream_auth(b, "k3y-two", id), 0);
    assert_string_equal(id, "shop2");
    assert_int_equal(store_stream_auth(b, "k3y-on", id), -ENOENT);
    assert_string_equal(id, "");
    assert_int_equal(store_stream_auth(b, "", id), -ENOENT);
    assert_int_equal(store_stream_exists(b, "shop9"), -ENOENT);
    /* Seeding is idempotent on every node; a key of another stream is not. */
    assert_int_equal(store_stream_seed(a, "demo", "demo-key"), 0);
    assert_int_equal(store_stream_seed(b, "demo", "demo-key"), 0);
    assert_int_equal(store_stream_seed(b, "other", "demo-key"), -EEXIST);
    assert_int_equal(store_stream_auth(b, "demo-key", id), 0);
    assert_string_equal(id, "demo");
}

/* Names: the separators of the Redis record formats, a newline, UTF-8. */
#define ZETA_NAME "Zeta | 12|shop\ntwo words"

void store_contract_registry_manage(void **state)
{
    store_contract_t *f = *state;
    store_t *a = f->a, *b = f->b;
    char id[STORE_ID_MAX];
    store_stream_info_t info;
    int64_t before = clock_wall_ms();
    /* Added out of order; names are user text, any bytes but NUL. */
    assert_int_equal(store_stream_add(a, "zeta", ZETA_NAME, "key-z"), 0);
    assert_int_equal(store_stream_add(a, "alpha", "Caf\xc3\xa9 du port", "key-a"), 0);
    assert_int_equal(store_stream_add(a, "mid", NULL, "key-m"), 0);
    int64_t after = clock_wall_ms();
    assert_int_equal(store_stream_seed(a, "seeded", "key-s"), 0);

    assert_int_equal(store_stream_get(b, "alpha", &info), 0); /* read on another node */
    assert_string_equal(info.id, "alpha");
    assert_string_equal(info.name, "Caf\xc3\xa9 du port");
    assert_true(info.created_ms >= before && info.created_ms <= after);
    assert_int_equal(store_stream_get(b, "zeta", &info), 0);
    assert_string_equal(info.name, ZETA_NAME);
    assert_int_equal(store_stream_get(b, "mid", &info), 0);
    assert_string_equal(info.name, "mid"); /* no name: the id */
    assert_int_equal(store_stream_get(b, "seeded", &info), 0);
    assert_int_equal(info.created_ms, 0);
    assert_int_equal(store_stream_get(b, "nope", &info), -ENOENT);
    assert_int_equal(store_stream_get(b, "bad id!", &info), -ENOENT);

    /* Names: 255 bytes fit, 256 do not. */
    char name[STORE_NAME_LEN_MAX + 1];
    memset(name, 'n', sizeof(name));
    name[STORE_NAME_LEN_MAX] = '\0';
    assert_int_equal(store_stream_add(a, "longer", name, "key-l2"), -ENAMETOOLONG);
    assert_int_equal(store_stream_exists(b, "longer"), -ENOENT);
    name[STORE_NAME_LEN_MAX - 1] = '\0';
    assert_int_equal(store_stream_add(a, "long", name, "key-l"), 0);
    assert_int_equal(store_stream_get(b, "long", &info), 0);
    assert_int_equal(strlen(info.name), STORE_NAME_LEN_MAX - 1);
    assert_string_equal(info.name, name);

    store_stream_info_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_stream_list(b, &list, &n), 0);
    const char *want[] = {"alpha", "long", "mid", "seeded", "zeta"};
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(list[i].id, want[i]);
    assert_string_equal(list[4].name, ZETA_NAME);
    free(list);

    /* remove on b: a refuses the key at once; the id and the key are free again */
    assert_int_equal(store_stream_remove(b, "alpha"), 0);
    assert_int_equal(store_stream_auth(a, "key-a", id), -ENOENT);
    assert_int_equal(store_stream_exists(a, "alpha"), -ENOENT);
    assert_int_equal(store_stream_get(a, "alpha", &info), -ENOENT);
    assert_int_equal(store_stream_remove(a, "alpha"), -ENOENT);
    assert_int_equal(store_stream_auth(a, "key-z", id), 0); /* the others are untouched */
    assert_string_equal(id, "zeta");
    assert_int_equal(store_stream_add(a, "alpha2", "again", "key-a"), 0);

    /* rotate on b: old key refused on a, new key accepted, record kept */
    assert_int_equal(store_stream_rotate(b, "zeta", "key-z2"), 0);
    assert_int_equal(store_stream_auth(a, "key-z", id), -ENOENT);
    assert_int_equal(store_stream_auth(a, "key-z2", id), 0);
    assert_string_equal(id, "zeta");
    assert_int_equal(store_stream_get(a, "zeta", &info), 0);
    assert_string_equal(info.name, ZETA_NAME);
    assert_true(info.created_ms >= before && info.created_ms <= after);
    assert_int_equal(store_stream_rotate(a, "zeta", "key-z2"), 0); /* same key: no change */
    /* to another stream's key: refused, nothing changes */
    assert_int_equal(store_stream_rotate(a, "zeta", "key-m"), -EEXIST);
    assert_int_equal(store_stream_auth(b, "key-m", id), 0);
    assert_string_equal(id, "mid");
    assert_int_equal(store_stream_auth(b, "key-z2", id), 0);
    assert_string_equal(id, "zeta");
    assert_int_equal(store_stream_rotate(a, "nope", "key-x"), -ENOENT);
    assert_int_equal(store_stream_rotate(a, "zeta", ""), -EINVAL);

    /* The recording override: none until set; set on one node and read on
     * the other, cleared, kept by a rotation, visible in the list, gone with
     * the stream; store_stream_record() applies it. */
    assert_int_equal(store_stream_get(b, "mid", &info), 0);
    assert_int_equal(info.record, STORE_RECORD_DEFAULT);
    assert_true(store_stream_record(b, "mid", true));
    assert_false(store_stream_record(b, "mid", false));
    assert_int_equal(store_stream_set_record(a, "mid", STORE_RECORD_OFF), 0);
    assert_false(store_stream_record(b, "mid", true));
    assert_int_equal(store_stream_set_record(a, "zeta", STORE_RECORD_ON), 0);
    assert_true(store_stream_record(b, "zeta", false));
    assert_int_equal(store_stream_rotate(a, "zeta", "key-z3"), 0);
    assert_true(store_stream_record(b, "zeta", false));
    assert_false(store_stream_record(b, "mid", true));
    assert_int_equal(store_stream_get(b, "zeta", &info), 0);
    assert_int_equal(info.record, STORE_RECORD_ON);
    assert_int_equal(store_stream_list(b, &list, &n), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(list[i].record, strcmp(list[i].id, "mid") == 0    ? STORE_RECORD_OFF
                                         : strcmp(list[i].id, "zeta") == 0 ? STORE_RECORD_ON
                                                                           : STORE_RECORD_DEFAULT);
    free(list);
    assert_int_equal(store_stream_set_record(b, "mid", STORE_RECORD_DEFAULT), 0);
    assert_true(store_stream_record(a, "mid", true));
    assert_int_equal(store_stream_set_record(a, "mid", 2), -EINVAL);
    assert_int_equal(store_stream_set_record(a, "nope", STORE_RECORD_ON), -ENOENT);
    assert_false(store_stream_record(b, "nope", false)); /* unknown: the default */
    assert_true(store_stream_record(b, "nope", true));

    /* The stream's own ladder: opaque text, none until set; set on one node
     * and read on the other, kept by a rotation, in the list, cleared by
     * NULL or "", gone with the stream. */
    static const char ladder[] = "{\"rungs\":[{\"name\":\"480p\",\"bitrate_kbps\":900},"
                                 "\"360p\"],\"preset\":\"superfast\",\"passthrough\":\"never\"}";
    assert_int_equal(store_stream_get(b, "zeta", &info), 0);
    assert_string_equal(info.ladder, "");
    assert_int_equal(store_stream_set_ladder(a, "zeta", ladder), 0);
    assert_int_equal(store_stream_set_ladder(a, "mid", "{}"), 0);
    assert_int_equal(store_stream_get(b, "zeta", &info), 0);
    assert_string_equal(info.ladder, ladder);
    assert_int_equal(info.record, STORE_RECORD_ON); /* fields apart */
    assert_int_equal(store_stream_rotate(b, "zeta", "key-z5"), 0);
    assert_int_equal(store_stream_list(b, &list, &n), 0);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(list[i].ladder, strcmp(list[i].id, "zeta") == 0 ? ladder
                                            : strcmp(list[i].id, "mid") == 0 ? "{}"
                                                                             : "");
    free(list);
    assert_int_equal(store_stream_set_ladder(b, "mid", NULL), 0);
    assert_int_equal(store_stream_get(a, "mid", &info), 0);
    assert_string_equal(info.ladder, "");
    assert_int_equal(store_stream_set_ladder(b, "mid", ""), 0); /* clearing none: fine */
    assert_int_equal(store_stream_set_ladder(a, "nope", "{}"), -ENOENT);
    assert_int_equal(store_stream_set_ladder(a, "mid", "{\"a\":\"\n\"}"), -EINVAL);
    char big[STORE_LADDER_MAX + 1];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(store_stream_set_ladder(a, "mid", big), -EMSGSIZE);
    big[STORE_LADDER_MAX - 1] = '\0'; /* the longest that fits */
    assert_int_equal(store_stream_set_ladder(a, "mid", big), 0);
    assert_int_equal(store_stream_get(b, "mid", &info), 0);
    assert_string_equal(info.ladder, big);
    assert_int_equal(store_stream_set_ladder(a, "mid", NULL), 0);

    /* The stream's simulcast outputs: opaque text, "" until set; set on one
     * node and read on the other, kept by a rotation, cleared by NULL or
     * "", refused for an unknown stream, gone with the stream. */
    static const char outputs[] = "[{\"id\":\"o0123456789abcdef\",\"url\":\"rtmp://h/app/k\","
                                  "\"rendition\":\"source\",\"enabled\":true}]";
    char *text = NULL;
    assert_int_equal(store_stream_get_outputs(b, "zeta", &text), 0);
    assert_string_equal(text, "");
    free(text);
    assert_int_equal(store_stream_set_outputs(a, "zeta", outputs), 0);
    assert_int_equal(store_stream_rotate(b, "zeta", "key-z6"), 0);
    assert_int_equal(store_stream_get_outputs(b, "zeta", &text), 0);
    assert_string_equal(text, outputs);
    free(text);
    assert_int_equal(store_stream_get(b, "zeta", &info), 0);
    assert_string_equal(info.ladder, ladder); /* fields apart */
    assert_int_equal(store_stream_get_outputs(a, "mid", &text), 0);
    assert_string_equal(text, "");
    free(text);
    assert_int_equal(store_stream_set_outputs(a, "nope", "[]"), -ENOENT);
    text = (char *)&n; /* must be cleared */
    assert_int_equal(store_stream_get_outputs(b, "nope", &text), -ENOENT);
    assert_null(text);
    assert_int_equal(store_stream_get_outputs(b, "bad id!", &text), -ENOENT);
    assert_int_equal(store_stream_set_outputs(a, "mid", "[\"\t\"]"), -EINVAL);
    char *obig = malloc(STORE_OUTPUTS_MAX + 1);
    assert_non_null(obig);
    memset(obig, 'x', STORE_OUTPUTS_MAX);
    obig[STORE_OUTPUTS_MAX] = '\0';
    assert_int_equal(store_stream_set_outputs(a, "mid", obig), -EMSGSIZE);
    obig[STORE_OUTPUTS_MAX - 1] = '\0'; /* the longest that fits */
    assert_int_equal(store_stream_set_outputs(a, "mid", obig), 0);
    assert_int_equal(store_stream_get_outputs(b, "mid", &text), 0);
    assert_string_equal(text, obig);
    free(text);
    free(obig);
    assert_int_equal(store_stream_set_outputs(b, "mid", NULL), 0);
    assert_int_equal(store_stream_get_outputs(a, "mid", &text), 0);
    assert_string_equal(text, "");
    free(text);
    assert_int_equal(store_stream_set_outputs(b, "mid", ""), 0); /* clearing none: fine */

    assert_int_equal(store_stream_remove(a, "zeta"), 0);
    assert_int_equal(store_stream_add(a, "zeta", "Zeta again", "key-z4"), 0);
    assert_true(store_stream_record(b, "zeta", true)); /* a new stream: no override */
    assert_false(store_stream_record(b, "zeta", false));
    assert_int_equal(store_stream_get(b, "zeta", &info), 0);
    assert_string_equal(info.ladder, ""); /* nor the old stream's ladder */
    assert_int_equal(store_stream_get_outputs(b, "zeta", &text), 0);
    assert_string_equal(text, ""); /* nor its outputs */
    free(text);

    /* remove them all: an empty list is NULL */
    const char *all[] = {"alpha2", "long", "mid", "seeded", "zeta"};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(store_stream_remove(a, all[i]), 0);
    list = (store_stream_info_t *)&n; /* must be overwritten */
    assert_int_equal(store_stream_list(b, &list, &n), 0);
    assert_null(list);
    assert_int_equal(n, 0);
}

/* ---- meta records ----------------------------------------------------------- */

/* What a store_meta_scan reported, for up to 8 fields. */
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

static void meta_count_only(void *opaque, const char *field, const char *value)
{
    (void)field;
    (void)value;
    ((meta_seen_t *)opaque)->n++;
}

static const char *meta_seen_value(const meta_seen_t *m, const char *field)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->fields[i], field) == 0)
            return m->values[i];
    return NULL;
}

void store_contract_meta(void **state)
{
    store_contract_t *f = *state;
    store_t *a = f->a, *b = f->b;
    char *v = NULL;
    assert_int_equal(store_meta_get(b, "s", "status", &v), -ENOENT);
    assert_null(v);
    assert_int_equal(store_meta_put(a, "s", "status", "{\"live\": true}", 60000), 0);
    assert_int_equal(store_meta_put(a, "s", "viewers:node-a", "12", 60000), 0);
    assert_int_equal(store_meta_put(b, "s", "viewers:node-b", "3 and spaces", 60000), 0);
    assert_int_equal(store_meta_put(b, "s", "viewers:node-c", "old", 150), 0);
    assert_int_equal(store_meta_put(b, "other", "viewers:node-a", "99", 60000), 0);
    assert_int_equal(store_meta_get(b, "s", "status", &v), 0);
    assert_string_equal(v, "{\"live\": true}");
    free(v);
    assert_int_equal(store_meta_put(b, "s", "status", "replaced", 60000), 0);
    assert_int_equal(store_meta_get(a, "s", "status", &v), 0);
    assert_string_equal(v, "replaced");
    free(v);

    meta_seen_t seen = {0};
    assert_int_equal(store_meta_scan(a, "s", "viewers:", meta_collect, &seen), 0);
    assert_int_equal(seen.n, 3);
    assert_string_equal(meta_seen_value(&seen, "viewers:node-a"), "12");
    assert_string_equal(meta_seen_value(&seen, "viewers:node-b"), "3 and spaces");
    assert_string_equal(meta_seen_value(&seen, "viewers:node-c"), "old");

    sleep_ms(300); /* node-c's record expires */
    assert_int_equal(store_meta_get(a, "s", "viewers:node-c", &v), -ENOENT);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_meta_scan(a, "s", "viewers:", meta_collect, &seen), 0);
    assert_int_equal(seen.n, 2);
    assert_null(meta_seen_value(&seen, "viewers:node-c"));
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_meta_scan(a, "s", "", meta_collect, &seen), 0);
    assert_int_equal(seen.n, 3); /* no prefix: every field, status included */
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_meta_scan(a, "none", "", meta_collect, &seen), 0);
    assert_int_equal(seen.n, 0);
    assert_int_equal(store_meta_scan(a, "none", "v", meta_collect, &seen), 0);
    assert_int_equal(seen.n, 0);

    /* A final record stays: a put over it from either node keeps it (1);
     * once it has expired, or over any other value, the put writes. */
    assert_int_equal(store_meta_put_unless_final(a, "s", "aud.x", "1 playing", 60000, "1 ended "), 0);
    assert_int_equal(store_meta_put_unless_final(b, "s", "aud.x", "1 ended 9", 150, "1 ended "), 0);
    assert_int_equal(store_meta_put_unless_final(a, "s", "aud.x", "1 playing 2", 60000, "1 ended "),
                     1);
    assert_int_equal(store_meta_put_unless_final(b, "s", "aud.x", "1 ended 10", 60000, "1 ended "),
                     1);
    assert_int_equal(store_meta_get(b, "s", "aud.x", &v), 0);
    assert_string_equal(v, "1 ended 9");
    free(v);
    assert_int_equal(store_meta_put(a, "s", "aud.x", "forced", 60000), 0); /* unguarded: writes */
    assert_int_equal(store_meta_put_unless_final(a, "s", "aud.y", "1 ended 1", 150, "1 ended "), 0);
    sleep_ms(300);
    assert_int_equal(store_meta_put_unless_final(b, "s", "aud.y", "1 playing 3", 60000, "1 ended "),
                     0);
    assert_int_equal(store_meta_get(a, "s", "aud.y", &v), 0);
    assert_string_equal(v, "1 playing 3");
    free(v);
    assert_int_equal(store_meta_put_unless_final(a, "s", "aud.y", "v", 1000, ""), -EINVAL);
    assert_int_equal(store_meta_put_unless_final(a, "s", "aud.y", "v", 1000, NULL), -EINVAL);

    assert_int_equal(store_meta_put(a, "s", "f", "v", 0), -EINVAL);
    assert_int_equal(store_meta_put(a, "s", "", "v", 1000), -EINVAL);
    assert_int_equal(store_meta_put(a, "bad id!", "f", "v", 1000), -EINVAL);
}

/* Rungs on demand: a note of either node is what the other reads; a
 * node's notes within the throttle are not written (the value stays the
 * first one's), later ones are; renditions and streams are apart. */
void store_contract_demand(void **state)
{
    store_contract_t *f = *state;
    store_t *a = f->a, *b = f->b;
    int64_t last = -1;
    assert_int_equal(store_demand_last(b, "s", "720p", &last), -ENOENT);
    int64_t t0 = 1700000000000;
    assert_int_equal(store_demand_note(a, "s", "720p", t0), 1);
    assert_int_equal(store_demand_last(b, "s", "720p", &last), 0);
    assert_true(last == t0);
    /* Within the throttle: nothing written, the first time stays. */
    assert_int_equal(store_demand_note(a, "s", "720p", t0 + 500), 0);
    assert_int_equal(store_demand_last(b, "s", "720p", &last), 0);
    assert_true(last == t0);
    uint64_t ops0, ops1;
    store_stats_t stats;
    store_get_stats(a, &stats);
    ops0 = stats.meta_ops;
    for (int i = 0; i < 1000; i++) /* a thousand viewers' requests */
        assert_int_equal(store_demand_note(a, "s", "720p", t0 + 600), 0);
    store_get_stats(a, &stats);
    ops1 = stats.meta_ops;
    assert_true(ops1 == ops0); /* not one store write */
    /* Past it: written again. */
    assert_int_equal(store_demand_note(a, "s", "720p", t0 + STORE_DEMAND_THROTTLE_MS), 1);
    assert_int_equal(store_demand_last(a, "s", "720p", &last), 0);
    assert_true(last == t0 + STORE_DEMAND_THROTTLE_MS);
    /* Another rendition and another stream are their own. */
    assert_int_equal(store_demand_last(a, "s", "480p", &last), -ENOENT);
    assert_int_equal(store_demand_note(a, "s", "480p", t0 + 1200), 1);
    assert_int_equal(store_demand_note(a, "t", "720p", t0 + 1200), 1);
    assert_int_equal(store_demand_last(b, "s", "480p", &last), 0);
    assert_true(last == t0 + 1200);
    assert_int_equal(store_demand_last(b, "t", "720p", &last), 0);
    assert_true(last == t0 + 1200);
    /* The other node's note is its own throttle's business, and the
     * newest write wins. */
    assert_int_equal(store_demand_note(b, "s", "480p", t0 + 1300), b == a ? 0 : 1);
    /* A clock that went back is not covered by the throttle. */
    assert_int_equal(store_demand_note(a, "s", "720p", t0), 1);
    assert_int_equal(store_demand_last(b, "s", "720p", &last), 0);
    assert_true(last == t0);
    /* Bad names. */
    assert_int_equal(store_demand_note(a, "s", "", t0), -EINVAL);
    assert_int_equal(store_demand_note(a, "s", "a/b", t0), -EINVAL);
    assert_int_equal(store_demand_note(a, "bad id!", "720p", t0), -EINVAL);
    assert_int_equal(store_demand_last(a, "s", "../x", &last), -EINVAL);
    /* A field that is not a number reads as none. */
    assert_int_equal(store_meta_put(a, "s", STORE_DEMAND_PREFIX "360p", "junk", 60000), 0);
    assert_int_equal(store_demand_last(b, "s", "360p", &last), -ENOENT);
}

/* Thousands of records of one stream, as the audience's session records
 * are: replaced in place, expired ones gone from get and scan while new
 * ones keep coming (the memory backend sweeps them out then), other
 * streams' records untouched. */
void store_contract_meta_many(void **state)
{
    store_contract_t *f = *state;
    store_t *a = f->a, *b = f->b;
    char field[32], value[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(field, sizeof(field), "aud.long%05d", i);
        snprintf(value, sizeof(value), "v%d", i);
        assert_int_equal(store_meta_put(a, "s", field, value, 60000), 0);
    }
    /* Long enough for Redis to take 3000 puts (a few hundred ms) before the
     * first expires. */
    for (int i = 0; i < 3000; i++) {
        snprintf(field, sizeof(field), "aud.short%05d", i);
        assert_int_equal(store_meta_put(a, "s", field, "soon gone", 1500), 0);
    }
    assert_int_equal(store_meta_put(b, "t", "aud.long00001", "other stream", 60000), 0);
    for (int i = 0; i < 1000; i++) { /* replaced, from the other handle */
        snprintf(field, sizeof(field), "aud.long%05d", i);
        snprintf(value, sizeof(value), "w%d", i);
        assert_int_equal(store_meta_put(b, "s", field, value, 60000), 0);
    }
    meta_seen_t seen = {0};
    assert_int_equal(store_meta_scan(a, "s", "aud.short", meta_count_only, &seen), 0);
    assert_int_equal(seen.n, 3000);
    sleep_ms(1600);
    for (int i = 0; i < 2000; i++) {
        snprintf(field, sizeof(field), "aud.new%05d", i);
        assert_int_equal(store_meta_put(a, "s", field, "new", 60000), 0);
    }
    char *v = NULL;
    assert_int_equal(store_meta_get(a, "s", "aud.short00042", &v), -ENOENT);
    assert_int_equal(store_meta_get(b, "s", "aud.long00007", &v), 0);
    assert_string_equal(v, "w7");
    free(v);
    assert_int_equal(store_meta_get(a, "s", "aud.long01999", &v), 0);
    assert_string_equal(v, "v1999");
    free(v);
    assert_int_equal(store_meta_get(a, "t", "aud.long00001", &v), 0);
    assert_string_equal(v, "other stream");
    free(v);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_meta_scan(b, "s", "aud.", meta_count_only, &seen), 0);
    assert_int_equal(seen.n, 4000); /* 2000 long (1000 replaced, not doubled) + 2000 new */
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_meta_scan(b, "t", "aud.", meta_count_only, &seen), 0);
    assert_int_equal(seen.n, 1);
}

/* ---- node id, stats, revoke ------------------------------------------------- */

void store_contract_node_id_and_stats(void **state)
{
    store_contract_t *f = *state;
    store_t *a = f->a;
    store_t *other = f->open();
    assert_true(strlen(store_node_id(a)) > 0);
    assert_string_not_equal(store_node_id(a), store_node_id(other));
    assert_string_equal(store_node_id(a), store_node_id(a)); /* stable */
    store_close(other);

    store_stats_t s0, s1;
    store_get_stats(a, &s0);
    assert_true(s0.connected);
    assert_int_equal(s0.commits + s0.gets + s0.registry_ops + s0.meta_ops + s0.errors, 0);
    store_test_put(a, "x", "index.m3u8", "pl", 0);
    blob_t *got = NULL;
    assert_int_equal(store_get(a, "x", "index.m3u8", &got), 0);
    blob_unref(got);
    assert_int_equal(store_get(a, "x", "missing", &got), -ENOENT);
    assert_int_equal(store_stream_add(a, "x", "X", "kx"), 0);
    char id[STORE_ID_MAX];
    assert_int_equal(store_stream_auth(a, "kx", id), 0);
    assert_int_equal(store_meta_put(a, "x", "f", "v", 1000), 0);
    assert_int_equal(store_lease_revoke(a, "nobody"), 0);
    store_get_stats(a, &s1);
    assert_int_equal(s1.commits, 1);
    assert_int_equal(s1.gets, 2);
    assert_int_equal(s1.registry_ops, 3); /* add, auth and the revoke */
    assert_int_equal(s1.meta_ops, 1);
    assert_int_equal(s1.errors, 0); /* -ENOENT is an answer, not an error */
    assert_true(s1.connected);
}

typedef struct lost_count {
    atomic_int n;
    char id[STORE_ID_MAX];
} lost_count_t;

static void lost_cb(void *opaque, const char *stream_id)
{
    lost_count_t *c = opaque;
    snprintf(c->id, sizeof(c->id), "%s", stream_id);
    atomic_fetch_add(&c->n, 1);
}

/* Revoked on the node that owns it: the lease's lost_cb has run, once, when
 * store_lease_revoke returns; nothing later runs it again. (Revoking
 * another node's lease is Redis's: test_store_redis.c.) */
void store_contract_lease_revoke(void **state)
{
    store_contract_t *f = *state;
    store_t *a = f->a;
    lost_count_t lost = {0}, other = {0};
    store_lease_t *l = NULL, *lo = NULL;
    assert_int_equal(store_lease_acquire(a, "x", false, lost_cb, &lost, &l), 0);
    assert_int_equal(store_lease_acquire(a, "y", true, lost_cb, &other, &lo), 0);
    assert_int_equal(store_lease_revoke(a, "x"), 0);
    assert_int_equal(atomic_load(&lost.n), 1);
    assert_string_equal(lost.id, "x");
    assert_int_equal(atomic_load(&other.n), 0); /* another stream's lease is untouched */
    assert_int_equal(store_lease_revoke(a, "x"), 0); /* at most once per lease */
    sleep_ms(300); /* its own notice (and a renewal) change nothing */
    assert_int_equal(atomic_load(&lost.n), 1);
    assert_int_equal(store_lease_revoke(a, "nobody"), 0);
    assert_int_equal(store_lease_revoke(a, "bad id!"), -EINVAL);
    store_lease_release(l);
    store_lease_release(lo);
    store_lease_release(NULL);
    assert_int_equal(atomic_load(&other.n), 0);

    /* The stream is free again: a new publisher gets it without a takeover. */
    assert_int_equal(store_lease_acquire(f->b, "x", false, lost_cb, &lost, &l), 0);
    store_lease_release(l);
    assert_int_equal(atomic_load(&lost.n), 1);
}
