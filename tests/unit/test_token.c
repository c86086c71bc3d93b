/* Unit tests for origin/token.c: minting matches the documented algorithm
 * (known answers computed with the Python of docs/cdn.md), and verification
 * tells valid, missing, expired, forged, other-stream and wrong-address
 * tokens apart. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "test_util.h"
#include "token_internal.h"

static const char secret[] = "0123456789abcdef-secret";
#define SECRET secret, sizeof(secret) - 1
#define EXP 1900000000LL

static token_status_t check(const char *stream, const char *tok, int64_t now,
                            const void *peer)
{
    return token_verify(SECRET, stream, tok, tok ? strlen(tok) : 0, now, peer);
}

static void test_known_answers(void **state)
{
    (void)state;
    char t[TOKEN_MAX + 1];
    assert_int_equal(token_sign(SECRET, "demo", EXP, NULL, NULL, t, sizeof(t)), 56);
    assert_string_equal(t, "1900000000~~~Xg7XIrOqv_gmshKmoHaeDFjehCyiUr-KyCsMVMRhg10");
    assert_true(token_sign(SECRET, "demo", EXP, "203.0.113.7", "viewer-42", t, sizeof(t)) > 0);
    assert_string_equal(t, "1900000000~203.0.113.7~viewer-42~"
                           "596CjfMn9fjO3qguxgyWM0LXBg8zczEJy3tQ5HAnZwI");
}

static void test_verify(void **state)
{
    (void)state;
    char t[TOKEN_MAX + 1];
    struct sockaddr_in peer = sockaddr_v4("127.0.0.1");
    assert_true(token_sign(SECRET, "demo", EXP, NULL, "s1", t, sizeof(t)) > 0);
    assert_int_equal(check("demo", t, EXP - 10, &peer), TOKEN_OK);
    assert_int_equal(check("demo", t, EXP - 10, NULL), TOKEN_OK); /* not IP-bound */
    /* expired at its expiry second */
    assert_int_equal(check("demo", t, EXP, &peer), TOKEN_EXPIRED);
    assert_int_equal(check("demo", t, EXP + 3600, &peer), TOKEN_EXPIRED);
    /* another stream's token */
    assert_int_equal(check("other", t, EXP - 10, &peer), TOKEN_INVALID);
    /* missing */
    assert_int_equal(check("demo", NULL, EXP - 10, &peer), TOKEN_MISSING);
    assert_int_equal(check("demo", "", EXP - 10, &peer), TOKEN_MISSING);
    /* forged: any change of a field or of the signature */
    char f[TOKEN_MAX + 1];
    strcpy(f, t);
    f[strlen(f) - 1] = f[strlen(f) - 1] == 'A' ? 'B' : 'A';
    assert_int_equal(check("demo", f, EXP - 10, &peer), TOKEN_INVALID);
    strcpy(f, t);
    f[0] = '2'; /* a later expiry */
    assert_int_equal(check("demo", f, EXP - 10, &peer), TOKEN_INVALID);
    strcpy(f, t);
    char *sid = strstr(f, "~s1~");
    sid[2] = '2';
    assert_int_equal(check("demo", f, EXP - 10, &peer), TOKEN_INVALID);
    /* a forged token that is also expired says "invalid", not "expired" */
    strcpy(f, t);
    f[strlen(f) - 1] = f[strlen(f) - 1] == 'A' ? 'B' : 'A';
    assert_int_equal(check("demo", f, EXP + 10, &peer), TOKEN_INVALID);
    /* another secret */
    assert_int_equal(token_verify("another-secret-1234", 19, "demo", t, strlen(t), EXP - 10,
                                  (void *)&peer),
                     TOKEN_INVALID);
}

