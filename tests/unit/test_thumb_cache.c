/* Unit tests for origin/thumb_cache.c: hits and misses by (stream, etag,
 * width), least-recently-used eviction at the cap, failures not cached, and
 * single flight: concurrent misses for one key make it once. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "thumb_cache_internal.h"

typedef struct maker {
    atomic_int calls;
    int fail; /* errno to return */
    int sleep_ms;
    char text[32];
} maker_t;

static int make_cb(void *opaque, blob_t **out)
{
    maker_t *m = opaque;
    atomic_fetch_add(&m->calls, 1);
    if (m->sleep_ms) {
        struct timespec ts = {0, (long)m->sleep_ms * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (m->fail)
        return -m->fail;
    *out = blob_new(m->text, strlen(m->text));
    return *out ? 0 : -ENOMEM;
}

static blob_t *get(thumb_cache_t *c, const char *id, const char *etag, int w, maker_t *m,
                   int *hit)
{
    blob_t *b = NULL;
    assert_int_equal(thumb_cache_get(c, id, etag, w, make_cb, m, &b, hit), 0);
    assert_non_null(b);
    return b;
}

static void test_hit_miss(void **state)
{
    (void)state;
    thumb_cache_t *c = NULL;
    assert_int_equal(thumb_cache_new(0, &c), -EINVAL);
    assert_int_equal(thumb_cache_new(4, &c), 0);
    maker_t m = {.text = "a320"};
    int hit;
    blob_t *a = get(c, "s1", "\"e1\"", 320, &m, &hit);
    assert_int_equal(hit, 0);
    blob_t *b = get(c, "s1", "\"e1\"", 320, &m, &hit);
    assert_int_equal(hit, 1);
    assert_ptr_equal(a, b);
    assert_int_equal(atomic_load(&m.calls), 1);
    blob_unref(get(c, "s1", "\"e1\"", 640, &m, &hit)); /* other width */
    assert_int_equal(hit, 0);
    blob_unref(get(c, "s1", "\"e2\"", 320, &m, &hit)); /* new thumbnail */
    assert_int_equal(hit, 0);
    blob_unref(get(c, "s2", "\"e1\"", 320, &m, &hit)); /* other stream */
    assert_int_equal(hit, 0);
    assert_int_equal(atomic_load(&m.calls), 4);
    assert_int_equal(thumb_cache_size(c), 4);
    /* Failures are returned and not cached. */
    maker_t bad = {.fail = EPROTO};
    blob_t *x = NULL;
    assert_int_equal(thumb_cache_get(c, "s3", "\"e\"", 320, make_cb, &bad, &x, &hit), -EPROTO);
    assert_null(x);
    assert_int_equal(thumb_cache_get(c, "s3", "\"e\"", 320, make_cb, &bad, &x, &hit), -EPROTO);
    assert_int_equal(atomic_load(&bad.calls), 2);
    blob_unref(a);
    blob_unref(b);
    thumb_cache_free(c);
    thumb_cache_free(NULL);
}

static void test_lru(void **state)
{
    (void)state;
    thumb_cache_t *c = NULL;
    assert_int_equal(thumb_cache_new(3, &c), 0);
    maker_t m = {.text = "x"};
    int hit;
    blob_unref(get(c, "s", "\"1\"", 100, &m, &hit));
    blob_unref(get(c, "s", "\"2\"", 100, &m, &hit));
    blob_unref(get(c, "s", "\"3\"", 100, &m, &hit));
    blob_unref(get(c, "s", "\"1\"", 100, &m, &hit)); /* 1 is now the most recent */
    assert_int_equal(hit, 1);
    blob_unref(get(c, "s", "\"4\"", 100, &m, &hit)); /* evicts 2 */
    assert_int_equal(thumb_cache_size(c), 3);
    blob_unref(get(c, "s", "\"1\"", 100, &m, &hit));
    assert_int_equal(hit, 1);
    blob_unref(get(c, "s", "\"3\"", 100, &m, &hit));
    assert_int_equal(hit, 1);
    blob_unref(get(c, "s", "\"2\"", 100, &m, &hit));
    assert_int_equal(hit, 0);
    thumb_cache_free(c);
}

typedef struct racer {
    thumb_cache_t *c;
    maker_t *m;
    int hit;
} racer_t;

static void *race_main(void *arg)
{
    racer_t *r = arg;
    blob_t *b = NULL;
    if (thumb_cache_get(r->c, "live", "\"e\"", 320, make_cb, r->m, &b, &r->hit) == 0)
        blob_unref(b);
    return NULL;
}

static void test_single_flight(void **state)
{
    (void)state;
    thumb_cache_t *c = NULL;
    assert_int_equal(thumb_cache_new(64, &c), 0);
    maker_t m = {.text = "slow", .sleep_ms = 50};
    enum { N = 8 };
    pthread_t t[N];
    racer_t r[N];
    for (int i = 0; i < N; i++) {
        r[i] = (racer_t){.c = c, .m = &m};
        assert_int_equal(pthread_create(&t[i], NULL, race_main, &r[i]), 0);
    }
    int hits = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        hits += r[i].hit;
    }
    assert_int_equal(atomic_load(&m.calls), 1);
    assert_int_equal(hits, N - 1);
    thumb_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_miss),
        cmocka_unit_test(test_lru),
        cmocka_unit_test(test_single_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
