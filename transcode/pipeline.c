/*
 * Pipeline: one broadcast's ladder, run by its transcode worker thread.
 *
 * Packets go to the packager, which keeps the decisions it always made
 * (probing, timestamp repair, where segments start). Its start hook is where
 * the ladder is laid out for the source that arrived: rungs taller than the
 * source are skipped, sizes keep the aspect ratio (ladder.c), a rung of the
 * source's own size is the source itself when --passthrough auto, and an
 * encoder is opened per transcoded rung. Its sample hook receives every
 * source video sample with repaired timestamps: the sample is decoded once,
 * and every decoded picture is scaled and encoded for each rung (rung.c),
 * as an IDR when its pts is one that the packager chose to start a segment.
 * The encoded samples go back to the packager's rung tracks, which cut on
 * exactly those IDRs, so segment N of every rendition starts at the same
 * presentation time.
 *
 * Overload protection: the worker's busy time (time spent processing, not
 * waiting for packets) is compared with the media time it processed at
 * every segment start. Slower than real time, or a growing queue: step the
 * x264 preset faster (encoders are reopened on the IDR, with SPS/PPS
 * pinned), and when the preset is the fastest, drop the most expensive
 * transcoded rung from new segments. With headroom (predicted from a rough
 * cost model), the rung comes back first, then the preset. The policy is
 * overload.c's (a pure decision); here are its measurements and effects.
 * Every step is logged and shown in the status snapshot.
 *
 * Closed captions (CEA-608/708 in SEI, ATSC A/53): the decoder attaches
 * them to each picture, rung.c hands them to x264 with the scaled picture,
 * and the copied source keeps its SEI as it came. The first picture with
 * them (or, with nothing decoded, the first copied sample whose SEI has
 * them) tells the packager to declare them in the master.
 *
 * Thumbnails (thumbnail.c): the picture that starts each segment also
 * becomes the stream's thumbnail.jpg: the decoded source picture when
 * there is a decoder, else the raw keyframe, which thumbnail.c decodes.
 *
 * Ownership: the pipeline owns its packager, decoder, encoders, audio
 * transcoder and thumbnail maker. The status snapshot belongs to the
 * transcode manager; it is written here under the manager's lock.
 */
#include "pipeline_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <stdatomic.h>

#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>

#include "audio_internal.h"
#include "clock.h"
#include "codec_config.h"
#include "failure_internal.h"
#include "ladder_internal.h"
#include "log.h"
#include "overload_internal.h"
#include "packager_internal.h"
#include "rung_internal.h"
#include "thumbnail.h"

#define PL_CUTS_MAX 64
#define PL_CUT_MATCH_TICKS 90   /* 1 ms */

typedef struct pl_rung {
    transcode_rung_spec_t spec;
    int width, height;
    bool passthrough;
    int base_preset;      /* configured preset index of this rung */
    int cur_preset;
    rung_encoder_t *enc;  /* NULL: passthrough or dropped */
    int threads;          /* x264 threads of enc */
    int pk_index;
    bool dropped;
    bool idle;            /* rungs on demand: nobody asked for it; not encoded */
    int64_t active_since_ms; /* wall clock it (last) started encoding */
    uint64_t wakes;
    int64_t busy_us;      /* time in this rung's scale + encode calls */
    int64_t frames;
    double speed;
} pl_rung_t;

typedef struct pl_cut {
    int64_t pts;
    int64_t msn;
} pl_cut_t;

struct pipeline {
    packager_t *pk;
    const transcode_params_t *tp;
    char ctx[96];
    char stream_id[STORE_ID_MAX];
    int64_t rung_idle_ms; /* rungs on demand; 0: every rung always encodes */
    int threads;
    pthread_mutex_t *status_lock;
    transcode_stream_status_t *status;

    transcode_rung_spec_t specs[TRANSCODE_RUNGS_MAX];
    size_t nspecs;
    pl_rung_t rungs[TRANSCODE_RUNGS_MAX];
    size_t nrungs;
    int ntranscoded;
    bool started;
    h264_config_t src;
    double fps;
    int fps_num, fps_den;

    /* Decoder and the source configuration it was opened with. */
    AVCodecContext *dec;
    AVPacket *dpkt;
    AVFrame *dframe;
    uint8_t *dec_avcc;
    size_t dec_avcc_size;
    uint8_t *new_avcc; /* latest configuration record seen */
    size_t new_avcc_size;
    int decode_failures; /* packets refused in a row (a decoder gone bad) */

    pl_cut_t cuts[PL_CUTS_MAX]; /* segment starts whose pictures are not decoded yet */
    size_t ncuts;

    audio_transcoder_t *audio;
    thumbnail_t *thumb;
    output_set_t *outputs;          /* simulcast (borrowed); NULL: none */
    const packager_clock_t *clock;  /* the packager's (written on this thread); NULL: none */

    /* Overload protection: the decider's state, and what it measures. */
    overload_state_t ov;
    int64_t busy_us;
    int64_t call_start_us;
    int64_t lag_ms;
    uint64_t src_frames; /* source video samples seen (passthrough rungs' frames) */
    bool have_pic_pts;
    int64_t last_pic_pts; /* the newest decoded picture given to the encoders */
    bool captions;        /* closed captions seen in the source */
};

/* ---- status ------------------------------------------------------------ */

static transcode_health_t pl_health(const pipeline_t *pl)
{
    double seg_ms = pl->tp->segment_duration * 1000;
    const overload_state_t *ov = &pl->ov;
    if (ov->ndropped > 0 || (ov->have_speed && ov->speed < OVERLOAD_BEHIND_SPEED) ||
        pl->lag_ms > 2 * seg_ms)
        return TRANSCODE_HEALTH_POOR;
    if (ov->steps > 0 ||
        (ov->have_speed && pl->ntranscoded > 0 && ov->speed < OVERLOAD_RESTORE_SPEED))
        return TRANSCODE_HEALTH_FAIR;
    return TRANSCODE_HEALTH_GOOD;
}

