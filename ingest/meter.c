/*
 * Per-publish ingest meters: what a live publisher sends, measured on the
 * ingest loop thread and readable from any other thread.
 *
 * Each publishing session owns an ingest_meter_t (rtmp_session.c calls the
 * hooks below from its emit/push/start/end spots, on the loop thread, no
 * lock). Media payload bytes and video frames go into one-second buckets
 * keyed by the monotonic second. When a packet opens a new second, the
 * session copies its whole meter into the shared table (ingest_meters_t,
 * one mutex, one entry per live stream): so the table is written about
 * once a second per stream, plus on start, on a codec configuration and on
 * end. Readers (the admin API, the report thread) copy an entry out under
 * the mutex and do the arithmetic outside it; they never touch a session.
 *
 * What is counted (docs/metrics.md says the same):
 * - bytes: payload of audio and video access units (FLV tag bodies after
 *   their codec header), not configs, metadata or RTMP framing;
 * - bitrate and fps: over the last INGEST_METER_WINDOW complete seconds
 *   (fewer just after the start; a stalled publisher's silent seconds count
 *   as zero), and the standard deviation of those per-second bit rates;
 * - late frames: an audio or video access unit whose decode timestamp is
 *   lower than the previous one of the same track (backwards) or more than
 *   INGEST_METER_JUMP_MS above it (a jump); they are counted, not altered;
 * - dropped frames: access units a full media queue refused.
 */
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>

#include "codec_config.h"
#include "meter_internal.h"

#define INGEST_METER_JUMP_MS 1000

void ingest_meters_init(ingest_meters_t *t)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
}

void ingest_meters_deinit(ingest_meters_t *t)
{
    pthread_mutex_destroy(&t->lock);
    free(t->items);
    memset(t, 0, sizeof(*t));
}

/* Copies m into the table (replacing the entry of its stream), or removes
 * the entry when `remove` (only if it is still this session's). */
static void ingest_meters_publish(ingest_meters_t *t, const ingest_meter_t *m, bool remove)
{
    pthread_mutex_lock(&t->lock);
    size_t i = 0;
    while (i < t->n && strcmp(t->items[i].stream_id, m->stream_id) != 0)
        i++;
    if (remove) {
        if (i < t->n && t->items[i].session_id == m->session_id)
            t->items[i] = t->items[--t->n];
    } else if (i < t->n) {
        t->items[i] = *m;
    } else {
        if (t->n == t->cap) {
            size_t cap = t->cap ? t->cap * 2 : 8;
            ingest_meter_t *p = realloc(t->items, cap * sizeof(*p));
            if (!p) { /* the stream goes unmetered; ingest itself is unaffected */
                pthread_mutex_unlock(&t->lock);
                return;
            }
            t->items = p;
            t->cap = cap;
        }
        t->items[t->n++] = *m;
    }
    pthread_mutex_unlock(&t->lock);
}

void ingest_meter_start(ingest_meters_t *t, ingest_meter_t *m, uint64_t session_id,
                        const char *stream_id, const char *peer, int64_t now_ms)
{
    memset(m, 0, sizeof(*m));
    m->session_id = session_id;
    m->active = true;
    snprintf(m->stream_id, sizeof(m->stream_id), "%s", stream_id);
    snprintf(m->peer, sizeof(m->peer), "%s", peer);
    m->start_ms = now_ms;
    m->start_sec = m->start_ms / 1000;
    m->cur_sec = m->start_sec;
    m->complete_through = m->start_sec; /* nothing complete yet */
    ingest_meters_publish(t, m, false);
}

static const char *ingest_meter_codec_name(media_codec_t c)
{
    switch (c) {
    case MEDIA_CODEC_H264: return "h264";
    case MEDIA_CODEC_HEVC: return "hevc";
    case MEDIA_CODEC_AV1: return "av1";
    case MEDIA_CODEC_AAC: return "aac";
    case MEDIA_CODEC_MPA: return "mpa";
    case MEDIA_CODEC_AC3: return "ac3";
    case MEDIA_CODEC_OPUS: return "opus";
    default: return "";
    }
}

