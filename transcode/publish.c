/*
 * Publisher: the publishing half of the packager (packager.c decides).
 *
 * Commits: finished fragments wait per rendition until the other rendition
 * has its matching one (or lags by several), then both segments, their
 * media playlists and, once every rendition has a segment, the master go
 * to the store in one atomic commit. Segments leaving the live window get a
 * TTL covering the playlist's duration (RFC 8216 6.2.2).
 *
 * It keeps the media and master playlist models, gathers each commit's
 * store operations in a batch, commits them, hands what the store got to
 * the recorder, and ends a stream's stored playlists for a writer that is
 * gone (packager_end_stored).
 *
 * Timed metadata: each item is an EXT-X-DATERANGE in every media playlist
 * (ID "sluice-<id>", CLASS com.sluice.metadata, START-DATE the item's
 * program date-time, X-PAYLOAD the payload) for as long as the segment
 * holding its START-DATE is in the windows (the DVR window included: the
 * windows are the playlists'); then it leaves, and its id is listed in
 * RECENTLY-REMOVED-DATERANGES of the v2 delta updates for a while. Over
 * PK_DATERANGES_MAX, the oldest leave first. The stream keeps them across
 * input breaks (a publisher back within the reconnect window).
 *
 * Thread and ownership: as the packager's, one transcode worker thread; the
 * batch owns the blobs it names until the commit, then releases them.
 */
#include "packager_priv_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob.h"
#include "clock.h"
#include "failure_internal.h"
#include "hls_names.h"
#include "hls_playlist.h"
#include "log.h"
#include "transcode.h"

#define PK_READY_FORCE 3          /* commit one rendition alone past this */
#define PK_PART_SLACK_US 2000     /* FLV's millisecond stamps, in PART-TARGET */
#define PK_CC_GROUP "cc"          /* GROUP-ID of the closed captions */

/* ---- playlists and commits -------------------------------------------- */

/* Whether a rendition goes on producing segments: a rung while it is in
 * the ladder or stands on a stand-in's samples; anything else always. */
bool pk_publishes(const pk_track_t *t)
{
    return !t->is_rung || (t->enabled && !t->idle) || t->alias;
}

/* The video renditions of the master: the source when muxed, then every
 * enabled rung. */
static size_t pk_video_renditions(packager_t *pk, pk_track_t **list)
{
    size_t n = 0;
    if (pk->video.active && pk->video.output)
        list[n++] = &pk->video;
    for (size_t i = 0; i < pk->nrungs; i++)
        if (pk->rungs[i].enabled)
            list[n++] = &pk->rungs[i];
    return n;
}

double pk_avg_bps(const pk_track_t *t)
{
    return t->total_seconds > 0 ? t->total_bits / t->total_seconds : 0;
}

typedef struct pk_master_model {
    hls_media_rendition_t media[2]; /* the audio group, the captions */
    size_t nmedia;
    hls_variant_t variants[PK_TRACKS_MAX];
    size_t nvariants;
    char codecs[PK_TRACKS_MAX][40];
    char uris[PK_TRACKS_MAX][40];
} pk_master_model_t;

static int pk_variant_cmp(const void *a, const void *b)
{
    const hls_variant_t *x = a, *y = b;
    if (x->bandwidth != y->bandwidth)
        return x->bandwidth < y->bandwidth ? -1 : 1;
    return strcmp(x->uri, y->uri);
}

/* Variants from the renditions that count (with a segment in the store
 * when only_committed), sorted by bandwidth. BANDWIDTH is the video's peak
 * segment rate plus the audio's, AVERAGE-BANDWIDTH the sum of averages. */
static bool pk_master_model(packager_t *pk, bool only_committed, pk_master_model_t *m)
{
    memset(m, 0, sizeof(*m));
    pk_track_t *vids[PK_TRACKS_MAX], *a = &pk->audio;
    size_t nv = pk_video_renditions(pk, vids);
    bool use_a = a->active && (!only_committed || a->committed > 0);
    double src_fps = pk_sps_fps(&pk->video);
    for (size_t i = 0; i < nv; i++) {
        pk_track_t *v = vids[i];
        if (only_committed && v->committed == 0)
            continue;
        size_t k = m->nvariants++;
        hls_variant_t *var = &m->variants[k];
        double bw = v->peak_bps + (use_a ? a->peak_bps : 0);
        double avg = pk_avg_bps(v) + (use_a ? pk_avg_bps(a) : 0);
        var->width = v->h264.width;
        var->height = v->h264.height;
        double fps = src_fps > 0 ? src_fps : pk_sps_fps(v);
        var->frame_rate = fps > 0 ? fps : v->measured_fps > 0 ? v->measured_fps
                                                               : pk->video.measured_fps;
        (void)hls_name_join(m->uris[k], sizeof(m->uris[k]), v->name, HLS_NAME_PLAYLIST);
        snprintf(m->codecs[k], sizeof(m->codecs[k]), "%s%s%s", v->codec, use_a ? "," : "",
                 use_a ? a->codec : "");
        var->bandwidth = (int64_t)ceil(bw);
        var->average_bandwidth = (int64_t)ceil(avg);
        var->codecs = m->codecs[k];
        var->uri = m->uris[k];
        var->audio_group = use_a ? "audio" : NULL;
        var->closed_captions = pk->captions ? PK_CC_GROUP : NULL;
    }
    if (m->nvariants == 0 && use_a && nv == 0 && !pk->video.active) {
        /* Audio only: the audio playlist is the one variant. */
        hls_variant_t *var = &m->variants[m->nvariants++];
        var->bandwidth = (int64_t)ceil(a->peak_bps);
        var->average_bandwidth = (int64_t)ceil(pk_avg_bps(a));
        (void)hls_name_join(m->uris[0], sizeof(m->uris[0]), a->name, HLS_NAME_PLAYLIST);
        snprintf(m->codecs[0], sizeof(m->codecs[0]), "%s", a->codec);
        var->codecs = m->codecs[0];
        var->uri = m->uris[0];
        return true;
    }
    if (m->nvariants == 0)
        return false;
    if (use_a) {
        m->media[m->nmedia++] = (hls_media_rendition_t){
            .type = "AUDIO",
            .group_id = "audio",
            .name = "audio",
            .is_default = true,
            .autoselect = true,
            .channels = a->aac.channels,
            .uri = "audio/" HLS_NAME_PLAYLIST,
        };
    }
    /* Captions seen in the source are in every video rendition (the rungs'
     * encoders write them back, the copied source has them as they came):
     * one group, no URI (RFC 8216bis 4.4.6.1). The channel is CC1, the one
     * nearly every CEA-608 source uses; the language is unknown (608 does
     * not say), so there is no LANGUAGE. Before any are seen the variants
     * say nothing rather than CLOSED-CAPTIONS=NONE: NONE is a promise that
     * there are none (hls.js then stops looking in the video), and a live
     * source may start sending them later, after players read the master. */
    if (pk->captions) {
        m->media[m->nmedia++] = (hls_media_rendition_t){
            .type = "CLOSED-CAPTIONS",
            .group_id = PK_CC_GROUP,
            .name = "Captions",
            .is_default = true,
            .autoselect = true,
            .instream_id = "CC1",
        };
    }
    qsort(m->variants, m->nvariants, sizeof(m->variants[0]), pk_variant_cmp);
    return true;
}

