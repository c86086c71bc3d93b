/* Unit tests for ingest/ingest.c's per-address bookkeeping: what counts as
 * one address for the per-address connection limit and the bad-key lockout
 * (IPv4 as is, IPv6 by its /64, IPv4-mapped IPv6 as the IPv4 address), and
 * a lockout earned from one IPv6 address holding for its whole /64 but not
 * for the next one (S11 of the security review). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "ingest_internal.h"

static ingest_addr_t addr6(const char *text)
{
    struct sockaddr_in6 sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(40000);
    assert_int_equal(inet_pton(AF_INET6, text, &sa.sin6_addr), 1);
    ingest_addr_t a;
    ingest_addr_from(&a, (const struct sockaddr *)&sa);
    return a;
}

static ingest_addr_t addr4(const char *text, uint16_t port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, text, &sa.sin_addr), 1);
    ingest_addr_t a;
    ingest_addr_from(&a, (const struct sockaddr *)&sa);
    return a;
}

static bool same(ingest_addr_t a, ingest_addr_t b)
{
    return memcmp(&a, &b, sizeof(a)) == 0;
}

static void test_ipv6_grouped_by_64(void **state)
{
    (void)state;
    ingest_addr_t a = addr6("2001:db8:1:2:aaaa:bbbb:cccc:dddd");
    /* Any interface id in the same /64 is the same address. */
    assert_true(same(a, addr6("2001:db8:1:2::1")));
    assert_true(same(a, addr6("2001:db8:1:2:ffff:ffff:ffff:ffff")));
    /* The next /64 is another one, and so is another /48. */
    assert_false(same(a, addr6("2001:db8:1:3::1")));
    assert_false(same(a, addr6("2001:db8:2:2::1")));
    /* The interface id is not kept at all. */
    for (size_t i = 8; i < 16; i++)
        assert_int_equal(a.b[i], 0);
    assert_int_equal(a.b[0], 0x20);
    assert_int_equal(a.b[7], 0x02);
}

static void test_ipv4_kept_whole(void **state)
{
    (void)state;
    ingest_addr_t a = addr4("192.0.2.7", 1935);
    /* The port never matters; every bit of the address does. */
    assert_true(same(a, addr4("192.0.2.7", 50000)));
    assert_false(same(a, addr4("192.0.2.8", 1935)));
    assert_false(same(a, addr4("192.0.3.7", 1935)));
    /* An IPv4 peer on a dual-stack socket (IPv4-mapped) is the same IPv4
     * address, not cut to a /64 (which would merge all of IPv4). */
    assert_true(same(a, addr6("::ffff:192.0.2.7")));
    assert_false(same(addr6("::ffff:192.0.2.7"), addr6("::ffff:192.0.2.8")));
    /* And it is not an IPv6 address of its own /64. */
    assert_false(same(a, addr6("::1")));
}

static void test_lockout_holds_for_the_64(void **state)
{
    (void)state;
    ingest_shared_t sh;
    memset(&sh, 0, sizeof(sh));
    ingest_limits_default(&sh.limits);
    sh.limits.max_key_failures = 3;
    sh.limits.key_lockout_s = 60;
    sh.key_failures = calloc(4096, sizeof(*sh.key_failures));
    assert_non_null(sh.key_failures);
    int64_t now = 1000000;
    /* Three bad keys, each from another address of one /64. */
    ingest_addr_t a1 = addr6("2001:db8:0:1::1");
    ingest_addr_t a2 = addr6("2001:db8:0:1::2");
    ingest_addr_t a3 = addr6("2001:db8:0:1:dead:beef:0:3");
    ingest_addr_t other = addr6("2001:db8:0:2::1");
    assert_false(ingest_key_failed(&sh, &a1, now));
    assert_false(ingest_key_failed(&sh, &a2, now + 1));
    assert_true(ingest_key_failed(&sh, &a3, now + 2)); /* the third locks it out */
    /* Locked out: any address of that /64, not the neighbouring /64. */
    assert_true(ingest_addr_locked_out(&sh, &a1, now + 3));
    ingest_addr_t a9 = addr6("2001:db8:0:1:9:9:9:9");
    assert_true(ingest_addr_locked_out(&sh, &a9, now + 3));
    assert_false(ingest_addr_locked_out(&sh, &other, now + 3));
    /* Until the lockout ends. */
    assert_false(ingest_addr_locked_out(&sh, &a9, now + 2 + 60 * 1000));
    assert_int_equal(sh.stats.bad_keys, 3);
    assert_int_equal(sh.stats.lockouts, 1);
    free(sh.key_failures);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv6_grouped_by_64),
        cmocka_unit_test(test_ipv4_kept_whole),
        cmocka_unit_test(test_lockout_holds_for_the_64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