static void ingest_meter_config(ingest_meter_t *m, media_packet_type_t type, media_codec_t codec,
                                const uint8_t *data, size_t len)
{
    if (type == MEDIA_PACKET_AUDIO_CONFIG) {
        snprintf(m->audio_codec, sizeof(m->audio_codec), "%s", ingest_meter_codec_name(codec));
        return;
    }
    snprintf(m->video_codec, sizeof(m->video_codec), "%s", ingest_meter_codec_name(codec));
    int w = 0, h = 0;
    if (codec == MEDIA_CODEC_H264) {
        h264_config_t c;
        if (h264_parse_avcc(data, len, &c) == 0) {
            w = c.width;
            h = c.height;
            if (c.fps_num > 0 && c.fps_den > 0)
                m->nominal_fps = (double)c.fps_num / c.fps_den;
        }
    } else if (codec == MEDIA_CODEC_HEVC) {
        hevc_config_t c;
        if (hevc_parse_hvcc(data, len, &c) == 0) {
            w = c.width;
            h = c.height;
        }
    } else if (codec == MEDIA_CODEC_AV1) {
        av1_config_t c;
        if (av1_parse_av1c(data, len, &c) == 0) {
            w = c.width;
            h = c.height;
        }
    }
    m->width = w;
    m->height = h;
}

void ingest_meter_media(ingest_meters_t *t, ingest_meter_t *m, media_packet_type_t type,
                        media_codec_t codec, int64_t dts_ms, const uint8_t *data, size_t len,
                        int64_t now_ms)
{
    if (!m->active)
        return;
    int64_t sec = now_ms / 1000;
    bool flush = false;
    if (sec != m->cur_sec) {
        /* Seconds up to cur_sec are complete: publish them before this
         * packet opens the new one. */
        m->complete_through = m->cur_sec;
        m->cur_sec = sec;
        size_t b = (size_t)(sec % INGEST_METER_SLOTS);
        m->slot_sec[b] = sec;
        m->slot_bytes[b] = 0;
        m->slot_frames[b] = 0;
        flush = true;
    }
    if (type == MEDIA_PACKET_VIDEO_CONFIG || type == MEDIA_PACKET_AUDIO_CONFIG) {
        ingest_meter_config(m, type, codec, data, len);
        flush = true;
    } else if (type == MEDIA_PACKET_VIDEO || type == MEDIA_PACKET_AUDIO) {
        int tr = type == MEDIA_PACKET_VIDEO ? 0 : 1;
        if (m->have_dts[tr] &&
            (dts_ms < m->last_dts[tr] || dts_ms - m->last_dts[tr] > INGEST_METER_JUMP_MS))
            m->late_frames++;
        m->have_dts[tr] = true;
        m->last_dts[tr] = dts_ms;
        size_t b = (size_t)(sec % INGEST_METER_SLOTS);
        if (m->slot_sec[b] != sec) {
            m->slot_sec[b] = sec;
            m->slot_bytes[b] = 0;
            m->slot_frames[b] = 0;
        }
        m->slot_bytes[b] += len;
        m->bytes += len;
        if (tr == 0) {
            m->slot_frames[b]++;
            m->video_frames++;
        } else {
            m->audio_frames++;
        }
    }
    if (flush)
        ingest_meters_publish(t, m, false);
}

void ingest_meter_protocol(ingest_meters_t *t, ingest_meter_t *m, const char *protocol)
{
    snprintf(m->protocol, sizeof(m->protocol), "%s", protocol);
    if (m->active)
        ingest_meters_publish(t, m, false);
}

void ingest_meter_srt(ingest_meters_t *t, ingest_meter_t *m, const ingest_srt_stats_t *s)
{
    m->srt = *s;
    m->has_srt = true;
    if (m->active)
        ingest_meters_publish(t, m, false);
}

void ingest_meter_dropped(ingest_meter_t *m)
{
    m->dropped_frames++;
}

void ingest_meter_end(ingest_meters_t *t, ingest_meter_t *m)
{
    if (m->active)
        ingest_meters_publish(t, m, true);
    m->active = false;
}