/* Renders the master when every rendition has a segment and it says
 * something new (first time, another set of variants, a higher peak,
 * other codecs or sizes, captions seen). */
int pk_master_render(packager_t *pk, bool force, blob_t **out)
{
    *out = NULL;
    pk_track_t *vids[PK_TRACKS_MAX];
    size_t nv = pk_video_renditions(pk, vids);
    bool all = !pk->audio.active || pk->audio.committed > 0;
    for (size_t i = 0; i < nv; i++)
        all = all && vids[i]->committed > 0;
    if (!all && !force)
        return 0;
    pk_master_model_t m;
    if (!pk_master_model(pk, !all, &m))
        return 0;
    bool changed = !pk->master_written || m.nvariants != pk->master_nvariants;
    for (size_t i = 0; !changed && i < m.nvariants; i++) {
        const hls_variant_t *v = &m.variants[i];
        changed = strcmp(v->uri, pk->master_last[i].uri) != 0 ||
                  strcmp(v->codecs, pk->master_last[i].codecs) != 0 ||
                  v->bandwidth > pk->master_last[i].bandwidth ||
                  v->width != pk->master_last[i].width || v->height != pk->master_last[i].height;
    }
    /* Every segment starts with an IDR picture (the rungs' encoders make
     * one at each cut) unless the copied source has open GOPs. */
    bool independent = !(pk->video.output && pk->video.open_gop);
    changed =
        changed || independent != pk->master_independent || pk->captions != pk->master_captions;
    if (!force && !changed)
        return 0;
    hls_master_playlist_t pl = {
        .independent_segments = independent,
        .media = m.media,
        .nmedia = m.nmedia,
        .variants = m.variants,
        .nvariants = m.nvariants,
    };
    int ret = hls_playlist_render_master(&pl, out);
    if (ret < 0)
        return ret;
    pk->master_written = true;
    pk->master_independent = independent;
    pk->master_captions = pk->captions;
    pk->master_nvariants = m.nvariants;
    for (size_t i = 0; i < m.nvariants; i++) {
        const hls_variant_t *v = &m.variants[i];
        snprintf(pk->master_last[i].uri, sizeof(pk->master_last[i].uri), "%s", v->uri);
        snprintf(pk->master_last[i].codecs, sizeof(pk->master_last[i].codecs), "%s", v->codecs);
        pk->master_last[i].bandwidth = v->bandwidth;
        pk->master_last[i].width = v->width;
        pk->master_last[i].height = v->height;
    }
    return 0;
}

void packager_set_captions(packager_t *pk)
{
    pk->captions = true;
}

/* PART-TARGET of a rendition: parts are cut at the sample boundary nearest
 * to each multiple of part_us, so they may run over it by half a sample
 * (none when part_us is a whole number of frames of this video). */
double pk_part_target(const packager_t *pk, const pk_track_t *t)
{
    int64_t us = pk->part_us + PK_PART_SLACK_US;
    if (!(t->is_video && pk->part_aligned)) {
        int64_t frame_us = t->is_video ? pk_nominal_ms(t) * 1000
                                       : pk_ts_to_us(t, pk_audio_frame_size(&t->aac));
        us += frame_us / 2;
    }
    return ceil(us / 1000.0) / 1000.0;
}

/* CAN-SKIP-UNTIL: six target durations (the spec's minimum), advertised
 * only when the window is long enough for a delta update to skip anything. */
const char *pk_map_name(const pk_track_t *t)
{
    return t->map_uri[0] ? t->map_uri : HLS_NAME_INIT;
}

static double pk_can_skip_until(const packager_t *pk, const pk_track_t *t)
{
    double until = 6.0 * t->target_duration;
    return pk->window_s > until ? until : 0;
}

/* How long a segment stays after it left the playlist: its own duration
 * plus the longest playlist that named it (RFC 8216 6.2.2), so a player
 * that read the longest (DVR) playlist can still fetch it. */
static int64_t pk_grace_ttl_ms(const packager_t *pk, const pk_track_t *t)
{
    double live = (double)(pk->playlist_segments + 1) * t->target_duration;
    double dvr = pk->dvr_window > 0 ? pk->dvr_window + 2.0 * t->target_duration : 0;
    return (int64_t)((dvr > live ? dvr : live) * 1000);
}