static void pl_publish_status(pipeline_t *pl, bool live)
{
    transcode_stream_status_t s;
    memset(&s, 0, sizeof(s));
    s.live = live;
    s.width = pl->src.width;
    s.height = pl->src.height;
    s.fps = pl->fps;
    s.speed = pl->ov.have_speed ? pl->ov.speed : 0;
    s.lag_ms = pl->lag_ms;
    int cur = -1;
    for (size_t i = 0; i < pl->nrungs; i++)
        if (!pl->rungs[i].passthrough && pl->rungs[i].cur_preset > cur)
            cur = pl->rungs[i].cur_preset;
    snprintf(s.preset, sizeof(s.preset), "%s",
             cur >= 0 ? ladder_preset_name(cur) : (pl->tp->preset ? pl->tp->preset : ""));
    s.preset_steps = pl->ov.steps;
    s.dropped_rungs = pl->ov.ndropped;
    s.health = pl_health(pl);
    s.segments = (uint64_t)packager_segments_written(pl->pk);
    packager_segment_lag(pl->pk, &s.segment_lag_ms, &s.segment_lag_sum_s, &s.segment_lag_count);
    for (size_t i = 0; i < pl->nrungs && i < TRANSCODE_RUNGS_MAX; i++) {
        const pl_rung_t *r = &pl->rungs[i];
        transcode_rendition_status_t *o = &s.renditions[s.nrenditions++];
        snprintf(o->name, sizeof(o->name), "%s", r->spec.name);
        o->width = r->width;
        o->height = r->height;
        o->passthrough = r->passthrough;
        o->dropped = r->dropped;
        o->target_kbps = r->passthrough ? 0 : r->spec.bitrate_kbps;
        o->bitrate_kbps = (int)lround(packager_rung_bitrate(pl->pk, r->pk_index) / 1000);
        o->encoder_speed = r->passthrough ? 0 : r->speed;
        o->frames = r->passthrough ? pl->src_frames : (uint64_t)r->frames;
        o->idle = r->idle;
        o->wakes = r->wakes;
    }
    if (pl->status_lock) {
        pthread_mutex_lock(pl->status_lock);
        /* The worker's own fields (reconnects, restarts) are not ours. */
        s.reconnecting = pl->status->reconnecting;
        s.reconnects = pl->status->reconnects;
        memcpy(s.ladder_source, pl->status->ladder_source, sizeof(s.ladder_source));
        s.restarts = pl->status->restarts;
        memcpy(s.last_error, pl->status->last_error, sizeof(s.last_error));
        *pl->status = s;
        pthread_mutex_unlock(pl->status_lock);
    }
}

/* ---- simulcast ---------------------------------------------------------- */

/* A rung's avcC for its outputs (output.h); the same bytes again change
 * nothing there, new ones start a new stream. */
static void pl_output_config(pipeline_t *pl, const pl_rung_t *r, const uint8_t *avcc,
                             size_t size)
{
    if (!pl->outputs)
        return;
    media_packet_t *c = media_packet_new(MEDIA_PACKET_VIDEO_CONFIG, size);
    if (!c)
        return;
    c->codec = MEDIA_CODEC_H264;
    memcpy(c->data, avcc, size);
    output_set_push_rung(pl->outputs, r->spec.name, c);
    media_packet_free(c);
}

/* One encoded sample of a rung for its outputs, in ms on the packager's
 * timeline (the shared audio is mapped onto it too: pl_output_audio). */
static void pl_output_sample(pipeline_t *pl, const pl_rung_t *r, const rung_sample_t *smp)
{
    if (!pl->outputs || !output_set_wants(pl->outputs, r->spec.name))
        return;
    media_packet_t *c = media_packet_new(MEDIA_PACKET_VIDEO, smp->size);
    if (!c)
        return;
    c->codec = MEDIA_CODEC_H264;
    c->dts_ms = smp->dts / 90;
    c->pts_ms = smp->pts / 90;
    c->keyframe = smp->key;
    memcpy(c->data, smp->data, smp->size);
    output_set_push_rung(pl->outputs, r->spec.name, c);
    media_packet_free(c);
}

/* The shared audio rendition for the outputs of transcoded rungs: its
 * packets carry the publisher's clock, mapped here onto the packager's
 * timeline that the rungs' samples are on (no media yet: not sent). */
static void pl_output_audio(pipeline_t *pl, media_packet_t *p)
{
    if (!pl->outputs)
        return;
    if (p->type == MEDIA_PACKET_AUDIO_CONFIG) {
        output_set_push_audio(pl->outputs, p);
        return;
    }
    if (!pl->clock || !pl->clock->valid || !output_set_wants(pl->outputs, NULL))
        return;
    int64_t dts = 0, pts = 0, pdt;
    packager_clock_map(pl->clock, p->dts_ms, &dts, &pdt);
    packager_clock_map(pl->clock, p->pts_ms, &pts, &pdt);
    int64_t in_dts = p->dts_ms, in_pts = p->pts_ms;
    p->dts_ms = dts;
    p->pts_ms = pts;
    output_set_push_audio(pl->outputs, p);
    p->dts_ms = in_dts;
    p->pts_ms = in_pts;
}

/* ---- encoders ---------------------------------------------------------- */

/* x264 threads for r: the stream's threads for the largest rung still
 * encoded and any rung of at least a quarter of its area, one for the
 * smaller ones (ladder_rung_threads). */
static int pl_rung_threads(const pipeline_t *pl, const pl_rung_t *r)
{
    int top_w = 0, top_h = 0;
    for (size_t i = 0; i < pl->nrungs; i++) {
        const pl_rung_t *o = &pl->rungs[i];
        if (o->passthrough || ((o->dropped || o->idle) && o != r))
            continue;
        if ((double)o->width * o->height > (double)top_w * top_h) {
            top_w = o->width;
            top_h = o->height;
        }
    }
    return ladder_rung_threads(pl->threads, r->width, r->height, top_w, top_h);
}

static int pl_rung_open(pipeline_t *pl, pl_rung_t *r, const uint8_t **avcc, size_t *avcc_size)
{
    r->threads = pl_rung_threads(pl, r);
    rung_encoder_params_t ep = {
        .name = r->spec.name,
        .width = r->width,
        .height = r->height,
        .bitrate_kbps = r->spec.bitrate_kbps,
        .maxrate_kbps = r->spec.maxrate_kbps,
        .profile = r->spec.profile[0] ? r->spec.profile : "high",
        .preset = ladder_preset_name(r->cur_preset),
        .pin_preset = ladder_preset_name(r->base_preset),
        .fps_num = pl->fps_num,
        .fps_den = pl->fps_den,
        .threads = r->threads,
        .log_ctx = pl->ctx,
    };
    int ret = rung_encoder_open(&ep, &r->enc);
    if (ret < 0)
        return ret;
    rung_encoder_avcc(r->enc, avcc, avcc_size);
    pl_output_config(pl, r, *avcc, *avcc_size);
    return 0;
}

