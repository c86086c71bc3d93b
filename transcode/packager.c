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
 * Commits: finished fragments wait per rendition until the other rendition
 * has its matching one (or lags by several), then both segments, their
 * media playlists and, once every rendition has a segment, the master go
 * to the store in one atomic commit. Segments leaving the live window get a
 * TTL covering the playlist's duration (RFC 8216 6.2.2).
 *
 * Thread and ownership: a packager belongs to one transcode worker thread.
 * It owns its muxers, buffered packets and playlist models; blobs it hands
 * to the store are released after the commit (the store holds its own refs).
 */
#include "packager_internal.h"

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
#include "failure_internal.h"
#include "hls_names.h"
#include "hls_playlist.h"
#include "log.h"
#include "transcode.h"

#define PK_TIMELINE_START_MS 1000
#define PK_JUMP_BACK_MS 1000      /* dts going back further is a jump */
#define PK_JUMP_FORWARD_MS 10000  /* dts going forward further is a jump */
#define PK_MAX_CTS_MS 10000
#define PK_CUT_TOLERANCE_US 10000 /* absorbs FLV's millisecond rounding */
#define PK_PROBE_SPAN_MS 1000     /* one kind only for this long: single-kind */
#define PK_DVR_MAX_S 86400        /* longest --dvr-window */
#define PK_PROBE_MAX_SPAN_MS 10000
#define PK_PROBE_MAX_PACKETS 4096
#define PK_AUDIO_FIFO_MAX 512     /* ~10 s of AAC: video has stalled */
#define PK_GAP_HIST 8             /* video sample distances behind frame_ticks */
#define PK_RUNG_MAX_CTS_TICKS 45000 /* 0.5 s: the most an encoded rung may show after decoding */
#define PK_AUDIO_RESYNC_MS 100
#define PK_CUTS_MAX 16
#define PK_READY_MAX 8
#define PK_READY_FORCE 3          /* commit one rendition alone past this */
#define PK_CTX_MAX 96
#define PK_RUNGS_MAX 8            /* TRANSCODE_RUNGS_MAX */
#define PK_TRACKS_MAX (PK_RUNGS_MAX + 2)
#define PK_CUTHIST_MAX 64         /* recent cuts, for rungs whose encoders lag */
#define PK_CUT_MATCH_TICKS 90     /* a rung keyframe within 1 ms of a cut starts it */
#define PK_PARTS_MAX 384          /* LL-HLS parts of one segment (128 s of 1/3 s parts); later media joins the last */
#define PK_PART_SEGS 2            /* complete segments whose parts stay in the playlist */
#define PK_PART_HIST (PK_PART_SEGS + 1) /* ...and the one before: the last live
                                         * playlist's, once the stream ends */
#define PK_PART_SLACK_US 2000     /* FLV's millisecond stamps, in PART-TARGET */
#define PK_HELD_MAX 512           /* a restored rung's own samples waiting for its stand-in's cut */

typedef enum pk_mode {
    PK_MODE_PROBING = 0,
    PK_MODE_AV,
    PK_MODE_VIDEO,
    PK_MODE_AUDIO,
} pk_mode_t;

typedef struct pk_ready {
    cmaf_fragment_t frag;
    int64_t msn;
    int64_t pdt_ms;
    bool discontinuity;
    int64_t arrival_us; /* when the sample that closed it arrived; 0: unknown */
} pk_ready_t;

typedef struct pk_cut {
    int64_t time_us;
    bool discontinuity;
} pk_cut_t;

typedef struct pk_audio_frame {
    media_packet_t *pkt;
    int64_t dts_ms; /* repaired */
} pk_audio_frame_t;

/* A restored rung's own sample, held until its stand-in reaches the cut
 * the rung comes back at (pk_alias_feed). */
typedef struct pk_held {
    struct pk_held *next;
    int64_t dts, pts;
    bool key;
    size_t size;
    uint8_t data[];
} pk_held_t;

