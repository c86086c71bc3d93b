/* Unit tests for common/blob.c: copies, reference counting, NUL guard. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <zlib.h>

#include "blob.h"

static void test_copy_and_refs(void **state)
{
    (void)state;
    char src[] = "hello";
    blob_t *b = blob_new(src, 5);
    assert_non_null(b);
    src[0] = 'j'; /* the blob owns a copy */
    assert_memory_equal(b->data, "hello", 5);
    assert_int_equal(b->data[5], 0);
    assert_true(b->created_ms > 0);
    blob_t *r = blob_ref(b);
    assert_ptr_equal(r, b);
    assert_int_equal(atomic_load(&b->refs), 2);
    blob_unref(b);
    assert_int_equal(atomic_load(&r->refs), 1);
    blob_unref(r); /* freed here; LeakSanitizer checks the balance */
    blob_unref(NULL);
}

static void test_empty(void **state)
{
    (void)state;
    blob_t *b = blob_new(NULL, 0);
    assert_non_null(b);
    assert_int_equal(b->size, 0);
    blob_unref(b);
}

static void test_etag(void **state)
{
    (void)state;
    blob_t *a = blob_new("hello world", 11);
    blob_t *b = blob_new("hello world", 11);
    blob_t *c = blob_new("hello worle", 11);
    char s1[BLOB_ETAG_MAX], s2[BLOB_ETAG_MAX], s3[BLOB_ETAG_MAX];
    const char *ea = blob_etag(a, s1);
    /* strong, quoted, carries the size, equal for equal bytes only */
    assert_int_equal(ea[0], '"');
    assert_int_equal(ea[strlen(ea) - 1], '"');
    assert_non_null(strstr(ea, "-b\""));
    assert_string_equal(ea, blob_etag(b, s2));
    assert_string_not_equal(ea, blob_etag(c, s3));
    /* cached: the second call returns the blob's own copy */
    char again[BLOB_ETAG_MAX];
    const char *ea2 = blob_etag(a, again);
    assert_ptr_equal(ea2, a->etag);
    assert_string_equal(ea2, s1);
    /* every length through the hash's tails gives distinct tags */
    uint8_t buf[100];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)i;
    for (size_t n = 1; n < sizeof(buf); n++)
        assert_true(blob_hash64(buf, n) != blob_hash64(buf, n - 1));
    blob_unref(a);
    blob_unref(b);
    blob_unref(c);
}

static void test_gzip(void **state)
{
    (void)state;
    char text[4000];
    for (size_t i = 0; i < sizeof(text); i++)
        text[i] = "#EXTINF:2.000,\n12.m4s\n"[i % 22];
    blob_t *b = blob_new(text, sizeof(text));
    blob_t *gz = blob_gzip(b);
    assert_non_null(gz);
    assert_ptr_equal(blob_gzip(b), gz); /* compressed once, cached */
    assert_true(gz->size < sizeof(text) / 4);
    assert_int_equal(gz->data[0], 0x1f);
    assert_int_equal(gz->data[1], 0x8b);
    /* it decompresses to the same bytes */
    char back[sizeof(text)];
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
    zs.next_in = gz->data;
    zs.avail_in = (uInt)gz->size;
    zs.next_out = (Bytef *)back;
    zs.avail_out = sizeof(back);
    assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
    assert_int_equal(zs.total_out, sizeof(text));
    inflateEnd(&zs);
    assert_memory_equal(back, text, sizeof(text));
    /* deterministic: another blob of the same bytes compresses the same */
    blob_t *b2 = blob_new(text, sizeof(text));
    char e1[BLOB_ETAG_MAX], e2[BLOB_ETAG_MAX];
    assert_string_equal(blob_etag(gz, e1), blob_etag(blob_gzip(b2), e2));
    blob_unref(b2);
    blob_unref(b); /* frees the cached gzip blob too (LeakSanitizer) */
}

static void *race_cb(void *arg)
{
    blob_t *b = arg;
    char s[BLOB_ETAG_MAX];
    char *copy = malloc(BLOB_ETAG_MAX);
    strcpy(copy, blob_etag(b, s));
    assert_non_null(blob_gzip(b));
    return copy;
}

static void test_concurrent_first_use(void **state)
{
    (void)state;
    enum { N = 8 };
    static uint8_t big[1 << 20];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7 + (i >> 9));
    blob_t *b = blob_new(big, sizeof(big));
    pthread_t t[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_create(&t[i], NULL, race_cb, b), 0);
    char *first = NULL;
    for (int i = 0; i < N; i++) {
        char *e;
        assert_int_equal(pthread_join(t[i], (void **)&e), 0);
        if (!first)
            first = e;
        else {
            assert_string_equal(e, first);
            free(e);
        }
    }
    char s[BLOB_ETAG_MAX];
    assert_string_equal(blob_etag(b, s), first);
    assert_int_equal(atomic_load(&b->etag_state), 2);
    free(first);
    blob_unref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_and_refs),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_etag),
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_concurrent_first_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
