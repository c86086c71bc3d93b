/* Unit tests for common/media.c: order, drain-all, overflow handling, EOS. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "media.h"

static media_packet_t *pkt(media_packet_type_t type, size_t size, int64_t dts, bool key)
{
    media_packet_t *p = media_packet_new(type, size);
    assert_non_null(p);
    p->dts_ms = p->pts_ms = dts;
    p->keyframe = key;
    return p;
}

static int list_len(const media_packet_t *p)
{
    int n = 0;
    for (; p; p = p->next)
        n++;
    return n;
}

static void test_fifo_and_drain(void **state)
{
    (void)state;
    media_queue_t *q = media_queue_new(1 << 20);
    for (int i = 0; i < 5; i++)
        assert_int_equal(media_queue_push(q, pkt(MEDIA_PACKET_VIDEO, 10, i, i == 0)), 0);
    media_packet_t *l = media_queue_pop_all(q, 0);
    assert_int_equal(list_len(l), 5);
    int64_t want = 0;
    for (media_packet_t *p = l; p; p = p->next)
        assert_int_equal(p->dts_ms, want++);
    media_packet_list_free(l);
    assert_null(media_queue_pop_all(q, 10)); /* times out empty */
    media_queue_unref(q);
}

static void test_overflow_skips_to_keyframe(void **state)
{
    (void)state;
    media_queue_t *q = media_queue_new(100);
    assert_int_equal(media_queue_push(q, pkt(MEDIA_PACKET_VIDEO, 60, 0, true)), 0);
    /* 60 + 60 > 100: dropped, and everything after until a keyframe. */
    assert_int_equal(media_queue_push(q, pkt(MEDIA_PACKET_VIDEO, 60, 1, false)), -ENOBUFS);
    assert_int_equal(media_queue_push(q, pkt(MEDIA_PACKET_AUDIO, 1, 1, false)), -ENOBUFS);
    /* Configs always pass. */
    assert_int_equal(media_queue_push(q, pkt(MEDIA_PACKET_AUDIO_CONFIG, 2, 1, false)), 0);
    media_packet_list_free(media_queue_pop_all(q, 0));
    /* Room again, but a non-key frame still waits for the keyframe. */
    assert_int_equal(media_queue_push(q, pkt(MEDIA_PACKET_VIDEO, 10, 2, false)), -ENOBUFS);
    assert_int_equal(media_queue_push(q, pkt(MEDIA_PACKET_VIDEO, 10, 3, true)), 0);
    assert_int_equal(media_queue_push(q, pkt(MEDIA_PACKET_VIDEO, 10, 4, false)), 0);
    media_queue_stats_t st;
    media_queue_get_stats(q, &st);
    assert_int_equal(st.dropped_packets, 3);
    assert_int_equal(st.dropped_bytes, 71);
    assert_int_equal(st.queued_bytes, 20);
    /* One overflow is one skip, however many packets it dropped. */
    assert_int_equal(st.skips, 1);
    /* A second overflow after the recovery is a second skip. */
    assert_int_equal(media_queue_push(q, pkt(MEDIA_PACKET_VIDEO, 90, 5, false)), -ENOBUFS);
    assert_int_equal(media_queue_push(q, pkt(MEDIA_PACKET_VIDEO, 90, 6, false)), -ENOBUFS);
    media_queue_get_stats(q, &st);
    assert_int_equal(st.skips, 2);
    assert_int_equal(st.dropped_packets, 5);
    media_packet_list_free(media_queue_pop_all(q, 0));
    media_queue_unref(q);
}

static void test_eos_closes(void **state)
{
    (void)state;
    media_queue_t *q = media_queue_new(1000);
    assert_int_equal(media_queue_push(q, pkt(MEDIA_PACKET_EOS, 0, 0, false)), 0);
    assert_int_equal(media_queue_push(q, pkt(MEDIA_PACKET_VIDEO, 1, 0, true)), -EPIPE);
    media_packet_t *l = media_queue_pop_all(q, -1);
    assert_int_equal(list_len(l), 1);
    assert_int_equal(l->type, MEDIA_PACKET_EOS);
    media_packet_list_free(l);
    media_queue_unref(q);
}

static void *producer(void *arg)
{
    media_queue_t *q = arg;
    for (int i = 0; i < 1000; i++)
        media_queue_push(q, pkt(MEDIA_PACKET_AUDIO, 4, i, false));
    media_queue_push(q, pkt(MEDIA_PACKET_EOS, 0, 0, false));
    media_queue_unref(q);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    media_queue_t *q = media_queue_new(1 << 20);
    pthread_t t;
    pthread_create(&t, NULL, producer, media_queue_ref(q));
    int n = 0;
    bool eos = false;
    int64_t last = -1;
    while (!eos) {
        media_packet_t *l = media_queue_pop_all(q, -1);
        for (media_packet_t *p = l; p; p = p->next) {
            if (p->type == MEDIA_PACKET_EOS) {
                eos = true;
            } else {
                assert_true(p->dts_ms > last); /* arrival order kept */
                last = p->dts_ms;
                n++;
            }
        }
        media_packet_list_free(l);
    }
    pthread_join(t, NULL);
    assert_int_equal(n, 1000);
    media_queue_unref(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_and_drain),
        cmocka_unit_test(test_overflow_skips_to_keyframe),
        cmocka_unit_test(test_eos_closes),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