typedef struct pk_track {
    bool is_video;
    bool active; /* its packets are processed */
    bool output; /* muxed as a rendition (the source video may not be) */
    bool is_rung;
    bool enabled;         /* rung: in new segments and in the master */
    bool withdraw_pending; /* rung: playlist to withdraw once its last segment is out */
    int64_t expect_from;  /* rung: first msn it is expected to produce */
    /* Copied source: a segment started on a keyframe that is not an IDR
     * picture (an open GOP), so its segments do not decode on their own. */
    bool open_gop;
    /* Rung dropped by overload protection: its playlist goes on with the
     * samples of another video rendition, its stand-in (remuxed, not
     * encoded), so that players that still know it never meet a 404 or a
     * hole. Its own configuration waits in own_config; restored, it takes
     * its own samples again at the stand-in's cut for restore_msn. */
    struct pk_track *alias;
    uint8_t *own_config;
    size_t own_config_size;
    int64_t restore_msn; /* -1: none pending */
    pk_held_t *held_head, *held_tail;
    size_t nheld;
    char name[16];
    char codec[16];

    /* Codec configuration in use, and a changed one waiting for a cut. */
    uint8_t *config;
    size_t config_size;
    bool config_valid;
    h264_config_t h264;   /* video: size and timing, whatever the codec */
    aac_config_t aac;
    media_codec_t vcodec; /* video: H.264, HEVC or AV1 (Enhanced RTMP) */
    media_codec_t next_vcodec;
    uint8_t *next_config;
    size_t next_config_size;
    bool reconfig_pending;

    /* Timestamp repair. */
    bool have_last_ms;
    int64_t offset_ms;
    int64_t last_dts_ms;
    bool have_ts;
    int64_t last_ts;      /* timescale units, last sample given to the muxer */
    int64_t next_audio_ts;
    bool warned_inactive;

    /* Muxer and the segment in progress. */
    cmaf_muxer_t *mux;
    blob_t *init;      /* rendered, not yet in the store */
    blob_t *init_live; /* the init segment in the store, re-put with each
                        * segment to renew its live TTL (an EXPIRE would say
                        * "left the playlist" to the store) */
    bool started;
    /* The init segment's name now: "" is init.mp4; a configuration that
     * changes mid-stream (a reconnect with another resolution, a rung's
     * new SPS) gets "init-<msn>.mp4" after the first segment using it, so
     * the segments before it keep theirs and stay in the playlist. */
    char map_uri[32];
    bool follow_checked; /* pk_track_follow ran */
    int64_t seg_msn;
    int64_t seg_start_us;
    bool seg_discontinuity;
    pk_ready_t ready[PK_READY_MAX];
    size_t nready;

    /* LL-HLS parts of the segment in progress (packager.part_us > 0). */
    bool seg_open;          /* the segment in progress has a sample */
    int64_t part_base_us;   /* where its part 0 starts (video: by dts; audio: at the cut) */
    bool have_part_base;    /* audio: the cut set part_base_us for the next segment */
    bool part_first_key;    /* the part in progress starts with a keyframe */
    bool part_limit_warned;
    int64_t frame_ticks;    /* shortest recent sample distance, timescale units */
    int64_t gaps[PK_GAP_HIST]; /* video: the latest distances between samples */
    size_t ngaps, gap_next;
    bool after_break;       /* the next sample follows an input break: no duration from it */
    int64_t part_arrival_us; /* when the newest source sample in the part arrived; 0: unknown */
    size_t ncur;
    hls_part_t cur_parts[PK_PARTS_MAX];
    blob_t *cur_blobs[PK_PARTS_MAX];
    cmaf_fragment_t seg_acc; /* timing of the parts so far (no data) */
    struct {
        int64_t msn;
        size_t n;
        hls_part_t parts[PK_PARTS_MAX];
    } hist[PK_PART_HIST];   /* parts of the last complete segments */
    size_t hist_next;
    bool rr_valid;          /* rendition report: the newest part in the store */
    int64_t rr_msn, rr_part;

    /* Playlist model. */
    hls_segment_t *window;
    hls_segment_t *render; /* scratch copy of the window with parts attached */
    size_t nwindow;
    int64_t media_sequence;
    int64_t discontinuity_sequence;
    int target_duration;

    /* Statistics for the master playlist and logs. */
    int64_t committed;
    double peak_bps;
    double total_bits;
    double total_seconds;
    double measured_fps;
} pk_track_t;

/* Store operations of one commit. Sized when the packager is made: a
 * commit may expire a whole window (see pk_stage_segment) per rendition. */
/* What a batch entry names, kept beside its store op so that nothing after
 * the commit (the recorder sink) parses a name back: a track's segment,
 * part or file (its init segment or a playlist), or a stream-level file
 * (track NULL: the master playlist, the next-segment record). The name is
 * built from it by hls_names.h. */
typedef struct pk_obj {
    struct pk_track *track;
    hls_name_kind_t kind; /* SEGMENT, PART; else a file */
    int64_t msn, part;
    const char *file;
} pk_obj_t;

