/*
 * Packager: turns one stream's media packets into HLS objects in the store.
 * It decides where segments are cut (video keyframes once the target
 * duration has passed; audio at the same media time), keeps the playlist
 * models (live window, target duration, master playlist attributes), drives
 * one CMAF muxer per rendition and commits each new segment together with
 * the playlists that name it in one atomic store commit.
 *
 * One packager per broadcast, owned and used by that stream's transcode
 * worker thread only.
 */
#ifndef SLUICE_TRANSCODE_PACKAGER_INTERNAL_H
#define SLUICE_TRANSCODE_PACKAGER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#include "codec_config.h"
#include "media.h"
#include "recorder.h"
#include "store.h"

typedef struct packager packager_t;

/*
 * How the packager maps its input's clock (media packets' dts_ms) to the
 * playlists' timeline and program date-times, published for other threads
 * (transcode_stream_clock: the admin API stamps timed metadata with the
 * same numbers the packager will use). media time (ms) = dts - origin_ms +
 * offset_ms + PACKAGER_TIMELINE_START_MS; program date-time = wall0_ms +
 * media time - PACKAGER_TIMELINE_START_MS.
 */
#define PACKAGER_TIMELINE_START_MS 1000
typedef struct packager_clock {
    bool valid; /* false: no media yet, or an input break not yet rebased */
    int64_t origin_ms;
    int64_t offset_ms;
    int64_t wall0_ms;
} packager_clock_t;

/* The media time (ms) and program date-time (ms since the epoch) of dts_ms under c. */
static inline void packager_clock_map(const packager_clock_t *c, int64_t dts_ms,
                                      int64_t *media_ms, int64_t *pdt_ms)
{
    int64_t m = dts_ms - c->origin_ms + c->offset_ms + PACKAGER_TIMELINE_START_MS;
    *media_ms = m;
    *pdt_ms = c->wall0_ms + m - PACKAGER_TIMELINE_START_MS;
}

/*
 * Hooks that let the transcode pipeline build a ladder on the packager's
 * decisions. Both run on the worker thread, inside packager_push() or
 * packager_end_input(). start_cb may call packager_set_source_output() and
 * packager_rung_add(); sample_cb may call the packager_rung_*() functions
 * that feed, reconfigure or enable rungs, and packager_set_captions();
 * neither may call anything else.
 */
typedef struct packager_hooks {
    void *opaque;
    /* The stream's shape is known, before any sample: video (NULL when
     * audio only) with its avcC. The callback decides whether the source
     * is a rendition itself (packager_set_source_output) and adds the
     * transcoded rungs. A negative errno stops the stream. */
    int (*start_cb)(void *opaque, packager_t *pk, const h264_config_t *video,
                    const uint8_t *avcc, size_t avcc_size);
    /* Every source video sample from the first keyframe on, in decode
     * order, after timestamp repair (90 kHz): `cut` says this keyframe
     * starts a segment (the first one included), `msn` is the sequence
     * number of the segment it belongs to. */
    int (*sample_cb)(void *opaque, const media_packet_t *pkt, int64_t dts, int64_t pts, bool key,
                     bool cut, int64_t msn);
} packager_hooks_t;

typedef struct packager_params {
    store_t *store;
    const char *stream_id;   /* copied */
    const char *log_ctx;     /* copied; NULL: "stream=<id>" */
    double segment_duration; /* target seconds */
    int playlist_segments;   /* live window */
    double part_duration;    /* LL-HLS part target, seconds; 0: no parts */
    int64_t ended_ttl_ms;    /* lifetime of everything once the stream ends */
    double dvr_window;       /* seconds the media playlists keep for seeking back; 0: only
                              * playlist_segments (the live window is never shorter) */
    int64_t first_msn;       /* media sequence number of the first segment */
    const packager_hooks_t *hooks; /* NULL: the source is the only video rendition; copied */
    /* Recording of the broadcast (borrowed; NULL: not recorded): every
     * segment, with its init segment, and every master playlist go to it
     * after their store commit succeeded (pk_batch_commit). */
    recorder_t *recorder;
    /* Where the packager publishes its clock (written under clock_lock
     * whenever it changes; NULL: not published). */
    pthread_mutex_t *clock_lock;
    packager_clock_t *clock;
} packager_params_t;

int packager_new(const packager_params_t *params, packager_t **out)
    __attribute__((warn_unused_result));

/* Feeds one packet (not EOS: use packager_finish). Takes ownership of `pkt`
 * on every path. Returns 0, or a negative errno when the stream cannot be
 * packaged any further (already logged); the caller then ends the worker. */
int packager_push(packager_t *pk, media_packet_t *pkt) __attribute__((warn_unused_result));

/* The source video's codec (H.264, HEVC or AV1): only H.264 may be a
 * rendition as it is; others are decoded. For hooks->start_cb. */
media_codec_t packager_video_codec(const packager_t *pk);

/* Source video as a rendition: its name ("720p"), or NULL for not muxed
 * (transcoded rungs only). Only from hooks->start_cb; default: muxed under
 * "<height>p". */
int packager_set_source_output(packager_t *pk, const char *name);

/* Adds a transcoded video rendition with its avcC (copied); *index names it
 * in the calls below. Only from hooks->start_cb. */
