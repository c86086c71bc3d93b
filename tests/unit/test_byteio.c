/* Unit tests for common/byteio.h: reads within bounds, sticky error past the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "byteio.h"

static void test_reads_big_endian(void **state)
{
    (void)state;
    const uint8_t d[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a};
    byteio_reader_t br;
    byteio_init(&br, d, sizeof(d));
    assert_int_equal(byteio_u8(&br), 0x01);
    assert_int_equal(byteio_be16(&br), 0x0203);
    assert_int_equal(byteio_be24(&br), 0x040506);
    assert_int_equal(byteio_be32(&br), 0x0708090a);
    assert_false(br.error);
    assert_int_equal(byteio_left(&br), 0);
}

static void test_error_is_sticky(void **state)
{
    (void)state;
    const uint8_t d[] = {0xff, 0xee, 0xdd};
    byteio_reader_t br;
    byteio_init(&br, d, sizeof(d));
    assert_int_equal(byteio_be32(&br), 0); /* 4 bytes from 3: fails */
    assert_true(br.error);
    /* Later reads fail too, even ones that would fit the original buffer. */
    assert_int_equal(byteio_u8(&br), 0);
    assert_null(byteio_take(&br, 1));
    assert_true(br.error);
}

static void test_take_and_skip(void **state)
{
    (void)state;
    const uint8_t d[] = {1, 2, 3, 4, 5};
    byteio_reader_t br;
    byteio_init(&br, d, sizeof(d));
    byteio_skip(&br, 2);
    const uint8_t *p = byteio_take(&br, 2);
    assert_non_null(p);
    assert_int_equal(p[0], 3);
    assert_int_equal(byteio_tell(&br), 4);
    assert_null(byteio_take(&br, 2));
    assert_true(br.error);
}

static void test_writers(void **state)
{
    (void)state;
    uint8_t b[4];
    byteio_put_be32(b, 0x11223344);
    assert_int_equal(b[0], 0x11);
    assert_int_equal(b[3], 0x44);
    byteio_put_le32(b, 0x11223344);
    assert_int_equal(b[0], 0x44);
    byteio_put_be24(b, 0xabcdef);
    assert_int_equal(b[2], 0xef);
    byteio_reader_t br;
    byteio_init(&br, b, 4);
    byteio_put_le32(b, 0xdeadbeef);
    assert_int_equal(byteio_le32(&br), 0xdeadbeef);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_big_endian),
        cmocka_unit_test(test_error_is_sticky),
        cmocka_unit_test(test_take_and_skip),
        cmocka_unit_test(test_writers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
