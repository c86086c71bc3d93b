/*
 * One transcoded rung: a libswscale context that turns decoded source
 * frames into the rung's size (yuv420p), and a libx264 encoder (through
 * libavcodec) configured for aligned live segments: no scene-cut keyframes,
 * closed GOPs, no keyframe of its own (keyint infinite) so that the only
 * IDRs are the ones the caller forces at segment starts, ABR at the rung's
 * bit rate with a VBV max rate.
 *
 * Output samples are AVCC (4-byte lengths) with an avcC configuration
 * record, the same shape as what ingest hands over for a published stream,
 * so the packager treats passthrough and transcoded rungs alike.
 *
 * Owned and used by one transcode worker thread.
 */
#ifndef SLUICE_TRANSCODE_RUNG_INTERNAL_H
#define SLUICE_TRANSCODE_RUNG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct AVFrame;

typedef struct rung_encoder_params {
    const char *name;     /* for logs */
    int width, height;    /* output, even */
    int bitrate_kbps, maxrate_kbps;
    const char *profile;  /* "high", "main", "baseline" */
    const char *preset;   /* x264 preset in use */
    const char *pin_preset; /* the configured preset: parameters that shape
                             * SPS/PPS are pinned to it so a preset step
                             * keeps the same avcC; NULL: none */
    int fps_num, fps_den; /* source frame rate (rate-control hint); 0: 30 */
    int threads;          /* x264 threads */
    const char *log_ctx;  /* borrowed for the encoder's life */
} rung_encoder_params_t;

typedef struct rung_encoder rung_encoder_t;

typedef struct rung_sample {
    uint8_t *data; /* AVCC; owned by the encoder until the next receive */
    size_t size;
    int64_t dts, pts; /* 90 kHz */
    bool key;
} rung_sample_t;

int rung_encoder_open(const rung_encoder_params_t *p, rung_encoder_t **out)
    __attribute__((warn_unused_result));

/* The encoder's avcC record (valid for the encoder's life). */
void rung_encoder_avcc(const rung_encoder_t *e, const uint8_t **data, size_t *size);

/* Scales `src` (any size and planar YUV format libswscale reads) to the
 * rung and encodes it at src->pts (90 kHz); force_idr makes it an IDR.
 * Returns 0 or a negative errno. */
int rung_encoder_send(rung_encoder_t *e, const struct AVFrame *src, bool force_idr)
    __attribute__((warn_unused_result));

/* The picture last handed to the encoder, at the rung's size (yuv420p),
 * for a smaller rung to be scaled from; NULL before the first send. Valid
 * until the next send, flush or free. */
const struct AVFrame *rung_encoder_picture(const rung_encoder_t *e);

/* Signals the end of input: every frame still inside the encoder comes out
 * through rung_encoder_receive(). The encoder cannot take frames after it. */
int rung_encoder_flush(rung_encoder_t *e) __attribute__((warn_unused_result));

/* Next encoded sample: 0 (sample filled), -EAGAIN (needs more input),
 * -ENODATA (flushed and empty), or another negative errno. */
int rung_encoder_receive(rung_encoder_t *e, rung_sample_t *out)
    __attribute__((warn_unused_result));

void rung_encoder_free(rung_encoder_t *e);

#endif
