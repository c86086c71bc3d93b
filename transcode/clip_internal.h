/*
 * The pure part of the clip maker (clip.h): which GOPs of a range are
 * copied, which are encoded again and which are left out. Exposed for unit
 * tests.
 */
#ifndef SLUICE_TRANSCODE_CLIP_INTERNAL_H
#define SLUICE_TRANSCODE_CLIP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clip.h"

/* A video frame in decode order. */
typedef struct clip_frame {
    int64_t pts;
    bool key;
} clip_frame_t;

typedef enum clip_gop_action {
    CLIP_GOP_SKIP = 0, /* no frame of it is in the range */
    CLIP_GOP_COPY,     /* every frame is: its packets go out as they are */
    CLIP_GOP_ENCODE,   /* some are: decoded, those in the range encoded again */
} clip_gop_action_t;

/* Frames [first, end) in decode order; the first is a keyframe (or the
 * stream's first frame). */
typedef struct clip_gop {
    size_t first, end;
    clip_gop_action_t action;
    size_t selected; /* frames of it in the range */
} clip_gop_t;

/*
 * Splits frames[0..n) (decode order) at keyframes into *gops (a new array,
 * free()) and decides each: a frame is in the range when start <= pts <
 * end. *first_pts / *last_pts: the range's first and last frame. 0;
 * -ERANGE (no frame in the range, or the first frame is not a keyframe
 * and the range touches the frames before the first keyframe); -ENOMEM.
 */
int clip_plan(const clip_frame_t *frames, size_t n, int64_t start, int64_t end, clip_gop_t **gops,
              size_t *ngops, int64_t *first_pts, int64_t *last_pts)
    __attribute__((warn_unused_result));

/* Annex B (start codes) -> 4-byte length-prefixed NAL units, in out (cap
 * bytes). Its size, or -EMSGSIZE / -EPROTO. */
int clip_annexb_to_lp(const uint8_t *in, size_t len, uint8_t *out, size_t cap);

/* The SPS and PPS of an avcC record as 4-byte length-prefixed NAL units,
 * in out (cap bytes). Its size; -EPROTO (not an avcC with 4-byte lengths),
 * -EMSGSIZE. */
int clip_avcc_param_sets(const uint8_t *avcc, size_t len, uint8_t *out, size_t cap);

/* The HLS form's master: the source's master playlist less the variants
 * (EXT-X-STREAM-INF + URI) and EXT-X-MEDIA lines of renditions in->hls
 * does not have. A new blob; NULL on OOM. */
blob_t *clip_hls_master(const blob_t *src, const clip_input_t *in);

#endif
