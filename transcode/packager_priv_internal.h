/*
 * What the two halves of the packager share: packager.c (probing,
 * timestamps, cuts, the muxers) and publish.c (the batch, the playlist
 * models, the commit, the recorder sink). The packager's state, its tracks
 * and the batch of store operations are defined here; the functions each
 * half calls in the other are declared here. Included only by those two
 * files; the pipeline uses packager_internal.h. Same thread rules: one
 * worker thread per packager.
 */
#ifndef SLUICE_TRANSCODE_PACKAGER_PRIV_INTERNAL_H
#define SLUICE_TRANSCODE_PACKAGER_PRIV_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blob.h"
#include "cmaf_internal.h"
#include "codec_config.h"
#include "hls_names.h"
#include "hls_playlist.h"
#include "media.h"
#include "packager_internal.h"
#include "store.h"

#define PK_GAP_HIST 8             /* video sample distances behind frame_ticks */
#define PK_CUTS_MAX 16
#define PK_READY_MAX 8
#define PK_CTX_MAX 96
#define PK_RUNGS_MAX 8            /* TRANSCODE_RUNGS_MAX */
#define PK_TRACKS_MAX (PK_RUNGS_MAX + 2)
#define PK_CUTHIST_MAX 64         /* recent cuts, for rungs whose encoders lag */
#define PK_PARTS_MAX 384          /* LL-HLS parts of one segment (128 s of 1/3 s parts); later media joins the last */
#define PK_PART_SEGS 2            /* complete segments whose parts stay in the playlist */
#define PK_META_MAX 64           /* timed-metadata items a rendition's parts may still owe */
#define PK_DATERANGES_MAX 1024   /* EXT-X-DATERANGEs a playlist holds (oldest go first) */
#define PK_DR_REMOVED_MAX 64     /* ids kept for RECENTLY-REMOVED-DATERANGES */
#define PK_DR_CLASS "com.sluice.metadata"
#define PK_DR_ID_MAX 24          /* "sluice-4294967295" */
#define PK_PART_HIST (PK_PART_SEGS + 1) /* ...and the one before: the last live
                                         * playlist's, once the stream ends */

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

/* A timed-metadata item on its way into every rendition's parts (an emsg
 * before the moof of the first part whose time range ends after it). */
typedef struct pk_meta {
    uint64_t seq;    /* packager.meta_seq when it came */
    uint32_t id;
    int64_t time_ms; /* media time on the stream timeline */
    blob_t *payload;
} pk_meta_t;

/* An EXT-X-DATERANGE of the media playlists. */
typedef struct pk_daterange {
    char id[PK_DR_ID_MAX];
    int64_t start_ms; /* START-DATE */
    blob_t *payload;
} pk_daterange_t;

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
    /* Rung on demand (packager_rung_set_idle): idle, it is not encoded and
     * its playlist is withdrawn, but it stays in the master; woken, it
     * starts a fresh window at a cut (wake_fresh until its first sample). */
    bool idle;
    bool wake_fresh;
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

    /* Timed metadata: the seq of the first item its parts have not carried. */
    uint64_t meta_next;

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
    bool captions;           /* the source carries closed captions (packager_set_captions) */
    bool master_captions;    /* ...and the last master written declares them */
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

    /* Timed metadata: items for the parts (a ring by seq), the date
     * ranges of the playlists (oldest first), the ids dropped lately. */
    pk_meta_t meta[PK_META_MAX];
    uint64_t meta_seq; /* the next item's seq */
    pk_daterange_t *dr;
    size_t ndr;
    struct {
        char id[PK_DR_ID_MAX];
        int64_t mono_ms;
    } dr_removed[PK_DR_REMOVED_MAX];
    size_t ndr_removed; /* ever; dr_removed[i % PK_DR_REMOVED_MAX] */
    /* The clock as last published (packager_params_t.clock). */
    pthread_mutex_t *clock_lock;
    packager_clock_t *clock_out;
    packager_clock_t clock_pub;
};

/* ---- packager.c: small helpers publish.c uses too ----------------------- */

/* Units per second of t's timestamps: 90 kHz video, the sample rate for audio. */
int pk_timescale(const pk_track_t *t);

/* A timestamp of t in microseconds. */
int64_t pk_ts_to_us(const pk_track_t *t, int64_t ts);

/* Samples per AAC frame of the configuration (2048 with SBR or PS). */
int pk_audio_frame_size(const aac_config_t *c);

/* The nominal duration of one sample of t, milliseconds. */
int64_t pk_nominal_ms(const pk_track_t *t);

/* The frame rate the video's configuration states; 0 when it states none plausible. */
double pk_sps_fps(const pk_track_t *v);

/* The mapping of input dts to media time and date-time now. */
void pk_clock(const packager_t *pk, packager_clock_t *c);

/* ---- publish.c: the batch, the playlists, the commit ------------------ */

/* Adds a date range (id, start, payload: a reference is taken). */
void pk_daterange_add(packager_t *pk, uint32_t id, int64_t start_ms, blob_t *payload);

/* Frees the date ranges. */
void pk_dateranges_free(packager_t *pk);

/* Whether t goes on producing segments (a rung in the ladder or on a stand-in). */
bool pk_publishes(const pk_track_t *t);

/* Every rendition that is muxed, into list; returns how many. */
size_t pk_tracks(packager_t *pk, pk_track_t **list);

/* t's average bit rate over what it has committed. */
double pk_avg_bps(const pk_track_t *t);

/* The name of t's init segment now. */
const char *pk_map_name(const pk_track_t *t);

/* PART-TARGET of t, seconds. */
double pk_part_target(const packager_t *pk, const pk_track_t *t);

/* Renders the master when it says something new (or force); *out NULL otherwise. */
int pk_master_render(packager_t *pk, bool force, blob_t **out);

/* Adds one store op naming obj to b; takes the blob when owned, on every path. */
void pk_batch_add(pk_batch_t *b, store_op_kind_t kind, blob_t *blob, int64_t ttl_ms,
                  bool owned, pk_obj_t obj);

/* Empties b without committing, releasing the blobs it owns. */
void pk_batch_drop(pk_batch_t *b);

/* Commits b (with the next segment number) to the store and the recorder; empties it. */
int pk_batch_commit(packager_t *pk, pk_batch_t *b);

/* Adds t's media playlist (and its delta-update versions) to b. */
int pk_playlists_add(packager_t *pk, pk_track_t *t, bool ended, int64_t ttl_ms,
                     pk_batch_t *b);

/* Adds t's init segment to b, under a new name if it changed; from segment msn. */
void pk_init_add(packager_t *pk, pk_track_t *t, pk_batch_t *b, int64_t msn);

/* Continues a live playlist an earlier writer left for t; whether it does. */
bool pk_track_follow(packager_t *pk, pk_track_t *t, int64_t first_msn);

/* Withdraws a disabled rung's playlist and expires its segments, in b. */
void pk_rung_withdraw(packager_t *pk, pk_track_t *t, pk_batch_t *b);

/* Commits the finished segments that are due (all of them when draining). */
int pk_commit_ready(packager_t *pk, bool draining);

#endif