/* Simulated encoding cost (the debug option): sleeps in proportion to the
 * rung's area and its preset's cost relative to the configured one. */
static void pl_debug_slow(const pipeline_t *pl, const pl_rung_t *r)
{
    if (pl->tp->debug_slow_encode_ms <= 0)
        return;
    double us = pl->tp->debug_slow_encode_ms * 1000.0 * ((double)r->width * r->height) /
                (1920.0 * 1080.0) * ladder_preset_cost(r->cur_preset) /
                ladder_preset_cost(r->base_preset);
    struct timespec ts = {.tv_sec = (time_t)(us / 1e6),
                          .tv_nsec = (long)fmod(us * 1000.0, 1e9)};
    nanosleep(&ts, NULL);
}

/* The test aid --debug-fail-encode: true for the Nth picture given to any
 * transcoded rung of the process, once. */
static bool pl_debug_fail(const pipeline_t *pl)
{
    static atomic_long seen;
    long n = pl->tp->debug_fail_encode;
    return n > 0 && atomic_fetch_add(&seen, 1) + 1 == n;
}

static int pl_rung_drain(pipeline_t *pl, pl_rung_t *r)
{
    for (;;) {
        rung_sample_t smp;
        int ret = rung_encoder_receive(r->enc, &smp);
        if (ret == -EAGAIN || ret == -ENODATA)
            return 0;
        if (ret < 0)
            return ret;
        pl_output_sample(pl, r, &smp);
        ret = packager_rung_push(pl->pk, r->pk_index, smp.data, smp.size, smp.dts, smp.pts,
                                 smp.key);
        if (ret < 0)
            return ret;
    }
}

/* Pushes everything still inside the rung's encoder and closes it. */
static int pl_rung_close(pipeline_t *pl, pl_rung_t *r)
{
    if (!r->enc)
        return 0;
    int ret = rung_encoder_flush(r->enc);
    if (ret == 0)
        ret = pl_rung_drain(pl, r);
    rung_encoder_free(r->enc);
    r->enc = NULL;
    return ret;
}

/* A fresh encoder for a rung: the old one's pictures are pushed out first
 * (flush), or dropped with it when it failed. A changed avcC means a new
 * init segment from the next segment on. */
static int pl_rung_renew(pipeline_t *pl, pl_rung_t *r, bool flush)
{
    const uint8_t *old = NULL;
    size_t old_size = 0;
    uint8_t keep[1024];
    if (r->enc) {
        rung_encoder_avcc(r->enc, &old, &old_size);
        if (old_size > sizeof(keep))
            old_size = sizeof(keep);
        memcpy(keep, old, old_size);
        old = keep;
    }
    int ret = 0;
    if (flush) {
        ret = pl_rung_close(pl, r);
    } else {
        rung_encoder_free(r->enc);
        r->enc = NULL;
    }
    if (ret < 0)
        return ret;
    const uint8_t *avcc;
    size_t size;
    if ((ret = pl_rung_open(pl, r, &avcc, &size)) < 0)
        return ret;
    if (old && (size != old_size || memcmp(avcc, old, size) != 0)) {
        log_info(pl->ctx, "rung %s: new SPS/PPS at preset %s; new init segment", r->spec.name,
                 ladder_preset_name(r->cur_preset));
        ret = packager_rung_reconfigure(pl->pk, r->pk_index, avcc, size);
    }
    return ret;
}

/* Reopens a rung's encoder (new preset, or back from a drop) on the
 * picture about to be sent, which will be an IDR. */
static int pl_rung_reopen(pipeline_t *pl, pl_rung_t *r)
{
    return pl_rung_renew(pl, r, true);
}

/* ---- overload protection ----------------------------------------------- */

/* Each rung's own speed: its media time over its time in scale + encode. */
static void pl_rung_speeds(pipeline_t *pl)
{
    for (size_t i = 0; i < pl->nrungs; i++) {
        pl_rung_t *r = &pl->rungs[i];
        if (r->busy_us > 0 && r->frames > 0 && pl->fps > 0)
            r->speed = (r->frames / pl->fps) / (r->busy_us / 1e6);
    }
}

/* After a rung left or came back: reopens (on this segment's IDR) the
 * encoders whose thread share changed, so that the largest rung left keeps
 * the frame threads that let encoding overlap. */
static int pl_rebalance_threads(pipeline_t *pl)
{
    for (size_t i = 0; i < pl->nrungs; i++) {
        pl_rung_t *r = &pl->rungs[i];
        if (r->enc && pl_rung_threads(pl, r) != r->threads) {
            int ret = pl_rung_reopen(pl, r);
            if (ret < 0)
                return ret;
        }
    }
    return 0;
}

/* Moves every transcoded rung to its configured preset less the decider's
 * steps (pl->ov.steps, already counted), reopening the live encoders. */
static int pl_step_preset(pipeline_t *pl, bool faster, const char *why)
{
    char from[TRANSCODE_PRESET_MAX] = "", to[TRANSCODE_PRESET_MAX] = "";
    for (size_t i = 0; i < pl->nrungs; i++) {
        pl_rung_t *r = &pl->rungs[i];
        if (r->passthrough)
            continue;
        int p = r->base_preset - pl->ov.steps;
        if (p < 0)
            p = 0;
        if (p == r->cur_preset)
            continue;
        if (!from[0])
            snprintf(from, sizeof(from), "%s", ladder_preset_name(r->cur_preset));
        r->cur_preset = p;
        snprintf(to, sizeof(to), "%s", ladder_preset_name(p));
        if (!r->dropped && !r->idle) {
            int ret = pl_rung_reopen(pl, r);
            if (ret < 0)
                return ret;
        }
    }
    if (faster)
        log_warn(pl->ctx, "overload: %s; x264 preset %s -> %s", why, from, to);
    else
        log_info(pl->ctx, "headroom: %s; x264 preset %s -> %s", why, from, to);
    return 0;
}

static int pl_dropped_rungs(const pipeline_t *pl)
{
    int n = 0;
    for (size_t i = 0; i < pl->nrungs; i++)
        n += pl->rungs[i].dropped;
    return n;
}

