/*
 * Packager: the decisions of HLS packaging for one broadcast.
 *
 * Input is the stream's media packets in arrival order. A short probe phase
 * buffers them until the shape of the stream is known (video keyframe and
 * audio config, or about a second of media of one kind only); then one CMAF
 * muxer per rendition is opened and the buffered packets are replayed.
 *
 * Timeline: publisher milliseconds are moved so that the stream's first
 * packet sits at PK_TIMELINE_START_MS (headroom for B-frame dts before it),
 * per-track jumps are repaired by an offset that continues the timeline, and
 * dts is forced strictly increasing. Video samples use 90 kHz ticks; audio
 * samples are counted in frames at the sample rate (FLV's millisecond stamps
 * would jitter) and resynchronised when they drift.
 *
 * Cuts: video is cut at a keyframe once segment_duration has passed since
 * the segment's first sample; each cut's presentation time is queued for
 * audio, which is cut at its first frame whose pts reaches it. Audio waits
 * in a FIFO until video has shown that no earlier cut can come (a later
 * keyframe's pts is at least the newest video dts), so segment N of both
 * renditions covers the same time. Audio-only streams are cut by time.
 *
 * Timed metadata (MEDIA_PACKET_TIMED_METADATA): each item's dts is mapped
 * to the stream timeline as media is (pk_clock, the mapping the worker
 * also publishes for the admin API); every rendition puts an emsg (emsg.h)
 * before the moof of its first part, or segment without LL-HLS, that ends
 * after that time (pk_meta_wrap), and the playlists get an EXT-X-DATERANGE
 * (publish.c).
 *
 * Publishing (the batch, the playlist models, the commit of segment N of
 * every rendition together, the recorder sink) lives in publish.c; the
 * state both share is in packager_priv_internal.h.
 *
 * Thread and ownership: a packager belongs to one transcode worker thread.
 * It owns its muxers, buffered packets and playlist models; blobs it hands
 * to the store are released after the commit (the store holds its own refs).
 */
#include "packager_priv_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/mathematics.h>

#include "blob.h"
#include "clock.h"
#include "cmaf_internal.h"
#include "codec_config.h"
#include "emsg.h"
#include "failure_internal.h"
#include "hls_names.h"
#include "hls_playlist.h"
#include "log.h"
#include "transcode.h"

#define PK_TIMELINE_START_MS PACKAGER_TIMELINE_START_MS
#define PK_JUMP_BACK_MS 1000      /* dts going back further is a jump */
#define PK_JUMP_FORWARD_MS 10000  /* dts going forward further is a jump */
#define PK_MAX_CTS_MS 10000
#define PK_CUT_TOLERANCE_US 10000 /* absorbs FLV's millisecond rounding */
#define PK_PROBE_SPAN_MS 1000     /* one kind only for this long: single-kind */
#define PK_DVR_MAX_S 86400        /* longest --dvr-window */
#define PK_PROBE_MAX_SPAN_MS 10000
#define PK_PROBE_MAX_PACKETS 4096
#define PK_AUDIO_FIFO_MAX 512     /* ~10 s of AAC: video has stalled */
#define PK_RUNG_MAX_CTS_TICKS 45000 /* 0.5 s: the most an encoded rung may show after decoding */
#define PK_AUDIO_RESYNC_MS 100
#define PK_CUT_MATCH_TICKS 90     /* a rung keyframe within 1 ms of a cut starts it */
#define PK_HELD_MAX 512           /* a restored rung's own samples waiting for its stand-in's cut */

/* ---- small helpers ---------------------------------------------------- */

int pk_timescale(const pk_track_t *t)
{
    return t->is_video ? 90000 : t->aac.sample_rate;
}

int64_t pk_ts_to_us(const pk_track_t *t, int64_t ts)
{
    return av_rescale(ts, 1000000, pk_timescale(t));
}

int pk_audio_frame_size(const aac_config_t *c)
{
    /* SBR and PS double the output samples per AAC frame. */
    return c->object_type == 5 || c->object_type == 29 ? 2048 : 1024;
}

int64_t pk_nominal_ms(const pk_track_t *t)
{
    if (!t->is_video)
        return t->aac.sample_rate > 0
                   ? (int64_t)pk_audio_frame_size(&t->aac) * 1000 / t->aac.sample_rate
                   : 21;
    if (t->h264.fps_num > 0 && t->h264.fps_den > 0 &&
        t->h264.fps_num >= t->h264.fps_den) /* at most 1 s per frame */
        return (int64_t)t->h264.fps_den * 1000 / t->h264.fps_num;
    return 33;
}

double pk_sps_fps(const pk_track_t *v)
{
    if (v->h264.fps_num <= 0 || v->h264.fps_den <= 0)
        return 0;
    double fps = (double)v->h264.fps_num / v->h264.fps_den;
    return fps >= 1 && fps <= 240 ? fps : 0;
}

/* HEVC and AV1 sources are only decoded (never copied), so what the
 * packager needs from their records is the picture size. */
static int pk_parse_video_config(media_codec_t codec, const uint8_t *data, size_t size,
                                 h264_config_t *h)
{
    int ret;
    if (codec == MEDIA_CODEC_HEVC) {
        hevc_config_t c;
        if ((ret = hevc_parse_hvcc(data, size, &c)) < 0)
            return ret;
        *h = (h264_config_t){.nal_length_size = c.nal_length_size, .width = c.width,
                             .height = c.height, .chroma_format_idc = c.chroma_format_idc,
                             .bit_depth_luma = c.bit_depth_luma};
    } else if (codec == MEDIA_CODEC_AV1) {
        av1_config_t c;
        if ((ret = av1_parse_av1c(data, size, &c)) < 0)
            return ret;
        *h = (h264_config_t){.width = c.width, .height = c.height, .bit_depth_luma = c.bit_depth};
    } else {
        return h264_parse_avcc(data, size, h);
    }
    return h->width > 0 && h->height > 0 ? 0 : -EPROTO; /* no SPS / sequence header */
}

static int pk_parse_config(pk_track_t *t, media_codec_t codec, const uint8_t *data, size_t size,
                           h264_config_t *h, aac_config_t *a)
{
    if (t->is_video)
        return pk_parse_video_config(codec, data, size, h);
    int ret = aac_parse_asc(data, size, a);
    if (ret == 0 && (a->sample_rate <= 0 || a->sample_rate > 192000))
        ret = -EPROTO;
    return ret;
}

static void pk_track_describe(pk_track_t *t)
{
    if (t->is_video && t->vcodec == MEDIA_CODEC_HEVC)
        snprintf(t->codec, sizeof(t->codec), "hvc1");
    else if (t->is_video && t->vcodec == MEDIA_CODEC_AV1)
        snprintf(t->codec, sizeof(t->codec), "av01");
    else if (t->is_video)
        h264_codec_string(&t->h264, t->codec, sizeof(t->codec));
    else
        aac_codec_string(&t->aac, t->codec, sizeof(t->codec));
}

static int pk_track_open_muxer(packager_t *pk, pk_track_t *t)
{
    cmaf_track_params_t cp = {
        .kind = t->is_video ? CMAF_TRACK_VIDEO : CMAF_TRACK_AUDIO,
        .extradata = t->config,
        .extradata_size = t->config_size,
        .width = t->h264.width,
        .height = t->h264.height,
        .sample_rate = t->aac.sample_rate,
        .channels = t->aac.channels,
        .frame_size = t->is_video ? 0 : pk_audio_frame_size(&t->aac),
        .log_ctx = pk->ctx,
        .name = t->name,
    };
    blob_t *init = NULL;
    int ret = cmaf_muxer_new(&cp, &t->mux, &init);
    if (ret < 0) {
        log_error(pk->ctx, "cannot start the %s muxer: %s", t->name, strerror(-ret));
        return ret;
    }
    blob_unref(t->init);
    t->init = init;
    return 0;
}

static void pk_ready_clear(pk_ready_t *r)
{
    blob_unref(r->frag.data);
    memset(r, 0, sizeof(*r));
}

static void pk_track_deinit(pk_track_t *t)
{
    cmaf_muxer_free(t->mux);
    t->mux = NULL;
    blob_unref(t->init);
    t->init = NULL;
    blob_unref(t->init_live);
    t->init_live = NULL;
    for (size_t i = 0; i < t->nready; i++)
        pk_ready_clear(&t->ready[i]);
    t->nready = 0;
    for (size_t i = 0; i < t->ncur; i++)
        blob_unref(t->cur_blobs[i]);
    t->ncur = 0;
    free(t->render);
    free(t->config);
    free(t->next_config);
    free(t->own_config);
    free(t->window);
    while (t->held_head) {
        pk_held_t *h = t->held_head;
        t->held_head = h->next;
        free(h);
    }
    t->held_tail = NULL;
    t->nheld = 0;
}

/* ---- segments ----------------------------------------------------------- */

static void pk_ready_add(packager_t *pk, pk_track_t *t, cmaf_fragment_t *f)
{
    if (t->nready == PK_READY_MAX) {
        log_warn(pk->ctx, "%s: too many unpublished segments; dropping the oldest", t->name);
        pk_ready_clear(&t->ready[0]);
        memmove(&t->ready[0], &t->ready[1], (t->nready - 1) * sizeof(t->ready[0]));
        t->nready--;
    }
    int64_t start_ms = t->seg_start_us / 1000 - PK_TIMELINE_START_MS;
    t->ready[t->nready++] = (pk_ready_t){
        .frag = *f,
        .msn = t->seg_msn++,
        .pdt_ms = pk->wall0_ms + start_ms,
        .discontinuity = t->seg_discontinuity,
        .arrival_us = t->part_arrival_us,
    };
    t->seg_discontinuity = false;
    t->seg_open = false;
}

static void pk_hist_add(pk_track_t *t, int64_t msn)
{
    size_t h = t->hist_next++ % PK_PART_HIST;
    t->hist[h].msn = msn;
    t->hist[h].n = t->ncur;
    memcpy(t->hist[h].parts, t->cur_parts, t->ncur * sizeof(t->cur_parts[0]));
}

