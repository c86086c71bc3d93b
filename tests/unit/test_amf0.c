/* Unit tests for ingest/amf0.c: round trips, every type, malformed input
 * and the depth/string/node caps. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "amf0_internal.h"

static amf0_limits_t lim(void)
{
    amf0_limits_t l;
    amf0_limits_default(&l);
    return l;
}

/* An FFmpeg-style connect command followed by one value of every type. */
static void build_all_types(buf_t *b)
{
    amf0_put_cstring(b, "connect");
    amf0_put_number(b, 1);
    amf0_put_object_start(b);
    amf0_put_prop_string(b, "app", "live");
    amf0_put_prop_string(b, "type", "nonprivate");
    amf0_put_prop_string(b, "tcUrl", "rtmp://127.0.0.1:1935/live");
    amf0_put_key(b, "fpad", 4);
    amf0_put_bool(b, false);
    amf0_put_prop_number(b, "audioCodecs", 4071);
    amf0_put_object_end(b);
    amf0_put_null(b);
    amf0_put_undefined(b);
    amf0_put_date(b, 1700000000000.0, -60);
    amf0_put_ecma_array_start(b, 2);
    amf0_put_prop_number(b, "width", 1280);
    amf0_put_prop_number(b, "height", 720);
    amf0_put_object_end(b);
    amf0_put_strict_array_start(b, 3);
    amf0_put_number(b, -1.5);
    amf0_put_bool(b, true);
    amf0_put_strict_array_start(b, 0);
    /* A long string, and a LONG_STRING marker with a short body. */
    char big[70000];
    memset(big, 'x', sizeof(big));
    amf0_put_string(b, big, sizeof(big));
    static const uint8_t short_long[] = {AMF0_LONG_STRING, 0, 0, 0, 2, 'h', 'i'};
    buf_append(b, short_long, sizeof(short_long));
}

static void test_round_trip_all_types(void **state)
{
    (void)state;
    buf_t in = {0};
    build_all_types(&in);
    assert_false(in.oom);

    amf0_limits_t l = lim();
    l.max_string = 100000;
    amf0_value_t *v = NULL;
    assert_int_equal(amf0_decode_all(in.bytes, in.len, &l, &v), 0);
    assert_int_equal(v->count, 10);

    /* Field checks. */
    assert_string_equal(amf0_string(amf0_at(v, 0)), "connect");
    assert_true(amf0_number(amf0_at(v, 1), 0) == 1.0);
    const amf0_value_t *obj = amf0_at(v, 2);
    assert_int_equal(obj->type, AMF0_OBJECT);
    assert_string_equal(amf0_string(amf0_get(obj, "app")), "live");
    assert_true(amf0_number(amf0_get(obj, "audioCodecs"), 0) == 4071.0);
    assert_int_equal(amf0_get(obj, "fpad")->type, AMF0_BOOLEAN);
    assert_false(amf0_get(obj, "fpad")->boolean);
    assert_null(amf0_get(obj, "missing"));
    assert_int_equal(amf0_at(v, 3)->type, AMF0_NULL);
    assert_int_equal(amf0_at(v, 4)->type, AMF0_UNDEFINED);
    assert_int_equal(amf0_at(v, 5)->type, AMF0_DATE);
    assert_true(amf0_at(v, 5)->number == 1700000000000.0);
    assert_int_equal(amf0_at(v, 5)->tz, -60);
    const amf0_value_t *ecma = amf0_at(v, 6);
    assert_int_equal(ecma->type, AMF0_ECMA_ARRAY);
    assert_true(amf0_number(amf0_get(ecma, "height"), 0) == 720.0);
    const amf0_value_t *arr = amf0_at(v, 7);
    assert_int_equal(arr->type, AMF0_STRICT_ARRAY);
    assert_int_equal(arr->count, 3);
    assert_true(amf0_number(amf0_at(arr, 0), 0) == -1.5);
    assert_true(amf0_at(arr, 1)->boolean);
    assert_int_equal(amf0_at(arr, 2)->count, 0);
    assert_int_equal(amf0_at(v, 8)->type, AMF0_LONG_STRING);
    assert_int_equal(amf0_at(v, 8)->len, 70000);
    assert_int_equal(amf0_at(v, 9)->type, AMF0_LONG_STRING);
    assert_string_equal(amf0_string(amf0_at(v, 9)), "hi");

    /* Re-encoding each top-level value gives back the input bytes. */
    buf_t out = {0};
    for (size_t i = 0; i < v->count; i++)
        assert_int_equal(amf0_encode(&out, amf0_at(v, i)), 0);
    assert_int_equal(out.len, in.len);
    assert_memory_equal(out.data, in.data, in.len);

    amf0_value_free(v);
    buf_deinit(&in);
    buf_deinit(&out);
}

