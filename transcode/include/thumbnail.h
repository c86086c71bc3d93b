/*
 * Live thumbnails: the picture that starts a segment, as a JPEG (libavcodec's
 * MJPEG encoder), stored as "thumbnail.jpg" in the stream's namespace, and
 * the same JPEG scaled to a smaller width for the origin's ?width=N.
 *
 * Producer side (thumbnail_t): owned by one pipeline and used only on its
 * transcode worker thread. Consumer side (thumbnail_scale): pure, any
 * thread, no shared state; app.c hands it to the origin as a callback so
 * that the origin never links libav itself.
 *
 * This header is transcode's second public header, on purpose: the origin
 * (through app.c) and the recorder's poster may use thumbnail_scale and
 * thumbnail_encode; libav types appear only as opaque pointers.
 */
#ifndef SLUICE_TRANSCODE_THUMBNAIL_H
#define SLUICE_TRANSCODE_THUMBNAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blob.h"
#include "media.h"
#include "store.h"

#define THUMBNAIL_NAME "thumbnail.jpg"
#define THUMBNAIL_WIDTH_MIN 16
#define THUMBNAIL_WIDTH_MAX 1280 /* stored thumbnails are at most this wide */
#define THUMBNAIL_QUALITY 5      /* MJPEG qscale: 2 best .. 31 worst */

struct AVFrame;

/* The size a w x h picture gets when it is made `width` wide (capped at w:
 * never upscaled), keeping the aspect ratio; at least 1x1. Pure. */
void thumbnail_fit(int w, int h, int width, int *out_w, int *out_h);

/* Encodes a decoded picture (any pixel format libswscale reads, limited or
 * full range) as a full-range JPEG at most max_width wide (thumbnail_fit).
 * *out = a new blob (refcount 1). 0, -EINVAL, -ENOMEM, -EIO. Any thread. */
int thumbnail_encode(const struct AVFrame *pic, int max_width, blob_t **out)
    __attribute__((warn_unused_result));

/* Decodes a JPEG and encodes it again `width` wide (thumbnail_fit: a width
 * at or above the JPEG's own gives a copy of it, never an upscale). *out = a
 * new blob. 0, -EINVAL (width out of range), -EPROTO (not a JPEG we can
 * decode), -ENOMEM, -EIO. Any thread; no shared state. */
int thumbnail_scale(const uint8_t *jpeg, size_t size, int width, blob_t **out)
    __attribute__((warn_unused_result));

/* ---- producer: one per pipeline, its worker thread only ---------------- */

typedef struct thumbnail thumbnail_t;

typedef struct thumbnail_params {
    store_t *store;
    const char *stream_id; /* copied */
    const char *log_ctx;   /* copied */
    int64_t live_ttl_ms;   /* TTL of each thumbnail written while live (0: 10 min) */
    int64_t ended_ttl_ms;  /* TTL of the last one once the stream ends (0: 10 min) */
} thumbnail_params_t;

int thumbnail_new(const thumbnail_params_t *p, thumbnail_t **out)
    __attribute__((warn_unused_result));
/* thumbnail_free(NULL) does nothing. */
void thumbnail_free(thumbnail_t *th);

/* A picture the pipeline decoded anyway (the first of a segment): encoded
 * and stored. Errors are logged (the first one at warning level) and
 * swallowed: a thumbnail never stops a stream. */
void thumbnail_picture(thumbnail_t *th, const struct AVFrame *pic);

/* A copy-only ladder's segment-starting keyframe: decoded on its own with a
 * small single-threaded decoder (opened on first use, reopened when the
 * configuration record changes), then as thumbnail_picture. */
void thumbnail_keyframe(thumbnail_t *th, media_codec_t codec, const uint8_t *config,
                        size_t config_size, const uint8_t *data, size_t size);

/* The stream ended: the last thumbnail lives for ended_ttl_ms more. */
void thumbnail_end(thumbnail_t *th);

/* Milliseconds the last thumbnail took (decode when needed, scale, encode
 * and store); thumbnails made so far. For tests and debug logs. */
double thumbnail_last_ms(const thumbnail_t *th);
uint64_t thumbnail_count(const thumbnail_t *th);

#endif