/* The oldest segment of t's window goes once the window holds more than
 * the live window (--playlist-segments) and, with a DVR window, once the
 * rest of it still covers those seconds; never more than window_cap. */
static bool pk_window_full(const packager_t *pk, const pk_track_t *t)
{
    if (t->nwindow > pk->window_cap)
        return true;
    if (t->nwindow <= (size_t)pk->playlist_segments)
        return false;
    if (pk->dvr_window <= 0)
        return true;
    double rest = 0;
    for (size_t i = 1; i < t->nwindow; i++)
        rest += t->window[i].duration;
    return rest >= pk->dvr_window;
}

/* Segments a delta update may leave out: the oldest ones that end more
 * than CAN-SKIP-UNTIL before the end of the last complete segment (RFC
 * 8216bis 6.2.5.1). */
static size_t pk_skippable(const pk_track_t *t, double until)
{
    double after = 0;
    for (size_t i = 0; i < t->nwindow; i++)
        after += t->window[i].duration;
    size_t n = 0; /* a segment ending exactly CAN-SKIP-UNTIL before the end stays */
    while (n + 1 < t->nwindow && after - t->window[n].duration > until + 0.0005)
        after -= t->window[n++].duration;
    return n;
}

/* ---- date ranges ------------------------------------------------------- */

static void pk_dr_removed(packager_t *pk, const pk_daterange_t *d)
{
    size_t k = pk->ndr_removed++ % PK_DR_REMOVED_MAX;
    snprintf(pk->dr_removed[k].id, sizeof(pk->dr_removed[k].id), "%s", d->id);
    pk->dr_removed[k].mono_ms = clock_mono_ms();
}

/* Drops the first n date ranges. */
static void pk_dr_drop(packager_t *pk, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        pk_dr_removed(pk, &pk->dr[i]);
        blob_unref(pk->dr[i].payload);
    }
    memmove(&pk->dr[0], &pk->dr[n], (pk->ndr - n) * sizeof(pk->dr[0]));
    pk->ndr -= n;
}

void pk_daterange_add(packager_t *pk, uint32_t id, int64_t start_ms, blob_t *payload)
{
    if (!pk->dr && !(pk->dr = calloc(PK_DATERANGES_MAX, sizeof(*pk->dr)))) {
        log_warn(pk->ctx, "no memory for the date range of timed metadata %" PRIu32, id);
        return;
    }
    if (pk->ndr == PK_DATERANGES_MAX) {
        log_warn(pk->ctx, "more than %d date ranges in the window: the oldest leaves early",
                 PK_DATERANGES_MAX);
        pk_dr_drop(pk, 1);
    }
    pk_daterange_t *d = &pk->dr[pk->ndr++];
    snprintf(d->id, sizeof(d->id), "sluice-%" PRIu32, id);
    d->start_ms = start_ms;
    d->payload = blob_ref(payload);
    /* The recording's VOD playlists carry it too (all of them: a VOD
     * playlist has the whole broadcast). */
    recorder_daterange_t rd = {.id = d->id,
                               .class_name = PK_DR_CLASS,
                               .start_ms = start_ms,
                               .payload = payload->data,
                               .payload_len = payload->size};
    recorder_add_daterange(pk->recorder, &rd);
}

void pk_dateranges_free(packager_t *pk)
{
    for (size_t i = 0; i < pk->ndr; i++)
        blob_unref(pk->dr[i].payload);
    free(pk->dr);
    pk->dr = NULL;
    pk->ndr = 0;
}

/* Drops the date ranges whose START-DATE lies before every window: the
 * segment that held it has left all the playlists. */
static void pk_dr_prune(packager_t *pk)
{
    pk_track_t *all[PK_TRACKS_MAX];
    size_t n = pk_tracks(pk, all);
    int64_t from = INT64_MAX;
    for (size_t i = 0; i < n; i++)
        if (pk_publishes(all[i]) && all[i]->nwindow > 0 && all[i]->window[0].pdt_ms < from)
            from = all[i]->window[0].pdt_ms;
    if (from == INT64_MAX)
        return;
    size_t k = 0;
    while (k < pk->ndr && pk->dr[k].start_ms < from)
        k++;
    if (k > 0)
        pk_dr_drop(pk, k);
}

/* The date ranges of a playlist into pl (d: room for ndr), and for a v2
 * delta update the ids removed within the last two CAN-SKIP-UNTILs (a
 * client that may skip reloaded more recently than one). */
static void pk_dr_model(packager_t *pk, hls_media_playlist_t *pl, hls_daterange_t *d,
                        const char **removed)
{
    for (size_t i = 0; i < pk->ndr; i++)
        d[i] = (hls_daterange_t){.id = pk->dr[i].id,
                                 .class_name = PK_DR_CLASS,
                                 .start_ms = pk->dr[i].start_ms,
                                 .payload = pk->dr[i].payload->data,
                                 .payload_len = pk->dr[i].payload->size};
    pl->dateranges = d;
    pl->ndateranges = pk->ndr;
    if (!pl->skip_v2)
        return;
    int64_t since = clock_mono_ms() - (int64_t)(2000 * pl->can_skip_until);
    size_t n = 0;
    size_t have = pk->ndr_removed < PK_DR_REMOVED_MAX ? pk->ndr_removed : PK_DR_REMOVED_MAX;
    for (size_t i = pk->ndr_removed - have; i < pk->ndr_removed; i++) {
        size_t k = i % PK_DR_REMOVED_MAX;
        if (pk->dr_removed[k].mono_ms >= since)
            removed[n++] = pk->dr_removed[k].id;
    }
    pl->removed_dateranges = removed;
    pl->nremoved_dateranges = n;
}

