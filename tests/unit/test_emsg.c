/*
 * Tests for common/emsg.c: the emsg (ISO/IEC 23009-1 5.10.3.3, version 1)
 * box and the ID3v2.4 tag inside it, byte for byte against the specs, and
 * for common/utf8.c, which decides what a payload may be.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "emsg.h"
#include "utf8.h"

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t syncsafe(const uint8_t *p)
{
    for (int i = 0; i < 4; i++)
        assert_int_equal(p[i] & 0x80, 0);
    return (uint32_t)p[0] << 21 | (uint32_t)p[1] << 14 | (uint32_t)p[2] << 7 | p[3];
}

/* Checks the ID3 tag at p (n bytes) holds one TXXX "sluice" = payload. */
static void check_id3(const uint8_t *p, size_t n, const char *payload, size_t len)
{
    assert_true(n >= 20);
    assert_memory_equal(p, "ID3\x04\x00\x00", 6); /* v2.4.0, no flags */
    assert_int_equal(syncsafe(p + 6), n - 10);    /* the size leaves the header out */
    const uint8_t *f = p + 10;
    assert_memory_equal(f, "TXXX", 4);
    uint32_t fsize = syncsafe(f + 4);
    assert_int_equal(fsize, n - 20); /* one frame: the rest of the tag */
    assert_memory_equal(f + 8, "\x00\x00", 2);
    assert_int_equal(f[10], 0x03); /* UTF-8 */
    assert_memory_equal(f + 11, "sluice\0", 7);
    assert_int_equal(fsize, 1 + 7 + len); /* no terminator after the value */
    assert_memory_equal(f + 18, payload, len);
}

static void test_emsg_box(void **state)
{
    (void)state;
    buf_t b = {0};
    const char *payload = "{\"title\":\"Mug\"}";
    size_t len = strlen(payload);
    assert_int_equal(emsg_box_append(&b, 90000, UINT64_C(0x100000005), 42,
                                     (const uint8_t *)payload, len),
                     0);
    assert_false(b.oom);
    const uint8_t *p = b.bytes;
    assert_int_equal(be32(p), b.len); /* box size is the whole box */
    assert_memory_equal(p + 4, "emsg", 4);
    assert_int_equal(p[8], 1);                        /* version 1 */
    assert_memory_equal(p + 9, "\x00\x00\x00", 3);   /* flags */
    assert_int_equal(be32(p + 12), 90000);            /* timescale */
    assert_int_equal(be32(p + 16), 1);                /* presentation_time, 64 bit */
    assert_int_equal(be32(p + 20), 5);
    assert_int_equal(be32(p + 24), 0xFFFFFFFFu);      /* event_duration: unknown */
    assert_int_equal(be32(p + 28), 42);               /* id */
    const char *scheme = "https://aomedia.org/emsg/ID3";
    assert_memory_equal(p + 32, scheme, strlen(scheme) + 1);
    size_t at = 32 + strlen(scheme) + 1;
    assert_int_equal(p[at], 0); /* value: "" */
    at++;
    assert_int_equal(emsg_id3_tag_size(len), b.len - at);
    check_id3(p + at, b.len - at, payload, len);
    buf_deinit(&b);
}

/* Sizes past 127 need the syncsafe form: 1024 bytes of payload. */
static void test_emsg_syncsafe_sizes(void **state)
{
    (void)state;
    char payload[1024];
    memset(payload, 'x', sizeof(payload));
    buf_t b = {0};
    assert_int_equal(emsg_id3_append(&b, (const uint8_t *)payload, sizeof(payload)), 0);
    assert_int_equal(b.len, 10 + 10 + 1 + 7 + 1024);
    /* 1042 = 8 * 128 + 18: bytes 00 00 08 12 */
    assert_memory_equal(b.bytes + 6, "\x00\x00\x08\x12", 4);
    assert_memory_equal(b.bytes + 14, "\x00\x00\x08\x08", 4); /* 1032 */
    check_id3(b.bytes, b.len, payload, sizeof(payload));
    buf_deinit(&b);
}

static void test_emsg_empty_payload(void **state)
{
    (void)state;
    buf_t b = {0};
    assert_int_equal(emsg_box_append(&b, 48000, 0, 0, (const uint8_t *)"", 0), 0);
    assert_int_equal(be32(b.bytes), b.len);
    assert_int_equal(be32(b.bytes + 12), 48000);
    check_id3(b.bytes + b.len - emsg_id3_tag_size(0), emsg_id3_tag_size(0), "", 0);
    buf_deinit(&b);
}

static void test_utf8(void **state)
{
    (void)state;
#define V(s) utf8_valid((const uint8_t *)(s), sizeof(s) - 1)
    assert_true(V(""));
    assert_true(V("plain ascii"));
    assert_true(V("caf\xc3\xa9"));
    assert_true(V("\xe2\x82\xac"));         /* euro */
    assert_true(V("\xf0\x9f\x9b\x92"));     /* emoji */
    assert_true(V("a\0b"));                 /* NUL is a character */
    assert_false(V("\xc3"));                /* truncated */
    assert_false(V("\xc0\xaf"));            /* overlong */
    assert_false(V("\xe0\x80\xaf"));        /* overlong */
    assert_false(V("\xed\xa0\x80"));        /* surrogate */
    assert_false(V("\xf4\x90\x80\x80"));    /* past U+10FFFF */
    assert_false(V("\xff"));
    assert_false(V("\x80"));
    assert_false(V("\xe2\x82"));
#undef V
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_emsg_box),
        cmocka_unit_test(test_emsg_syncsafe_sizes),
        cmocka_unit_test(test_emsg_empty_payload),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
