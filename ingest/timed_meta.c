/*
 * Timed metadata, ingest side: stamps (media time, id), the per-stream rate
 * limit, and the push into the stream's media queue. See
 * timed_meta_internal.h for the table and its thread rules.
 */
#include "timed_meta_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

void ingest_tmeta_init(ingest_tmeta_t *t)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
}

void ingest_tmeta_deinit(ingest_tmeta_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->items[i].queue)
            media_queue_unref(t->items[i].queue);
    free(t->items);
    pthread_mutex_destroy(&t->lock);
}

static ingest_tmeta_entry_t *ingest_tmeta_find(ingest_tmeta_t *t, const char *stream_id)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->items[i].stream_id, stream_id) == 0)
            return &t->items[i];
    return NULL;
}

static ingest_tmeta_entry_t *ingest_tmeta_by_session(ingest_tmeta_t *t, uint64_t session_id,
                                                     size_t *hint)
{
    if (hint && *hint < t->n && t->items[*hint].queue &&
        t->items[*hint].session_id == session_id)
        return &t->items[*hint];
    for (size_t i = 0; i < t->n; i++) {
        if (t->items[i].queue && t->items[i].session_id == session_id) {
            if (hint)
                *hint = i;
            return &t->items[i];
        }
    }
    return NULL;
}

void ingest_tmeta_start(ingest_tmeta_t *t, uint64_t session_id, const char *stream_id,
                        media_queue_t *queue, int64_t now_ms)
{
    pthread_mutex_lock(&t->lock);
    ingest_tmeta_entry_t *e = ingest_tmeta_find(t, stream_id);
    if (!e && t->n == t->cap && t->n >= INGEST_TMETA_MAX) {
        /* Recycle the entry of the stream that has been gone longest. */
        for (size_t i = 0; i < t->n; i++)
            if (!t->items[i].queue && (!e || t->items[i].used_ms < e->used_ms))
                e = &t->items[i];
        if (e)
            memset(e, 0, sizeof(*e));
    }
    if (!e) {
        if (t->n == t->cap) {
            size_t cap = t->cap ? t->cap * 2 : 16;
            ingest_tmeta_entry_t *p = realloc(t->items, cap * sizeof(*p));
            if (!p) {
                pthread_mutex_unlock(&t->lock);
                return; /* no timed metadata for this publish: the API says 404 */
            }
            t->items = p;
            t->cap = cap;
        }
        e = &t->items[t->n++];
        memset(e, 0, sizeof(*e));
        e->tokens = INGEST_TMETA_BURST;
        e->bucket_ms = now_ms;
    }
    snprintf(e->stream_id, sizeof(e->stream_id), "%s", stream_id);
    if (e->queue)
        media_queue_unref(e->queue); /* a takeover: the newer publish wins */
    e->queue = media_queue_ref(queue);
    e->session_id = session_id;
    e->have_dts = false;
    e->used_ms = now_ms;
    pthread_mutex_unlock(&t->lock);
}

void ingest_tmeta_end(ingest_tmeta_t *t, uint64_t session_id)
{
    pthread_mutex_lock(&t->lock);
    ingest_tmeta_entry_t *e = ingest_tmeta_by_session(t, session_id, NULL);
    if (e) {
        media_queue_unref(e->queue);
        e->queue = NULL;
        e->have_dts = false;
    }
    pthread_mutex_unlock(&t->lock);
}

void ingest_tmeta_note(ingest_tmeta_t *t, uint64_t session_id, size_t *hint, int64_t dts_ms)
{
    pthread_mutex_lock(&t->lock);
    ingest_tmeta_entry_t *e = ingest_tmeta_by_session(t, session_id, hint);
    /* Audio and video interleave slightly out of order: the edge is the
     * newest of them. */
    if (e && (!e->have_dts || dts_ms > e->newest_dts_ms)) {
        e->newest_dts_ms = dts_ms;
        e->have_dts = true;
    }
    pthread_mutex_unlock(&t->lock);
}