/* Publishes the part just added to t->cur_*: the part, the init segment if
 * it is not out yet, and the playlists naming the part, in one commit
 * (RFC 8216bis 6.2.2: a playlist never names a part that cannot be
 * fetched). Segments finished before it are committed first. */
static int pk_part_commit(packager_t *pk, pk_track_t *t)
{
    int ret = pk_commit_ready(pk, true);
    if (ret < 0)
        return ret;
    pk_batch_t *b = &pk->batch;
    size_t i = t->ncur - 1;
    if (!t->follow_checked)
        (void)pk_track_follow(pk, t, t->seg_msn);
    pk_init_add(pk, t, b, t->seg_msn);
    pk_batch_add(b, STORE_OP_PUT, blob_ref(t->cur_blobs[i]), pk->part_ttl_ms, true,
                 PK_PART(t, t->seg_msn, i));
    t->rr_valid = true;
    t->rr_msn = t->seg_msn;
    t->rr_part = (int64_t)i;
    if ((ret = pk_playlists_add(pk, t, false, pk->live_ttl_ms, b)) < 0) {
        pk_batch_drop(b);
        return ret;
    }
    if ((ret = pk_batch_commit(pk, b)) < 0)
        return ret;
    if (t->part_arrival_us > 0)
        log_debug(pk->ctx,
                  "%s part %" PRId64 ".%zu: %.3f s, %zu bytes, fetchable %.1f ms after its last "
                  "frame arrived",
                  t->name, t->seg_msn, i, t->cur_parts[i].duration, t->cur_blobs[i]->size,
                  (clock_mono_us() - t->part_arrival_us) / 1000.0);
    return 0;
}

/* Puts an emsg before the fragment f of t for every timed-metadata item t
 * still owes whose media time lies before f's end: in the part that holds
 * that time, or the next one t publishes when the time has passed (a rung
 * whose encoder is behind, audio waiting for video). Items from before a
 * rendition's long absence (a rung that was dropped) are left out. */
static int pk_meta_wrap(packager_t *pk, pk_track_t *t, cmaf_fragment_t *f)
{
    if (t->meta_next >= pk->meta_seq)
        return 0;
    if (pk->meta_seq - t->meta_next > PK_META_MAX) {
        log_warn(pk->ctx, "%s: %" PRIu64 " timed-metadata items never reached its parts",
                 t->name, pk->meta_seq - PK_META_MAX - t->meta_next);
        t->meta_next = pk->meta_seq - PK_META_MAX;
    }
    int ts = pk_timescale(t);
    int64_t end = f->start_dts + f->duration;
    int64_t stale = f->start_dts - av_rescale(2 * pk->target_us + 1000000, ts, 1000000);
    buf_t b = {0};
    for (; t->meta_next < pk->meta_seq; t->meta_next++) {
        const pk_meta_t *m = &pk->meta[t->meta_next % PK_META_MAX];
        int64_t at = av_rescale(m->time_ms, ts, 1000);
        if (at >= end)
            break; /* in a later part (items come in time order) */
        if (at < stale)
            continue;
        if (emsg_box_append(&b, (uint32_t)ts, (uint64_t)(at > 0 ? at : 0), m->id,
                            m->payload->data, m->payload->size) < 0)
            continue; /* cannot happen: payloads are at most 1 KiB */
    }
    if (b.len == 0) {
        buf_deinit(&b);
        return 0;
    }
    buf_append(&b, f->data->data, f->data->size);
    blob_t *nb = b.oom ? NULL : blob_new(b.bytes, b.len);
    buf_deinit(&b);
    if (!nb)
        return -ENOMEM;
    blob_unref(f->data);
    f->data = nb;
    return 0;
}

/* Cuts the samples pushed since the last part into part t->ncur of the
 * segment in progress, the last sample lasting until end_ts. */
static int pk_part_close(packager_t *pk, pk_track_t *t, int64_t end_ts)
{
    cmaf_fragment_t f;
    int ret = cmaf_muxer_flush(t->mux, end_ts, &f);
    if (ret < 0)
        return ret;
    if ((ret = pk_meta_wrap(pk, t, &f)) < 0) {
        blob_unref(f.data);
        return ret;
    }
    size_t i = t->ncur++;
    t->cur_blobs[i] = f.data;
    t->cur_parts[i] = (hls_part_t){.duration = (double)f.duration / pk_timescale(t),
                                   .independent = t->part_first_key};
    if (i == 0) {
        t->seg_acc = f;
        t->seg_acc.data = NULL;
    } else {
        t->seg_acc.duration = f.start_dts + f.duration - t->seg_acc.start_dts;
        t->seg_acc.samples += f.samples;
    }
    return pk_part_commit(pk, t);
}

/* Where the part in progress ends when it is closed at dts (before a
 * sample there, or after one with an estimated duration): there, but never
 * later than PART-TARGET after the part's start (RFC 8216bis 4.4.4.9: no
 * part is longer). An encoder that falls behind (a starved one on a busy machine)
 * leaves gaps of a tenth of a second and more between samples; the part
 * then ends at the bound and the late sample starts the next part there
 * (cmaf_muxer_push), shown at its own time. */
static int64_t pk_part_end(const packager_t *pk, const pk_track_t *t, int64_t dts)
{
    int64_t start, held;
    if (!cmaf_muxer_span(t->mux, &start, &held, NULL))
        return dts;
    int64_t bound = start + (int64_t)floor(pk_part_target(pk, t) * pk_timescale(t));
    if (dts <= bound)
        return dts;
    return bound > held ? bound : held + 1;
}

/* Whether media ending at end_us (the segment timeline of t) completes the
 * part in progress, give or take tol_us (half a sample: parts end at the
 * sample boundary nearest to their nominal end). The nominal ends are
 * multiples of the part duration from the segment's start, so that the
 * parts of every rendition line up. RFC 8216bis 4.4.4.9 bounds a part's
 * length, PART-TARGET at most and 85 % of it at least (but the last of a
 * segment), and uneven timestamps (an encoder that falls behind) can
 * break both: a part is never due while shorter than the least, and always
 * once it reaches PART-TARGET (pk_part_end cuts it there). */
static bool pk_part_due(packager_t *pk, pk_track_t *t, int64_t end_us, int64_t tol_us)
{
    int64_t start, held;
    if (!cmaf_muxer_span(t->mux, &start, &held, NULL))
        return false;
    int64_t len_us = end_us - pk_ts_to_us(t, start);
    int64_t target_us = llround(pk_part_target(pk, t) * 1e6);
    /* A millisecond above the least: the playlist rounds to milliseconds. */
    if (len_us < target_us * 85 / 100 + 1000)
        return false;
    if (len_us >= target_us - tol_us && t->ncur + 1 < PK_PARTS_MAX)
        return true;
    if (t->ncur + 1 >= PK_PARTS_MAX) {
        if (!t->part_limit_warned)
            log_warn(pk->ctx, "%s: segment longer than %d parts; its last part runs on until "
                     "the next keyframe", t->name, PK_PARTS_MAX);
        t->part_limit_warned = true;
        return false;
    }
    return end_us - t->part_base_us >= (int64_t)(t->ncur + 1) * pk->part_us - tol_us;
}

/* The segment in progress, made of its parts: their fragments back to
 * back are the segment (CMAF allows several per segment), so a player
 * that ignores parts fetches the same bytes in one object. */
static int pk_segment_from_parts(packager_t *pk, pk_track_t *t)
{
    size_t size = 0;
    for (size_t i = 0; i < t->ncur; i++)
        size += t->cur_blobs[i]->size;
    blob_t *seg = blob_new_uninit(size);
    if (!seg)
        return -ENOMEM;
    size_t at = 0;
    for (size_t i = 0; i < t->ncur; i++) {
        memcpy(seg->data + at, t->cur_blobs[i]->data, t->cur_blobs[i]->size);
        at += t->cur_blobs[i]->size;
        blob_unref(t->cur_blobs[i]);
        t->cur_blobs[i] = NULL;
    }
    pk_hist_add(t, t->seg_msn);
    t->ncur = 0;
    cmaf_fragment_t f = t->seg_acc;
    f.data = seg;
    pk_ready_add(pk, t, &f);
    return pk_commit_ready(pk, true);
}

/* Ends t's segment in progress at end_ts (timescale units; INT64_MIN: the
 * last sample keeps the previous duration). Nothing pending: no segment. */
static int pk_track_cut(packager_t *pk, pk_track_t *t, int64_t end_ts)
{
    if (!t->mux)
        return 0;
    int ret;
    if (pk->part_us > 0) {
        if (cmaf_muxer_pending(t->mux) > 0 &&
            (ret = pk_part_close(pk, t, end_ts == INT64_MIN ? end_ts
                                                            : pk_part_end(pk, t, end_ts))) < 0)
            return ret;
        return t->ncur > 0 ? pk_segment_from_parts(pk, t) : 0;
    }
    if (cmaf_muxer_pending(t->mux) == 0)
        return 0;
    cmaf_fragment_t f;
    if ((ret = cmaf_muxer_flush(t->mux, end_ts, &f)) < 0)
        return ret;
    if ((ret = pk_meta_wrap(pk, t, &f)) < 0) {
        blob_unref(f.data);
        return ret;
    }
    pk_ready_add(pk, t, &f);
    return 0;
}

/* Applies a codec configuration that waited for a cut: a new muxer and init
 * segment, and a discontinuity before the next segment. */
static int pk_track_reconfigure(packager_t *pk, pk_track_t *t)
{
    free(t->config);
    t->config = t->next_config;
    t->config_size = t->next_config_size;
    t->next_config = NULL;
    t->next_config_size = 0;
    t->reconfig_pending = false;
    t->vcodec = t->next_vcodec;
    (void)pk_parse_config(t, t->vcodec, t->config, t->config_size, &t->h264, &t->aac);
    pk_track_describe(t);
    cmaf_muxer_free(t->mux);
    t->mux = NULL;
    t->have_ts = false; /* the audio timescale may have changed */
    t->seg_discontinuity = true;
    log_info(pk->ctx, "%s: new codec configuration %s in effect", t->name, t->codec);
    if (t->is_video && !t->is_rung && !t->output)
        return 0; /* the source is decoded, not muxed */
    return pk_track_open_muxer(pk, t);
}