#define PK_SEGMENT(t, n) ((pk_obj_t){.track = (t), .kind = HLS_NAME_KIND_SEGMENT, .msn = (n)})
#define PK_PART(t, n, p)                                                                       \
    ((pk_obj_t){.track = (t), .kind = HLS_NAME_KIND_PART, .msn = (n), .part = (int64_t)(p)})
#define PK_FILE(t, f) ((pk_obj_t){.track = (t), .file = (f)})
#define PK_STREAM_FILE(f) ((pk_obj_t){.file = (f)})

typedef struct pk_batch {
    store_op_t *ops;
    pk_obj_t *objs; /* what each op names */
    char (*names)[STORE_NAME_MAX + 1];
    blob_t **owned; /* blobs to release after the commit */
    size_t n, nowned, cap;
} pk_batch_t;

struct packager {
    store_t *store;
    char stream_id[STORE_ID_MAX];
    char ctx[PK_CTX_MAX];
    double segment_duration;
    int64_t target_us;
    int playlist_segments;
    double dvr_window;  /* seconds kept for seeking back; 0: off */
    size_t window_cap;  /* most segments a media playlist's window holds */
    double window_s;    /* the longest a media playlist gets, seconds */
    int64_t ended_ttl_ms;
    int64_t live_ttl_ms; /* every object written while live; see packager_new */
    int64_t part_us;     /* LL-HLS part duration (frame-aligned once known); 0: off */
    bool part_aligned;   /* part_us is a whole number of source frames */
    int64_t part_ttl_ms;
    int64_t first_msn;

    pk_mode_t mode;
    bool have_origin;
    bool resume_pending; /* packager_input_break: the next media packet rebases the timeline */
    bool resuming;       /* ...and the next cut is a discontinuity */
    int64_t origin_ms; /* publisher dts of the first media packet */
    int64_t wall0_ms;  /* wall clock when it arrived */

    /* Segment production lag (packager_segment_lag). */
    int64_t lag_msn; /* newest segment measured */
    int64_t lag_last_ms;
    double lag_sum_s;
    uint64_t lag_count;

    /* Probe buffer. */
    media_packet_t *probe_head, *probe_tail;
    size_t probe_count;
    bool probe_have_key;
    bool probe_have_audio;
    int64_t probe_first_ms, probe_last_ms;

    pk_track_t video;
    pk_track_t audio;
    pk_track_t rungs[PK_RUNGS_MAX];
    size_t nrungs;
    packager_hooks_t hooks;
    bool have_hooks;
    bool in_start; /* start_cb may add rungs */

    /* Source video cuts: pts (90 kHz) -> msn of the segment it starts. */
    struct {
        int64_t pts;
        int64_t msn;
        bool discontinuity;
    } cuthist[PK_CUTHIST_MAX];
    size_t ncuthist;
    int64_t vcut_next_msn;

    bool have_video_dts;
    int64_t last_video_dts_us;
    pk_cut_t cuts[PK_CUTS_MAX];
    size_t ncuts;
    pk_audio_frame_t *afifo;
    size_t afifo_len;

    bool master_written;
    bool master_independent; /* EXT-X-INDEPENDENT-SEGMENTS in the last master written */
    size_t master_nvariants;
    struct {
        char uri[40];
        char codecs[40];
        int64_t bandwidth;
        int width, height;
    } master_last[PK_TRACKS_MAX];
    bool finished;
    pk_batch_t batch;
    recorder_t *recorder; /* borrowed; NULL: not recorded */
};

/* ---- small helpers ---------------------------------------------------- */

static int pk_timescale(const pk_track_t *t)
{
    return t->is_video ? 90000 : t->aac.sample_rate;
}

static int64_t pk_ts_to_us(const pk_track_t *t, int64_t ts)
{
    return av_rescale(ts, 1000000, pk_timescale(t));
}

static int pk_audio_frame_size(const aac_config_t *c)
{
    /* SBR and PS double the output samples per AAC frame. */
    return c->object_type == 5 || c->object_type == 29 ? 2048 : 1024;
}

static int64_t pk_nominal_ms(const pk_track_t *t)
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

static double pk_sps_fps(const pk_track_t *v)
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

/* ---- playlists and commits -------------------------------------------- */

/* Whether a rendition goes on producing segments: a rung while it is in
 * the ladder or stands on a stand-in's samples; anything else always. */