typedef enum pk_variant {
    PK_FULL = 0,
    PK_SKIP,   /* _HLS_skip=YES */
    PK_SKIP_V2 /* _HLS_skip=v2 */
} pk_variant_t;

static const char *const pk_variant_names[] = {HLS_NAME_PLAYLIST, HLS_NAME_PLAYLIST_SKIP,
                                               HLS_NAME_PLAYLIST_SKIP2};

static int pk_media_render_model(packager_t *pk, pk_track_t *t, bool ended,
                                 pk_variant_t variant, hls_daterange_t *dr, const char **removed,
                                 blob_t **out);

static int pk_media_render(packager_t *pk, pk_track_t *t, bool ended, pk_variant_t variant,
                           blob_t **out)
{
    hls_daterange_t *dr = NULL;
    if (pk->ndr > 0 && !(dr = malloc(pk->ndr * sizeof(*dr))))
        return -ENOMEM;
    const char *removed[PK_DR_REMOVED_MAX];
    int ret = pk_media_render_model(pk, t, ended, variant, dr, removed, out);
    free(dr);
    return ret;
}

static int pk_media_render_model(packager_t *pk, pk_track_t *t, bool ended,
                                 pk_variant_t variant, hls_daterange_t *dr, const char **removed,
                                 blob_t **out)
{
    bool ll = pk->part_us > 0;
    hls_media_playlist_t pl = {
        .target_duration = t->target_duration,
        .media_sequence = t->media_sequence,
        .discontinuity_sequence = t->discontinuity_sequence,
        .map_uri = pk_map_name(t),
        .segments = t->window,
        .nsegments = t->nwindow,
        .ended = ended,
    };
    if (!ll) {
        pk_dr_model(pk, &pl, dr, removed);
        return hls_playlist_render_media(&pl, out);
    }

    /* Parts stay on the last complete segments (and the one in progress)
     * while the stream is live; an ended list names whole segments only.
     * Not on parts that end more than three target durations before the
     * playlist does (RFC 8216bis 6.2.2), which long segments (a publisher's
     * keyframes far apart) would otherwise keep. */
    if (t->nwindow > 0 && !ended) {
        memcpy(t->render, t->window, t->nwindow * sizeof(*t->window));
        double after = 0; /* from the end of segment i to the playlist's */
        for (size_t j = 0; j < t->ncur; j++)
            after += t->cur_parts[j].duration;
        double limit = 3.0 * t->target_duration;
        for (size_t i = t->nwindow; i-- > 0 && i + PK_PART_SEGS >= t->nwindow;) {
            hls_segment_t *s = &t->render[i];
            for (size_t h = 0; h < PK_PART_HIST; h++) {
                if (t->hist[h].n == 0 || t->hist[h].msn != s->msn)
                    continue;
                /* The parts whose end is within the limit: a suffix. */
                size_t keep = t->hist[h].n;
                for (double d = after; keep > 0 && d <= limit;)
                    d += t->hist[h].parts[--keep].duration;
                s->parts = t->hist[h].parts + keep;
                s->nparts = t->hist[h].n - keep;
                s->first_part = keep;
            }
            after += s->duration;
        }
        pl.segments = t->render;
    }
    pl.part_target = pk_part_target(pk, t);
    /* The same EXT-X-SERVER-CONTROL in every rendition (6.2.4): three of the
     * longest PART-TARGET of them all (audio's, when there is audio). */
    double longest = pl.part_target;
    if (pk->audio.active && pk_part_target(pk, &pk->audio) > longest)
        longest = pk_part_target(pk, &pk->audio);
    if (pk->video.active && pk_part_target(pk, &pk->video) > longest)
        longest = pk_part_target(pk, &pk->video);
    pl.part_hold_back = ceil(3000.0 * longest) / 1000.0;
    pl.can_skip_until = pk_can_skip_until(pk, t);
    pl.can_skip_dateranges = pl.can_skip_until > 0; /* index-skip2.m3u8 is always written */
    if (!ended) {
        pl.pending_parts = t->cur_parts;
        pl.npending = t->ncur;
        pl.pending_discontinuity = t->ncur > 0 && t->seg_discontinuity;
        pl.preload_hint = true;
    }
    if (variant != PK_FULL && pl.can_skip_until > 0) {
        pl.skip = pk_skippable(t, pl.can_skip_until);
        pl.skip_v2 = variant == PK_SKIP_V2;
    }

    /* A report for every other rendition of the master with a part out. */
    hls_rendition_report_t reports[PK_TRACKS_MAX];
    char uris[PK_TRACKS_MAX][40];
    pk_track_t *others[PK_TRACKS_MAX];
    size_t nothers = pk_video_renditions(pk, others);
    if (pk->audio.active && nothers < PK_TRACKS_MAX)
        others[nothers++] = &pk->audio;
    for (size_t i = 0; i < nothers && !ended; i++) {
        pk_track_t *o = others[i];
        if (o == t || !o->rr_valid)
            continue;
        size_t k = pl.nreports++;
        snprintf(uris[k], sizeof(uris[k]), "../%s/" HLS_NAME_PLAYLIST, o->name);
        reports[k] = (hls_rendition_report_t){
            .uri = uris[k], .last_msn = o->rr_msn, .last_part = o->rr_part};
    }
    pl.reports = reports;
    pk_dr_model(pk, &pl, dr, removed);
    return hls_playlist_render_media(&pl, out);
}