static void test_decode_one_reports_used(void **state)
{
    (void)state;
    static const uint8_t data[] = {AMF0_STRING, 0, 3, 'a', 'b', 'c', AMF0_NULL};
    amf0_limits_t l = lim();
    amf0_value_t *v = NULL;
    size_t used = 0;
    assert_int_equal(amf0_decode(data, sizeof(data), &l, &v, &used), 0);
    assert_int_equal(used, 6);
    assert_string_equal(amf0_string(v), "abc");
    assert_null(amf0_string(NULL));
    assert_true(amf0_number(v, 7) == 7.0); /* wrong type: default */
    amf0_value_free(v);
    amf0_value_free(NULL);
}

static void test_truncated_is_eagain(void **state)
{
    (void)state;
    buf_t in = {0};
    amf0_put_object_start(&in);
    amf0_put_prop_string(&in, "level", "status");
    amf0_put_key(&in, "n", 1);
    amf0_put_number(&in, 3);
    amf0_put_key(&in, "d", 1);
    amf0_put_date(&in, 5, 0);
    amf0_put_key(&in, "a", 1);
    amf0_put_strict_array_start(&in, 2);
    amf0_put_bool(&in, true);
    amf0_put_null(&in);
    amf0_put_object_end(&in);
    amf0_limits_t l = lim();
    for (size_t n = 0; n < in.len; n++) {
        amf0_value_t *v = (amf0_value_t *)1;
        size_t used = 99;
        assert_int_equal(amf0_decode(in.bytes, n, &l, &v, &used), -EAGAIN);
        assert_null(v);
    }
    amf0_value_t *v = NULL;
    assert_int_equal(amf0_decode(in.bytes, in.len, &l, &v, NULL), 0);
    amf0_value_free(v);
    buf_deinit(&in);
}

static void test_malformed_markers(void **state)
{
    (void)state;
    amf0_limits_t l = lim();
    static const uint8_t bad[] = {0x04, 0x07, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x09, 0xff};
    for (size_t i = 0; i < sizeof(bad); i++) {
        uint8_t data[8] = {bad[i], 0, 0, 0, 0, 0, 0, 0};
        amf0_value_t *v = NULL;
        assert_int_equal(amf0_decode(data, sizeof(data), &l, &v, NULL), -EPROTO);
        assert_null(v);
    }
    /* An object whose empty key is followed by something other than 0x09. */
    static const uint8_t obj[] = {AMF0_OBJECT, 0, 0, AMF0_NULL};
    amf0_value_t *v = NULL;
    assert_int_equal(amf0_decode(obj, sizeof(obj), &l, &v, NULL), -EPROTO);
    /* A bad value deep inside a sequence frees everything built so far. */
    static const uint8_t seq[] = {AMF0_NULL, AMF0_OBJECT, 0, 1, 'k', AMF0_STRING, 0, 1, 'v',
                                  0, 1, 'j', 0x07, 0, 0};
    assert_int_equal(amf0_decode_all(seq, sizeof(seq), &l, &v), -EPROTO);
    assert_null(v);
}