/* Records the distance from the previous video sample and sets
 * frame_ticks to the shortest of the recent ones. A part cut right after a
 * sample gives that sample frame_ticks as its duration, before the next one
 * has come: were that longer than the real distance to the next two
 * samples, both would lie before the part's end. Encoders' timestamps are
 * not regular (gst's x264enc at its defaults spaces them 23, 33 and 46 ms
 * apart at 30 fps, more unevenly on a busy machine), so the newest
 * distance alone is no estimate. */
static void pk_track_gap(pk_track_t *t, int64_t d)
{
    t->gaps[t->gap_next] = d;
    t->gap_next = (t->gap_next + 1) % PK_GAP_HIST;
    if (t->ngaps < PK_GAP_HIST)
        t->ngaps++;
    int64_t min = d;
    for (size_t i = 0; i < t->ngaps; i++)
        if (t->gaps[i] < min)
            min = t->gaps[i];
    t->frame_ticks = min;
}

/* Says which rendition, segment and part a failed write was for. */
static int pk_track_failed(const pk_track_t *t, int ret, int64_t dts, int64_t pts)
{
    failure_note("%s, segment %" PRId64 " part %zu, sample dts %" PRId64 " pts %" PRId64
                 " (1/%d s)",
                 t->name, t->seg_msn, t->ncur, dts, pts, pk_timescale(t));
    return ret;
}

/* Writes one sample of t. With LL-HLS, a part is cut after the sample that
 * reaches its nominal end (so it is published without waiting for the next
 * sample), or before a sample that starts past it. */
static int pk_track_write(packager_t *pk, pk_track_t *t, const uint8_t *data, size_t size,
                          int64_t dts, int64_t pts, bool key)
{
    /* Samples go only into a started track (its first keyframe or cut
     * seen), so an open segment always belongs to a started one: a sample
     * written before would begin a segment at no cut, out of step with
     * the other renditions. */
    SLUICE_ASSERT(t->started);
    if (!t->mux) { /* not muxed: only the timeline is kept */
        t->have_ts = true;
        t->last_ts = dts;
        return 0;
    }
    int ret;
    bool ll = pk->part_us > 0;
    int64_t at_us = pk_ts_to_us(t, dts);
    int64_t half_us = pk_ts_to_us(t, t->frame_ticks) / 2;
    if (ll && cmaf_muxer_pending(t->mux) > 0 && pk_part_due(pk, t, at_us, half_us) &&
        (ret = pk_part_close(pk, t, pk_part_end(pk, t, dts))) < 0)
        return pk_track_failed(t, ret, dts, pts);
    bool opens = !t->seg_open;
    if (cmaf_muxer_pending(t->mux) == 0)
        t->part_first_key = key;
    if (t->after_break)
        cmaf_muxer_break(t->mux);
    if ((ret = cmaf_muxer_push(t->mux, data, size, dts, pts, key)) < 0)
        return pk_track_failed(t, ret, dts, pts);
    if (opens) {
        /* The segment starts where the muxer placed its first sample: a
         * few ms from its own timestamps when the last part before it
         * ended on an estimate or a bound (cmaf_muxer_push). */
        int64_t start_dts, held, start_pts;
        (void)cmaf_muxer_span(t->mux, &start_dts, &held, &start_pts);
        t->seg_open = true;
        t->seg_start_us = pk_ts_to_us(t, start_pts);
        if (!t->have_part_base)
            t->part_base_us = pk_ts_to_us(t, start_dts);
        t->have_part_base = false;
    }
    /* The first sample after an input break may come well after the last
     * one before it (the new input waited for a keyframe): that distance
     * is a gap, not a frame, and would make the part it lands in as long. */
    if (!t->is_video)
        t->frame_ticks = pk_audio_frame_size(&t->aac);
    else if (t->have_ts && dts > t->last_ts && !t->after_break)
        pk_track_gap(t, dts - t->last_ts);
    t->after_break = false;
    t->have_ts = true;
    t->last_ts = dts;
    if (ll && t->frame_ticks > 0) {
        int64_t frame_us = pk_ts_to_us(t, t->frame_ticks);
        /* Not when the estimated end lies past PART-TARGET: the next sample
         * would be moved up to that end and the file's timeline would run
         * ahead of the media's; the next sample closes the part instead. */
        int64_t end = dts + t->frame_ticks;
        if (pk_part_due(pk, t, at_us + frame_us, frame_us / 2) &&
            pk_part_end(pk, t, end) == end && (ret = pk_part_close(pk, t, end)) < 0)
            return pk_track_failed(t, ret, dts, pts);
    }
    return 0;
}

static void pk_add_cut(packager_t *pk, int64_t time_us, bool discontinuity)
{
    if (pk->mode != PK_MODE_AV)
        return;
    if (pk->ncuts == PK_CUTS_MAX) { /* audio is absent: merge the oldest */
        memmove(&pk->cuts[0], &pk->cuts[1], (pk->ncuts - 1) * sizeof(pk->cuts[0]));
        pk->ncuts--;
    }
    pk->cuts[pk->ncuts++] = (pk_cut_t){.time_us = time_us, .discontinuity = discontinuity};
}

/* Remembers that the source keyframe at pts (90 kHz) starts segment msn. */
static void pk_cuthist_add(packager_t *pk, int64_t pts, int64_t msn, bool discontinuity)
{
    if (pk->ncuthist == PK_CUTHIST_MAX) {
        memmove(&pk->cuthist[0], &pk->cuthist[1], (pk->ncuthist - 1) * sizeof(pk->cuthist[0]));
        pk->ncuthist--;
    }
    pk->cuthist[pk->ncuthist].pts = pts;
    pk->cuthist[pk->ncuthist].msn = msn;
    pk->cuthist[pk->ncuthist].discontinuity = discontinuity;
    pk->ncuthist++;
}

static bool pk_cuthist_find(const packager_t *pk, int64_t pts, int64_t *msn, bool *discontinuity)
{
    for (size_t i = pk->ncuthist; i-- > 0;) {
        int64_t d = pk->cuthist[i].pts - pts;
        if (d <= PK_CUT_MATCH_TICKS && d >= -PK_CUT_MATCH_TICKS) {
            *msn = pk->cuthist[i].msn;
            *discontinuity = pk->cuthist[i].discontinuity;
            return true;
        }
    }
    return false;
}

/* ---- timestamps --------------------------------------------------------- */

/* Moves a publisher dts onto the stream timeline and repairs jumps. */
static int64_t pk_repair_dts(packager_t *pk, pk_track_t *t, int64_t dts_ms_in)
{
    int64_t dts = dts_ms_in - pk->origin_ms + PK_TIMELINE_START_MS + t->offset_ms;
    if (t->have_last_ms) {
        int64_t delta = dts - t->last_dts_ms;
        if (delta < -PK_JUMP_BACK_MS || delta > PK_JUMP_FORWARD_MS) {
            int64_t want = t->last_dts_ms + pk_nominal_ms(t);
            log_warn(pk->ctx, "%s timestamps jumped by %" PRId64 " ms; continuing the timeline",
                     t->is_video ? "video" : "audio", delta);
            t->offset_ms += want - dts;
            dts = want;
        }
    } else if (dts < 0) {
        t->offset_ms -= dts;
        dts = 0;
    }
    if (!t->have_last_ms || dts > t->last_dts_ms)
        t->last_dts_ms = dts;
    t->have_last_ms = true;
    return dts;
}

/* Audio sample timestamp: frames counted at the sample rate, resynchronised
 * to the publisher's clock when they drift apart. */
static int64_t pk_audio_ts(const pk_track_t *a, int64_t dts_ms)
{
    int sr = a->aac.sample_rate;
    int64_t in = av_rescale(dts_ms, sr, 1000);
    if (!a->have_ts)
        return in;
    int64_t expect = a->next_audio_ts;
    int64_t diff = in > expect ? in - expect : expect - in;
    if (diff <= (int64_t)sr * PK_AUDIO_RESYNC_MS / 1000)
        return expect;
    return in > a->last_ts ? in : a->last_ts + 1;
}

static int pk_audio_write(packager_t *pk, media_packet_t *pkt, int64_t dts_ms)
{
    pk_track_t *a = &pk->audio;
    int64_t ts = pk_audio_ts(a, dts_ms);
    a->part_arrival_us = pkt->arrival_us;
    int ret = pk_track_write(pk, a, pkt->data, pkt->size, ts, ts, true);
    if (ret < 0)
        return ret;
    a->next_audio_ts = ts + pk_audio_frame_size(&a->aac);
    return 0;
}

/* ---- audio alongside video ---------------------------------------------- */

static void pk_afifo_pop(packager_t *pk)
{
    media_packet_free(pk->afifo[0].pkt);
    memmove(&pk->afifo[0], &pk->afifo[1], (pk->afifo_len - 1) * sizeof(pk->afifo[0]));
    pk->afifo_len--;
}

/* Writes or cuts audio for every queued frame whose place is known. */
static int pk_audio_drain(packager_t *pk, bool all)
{
    pk_track_t *a = &pk->audio;
    while (pk->afifo_len > 0) {
        pk_audio_frame_t *e = &pk->afifo[0];
        int64_t pts_us = (e->dts_ms) * 1000;
        if (pk->ncuts > 0 && pts_us >= pk->cuts[0].time_us) {
            pk_cut_t cut = pk->cuts[0];
            memmove(&pk->cuts[0], &pk->cuts[1], (pk->ncuts - 1) * sizeof(pk->cuts[0]));
            pk->ncuts--;
            if (a->started) {
                int ret = pk_track_cut(pk, a, pk_audio_ts(a, e->dts_ms));
                if (ret < 0)
                    return ret;
            }
            a->started = true;
            /* Its parts line up with the video's: the cut's time, moved
             * onto the frame-counted audio timeline (see pk_audio_ts). */
            a->part_base_us = cut.time_us +
                              pk_ts_to_us(a, pk_audio_ts(a, e->dts_ms)) - e->dts_ms * 1000;
            a->have_part_base = true;
            if (a->reconfig_pending) {
                int ret = pk_track_reconfigure(pk, a);
                if (ret < 0)
                    return ret;
            }
            if (cut.discontinuity)
                a->seg_discontinuity = true;
            continue;
        }
        bool placed = all || pk->afifo_len > PK_AUDIO_FIFO_MAX ||
                      (pk->have_video_dts && pts_us <= pk->last_video_dts_us);
        if (!placed)
            break;
        if (a->started && !a->reconfig_pending) {
            int ret = pk_audio_write(pk, e->pkt, e->dts_ms);
            if (ret < 0)
                return ret;
        }
        pk_afifo_pop(pk);
    }
    return 0;
}