void pk_batch_add(pk_batch_t *b, store_op_kind_t kind, blob_t *blob, int64_t ttl_ms,
                  bool owned, pk_obj_t obj)
{
    if (b->n == b->cap) { /* sized for the worst case; never expected */
        if (owned)
            blob_unref(blob);
        return;
    }
    char file[HLS_NAME_FILE_MAX];
    char *name = b->names[b->n];
    size_t cap = sizeof(b->names[b->n]);
    if (obj.kind == HLS_NAME_KIND_SEGMENT)
        (void)hls_name_segment(file, sizeof(file), obj.msn);
    else if (obj.kind == HLS_NAME_KIND_PART)
        (void)hls_name_part(file, sizeof(file), obj.msn, obj.part);
    if (obj.kind == HLS_NAME_KIND_SEGMENT || obj.kind == HLS_NAME_KIND_PART)
        obj.file = file;
    if (obj.track)
        (void)hls_name_join(name, cap, obj.track->name, obj.file);
    else
        snprintf(name, cap, "%s", obj.file);
    if (obj.file == file)
        obj.file = NULL; /* not kept: it lives on this stack */
    b->objs[b->n] = obj;
    b->ops[b->n] = (store_op_t){.kind = kind, .name = name, .blob = blob, .ttl_ms = ttl_ms};
    b->n++;
    if (owned && blob)
        b->owned[b->nowned++] = blob;
}

void pk_batch_drop(pk_batch_t *b)
{
    for (size_t i = 0; i < b->nowned; i++)
        blob_unref(b->owned[i]);
    b->nowned = 0;
    b->n = 0;
}

/* After a successful commit: the recording gets what the store got, the
 * segments (with the init segment the batch carries for them and their
 * entry in the playlist model) and the master. */
static void pk_record(packager_t *pk, const pk_batch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        const store_op_t *op = &b->ops[i];
        const pk_obj_t *obj = &b->objs[i];
        if (op->kind != STORE_OP_PUT || !op->blob)
            continue;
        if (!obj->track && obj->file && strcmp(obj->file, HLS_NAME_MASTER) == 0) {
            recorder_set_master(pk->recorder, op->blob);
            continue;
        }
        if (obj->kind != HLS_NAME_KIND_SEGMENT)
            continue;
        const pk_track_t *t = obj->track;
        const hls_segment_t *seg = NULL;
        for (size_t k = t->nwindow; k-- > 0 && !seg;)
            if (t->window[k].msn == obj->msn)
                seg = &t->window[k];
        if (!seg) {
            log_warn(pk->ctx, "%s: segment %" PRId64 " left out of the recording (withdrawn)",
                     t->name, obj->msn);
            continue;
        }
        /* The init segment the batch carries for it, if any. */
        const blob_t *init = NULL;
        for (size_t k = 0; k < b->n && !init; k++)
            if (b->ops[k].kind == STORE_OP_PUT && b->objs[k].track == t && b->objs[k].file &&
                strcmp(b->objs[k].file, seg->map_uri) == 0)
                init = b->ops[k].blob;
        recorder_segment_t rs = {
            .rendition = t->name,
            .msn = obj->msn,
            .duration = seg->duration,
            .pdt_ms = seg->pdt_ms,
            .discontinuity = seg->discontinuity,
            .data = op->blob,
            .init = init,
        };
        recorder_add_segment(pk->recorder, &rs);
    }
}

int pk_batch_commit(packager_t *pk, pk_batch_t *b)
{
    /* Every commit records the next unused segment number beside what it
     * writes, so that a later broadcast of this stream on any node (another
     * ingest after a takeover, or this one after a restart on a shared
     * store) continues the numbers instead of reusing names. */
    char next[24];
    int len = snprintf(next, sizeof(next), "%" PRId64, packager_next_msn(pk));
    blob_t *nb = blob_new(next, (size_t)len);
    if (nb)
        pk_batch_add(b, STORE_OP_PUT, nb, 0, true, PK_STREAM_FILE(TRANSCODE_NEXT_MSN_NAME));
    int ret = store_commit(pk->store, pk->stream_id, b->ops, b->n);
    if (ret >= 0 && pk->recorder)
        pk_record(pk, b);
    for (size_t i = 0; i < b->nowned; i++)
        blob_unref(b->owned[i]);
    b->nowned = 0;
    b->n = 0;
    if (ret < 0) {
        log_error(pk->ctx, "store commit failed: %s", strerror(-ret));
        failure_note("store write of %zu objects: %s", b->n, strerror(-ret));
    }
    return ret;
}

/* Adds t's media playlist to the batch, with the delta-update versions the
 * origin serves for _HLS_skip when the stream advertises CAN-SKIP-UNTIL
 * (an ended list has none: the origin then answers with the full one). */
int pk_playlists_add(packager_t *pk, pk_track_t *t, bool ended, int64_t ttl_ms,
                     pk_batch_t *b)
{
    bool deltas = pk->part_us > 0 && pk_can_skip_until(pk, t) > 0;
    pk_dr_prune(pk);
    for (int v = PK_FULL; v <= (deltas ? PK_SKIP_V2 : PK_FULL); v++) {
        if (v != PK_FULL && ended) {
            pk_batch_add(b, STORE_OP_DELETE, NULL, 0, false, PK_FILE(t, pk_variant_names[v]));
            continue;
        }
        blob_t *pl = NULL;
        int ret = pk_media_render(pk, t, ended, (pk_variant_t)v, &pl);
        if (ret < 0)
            return ret;
        pk_batch_add(b, STORE_OP_PUT, pl, ttl_ms, true, PK_FILE(t, pk_variant_names[v]));
    }
    return 0;
}

/* The init segment goes to the store with the first object that needs it
 * (segment or part `msn`), and again with every segment to renew its live
 * TTL. A new one that differs from the one out gets a name of its own. */