/* Rung r leaves the ladder from segment msn on. */
static int pl_drop_rung(pipeline_t *pl, pl_rung_t *r, int64_t msn, const char *why)
{
    log_warn(pl->ctx, "overload: %s; dropping rung %s from segment %" PRId64
             " on (it leaves the master playlist; players that have it get "
             "another rung's pictures in it)", why, r->spec.name, msn);
    int ret = pl_rung_close(pl, r);
    if (ret == 0)
        ret = packager_rung_set_enabled(pl->pk, r->pk_index, false, msn);
    r->dropped = true;
    pl->ntranscoded--;
    if (ret == 0)
        ret = pl_rebalance_threads(pl);
    return ret;
}

/* Rung r comes back from segment msn on. */
static int pl_restore_rung(pipeline_t *pl, pl_rung_t *r, int64_t msn, const char *why)
{
    log_info(pl->ctx, "headroom: %s; restoring rung %s from segment %" PRId64, why,
             r->spec.name, msn);
    r->dropped = false;
    pl->ntranscoded++;
    int ret = pl_rung_reopen(pl, r);
    if (ret == 0)
        ret = packager_rung_set_enabled(pl->pk, r->pk_index, true, msn);
    if (ret == 0) {
        /* Its playlist carried another rung's pictures: its own
         * configuration (of the preset it has now) again. */
        const uint8_t *avcc;
        size_t size;
        rung_encoder_avcc(r->enc, &avcc, &size);
        ret = packager_rung_reconfigure(pl->pk, r->pk_index, avcc, size);
    }
    if (ret == 0)
        ret = pl_rebalance_threads(pl);
    return ret;
}

/* At the picture that starts segment msn, before it is encoded: measures,
 * asks overload_decide, applies its action. */
static int pl_overload_check(pipeline_t *pl, int64_t pts, int64_t msn)
{
    overload_rung_t rungs[TRANSCODE_RUNGS_MAX];
    for (size_t i = 0; i < pl->nrungs; i++) {
        const pl_rung_t *r = &pl->rungs[i];
        /* An idle rung costs nothing and is not dropped (it is not
         * encoded anyway): to the decider it is as a copied one. */
        rungs[i] = (overload_rung_t){.width = r->width, .height = r->height,
                                     .passthrough = r->passthrough || r->idle,
                                     .dropped = r->dropped,
                                     .preset = r->cur_preset, .base_preset = r->base_preset};
    }
    overload_input_t in = {
        .pts = pts,
        .busy_us = pl->busy_us + (clock_mono_us() - pl->call_start_us),
        .msn = msn,
        .lag_ms = pl->lag_ms,
        .segment_duration = pl->tp->segment_duration,
        .protection = !pl->tp->no_overload_protection,
        .src_width = pl->src.width,
        .src_height = pl->src.height,
        .rungs = rungs,
        .nrungs = pl->nrungs,
    };
    int steps = pl->ov.steps, ndropped = pl->ov.ndropped; /* before the decision */
    overload_decision_t d;
    overload_decide(&pl->ov, &in, &d);
    if (!d.evaluated)
        return 0;
    pl_rung_speeds(pl);
    char why[128];
    snprintf(why, sizeof(why), "speed %.2fx real time, queue %" PRId64 " ms", pl->ov.speed,
             pl->lag_ms);
    log_debug(pl->ctx, "segment %" PRId64 ": %s, preset steps %d, rungs dropped %d", msn, why,
              steps, ndropped);
    /* A rung the decider names is one of ours, transcoded, and in the
     * state the action needs: else the packager would be told to drop
     * (or take back) the wrong track. */
    SLUICE_ASSERT((d.action != OVERLOAD_DROP && d.action != OVERLOAD_RESTORE) ||
                  (d.rung >= 0 && (size_t)d.rung < pl->nrungs &&
                   !pl->rungs[d.rung].passthrough && !pl->rungs[d.rung].idle &&
                   pl->rungs[d.rung].dropped == (d.action == OVERLOAD_RESTORE)));
    int ret = 0;
    switch (d.action) {
    case OVERLOAD_NONE:
        break;
    case OVERLOAD_STEP_FASTER:
    case OVERLOAD_STEP_SLOWER:
        ret = pl_step_preset(pl, d.action == OVERLOAD_STEP_FASTER, why);
        break;
    case OVERLOAD_DROP:
        ret = pl_drop_rung(pl, &pl->rungs[d.rung], msn, why);
        break;
    case OVERLOAD_RESTORE:
        ret = pl_restore_rung(pl, &pl->rungs[d.rung], msn, why);
        break;
    case OVERLOAD_FLOOR:
        log_warn(pl->ctx, "overload: %s; nothing left to shed", why);
        break;
    }
    /* The decider's drop order and the rungs' flags move together, failed
     * effects included: a restore takes the rung the order names. */
    SLUICE_ASSERT(pl->ov.ndropped == pl_dropped_rungs(pl));
    pl_publish_status(pl, true);
    return ret;
}

/* ---- rungs on demand ---------------------------------------------------- */

/* Rung r stops encoding from segment msn on: its encoder's last pictures
 * end segment msn - 1, its playlist is withdrawn (the master keeps it). */
static int pl_rung_sleep(pipeline_t *pl, pl_rung_t *r, int64_t msn, int64_t idle_ms)
{
    log_info(pl->ctx, "rung %s: not asked for in %.0f s; stops encoding from segment %" PRId64,
             r->spec.name, idle_ms / 1000.0, msn);
    int ret = pl_rung_close(pl, r);
    r->idle = true;
    if (ret == 0)
        ret = packager_rung_set_idle(pl->pk, r->pk_index, true, msn, NULL, 0);
    /* The other rungs keep their encoders and thread counts: reopening
     * them (as a drop does) would restart their rate control, and a new
     * SPS would put a discontinuity in playlists people are watching, each
     * time a rung nobody watches comes and goes. */
    return ret;
}

/* Rung r was asked for: a fresh encoder, whose first picture is the IDR
 * that starts segment msn in every rendition. */
static int pl_rung_wake(pipeline_t *pl, pl_rung_t *r, int64_t msn, int64_t now_ms)
{
    r->idle = false;
    r->wakes++;
    r->active_since_ms = now_ms;
    const uint8_t *avcc;
    size_t size;
    int ret = pl_rung_open(pl, r, &avcc, &size);
    if (ret == 0)
        ret = packager_rung_set_idle(pl->pk, r->pk_index, false, msn, avcc, size);
    return ret; /* the other rungs are left alone (pl_rung_sleep) */
}

