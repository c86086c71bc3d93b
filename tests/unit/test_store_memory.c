/* Unit tests for the memory store: atomic commits, expiry, registry. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_replace_delete),
        cmocka_unit_test(test_reader_keeps_blob_after_replace),
        cmocka_unit_test(test_batch_and_many_objects),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_atomic_commit_under_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