static int pk_audio_enqueue(packager_t *pk, media_packet_t *pkt, int64_t dts_ms)
{
    if (pk->afifo_len == PK_AUDIO_FIFO_MAX + 1) {
        /* The drain below always makes room; this is a last resort. */
        media_packet_free(pkt);
        return 0;
    }
    pk->afifo[pk->afifo_len++] = (pk_audio_frame_t){.pkt = pkt, .dts_ms = dts_ms};
    return pk_audio_drain(pk, false);
}

/* ---- media -------------------------------------------------------------- */

static int pk_alias_end(packager_t *pk, pk_track_t *t);
static int pk_alias_feed(packager_t *pk, pk_track_t *s, const uint8_t *data, size_t size,
                         int64_t dts, int64_t pts, bool key);

static int pk_video_packet(packager_t *pk, media_packet_t *pkt)
{
    pk_track_t *v = &pk->video;
    int64_t cts = pkt->pts_ms - pkt->dts_ms;
    if (cts < 0 || cts > PK_MAX_CTS_MS)
        cts = 0;
    int64_t dts_ms = pk_repair_dts(pk, v, pkt->dts_ms);
    int64_t dts = dts_ms * 90, pts = (dts_ms + cts) * 90;
    if (v->have_ts && dts <= v->last_ts) {
        int64_t shift = v->last_ts + 1 - dts;
        dts += shift;
        pts += shift;
    }
    int64_t pts_us = pk_ts_to_us(v, pts);
    bool key = pkt->keyframe;
    bool cut = false, disc = false;
    int ret = 0;

    if (!v->started) {
        if (!key)
            goto out; /* nothing decodable before the first keyframe */
        /* The first keyframe, or the first after an input break: that one
         * starts a discontinuity (with the new configuration, if any). */
        v->started = true;
        cut = true;
        disc = pk->resuming;
        pk->resuming = false;
        if (v->reconfig_pending && (ret = pk_track_reconfigure(pk, v)) < 0)
            goto out;
        if (disc)
            v->seg_discontinuity = true;
        v->seg_start_us = pts_us;
        pk_add_cut(pk, pts_us, disc);
    } else if (v->reconfig_pending && !key) {
        goto out; /* the new configuration starts at a keyframe */
    } else if (key && (pts_us - v->seg_start_us >= pk->target_us - PK_CUT_TOLERANCE_US ||
                       v->reconfig_pending || pk->audio.reconfig_pending)) {
        ret = pk_track_cut(pk, v, dts);
        if (ret < 0)
            goto out;
        disc = v->reconfig_pending || pk->audio.reconfig_pending;
        if (v->reconfig_pending && (ret = pk_track_reconfigure(pk, v)) < 0)
            goto out;
        if (disc)
            v->seg_discontinuity = true;
        cut = true;
        v->seg_start_us = pts_us;
        pk_add_cut(pk, pts_us, disc);
    }
    if (cut)
        pk_cuthist_add(pk, pts, pk->vcut_next_msn++, disc);
    if (cut && v->output && !v->open_gop && v->vcodec == MEDIA_CODEC_H264 &&
        !h264_sample_has_idr(pkt->data, pkt->size, v->h264.nal_length_size)) {
        v->open_gop = true;
        log_info(pk->ctx, "%s: segment %" PRId64 " starts on a keyframe that is not an IDR "
                          "picture (open GOP): copied segments do not decode on their own; "
                          "the master leaves out EXT-X-INDEPENDENT-SEGMENTS",
                 v->name, pk->vcut_next_msn - 1);
    }
    v->part_arrival_us = pkt->arrival_us;
    ret = pk_track_write(pk, v, pkt->data, pkt->size, dts, pts, key);
    if (ret < 0)
        goto out;
    if (pk->have_hooks) {
        ret = pk->hooks.sample_cb(pk->hooks.opaque, pkt, dts, pts, key, cut,
                                  pk->vcut_next_msn - 1);
        if (ret < 0)
            goto out;
    }
    /* After the hook, which may restore a rung standing in on this sample. */
    if (v->output && (ret = pk_alias_feed(pk, v, pkt->data, pkt->size, dts, pts, key)) < 0)
        goto out;
    pk->have_video_dts = true;
    pk->last_video_dts_us = pk_ts_to_us(v, dts);
    if (pk->mode == PK_MODE_AV)
        ret = pk_audio_drain(pk, false);
out:
    media_packet_free(pkt);
    return ret;
}

static int pk_audio_packet(packager_t *pk, media_packet_t *pkt)
{
    pk_track_t *a = &pk->audio;
    int64_t dts_ms = pk_repair_dts(pk, a, pkt->dts_ms);
    if (pk->mode == PK_MODE_AV)
        return pk_audio_enqueue(pk, pkt, dts_ms);

    /* Audio only: cut by time. */
    int ret = 0;
    if (a->reconfig_pending) {
        ret = pk_track_cut(pk, a, INT64_MIN);
        if (ret == 0)
            ret = pk_track_reconfigure(pk, a);
    } else if (a->started) {
        int64_t ts = pk_audio_ts(a, dts_ms);
        if (pk_ts_to_us(a, ts) - a->seg_start_us >= pk->target_us - PK_CUT_TOLERANCE_US)
            ret = pk_track_cut(pk, a, ts);
    }
    a->started = true;
    if (ret == 0)
        ret = pk_audio_write(pk, pkt, dts_ms);
    media_packet_free(pkt);
    return ret;
}

static int pk_media(packager_t *pk, media_packet_t *pkt)
{
    pk_track_t *t = pkt->type == MEDIA_PACKET_VIDEO ? &pk->video : &pk->audio;
    if (!t->active) {
        if (!t->warned_inactive) {
            log_warn(pk->ctx, "%s arrived after packaging started without it; ignored",
                     t->is_video ? "video" : "audio");
            t->warned_inactive = true;
        }
        media_packet_free(pkt);
        return 0;
    }
    int ret = t->is_video ? pk_video_packet(pk, pkt) : pk_audio_packet(pk, pkt);
    if (ret < 0)
        return ret;
    return pk_commit_ready(pk, false);
}

/* ---- probing ------------------------------------------------------------ */

static int pk_start(packager_t *pk, pk_mode_t mode)
{
    pk_track_t *v = &pk->video, *a = &pk->audio;
    pk->mode = mode;
    v->active = mode == PK_MODE_AV || mode == PK_MODE_VIDEO;
    a->active = mode == PK_MODE_AV || mode == PK_MODE_AUDIO;
    char vdesc[96] = "", adesc[64] = "";
    if (v->active) {
        snprintf(v->name, sizeof(v->name), "%dp", v->h264.height);
        /* Only H.264 is copied as a rendition; other sources must be decoded. */
        v->output = v->vcodec == MEDIA_CODEC_H264;
    }
    if (pk->have_hooks) {
        pk->in_start = true;
        int ret = pk->hooks.start_cb(pk->hooks.opaque, pk, v->active ? &v->h264 : NULL,
                                     v->config, v->config_size);
        pk->in_start = false;
        if (ret < 0)
            return ret;
    }
    if (v->active && pk->part_us > 0 && pk_sps_fps(v) > 0) {
        /* Parts of a whole number of frames (ten at 30 fps for 0.333 s),
         * so that every video rendition cuts them at the same frames. */
        double fps = pk_sps_fps(v);
        long frames = lround(pk->part_us * fps / 1e6);
        if (frames < 1)
            frames = 1;
        pk->part_us = llround(frames * 1e6 / fps);
        pk->part_aligned = true;
    }
    if (v->active) {
        double fps = pk_sps_fps(v);
        if (fps > 0)
            snprintf(vdesc, sizeof(vdesc), "%dx%d %s %.3f fps", v->h264.width, v->h264.height,
                     v->codec, fps);
        else
            snprintf(vdesc, sizeof(vdesc), "%dx%d %s", v->h264.width, v->h264.height, v->codec);
        int ret = v->output ? pk_track_open_muxer(pk, v) : 0;
        if (ret < 0)
            return ret;
    }
    if (a->active) {
        snprintf(adesc, sizeof(adesc), "%s %d Hz %d ch", a->codec, a->aac.sample_rate,
                 a->aac.channels);
        int ret = pk_track_open_muxer(pk, a);
        if (ret < 0)
            return ret;
        pk->afifo = calloc(PK_AUDIO_FIFO_MAX + 1, sizeof(*pk->afifo));
        if (!pk->afifo)
            return -ENOMEM;
    }
    log_info(pk->ctx, "packaging started: %s%s%s", vdesc, v->active && a->active ? " + " : "",
             adesc);

    /* Replay what the probe held back, in arrival order. */
    while (pk->probe_head) {
        media_packet_t *p = pk->probe_head;
        pk->probe_head = p->next;
        p->next = NULL;
        pk->probe_count--;
        int ret = pk_media(pk, p);
        if (ret < 0)
            return ret;
    }
    pk->probe_tail = NULL;
    return 0;
}

static void pk_probe_reset(packager_t *pk)
{
    media_packet_list_free(pk->probe_head);
    pk->probe_head = pk->probe_tail = NULL;
    pk->probe_count = 0;
    pk->probe_have_key = pk->probe_have_audio = false;
}