void pk_init_add(packager_t *pk, pk_track_t *t, pk_batch_t *b, int64_t msn)
{
    if (t->init) {
        if (t->init_live && (t->init->size != t->init_live->size ||
                             memcmp(t->init->data, t->init_live->data, t->init->size) != 0)) {
            (void)hls_name_init(t->map_uri, sizeof(t->map_uri), msn);
            log_info(pk->ctx, "%s: new init segment %s from segment %" PRId64, t->name,
                     t->map_uri, msn);
        }
        blob_unref(t->init_live);
        t->init_live = t->init; /* the batch gets its own reference below */
        t->init = NULL;
    }
    if (t->init_live)
        pk_batch_add(b, STORE_OP_PUT, blob_ref(t->init_live), pk->live_ttl_ms, true,
                     PK_FILE(t, pk_map_name(t)));
}

/* Once per track, before its first object: if the store holds a live (not
 * ended) playlist of the same rendition left by an earlier writer (a node
 * whose publisher came back through this one, or one that died mid-stream,
 * or a pipeline restarted from scratch), its viewers follow on here: the
 * first segment is a discontinuity, and the discontinuity sequence goes on
 * from that playlist's last segment (RFC 8216 6.2.2), so players keep their
 * place instead of seeing the timeline jump back without a word. Returns
 * whether the track follows one. */
bool pk_track_follow(packager_t *pk, pk_track_t *t, int64_t first_msn)
{
    t->follow_checked = true;
    blob_t *b = NULL;
    char name[STORE_NAME_MAX + 1];
    (void)hls_name_join(name, sizeof(name), t->name, HLS_NAME_PLAYLIST);
    if (store_get(pk->store, pk->stream_id, name, &b) < 0)
        return false;
    const char *p = (const char *)b->data, *end = p + b->size;
    int64_t dseq = 0, discs = 0, last_msn = -1;
    bool ended = false;
    hls_name_t h;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        static const char ds[] = "#EXT-X-DISCONTINUITY-SEQUENCE:";
        if (len > sizeof(ds) - 1 && memcmp(p, ds, sizeof(ds) - 1) == 0)
            dseq = strtoll(p + sizeof(ds) - 1, NULL, 10);
        else if (len == 20 && memcmp(p, "#EXT-X-DISCONTINUITY", 20) == 0)
            discs++;
        else if (len == 14 && memcmp(p, "#EXT-X-ENDLIST", 14) == 0)
            ended = true;
        else if (hls_name_parse(p, len, &h) && h.kind == HLS_NAME_KIND_SEGMENT)
            last_msn = h.msn;
        p += len + 1;
    }
    blob_unref(b);
    if (ended || last_msn < 0 || last_msn >= first_msn || dseq < 0 || dseq > INT32_MAX)
        return false;
    t->discontinuity_sequence = dseq + discs;
    t->seg_discontinuity = true;
    log_info(pk->ctx, "%s: following a live playlist left by an earlier writer (its last segment "
                      "%" PRId64 "); segment %" PRId64 " starts a discontinuity",
             t->name, last_msn, first_msn);
    return true;
}

/* EXT-X-TARGETDURATION is the same in every rendition (RFC 8216bis
 * 6.2.4): a segment longer than the target raises it for all of them,
 * since the copied source and the rungs cut at the same keyframes but
 * round their own durations (7.49 s encoded, 7.52 s copied). */
static bool pk_raise_target(packager_t *pk, int rounded)
{
    pk_track_t *all[PK_TRACKS_MAX];
    size_t n = pk_tracks(pk, all);
    if (!pk->video.active || !pk->video.output)
        all[n++] = &pk->video; /* new rungs start from the video's */
    bool raised = false;
    for (size_t i = 0; i < n; i++) {
        if (rounded > all[i]->target_duration) {
            all[i]->target_duration = rounded;
            raised = true;
        }
    }
    return raised;
}

/* Moves the oldest finished fragment of t into the playlist model and adds
 * its store operations to the batch. */
