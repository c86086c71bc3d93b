/* Unit tests for origin/viewers.c: the trusted-proxy list, which address
 * X-Forwarded-For yields, session counting and expiry, the caps, and
 * concurrent touches from several threads. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_util.h"
#include "viewers_internal.h"

static void v4(const char *s, uint8_t out[16])
{
    memset(out, 0, 16);
    out[10] = out[11] = 0xff;
    assert_int_equal(inet_pton(AF_INET, s, out + 12), 1);
}

static void test_parse_proxies(void **state)
{
    (void)state;
    viewers_net_t n[8];
    assert_int_equal(viewers_parse_proxies(" 10.0.0.0/8, 192.0.2.7 ,2001:db8::/32,::1", n, 8), 4);
    assert_int_equal(n[0].bits, 96 + 8);
    assert_int_equal(n[1].bits, 128);
    assert_int_equal(n[2].bits, 32);
    assert_int_equal(viewers_parse_proxies("", n, 8), 0);
    assert_int_equal(viewers_parse_proxies(NULL, n, 8), 0);
    assert_int_equal(viewers_parse_proxies("a,b", n, 8), -EINVAL);
    assert_int_equal(viewers_parse_proxies("10.0.0.0/33", n, 8), -EINVAL);
    assert_int_equal(viewers_parse_proxies("::/129", n, 8), -EINVAL);
    assert_int_equal(viewers_parse_proxies("10.0.0.1/", n, 8), -EINVAL);
    assert_int_equal(viewers_parse_proxies("10.0.0.1/x", n, 8), -EINVAL);
    assert_int_equal(viewers_parse_proxies("1.1.1.1,2.2.2.2,3.3.3.3", n, 2), -E2BIG);
    viewers_t *v = NULL;
    assert_int_equal(viewers_new("10.0.0.0/8,bogus", 2000, 0, 0, &v), -EINVAL);
    assert_null(v);
}

static void test_forwarded_for(void **state)
{
    (void)state;
    viewers_t *v;
    assert_int_equal(viewers_new("10.0.0.0/8,192.0.2.7", 2000, 0, 0, &v), 0);
    uint8_t got[16], want[16];
    struct sockaddr_in untrusted = sockaddr_v4("198.51.100.9");
    struct sockaddr_in proxy = sockaddr_v4("10.1.2.3");

    /* An untrusted peer's header is ignored. */
    viewers_client_addr(v, (struct sockaddr *)&untrusted, "203.0.113.1", got);
    v4("198.51.100.9", want);
    assert_memory_equal(got, want, 16);
    /* From a proxy: the nearest untrusted hop, trusted hops skipped. */
    viewers_client_addr(v, (struct sockaddr *)&proxy, "203.0.113.1, 203.0.113.2, 192.0.2.7", got);
    v4("203.0.113.2", want);
    assert_memory_equal(got, want, 16);
    /* Every hop trusted: the leftmost. */
    viewers_client_addr(v, (struct sockaddr *)&proxy, "10.9.9.9,10.8.8.8", got);
    v4("10.9.9.9", want);
    assert_memory_equal(got, want, 16);
    /* Garbage stops the walk at the last address that could be trusted. */
    viewers_client_addr(v, (struct sockaddr *)&proxy, "203.0.113.1, junk, 10.8.8.8", got);
    v4("10.8.8.8", want);
    assert_memory_equal(got, want, 16);
    /* No header: the peer. IPv6 in the header. */
    viewers_client_addr(v, (struct sockaddr *)&proxy, NULL, got);
    v4("10.1.2.3", want);
    assert_memory_equal(got, want, 16);
    viewers_client_addr(v, (struct sockaddr *)&proxy, "2001:db8::5", got);
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::5", want), 1);
    assert_memory_equal(got, want, 16);
    viewers_free(v);
}

static void touch_sid(viewers_t *v, const char *stream, const char *sid, int64_t now)
{
    viewers_touch(v, stream, 's', sid, strlen(sid), NULL, 0, now);
}

