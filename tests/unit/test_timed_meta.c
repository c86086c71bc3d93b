/*
 * Tests for ingest/timed_meta.c: the per-stream rate limit (5 a second,
 * burst 10), ids unique per stream, stamping at the live edge or at an
 * in-band message's own time, the checks on the payload, and which text an
 * in-band data message carries.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "timed_meta_internal.h"

#define WALL0 (INGEST_TMETA_ID_EPOCH_MS + 1000000)

static void test_bucket(void **state)
{
    (void)state;
    ingest_tmeta_entry_t e = {.tokens = INGEST_TMETA_BURST, .bucket_ms = 0};
    int retry = 0;
    for (int i = 0; i < 10; i++)
        assert_true(ingest_tmeta_take(&e, 0, &retry));
    assert_false(ingest_tmeta_take(&e, 0, &retry));
    assert_int_equal(retry, 1);
    /* 5 a second: one more every 200 ms. */
    assert_false(ingest_tmeta_take(&e, 199, &retry));
    assert_true(ingest_tmeta_take(&e, 200, &retry));
    assert_false(ingest_tmeta_take(&e, 200, &retry));
    /* A long pause refills to the burst only. */
    for (int i = 0; i < 10; i++)
        assert_true(ingest_tmeta_take(&e, 100000, &retry));
    assert_false(ingest_tmeta_take(&e, 100000, &retry));
}

static void test_ids(void **state)
{
    (void)state;
    uint32_t id = ingest_tmeta_next_id(0, WALL0);
    assert_int_equal(id, 10000); /* tenths of a second since the id epoch */
    /* A burst runs ahead of the clock by one each... */
    assert_int_equal(ingest_tmeta_next_id(id, WALL0), id + 1);
    /* ...and the clock catches up. */
    assert_int_equal(ingest_tmeta_next_id(id + 1, WALL0 + 5000), id + 50);
    assert_int_equal(ingest_tmeta_next_id(0, 0), 1);
}

static void test_push(void **state)
{
    (void)state;
    ingest_tmeta_t t;
    ingest_tmeta_init(&t);
    media_queue_t *q = media_queue_new(1 << 20);
    ingest_metadata_stamp_t st;
    const uint8_t *hello = (const uint8_t *)"hello";
    /* Not live. */
    assert_int_equal(ingest_tmeta_push(&t, "cam", 0, 0, hello, 5, NULL, NULL, 0, WALL0, &st),
                     -ENOENT);
    ingest_tmeta_start(&t, 7, "cam", q, 0);
    /* Live, but no frame yet: no edge to stamp at. */
    assert_int_equal(ingest_tmeta_push(&t, "cam", 0, 0, hello, 5, NULL, NULL, 0, WALL0, &st),
                     -EAGAIN);
    size_t hint = 0;
    ingest_tmeta_note(&t, 7, &hint, 1000);
    ingest_tmeta_note(&t, 7, &hint, 990); /* audio a little behind: the edge stays */
    assert_int_equal(ingest_tmeta_push(&t, "cam", 0, 0, hello, 5, NULL, NULL, 0, WALL0, &st), 0);
    assert_int_equal(st.media_time_ms, 1000);
    uint32_t first = st.id;
    /* In band: by session, at its own time. */
    assert_int_equal(ingest_tmeta_push(&t, NULL, 7, 800, hello, 5, NULL, NULL, 0, WALL0, &st), 0);
    assert_int_equal(st.media_time_ms, 800);
    assert_int_equal(st.id, first + 1);
    /* Checks. */
    uint8_t big[MEDIA_TIMED_METADATA_MAX + 1];
    memset(big, 'a', sizeof(big));
    assert_int_equal(ingest_tmeta_push(&t, "cam", 0, 0, big, sizeof(big), NULL, NULL, 0,
                                       WALL0, &st),
                     -EMSGSIZE);
    assert_int_equal(ingest_tmeta_push(&t, "cam", 0, 0, big, MEDIA_TIMED_METADATA_MAX, NULL,
                                       NULL, 0, WALL0, &st),
                     0);
    assert_int_equal(ingest_tmeta_push(&t, "cam", 0, 0, (const uint8_t *)"\xc3", 1, NULL, NULL,
                                       0, WALL0, &st),
                     -EILSEQ);
    /* The burst (3 used) and then the rate. */
    for (int i = 0; i < 7; i++)
        assert_int_equal(ingest_tmeta_push(&t, "cam", 0, 0, hello, 5, NULL, NULL, 0, WALL0,
                                           &st),
                         0);
    assert_int_equal(ingest_tmeta_push(&t, "cam", 0, 0, hello, 5, NULL, NULL, 0, WALL0, &st),
                     -EBUSY);
    assert_true(st.retry_after_s >= 1);
    /* What the queue got: items in order, stamped. */
    media_packet_t *list = media_queue_pop_all(q, 0);
    size_t n = 0;
    uint32_t last = 0;
    for (media_packet_t *p = list; p; p = p->next, n++) {
        assert_int_equal(p->type, MEDIA_PACKET_TIMED_METADATA);
        assert_true(p->meta_id > last);
        last = p->meta_id;
    }
    assert_int_equal(n, 10);
    assert_int_equal(list->dts_ms, 1000);
    assert_int_equal(list->size, 5);
    assert_memory_equal(list->data, "hello", 5);
    media_packet_list_free(list);
    /* A reconnect keeps the ids rising (the entry outlives the publish). */
    ingest_tmeta_end(&t, 7);
    assert_int_equal(ingest_tmeta_push(&t, "cam", 0, 0, hello, 5, NULL, NULL, 0, WALL0, &st),
                     -ENOENT);
    ingest_tmeta_start(&t, 8, "cam", q, 5000);
    ingest_tmeta_note(&t, 8, &hint, 10);
    assert_int_equal(ingest_tmeta_push(&t, "cam", 0, 0, hello, 5, NULL, NULL, 5000, WALL0, &st),
                     0);
    assert_true(st.id > last);
    media_packet_list_free(media_queue_pop_all(q, 0));
    ingest_tmeta_end(&t, 8);
    media_queue_unref(q);
    ingest_tmeta_deinit(&t);
}

