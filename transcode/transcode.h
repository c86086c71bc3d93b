/*
 * Transcode and packaging: one worker thread per live stream drains the
 * stream's media queue, packages it as CMAF fMP4 HLS (this release copies the
 * source; the ladder comes later) and commits init segments, segments and
 * playlists to the store.
 *
 * Threads: transcode_stream_start() is called from the ingest thread; each
 * worker is its own thread and owns its libav contexts. transcode_free()
 * joins them all.
 */
#ifndef SLUICE_TRANSCODE_TRANSCODE_H
#define SLUICE_TRANSCODE_TRANSCODE_H

#include <stdint.h>

#include "media.h"
#include "store.h"

typedef struct transcode transcode_t;

typedef struct transcode_params {
    store_t *store;
    double segment_duration; /* target seconds (default 2) */
    int playlist_segments;   /* live window (default 6) */
    int64_t ended_ttl_ms;    /* how long an ended stream's playlists and media stay (default 600000) */
} transcode_params_t;

void transcode_params_default(transcode_params_t *p);

int transcode_new(const transcode_params_t *params, transcode_t **out)
    __attribute__((warn_unused_result));

/* Starts a worker for stream_id that reads `queue` (it takes its own
 * reference) until an end-of-stream packet. If a previous worker of the
 * same stream is still finishing, the new one waits for it, so that a
 * stream's objects always have one writer. Segment numbers of a stream are
 * never reused within the process. Returns 0 or a negative errno. */
int transcode_stream_start(transcode_t *t, const char *stream_id, media_queue_t *queue);

/* Waits for every worker to finish (their queues must get end-of-stream,
 * which ingest_close() guarantees) and frees everything. NULL does nothing. */
void transcode_free(transcode_t *t);

#endif
