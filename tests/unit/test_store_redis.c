/* Unit tests for the Redis store (store/store_redis.c) against a real
 * redis-server: SLUICE_TEST_REDIS_URL when tests/run.sh gives one, else a
 * server this test starts on a free loopback port. Never skipped. The
 * outage test always starts (and kills, and restarts) a server of its own.
 *
 * The store contract (store_contract.c) runs here with two nodes on the
 * shared server, flushed before each test. The tests of this file are what
 * only Redis has: what the keys in Redis hold (hashed stream keys, the
 * earlier registry format, the meta hash's lifetime), several nodes racing
 * for a lease (takeover, revoking another node's lease), seeds surviving a
 * flushed server, the object cache, outages and a server absent at start,
 * a demoted master (-READONLY) and a Sentinel failover (redis-sentinel://). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "store.h"
#include "store_contract.h"
#include "test_util.h"

typedef struct test_redis {
    pid_t pid; /* 0 when the server is not ours */
    int port;
    char url[128];
    char dir[64];
} test_redis_t;

static test_redis_t shared_server;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        abort();
    close(fd);
    return ntohs(sa.sin_port);
}

static redisContext *raw_connect(int port, int db)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c || c->err) {
        redisFree(c);
        return NULL;
    }
    redisReply *r = redisCommand(c, "SELECT %d", db);
    freeReplyObject(r);
    return c;
}

static void server_spawn(test_redis_t *rs, const char *const *extra);

/* Starts redis-server on rs->port (a fresh one when 0) and waits for it. */
static void server_start(test_redis_t *rs)
{
    server_spawn(rs, NULL);
}

/* server_start with extra arguments (NULL-terminated; "--sentinel" with a
 * config file first runs a sentinel instead). */