/* At the picture that starts segment msn, before it is encoded: each
 * transcoded rung that nobody asked for (store_demand_last, any origin)
 * within --rung-idle stops, and each idle one that was asked for since
 * starts again. One store read per transcoded rung per segment. A store
 * that cannot answer changes nothing. Rungs that overload protection
 * dropped are its business. */
static int pl_demand_check(pipeline_t *pl, int64_t msn)
{
    if (pl->rung_idle_ms <= 0)
        return 0;
    int64_t now = clock_wall_ms();
    bool changed = false;
    for (size_t i = 0; i < pl->nrungs; i++) {
        pl_rung_t *r = &pl->rungs[i];
        if (r->passthrough || r->dropped || r->pk_index < 0)
            continue;
        int64_t last = 0;
        int rc = store_demand_last(pl->tp->store, pl->stream_id, r->spec.name, &last);
        if (rc < 0 && rc != -ENOENT)
            continue;
        /* A rung is kept for --rung-idle after it started, asked for or not. */
        if (rc == -ENOENT || last < r->active_since_ms)
            last = r->active_since_ms;
        bool wanted = now - last < pl->rung_idle_ms;
        int ret = 0;
        if (!r->idle && !wanted)
            ret = pl_rung_sleep(pl, r, msn, pl->rung_idle_ms);
        else if (r->idle && rc == 0 && last > r->active_since_ms && wanted)
            ret = pl_rung_wake(pl, r, msn, now);
        else
            continue;
        if (ret < 0)
            return ret;
        changed = true;
    }
    if (changed)
        pl_publish_status(pl, true);
    return 0;
}

/* ---- decoding and encoding --------------------------------------------- */