static void test_count_and_expiry(void **state)
{
    (void)state;
    viewers_t *v;
    assert_int_equal(viewers_new(NULL, 2000, 0, 0, &v), 0);
    int64_t t = 1000000;
    touch_sid(v, "a", "alice", t);
    touch_sid(v, "a", "bob", t);
    touch_sid(v, "a", "alice", t + 100);
    touch_sid(v, "b", "alice", t + 100); /* another stream: another session */
    assert_int_equal(viewers_count(v, "a", t + 200), 2);
    assert_int_equal(viewers_count(v, "b", t + 200), 1);
    assert_int_equal(viewers_count(v, "c", t + 200), 0);
    /* The same sid as a token SID or an address is another session. */
    viewers_touch(v, "a", 't', "alice", 5, NULL, 0, t + 300);
    assert_int_equal(viewers_count(v, "a", t + 300), 3);
    /* bob and the first alice expire 2 s after their last request. */
    touch_sid(v, "a", "alice", t + 1900);
    assert_int_equal(viewers_count(v, "a", t + 2250), 2); /* alice + token alice */
    assert_int_equal(viewers_count(v, "a", t + 4000), 0);
    origin_stream_viewers_t *list;
    size_t n;
    touch_sid(v, "z", "zed", t + 4000);
    assert_int_equal(viewers_list(v, t + 4000, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].stream_id, "z");
    assert_int_equal(list[0].viewers, 1);
    free(list);
    uint64_t alive, created, refused;
    viewers_get_stats(v, t + 4000, &alive, &created, &refused);
    assert_int_equal(alive, 1);
    assert_int_equal(created, 5); /* alice, bob, alice on b, token alice, zed */
    assert_int_equal(refused, 0);
    viewers_free(v);
}

static void test_caps(void **state)
{
    (void)state;
    viewers_t *v;
    assert_int_equal(viewers_new(NULL, 2000, 64, 3, &v), 0);
    char sid[32];
    for (int i = 0; i < 5; i++) {
        snprintf(sid, sizeof(sid), "s%d", i);
        touch_sid(v, "a", sid, 1000);
    }
    assert_int_equal(viewers_count(v, "a", 1000), 3);
    /* The total cap: 64 sessions over many streams, the rest refused. */
    for (int i = 0; i < 200; i++) {
        char stream[16];
        snprintf(stream, sizeof(stream), "st%d", i);
        touch_sid(v, stream, "x", 1000);
    }
    uint64_t alive, created, refused;
    viewers_get_stats(v, 1000, &alive, &created, &refused);
    assert_true(alive <= 64 + 16); /* per-stripe limits round up */
    assert_true(alive >= 32);
    assert_int_equal(created + refused, 205);
    assert_true(refused >= 2 + 200 - 80);
    /* Once they expire there is room again. */
    touch_sid(v, "a", "late", 5000);
    assert_int_equal(viewers_count(v, "a", 5000), 1);
    viewers_get_stats(v, 5000, &alive, &created, &refused);
    assert_int_equal(alive, 1);
    viewers_free(v);
}

typedef struct worker_arg {
    viewers_t *v;
    int id;
} worker_arg_t;

static void *worker(void *p)
{
    worker_arg_t *a = p;
    char sid[16];
    for (int i = 0; i < 20000; i++) {
        snprintf(sid, sizeof(sid), "v%d", (i * 7 + a->id) % 100);
        touch_sid(a->v, (i & 1) ? "odd" : "even", sid, 1000 + i / 1000);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    viewers_t *v;
    assert_int_equal(viewers_new(NULL, 60000, 0, 0, &v), 0);
    pthread_t th[4];
    worker_arg_t args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (worker_arg_t){.v = v, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    /* (i*7+id) % 100 over even i reaches every even-or-odd residue mix:
     * each stream sees all 100 sids across the four workers. */
    assert_int_equal(viewers_count(v, "even", 2000), 100);
    assert_int_equal(viewers_count(v, "odd", 2000), 100);
    viewers_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_proxies),
        cmocka_unit_test(test_forwarded_for),
        cmocka_unit_test(test_count_and_expiry),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