static void server_spawn(test_redis_t *rs, const char *const *extra)
{
    if (!rs->port)
        rs->port = free_port();
    if (!rs->dir[0]) {
        snprintf(rs->dir, sizeof(rs->dir), "/tmp/sluice-unit-redis-XXXXXX");
        assert_non_null(mkdtemp(rs->dir));
    }
    char port[16];
    snprintf(port, sizeof(port), "%d", rs->port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        const char *argv[32] = {"redis-server"};
        int n = 1;
        if (extra && extra[0] && strcmp(extra[0], "--sentinel") == 0) {
            argv[n++] = extra[1]; /* the config file, then --sentinel */
            argv[n++] = "--sentinel";
        } else {
            const char *base[] = {"--port", port, "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no", "--dir", rs->dir};
            for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
                argv[n++] = base[i];
            for (int i = 0; extra && extra[i] && n < 31; i++)
                argv[n++] = extra[i];
        }
        argv[n] = NULL;
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    rs->pid = pid;
    for (int i = 0; i < 200; i++) {
        redisContext *c = raw_connect(rs->port, 0);
        if (c) {
            redisFree(c);
            snprintf(rs->url, sizeof(rs->url), "redis://127.0.0.1:%d/9", rs->port);
            return;
        }
        sleep_ms(25);
    }
    fail_msg("redis-server did not start on port %d", rs->port);
}

static void server_kill(test_redis_t *rs)
{
    if (rs->pid > 0) {
        kill(rs->pid, SIGKILL);
        waitpid(rs->pid, NULL, 0);
        rs->pid = 0;
    }
}

static void flushdb(int port)
{
    redisContext *c = raw_connect(port, 9);
    assert_non_null(c);
    redisReply *r = redisCommand(c, "FLUSHDB");
    freeReplyObject(r);
    redisFree(c);
}

static int setup_all(void **state)
{
    (void)state;
    const char *url = getenv("SLUICE_TEST_REDIS_URL");
    int port = 0;
    if (url && sscanf(url, "redis://127.0.0.1:%d", &port) == 1 && port > 0) {
        shared_server.port = port;
        snprintf(shared_server.url, sizeof(shared_server.url), "redis://127.0.0.1:%d/9", port);
    } else {
        server_start(&shared_server);
    }
    return 0;
}

static int teardown_all(void **state)
{
    (void)state;
    server_kill(&shared_server);
    if (shared_server.dir[0])
        rmdir(shared_server.dir);
    return 0;
}

static store_t *open_node(const char *url)
{
    store_t *st = NULL;
    assert_int_equal(store_open(url, &st), 0);
    assert_string_equal(store_backend_name(st), "redis");
    for (int i = 0; i < 200 && store_ping(st) != 0; i++)
        sleep_ms(10);
    assert_int_equal(store_ping(st), 0);
    return st;
}

static store_t *open_shared_node(void)
{
    return open_node(shared_server.url);
}

static void flush_shared(void)
{
    flushdb(shared_server.port);
}

/* Two nodes on the shared server, emptied before each contract test. */
static store_contract_t contract = {
    .backend = "redis",
    .open = open_shared_node,
    .reset = flush_shared,
    .nodes_share_data = true,
};

static long long raw_int(int port, const char *fmt, const char *arg)
{
    redisContext *c = raw_connect(port, 9);
    assert_non_null(c);
    redisReply *r = redisCommand(c, fmt, arg);
    assert_non_null(r);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -12345;
    freeReplyObject(r);
    redisFree(c);
    return v;
}

/* ---- what the keys in Redis hold --------------------------------------------- */

/* Nothing in Redis holds a stream key in clear, rotated or not. */
static void test_registry_keys_hashed(void **state)
{
    (void)state;
    flushdb(shared_server.port);
    store_t *a = open_node(shared_server.url);
    assert_int_equal(store_stream_add(a, "shop-1", "Shop one", "key-1"), 0);
    assert_int_equal(store_stream_seed(a, "demo", "demo-key"), 0);
    assert_int_equal(store_stream_add(a, "zeta", "Zeta", "key-z"), 0);
    assert_int_equal(store_stream_rotate(a, "zeta", "key-z2"), 0);
    redisContext *c = raw_connect(shared_server.port, 9);
    const char *hashes[] = {"sluice:{registry}:by-key", "sluice:{registry}:by-id"};
    for (size_t h = 0; h < 2; h++) {
        redisReply *r = redisCommand(c, "HGETALL %s", hashes[h]);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        assert_int_equal(r->elements, 6); /* three streams, field and value each */
        for (size_t i = 0; i < r->elements; i++) {
            assert_null(strstr(r->element[i]->str, "demo-key"));
            assert_null(strstr(r->element[i]->str, "key-"));
        }
        freeReplyObject(r);
    }
    redisFree(c);
    store_close(a);
}

/* The registry's hashes: a record of the earlier format ("<hex> <name>")
 * still reads and is removed; by-id and by-key keep one entry a stream
 * through removes and rotations; the recording overrides' hash loses a
 * stream's entry with the stream and never gains an unknown one. */
static void test_registry_records(void **state)
{
    (void)state;
    flushdb(shared_server.port);
    store_t *a = open_node(shared_server.url);
    store_t *b = open_node(shared_server.url);
    store_stream_info_t info;
    assert_int_equal(store_stream_add(a, "zeta", "Zeta | 12|shop two words", "key-z"), 0);
    assert_int_equal(store_stream_add(a, "alpha", "Alpha", "key-a"), 0);
    assert_int_equal(store_stream_add(a, "mid", NULL, "key-m"), 0);
    redisContext *c = raw_connect(shared_server.port, 9);
    redisReply *r = redisCommand(
        c, "HSET sluice:{registry}:by-id old %s",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef Old | 5|name");
    freeReplyObject(r);
    r = redisCommand(c, "HSET sluice:{registry}:by-key %s old",
                     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    freeReplyObject(r);
    redisFree(c);

    assert_int_equal(store_stream_get(b, "old", &info), 0);
    assert_string_equal(info.name, "Old | 5|name");
    assert_int_equal(info.created_ms, 0);
    store_stream_info_t *list = NULL;
    size_t n = 0;
    assert_int_equal(store_stream_list(b, &list, &n), 0);
    const char *want[] = {"alpha", "mid", "old", "zeta"};
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(list[i].id, want[i]);
    free(list);

    assert_int_equal(store_stream_remove(b, "alpha"), 0);
    assert_int_equal(store_stream_remove(a, "old"), 0); /* old format too */
    assert_int_equal(store_stream_exists(b, "old"), -ENOENT);
    assert_int_equal(raw_int(shared_server.port, "HLEN %s", "sluice:{registry}:by-id"), 2);
    assert_int_equal(raw_int(shared_server.port, "HLEN %s", "sluice:{registry}:by-key"), 2);
    assert_int_equal(store_stream_add(a, "alpha2", "again", "key-a"), 0);
    assert_int_equal(store_stream_rotate(b, "zeta", "key-z2"), 0);
    assert_int_equal(store_stream_rotate(a, "zeta", "key-z2"), 0);
    assert_int_equal(store_stream_rotate(a, "zeta", "key-m"), -EEXIST);
    assert_int_equal(store_stream_rotate(a, "nope", "key-x"), -ENOENT);
    assert_int_equal(raw_int(shared_server.port, "HLEN %s", "sluice:{registry}:by-id"), 3);
    assert_int_equal(raw_int(shared_server.port, "HLEN %s", "sluice:{registry}:by-key"), 3);

    assert_int_equal(store_stream_set_record(a, "zeta", STORE_RECORD_ON), 0);
    assert_int_equal(store_stream_set_record(a, "nope", STORE_RECORD_ON), -ENOENT);
    assert_int_equal(raw_int(shared_server.port, "HEXISTS sluice:{registry}:record %s", "nope"),
                     0);
    assert_int_equal(raw_int(shared_server.port, "HLEN %s", "sluice:{registry}:record"), 1);
    assert_int_equal(store_stream_remove(a, "zeta"), 0);
    assert_int_equal(raw_int(shared_server.port, "HLEN %s", "sluice:{registry}:record"), 0);
    store_close(a);
    store_close(b);
}

/* The meta hash expires with its longest-lived field; puts sweep expired
 * fields out of it once they reach its length (at least 32) since the last
 * sweep, so a put costs O(1) amortized; a short-lived put does not shorten
 * it. */
static void test_meta_hash_lifetime(void **state)
{
    (void)state;
    flushdb(shared_server.port);
    store_t *a = open_node(shared_server.url);
    store_t *b = open_node(shared_server.url);
    assert_int_equal(store_meta_put(a, "s", "status", "{\"live\": true}", 60000), 0);
    assert_int_equal(store_meta_put(a, "s", "viewers:node-a", "12", 60000), 0);
    assert_int_equal(store_meta_put(b, "s", "viewers:node-c", "old", 150), 0);
    long long pttl = raw_int(shared_server.port, "PTTL %s", "sluice:{s}:meta");
    assert_true(pttl > 50000 && pttl <= 60000);

    sleep_ms(300); /* node-c's record expires; the field is still in the hash */
    char *v = NULL;
    assert_int_equal(store_meta_get(a, "s", "viewers:node-c", &v), -ENOENT);
    assert_int_equal(raw_int(shared_server.port, "HEXISTS sluice:{s}:meta %s", "viewers:node-c"),
                     1);
    /* Puts sweep once they reach the hash's length (at least 32) since the
     * last sweep: three so far, so 28 more leave it, the 29th sweeps. */
    store_t *c = open_node(shared_server.url);
    for (int i = 0; i < 28; i++)
        assert_int_equal(store_meta_put(c, "s", "viewers:node-d", "1", 1000), 0);
    assert_int_equal(raw_int(shared_server.port, "HEXISTS sluice:{s}:meta %s", "viewers:node-c"),
                     1);
    assert_int_equal(store_meta_put(c, "s", "viewers:node-d", "1", 1000), 0);
    assert_int_equal(raw_int(shared_server.port, "HEXISTS sluice:{s}:meta %s", "viewers:node-c"),
                     0);
    assert_int_equal(raw_int(shared_server.port, "INCRBY %s 0", "sluice:{s}:meta-puts"), 0);
    assert_true(raw_int(shared_server.port, "PTTL %s", "sluice:{s}:meta-puts") > 50000);
    assert_int_equal(raw_int(shared_server.port, "HEXISTS sluice:{s}:meta %s", "viewers:node-a"),
                     1);
    pttl = raw_int(shared_server.port, "PTTL %s", "sluice:{s}:meta");
    assert_true(pttl > 50000);
    store_close(c);
    store_close(a);
    store_close(b);
}

/* ---- several nodes ------------------------------------------------------------ */

static void test_leases_and_takeover(void **state)
{
    (void)state;
    flushdb(shared_server.port);
    store_t *a = open_node(shared_server.url);
    store_t *b = open_node(shared_server.url);
    store_test_flag_t lost_a = {0}, lost_b = {0};
    store_lease_t *la = NULL, *lb = NULL;
    assert_int_equal(store_lease_acquire(a, "live", true, store_test_flag_cb, &lost_a, &la), 0);
    store_test_put(a, "live", "index.m3u8", "from-a", 0);
    /* reject: the first keeps it */
    assert_int_equal(store_lease_acquire(b, "live", false, store_test_flag_cb, &lost_b, &lb),
                     -EBUSY);
    assert_null(lb);
    /* takeover: the newest wins and the old node is told through Redis */
    assert_int_equal(store_lease_acquire(b, "live", true, store_test_flag_cb, &lost_b, &lb), 0);
    assert_true(store_test_flag_wait(&lost_a, 3000));
    assert_int_equal(atomic_load(&lost_b.count), 0);
    /* the old node's late writes are fenced off */
    blob_t *x = blob_new("late", 4);
    store_op_t op = {.kind = STORE_OP_PUT, .name = "index.m3u8", .blob = x};
    assert_int_equal(store_commit(a, "live", &op, 1), -EPERM);
    blob_unref(x);
    store_test_put(b, "live", "index.m3u8", "from-b", 0);
    store_test_assert_object(a, "live", "index.m3u8", "from-b");
    store_lease_release(la); /* lost: must not delete b's lease */
    store_test_flag_t lost_c = {0};
    store_lease_t *lc = NULL;
    assert_int_equal(store_lease_acquire(a, "live", false, store_test_flag_cb, &lost_c, &lc),
                     -EBUSY);
    store_lease_release(lb); /* released on unpublish: free for anyone */
    assert_int_equal(store_lease_acquire(a, "live", false, store_test_flag_cb, &lost_c, &lc), 0);
    store_lease_release(lc);
    store_close(a);
    store_close(b);
}

/* Revoking a lease: on its own node the key goes at once (the contract
 * checks the callback); from another node the owner hears it through
 * Redis, and the stream is free for a publisher anywhere. */
static void test_lease_revoke_across_nodes(void **state)
{
    (void)state;
    flushdb(shared_server.port);
    store_t *a = open_node(shared_server.url);
    store_t *b = open_node(shared_server.url);
    assert_string_not_equal(store_node_id(a), store_node_id(b));
    assert_int_equal(strlen(store_node_id(a)), 32);

    store_test_flag_t lost = {0};
    store_lease_t *l = NULL;
    assert_int_equal(store_lease_acquire(a, "rv", false, store_test_flag_cb, &lost, &l), 0);
    assert_int_equal(raw_int(shared_server.port, "EXISTS %s", "sluice:{rv}:lease"), 1);
    assert_int_equal(store_lease_revoke(a, "rv"), 0);
    assert_int_equal(atomic_load(&lost.count), 1);
    assert_int_equal(raw_int(shared_server.port, "EXISTS %s", "sluice:{rv}:lease"), 0);
    sleep_ms(300); /* its own notice (and a renewal) do not write it back */
    assert_int_equal(raw_int(shared_server.port, "EXISTS %s", "sluice:{rv}:lease"), 0);
    store_lease_release(l);

    store_test_flag_t lost_a = {0}, lost_b = {0};
    store_lease_t *la = NULL, *lb = NULL;
    assert_int_equal(store_lease_acquire(a, "rv", false, store_test_flag_cb, &lost_a, &la), 0);
    assert_int_equal(store_lease_acquire(b, "rv", false, store_test_flag_cb, &lost_b, &lb),
                     -EBUSY);
    assert_int_equal(store_lease_revoke(b, "rv"), 0);
    assert_true(store_test_flag_wait(&lost_a, 3000));
    assert_int_equal(atomic_load(&lost_a.count), 1);
    sleep_ms(100);
    assert_int_equal(raw_int(shared_server.port, "EXISTS %s", "sluice:{rv}:lease"), 0);
    /* the stream is free: a new publisher on b gets it without a takeover */
    assert_int_equal(store_lease_acquire(b, "rv", false, store_test_flag_cb, &lost_b, &lb), 0);
    sleep_ms(200);
    assert_int_equal(atomic_load(&lost_b.count), 0);
    assert_int_equal(atomic_load(&lost_a.count), 1);
    store_lease_release(la);
    store_lease_release(lb);
    assert_int_equal(store_lease_revoke(a, "nobody"), 0);

    store_stats_t st;
    store_get_stats(a, &st);
    assert_true(st.connected);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.registry_ops, 2); /* a's two revokes */
    store_close(a);
    store_close(b);
}

static bool wait_auth(store_t *st, const char *key, int want, int ms)
{
    char id[STORE_ID_MAX];
    for (int i = 0; i < ms / 20; i++) {
        if (store_stream_auth(st, key, id) == want)
            return true;
        sleep_ms(20);
    }
    return false;
}

static void test_seeds_follow_remove_and_rotate(void **state)
{
    (void)state;
    flushdb(shared_server.port);
    store_t *a = open_node(shared_server.url);
    store_t *b = open_node(shared_server.url);
    /* a is configured with four streams; removes and rotations happen on a
     * itself and on b (a learns of those through Redis). */
    assert_int_equal(store_stream_seed(a, "rm-here", "k-rm-here"), 0);
    assert_int_equal(store_stream_seed(a, "rm-there", "k-rm-there"), 0);
    assert_int_equal(store_stream_seed(a, "rot-here", "k-rot-here"), 0);
    assert_int_equal(store_stream_seed(a, "rot-there", "k-rot-there"), 0);
    assert_int_equal(store_stream_seed(a, "kept", "k-kept"), 0);
    assert_int_equal(store_stream_remove(a, "rm-here"), 0);
    assert_int_equal(store_stream_remove(b, "rm-there"), 0);
    assert_int_equal(store_stream_rotate(a, "rot-here", "k-rot-here-2"), 0);
    assert_int_equal(store_stream_rotate(b, "rot-there", "k-rot-there-2"), 0);
    sleep_ms(200); /* b's notices reach a */

    flushdb(shared_server.port); /* Redis lost its data */
    char id[STORE_ID_MAX];
    assert_int_equal(store_stream_auth(b, "k-kept", id), -ENOENT);
    /* a notices (alive marker gone) and re-seeds within a few seconds */
    assert_true(wait_auth(b, "k-kept", 0, 5000));
    assert_true(wait_auth(b, "k-rot-here-2", 0, 1000));
    assert_true(wait_auth(b, "k-rot-there-2", 0, 1000));
    sleep_ms(300); /* whatever the resync would write is written by now */
    assert_int_equal(store_stream_auth(b, "k-rot-here-2", id), 0);
    assert_string_equal(id, "rot-here");
    assert_int_equal(store_stream_auth(b, "k-rot-there", id), -ENOENT);
    assert_int_equal(store_stream_auth(b, "k-rot-here", id), -ENOENT);
    assert_int_equal(store_stream_exists(b, "rm-here"), -ENOENT);
    assert_int_equal(store_stream_exists(b, "rm-there"), -ENOENT);
    assert_int_equal(store_stream_auth(b, "k-rm-there", id), -ENOENT);
    store_close(a);
    store_close(b);
}

/* ---- the object cache, outages ------------------------------------------------ */

/* b keeps an init segment it read; a's replacement of it evicts it from
 * b's cache through the change notice. */
static void test_cache_invalidation(void **state)
{
    (void)state;
    flushdb(shared_server.port);
    store_t *a = open_node(shared_server.url);
    store_t *b = open_node(shared_server.url);
    store_test_put(a, "w", "v/init.mp4", "init-1", 0);
    store_test_assert_object(b, "w", "v/init.mp4", "init-1"); /* b caches it */
    store_test_assert_object(b, "w", "v/init.mp4", "init-1");

    store_test_flag_t changed = {0};
    store_watch_t *w = NULL;
    assert_int_equal(store_watch_add(b, "w", store_test_flag_cb, &changed, &w), 0);
    store_test_put(a, "w", "v/init.mp4", "init-2", 0); /* replaced (a discontinuity) */
    assert_true(store_test_flag_wait(&changed, 3000));
    store_watch_remove(w);
    store_test_assert_object(b, "w", "v/init.mp4", "init-2"); /* the notice evicted it */
    store_close(a);
    store_close(b);
}

static void test_outage_and_empty_restart(void **state)
{
    (void)state;
    test_redis_t own = {0};
    server_start(&own);
    store_t *a = open_node(own.url);
    store_t *b = open_node(own.url);
    assert_int_equal(store_stream_seed(a, "demo", "demo-key"), 0);
    store_lease_t *lease = NULL;
    assert_int_equal(store_lease_acquire(a, "demo", true, NULL, NULL, &lease), 0);
    store_test_put(a, "demo", "v/init.mp4", "init", 0);
    store_test_put(a, "demo", "v/0.m4s", "seg0", 0);
    store_test_put(a, "demo", "v/index.m3u8", "pl0", 0);

    server_kill(&own);
    blob_t *got = NULL;
    int rc = 0;
    for (int i = 0; i < 300 && (rc = store_get(b, "demo", "v/index.m3u8", &got)) == 0; i++) {
        blob_unref(got);
        got = NULL;
        sleep_ms(10);
    }
    assert_int_equal(rc, -EIO); /* never a wrong -ENOENT */
    assert_int_equal(store_ping(b), -EIO);
    char id[STORE_ID_MAX];
    assert_int_equal(store_stream_auth(b, "demo-key", id), -EIO);
    /* The writer keeps going; its commits wait in memory. */
    blob_t *s1 = blob_new("seg1", 4), *p1 = blob_new("pl1", 3);
    store_op_t ops[] = {{.kind = STORE_OP_PUT, .name = "v/1.m4s", .blob = s1},
                        {.kind = STORE_OP_PUT, .name = "v/index.m3u8", .blob = p1}};
    assert_int_equal(store_commit(a, "demo", ops, 2), 0);
    blob_unref(s1);
    blob_unref(p1);

    server_start(&own); /* same port, empty dataset */
    for (int i = 0; i < 1000 && (store_ping(a) != 0 || store_ping(b) != 0); i++)
        sleep_ms(10);
    assert_int_equal(store_ping(b), 0);
    /* Registry re-seeded, and the stream's live objects re-announced. */
    for (int i = 0; i < 300 && store_get(b, "demo", "v/index.m3u8", &got) != 0; i++)
        sleep_ms(10);
    blob_unref(got);
    store_test_assert_object(b, "demo", "v/index.m3u8", "pl1");
    store_test_assert_object(b, "demo", "v/init.mp4", "init");
    store_test_assert_object(b, "demo", "v/0.m4s", "seg0");
    store_test_assert_object(b, "demo", "v/1.m4s", "seg1");
    assert_int_equal(store_stream_auth(b, "demo-key", id), 0);
    redisContext *c = raw_connect(own.port, 9);
    redisReply *r = redisCommand(c, "GET sluice:{demo}:lease");
    assert_int_equal(r->type, REDIS_REPLY_STRING); /* a's lease is back */
    freeReplyObject(r);
    store_lease_release(lease);
    store_close(a);
    store_close(b);
    /* No connection left behind: only ours remains. */
    r = redisCommand(c, "CLIENT LIST");
    int lines = 0;
    for (const char *p = r->str; p && *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 1);
    freeReplyObject(r);
    redisFree(c);
    server_kill(&own);
    rmdir(own.dir);
}

/* A master demoted under the node (REPLICAOF: writes answer -READONLY) is
 * as good as gone: the node goes down at once instead of retrying the
 * write for ever, and comes back when the server is writable again. */
static void test_readonly_marks_down(void **state)
{
    (void)state;
    test_redis_t own = {0};
    server_start(&own);
    store_t *a = open_node(own.url);
    redisContext *c = raw_connect(own.port, 0);
    /* Named connections: operators (and tests) see sluice's clients. */
    redisReply *r = redisCommand(c, "CLIENT LIST");
    assert_non_null(strstr(r->str, "name=sluice-"));
    freeReplyObject(r);
    int dead = free_port();
    r = redisCommand(c, "REPLICAOF 127.0.0.1 %d", dead);
    freeReplyObject(r);
    blob_t *b = blob_new("x", 1);
    store_op_t op = {.kind = STORE_OP_PUT, .name = "v/index.m3u8", .blob = b};
    assert_int_equal(store_commit(a, "ro", &op, 1), 0); /* kept in memory */
    blob_unref(b);
    for (int i = 0; i < 300 && store_ping(a) == 0; i++)
        sleep_ms(10);
    assert_int_equal(store_ping(a), -EIO);
    r = redisCommand(c, "REPLICAOF NO ONE");
    freeReplyObject(r);
    for (int i = 0; i < 500 && store_ping(a) != 0; i++)
        sleep_ms(10);
    assert_int_equal(store_ping(a), 0);
    /* What was kept while it refused writes is written now. */
    for (int i = 0; i < 300 && raw_int(own.port, "EXISTS %s", "sluice:{ro}:o:v/index.m3u8") != 1;
         i++)
        sleep_ms(10);
    assert_int_equal(raw_int(own.port, "EXISTS %s", "sluice:{ro}:o:v/index.m3u8"), 1);
    store_close(a);
    redisFree(c);
    server_kill(&own);
    rmdir(own.dir);
}

/* One INFO field ("role", "master_link_status") of the server on port. */
static bool info_has(int port, const char *want)
{
    redisContext *c = raw_connect(port, 0);
    if (!c)
        return false;
    redisReply *r = redisCommand(c, "INFO replication");
    bool ok = r && r->type == REDIS_REPLY_STRING && strstr(r->str, want);
    freeReplyObject(r);
    redisFree(c);
    return ok;
}

/* A master m, its replica r and one sentinel s (quorum 1) watching m with
 * down-after down_ms (in ha); returns once the sentinel lists the replica.
 * ha.conf: the sentinel's config file. ha_teardown stops and removes all. */
static struct {
    test_redis_t m, r, s;
    char conf[128];
} ha;

static void ha_setup(int down_ms)
{
    test_redis_t *m = &ha.m, *r = &ha.r, *s = &ha.s;
    char *conf = ha.conf;
    size_t conflen = sizeof(ha.conf);
    static const char *const fast[] = {"--repl-diskless-sync", "yes",
                                       "--repl-diskless-sync-delay", "0", NULL};
    server_spawn(m, fast);
    char mport[16];
    snprintf(mport, sizeof(mport), "%d", m->port);
    const char *const replica[] = {"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay",
                                   "0", "--replicaof", "127.0.0.1", mport, NULL};
    server_spawn(r, replica);
    for (int i = 0; i < 400 && !info_has(r->port, "master_link_status:up"); i++)
        sleep_ms(10);
    assert_true(info_has(r->port, "master_link_status:up"));
    s->port = free_port();
    snprintf(s->dir, sizeof(s->dir), "/tmp/sluice-unit-redis-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    snprintf(conf, conflen, "%s/sentinel.conf", s->dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor sluice 127.0.0.1 %d 1\n"
               "sentinel down-after-milliseconds sluice %d\n"
               "sentinel failover-timeout sluice 3000\n", s->port, s->dir, m->port, down_ms);
    fclose(f);
    const char *const sentinel[] = {"--sentinel", conf, NULL};
    server_spawn(s, sentinel);
    /* The sentinel learns of the replica from the master's INFO. */
    bool knows = false;
    for (int i = 0; i < 500 && !knows; i++) {
        redisContext *c = raw_connect(s->port, 0);
        redisReply *rep = c ? redisCommand(c, "SENTINEL replicas sluice") : NULL;
        knows = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1;
        freeReplyObject(rep);
        redisFree(c);
        if (!knows)
            sleep_ms(10);
    }
    assert_true(knows);
}

/* cmocka teardown: also after a failed assertion, nothing is left running. */
static int ha_teardown(void **state)
{
    (void)state;
    server_kill(&ha.s);
    server_kill(&ha.r);
    server_kill(&ha.m);
    if (ha.conf[0])
        unlink(ha.conf);
    if (ha.s.dir[0])
        rmdir(ha.s.dir);
    if (ha.r.dir[0])
        rmdir(ha.r.dir);
    if (ha.m.dir[0])
        rmdir(ha.m.dir);
    memset(&ha, 0, sizeof(ha));
    return 0;
}

/* redis-sentinel:// end to end at the store's level: a master, a replica
 * and one sentinel; the node finds the master, reports it in its stats,
 * follows a SENTINEL FAILOVER (the old master stays up: only the sentinel's
 * word and ROLE move the node) and keeps its data and connections on the
 * new master. */
static void test_sentinel_follows_a_failover(void **state)
{
    (void)state;
    test_redis_t *m = &ha.m, *r = &ha.r, *s = &ha.s;
    ha_setup(1000);

    char url[128];
    snprintf(url, sizeof(url), "redis-sentinel://127.0.0.1:%d/sluice?db=9", s->port);
    store_t *a = open_node(url);
    assert_string_equal(store_backend_name(a), "redis");
    store_stats_t ss;
    char want[64];
    snprintf(want, sizeof(want), "127.0.0.1:%d", m->port);
    for (int i = 0; i < 300; i++) {
        store_get_stats(a, &ss);
        if (ss.sentinels_up == 1)
            break;
        sleep_ms(10);
    }
    assert_true(ss.sentinel);
    assert_string_equal(ss.master, want);
    assert_string_equal(ss.master_name, "sluice");
    assert_int_equal(ss.sentinels, 1);
    assert_int_equal(ss.sentinels_up, 1);
    assert_int_equal(ss.failovers, 0);
    assert_int_equal(ss.last_failover_ms, 0);
    store_test_put(a, "ha", "v/index.m3u8", "pl0", 0);
    assert_int_equal(store_stream_add(a, "made", "Made", "made-key"), 0);
    store_get_stats(a, &ss);
    assert_int_equal(ss.replica_wait_timeouts, 0); /* WAIT 1: the replica acknowledged */

    /* -NOGOODSLAVE until the sentinel has the replica's own INFO. */
    redisContext *c = raw_connect(s->port, 0);
    redisReply *rep = NULL;
    for (int i = 0; i < 500; i++) {
        freeReplyObject(rep);
        rep = redisCommand(c, "SENTINEL FAILOVER sluice");
        if (!rep || rep->type == REDIS_REPLY_STATUS)
            break;
        sleep_ms(20);
    }
    assert_non_null(rep);
    if (rep->type != REDIS_REPLY_STATUS)
        fail_msg("SENTINEL FAILOVER: %s", rep->str);
    freeReplyObject(rep);
    redisFree(c);
    snprintf(want, sizeof(want), "127.0.0.1:%d", r->port);
    for (int i = 0; i < 1000; i++) {
        store_get_stats(a, &ss);
        if (strcmp(ss.master, want) == 0 && store_ping(a) == 0)
            break;
        sleep_ms(10);
    }
    assert_string_equal(ss.master, want);
    assert_int_equal(ss.failovers, 1);
    assert_true(ss.last_failover_ms > 0);
    assert_int_equal(store_ping(a), 0);
    /* The data came along (replicated, and re-announced by the writer),
     * and new writes go to the new master. */
    store_test_assert_object(a, "ha", "v/index.m3u8", "pl0");
    char id[STORE_ID_MAX];
    assert_int_equal(store_stream_auth(a, "made-key", id), 0);
    store_test_put(a, "ha", "v/index.m3u8", "pl1", 0);
    redisContext *rc = raw_connect(r->port, 9);
    rep = redisCommand(rc, "GET sluice:{ha}:o:v/index.m3u8");
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    assert_string_equal(rep->str, "pl1");
    freeReplyObject(rep);
    redisFree(rc);
    /* Nothing of the node is left on the old master. */
    redisContext *mc = raw_connect(m->port, 0);
    bool gone = false;
    for (int i = 0; i < 100 && !gone; i++) {
        rep = redisCommand(mc, "CLIENT LIST");
        gone = rep && rep->type == REDIS_REPLY_STRING && !strstr(rep->str, "name=sluice-");
        freeReplyObject(rep);
        if (!gone)
            sleep_ms(10);
    }
    assert_true(gone);
    redisFree(mc);
    store_get_stats(a, &ss);
    assert_int_equal(ss.early_switches, 0); /* the old master stayed up */
    store_close(a);
}

/* The sentinel named master of s ("" when none). */
static void sentinel_master_port(int sport, char *out, size_t len)
{
    out[0] = '\0';
    redisContext *c = raw_connect(sport, 0);
    redisReply *rep = c ? redisCommand(c, "SENTINEL get-master-addr-by-name sluice") : NULL;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2)
        snprintf(out, len, "%s", rep->element[1]->str);
    freeReplyObject(rep);
    redisFree(c);
}

/* The id of the node's subscriber on port (CLIENT LIST TYPE pubsub), 0: none. */
static long long sluice_pubsub_id(int port)
{
    redisContext *c = raw_connect(port, 0);
    redisReply *rep = c ? redisCommand(c, "CLIENT LIST TYPE pubsub") : NULL;
    long long id = 0;
    const char *p = rep && rep->type == REDIS_REPLY_STRING ? rep->str : "";
    for (const char *line = p; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *name = strstr(line, " name=sluice-");
        if (name && (size_t)(name - line) < len && strncmp(line, "id=", 3) == 0)
            id = strtoll(line + 3, NULL, 10);
        line += len + (end ? 1 : 0);
    }
    freeReplyObject(rep);
    redisFree(c);
    return id;
}

static void raw_command(int port, const char *cmd)
{
    redisContext *c = raw_connect(port, 0);
    assert_non_null(c);
    redisReply *rep = redisCommand(c, cmd);
    assert_non_null(rep);
    freeReplyObject(rep);
    redisFree(c);
}

/* The early switch: the master is lost and a replica the sentinels listed
 * says master (here an operator's REPLICAOF NO ONE; Sentinel, with a
 * minute's down-after, never acts): the node follows it without waiting
 * for +switch-master, counts it, and the sentinel still names the old
 * master. But not while the lost master still answers as master. */
static void test_sentinel_early_switch(void **state)
{
    (void)state;
    test_redis_t *m = &ha.m, *r = &ha.r, *s = &ha.s;
    ha_setup(60000);
    char url[128];
    snprintf(url, sizeof(url), "redis-sentinel://127.0.0.1:%d/sluice?db=9", s->port);
    store_t *a = open_node(url);
    store_test_put(a, "early", "v/index.m3u8", "pl0", 0);
    char mwant[64], rwant[64];
    snprintf(mwant, sizeof(mwant), "127.0.0.1:%d", m->port);
    snprintf(rwant, sizeof(rwant), "127.0.0.1:%d", r->port);
    store_stats_t ss;
    store_get_stats(a, &ss);
    assert_string_equal(ss.master, mwant);

    /* Two masters, and the node loses its subscriber on m: the lost master
     * still answers as master, so the node goes back to it. */
    raw_command(r->port, "REPLICAOF NO ONE");
    long long sub = sluice_pubsub_id(m->port);
    assert_true(sub > 0);
    raw_command(m->port, "CLIENT KILL TYPE pubsub");
    for (int i = 0; i < 300 && sluice_pubsub_id(m->port) <= sub; i++)
        sleep_ms(10); /* until the node subscribed again: on m */
    assert_true(sluice_pubsub_id(m->port) > sub);
    for (int i = 0; i < 300 && store_ping(a) != 0; i++)
        sleep_ms(10);
    assert_int_equal(store_ping(a), 0);
    store_get_stats(a, &ss);
    assert_string_equal(ss.master, mwant);
    assert_int_equal(ss.early_switches, 0);
    assert_int_equal(ss.failovers, 0);

    /* The master dies; the replica already says master: followed within
     * a few 100 ms retries, while the sentinel still names m. */
    int64_t t0 = clock_mono_ms();
    server_kill(m);
    for (int i = 0; i < 300; i++) {
        store_get_stats(a, &ss);
        if (strcmp(ss.master, rwant) == 0 && store_ping(a) == 0)
            break;
        sleep_ms(10);
    }
    int64_t took = clock_mono_ms() - t0;
    assert_string_equal(ss.master, rwant);
    assert_int_equal(store_ping(a), 0);
    assert_int_equal(ss.early_switches, 1);
    assert_int_equal(ss.failovers, 1);
    assert_true(took < 1500);
    char named[16];
    sentinel_master_port(s->port, named, sizeof(named));
    assert_int_equal(atoi(named), m->port); /* Sentinel has not announced anything */
    /* Writes go to the promoted replica (the writer re-announced). */
    redisContext *rc = raw_connect(r->port, 9);
    redisReply *rep = NULL;
    for (int i = 0; i < 100; i++) {
        freeReplyObject(rep);
        rep = redisCommand(rc, "GET sluice:{early}:o:v/index.m3u8");
        if (rep && rep->type == REDIS_REPLY_STRING)
            break;
        sleep_ms(10);
    }
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    assert_string_equal(rep->str, "pl0");
    freeReplyObject(rep);
    redisFree(rc);
    store_close(a);
}

static void test_unreachable_at_start(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", free_port());
    store_t *st = NULL;
    assert_int_equal(store_open(url, &st), 0); /* opens, and keeps trying */
    assert_int_equal(store_ping(st), -EIO);
    blob_t *got = NULL;
    assert_int_equal(store_get(st, "x", "index.m3u8", &got), -EIO);
    assert_int_equal(store_stream_seed(st, "x", "k"), 0); /* written on connection */
    store_stream_info_t info;
    assert_int_equal(store_stream_get(st, "x", &info), -EIO);
    assert_int_equal(store_stream_remove(st, "x"), -EIO);
    char *v = NULL;
    assert_int_equal(store_meta_get(st, "x", "f", &v), -EIO);
    assert_int_equal(store_lease_revoke(st, "x"), -EIO);
    store_stats_t stats;
    store_get_stats(st, &stats);
    assert_false(stats.connected);
    assert_int_equal(stats.gets, 1);
    assert_int_equal(stats.errors, 5); /* every -EIO counted; the seed is not one */
    assert_int_equal(strlen(store_node_id(st)), 32);
    store_close(st);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        STORE_CONTRACT_TESTS(&contract),
        cmocka_unit_test(test_registry_keys_hashed),
        cmocka_unit_test(test_registry_records),
        cmocka_unit_test(test_meta_hash_lifetime),
        cmocka_unit_test(test_leases_and_takeover),
        cmocka_unit_test(test_lease_revoke_across_nodes),
        cmocka_unit_test(test_seeds_follow_remove_and_rotate),
        cmocka_unit_test(test_cache_invalidation),
        cmocka_unit_test(test_outage_and_empty_restart),
        cmocka_unit_test(test_readonly_marks_down),
        cmocka_unit_test_teardown(test_sentinel_follows_a_failover, ha_teardown),
        cmocka_unit_test_teardown(test_sentinel_early_switch, ha_teardown),
        cmocka_unit_test(test_unreachable_at_start),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
