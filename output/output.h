/*
 * The simulcast engine (issue 24, docs/simulcast.md): while a stream
 * is live, its transcode worker also sends it on to the outputs the
 * registry defines for it (output_def.h): RTMP(S) destinations as FLV,
 * SRT destinations as MPEG-TS, through libavformat's muxers and protocols.
 *
 * One output_set_t per broadcast, made and freed by the stream's worker.
 * Each enabled output has its own thread and a bounded media_queue_t: the
 * worker's pushes copy the packet into the queues of the outputs that want
 * it and never wait for an output or the network (a full queue drops media
 * to the next video keyframe, counted as a skip). The set's manager thread
 * re-reads the definitions every OUTPUT_SYNC_MS (starting, stopping and
 * restarting outputs to match), notes demand for the rungs its outputs send
 * (rungs on demand), and writes their live status to the store's meta
 * field OUTPUT_META_FIELD at most once a second and at once on a state
 * change.
 *
 * Feeds: an output of rendition "source" gets the packets as the publisher
 * sent them (output_set_push_source); an output of a rung gets that rung's
 * encoded video (output_set_push_rung) and the shared audio rendition
 * (output_set_push_audio), or the source when the rung is the source copied
 * (output_set_ladder says which). Timestamps are milliseconds; each output
 * makes its own monotonic clock of them (output_internal.h).
 *
 * Threads: output_set_new/_free on the worker; the push and ladder calls on
 * the worker (they take the set's lock for a copy, nothing else); the event
 * hook runs on an output's or the manager's thread.
 */
#ifndef SLUICE_OUTPUT_OUTPUT_H
#define SLUICE_OUTPUT_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>

#include "media.h"
#include "output_def.h"
#include "store.h"

/* The stream's meta field with the live status of its outputs
 * (docs/simulcast.md): a JSON object keyed by output id. */
#define OUTPUT_META_FIELD "outputs"
#define OUTPUT_META_TTL_MS 10000
#define OUTPUT_SYNC_MS 2000

/* "output.live" (a (re)connection sent its first packet) or
 * "output.failed" (an outage began, or the output cannot be sent with this
 * broadcast). masked_url is output_url_mask's; error NULL for
 * "output.live". Called on an output's thread or the manager's. */
typedef void (*output_event_cb)(void *opaque, const char *stream_id, const char *output_id,
                                const char *event, const char *masked_url, const char *error);

typedef struct output_set output_set_t;

typedef struct output_set_params {
    store_t *store;
    const char *stream_id; /* copied */
    const char *log_ctx;   /* copied; NULL: "stream=<id>" */
    output_event_cb event_cb;
    void *event_opaque;
    /* Rungs on demand: note demand for the rungs outputs send, so that an
     * idle rung comes back (store_demand_note, like a viewer's request). */
    bool note_demand;
} output_set_params_t;

/* Starts the set's manager (which reads the definitions at once). 0,
 * -ENOMEM, or a negative errno from pthread_create. Worker thread. */
int output_set_new(const output_set_params_t *p, output_set_t **out)
    __attribute__((warn_unused_result));

/* The broadcast's rungs, once its ladder is laid out: names[i] is a rung,
 * copy[i] whether it is the source copied. Until this is called, outputs
 * of a rung wait; after it, an output of a rung that is not here fails
 * (state "failed"). Called again, it replaces the list. */
void output_set_ladder(output_set_t *s, const char *const *names, const bool *copy, size_t n);

/* Whether any running output wants the rung's video (or, with NULL, the
 * shared audio): lets the worker skip building packets nobody takes. */
bool output_set_wants(output_set_t *s, const char *rung);

/* The feeds. Each copies p (the caller keeps it) into the queues of the
 * outputs it is for; configs are also kept for outputs that start later.
 * Never blocks beyond the set's lock. Ignores EOS (use output_set_free). */
void output_set_push_source(output_set_t *s, const media_packet_t *p);
void output_set_push_rung(output_set_t *s, const char *rung, const media_packet_t *p);
void output_set_push_audio(output_set_t *s, const media_packet_t *p);

/* libav's log lines may quote the URL an output's thread is using (its SRT
 * protocol does, key and all, when a connection fails): the log sink passes
 * every libav line through this. On an output's thread it writes text with
 * that output's secrets masked (output_text_scrub) into out and returns
 * true; on any other thread it returns false and leaves out alone. */
bool output_log_scrub(const char *text, char *out, size_t cap);

/* The stream's end: each output sends what it has, writes its trailer and
 * closes (bounded: a destination that does not take it within a few
 * seconds is cut), the meta field is emptied, everything is freed.
 * NULL does nothing. Worker thread. */
void output_set_free(output_set_t *s);

#endif
