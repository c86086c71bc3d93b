/* Unit tests for common/http_header.c: IMF-fixdate, If-None-Match and
 * If-Range matching, the Range parser and Accept-Encoding negotiation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http_header.h"

#define S(x) (x), strlen(x)

static void test_date(void **state)
{
    (void)state;
    char d[HTTP_DATE_MAX];
    http_header_format_date(784111777000LL, d);
    assert_string_equal(d, "Sun, 06 Nov 1994 08:49:37 GMT");
    http_header_format_date(0, d);
    assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 GMT");
}

static void test_none_match(void **state)
{
    (void)state;
    const char *e = "\"abc-12\"";
    assert_true(http_header_none_match(S("\"abc-12\""), e));
    assert_true(http_header_none_match(S("W/\"abc-12\""), e)); /* weak comparison */
    assert_true(http_header_none_match(S("\"x\", \"y\" ,W/\"abc-12\""), e));
    assert_true(http_header_none_match(S("*"), e));
    assert_true(http_header_none_match(S("  *  "), e));
    assert_false(http_header_none_match(S("\"abc-1\""), e));
    assert_false(http_header_none_match(S("\"abc-123\""), e));
    assert_false(http_header_none_match(S("abc-12"), e));        /* unquoted */
    assert_false(http_header_none_match(S("\"abc-12"), e));      /* unterminated */
    assert_false(http_header_none_match(S(""), e));
    assert_false(http_header_none_match(S(", ,"), e));
    assert_false(http_header_none_match(S("\"x\" junk, \"abc-12\""), e)); /* malformed stops */
    assert_false(http_header_none_match(S("w/\"abc-12\""), e));  /* W/ is case-sensitive */
    /* bounded by len, not by a NUL */
    assert_false(http_header_none_match("\"abc-12\"", 7, e));
}

static void test_if_range(void **state)
{
    (void)state;
    const char *e = "\"abc-12\"";
    const char *lm = "Sun, 06 Nov 1994 08:49:37 GMT";
    assert_true(http_header_if_range(S("\"abc-12\""), e, lm));
    assert_true(http_header_if_range(S(" \"abc-12\" "), e, lm));
    assert_false(http_header_if_range(S("W/\"abc-12\""), e, lm)); /* strong comparison */
    assert_false(http_header_if_range(S("\"other\""), e, lm));
    assert_false(http_header_if_range(S("\"abc-12\", \"x\""), e, lm));
    assert_true(http_header_if_range(S("Sun, 06 Nov 1994 08:49:37 GMT"), e, lm));
    assert_false(http_header_if_range(S("Sun, 06 Nov 1994 08:49:38 GMT"), e, lm));
    assert_false(http_header_if_range(S(""), e, lm));
}

static http_range_result_t rng(const char *s, uint64_t size, uint64_t *a, uint64_t *n)
{
    return http_header_range(s, strlen(s), size, a, n);
}

