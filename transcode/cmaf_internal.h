/*
 * CMAF fMP4 writer for one track (one rendition): libavformat's "mp4" muxer
 * in fragmented mode, writing into memory. cmaf_muxer_new() yields the init
 * segment (ftyp+moov); samples are pushed one at a time and
 * cmaf_muxer_flush() yields one fragment (moof+mdat) holding every sample
 * pushed since the previous flush.
 *
 * The mp4 muxer needs each sample's duration when it writes a fragment, so
 * the writer holds the newest sample back and gives it to the muxer when the
 * next one arrives (duration = next dts - this dts) or at the flush, whose
 * caller names the dts that ends the fragment.
 *
 * Timestamps are in the track's timescale (90000 for video, the sample rate
 * for audio) and must be strictly increasing in dts. A muxer is owned by one
 * worker thread.
 */
#ifndef SLUICE_TRANSCODE_CMAF_INTERNAL_H
#define SLUICE_TRANSCODE_CMAF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blob.h"

typedef enum cmaf_track_kind {
    CMAF_TRACK_VIDEO = 1, /* H.264, AVCC samples, avcC extradata */
    CMAF_TRACK_AUDIO,     /* AAC, raw frames, AudioSpecificConfig extradata */
} cmaf_track_kind_t;

typedef struct cmaf_track_params {
    cmaf_track_kind_t kind;
    const uint8_t *extradata;
    size_t extradata_size;
    int width, height;       /* video */
    int sample_rate;         /* audio; also its timescale */
    int channels;            /* audio */
    int frame_size;          /* audio samples per frame (1024) */
    const char *log_ctx;     /* borrowed for the muxer's life */
    const char *name;        /* the rendition, for logs (copied); NULL: "video"/"audio" */
} cmaf_track_params_t;

typedef struct cmaf_muxer cmaf_muxer_t;

/* A finished fragment. */
typedef struct cmaf_fragment {
    blob_t *data;        /* moof+mdat; the caller owns this reference */
    int64_t start_dts;   /* timescale units */
    int64_t start_pts;
    int64_t duration;    /* sum of sample durations */
    int samples;
} cmaf_fragment_t;

/* Creates a muxer and renders its init segment into *init (caller's
 * reference). Returns 0 or a negative errno (libav failures are logged). */
int cmaf_muxer_new(const cmaf_track_params_t *params, cmaf_muxer_t **out, blob_t **init)
    __attribute__((warn_unused_result));

/* The track's timescale (ticks per second). */
int cmaf_muxer_timescale(const cmaf_muxer_t *m);

/* Queues one sample (data is copied). dts must be greater than the previous
 * sample's. The first sample after a flush starts where the flushed
 * fragment ended (end_dts, an estimate or a bound): its dts becomes that
 * end (its pts moved as much when it came later; kept, or raised to the new
 * dts, when it came earlier), and a sample that still comes before a
 * moved-up one follows it by one tick.
 * Returns 0 or a negative errno (-EINVAL for a dts not after the previous
 * sample's, with the timestamps in the log and the failure note). */
int cmaf_muxer_push(cmaf_muxer_t *m, const uint8_t *data, size_t size, int64_t dts, int64_t pts,
                    bool keyframe) __attribute__((warn_unused_result));

/* Number of samples pushed since the last flush (the held one included). */
int cmaf_muxer_pending(const cmaf_muxer_t *m);

/* The next sample follows a break in the input (a returning publisher, a
 * rung back after a drop): it is not placed where the last fragment ended
 * (the mp4 muxer still starts the fragment there; the playlist marks the
 * break as a discontinuity). */
void cmaf_muxer_break(cmaf_muxer_t *m);

/* The fragment in progress: where it starts (dts, and the pts of its first
 * sample when start_pts is not NULL) and the dts of its newest sample, on
 * the muxer's timeline. False when nothing is pending. */
bool cmaf_muxer_span(const cmaf_muxer_t *m, int64_t *start_dts, int64_t *held_dts,
                     int64_t *start_pts);

/* Writes the held sample with duration end_dts - its dts (end_dts <= its
 * dts: the previous sample's duration is reused) and cuts a fragment.
 * With nothing pending, returns -ENODATA. */
int cmaf_muxer_flush(cmaf_muxer_t *m, int64_t end_dts, cmaf_fragment_t *out)
    __attribute__((warn_unused_result));

/* Frees the muxer (pending samples are dropped). NULL does nothing. */
void cmaf_muxer_free(cmaf_muxer_t *m);

#endif
