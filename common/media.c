/*
 * Packet queue between the ingest loop (push) and a transcode worker
 * (pop_all). A mutex and a condition variable: the consumer sleeps until the
 * producer signals, then takes the whole list at once.
 */
#include "media.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"

struct media_queue {
    atomic_int refs;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    media_packet_t *head;
    media_packet_t *tail;
    size_t bytes;
    size_t max_bytes;
    bool skip_to_keyframe; /* after an overflow: drop media until a video IDR */
    bool closed;           /* EOS queued */
    uint64_t pushed;
    uint64_t dropped;
    uint64_t dropped_bytes;
    uint64_t skips; /* overflows: times it began dropping to a keyframe */
};

media_packet_t *media_packet_new(media_packet_type_t type, size_t size)
{
    media_packet_t *p = calloc(1, sizeof(*p) + size);
    if (!p)
        return NULL;
    p->type = type;
    p->size = size;
    return p;
}

void media_packet_free(media_packet_t *p)
{
    free(p);
}

void media_packet_list_free(media_packet_t *head)
{
    while (head) {
        media_packet_t *next = head->next;
        media_packet_free(head);
        head = next;
    }
}

media_queue_t *media_queue_new(size_t max_bytes)
{
    media_queue_t *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    atomic_init(&q->refs, 1);
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cond, &ca);
    pthread_condattr_destroy(&ca);
    q->max_bytes = max_bytes;
    return q;
}

media_queue_t *media_queue_ref(media_queue_t *q)
{
    atomic_fetch_add_explicit(&q->refs, 1, memory_order_relaxed);
    return q;
}

void media_queue_unref(media_queue_t *q)
{
    if (!q || atomic_fetch_sub_explicit(&q->refs, 1, memory_order_acq_rel) != 1)
        return;
    media_packet_list_free(q->head);
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

static bool media_packet_is_media(const media_packet_t *p)
{
    return p->type == MEDIA_PACKET_VIDEO || p->type == MEDIA_PACKET_AUDIO;
}

int media_queue_push(media_queue_t *q, media_packet_t *p)
{
    int ret = 0;
    pthread_mutex_lock(&q->lock);
    if (q->closed) {
        pthread_mutex_unlock(&q->lock);
        media_packet_free(p);
        return -EPIPE;
    }
    if (media_packet_is_media(p)) {
        if (q->bytes + p->size > q->max_bytes && !q->skip_to_keyframe) {
            q->skip_to_keyframe = true;
            q->skips++;
        }
        /* Resume at a keyframe once the worker has drained half the queue,
         * so that what it decodes next starts clean. */
        if (q->skip_to_keyframe && p->type == MEDIA_PACKET_VIDEO && p->keyframe &&
            q->bytes + p->size <= q->max_bytes / 2)
            q->skip_to_keyframe = false;
        if (q->skip_to_keyframe) {
            q->dropped++;
            q->dropped_bytes += p->size;
            pthread_mutex_unlock(&q->lock);
            media_packet_free(p);
            return -ENOBUFS;
        }
    }
    p->next = NULL;
    p->arrival_us = clock_mono_us();
    if (q->tail)
        q->tail->next = p;
    else
        q->head = p;
    q->tail = p;
    q->bytes += p->size;
    q->pushed++;
    if (p->type == MEDIA_PACKET_EOS)
        q->closed = true;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
    return ret;
}

media_packet_t *media_queue_pop_all(media_queue_t *q, int timeout_ms)
{
    pthread_mutex_lock(&q->lock);
    if (!q->head && timeout_ms != 0) {
        if (timeout_ms < 0) {
            while (!q->head)
                pthread_cond_wait(&q->cond, &q->lock);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += timeout_ms / 1000;
            ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            while (!q->head) {
                if (pthread_cond_timedwait(&q->cond, &q->lock, &ts) == ETIMEDOUT)
                    break;
            }
        }
    }
    media_packet_t *list = q->head;
    q->head = q->tail = NULL;
    q->bytes = 0;
    pthread_mutex_unlock(&q->lock);
    return list;
}

void media_queue_get_stats(media_queue_t *q, media_queue_stats_t *out)
{
    pthread_mutex_lock(&q->lock);
    out->pushed_packets = q->pushed;
    out->dropped_packets = q->dropped;
    out->dropped_bytes = q->dropped_bytes;
    out->skips = q->skips;
    out->queued_bytes = q->bytes;
    out->max_bytes = q->max_bytes;
    pthread_mutex_unlock(&q->lock);
}