static int pk_stage_segment(packager_t *pk, pk_track_t *t, pk_batch_t *b)
{
    /* Called for a track with a finished fragment; an empty or overfull
     * queue would memmove past the array. */
    SLUICE_ASSERT(t->nready > 0 && t->nready <= PK_READY_MAX);
    pk_ready_t r = t->ready[0];
    memmove(&t->ready[0], &t->ready[1], (t->nready - 1) * sizeof(t->ready[0]));
    t->nready--;

    double duration = (double)r.frag.duration / pk_timescale(t);
    size_t bytes = r.frag.data->size;
    if (!t->follow_checked && pk_track_follow(pk, t, r.msn))
        r.discontinuity = true;
    pk_init_add(pk, t, b, r.msn);
    pk_batch_add(b, STORE_OP_PUT, r.frag.data, pk->live_ttl_ms, true, PK_SEGMENT(t, r.msn));
    if (t->nwindow > 0 && t->window[t->nwindow - 1].msn + 1 != r.msn)
        log_warn(pk->ctx, "%s: segment %" PRId64 " follows %" PRId64, t->name, r.msn,
                 t->window[t->nwindow - 1].msn);

    t->window[t->nwindow++] = (hls_segment_t){
        .msn = r.msn,
        .duration = duration,
        .pdt_ms = r.pdt_ms,
        .discontinuity = r.discontinuity,
        .bytes = bytes,
    };
    snprintf(t->window[t->nwindow - 1].map_uri, sizeof(t->window[0].map_uri), "%s",
             pk_map_name(t));
    bool raised = pk_raise_target(pk, (int)lround(duration));
    while (pk_window_full(pk, t)) {
        hls_segment_t gone = t->window[0];
        memmove(&t->window[0], &t->window[1], (t->nwindow - 1) * sizeof(t->window[0]));
        t->nwindow--;
        if (gone.discontinuity)
            t->discontinuity_sequence++;
        pk_batch_add(b, STORE_OP_EXPIRE, NULL, pk_grace_ttl_ms(pk, t), false,
                     PK_SEGMENT(t, gone.msn));
    }
    t->media_sequence = t->window[0].msn;

    double bps = duration > 0 ? bytes * 8.0 / duration : 0;
    /* A very short segment (end of stream) says little about the peak. */
    if (duration >= pk->segment_duration / 2 || t->peak_bps == 0)
        t->peak_bps = bps > t->peak_bps ? bps : t->peak_bps;
    t->total_bits += bytes * 8.0;
    t->total_seconds += duration;
    if (t->is_video && t->measured_fps == 0 && duration > 0 && r.frag.samples > 1)
        t->measured_fps = r.frag.samples / duration;
    t->committed++;
    /* Production lag, once per segment number (the first track staged; the
     * batch is committed right after staging). */
    if (r.arrival_us > 0 && r.msn > pk->lag_msn) {
        pk->lag_msn = r.msn;
        int64_t lag_us = clock_mono_us() - r.arrival_us;
        if (lag_us < 0)
            lag_us = 0;
        pk->lag_last_ms = lag_us / 1000;
        pk->lag_sum_s += lag_us / 1e6;
        pk->lag_count++;
    }
    log_debug(pk->ctx, "%s segment %" PRId64 ": %.3f s, %zu bytes", t->name, r.msn, duration,
              bytes);

    /* A raised target duration reaches every playlist in this commit, so
     * that no reader sees two target durations at once. */
    if (raised) {
        pk_track_t *all[PK_TRACKS_MAX];
        size_t n = pk_tracks(pk, all);
        for (size_t i = 0; i < n; i++) {
            pk_track_t *u = all[i];
            if (u == t || (u->nwindow == 0 && u->ncur == 0) ||
                !pk_publishes(u))
                continue;
            int ret = pk_playlists_add(pk, u, false, pk->live_ttl_ms, b);
            if (ret < 0)
                return ret;
        }
    }
    if (t->withdraw_pending && t->nready == 0) {
        pk_rung_withdraw(pk, t, b);
        return 0;
    }
    return pk_playlists_add(pk, t, false, pk->live_ttl_ms, b);
}

/* Every rendition that is muxed: source video, rungs (enabled or not:
 * a disabled one may still have segments to publish), audio. */
size_t pk_tracks(packager_t *pk, pk_track_t **list)
{
    size_t n = 0;
    if (pk->video.active && pk->video.output)
        list[n++] = &pk->video;
    for (size_t i = 0; i < pk->nrungs; i++)
        list[n++] = &pk->rungs[i];
    if (pk->audio.active)
        list[n++] = &pk->audio;
    return n;
}

/* Whether segment msn of t is still to come (so a commit of msn waits). */
static bool pk_expects(const pk_track_t *t, int64_t msn)
{
    if (!pk_publishes(t) || (t->is_rung && msn < t->expect_from))
        return false;
    if (t->nready > 0)
        return t->ready[0].msn <= msn;
    return t->seg_msn <= msn;
}

/* Withdraws a disabled rung's playlist: players that still know the rung
 * get a 404 and switch; its segments expire like ones leaving the window. */
void pk_rung_withdraw(packager_t *pk, pk_track_t *t, pk_batch_t *b)
{
    int64_t ttl = pk_grace_ttl_ms(pk, t);
    for (size_t i = 0; i < t->nwindow; i++)
        pk_batch_add(b, STORE_OP_EXPIRE, NULL, ttl, false, PK_SEGMENT(t, t->window[i].msn));
    t->nwindow = 0;
    for (size_t v = 0; v < sizeof(pk_variant_names) / sizeof(pk_variant_names[0]); v++)
        pk_batch_add(b, STORE_OP_DELETE, NULL, 0, false, PK_FILE(t, pk_variant_names[v]));
    t->withdraw_pending = false;
    t->rr_valid = false;
}

/* Commits finished segments: segment N of every rendition together, or
 * the ones that are there when another rendition lags far behind (or at
 * the end of the stream). */
int pk_commit_ready(packager_t *pk, bool draining)
{
    for (;;) {
        pk_track_t *all[PK_TRACKS_MAX];
        size_t n = pk_tracks(pk, all);
        int64_t low = INT64_MAX;
        size_t maxready = 0;
        for (size_t i = 0; i < n; i++) {
            if (all[i]->nready == 0)
                continue;
            if (all[i]->ready[0].msn < low)
                low = all[i]->ready[0].msn;
            if (all[i]->nready > maxready)
                maxready = all[i]->nready;
        }
        pk_batch_t *b = &pk->batch;
        if (low == INT64_MAX) {
            /* Nothing to publish; a withdrawal may still be due. */
            for (size_t i = 0; i < pk->nrungs; i++)
                if (pk->rungs[i].withdraw_pending && pk->rungs[i].nready == 0)
                    pk_rung_withdraw(pk, &pk->rungs[i], b);
            if (b->n == 0)
                return 0;
            blob_t *master = NULL;
            int ret = pk_master_render(pk, false, &master);
            if (ret == 0 && master)
                pk_batch_add(b, STORE_OP_PUT, master, pk->live_ttl_ms, true,
                             PK_STREAM_FILE(HLS_NAME_MASTER));
            if (ret < 0) {
                pk_batch_drop(b);
                return ret;
            }
            return pk_batch_commit(pk, b);
        }
        bool complete = true;
        for (size_t i = 0; i < n && complete; i++) {
            pk_track_t *t = all[i];
            if (pk_expects(t, low) && !(t->nready > 0 && t->ready[0].msn == low))
                complete = false;
        }
        /* LL-HLS publishes every rendition as it goes: the parts of the
         * next segment cannot wait behind another rendition's segment. */
        if (!complete && !draining && pk->part_us == 0 && maxready < PK_READY_FORCE)
            return 0;

        int ret = 0;
        for (size_t i = 0; i < n && ret == 0; i++)
            if (all[i]->nready > 0 && all[i]->ready[0].msn == low)
                ret = pk_stage_segment(pk, all[i], b);
        blob_t *master = NULL;
        if (ret == 0)
            ret = pk_master_render(pk, false, &master);
        if (ret == 0 && master)
            pk_batch_add(b, STORE_OP_PUT, master, pk->live_ttl_ms, true,
                             PK_STREAM_FILE(HLS_NAME_MASTER));
        if (ret < 0) {
            pk_batch_drop(b);
            return ret;
        }
        ret = pk_batch_commit(pk, b);
        if (ret < 0)
            return ret;
    }
}

