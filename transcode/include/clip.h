/*
 * Clips (docs/clips.md): a [start, end) range of one recorded H.264
 * rendition (init + fMP4 media segments, as files) plus the audio
 * rendition's, made into one faststart MP4 that starts and ends on the
 * requested frames by a smart cut: every whole GOP inside the range is
 * copied as it is; only the partial GOPs at each end are decoded and
 * encoded again (libx264, same size and profile, their own SPS/PPS in-band;
 * the copied GOPs keep the source's, in the sample description and again
 * in-band at the first copied keyframe after an encoded GOP). Audio (AAC) is
 * copied, cut at the AAC frames nearest the range's ends. Written to a
 * hidden temp name in the clip's directory and renamed when complete.
 *
 * clip_make is the maker, synchronous, any thread. clip_service_t is the
 * one worker thread with a bounded queue that the admin API hands requests
 * to, so that it answers at once; the service keeps the clip's JSON in the
 * recordings layout (record_layout.h) up to date: "processing" -> "ready"
 * or "failed" (with "reason").
 */
#ifndef SLUICE_TRANSCODE_CLIP_H
#define SLUICE_TRANSCODE_CLIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "blob.h"
#include "record_layout.h"

#define CLIP_MP4 "clip.mp4"
#define CLIP_POSTER "poster.jpg"
#define CLIP_KIND "clip"
#define CLIP_QUEUE_MAX 16

/* One rendition's segments: [0] is the init segment, the rest the media
 * segments in order (one init for all of them: no discontinuity); as
 * files (paths) or, from the live store, as blobs (blobs not NULL: paths
 * unused). Owned: clip_track_deinit. */
typedef struct clip_track {
    char **paths;
    blob_t **blobs;
    size_t n;
} clip_track_t;

/* The HLS form (optional): every rendition's whole segments that the
 * range touches, copied as they are, with a VOD playlist each, and the
 * source's master playlist (its variants of renditions not there left
 * out). */
typedef struct clip_hls_rend {
    char name[RECORD_RENDITION_MAX];
    clip_track_t track; /* [0] the init segment (segs[0].init), then segs' */
    record_seg_t *segs; /* owned */
    size_t nsegs;
} clip_hls_rend_t;

typedef struct clip_input {
    clip_hls_rend_t *hls; /* owned; NULL: no HLS form */
    size_t nhls;
    blob_t *hls_master; /* owned; the source's master playlist */
    clip_track_t video;
    clip_track_t audio; /* n == 0: no audio */
    /* The range, in ms from the start (first presented video frame) of the
     * first video segment. */
    int64_t start_ms;
    int64_t duration_ms;
} clip_input_t;

typedef struct clip_result {
    double duration_s;    /* of the video track */
    uint64_t frames;      /* video frames written */
    uint64_t copied;      /* of which copied as they were */
    uint64_t encoded;     /* of which encoded again */
    uint64_t bytes;       /* of the MP4 */
    double audio_start_s; /* where the audio starts against the video (0: together) */
    bool hls;             /* the HLS form was written */
} clip_result_t;

/*
 * Makes out_mp4 (through "DIR/.NAME.tmp", renamed when complete) and, when
 * poster_jpg is not NULL, a JPEG of the first frame. why (n bytes) says
 * what failed. 0; -ENOENT (files missing), -ERANGE (the range is not inside
 * the segments), -EPROTO (media the maker cannot cut), -EIO, -ENOMEM.
 */
int clip_make(const clip_input_t *in, const char *out_mp4, const char *poster_jpg,
              clip_result_t *res, char *why, size_t n) __attribute__((warn_unused_result));

void clip_track_deinit(clip_track_t *t);
/* Releases everything in (tracks, HLS form); safe to repeat. */
void clip_input_deinit(clip_input_t *in);

/* ---- the worker ------------------------------------------------------- */

typedef struct clip_service clip_service_t;

/* A clip is ready: its JSON (borrowed). On the clip worker thread. */
typedef void (*clip_ready_cb)(void *opaque, const char *cid, const json_t *clip);

typedef struct clip_service_params {
    const char *recordings_dir; /* copied */
    int64_t max_age_s;          /* --clips-max-age: applied at start and every minute; 0: forever */
    clip_ready_cb ready_cb;     /* NULL: none */
    void *opaque;
} clip_service_params_t;

/* Starts the worker. Clips left "processing" by an earlier run become
 * "failed" ("interrupted") and their temp files are removed; clips older
 * than max_age_s are deleted (record_retention_clips), then again every
 * minute between clips. 0, -ENOMEM,
 * -EAGAIN. */
int clip_service_new(const clip_service_params_t *p, clip_service_t **out)
    __attribute__((warn_unused_result));
/* Stops the worker after the clip it is making; queued ones are marked
 * failed ("interrupted"). NULL: nothing. */
void clip_service_free(clip_service_t *s);

/* Queues the making of clip cid (its directory and "processing" JSON
 * already written). Takes in's tracks on every path. 0; -EBUSY (queue
 * full); -ENOMEM. */
int clip_service_submit(clip_service_t *s, const char *cid, clip_input_t *in)
    __attribute__((warn_unused_result));

#endif