int packager_rung_add(packager_t *pk, const char *name, const uint8_t *avcc, size_t size,
                      int *index) __attribute__((warn_unused_result));

/* One encoded sample of rung `index` (AVCC, 90 kHz, copied). A keyframe
 * whose pts is the start of a segment (sample_cb's cut) closes the rung's
 * segment in progress; segments keep the numbers of the source's cuts.
 * Returns 0 or a negative errno. */
int packager_rung_push(packager_t *pk, int index, const uint8_t *data, size_t size, int64_t dts,
                       int64_t pts, bool key) __attribute__((warn_unused_result));

/* The rung's encoder was reopened with a different avcC: a new init
 * segment and a discontinuity at its next segment. */
int packager_rung_reconfigure(packager_t *pk, int index, const uint8_t *avcc, size_t size)
    __attribute__((warn_unused_result));

/* Overload protection: enabled = false closes the rung's segment in
 * progress (every sample pushed so far is published) and leaves the rung
 * out of new segments and of the master playlist; its media playlist is
 * withdrawn so players move to another rung. enabled = true brings it back
 * from segment `from_msn` with a fresh playlist window. */
int packager_rung_set_enabled(packager_t *pk, int index, bool enabled, int64_t from_msn)
    __attribute__((warn_unused_result));

/* Rungs on demand. idle = true: nobody watches the rung; its encoder has
 * been drained into it (packager_rung_push), so its segment in progress is
 * cut and published, and its playlists are withdrawn (its segments expire
 * like ones leaving the window) while the master goes on naming it: the
 * origin holds a request for it until it is back. idle = false: it starts
 * again at the source's cut for segment from_msn with a fresh window
 * (EXT-X-MEDIA-SEQUENCE from_msn, no EXT-X-DISCONTINUITY: nothing precedes
 * it, and EXT-X-DISCONTINUITY-SEQUENCE is the one the other renditions'
 * segment from_msn has), so its segment from_msn has the same number,
 * start and date-time as theirs; avcc (of its new encoder) gets a new init
 * segment when it differs. From sample_cb. */
int packager_rung_set_idle(packager_t *pk, int index, bool idle, int64_t from_msn,
                           const uint8_t *avcc, size_t avcc_size)
    __attribute__((warn_unused_result));

/* The source carries closed captions (CEA-608/708 in SEI), so every video
 * rendition does: from its next rewrite on, the master has an
 * EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS group that every variant names. For the
 * rest of the broadcast; calling it again does nothing. From sample_cb. */
void packager_set_captions(packager_t *pk);

/* Measured average bit rate of a rendition's committed segments (bits/s),
 * for status; index -1 is the source rendition. */
double packager_rung_bitrate(const packager_t *pk, int index);

/* Decides the stream's shape if it is still being probed (the end of input
 * is near): start_cb and sample_cb may run. Call before packager_finish()
 * when the hooks' owner must flush what the hooks produced. */
int packager_end_input(packager_t *pk) __attribute__((warn_unused_result));

/* The input broke off (the publisher dropped, or the worker recovers from
 * a failure) but the stream goes on: every segment in progress is cut and
 * published (playlists stay live, without EXT-X-ENDLIST), and the next
 * input, from its first keyframe, continues the same playlists after an
 * EXT-X-DISCONTINUITY: numbers keep counting, timestamps continue where
 * this input ended, program date-times jump to the wall clock, and a
 * changed configuration gets a new init segment (its own name). Hooks'
 * owners flush what they hold before calling it. Returns 0 or a negative
 * errno. */
int packager_input_break(packager_t *pk) __attribute__((warn_unused_result));

/* Ends the live playlists another writer left in the store for stream_id
 * (a node that handed the stream over at shutdown and whose publisher did
 * not come back): every media playlist the master names gets EXT-X-ENDLIST
 * (parts, preload hints and rendition reports of the live version
 * dropped), its delta updates go, and the master and playlists expire after
 * ended_ttl_ms. Playlists already ended are left. Returns the number of
 * playlists ended, or a negative errno. */
int packager_end_stored(store_t *st, const char *stream_id, int64_t ended_ttl_ms)
    __attribute__((warn_unused_result));

/* End of stream: flushes the last (partial) segments, writes the playlists
 * with EXT-X-ENDLIST and lets every object of the broadcast expire after
 * ended_ttl_ms. Returns 0 or a negative errno. */
int packager_finish(packager_t *pk) __attribute__((warn_unused_result));

/* How long an object written while live stays in the store (playlists,
 * init segments, and anything that should live as long, like thumbnails). */
int64_t packager_live_ttl_ms(const packager_t *pk);

/* The first media sequence number this packager has not used; a later
 * broadcast of the same stream starts there. */
int64_t packager_next_msn(const packager_t *pk);

/* Segments committed so far (per rendition; the larger count). */
int64_t packager_segments_written(const packager_t *pk);

/* Segment production lag: from the arrival in ingest of the frame that
 * closed a segment to the segment's commit; the newest, and the sum and
 * count over the broadcast (once per segment number). */
void packager_segment_lag(const packager_t *pk, int64_t *last_ms, double *sum_s, uint64_t *count);

/* Frees everything; pending media is dropped. NULL does nothing. */
void packager_free(packager_t *pk);

#endif