static void test_ip_binding(void **state)
{
    (void)state;
    char t[TOKEN_MAX + 1];
    struct sockaddr_in me = sockaddr_v4("203.0.113.7"), other = sockaddr_v4("203.0.113.8");
    struct sockaddr_in6 mapped = sockaddr_v6("::ffff:203.0.113.7");
    struct sockaddr_in6 six = sockaddr_v6("2001:db8::1");
    assert_true(token_sign(SECRET, "demo", EXP, "203.0.113.7", NULL, t, sizeof(t)) > 0);
    assert_int_equal(check("demo", t, EXP - 1, &me), TOKEN_OK);
    assert_int_equal(check("demo", t, EXP - 1, &mapped), TOKEN_OK); /* v4 on a v6 socket */
    assert_int_equal(check("demo", t, EXP - 1, &other), TOKEN_WRONG_ADDRESS);
    assert_int_equal(check("demo", t, EXP - 1, &six), TOKEN_WRONG_ADDRESS);
    assert_int_equal(check("demo", t, EXP - 1, NULL), TOKEN_WRONG_ADDRESS);
    /* expiry is reported before the address */
    assert_int_equal(check("demo", t, EXP + 1, &other), TOKEN_EXPIRED);

    assert_true(token_sign(SECRET, "demo", EXP, "2001:db8::1", NULL, t, sizeof(t)) > 0);
    assert_int_equal(check("demo", t, EXP - 1, &six), TOKEN_OK);
    assert_int_equal(check("demo", t, EXP - 1, &me), TOKEN_WRONG_ADDRESS);
}

static void test_parse_and_sign_limits(void **state)
{
    (void)state;
    token_fields_t f;
    char t[TOKEN_MAX + 1];
    const char *sig = "Xg7XIrOqv_gmshKmoHaeDFjehCyiUr-KyCsMVMRhg10";
    char buf[512];
    snprintf(buf, sizeof(buf), "1900000000~~~%s", sig);
    assert_int_equal(token_parse(buf, strlen(buf), &f), 0);
    assert_int_equal(f.expires, EXP);
    assert_int_equal(f.ip_len, 0);
    assert_int_equal(f.sig_len, TOKEN_SIG_LEN);
    const char *bad[] = {
        "",
        "1900000000~~",
        "1900000000~~~Xg7XIrOqv_gmshKmoHaeDFjehCyiUr-KyCsMVMRhg1",    /* short signature */
        "1900000000~~~Xg7XIrOqv_gmshKmoHaeDFjehCyiUr-KyCsMVMRhg10~",  /* five fields */
        "19x0000000~~~Xg7XIrOqv_gmshKmoHaeDFjehCyiUr-KyCsMVMRhg10",   /* not a number */
        "~~~Xg7XIrOqv_gmshKmoHaeDFjehCyiUr-KyCsMVMRhg10",             /* no expiry */
        "1234567890123~~~Xg7XIrOqv_gmshKmoHaeDFjehCyiUr-KyCsMVMRhg10", /* 13 digits */
        "1900000000~1.2.3~~Xg7XIrOqv_gmshKmoHaeDFjehCyiUr-KyCsMVMRhg10", /* bad IP */
        "1900000000~~a b~Xg7XIrOqv_gmshKmoHaeDFjehCyiUr-KyCsMVMRhg10",  /* bad sid */
        "1900000000~~~Xg7XIrOqv_gmshKmoHaeDFjehCyiUr+KyCsMVMRhg10",   /* not base64url */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(token_parse(bad[i], strlen(bad[i]), &f), -EPROTO);
    memset(buf, '1', sizeof(buf));
    assert_int_equal(token_parse(buf, TOKEN_MAX + 1, &f), -EMSGSIZE);
    /* minting refuses what verification would refuse */
    assert_int_equal(token_sign(SECRET, "demo", EXP, "not-an-ip", NULL, t, sizeof(t)), -EINVAL);
    assert_int_equal(token_sign(SECRET, "demo", EXP, NULL, "a|b", t, sizeof(t)), -EINVAL);
    assert_int_equal(token_sign(SECRET, "demo", EXP, NULL, NULL, t, 20), -ENOSPC);
    assert_string_equal(token_status_text(TOKEN_MISSING), "token missing\n");
    assert_string_equal(token_status_text(TOKEN_EXPIRED), "token expired\n");
    assert_string_equal(token_status_text(TOKEN_INVALID), "token invalid\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_ip_binding),
        cmocka_unit_test(test_parse_and_sign_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