/* Decides the stream's shape once enough is known (or at the end). */
static int pk_probe_decide(packager_t *pk, bool at_end)
{
    bool v_ok = pk->video.config_valid && pk->probe_have_key;
    bool a_ok = pk->audio.config_valid;
    int64_t span = pk->probe_count ? pk->probe_last_ms - pk->probe_first_ms : 0;
    bool long_wait = span >= PK_PROBE_MAX_SPAN_MS || pk->probe_count >= PK_PROBE_MAX_PACKETS;

    if (v_ok && a_ok)
        return pk_start(pk, PK_MODE_AV);
    if (v_ok && (at_end || long_wait || (span >= PK_PROBE_SPAN_MS && !pk->audio.config_size)))
        return pk_start(pk, PK_MODE_VIDEO);
    if (a_ok && pk->probe_have_audio &&
        (at_end || long_wait || (span >= PK_PROBE_SPAN_MS && !pk->video.config_size)))
        return pk_start(pk, PK_MODE_AUDIO);
    if (long_wait) {
        log_warn(pk->ctx, "no usable media after %" PRId64 " ms; dropping what was buffered",
                 span);
        pk_probe_reset(pk);
    }
    return 0;
}

static int pk_probe(packager_t *pk, media_packet_t *pkt)
{
    bool video = pkt->type == MEDIA_PACKET_VIDEO;
    if (video && !pk->probe_have_key && !pkt->keyframe) {
        media_packet_free(pkt);
        return 0;
    }
    if (video)
        pk->probe_have_key = true;
    else
        pk->probe_have_audio = true;
    if (pk->probe_count == 0)
        pk->probe_first_ms = pk->probe_last_ms = pkt->dts_ms;
    if (pkt->dts_ms > pk->probe_last_ms)
        pk->probe_last_ms = pkt->dts_ms;
    pkt->next = NULL;
    if (pk->probe_tail)
        pk->probe_tail->next = pkt;
    else
        pk->probe_head = pkt;
    pk->probe_tail = pkt;
    pk->probe_count++;
    return pk_probe_decide(pk, false);
}

/* ---- configuration ------------------------------------------------------ */

static int pk_config(packager_t *pk, media_packet_t *pkt)
{
    pk_track_t *t = pkt->type == MEDIA_PACKET_VIDEO_CONFIG ? &pk->video : &pk->audio;
    h264_config_t h = {0};
    aac_config_t a = {0};
    media_codec_t vcodec = pkt->codec == MEDIA_CODEC_NONE ? MEDIA_CODEC_H264 : pkt->codec;
    int ret = pk_parse_config(t, vcodec, pkt->data, pkt->size, &h, &a);
    if (ret < 0) {
        log_warn(pk->ctx, "ignoring a malformed %s configuration record (%zu bytes): %s",
                 t->is_video ? "video" : "audio", pkt->size, strerror(-ret));
        goto out;
    }
    const uint8_t *cur = t->reconfig_pending ? t->next_config : t->config;
    size_t cur_size = t->reconfig_pending ? t->next_config_size : t->config_size;
    if (cur && cur_size == pkt->size && memcmp(cur, pkt->data, pkt->size) == 0)
        goto out; /* repeated, as some relays do before keyframes */
    uint8_t *copy = malloc(pkt->size);
    if (!copy) {
        ret = -ENOMEM;
        goto out;
    }
    memcpy(copy, pkt->data, pkt->size);
    if (!t->mux) {
        /* Not started yet: simply the configuration to use. */
        free(t->config);
        t->config = copy;
        t->config_size = pkt->size;
        t->config_valid = true;
        t->h264 = h;
        t->aac = a;
        t->vcodec = vcodec;
        pk_track_describe(t);
    } else {
        log_warn(pk->ctx,
                 "%s codec configuration changed mid-stream; new init segment at the next cut",
                 t->is_video ? "video" : "audio");
        free(t->next_config);
        t->next_config = copy;
        t->next_config_size = pkt->size;
        t->next_vcodec = vcodec;
        t->reconfig_pending = true;
        if (t->is_video && h.height != t->h264.height)
            log_warn(pk->ctx, "picture height changed to %d; the rendition keeps the name %s",
                     h.height, t->name);
    }
out:
    media_packet_free(pkt);
    return ret == -ENOMEM ? ret : 0;
}

/* ---- public ------------------------------------------------------------- */

int packager_new(const packager_params_t *params, packager_t **out)
{
    *out = NULL;
    if (!params->store || !params->stream_id || !store_id_valid(params->stream_id))
        return -EINVAL;
    packager_t *pk = calloc(1, sizeof(*pk));
    if (!pk)
        return -ENOMEM;
    pk->store = params->store;
    snprintf(pk->stream_id, sizeof(pk->stream_id), "%s", params->stream_id);
    if (params->log_ctx)
        snprintf(pk->ctx, sizeof(pk->ctx), "%s", params->log_ctx);
    else
        snprintf(pk->ctx, sizeof(pk->ctx), "stream=%s", params->stream_id);
    double sd = params->segment_duration;
    pk->segment_duration = sd >= 0.5 && sd <= 60 ? sd : 2.0;
    pk->target_us = (int64_t)llround(pk->segment_duration * 1e6);
    pk->playlist_segments =
        params->playlist_segments >= 2 && params->playlist_segments <= 1000
            ? params->playlist_segments
            : 6;
    pk->ended_ttl_ms = params->ended_ttl_ms > 0 ? params->ended_ttl_ms : 600000;
    /* A DVR window holds about dvr / segment duration segments; the cap
     * leaves room for the short segments of discontinuities. */
    pk->dvr_window = params->dvr_window > 0 && params->dvr_window <= PK_DVR_MAX_S
                         ? params->dvr_window
                         : 0;
    pk->window_cap = (size_t)pk->playlist_segments;
    if (pk->dvr_window > 0) {
        size_t n = (size_t)ceil(pk->dvr_window / pk->segment_duration) + 8;
        if (n > pk->window_cap)
            pk->window_cap = n;
    }
    pk->window_s = pk->playlist_segments * pk->segment_duration;
    if (pk->dvr_window > pk->window_s)
        pk->window_s = pk->dvr_window;
    /* Live objects expire too, long after they could still be named, so
     * that the window of an ingest node that died without ending its stream
     * does not stay in a shared store forever. Init segments are refreshed
     * with every segment; segments leaving the window get the shorter RFC
     * 8216 grace TTL, and an ended stream the ended TTL. */
    pk->live_ttl_ms = 60000 + (int64_t)(4.0 * pk->window_s * 1000);
    if (pk->live_ttl_ms < pk->ended_ttl_ms)
        pk->live_ttl_ms = pk->ended_ttl_ms;
    pk->first_msn = params->first_msn > 0 ? params->first_msn : 0;
    if (params->part_duration > 0) {
        double part = params->part_duration;
        if (part < 0.1)
            part = 0.1;
        if (part > pk->segment_duration / 2)
            part = pk->segment_duration / 2;
        pk->part_us = llround(part * 1e6);
        /* Parts leave the playlist about PK_PART_SEGS segments after they
         * were written; a player that read an older playlist may still ask. */
        pk->part_ttl_ms = (int64_t)((PK_PART_SEGS + 3) * pk->segment_duration * 1000) + 10000;
    }
    pk->vcut_next_msn = pk->first_msn;
    pk->recorder = params->recorder;
    if (params->clock && params->clock_lock) {
        pk->clock_lock = params->clock_lock;
        pk->clock_out = params->clock;
    }
    if (params->hooks) {
        pk->hooks = *params->hooks;
        pk->have_hooks = pk->hooks.start_cb && pk->hooks.sample_cb;
    }

    pk_batch_t *b = &pk->batch;
    /* + 1: every commit also records the next segment number. */
    /* Per rendition: its segment, init segment, expiries and playlists, and
     * the playlists a raised target duration rewrites. */
    b->cap = PK_TRACKS_MAX * (pk->window_cap + 12) + 1;
    b->ops = calloc(b->cap, sizeof(*b->ops));
    b->objs = calloc(b->cap, sizeof(*b->objs));
    b->names = calloc(b->cap, sizeof(*b->names));
    b->owned = calloc(b->cap, sizeof(*b->owned));
    if (!b->ops || !b->objs || !b->names || !b->owned) {
        packager_free(pk);
        return -ENOMEM;
    }
    pk_track_t *tracks[2] = {&pk->video, &pk->audio};
    for (int i = 0; i < 2; i++) {
        pk_track_t *t = tracks[i];
        t->is_video = i == 0;
        snprintf(t->name, sizeof(t->name), "%s", t->is_video ? "video" : "audio");
        t->seg_msn = pk->first_msn;
        t->media_sequence = pk->first_msn;
        t->target_duration = (int)lround(pk->segment_duration);
        if (t->target_duration < 1)
            t->target_duration = 1;
        t->window = calloc(pk->window_cap + 1, sizeof(*t->window));
        t->render = calloc(pk->window_cap + 1, sizeof(*t->render));
        if (!t->window || !t->render) {
            packager_free(pk);
            return -ENOMEM;
        }
    }
    *out = pk;
    return 0;
}

/* Cuts every rendition's segment in progress (audio queued behind video
 * included) and commits everything: the end of an input. */
static int pk_flush_all(packager_t *pk)
{
    int ret;
    if (pk->mode == PK_MODE_AV && (ret = pk_audio_drain(pk, true)) < 0)
        return ret;
    if (pk->video.active && (ret = pk_track_cut(pk, &pk->video, INT64_MIN)) < 0)
        return ret;
    if (pk->audio.active && (ret = pk_track_cut(pk, &pk->audio, INT64_MIN)) < 0)
        return ret;
    for (size_t i = 0; i < pk->nrungs; i++) {
        pk_track_t *t = &pk->rungs[i];
        if (t->restore_msn >= 0 && (ret = pk_alias_end(pk, t)) < 0)
            return ret;
        if (pk_publishes(t) && (ret = pk_track_cut(pk, t, INT64_MIN)) < 0)
            return ret;
    }
    if ((ret = pk_commit_ready(pk, true)) < 0)
        return ret;
    return 0;
}

