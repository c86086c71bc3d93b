/* Unit tests for common/blob.c: copies, reference counting, NUL guard. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_and_refs),
        cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
