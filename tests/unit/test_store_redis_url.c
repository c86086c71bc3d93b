/* Unit tests for store/store_redis_url.c: the redis:// and
 * redis-sentinel:// grammar (each refusal on its own), percent-decoding,
 * the log name that carries no secret, and the +switch-master parser. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "store_redis_url.h"

static rs_url_t u;

static int parse(const char *url)
{
    return rs_url_parse(url, &u);
}

static void test_direct_unchanged(void **state)
{
    (void)state;
    assert_int_equal(parse("redis://127.0.0.1:6380/3"), 0);
    assert_int_equal(u.mode, RS_URL_DIRECT);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 3);
    assert_string_equal(u.where, "redis://127.0.0.1:6380/3");
    assert_int_equal(parse("redis://:pw@h"), 0);
    assert_string_equal(u.password, "pw");
    assert_string_equal(u.user, "");
    assert_int_equal(u.port, 6379);
    assert_null(strstr(u.where, "pw"));
    /* redis:// decodes nothing and splits at the last '@' of the URL */
    assert_int_equal(parse("redis://us:p%40w@h:1/0?cache-mb=0"), 0);
    assert_string_equal(u.user, "us");
    assert_string_equal(u.password, "p%40w");
    assert_int_equal(u.cache_bytes, 0);
    assert_int_equal(parse("redis://[::1]:7000"), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    assert_int_equal(parse("redis://"), -EINVAL);
    assert_int_equal(parse("redis://127.0.0.1:99999"), -EINVAL);
    assert_int_equal(parse("redis://127.0.0.1:6379/x"), -EINVAL);
    assert_int_equal(parse("redis://h/1?db=2"), -EINVAL);
    assert_int_equal(parse("memory"), -EINVAL);
}

static void test_sentinel_contract_form(void **state)
{
    (void)state;
    /* CONTRACT.md: redis-sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER[?db=N] */
    assert_int_equal(
        parse("redis-sentinel://:dataPW@10.0.0.5:26379,10.0.0.6:26380,10.0.0.7:26381/sluice?db=2"),
        0);
    assert_int_equal(u.mode, RS_URL_SENTINEL);
    assert_int_equal(u.nsentinels, 3);
    assert_string_equal(u.sentinels[0].host, "10.0.0.5");
    assert_int_equal(u.sentinels[0].port, 26379);
    assert_string_equal(u.sentinels[2].host, "10.0.0.7");
    assert_int_equal(u.sentinels[2].port, 26381);
    assert_string_equal(u.master_name, "sluice");
    assert_string_equal(u.password, "dataPW");
    assert_string_equal(u.user, "");
    assert_string_equal(u.sentinel_password, "");
    assert_int_equal(u.db, 2);
    assert_int_equal(u.wait_ms, RS_URL_WAIT_MS_DEFAULT);
    assert_int_equal(u.cache_bytes, RS_URL_CACHE_BYTES_DEFAULT);
    assert_string_equal(u.where,
                        "redis-sentinel://10.0.0.5:26379,10.0.0.6:26380,10.0.0.7:26381/sluice db 2");
    assert_int_equal(parse("redis-sentinel://127.0.0.1:26379/mymaster"), 0);
    assert_int_equal(u.nsentinels, 1);
    assert_int_equal(u.db, 0);
}

static void test_sentinel_full_form(void **state)
{
    (void)state;
    assert_int_equal(parse("redis-sentinel://sluice:da%40ta%2FPW@s1,s2:1,[::1]:26390/a.b_c-1"
                           "?sentinel-user=watch&sentinel-password=s%26nt%25PW&wait-ms=0"
                           "&cache-mb=8&db=65535"),
                     0);
    assert_string_equal(u.user, "sluice");
    assert_string_equal(u.password, "da@ta/PW");
    assert_int_equal(u.nsentinels, 3);
    assert_string_equal(u.sentinels[0].host, "s1");
    assert_int_equal(u.sentinels[0].port, RS_URL_SENTINEL_PORT);
    assert_int_equal(u.sentinels[1].port, 1);
    assert_string_equal(u.sentinels[2].host, "::1");
    assert_int_equal(u.sentinels[2].port, 26390);
    assert_string_equal(u.master_name, "a.b_c-1");
    assert_string_equal(u.sentinel_user, "watch");
    assert_string_equal(u.sentinel_password, "s&nt%PW");
    assert_int_equal(u.wait_ms, 0);
    assert_int_equal(u.cache_bytes, (size_t)8 << 20);
    assert_int_equal(u.db, 65535);
    /* the log name: the sentinels and the name, no secret */
    assert_string_equal(u.where, "redis-sentinel://s1:26379,s2:1,[::1]:26390/a.b_c-1 db 65535");
    assert_null(strstr(u.where, "PW"));
    assert_null(strstr(u.where, "watch"));
    /* a literal '@' in a query value does not split the userinfo */
    assert_int_equal(parse("redis-sentinel://h/m?sentinel-password=a@b"), 0);
    assert_string_equal(u.sentinel_password, "a@b");
    assert_string_equal(u.password, "");
    assert_string_equal(u.sentinels[0].host, "h");
    /* the userinfo ends at the authority's last '@' */
    assert_int_equal(parse("redis-sentinel://u:p@q@h/m"), 0);
    assert_string_equal(u.password, "p@q");
    assert_string_equal(u.sentinels[0].host, "h");
    /* 16 sentinels: the most; the log name is cut short, never overflows */
    char url[1024] = "redis-sentinel://";
    for (int i = 0; i < 16; i++)
        snprintf(url + strlen(url), sizeof(url) - strlen(url), "%ssentinel-%02d.example.org:%d",
                 i ? "," : "", i, 26379 + i);
    strcat(url, "/m");
    assert_int_equal(parse(url), 0);
    assert_int_equal(u.nsentinels, 16);
    assert_int_equal(u.sentinels[15].port, 26394);
    assert_non_null(strstr(u.where, ",..."));
    assert_non_null(strstr(u.where, "/m db 0"));
}