static void test_depth_limit(void **state)
{
    (void)state;
    amf0_limits_t l = lim();
    l.max_depth = 4;
    for (uint32_t depth = 1; depth <= 6; depth++) {
        buf_t b = {0};
        for (uint32_t i = 0; i < depth; i++) {
            if (i % 2) {
                amf0_put_strict_array_start(&b, 1);
            } else {
                amf0_put_object_start(&b);
                amf0_put_key(&b, "k", 1);
            }
        }
        amf0_put_null(&b);
        for (uint32_t i = depth; i-- > 0;)
            if (i % 2 == 0)
                amf0_put_object_end(&b);
        amf0_value_t *v = NULL;
        int ret = amf0_decode(b.bytes, b.len, &l, &v, NULL);
        if (depth <= 4) {
            assert_int_equal(ret, 0);
            amf0_value_free(v);
        } else {
            assert_int_equal(ret, -EMSGSIZE);
        }
        buf_deinit(&b);
    }
}

static void test_string_and_node_limits(void **state)
{
    (void)state;
    amf0_limits_t l = lim();
    l.max_string = 8;
    amf0_value_t *v = NULL;
    static const uint8_t ok[] = {AMF0_STRING, 0, 8, '1', '2', '3', '4', '5', '6', '7', '8'};
    assert_int_equal(amf0_decode(ok, sizeof(ok), &l, &v, NULL), 0);
    amf0_value_free(v);
    static const uint8_t too_long[] = {AMF0_STRING, 0, 9, '1', '2', '3', '4', '5', '6', '7', '8', '9'};
    assert_int_equal(amf0_decode(too_long, sizeof(too_long), &l, &v, NULL), -EMSGSIZE);
    /* A long string announcing 4 GiB is refused before anything is read. */
    static const uint8_t huge[] = {AMF0_LONG_STRING, 0xff, 0xff, 0xff, 0xff, 'x'};
    assert_int_equal(amf0_decode(huge, sizeof(huge), &l, &v, NULL), -EMSGSIZE);
    /* Keys count as strings. */
    static const uint8_t key[] = {AMF0_OBJECT, 0, 9, '1', '2', '3', '4', '5', '6', '7', '8', '9',
                                  AMF0_NULL, 0, 0, 9};
    assert_int_equal(amf0_decode(key, sizeof(key), &l, &v, NULL), -EMSGSIZE);
    /* A strict array claiming 4 billion items ends at the input's end. */
    static const uint8_t arr[] = {AMF0_STRICT_ARRAY, 0xff, 0xff, 0xff, 0xff, AMF0_NULL};
    assert_int_equal(amf0_decode(arr, sizeof(arr), &l, &v, NULL), -EAGAIN);
    /* The node cap covers a whole sequence. */
    l = lim();
    l.max_nodes = 10;
    uint8_t nulls[11];
    memset(nulls, AMF0_NULL, sizeof(nulls));
    assert_int_equal(amf0_decode_all(nulls, 10, &l, &v), 0);
    assert_int_equal(v->count, 10);
    amf0_value_free(v);
    assert_int_equal(amf0_decode_all(nulls, 11, &l, &v), -EMSGSIZE);
    assert_null(v);
}

static void test_encoder_edges(void **state)
{
    (void)state;
    buf_t b = {0};
    amf0_put_key(&b, "", 0); /* would read as an object end */
    assert_true(b.oom);
    buf_reset(&b);
    assert_false(b.oom);
    amf0_put_string(&b, "", 0);
    assert_int_equal(b.len, 3);
    amf0_value_t *v = NULL;
    amf0_limits_t l = lim();
    assert_int_equal(amf0_decode(b.bytes, b.len, &l, &v, NULL), 0);
    assert_string_equal(amf0_string(v), "");
    amf0_value_free(v);
    buf_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_all_types),
        cmocka_unit_test(test_decode_one_reports_used),
        cmocka_unit_test(test_truncated_is_eagain),
        cmocka_unit_test(test_malformed_markers),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_string_and_node_limits),
        cmocka_unit_test(test_encoder_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