/* The first media packet after an input break: the new publisher's clock
 * continues the timeline just after the newest sample of either track, and
 * the wall clock of the program date-times moves on by the time it was
 * away (a discontinuity lets both jump). */
static void pk_rebase(packager_t *pk, const media_packet_t *pkt)
{
    pk->resume_pending = false;
    pk_track_t *tracks[2] = {&pk->video, &pk->audio};
    int64_t end_ms = PK_TIMELINE_START_MS;
    for (int i = 0; i < 2; i++) {
        pk_track_t *t = tracks[i];
        if (t->have_last_ms && t->last_dts_ms + pk_nominal_ms(t) > end_ms)
            end_ms = t->last_dts_ms + pk_nominal_ms(t);
    }
    pk->origin_ms = pkt->dts_ms;
    for (int i = 0; i < 2; i++)
        tracks[i]->offset_ms = end_ms - PK_TIMELINE_START_MS;
    int64_t age_ms = pkt->arrival_us > 0 ? (clock_mono_us() - pkt->arrival_us) / 1000 : 0;
    int64_t wall0 = clock_wall_ms() - (age_ms > 0 ? age_ms : 0) - (end_ms - PK_TIMELINE_START_MS);
    if (wall0 > pk->wall0_ms)
        pk->wall0_ms = wall0;
    log_info(pk->ctx, "input resumed at %.3f s of the stream timeline", end_ms / 1000.0);
}

void pk_clock(const packager_t *pk, packager_clock_t *c)
{
    /* Both tracks share one offset but after a jump repaired in one of
     * them; the video's is the picture's, which the metadata is about. */
    const pk_track_t *ref = pk->video.have_last_ms || !pk->audio.have_last_ms ? &pk->video
                                                                              : &pk->audio;
    *c = (packager_clock_t){
        .valid = pk->have_origin && !pk->resume_pending,
        .origin_ms = pk->origin_ms,
        .offset_ms = ref->offset_ms,
        .wall0_ms = pk->wall0_ms,
    };
}

/* Publishes the clock when it changed (packager_params_t.clock). */
static void pk_clock_publish(packager_t *pk)
{
    if (!pk->clock_out)
        return;
    packager_clock_t c;
    pk_clock(pk, &c);
    const packager_clock_t *o = &pk->clock_pub;
    if (c.valid == o->valid && c.origin_ms == o->origin_ms && c.offset_ms == o->offset_ms &&
        c.wall0_ms == o->wall0_ms)
        return;
    pk->clock_pub = c;
    pthread_mutex_lock(pk->clock_lock);
    *pk->clock_out = c;
    pthread_mutex_unlock(pk->clock_lock);
}

/* A timed-metadata item: into the ring every rendition's parts take it
 * from, and a date range for the playlists. Its date-time is the one the
 * API answered with when it came from there (stamped from the clock this
 * packager published), so the DATERANGE repeats it exactly. */
static int pk_timed_metadata(packager_t *pk, media_packet_t *pkt)
{
    packager_clock_t c;
    pk_clock(pk, &c);
    if (!c.valid) {
        /* In band before the first frame of its input: no time to map to. */
        log_info(pk->ctx, "timed metadata %" PRIu32 " before any media of its input; dropped",
                 pkt->meta_id);
        media_packet_free(pkt);
        return 0;
    }
    blob_t *payload = blob_new(pkt->data, pkt->size);
    if (!payload) {
        media_packet_free(pkt);
        return -ENOMEM;
    }
    int64_t media_ms, pdt_ms;
    packager_clock_map(&c, pkt->dts_ms, &media_ms, &pdt_ms);
    if (pkt->meta_pdt_ms > 0)
        pdt_ms = pkt->meta_pdt_ms;
    pk_meta_t *m = &pk->meta[pk->meta_seq % PK_META_MAX];
    blob_unref(m->payload);
    *m = (pk_meta_t){.seq = pk->meta_seq, .id = pkt->meta_id, .time_ms = media_ms,
                     .payload = payload};
    pk->meta_seq++;
    pk_daterange_add(pk, pkt->meta_id, pdt_ms, payload);
    log_info(pk->ctx, "timed metadata %" PRIu32 ": %zu bytes at %.3f s of the stream",
             pkt->meta_id, pkt->size, media_ms / 1000.0);
    media_packet_free(pkt);
    return 0;
}

static int pk_push(packager_t *pk, media_packet_t *pkt);

int packager_push(packager_t *pk, media_packet_t *pkt)
{
    int ret = pk_push(pk, pkt);
    pk_clock_publish(pk);
    return ret;
}

static int pk_push(packager_t *pk, media_packet_t *pkt)
{
    if (pk->finished) {
        media_packet_free(pkt);
        return 0;
    }
    switch (pkt->type) {
    case MEDIA_PACKET_VIDEO_CONFIG:
    case MEDIA_PACKET_AUDIO_CONFIG:
        return pk_config(pk, pkt);
    case MEDIA_PACKET_VIDEO:
    case MEDIA_PACKET_AUDIO: {
        pk_track_t *t = pkt->type == MEDIA_PACKET_VIDEO ? &pk->video : &pk->audio;
        if (!t->config_valid || pkt->size == 0) {
            media_packet_free(pkt); /* undecodable without its configuration */
            return 0;
        }
        if (!pk->have_origin) {
            pk->have_origin = true;
            pk->origin_ms = pkt->dts_ms;
            int64_t age_ms = pkt->arrival_us > 0 ? (clock_mono_us() - pkt->arrival_us) / 1000 : 0;
            pk->wall0_ms = clock_wall_ms() - (age_ms > 0 ? age_ms : 0);
        }
        if (pk->resume_pending)
            pk_rebase(pk, pkt);
        if (pk->mode == PK_MODE_PROBING)
            return pk_probe(pk, pkt);
        return pk_media(pk, pkt);
    }
    case MEDIA_PACKET_TIMED_METADATA:
        return pk_timed_metadata(pk, pkt);
    default: /* onMetaData is informational; EOS goes to packager_finish */
        media_packet_free(pkt);
        return 0;
    }
}

int packager_input_break(packager_t *pk)
{
    if (pk->finished)
        return 0;
    int ret = packager_end_input(pk);
    if (ret < 0)
        return ret;
    if (pk->mode == PK_MODE_PROBING) {
        /* Nothing was packaged: the next input is probed from scratch. */
        media_packet_list_free(pk->probe_head);
        pk->probe_head = pk->probe_tail = NULL;
        pk->probe_count = 0;
        pk->probe_have_key = pk->probe_have_audio = false;
        pk->have_origin = false;
        pk_clock_publish(pk);
        return 0;
    }
    /* Everything received so far goes out, as at the end of a stream, but
     * the playlists stay live. */
    if ((ret = pk_flush_all(pk)) < 0)
        return ret;
    /* The next input starts at its first keyframe, as a discontinuity. */
    pk->video.started = false;
    pk->audio.started = false;
    pk->video.after_break = pk->audio.after_break = true;
    for (size_t i = 0; i < pk->nrungs; i++) {
        pk->rungs[i].started = false;
        pk->rungs[i].after_break = true;
    }
    if (pk->mode == PK_MODE_AUDIO)
        pk->audio.seg_discontinuity = true; /* cut by time: no keyframe to wait for */
    pk->ncuts = 0;
    pk->resume_pending = true;
    pk->resuming = true;
    pk_clock_publish(pk);
    return 0;
}

int packager_end_input(packager_t *pk)
{
    if (pk->finished || pk->mode != PK_MODE_PROBING)
        return 0;
    return pk_probe_decide(pk, true);
}

int packager_finish(packager_t *pk)
{
    if (pk->finished)
        return 0;
    int ret = packager_end_input(pk);
    pk->finished = true;
    if (ret < 0)
        return ret;
    if (pk->mode == PK_MODE_PROBING) {
        log_info(pk->ctx, "stream ended before any usable media");
        return 0;
    }
    if ((ret = pk_flush_all(pk)) < 0)
        return ret;

    /* Final commit: playlists say the list has ended, and everything of
     * this broadcast lives for ended_ttl_ms more. */
    pk_batch_t *b = &pk->batch;
    /* An idle rung has no playlist to end: the ended master leaves it out. */
    for (size_t i = 0; i < pk->nrungs; i++)
        if (pk->rungs[i].idle)
            pk->rungs[i].enabled = false;
    pk_track_t *tracks[PK_TRACKS_MAX];
    size_t ntracks = pk_tracks(pk, tracks);
    for (size_t i = 0; i < ntracks; i++) {
        pk_track_t *t = tracks[i];
        if (t->committed == 0 || !pk_publishes(t))
            continue;
        if ((ret = pk_playlists_add(pk, t, true, pk->ended_ttl_ms, b)) < 0)
            goto fail;
        pk_batch_add(b, STORE_OP_EXPIRE, NULL, pk->ended_ttl_ms, false,
                     PK_FILE(t, pk_map_name(t)));
    }
    blob_t *master = NULL;
    if ((ret = pk_master_render(pk, true, &master)) < 0)
        goto fail;
    if (master)
        pk_batch_add(b, STORE_OP_PUT, master, pk->ended_ttl_ms, true,
                     PK_STREAM_FILE(HLS_NAME_MASTER));
    if (b->n > 0 && (ret = pk_batch_commit(pk, b)) < 0)
        return ret;
    /* The window's segments, in batches that fit the op array. */
    for (size_t i = 0; i < ntracks; i++) {
        pk_track_t *t = tracks[i];
        for (size_t j = 0; j < t->nwindow; j++) {
            if (b->n + 1 >= b->cap && (ret = pk_batch_commit(pk, b)) < 0)
                return ret;
            pk_batch_add(b, STORE_OP_EXPIRE, NULL, pk->ended_ttl_ms, false,
                         PK_SEGMENT(t, t->window[j].msn));
            /* An older init segment its first segment in the window names. */
            const char *map = t->window[j].map_uri;
            if (map[0] && strcmp(map, pk_map_name(t)) != 0 &&
                (j == 0 || strcmp(map, t->window[j - 1].map_uri) != 0))
                pk_batch_add(b, STORE_OP_EXPIRE, NULL, pk->ended_ttl_ms, false, PK_FILE(t, map));
        }
        /* The parts the last live playlists named: a player or a CDN that
         * read one of those just before the end may still ask for them. */
        for (size_t h = 0; h < PK_PART_HIST; h++) {
            for (size_t k = 0; k < t->hist[h].n; k++) {
                if (b->n == b->cap && (ret = pk_batch_commit(pk, b)) < 0)
                    return ret;
                pk_batch_add(b, STORE_OP_EXPIRE, NULL, pk->ended_ttl_ms, false,
                             PK_PART(t, t->hist[h].msn, k));
            }
        }
    }
    if (b->n > 0 && (ret = pk_batch_commit(pk, b)) < 0)
        return ret;
    log_info(pk->ctx, "stream ended after %" PRId64 " segments", packager_segments_written(pk));
    return 0;

fail:
    pk_batch_drop(b);
    return ret;
}