static bool pk_publishes(const pk_track_t *t)
{
    return !t->is_rung || t->enabled || t->alias;
}

static void pk_rung_withdraw(packager_t *pk, pk_track_t *t, pk_batch_t *b);

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

static double pk_avg_bps(const pk_track_t *t)
{
    return t->total_seconds > 0 ? t->total_bits / t->total_seconds : 0;
}

typedef struct pk_master_model {
    hls_media_rendition_t media;
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
        m->media = (hls_media_rendition_t){
            .type = "AUDIO",
            .group_id = "audio",
            .name = "audio",
            .is_default = true,
            .autoselect = true,
            .channels = a->aac.channels,
            .uri = "audio/" HLS_NAME_PLAYLIST,
        };
    }
    qsort(m->variants, m->nvariants, sizeof(m->variants[0]), pk_variant_cmp);
    return true;
}

/* Renders the master when every rendition has a segment and it says
 * something new (first time, another set of variants, a higher peak,
 * other codecs or sizes). */
static int pk_master_render(packager_t *pk, bool force, blob_t **out)
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
    changed = changed || independent != pk->master_independent;
    if (!force && !changed)
        return 0;
    hls_master_playlist_t pl = {
        .independent_segments = independent,
        .media = &m.media,
        .nmedia = m.media.type ? 1 : 0,
        .variants = m.variants,
        .nvariants = m.nvariants,
    };
    int ret = hls_playlist_render_master(&pl, out);
    if (ret < 0)
        return ret;
    pk->master_written = true;
    pk->master_independent = independent;
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

/* PART-TARGET of a rendition: parts are cut at the sample boundary nearest
 * to each multiple of part_us, so they may run over it by half a sample
 * (none when part_us is a whole number of frames of this video). */
static double pk_part_target(const packager_t *pk, const pk_track_t *t)
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
static const char *pk_map_name(const pk_track_t *t)
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

typedef enum pk_variant {
    PK_FULL = 0,
    PK_SKIP,   /* _HLS_skip=YES */
    PK_SKIP_V2 /* _HLS_skip=v2 */
} pk_variant_t;

static const char *const pk_variant_names[] = {HLS_NAME_PLAYLIST, HLS_NAME_PLAYLIST_SKIP,
                                               HLS_NAME_PLAYLIST_SKIP2};

static int pk_media_render(packager_t *pk, pk_track_t *t, bool ended, pk_variant_t variant,
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
    if (!ll)
        return hls_playlist_render_media(&pl, out);

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
    return hls_playlist_render_media(&pl, out);
}

static void pk_batch_add(pk_batch_t *b, store_op_kind_t kind, blob_t *blob, int64_t ttl_ms,
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

static void pk_batch_drop(pk_batch_t *b)
{
    for (size_t i = 0; i < b->nowned; i++)
        blob_unref(b->owned[i]);
    b->nowned = 0;
    b->n = 0;
}

static size_t pk_tracks(packager_t *pk, pk_track_t **list);

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

static int pk_batch_commit(packager_t *pk, pk_batch_t *b)
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
static int pk_playlists_add(packager_t *pk, pk_track_t *t, bool ended, int64_t ttl_ms,
                            pk_batch_t *b)
{
    bool deltas = pk->part_us > 0 && pk_can_skip_until(pk, t) > 0;
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
static void pk_init_add(packager_t *pk, pk_track_t *t, pk_batch_t *b, int64_t msn)
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
static bool pk_track_follow(packager_t *pk, pk_track_t *t, int64_t first_msn)
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
static size_t pk_tracks(packager_t *pk, pk_track_t **list)
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
static void pk_rung_withdraw(packager_t *pk, pk_track_t *t, pk_batch_t *b)
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
static int pk_commit_ready(packager_t *pk, bool draining)
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

/* Cuts the samples pushed since the last part into part t->ncur of the
 * segment in progress, the last sample lasting until end_ts. */
static int pk_part_close(packager_t *pk, pk_track_t *t, int64_t end_ts)
{
    cmaf_fragment_t f;
    int ret = cmaf_muxer_flush(t->mux, end_ts, &f);
    if (ret < 0)
        return ret;
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

int packager_push(packager_t *pk, media_packet_t *pkt)
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
    default: /* metadata is informational; EOS goes to packager_finish */
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
    free(pk->batch.ops);
    free(pk->batch.objs);
    free(pk->batch.names);
    free(pk->batch.owned);
    free(pk);
}
