/*
 * Pipeline: what one transcode worker runs for one broadcast. It feeds the
 * packager (which repairs timestamps and decides the cuts) and, through the
 * packager's hooks, decodes the source video once and encodes every
 * transcoded rung with IDRs forced on the source keyframes that start
 * segments. Audio that is not AAC-LC 48 kHz stereo is re-encoded once
 * (audio.c) before the packager sees it. Overload protection lives here:
 * it measures the worker against real time at every segment start and
 * steps the x264 preset, drops and restores rungs.
 *
 * Owned and used by one worker thread; only the status snapshot is shared,
 * under the lock the caller provides.
 */
#ifndef SLUICE_TRANSCODE_PIPELINE_INTERNAL_H
#define SLUICE_TRANSCODE_PIPELINE_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "media.h"
#include "output.h"
#include "packager_internal.h"
#include "recorder.h"
#include "transcode.h"

typedef struct pipeline_params {
    const transcode_params_t *tp;       /* store, segments, passthrough, preset, debug */
    const transcode_rung_spec_t *rungs; /* the resolved ladder, tallest first */
    size_t nrungs;
    const char *stream_id;
    const char *log_ctx;
    int64_t first_msn;
    int threads;                        /* libav/x264 threads per codec for this stream */
    pthread_mutex_t *status_lock;       /* guards *status */
    transcode_stream_status_t *status;  /* written by the worker, read by anyone */
    recorder_t *recorder;               /* the broadcast's recording (borrowed); NULL: none */
    packager_clock_t *clock;            /* the packager's clock, under status_lock; NULL: none */
    output_set_t *outputs;              /* simulcast: the rungs' video and the shared audio
                                         * (borrowed); NULL: none */
} pipeline_params_t;

typedef struct pipeline pipeline_t;

int pipeline_new(const pipeline_params_t *p, pipeline_t **out) __attribute__((warn_unused_result));

/* Takes ownership of pkt on every path (not EOS: use pipeline_finish).
 * Returns 0, or a negative errno that ends the stream (already logged). */
int pipeline_push(pipeline_t *pl, media_packet_t *pkt) __attribute__((warn_unused_result));

/* End of stream: drains decoder and encoders, then the packager. */
int pipeline_finish(pipeline_t *pl) __attribute__((warn_unused_result));

/* The publisher dropped but the stream goes on (reconnect window): drains
 * decoder and encoders into the packager, starts them afresh and lets the
 * packager publish everything and expect the next input after a
 * discontinuity (packager_input_break). */
int pipeline_input_break(pipeline_t *pl) __attribute__((warn_unused_result));

/* After a failure (pipeline_push returned an error): the decoder and every
 * encoder are replaced without being drained, and the packager takes the
 * rest of the input as a new one after a discontinuity. An error here
 * (the store, memory) means the pipeline cannot go on: free it. */
int pipeline_recover(pipeline_t *pl) __attribute__((warn_unused_result));

int64_t pipeline_next_msn(const pipeline_t *pl);

void pipeline_free(pipeline_t *pl);

#endif