int64_t packager_live_ttl_ms(const packager_t *pk)
{
    return pk->live_ttl_ms;
}

int64_t packager_next_msn(const packager_t *pk)
{
    int64_t n = pk->vcut_next_msn > pk->first_msn ? pk->vcut_next_msn : pk->first_msn;
    const pk_track_t *tracks[PK_TRACKS_MAX];
    size_t ntracks = 0;
    tracks[ntracks++] = &pk->video;
    tracks[ntracks++] = &pk->audio;
    for (size_t i = 0; i < pk->nrungs; i++)
        tracks[ntracks++] = &pk->rungs[i];
    for (size_t i = 0; i < ntracks; i++) {
        const pk_track_t *t = tracks[i];
        int64_t next = t->seg_msn + (t->mux && cmaf_muxer_pending(t->mux) > 0 ? 1 : 0);
        if (next > n)
            n = next;
    }
    return n;
}

void packager_segment_lag(const packager_t *pk, int64_t *last_ms, double *sum_s, uint64_t *count)
{
    *last_ms = pk ? pk->lag_last_ms : 0;
    *sum_s = pk ? pk->lag_sum_s : 0;
    *count = pk ? pk->lag_count : 0;
}

int64_t packager_segments_written(const packager_t *pk)
{
    int64_t n = pk->video.committed > pk->audio.committed ? pk->video.committed
                                                          : pk->audio.committed;
    for (size_t i = 0; i < pk->nrungs; i++)
        if (pk->rungs[i].committed > n)
            n = pk->rungs[i].committed;
    return n;
}

/* ---- transcoded rungs ---------------------------------------------------- */

media_codec_t packager_video_codec(const packager_t *pk)
{
    return pk->video.vcodec;
}

int packager_set_source_output(packager_t *pk, const char *name)
{
    if (!pk->in_start)
        return -EINVAL;
    pk->video.output = name != NULL;
    if (name)
        snprintf(pk->video.name, sizeof(pk->video.name), "%s", name);
    return 0;
}

int packager_rung_add(packager_t *pk, const char *name, const uint8_t *avcc, size_t size,
                      int *index)
{
    *index = -1;
    if (!pk->in_start || pk->nrungs == PK_RUNGS_MAX || !name || !name[0])
        return -EINVAL;
    pk_track_t *t = &pk->rungs[pk->nrungs];
    h264_config_t h = {0};
    int ret = h264_parse_avcc(avcc, size, &h);
    if (ret < 0)
        return ret;
    memset(t, 0, sizeof(*t));
    t->restore_msn = -1;
    t->config = malloc(size);
    t->window = calloc(pk->window_cap + 1, sizeof(*t->window));
    t->render = calloc(pk->window_cap + 1, sizeof(*t->render));
    if (!t->config || !t->window || !t->render) {
        free(t->config);
        free(t->window);
        free(t->render);
        memset(t, 0, sizeof(*t));
        return -ENOMEM;
    }
    memcpy(t->config, avcc, size);
    t->config_size = size;
    t->config_valid = true;
    t->h264 = h;
    t->is_video = true;
    t->is_rung = true;
    t->active = true;
    t->output = true;
    t->enabled = true;
    snprintf(t->name, sizeof(t->name), "%s", name);
    pk_track_describe(t);
    t->seg_msn = pk->vcut_next_msn;
    t->expect_from = pk->vcut_next_msn;
    t->media_sequence = pk->vcut_next_msn;
    t->target_duration = pk->video.target_duration;
    ret = pk_track_open_muxer(pk, t);
    if (ret < 0) {
        pk_track_deinit(t);
        memset(t, 0, sizeof(*t));
        return ret;
    }
    *index = (int)pk->nrungs++;
    return 0;
}

/* The discontinuity sequence number that segment msn has (or will have)
 * in the other renditions: a publishing one's window and finished
 * segments, then the source's discontinuity cuts after them. */
static int64_t pk_disc_number(packager_t *pk, const pk_track_t *t, int64_t msn)
{
    pk_track_t *all[PK_TRACKS_MAX];
    size_t n = pk_tracks(pk, all);
    for (size_t i = 0; i < n; i++) {
        pk_track_t *u = all[i];
        if (u == t || !pk_publishes(u) || u->nwindow == 0)
            continue;
        int64_t num = u->discontinuity_sequence, last = -1;
        for (size_t j = 0; j < u->nwindow; j++) {
            num += u->window[j].discontinuity;
            last = u->window[j].msn;
        }
        for (size_t j = 0; j < u->nready && u->ready[j].msn <= msn; j++) {
            num += u->ready[j].discontinuity;
            last = u->ready[j].msn;
        }
        for (size_t j = 0; j < pk->ncuthist; j++)
            if (pk->cuthist[j].msn > last && pk->cuthist[j].msn <= msn &&
                pk->cuthist[j].discontinuity)
                num++;
        return num;
    }
    return t->discontinuity_sequence;
}

/* One sample of rung t, its own or its stand-in's (timestamps 1/90000 s). */
static int pk_rung_sample(packager_t *pk, pk_track_t *t, const uint8_t *data, size_t size,
                          int64_t dts, int64_t pts, bool key)
{
    int64_t msn = 0;
    bool disc = false;
    bool cut = key && pk_cuthist_find(pk, pts, &msn, &disc);
    /* x264 decodes each picture some pictures ahead of showing it and
     * states that delay in the pictures' own timestamps: when those are
     * far apart (an encoder that fed us in fits and starts), its first
     * decode times lie seconds before their presentation times. A segment
     * lasts as long as its decode times say and starts when its first
     * picture is shown, so such a segment would overlap the next by
     * seconds. No real reordering needs more than half a second. */
    if (dts < pts - PK_RUNG_MAX_CTS_TICKS)
        dts = pts - PK_RUNG_MAX_CTS_TICKS;
    if (t->have_ts && dts <= t->last_ts)
        dts = t->last_ts + 1; /* an encoder reopened with more delay */
    if (pts < dts)
        pts = dts;
    /* Standing in: the stand-in's configuration from its cut on (a new
     * init segment and a discontinuity when it differs). */
    if (cut && t->alias && t->alias->config &&
        (t->config_size != t->alias->config_size ||
         memcmp(t->config, t->alias->config, t->config_size) != 0)) {
        uint8_t *copy = malloc(t->alias->config_size);
        if (!copy)
            return -ENOMEM;
        memcpy(copy, t->alias->config, t->alias->config_size);
        free(t->next_config);
        t->next_config = copy;
        t->next_config_size = t->alias->config_size;
        t->next_vcodec = t->alias->vcodec;
        t->reconfig_pending = true;
    }
    int ret = 0;
    if (!t->started) {
        if (!cut || msn < t->expect_from)
            return 0; /* a rung joins at a segment start */
        t->started = true;
        if (t->reconfig_pending && (ret = pk_track_reconfigure(pk, t)) < 0)
            return ret;
    } else if (cut) {
        if ((ret = pk_track_cut(pk, t, dts)) < 0)
            return ret;
        if (t->reconfig_pending && (ret = pk_track_reconfigure(pk, t)) < 0)
            return ret;
    }
    if (cut) {
        if (msn < t->seg_msn)
            log_warn(pk->ctx, "%s: segment %" PRId64 " started again; numbers kept", t->name, msn);
        else
            t->seg_msn = msn;
        if (disc)
            t->seg_discontinuity = true;
    }
    if (t->wake_fresh) {
        /* Back from idle: a fresh window whose first segment is numbered
         * as the other renditions' (no tag: nothing precedes it). */
        t->wake_fresh = false;
        t->discontinuity_sequence = pk_disc_number(pk, t, t->seg_msn);
        t->seg_discontinuity = false;
    }
    ret = pk_track_write(pk, t, data, size, dts, pts, key);
    if (ret < 0)
        return ret;
    return pk_commit_ready(pk, false);
}

/* Rung t goes on with its own samples: the ones held since its restore,
 * then whatever its encoder gives. */
static int pk_alias_end(packager_t *pk, pk_track_t *t)
{
    t->alias = NULL;
    t->restore_msn = -1;
    if (!t->reconfig_pending && t->own_config &&
        (t->own_config_size != t->config_size ||
         memcmp(t->own_config, t->config, t->config_size) != 0)) {
        free(t->next_config);
        t->next_config = t->own_config;
        t->next_config_size = t->own_config_size;
        t->next_vcodec = MEDIA_CODEC_H264;
        t->reconfig_pending = true;
        t->own_config = NULL;
    }
    free(t->own_config);
    t->own_config = NULL;
    int ret = 0;
    while (t->held_head) {
        pk_held_t *h = t->held_head;
        t->held_head = h->next;
        t->nheld--;
        if (ret == 0)
            ret = pk_rung_sample(pk, t, h->data, h->size, h->dts, h->pts, h->key);
        free(h);
    }
    t->held_tail = NULL;
    return ret;
}

/* A sample of video rendition s also goes to every rung that s stands in
 * for; a rung being restored takes its own from the cut it comes back at. */