static int clock_cb(void *opaque, const char *id, int64_t dts, int64_t *media, int64_t *pdt)
{
    (void)id;
    int *calls = opaque;
    (*calls)++;
    *media = dts + 1000;
    *pdt = 1700000000000 + dts;
    return 0;
}

static void test_push_clock(void **state)
{
    (void)state;
    ingest_tmeta_t t;
    ingest_tmeta_init(&t);
    media_queue_t *q = media_queue_new(1 << 20);
    ingest_tmeta_start(&t, 1, "cam", q, 0);
    size_t hint = 0;
    ingest_tmeta_note(&t, 1, &hint, 500);
    int calls = 0;
    ingest_metadata_stamp_t st;
    assert_int_equal(ingest_tmeta_push(&t, "cam", 0, 0, (const uint8_t *)"x", 1, clock_cb,
                                       &calls, 0, WALL0, &st),
                     0);
    assert_int_equal(calls, 1);
    assert_int_equal(st.media_time_ms, 1500);
    assert_int_equal(st.pdt_ms, 1700000000500);
    media_packet_t *p = media_queue_pop_all(q, 0);
    assert_non_null(p);
    assert_int_equal(p->dts_ms, 500);           /* the input's clock: the packager maps it */
    assert_int_equal(p->meta_pdt_ms, 1700000000500); /* the date-time it must repeat */
    media_packet_list_free(p);
    ingest_tmeta_end(&t, 1);
    media_queue_unref(q);
    ingest_tmeta_deinit(&t);
}

static amf0_value_t *decode(const uint8_t *d, size_t n)
{
    amf0_limits_t lim;
    amf0_limits_default(&lim);
    amf0_value_t *v = NULL;
    assert_int_equal(amf0_decode_all(d, n, &lim, &v), 0);
    return v;
}

static void test_text(void **state)
{
    (void)state;
    buf_t b = {0};
    /* onTextData {"text": "hi"} */
    amf0_put_cstring(&b, "onTextData");
    amf0_put_object_start(&b);
    amf0_put_prop_number(&b, "trackid", 1);
    amf0_put_prop_string(&b, "text", "hi");
    amf0_put_object_end(&b);
    amf0_value_t *v = decode(b.bytes, b.len);
    const amf0_value_t *t = ingest_tmeta_text(v);
    assert_non_null(t);
    assert_string_equal(t->str, "hi");
    amf0_value_free(v);
    /* A plain string argument. */
    buf_reset(&b);
    amf0_put_cstring(&b, "onCuePoint");
    amf0_put_null(&b);
    amf0_put_cstring(&b, "plain");
    v = decode(b.bytes, b.len);
    t = ingest_tmeta_text(v);
    assert_non_null(t);
    assert_string_equal(t->str, "plain");
    amf0_value_free(v);
    /* "payload" in an ECMA array. */
    buf_reset(&b);
    amf0_put_cstring(&b, "onSomething");
    amf0_put_ecma_array_start(&b, 2);
    amf0_put_prop_number(&b, "n", 2);
    amf0_put_prop_string(&b, "payload", "p");
    amf0_put_object_end(&b);
    v = decode(b.bytes, b.len);
    t = ingest_tmeta_text(v);
    assert_non_null(t);
    assert_string_equal(t->str, "p");
    amf0_value_free(v);
    /* No text: an object without those fields (onCuePoint's name/time). */
    buf_reset(&b);
    amf0_put_cstring(&b, "onCuePoint");
    amf0_put_object_start(&b);
    amf0_put_prop_string(&b, "name", "cue");
    amf0_put_prop_number(&b, "time", 1);
    amf0_put_object_end(&b);
    amf0_put_cstring(&b, "later string ignored");
    v = decode(b.bytes, b.len);
    assert_null(ingest_tmeta_text(v));
    amf0_value_free(v);
    buf_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_push),
        cmocka_unit_test(test_push_clock),
        cmocka_unit_test(test_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