static void test_sentinel_refusals(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "redis-sentinel://",
        "redis-sentinel:///m",              /* empty host list */
        "redis-sentinel://h",               /* no master name */
        "redis-sentinel://h/",              /* empty master name */
        "redis-sentinel://h,/m",            /* empty host */
        "redis-sentinel://,h/m",
        "redis-sentinel://h:0/m",           /* bad ports */
        "redis-sentinel://h:65536/m",
        "redis-sentinel://h:/m",
        "redis-sentinel://h:12x/m",
        "redis-sentinel://h:1:2/m",
        "redis-sentinel://[::1/m",
        "redis-sentinel://[]:1/m",
        "redis-sentinel://h/m!",            /* invalid names */
        "redis-sentinel://h/m/x",
        "redis-sentinel://h/m y",
        "redis-sentinel://h/0123456789012345678901234567890123456789012345678901234567890123",
        "redis-sentinel://h/m?",            /* params */
        "redis-sentinel://h/m?db=1&db=2",
        "redis-sentinel://h/m?nope=1",
        "redis-sentinel://h/m?db",
        "redis-sentinel://h/m?db=",
        "redis-sentinel://h/m?db=65536",
        "redis-sentinel://h/m?db=-1",
        "redis-sentinel://h/m?db=1&",
        "redis-sentinel://h/m?wait-ms=1001",
        "redis-sentinel://h/m?cache-mb=65537",
        "redis-sentinel://h/m?sentinel-password=",
        "redis-sentinel://h/m?sentinel-password=%zz", /* bad %-escapes */
        "redis-sentinel://h/m?sentinel-password=ab%4",
        "redis-sentinel://h/m?sentinel-user=%00",
        "redis-sentinel://:p%4@h/m",
        "redis-sentinel://nocolon@h/m",     /* userinfo without ':' */
        "redis-sentinel://u:@h/m",          /* an empty password */
        "redis-sentinel://h h/m",
        "redis-sentinel://h%20/m",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i]) != -EINVAL)
            fail_msg("accepted: %s", bad[i]);
        assert_string_equal(u.password, ""); /* cleansed on refusal */
        assert_string_equal(u.sentinel_password, "");
    }
    /* 17 sentinels */
    char url[512] = "redis-sentinel://";
    for (int i = 0; i < 17; i++)
        snprintf(url + strlen(url), sizeof(url) - strlen(url), "%sh%d", i ? "," : "", i);
    strcat(url, "/m");
    assert_int_equal(parse(url), -EINVAL);
    /* a 63-byte name is the longest */
    assert_int_equal(
        parse("redis-sentinel://h/012345678901234567890123456789012345678901234567890123456789012"),
        0);
}

static void test_cleanse(void **state)
{
    (void)state;
    assert_int_equal(parse("redis-sentinel://:a@h/m?sentinel-password=b"), 0);
    rs_url_cleanse(&u);
    assert_string_equal(u.password, "");
    assert_string_equal(u.sentinel_password, "");
}

static int sw(const char *msg, char *host, int *port)
{
    return rs_switch_parse(msg, strlen(msg), "sluice", host, 64, port);
}

static void test_switch_parse(void **state)
{
    (void)state;
    char host[64];
    int port = 0;
    assert_int_equal(sw("sluice 127.0.0.1 6379 127.0.0.1 6380", host, &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 6380);
    assert_int_equal(sw("sluice ::1 6379 ::2 7000", host, &port), 0);
    assert_string_equal(host, "::2");
    assert_int_equal(port, 7000);
    assert_int_equal(sw("other 127.0.0.1 6379 127.0.0.1 6380", host, &port), -ENOENT);
    assert_int_equal(sw("sluicex 127.0.0.1 6379 127.0.0.1 6380", host, &port), -ENOENT);
    assert_int_equal(sw("sluice 127.0.0.1 6379 127.0.0.1", host, &port), -EINVAL);
    assert_int_equal(sw("sluice 127.0.0.1 6379 127.0.0.1 6380 x", host, &port), -EINVAL);
    assert_int_equal(sw("sluice 127.0.0.1 6379 127.0.0.1 0", host, &port), -EINVAL);
    assert_int_equal(sw("sluice 127.0.0.1 6379 127.0.0.1 65536", host, &port), -EINVAL);
    assert_int_equal(sw("sluice 127.0.0.1 x 127.0.0.1 6380", host, &port), -EINVAL);
    assert_int_equal(sw("", host, &port), -EINVAL);
    /* a length that stops before the end: truncated */
    const char *m = "sluice 127.0.0.1 6379 127.0.0.1 6380";
    assert_int_equal(rs_switch_parse(m, 20, "sluice", host, 64, &port), -EINVAL);
    /* a host longer than the buffer */
    assert_int_equal(rs_switch_parse(m, strlen(m), "sluice", host, 9, &port), -EINVAL);
    assert_int_equal(rs_switch_parse(m, strlen(m), "sluice", host, 10, &port), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_direct_unchanged),
        cmocka_unit_test(test_sentinel_contract_form),
        cmocka_unit_test(test_sentinel_full_form),
        cmocka_unit_test(test_sentinel_refusals),
        cmocka_unit_test(test_cleanse),
        cmocka_unit_test(test_switch_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