static int pl_fail(const pipeline_t *pl, const char *what, int averr)
{
    char msg[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(averr, msg, sizeof(msg));
    log_error(pl->ctx, "%s: %s", what, msg);
    failure_note("%s: %s", what, msg);
    if (averr < 0 && averr > -4096)
        return averr;
    return -EIO;
}

static void pl_decoder_close(pipeline_t *pl)
{
    avcodec_free_context(&pl->dec);
    free(pl->dec_avcc);
    pl->dec_avcc = NULL;
    pl->dec_avcc_size = 0;
}

static int pl_decoder_open(pipeline_t *pl, media_codec_t vcodec, const uint8_t *avcc, size_t size)
{
    /* HEVC/AV1 from Enhanced RTMP; FFmpeg's own AV1 decoder needs a hardware
     * accelerator, so AV1 goes to dav1d when it is there. */
    const AVCodec *codec = vcodec == MEDIA_CODEC_HEVC ? avcodec_find_decoder(AV_CODEC_ID_HEVC)
                           : vcodec == MEDIA_CODEC_AV1 ? avcodec_find_decoder_by_name("libdav1d")
                                                       : avcodec_find_decoder(AV_CODEC_ID_H264);
    if (!codec && vcodec == MEDIA_CODEC_AV1)
        codec = avcodec_find_decoder(AV_CODEC_ID_AV1);
    if (!codec)
        return -ENOSYS;
    pl->dec = avcodec_alloc_context3(codec);
    pl->dec_avcc = malloc(size);
    if (!pl->dec || !pl->dec_avcc)
        return -ENOMEM;
    memcpy(pl->dec_avcc, avcc, size);
    pl->dec_avcc_size = size;
    pl->dec->extradata = av_mallocz(size + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!pl->dec->extradata)
        return -ENOMEM;
    memcpy(pl->dec->extradata, avcc, size);
    pl->dec->extradata_size = (int)size;
    pl->dec->pkt_timebase = (AVRational){1, 90000};
    pl->dec->thread_count = pl->threads;
    pl->dec->thread_type = FF_THREAD_FRAME;
    int ret = avcodec_open2(pl->dec, codec, NULL);
    if (ret < 0)
        return pl_fail(pl, "cannot open the video decoder", ret);
    return 0;
}

/* The source carries closed captions: every rendition has them (rung.c
 * hands them to x264, the copied source keeps its SEI), and the packager's
 * master says so from its next rewrite on. */
static void pl_captions_seen(pipeline_t *pl, const char *where)
{
    if (pl->captions)
        return;
    pl->captions = true;
    log_info(pl->ctx,
             "closed captions (CEA-608/708) %s: carried on every rendition and "
             "declared in the master",
             where);
    packager_set_captions(pl->pk);
}

/* One decoded source picture: scaled and encoded for every live rung. */
static int pl_picture(pipeline_t *pl, AVFrame *f)
{
    if (!pl->captions && av_frame_get_side_data(f, AV_FRAME_DATA_A53_CC))
        pl_captions_seen(pl, "on a decoded picture");
    /* The picture's own pts (its packet's): the cuts are the keyframes'
     * packet pts. libavcodec's best-effort timestamp switches to the decode
     * times once it has seen a few presentation times out of order (gst's
     * x264enc on a busy machine), and then no cut matched any picture: the
     * rungs ran 25 s segments and skipped numbers (issue 18). */
    int64_t pts = f->pts != AV_NOPTS_VALUE ? f->pts : f->best_effort_timestamp;
    f->pts = pts;
    bool idr = false;
    int64_t msn = 0;
    /* Cuts whose picture never came out (a decode error) are stale. */
    while (pl->ncuts > 0 && pl->cuts[0].pts < pts - PL_CUT_MATCH_TICKS) {
        memmove(&pl->cuts[0], &pl->cuts[1], (pl->ncuts - 1) * sizeof(pl->cuts[0]));
        pl->ncuts--;
    }
    if (pl->ncuts > 0 && pl->cuts[0].pts <= pts + PL_CUT_MATCH_TICKS) {
        idr = true;
        msn = pl->cuts[0].msn;
        f->pts = pl->cuts[0].pts;
        memmove(&pl->cuts[0], &pl->cuts[1], (pl->ncuts - 1) * sizeof(pl->cuts[0]));
        pl->ncuts--;
    }
    /* Encoders take pictures in presentation order only, and x264 derives
     * decode times from the presentation times it is given. A publisher
     * whose timestamps are uneven (gst's x264enc at its defaults, on a busy
     * machine) or that stops inside a group of B-frames gives the decoder
     * pictures that repeat or precede the last one's time: each is given
     * the next tick after it (a segment's first picture still matches its
     * cut, within PL_CUT_MATCH_TICKS). */
    if (pl->have_pic_pts && f->pts <= pl->last_pic_pts) {
        log_debug(pl->ctx, "a decoded picture at pts %" PRId64 " is not after the previous "
                           "one's %" PRId64 "; encoded just after it",
                  (int64_t)f->pts, pl->last_pic_pts);
        f->pts = pl->last_pic_pts + 1;
    }
    pl->have_pic_pts = true;
    pl->last_pic_pts = f->pts;
    int ret;
    if (idr && (ret = pl_overload_check(pl, f->pts, msn)) < 0)
        return ret;
    if (idr && (ret = pl_demand_check(pl, msn)) < 0)
        return ret;
    if (idr)
        thumbnail_picture(pl->thumb, f);
    /* Rungs come tallest first; each smaller one is scaled from a picture
     * already made for a larger rung when one is big enough (see
     * ladder_scale_source), which costs libswscale far less than starting
     * from the source again. */
    const AVFrame *pics[TRANSCODE_RUNGS_MAX];
    int pic_w[TRANSCODE_RUNGS_MAX], pic_h[TRANSCODE_RUNGS_MAX];
    for (size_t i = 0; i < pl->nrungs; i++) {
        pl_rung_t *r = &pl->rungs[i];
        pics[i] = NULL;
        pic_w[i] = pic_h[i] = 0;
        if (!r->enc)
            continue;
        int from = ladder_scale_source(r->width, r->height, pic_w, pic_h, i);
        int64_t t0 = clock_mono_us();
        if (pl_debug_fail(pl)) {
            log_error(pl->ctx, "rung %s: simulated encoder failure (--debug-fail-encode)",
                      r->spec.name);
            failure_note("encoder of rung %s: simulated failure (--debug-fail-encode) at "
                         "picture pts %" PRId64 " (1/90000 s)",
                         r->spec.name, (int64_t)f->pts);
            return -EIO;
        }
        ret = rung_encoder_send(r->enc, from >= 0 ? pics[from] : f, idr);
        if (ret == 0 && (pics[i] = rung_encoder_picture(r->enc)) != NULL) {
            pic_w[i] = pics[i]->width;
            pic_h[i] = pics[i]->height;
        }
        if (ret == 0)
            ret = pl_rung_drain(pl, r);
        pl_debug_slow(pl, r);
        r->busy_us += clock_mono_us() - t0;
        r->frames++;
        if (ret < 0)
            return ret;
    }
    return 0;
}

static int pl_receive_pictures(pipeline_t *pl)
{
    for (;;) {
        int ret = avcodec_receive_frame(pl->dec, pl->dframe);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
            return 0;
        if (ret < 0) {
            char msg[AV_ERROR_MAX_STRING_SIZE];
            av_strerror(ret, msg, sizeof(msg));
            log_warn(pl->ctx, "decoding: %s", msg);
            return 0;
        }
        ret = pl_picture(pl, pl->dframe);
        av_frame_unref(pl->dframe);
        if (ret < 0)
            return ret;
    }
}

static int pl_decoder_drain(pipeline_t *pl)
{
    if (!pl->dec)
        return 0;
    int ret = avcodec_send_packet(pl->dec, NULL);
    if (ret < 0 && ret != AVERROR_EOF)
        return pl_fail(pl, "decoder flush", ret);
    return pl_receive_pictures(pl);
}

/* packager hook: the source's shape is known; lay out the ladder. */
static int pl_start_cb(void *opaque, packager_t *pk, const h264_config_t *video,
                       const uint8_t *avcc, size_t avcc_size)
{
    pipeline_t *pl = opaque;
    if (!video)
        return 0;
    pl->started = true;
    pl->src = *video;
    if (video->fps_num > 0 && video->fps_den > 0) {
        pl->fps_num = video->fps_num;
        pl->fps_den = video->fps_den;
        pl->fps = (double)video->fps_num / video->fps_den;
    }
    if (!(pl->fps >= 1 && pl->fps <= 240)) {
        pl->fps_num = 30;
        pl->fps_den = 1;
        pl->fps = 30;
    }
    media_codec_t vcodec = packager_video_codec(pk);
    bool allow_copy = pl->tp->passthrough == TRANSCODE_PASSTHROUGH_AUTO &&
                      vcodec == MEDIA_CODEC_H264; /* only H.264 is copied */
    int global = ladder_preset_index(pl->tp->preset);
    for (size_t i = 0; i < pl->nspecs; i++) {
        pl_rung_t *r = &pl->rungs[pl->nrungs];
        memset(r, 0, sizeof(*r));
        r->spec = pl->specs[i];
        if (!ladder_fit(&r->spec, video->width, video->height, &r->width, &r->height))
            continue;
        r->passthrough = allow_copy && r->width == video->width && r->height == video->height;
        pl->nrungs++;
    }
    if (pl->nrungs == 0) {
        /* Smaller than every rung: the source size is the one rendition. */
        pl_rung_t *r = &pl->rungs[pl->nrungs++];
        memset(r, 0, sizeof(*r));
        r->spec = pl->specs[pl->nspecs - 1];
        int s = video->width < video->height ? video->width : video->height;
        snprintf(r->spec.name, sizeof(r->spec.name), "%dp", s);
        r->width = video->width & ~1;
        r->height = video->height & ~1;
        r->passthrough = allow_copy;
    }
    char desc[512];
    size_t n = 0;
    desc[0] = '\0';
    int copied = 0;
    for (size_t i = 0; i < pl->nrungs; i++) {
        pl_rung_t *r = &pl->rungs[i];
        r->pk_index = -1;
        int ret;
        if (r->passthrough && copied++ == 0) {
            if ((ret = packager_set_source_output(pk, r->spec.name)) < 0)
                return ret;
        } else {
            r->passthrough = false;
            r->base_preset = r->spec.preset[0] ? ladder_preset_index(r->spec.preset) : global;
            r->cur_preset = r->base_preset;
            const uint8_t *ra;
            size_t rs;
            if ((ret = pl_rung_open(pl, r, &ra, &rs)) < 0)
                return ret;
            if ((ret = packager_rung_add(pk, r->spec.name, ra, rs, &r->pk_index)) < 0)
                return ret;
            r->active_since_ms = clock_wall_ms();
            pl->ntranscoded++;
        }
        if (n < sizeof(desc))
            n += (size_t)snprintf(desc + n, sizeof(desc) - n, "%s%s %dx%d %s", i ? ", " : "",
                                  r->spec.name, r->width, r->height,
                                  r->passthrough ? "copy" : ladder_preset_name(r->cur_preset));
        if (!r->passthrough && n < sizeof(desc))
            n += (size_t)snprintf(desc + n, sizeof(desc) - n, " %d thread%s", r->threads,
                                  r->threads == 1 ? "" : "s");
    }
    if (!copied && (copied = packager_set_source_output(pk, NULL)) < 0)
        return copied;
    if (pl->ntranscoded > 0) {
        int ret = pl_decoder_open(pl, vcodec, avcc, avcc_size);
        if (ret < 0)
            return ret;
    }
    log_info(pl->ctx, "ladder for %dx%d: %s (stream threads %d)", video->width, video->height,
             desc, pl->threads);
    if (pl->outputs) {
        const char *names[TRANSCODE_RUNGS_MAX];
        bool copy[TRANSCODE_RUNGS_MAX];
        for (size_t i = 0; i < pl->nrungs; i++) {
            names[i] = pl->rungs[i].spec.name;
            copy[i] = pl->rungs[i].passthrough;
        }
        output_set_ladder(pl->outputs, names, copy, pl->nrungs);
    }
    pl_publish_status(pl, true);
    return 0;
}

/* packager hook: one source video sample with its repaired timestamps. */
static int pl_sample_cb(void *opaque, const media_packet_t *pkt, int64_t dts, int64_t pts,
                        bool key, bool cut, int64_t msn)
{
    pipeline_t *pl = opaque;
    pl->src_frames++;
    if (!pl->dec) {
        /* Copy only: nothing to decode, so captions are looked for in the
         * sample's SEI (only H.264 is copied). */
        if (!pl->captions && packager_video_codec(pl->pk) == MEDIA_CODEC_H264 &&
            h264_sample_has_captions(pkt->data, pkt->size, pl->src.nal_length_size))
            pl_captions_seen(pl, "in the copied source's SEI");
        /* Nothing to measure or step, but the status (segments, bit rates,
         * queue lag) still moves on, once per segment, and the keyframe
         * becomes the thumbnail. */
        if (cut) {
            thumbnail_keyframe(pl->thumb, packager_video_codec(pl->pk), pl->new_avcc,
                               pl->new_avcc_size, pkt->data, pkt->size);
            pl_publish_status(pl, true);
        }
        return 0;
    }
    int ret;
    if (cut) {
        if (pl->ncuts == PL_CUTS_MAX) {
            memmove(&pl->cuts[0], &pl->cuts[1], (pl->ncuts - 1) * sizeof(pl->cuts[0]));
            pl->ncuts--;
        }
        /* Room was made above: a full list would write past cuts[]. */
        SLUICE_ASSERT(pl->ncuts < PL_CUTS_MAX);
        pl->cuts[pl->ncuts++] = (pl_cut_t){.pts = pts, .msn = msn};
    }
    if (key && pl->new_avcc &&
        (pl->new_avcc_size != pl->dec_avcc_size ||
         memcmp(pl->new_avcc, pl->dec_avcc, pl->new_avcc_size) != 0)) {
        /* New SPS/PPS from the publisher: finish the old pictures first. */
        if ((ret = pl_decoder_drain(pl)) < 0)
            return ret;
        enum AVCodecID id = pl->dec->codec_id; /* the same codec, new parameters */
        pl_decoder_close(pl);
        media_codec_t vc = id == AV_CODEC_ID_HEVC ? MEDIA_CODEC_HEVC
                           : id == AV_CODEC_ID_AV1 ? MEDIA_CODEC_AV1
                                                   : MEDIA_CODEC_H264;
        if ((ret = pl_decoder_open(pl, vc, pl->new_avcc, pl->new_avcc_size)) < 0)
            return ret;
    }
    AVPacket *p = pl->dpkt;
    if ((ret = av_new_packet(p, (int)pkt->size)) < 0)
        return pl_fail(pl, "av_new_packet", ret);
    memcpy(p->data, pkt->data, pkt->size);
    p->dts = dts;
    p->pts = pts;
    p->flags = key ? AV_PKT_FLAG_KEY : 0;
    ret = avcodec_send_packet(pl->dec, p);
    av_packet_unref(p);
    if (ret < 0 && ret != AVERROR(EAGAIN)) {
        char msg[AV_ERROR_MAX_STRING_SIZE];
        av_strerror(ret, msg, sizeof(msg));
        log_warn(pl->ctx, "decoding a %zu-byte sample: %s", pkt->size, msg);
        /* A corrupt frame is concealed and forgotten; a decoder that
         * refuses everything for two seconds is not coming back by
         * itself: the worker replaces it (pipeline_recover). */
        if (++pl->decode_failures >= (int)(2 * pl->fps) + 1) {
            log_error(pl->ctx, "the decoder refused %d samples in a row", pl->decode_failures);
            failure_note("decoder: refused %d samples in a row, the last (dts %" PRId64
                         " pts %" PRId64 ", 1/90000 s): %s",
                         pl->decode_failures, dts, pts, msg);
            pl->decode_failures = 0;
            return -EBADMSG;
        }
    } else {
        pl->decode_failures = 0;
    }
    return pl_receive_pictures(pl);
}

/* ---- public ------------------------------------------------------------ */

int pipeline_new(const pipeline_params_t *p, pipeline_t **out)
{
    *out = NULL;
    if (!p->tp || !p->rungs || p->nrungs == 0 || p->nrungs > TRANSCODE_RUNGS_MAX)
        return -EINVAL;
    pipeline_t *pl = calloc(1, sizeof(*pl));
    if (!pl)
        return -ENOMEM;
    pl->tp = p->tp;
    snprintf(pl->stream_id, sizeof(pl->stream_id), "%s", p->stream_id ? p->stream_id : "");
    /* A recorded broadcast keeps every rung it records. */
    pl->rung_idle_ms = p->recorder ? 0 : p->tp->rung_idle_ms;
    snprintf(pl->ctx, sizeof(pl->ctx), "%s", p->log_ctx ? p->log_ctx : "");
    pl->threads = p->threads > 0 ? p->threads : 1;
    pl->status_lock = p->status_lock;
    pl->status = p->status;
    pl->outputs = p->outputs;
    pl->clock = p->clock;
    overload_state_init(&pl->ov);
    memcpy(pl->specs, p->rungs, p->nrungs * sizeof(pl->specs[0]));
    pl->nspecs = p->nrungs;
    pl->dpkt = av_packet_alloc();
    pl->dframe = av_frame_alloc();
    int ret = -ENOMEM;
    if (!pl->dpkt || !pl->dframe)
        goto fail;
    ret = audio_transcoder_new(pl->ctx, &pl->audio);
    if (ret < 0)
        goto fail;
    packager_hooks_t hooks = {.opaque = pl, .start_cb = pl_start_cb, .sample_cb = pl_sample_cb};
    packager_params_t pp = {
        .store = p->tp->store,
        .stream_id = p->stream_id,
        .log_ctx = pl->ctx,
        .segment_duration = p->tp->segment_duration,
        .playlist_segments = p->tp->playlist_segments,
        .dvr_window = p->tp->dvr_window,
        .part_duration = p->tp->part_duration,
        .ended_ttl_ms = p->tp->ended_ttl_ms,
        .first_msn = p->first_msn,
        .hooks = &hooks,
        .recorder = p->recorder,
        .clock_lock = p->status_lock,
        .clock = p->clock,
    };
    ret = packager_new(&pp, &pl->pk);
    if (ret < 0)
        goto fail;
    /* The thumbnail lives as long as the playlists. */
    thumbnail_params_t thp = {
        .store = p->tp->store,
        .stream_id = p->stream_id,
        .log_ctx = pl->ctx,
        .live_ttl_ms = packager_live_ttl_ms(pl->pk),
        .ended_ttl_ms = p->tp->ended_ttl_ms,
    };
    ret = thumbnail_new(&thp, &pl->thumb);
    if (ret < 0)
        goto fail;
    *out = pl;
    return 0;

fail:
    pipeline_free(pl);
    return ret;
}

/* Hands what the audio transcoder produced to the packager, in order, while
 * `ret` (the transcoder's own result) and the pushes succeed; frees the
 * rest. Returns the first failure. */
static int pipeline_push_audio_out(pipeline_t *pl, media_packet_t *outs, int ret)
{
    while (outs) {
        media_packet_t *o = outs;
        outs = o->next;
        o->next = NULL;
        if (ret == 0)
            pl_output_audio(pl, o);
        if (ret == 0)
            ret = packager_push(pl->pk, o);
        else
            media_packet_free(o);
    }
    return ret;
}

/* Hands one packet (audio possibly re-encoded) to the packager. */
static int pl_feed(pipeline_t *pl, media_packet_t *pkt)
{
    if (pkt->type == MEDIA_PACKET_VIDEO_CONFIG) {
        uint8_t *copy = malloc(pkt->size ? pkt->size : 1);
        if (!copy) {
            media_packet_free(pkt);
            return -ENOMEM;
        }
        memcpy(copy, pkt->data, pkt->size);
        free(pl->new_avcc);
        pl->new_avcc = copy;
        pl->new_avcc_size = pkt->size;
    }
    if (pkt->type == MEDIA_PACKET_AUDIO_CONFIG || pkt->type == MEDIA_PACKET_AUDIO) {
        media_packet_t *outs = NULL;
        int ret = audio_transcoder_push(pl->audio, pkt, &outs);
        return pipeline_push_audio_out(pl, outs, ret);
    }
    return packager_push(pl->pk, pkt);
}

int pipeline_push(pipeline_t *pl, media_packet_t *pkt)
{
    int64_t t0 = clock_mono_us();
    pl->call_start_us = t0;
    if (pkt->arrival_us > 0 && (pkt->type == MEDIA_PACKET_VIDEO || pkt->type == MEDIA_PACKET_AUDIO))
        pl->lag_ms = (t0 - pkt->arrival_us) / 1000;
    int ret = pl_feed(pl, pkt);
    pl->busy_us += clock_mono_us() - t0;
    return ret;
}

int pipeline_finish(pipeline_t *pl)
{
    pl->call_start_us = clock_mono_us();
    int ret = packager_end_input(pl->pk);
    if (ret == 0) {
        media_packet_t *outs = NULL;
        ret = audio_transcoder_flush(pl->audio, &outs);
        ret = pipeline_push_audio_out(pl, outs, ret);
    }
    if (ret == 0)
        ret = pl_decoder_drain(pl);
    for (size_t i = 0; ret == 0 && i < pl->nrungs; i++)
        ret = pl_rung_close(pl, &pl->rungs[i]);
    if (ret == 0)
        ret = packager_finish(pl->pk);
    if (ret == 0)
        thumbnail_end(pl->thumb);
    pl_rung_speeds(pl);
    pl_publish_status(pl, false);
    return ret;
}

/* Both ways a pipeline's input breaks off: with a drain (the decoder's
 * last pictures go to the encoders, the encoders' last samples to the
 * packager), or after a failure without one (what failed cannot be trusted
 * to flush: the decoder forgets what it holds, every encoder is replaced).
 * Then the packager publishes what it has and expects the next input. */
static int pl_break(pipeline_t *pl, bool drain)
{
    pl->call_start_us = clock_mono_us();
    int ret = packager_end_input(pl->pk);
    if (ret == 0 && drain)
        ret = pl_decoder_drain(pl);
    if (pl->dec)
        avcodec_flush_buffers(pl->dec);
    for (size_t i = 0; ret == 0 && i < pl->nrungs; i++)
        if (pl->rungs[i].enc)
            ret = pl_rung_renew(pl, &pl->rungs[i], drain);
    pl->ncuts = 0;
    if (ret == 0)
        ret = packager_input_break(pl->pk);
    pl_publish_status(pl, true);
    return ret;
}

int pipeline_input_break(pipeline_t *pl)
{
    return pl_break(pl, true);
}

int pipeline_recover(pipeline_t *pl)
{
    return pl_break(pl, false);
}

int64_t pipeline_next_msn(const pipeline_t *pl)
{
    return packager_next_msn(pl->pk);
}

void pipeline_free(pipeline_t *pl)
{
    if (!pl)
        return;
    for (size_t i = 0; i < pl->nrungs; i++)
        rung_encoder_free(pl->rungs[i].enc);
    packager_free(pl->pk);
    pl_decoder_close(pl);
    audio_transcoder_free(pl->audio);
    thumbnail_free(pl->thumb);
    av_packet_free(&pl->dpkt);
    av_frame_free(&pl->dframe);
    free(pl->new_avcc);
    free(pl);
}