bool ingest_tmeta_take(ingest_tmeta_entry_t *e, int64_t now_ms, int *retry_s)
{
    if (now_ms > e->bucket_ms) {
        e->tokens += (double)(now_ms - e->bucket_ms) * INGEST_TMETA_RATE / 1000.0;
        if (e->tokens > INGEST_TMETA_BURST)
            e->tokens = INGEST_TMETA_BURST;
        e->bucket_ms = now_ms;
    }
    if (e->tokens >= 1.0) {
        e->tokens -= 1.0;
        return true;
    }
    if (retry_s) {
        int s = (int)ceil((1.0 - e->tokens) / INGEST_TMETA_RATE);
        *retry_s = s < 1 ? 1 : s;
    }
    return false;
}

uint32_t ingest_tmeta_next_id(uint32_t last, int64_t wall_ms)
{
    int64_t ds = (wall_ms - INGEST_TMETA_ID_EPOCH_MS) / 100;
    uint32_t now = ds <= 0 ? 1 : ds >= UINT32_MAX ? UINT32_MAX : (uint32_t)ds;
    return now > last ? now : last + 1;
}

int ingest_tmeta_push(ingest_tmeta_t *t, const char *stream_id, uint64_t session_id,
                      int64_t dts_ms, const uint8_t *payload, size_t len,
                      ingest_clock_cb_t clock_cb, void *opaque, int64_t now_ms,
                      int64_t wall_ms, ingest_metadata_stamp_t *out)
{
    memset(out, 0, sizeof(*out));
    if (len > MEDIA_TIMED_METADATA_MAX)
        return -EMSGSIZE;
    if (!utf8_valid(payload, len))
        return -EILSEQ;
    media_packet_t *p = media_packet_new(MEDIA_PACKET_TIMED_METADATA, len);
    if (!p)
        return -ENOMEM;
    if (len)
        memcpy(p->data, payload, len);
    pthread_mutex_lock(&t->lock);
    int ret = 0;
    ingest_tmeta_entry_t *e = stream_id ? ingest_tmeta_find(t, stream_id)
                                        : ingest_tmeta_by_session(t, session_id, NULL);
    if (!e || !e->queue) {
        ret = -ENOENT;
        goto out;
    }
    if (stream_id) {
        if (!e->have_dts) {
            ret = -EAGAIN;
            goto out;
        }
        dts_ms = e->newest_dts_ms;
    }
    out->media_time_ms = dts_ms;
    if (clock_cb && (ret = clock_cb(opaque, e->stream_id, dts_ms, &out->media_time_ms,
                                    &out->pdt_ms)) < 0)
        goto out;
    if (!ingest_tmeta_take(e, now_ms, &out->retry_after_s)) {
        ret = -EBUSY;
        goto out;
    }
    e->last_id = ingest_tmeta_next_id(e->last_id, wall_ms);
    e->used_ms = now_ms;
    out->id = e->last_id;
    p->dts_ms = p->pts_ms = dts_ms;
    p->meta_id = out->id;
    p->meta_pdt_ms = out->pdt_ms;
    ret = media_queue_push(e->queue, p);
    p = NULL; /* taken on every path */
    if (ret == -EPIPE)
        ret = -ENOENT; /* the publish has just ended */
out:
    pthread_mutex_unlock(&t->lock);
    media_packet_free(p);
    return ret;
}

const amf0_value_t *ingest_tmeta_text(const amf0_value_t *all)
{
    for (size_t i = 1; i < all->count; i++) {
        const amf0_value_t *v = all->items[i].value;
        if (amf0_string(v))
            return v;
        if (!v || (v->type != AMF0_OBJECT && v->type != AMF0_ECMA_ARRAY))
            continue;
        for (size_t k = 0; k < v->count; k++) {
            const amf0_item_t *it = &v->items[k];
            if (!amf0_string(it->value) || !it->key)
                continue;
            if ((it->key_len == 4 && memcmp(it->key, "text", 4) == 0) ||
                (it->key_len == 4 && memcmp(it->key, "data", 4) == 0) ||
                (it->key_len == 7 && memcmp(it->key, "payload", 7) == 0))
                return it->value;
        }
        return NULL; /* only the first object is looked at */
    }
    return NULL;
}