/* The rendition names a master playlist refers to ("720p" of
 * "720p/index.m3u8", in URI lines and URI attributes); at most max. */
static size_t pk_master_renditions(const blob_t *master, char (*names)[16], size_t max)
{
    size_t n = 0;
    const char *p = (const char *)master->data, *end = p + master->size;
    static const char suffix[] = "/" HLS_NAME_PLAYLIST;
    while (p < end && n < max) {
        const char *hit = memmem(p, (size_t)(end - p), suffix, sizeof(suffix) - 1);
        if (!hit)
            break;
        const char *s = hit;
        while (s > p && ((s[-1] >= 'a' && s[-1] <= 'z') || (s[-1] >= '0' && s[-1] <= '9')))
            s--;
        size_t len = (size_t)(hit - s);
        bool seen = false;
        for (size_t i = 0; i < n && !seen; i++)
            seen = strlen(names[i]) == len && memcmp(names[i], s, len) == 0;
        if (len > 0 && len < sizeof(names[0]) && !seen) {
            memcpy(names[n], s, len);
            names[n++][len] = '\0';
        }
        p = hit + sizeof(suffix) - 1;
    }
    return n;
}

/* A live media playlist as an ended one: the parts, preload hint and
 * rendition reports go (an ended list names whole segments only), as does
 * anything after the last segment's URI (the segment in progress), and
 * EXT-X-ENDLIST closes it. NULL when it has ended already or on ENOMEM. */
static blob_t *pk_playlist_ended(const blob_t *live)
{
    const char *p = (const char *)live->data, *end = p + live->size;
    blob_t *out = blob_new_uninit(live->size + 16);
    if (!out)
        return NULL;
    size_t at = 0, keep = 0; /* keep: the end of the last URI line */
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (len == 14 && memcmp(p, "#EXT-X-ENDLIST", 14) == 0) {
            blob_unref(out);
            return NULL;
        }
        bool drop = (len >= 12 && memcmp(p, "#EXT-X-PART:", 12) == 0) ||
                    (len >= 19 && memcmp(p, "#EXT-X-PRELOAD-HINT", 19) == 0) ||
                    (len >= 23 && memcmp(p, "#EXT-X-RENDITION-REPORT", 23) == 0);
        if (!drop && len > 0) {
            memcpy(out->data + at, p, len);
            at += len;
            out->data[at++] = '\n';
            if (p[0] != '#')
                keep = at;
        }
        p += len + 1;
    }
    if (keep == 0) { /* no segment at all: nothing to end */
        blob_unref(out);
        return NULL;
    }
    memcpy(out->data + keep, "#EXT-X-ENDLIST\n", 15);
    out->size = keep + 15;
    out->data[out->size] = 0;
    return out;
}

int packager_end_stored(store_t *st, const char *stream_id, int64_t ended_ttl_ms)
{
    blob_t *master = NULL;
    int ret = store_get(st, stream_id, HLS_NAME_MASTER, &master);
    if (ret < 0)
        return ret == -ENOENT ? 0 : ret;
    char names[PK_TRACKS_MAX][16];
    size_t nnames = pk_master_renditions(master, names, PK_TRACKS_MAX);
    blob_unref(master);
    store_op_t ops[PK_TRACKS_MAX * 3 + 1];
    char opnames[PK_TRACKS_MAX * 3 + 1][STORE_NAME_MAX + 1];
    blob_t *owned[PK_TRACKS_MAX];
    size_t nops = 0, nowned = 0;
    for (size_t i = 0; i < nnames; i++) {
        blob_t *live = NULL;
        (void)hls_name_join(opnames[nops], sizeof(opnames[0]), names[i], HLS_NAME_PLAYLIST);
        if (store_get(st, stream_id, opnames[nops], &live) < 0)
            continue;
        blob_t *ended = pk_playlist_ended(live);
        blob_unref(live);
        if (!ended)
            continue;
        owned[nowned++] = ended;
        ops[nops] = (store_op_t){.kind = STORE_OP_PUT, .name = opnames[nops], .blob = ended,
                                 .ttl_ms = ended_ttl_ms};
        nops++;
        for (size_t v = 1; v < sizeof(pk_variant_names) / sizeof(pk_variant_names[0]); v++) {
            (void)hls_name_join(opnames[nops], sizeof(opnames[0]), names[i], pk_variant_names[v]);
            ops[nops] = (store_op_t){.kind = STORE_OP_DELETE, .name = opnames[nops]};
            nops++;
        }
    }
    if (nowned > 0) {
        snprintf(opnames[nops], sizeof(opnames[0]), "%s", HLS_NAME_MASTER);
        ops[nops] = (store_op_t){.kind = STORE_OP_EXPIRE, .name = opnames[nops],
                                 .ttl_ms = ended_ttl_ms};
        nops++;
        ret = store_commit(st, stream_id, ops, nops);
    }
    for (size_t i = 0; i < nowned; i++)
        blob_unref(owned[i]);
    return ret < 0 ? ret : (int)nowned;
}
