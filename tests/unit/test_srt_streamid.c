/* Unit tests for ingest/srt_streamid.c: plain keys, SRT's access-control
 * form, refused modes, missing and oversized ids. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "srt_streamid_internal.h"

static int parse(const char *sid, char *key, const char **why)
{
    return srt_streamid_parse(sid, strlen(sid), key, SRT_STREAMID_KEY_MAX + 1, why);
}

static void test_plain_key(void **state)
{
    (void)state;
    char key[SRT_STREAMID_KEY_MAX + 1];
    const char *why = "x";
    assert_int_equal(parse("sk_live_abc123", key, &why), 0);
    assert_string_equal(key, "sk_live_abc123");
    assert_null(why);
    assert_int_equal(parse("live/sk_abc", key, &why), 0);
    assert_string_equal(key, "sk_abc");
}

static void test_access_control(void **state)
{
    (void)state;
    char key[SRT_STREAMID_KEY_MAX + 1];
    const char *why;
    assert_int_equal(parse("#!::r=live/KEY1,m=publish", key, &why), 0);
    assert_string_equal(key, "KEY1");
    assert_int_equal(parse("#!::m=publish,r=KEY2", key, &why), 0);
    assert_string_equal(key, "KEY2");
    /* other keys ignored; no mode means publish */
    assert_int_equal(parse("#!::u=alice,r=live/KEY3,s=123,t=stream,x=y", key, &why), 0);
    assert_string_equal(key, "KEY3");
    assert_int_equal(parse("#!::r=live/KEY4,", key, &why), 0);
    assert_string_equal(key, "KEY4");
}

static void test_refusals(void **state)
{
    (void)state;
    char key[SRT_STREAMID_KEY_MAX + 1];
    const char *why;
    assert_int_equal(parse("#!::r=live/KEY,m=request", key, &why), -EPERM);
    assert_string_equal(why, "pull is not supported");
    assert_string_equal(key, "");
    assert_int_equal(parse("#!::r=live/KEY,m=bidirectional", key, &why), -EPERM);
    assert_int_equal(parse("", key, &why), -ENOENT);
    assert_string_equal(why, "no stream id");
    assert_int_equal(srt_streamid_parse(NULL, 0, key, sizeof(key), &why), -ENOENT);
    assert_int_equal(parse("#!::m=publish", key, &why), -ENOENT);
    assert_int_equal(parse("#!::r=live/", key, &why), -ENOENT);
    assert_int_equal(parse("live/", key, &why), -ENOENT);
    assert_int_equal(parse("#!::r=a,r=b", key, &why), -EPROTO);
    assert_int_equal(parse("#!::=x", key, &why), -EPROTO);
    assert_int_equal(parse("#!::rlive", key, &why), -EPROTO);
    assert_int_equal(parse("other/KEY", key, &why), -EPROTO);
    assert_int_equal(parse("key with space", key, &why), -EPROTO);
    assert_int_equal(parse("key?x=1", key, &why), -EPROTO);
    static const char nul[] = {'a', 0, 'b'};
    assert_int_equal(srt_streamid_parse(nul, 3, key, sizeof(key), &why), -EPROTO);
}

static void test_bounds(void **state)
{
    (void)state;
    char big[SRT_STREAMID_MAX + 2];
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char key[SRT_STREAMID_KEY_MAX + 1];
    const char *why;
    assert_int_equal(parse(big, key, &why), -EMSGSIZE);
    big[SRT_STREAMID_KEY_MAX + 1] = '\0';
    assert_int_equal(parse(big, key, &why), -EMSGSIZE);
    big[SRT_STREAMID_KEY_MAX] = '\0';
    assert_int_equal(parse(big, key, &why), 0);
    assert_int_equal(strlen(key), SRT_STREAMID_KEY_MAX);
    /* a buffer too small for the key */
    char small[4];
    assert_int_equal(srt_streamid_parse("abcdef", 6, small, sizeof(small), &why), -EMSGSIZE);
    assert_string_equal(small, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_key),
        cmocka_unit_test(test_access_control),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