static int pk_alias_feed(packager_t *pk, pk_track_t *s, const uint8_t *data, size_t size,
                         int64_t dts, int64_t pts, bool key)
{
    for (size_t i = 0; i < pk->nrungs; i++) {
        pk_track_t *t = &pk->rungs[i];
        if (t->alias != s)
            continue;
        int64_t msn = 0;
        bool disc = false;
        int ret;
        if (t->restore_msn >= 0 && key && pk_cuthist_find(pk, pts, &msn, &disc) &&
            msn >= t->restore_msn)
            ret = pk_alias_end(pk, t);
        else
            ret = pk_rung_sample(pk, t, data, size, dts, pts, key);
        if (ret < 0)
            return ret;
    }
    return 0;
}

/* Holds a restored rung's own sample until its stand-in reaches the cut. */
static int pk_hold(packager_t *pk, pk_track_t *t, const uint8_t *data, size_t size, int64_t dts,
                   int64_t pts, bool key)
{
    if (t->nheld >= PK_HELD_MAX) {
        log_warn(pk->ctx, "%s: its stand-in never reached segment %" PRId64
                          "; back on its own samples now", t->name, t->restore_msn);
        int ret = pk_alias_end(pk, t);
        return ret < 0 ? ret : pk_rung_sample(pk, t, data, size, dts, pts, key);
    }
    pk_held_t *h = malloc(sizeof(*h) + size);
    if (!h)
        return -ENOMEM;
    *h = (pk_held_t){.dts = dts, .pts = pts, .key = key, .size = size};
    memcpy(h->data, data, size);
    if (t->held_tail)
        t->held_tail->next = h;
    else
        t->held_head = h;
    t->held_tail = h;
    t->nheld++;
    return 0;
}

int packager_rung_push(packager_t *pk, int index, const uint8_t *data, size_t size, int64_t dts,
                       int64_t pts, bool key)
{
    if (index < 0 || (size_t)index >= pk->nrungs || size == 0)
        return -EINVAL;
    pk_track_t *t = &pk->rungs[index];
    if (pk->finished)
        return 0;
    if (t->restore_msn >= 0)
        return pk_hold(pk, t, data, size, dts, pts, key);
    if (!t->enabled || t->alias)
        return 0;
    int ret = pk_rung_sample(pk, t, data, size, dts, pts, key);
    if (ret < 0)
        return ret;
    return pk_alias_feed(pk, t, data, size, dts, pts, key);
}

int packager_rung_reconfigure(packager_t *pk, int index, const uint8_t *avcc, size_t size)
{
    if (index < 0 || (size_t)index >= pk->nrungs)
        return -EINVAL;
    pk_track_t *t = &pk->rungs[index];
    uint8_t *copy = malloc(size);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, avcc, size);
    free(t->next_config);
    t->next_config = copy;
    t->next_config_size = size;
    t->reconfig_pending = true;
    return 0;
}

/* The video rendition that stands in for rung t: the largest one smaller
 * than t that has its own samples, else the smallest larger one. */
static pk_track_t *pk_stand_in(packager_t *pk, const pk_track_t *t)
{
    pk_track_t *cand[PK_TRACKS_MAX], *below = NULL, *above = NULL;
    size_t n = 0;
    if (pk->video.active && pk->video.output && pk->video.config_valid)
        cand[n++] = &pk->video;
    for (size_t i = 0; i < pk->nrungs; i++) {
        pk_track_t *r = &pk->rungs[i];
        if (r != t && r->enabled && !r->alias && r->restore_msn < 0)
            cand[n++] = r;
    }
    int h = t->h264.height;
    for (size_t i = 0; i < n; i++) {
        int ch = cand[i]->h264.height;
        if (ch <= h && (!below || ch > below->h264.height))
            below = cand[i];
        if (ch > h && (!above || ch < above->h264.height))
            above = cand[i];
    }
    return below ? below : above;
}

/* Rung t takes stand-in s's samples from segment msn on. Its segment in
 * progress ends here: everything of it came before. */
static int pk_alias_start(packager_t *pk, pk_track_t *t, pk_track_t *s, int64_t msn)
{
    int ret = pk_track_cut(pk, t, INT64_MIN);
    if (ret < 0)
        return ret;
    if (!t->own_config) {
        t->own_config = malloc(t->config_size);
        if (!t->own_config)
            return -ENOMEM;
        memcpy(t->own_config, t->config, t->config_size);
        t->own_config_size = t->config_size;
    }
    t->alias = s;
    t->started = false; /* from the stand-in's cut for msn on */
    t->expect_from = msn;
    log_info(pk->ctx, "%s: its playlist goes on with the pictures of %s from segment %" PRId64,
             t->name, s->name, msn);
    return 0;
}

int packager_rung_set_enabled(packager_t *pk, int index, bool enabled, int64_t from_msn)
{
    if (index < 0 || (size_t)index >= pk->nrungs)
        return -EINVAL;
    pk_track_t *t = &pk->rungs[index];
    if (t->enabled == enabled)
        return 0;
    int ret = 0;
    if (!enabled) {
        if (t->restore_msn >= 0 && (ret = pk_alias_end(pk, t)) < 0)
            return ret;
        t->enabled = false;
        pk_track_t *s = pk_stand_in(pk, t);
        if (!s) {
            /* No other video rendition: the playlist is withdrawn. */
            if ((ret = pk_track_cut(pk, t, INT64_MIN)) < 0)
                return ret;
            t->withdraw_pending = true;
            return pk_commit_ready(pk, false);
        }
        if ((ret = pk_alias_start(pk, t, s, from_msn)) < 0)
            return ret;
        /* Rungs t stood in for move on to t's own stand-in. */
        for (size_t i = 0; i < pk->nrungs; i++) {
            pk_track_t *u = &pk->rungs[i];
            if (u->alias != t)
                continue;
            if (u->restore_msn >= 0 && (ret = pk_alias_end(pk, u)) < 0)
                return ret;
            if (u->alias == t && (ret = pk_alias_start(pk, u, s, from_msn)) < 0)
                return ret;
        }
        return pk_commit_ready(pk, false);
    }
    t->enabled = true;
    if (t->alias) {
        /* Its playlist went on without a break: its own samples follow the
         * stand-in's last ones, from the stand-in's cut for from_msn. */
        t->restore_msn = from_msn;
        return 0;
    }
    /* Back with a fresh window: the numbers it skipped were never written,
     * so what is left of the old window cannot stay in the playlist. */
    if (t->withdraw_pending || t->nwindow > 0) {
        pk_rung_withdraw(pk, t, &pk->batch);
        if ((ret = pk_batch_commit(pk, &pk->batch)) < 0)
            return ret;
    }
    t->withdraw_pending = false;
    t->started = false;
    t->committed = 0; /* the master names it again once it has a segment */
    t->expect_from = from_msn;
    t->seg_msn = from_msn;
    t->media_sequence = from_msn;
    t->seg_discontinuity = true;
    /* The time it was away is not a frame: its first sample takes no
     * duration from it (see pk_track_write). */
    t->after_break = true;
    return 0;
}

int packager_rung_set_idle(packager_t *pk, int index, bool idle, int64_t from_msn,
                           const uint8_t *avcc, size_t avcc_size)
{
    if (index < 0 || (size_t)index >= pk->nrungs)
        return -EINVAL;
    pk_track_t *t = &pk->rungs[index];
    if (t->idle == idle || !t->enabled || t->alias)
        return 0; /* overload protection's business while dropped */
    int ret;
    if (idle) {
        if ((ret = pk_track_cut(pk, t, INT64_MIN)) < 0)
            return ret;
        t->idle = true;
        t->wake_fresh = false;
        t->withdraw_pending = true; /* once its last segment is out */
        log_info(pk->ctx, "%s: idle after segment %" PRId64 "; its playlist is withdrawn, the "
                          "master keeps it", t->name, from_msn - 1);
        return pk_commit_ready(pk, false);
    }
    if (t->withdraw_pending || t->nwindow > 0) {
        pk_rung_withdraw(pk, t, &pk->batch);
        if ((ret = pk_batch_commit(pk, &pk->batch)) < 0)
            return ret;
    }
    if (avcc && (avcc_size != t->config_size || memcmp(avcc, t->config, avcc_size) != 0) &&
        (ret = packager_rung_reconfigure(pk, index, avcc, avcc_size)) < 0)
        return ret;
    t->idle = false;
    t->withdraw_pending = false;
    t->started = false;
    t->expect_from = from_msn;
    t->seg_msn = from_msn;
    t->media_sequence = from_msn;
    t->seg_discontinuity = false;
    t->wake_fresh = true;
    /* The time it was idle is not a frame (see pk_track_write). */
    t->after_break = true;
    log_info(pk->ctx, "%s: asked for; back from segment %" PRId64, t->name, from_msn);
    return 0;
}

double packager_rung_bitrate(const packager_t *pk, int index)
{
    if (index == -1)
        return pk_avg_bps(&pk->video);
    if (index < 0 || (size_t)index >= pk->nrungs)
        return 0;
    return pk_avg_bps(&pk->rungs[index]);
}

void packager_free(packager_t *pk)
{
    if (!pk)
        return;
    media_packet_list_free(pk->probe_head);
    for (size_t i = 0; i < pk->afifo_len; i++)
        media_packet_free(pk->afifo[i].pkt);
    free(pk->afifo);
    pk_track_deinit(&pk->video);
    pk_track_deinit(&pk->audio);
    for (size_t i = 0; i < pk->nrungs; i++)
        pk_track_deinit(&pk->rungs[i]);
    pk_batch_drop(&pk->batch);
    for (size_t i = 0; i < PK_META_MAX; i++)
        blob_unref(pk->meta[i].payload);
    pk_dateranges_free(pk);
    if (pk->clock_out) {
        pthread_mutex_lock(pk->clock_lock);
        pk->clock_out->valid = false;
        pthread_mutex_unlock(pk->clock_lock);
    }
    free(pk->batch.ops);
    free(pk->batch.objs);
    free(pk->batch.names);
    free(pk->batch.owned);
    free(pk);
}
