/* Unit tests for ingest/rtmp_handshake.c. The test plays the client: it
 * builds C1 itself for the plain handshake and for the digest handshake at
 * both schemes (with its own copy of the keys and offset rule), then checks
 * the server's S1 digest and S2 signature the way librtmp and FFmpeg do. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "rtmp_handshake_internal.h"

#define HS 1536

static const uint8_t key_tail[32] = {0xf0, 0xee, 0xc2, 0x4a, 0x80, 0x68, 0xbe, 0xe8,
                                     0x2e, 0x00, 0xd0, 0xd1, 0x02, 0x9e, 0x7e, 0x57,
                                     0x6e, 0xec, 0x5d, 0x2d, 0x29, 0x80, 0x6f, 0xab,
                                     0x93, 0xb8, 0xe6, 0x36, 0xcf, 0xeb, 0x31, 0xae};
static const char fp_text[] = "Genuine Adobe Flash Player 001";        /* 30 bytes */
static const char fms_text[] = "Genuine Adobe Flash Media Server 001"; /* 36 bytes */

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (uint8_t)(seed >> 24);
    }
}

/* Independent of the server code: base 8 or 772, 728-byte window. */
static size_t offset_for(const uint8_t *pkt, int scheme)
{
    size_t base = scheme ? 772 : 8;
    return (size_t)(pkt[base] + pkt[base + 1] + pkt[base + 2] + pkt[base + 3]) % 728 + base + 4;
}

static void hmac_skip(const uint8_t *pkt, size_t off, const void *key, size_t keylen,
                      uint8_t out[32])
{
    uint8_t msg[HS - 32];
    memcpy(msg, pkt, off);
    memcpy(msg + off, pkt + off + 32, HS - off - 32);
    unsigned int n;
    assert_non_null(HMAC(EVP_sha256(), key, (int)keylen, msg, sizeof(msg), out, &n));
}

/* C0 + C1 signed at `scheme` (-1: plain, zero version). */
static void build_c0c1(uint8_t *c0c1, int scheme, uint32_t seed)
{
    c0c1[0] = 3;
    uint8_t *c1 = c0c1 + 1;
    fill(c1, HS, seed);
    memset(c1, 0, 4);
    if (scheme < 0) {
        memset(c1 + 4, 0, 4);
        return;
    }
    static const uint8_t ver[4] = {9, 0, 124, 2}; /* FFmpeg's client version */
    memcpy(c1 + 4, ver, 4);
    size_t off = offset_for(c1, scheme);
    uint8_t d[32];
    hmac_skip(c1, off, fp_text, 30, d);
    memcpy(c1 + off, d, 32);
}

static int run_server(rtmp_handshake_t *hs, const uint8_t *c0c1, uint8_t *s0s1s2)
{
    size_t used = 0;
    rtmp_handshake_init(hs);
    int ret = rtmp_handshake_feed(hs, c0c1, 1 + HS, &used);
    assert_int_equal(ret, -EAGAIN);
    assert_int_equal(used, 1 + HS);
    assert_int_equal(hs->out_len, 1 + 2 * HS);
    memcpy(s0s1s2, hs->out, hs->out_len);
    hs->out_len = 0;
    return 0;
}

static void finish_with_c2(rtmp_handshake_t *hs)
{
    uint8_t c2[HS + 5];
    fill(c2, sizeof(c2), 99);
    size_t used = 0;
    /* Trailing bytes after C2 belong to the chunk stream: not consumed. */
    assert_int_equal(rtmp_handshake_feed(hs, c2, sizeof(c2), &used), 0);
    assert_int_equal(used, HS);
    assert_int_equal(hs->state, RTMP_HANDSHAKE_DONE);
}

static void test_plain(void **state)
{
    (void)state;
    uint8_t c0c1[1 + HS], out[1 + 2 * HS];
    rtmp_handshake_t hs;
    build_c0c1(c0c1, -1, 1);
    run_server(&hs, c0c1, out);
    assert_int_equal(hs.kind, RTMP_HANDSHAKE_PLAIN);
    assert_int_equal(out[0], 3);
    static const uint8_t zero4[4];
    assert_memory_equal(out + 1 + 4, zero4, 4); /* S1 zero field */
    assert_memory_equal(out + 1 + HS, c0c1 + 1, HS);                /* S2 echoes C1 */
    finish_with_c2(&hs);
}