static void test_range(void **state)
{
    (void)state;
    uint64_t a, n;
    assert_int_equal(rng("bytes=0-9", 100, &a, &n), HTTP_RANGE_OK);
    assert_int_equal(a, 0);
    assert_int_equal(n, 10);
    assert_int_equal(rng("bytes=90-", 100, &a, &n), HTTP_RANGE_OK);
    assert_int_equal(a, 90);
    assert_int_equal(n, 10);
    assert_int_equal(rng("bytes=-30", 100, &a, &n), HTTP_RANGE_OK); /* suffix */
    assert_int_equal(a, 70);
    assert_int_equal(n, 30);
    assert_int_equal(rng("bytes=-300", 100, &a, &n), HTTP_RANGE_OK); /* longer suffix: all */
    assert_int_equal(a, 0);
    assert_int_equal(n, 100);
    assert_int_equal(rng("bytes=50-1000", 100, &a, &n), HTTP_RANGE_OK); /* last clamped */
    assert_int_equal(a, 50);
    assert_int_equal(n, 50);
    assert_int_equal(rng("Bytes=99-99", 100, &a, &n), HTTP_RANGE_OK);
    assert_int_equal(a, 99);
    assert_int_equal(n, 1);
    assert_int_equal(rng(" bytes= 5-6 ", 100, &a, &n), HTTP_RANGE_OK);
    assert_int_equal(rng("bytes=0-99999999999999999999999", 100, &a, &n), HTTP_RANGE_OK);
    assert_int_equal(n, 100);
    /* unsatisfiable */
    assert_int_equal(rng("bytes=100-", 100, &a, &n), HTTP_RANGE_UNSATISFIABLE);
    assert_int_equal(rng("bytes=100-200", 100, &a, &n), HTTP_RANGE_UNSATISFIABLE);
    assert_int_equal(rng("bytes=-0", 100, &a, &n), HTTP_RANGE_UNSATISFIABLE);
    assert_int_equal(rng("bytes=0-", 0, &a, &n), HTTP_RANGE_UNSATISFIABLE);
    assert_int_equal(rng("bytes=99999999999999999999999-", 100, &a, &n),
                     HTTP_RANGE_UNSATISFIABLE);
    /* ignored: malformed, several ranges, other units, inverted */
    assert_int_equal(rng("bytes=0-9,20-29", 100, &a, &n), HTTP_RANGE_IGNORE);
    assert_int_equal(rng("bytes=0-9,", 100, &a, &n), HTTP_RANGE_IGNORE);
    assert_int_equal(rng("bytes=9-0", 100, &a, &n), HTTP_RANGE_IGNORE);
    assert_int_equal(rng("items=0-9", 100, &a, &n), HTTP_RANGE_IGNORE);
    assert_int_equal(rng("bytes=", 100, &a, &n), HTTP_RANGE_IGNORE);
    assert_int_equal(rng("bytes=-", 100, &a, &n), HTTP_RANGE_IGNORE);
    assert_int_equal(rng("bytes=a-b", 100, &a, &n), HTTP_RANGE_IGNORE);
    assert_int_equal(rng("bytes=1-2x", 100, &a, &n), HTTP_RANGE_IGNORE);
    assert_int_equal(rng("bytes 0-9", 100, &a, &n), HTTP_RANGE_IGNORE);
    assert_int_equal(rng("", 100, &a, &n), HTTP_RANGE_IGNORE);
    assert_int_equal(rng("bytes=--5", 100, &a, &n), HTTP_RANGE_IGNORE);
    /* bounded by len: "bytes=0-9" cut before the 9 is an open range */
    assert_int_equal(http_header_range("bytes=0-9", 8, 100, &a, &n), HTTP_RANGE_OK);
    assert_int_equal(n, 100);
}

static bool gz(const char *s)
{
    return http_header_accepts_gzip(s, strlen(s));
}

static void test_accept_encoding(void **state)
{
    (void)state;
    assert_true(gz("gzip"));
    assert_true(gz("gzip, deflate, br"));
    assert_true(gz("br;q=1.0, GZIP;q=0.5"));
    assert_true(gz("x-gzip"));
    assert_true(gz("*"));
    assert_true(gz("br, *;q=0.1"));
    assert_true(gz("gzip;q=0.001"));
    assert_true(gz("gzip ; q=1"));
    assert_false(gz(""));
    assert_false(gz("identity"));
    assert_false(gz("br, deflate"));
    assert_false(gz("gzip;q=0"));
    assert_false(gz("gzip;q=0.000"));
    assert_false(gz("gzip;q=0, *"));   /* named gzip decides over * */
    assert_false(gz("*;q=0"));
    assert_false(gz("gzipx"));
    assert_false(gz("gzip;q=2"));      /* malformed q: not acceptable */
    assert_false(gz("gzip;q=0.0001"));
    assert_false(gz("gzip;q"));
    assert_true(gz("gzip;level=9"));   /* other parameters do not matter */
    assert_false(http_header_accepts_gzip("gzip", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_date),          cmocka_unit_test(test_none_match),
        cmocka_unit_test(test_if_range),      cmocka_unit_test(test_range),
        cmocka_unit_test(test_accept_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