/* The public view of a meter copy at time now_ms. */
static void ingest_meter_stats(const ingest_meter_t *m, int64_t now_ms, ingest_stream_stats_t *o)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->stream_id, sizeof(o->stream_id), "%s", m->stream_id);
    snprintf(o->peer, sizeof(o->peer), "%s", m->peer);
    snprintf(o->protocol, sizeof(o->protocol), "%s", m->protocol[0] ? m->protocol : "rtmp");
    o->has_srt = m->has_srt;
    o->srt = m->srt;
    o->width = m->width;
    o->height = m->height;
    snprintf(o->video_codec, sizeof(o->video_codec), "%s", m->video_codec);
    snprintf(o->audio_codec, sizeof(o->audio_codec), "%s", m->audio_codec);
    o->bytes = m->bytes;
    o->video_frames = m->video_frames;
    o->audio_frames = m->audio_frames;
    o->dropped_frames = m->dropped_frames;
    o->late_frames = m->late_frames;
    o->uptime_ms = now_ms - m->start_ms;
    o->nominal_fps = m->nominal_fps;

    /* The window ends at the newest complete second the copy has; when the
     * copy is older than that (the publisher went quiet), at the second
     * before now, the silent seconds counting as zero. The start second
     * (partial) never counts. */
    int64_t now_sec = now_ms / 1000;
    int64_t end = m->complete_through;
    if (now_sec - 1 > end + 1)
        end = now_sec - 1;
    int64_t first = end - INGEST_METER_WINDOW + 1;
    if (first <= m->start_sec)
        first = m->start_sec + 1;
    int64_t nsec = end - first + 1;
    if (nsec <= 0) {
        double secs = o->uptime_ms / 1000.0;
        if (secs > 0.2) {
            o->bitrate_kbps = m->bytes * 8.0 / 1000.0 / secs;
            o->fps = m->video_frames / secs;
        }
        return;
    }
    double kbps[INGEST_METER_WINDOW];
    double sum = 0, frames = 0;
    for (int64_t s = first; s <= end; s++) {
        size_t b = (size_t)(s % INGEST_METER_SLOTS);
        double k = 0;
        if (m->slot_sec[b] == s && s <= m->complete_through) {
            k = m->slot_bytes[b] * 8.0 / 1000.0;
            frames += m->slot_frames[b];
        }
        kbps[s - first] = k;
        sum += k;
    }
    double mean = sum / (double)nsec;
    double var = 0;
    for (int64_t i = 0; i < nsec; i++)
        var += (kbps[i] - mean) * (kbps[i] - mean);
    o->bitrate_kbps = mean;
    o->fps = frames / (double)nsec;
    o->bitrate_stddev_kbps = sqrt(var / (double)nsec);
    o->window_s = (int)nsec;
}

int ingest_meters_get(ingest_meters_t *t, const char *stream_id, ingest_stream_stats_t *out,
                      int64_t now_ms)
{
    ingest_meter_t m;
    int ret = -ENOENT;
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->items[i].stream_id, stream_id) == 0) {
            m = t->items[i];
            ret = 0;
            break;
        }
    }
    pthread_mutex_unlock(&t->lock);
    if (ret == 0)
        ingest_meter_stats(&m, now_ms, out);
    return ret;
}

int ingest_meters_list(ingest_meters_t *t, ingest_stream_stats_t **out, size_t *n,
                       int64_t now_ms)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&t->lock);
    size_t cnt = t->n;
    ingest_meter_t *copy = cnt ? malloc(cnt * sizeof(*copy)) : NULL;
    if (cnt && !copy) {
        pthread_mutex_unlock(&t->lock);
        return -ENOMEM;
    }
    if (cnt)
        memcpy(copy, t->items, cnt * sizeof(*copy));
    pthread_mutex_unlock(&t->lock);
    if (cnt == 0)
        return 0;
    ingest_stream_stats_t *res = calloc(cnt, sizeof(*res));
    if (!res) {
        free(copy);
        return -ENOMEM;
    }
    for (size_t i = 0; i < cnt; i++)
        ingest_meter_stats(&copy[i], now_ms, &res[i]);
    free(copy);
    *out = res;
    *n = cnt;
    return 0;
}