static void check_digest_answer(int scheme, uint32_t seed)
{
    uint8_t c0c1[1 + HS], out[1 + 2 * HS];
    rtmp_handshake_t hs;
    build_c0c1(c0c1, scheme, seed);
    run_server(&hs, c0c1, out);
    assert_int_equal(hs.kind,
                     scheme ? RTMP_HANDSHAKE_DIGEST_SCHEME1 : RTMP_HANDSHAKE_DIGEST_SCHEME0);
    assert_int_equal(out[0], 3);
    const uint8_t *s1 = out + 1, *s2 = out + 1 + HS;
    assert_true(s1[5] >= 3); /* FFmpeg validates S1 only for versions >= x.3 */

    /* S1 digest at the same scheme, keyed with the 36-byte FMS text. */
    size_t off = offset_for(s1, scheme);
    uint8_t d[32];
    hmac_skip(s1, off, fms_text, 36, d);
    assert_memory_equal(d, s1 + off, 32);

    /* S2: HMAC(HMAC(full FMS key, C1 digest), S2[0..1504)) at the end. */
    uint8_t full[68];
    memcpy(full, fms_text, 36);
    memcpy(full + 36, key_tail, 32);
    size_t coff = offset_for(c0c1 + 1, scheme);
    uint8_t k[32], sig[32];
    unsigned int n;
    assert_non_null(HMAC(EVP_sha256(), full, sizeof(full), c0c1 + 1 + coff, 32, k, &n));
    assert_non_null(HMAC(EVP_sha256(), k, 32, s2, HS - 32, sig, &n));
    assert_memory_equal(sig, s2 + HS - 32, 32);
    finish_with_c2(&hs);
}

static void test_digest_scheme0(void **state)
{
    (void)state;
    for (uint32_t seed = 1; seed <= 20; seed++)
        check_digest_answer(0, seed);
}

static void test_digest_scheme1(void **state)
{
    (void)state;
    for (uint32_t seed = 1; seed <= 20; seed++)
        check_digest_answer(1, seed);
}

/* A non-zero version without a valid digest gets the plain answer. */
static void test_bad_digest_falls_back(void **state)
{
    (void)state;
    uint8_t c0c1[1 + HS], out[1 + 2 * HS];
    rtmp_handshake_t hs;
    build_c0c1(c0c1, 0, 5);
    c0c1[1 + offset_for(c0c1 + 1, 0)] ^= 1;
    run_server(&hs, c0c1, out);
    assert_int_equal(hs.kind, RTMP_HANDSHAKE_PLAIN);
    assert_memory_equal(out + 1 + HS, c0c1 + 1, HS);
}

static void test_byte_by_byte_and_version(void **state)
{
    (void)state;
    uint8_t c0c1[1 + HS];
    build_c0c1(c0c1, 1, 7);
    rtmp_handshake_t hs;
    rtmp_handshake_init(&hs);
    size_t used;
    for (size_t i = 0; i < sizeof(c0c1); i++) {
        assert_int_equal(rtmp_handshake_feed(&hs, c0c1 + i, 1, &used), -EAGAIN);
        assert_int_equal(used, 1);
        assert_int_equal(hs.out_len, i + 1 < sizeof(c0c1) ? 0 : 1 + 2 * HS);
    }
    assert_int_equal(hs.kind, RTMP_HANDSHAKE_DIGEST_SCHEME1);
    hs.out_len = 0;
    uint8_t b = 0;
    for (size_t i = 0; i < HS - 1; i++)
        assert_int_equal(rtmp_handshake_feed(&hs, &b, 1, &used), -EAGAIN);
    assert_int_equal(rtmp_handshake_feed(&hs, &b, 0, &used), -EAGAIN);
    assert_int_equal(rtmp_handshake_feed(&hs, &b, 1, &used), 0);

    /* RTMPE (6) and anything else that is not 3 is refused at C0. */
    static const uint8_t versions[] = {0, 6, 'G', 0xff};
    for (size_t i = 0; i < sizeof(versions); i++) {
        rtmp_handshake_init(&hs);
        assert_int_equal(rtmp_handshake_feed(&hs, &versions[i], 1, &used), -EPROTO);
    }
    assert_string_equal(rtmp_handshake_kind_name(RTMP_HANDSHAKE_PLAIN), "plain");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_digest_scheme0),
        cmocka_unit_test(test_digest_scheme1),
        cmocka_unit_test(test_bad_digest_falls_back),
        cmocka_unit_test(test_byte_by_byte_and_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
