/* Unit tests for the memory store (store/store_memory.c): the store
 * contract (store_contract.c) on the embedded backend, plus what only this
 * backend has: which URLs store_open takes, and the memory bound
 * (store_set_memory_limit), its eviction order and the bound itself. The
 * persisted registry (store_set_state_dir) is test_store_state.c's. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "store.h"
#include "store_contract.h"
#include "test_util.h"

static store_t *open_memory(void)
{
    store_t *st = NULL;
    assert_int_equal(store_open("memory", &st), 0);
    assert_string_equal(store_backend_name(st), "memory");
    return st;
}

/* Every open is a store of its own: the contract's two nodes are one. */
static store_contract_t contract = {
    .backend = "memory",
    .open = open_memory,
    .nodes_share_data = false,
};

/* URL parsing happens before any backend is chosen; a Redis URL is the
 * Redis backend's (test_store_redis.c), but a malformed one is refused
 * here before anything connects. */
static void test_open_urls(void **state)
{
    (void)state;
    store_t *st = NULL;
    assert_int_equal(store_open("nope://x", &st), -EINVAL);
    assert_null(st);
    assert_int_equal(store_open("redis://", &st), -EINVAL);
    assert_int_equal(store_open("redis://127.0.0.1:99999", &st), -EINVAL);
    assert_int_equal(store_open("redis://127.0.0.1:6379/x", &st), -EINVAL);
    assert_int_equal(store_open("redis-sentinel://", &st), -EINVAL);
    assert_int_equal(store_open("redis-sentinel://127.0.0.1/", &st), -EINVAL);
    assert_int_equal(store_url_check("redis-sentinel://127.0.0.1:26379/sluice?db=1"), 0);
    assert_int_equal(store_url_check("redis-sentinel://127.0.0.1:26379/sluice?db=x"), -EINVAL);
    assert_null(st);
    store_close(NULL);
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
    store_test_put(st, "old", "next-msn", "3", 0); /* bookkeeping without a TTL */
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
            store_test_put(st, id, "index.m3u8", name, 600000);
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
        STORE_CONTRACT_TESTS(&contract),
        cmocka_unit_test(test_open_urls),
        cmocka_unit_test(test_memory_limit_eviction_order),
        cmocka_unit_test(test_memory_limit_bound),
        cmocka_unit_test(test_memory_limit_stalled_publisher),
        cmocka_unit_test(test_memory_unlimited),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
