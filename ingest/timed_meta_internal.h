/*
 * Timed metadata on the ingest side (timed_meta.c): the one place where a
 * metadata item gets its stamp (media time, id) and joins the stream's
 * media queue, whether it came from the admin API (any thread, stamped at
 * the live edge) or in band from the publisher (loop thread, stamped with
 * the data message's own timestamp).
 *
 * A locked table of the streams published on this node: each entry holds a
 * reference to the live publish's queue, the newest media dts pushed to it,
 * the per-stream token bucket (INGEST_TMETA_RATE a second, burst
 * INGEST_TMETA_BURST, shared by both sources) and the last id given. An
 * entry outlives its publish (queue NULL) so that ids keep rising across
 * reconnects; the oldest such entries are recycled past INGEST_TMETA_MAX.
 *
 * Threads: start/end/note run on the ingest loop; push on any thread.
 * Everything under the table's lock; the queue push happens under it too,
 * so an item stamped at the live edge is queued right behind that frame
 * (the loop notes a dts before pushing its frame).
 */
#ifndef SLUICE_INGEST_TIMED_META_INTERNAL_H
#define SLUICE_INGEST_TIMED_META_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amf0_internal.h"
#include "ingest.h"
#include "media.h"

#define INGEST_TMETA_RATE 5.0   /* items a second, sustained, per stream */
#define INGEST_TMETA_BURST 10.0 /* ...and at once */
#define INGEST_TMETA_MAX 1024   /* streams remembered (live ones always) */
/* Ids are tenths of a second since 2025-01-01T00:00:00Z (or one more than
 * the stream's last, when a burst runs ahead of the clock): unique per
 * stream across reconnects and, since a burst runs ahead by at most a
 * second, across restarts; 32 bits last until 2038. */
#define INGEST_TMETA_ID_EPOCH_MS INT64_C(1735689600000)

typedef struct ingest_tmeta_entry {
    char stream_id[STORE_ID_MAX];
    media_queue_t *queue; /* reference; NULL: not live */
    uint64_t session_id;
    bool have_dts;
    int64_t newest_dts_ms;
    double tokens;
    int64_t bucket_ms; /* monotonic ms of the last refill */
    uint32_t last_id;
    int64_t used_ms; /* monotonic ms: recycling order */
} ingest_tmeta_entry_t;

typedef struct ingest_tmeta {
    pthread_mutex_t lock;
    ingest_tmeta_entry_t *items;
    size_t n, cap;
} ingest_tmeta_t;

void ingest_tmeta_init(ingest_tmeta_t *t);
void ingest_tmeta_deinit(ingest_tmeta_t *t);

/* Loop: session_id started publishing stream_id into queue (a reference is
 * taken) / ended. */
void ingest_tmeta_start(ingest_tmeta_t *t, uint64_t session_id, const char *stream_id,
                        media_queue_t *queue, int64_t now_ms);
void ingest_tmeta_end(ingest_tmeta_t *t, uint64_t session_id);

/* Loop: a media frame of dts_ms (the queue's timeline) is about to be
 * pushed by session_id. *hint caches its slot between calls. */
void ingest_tmeta_note(ingest_tmeta_t *t, uint64_t session_id, size_t *hint, int64_t dts_ms);

/* Pure parts, for tests: the token bucket (true: one token taken; else
 * *retry_s says when one will be there) and the next id. */
bool ingest_tmeta_take(ingest_tmeta_entry_t *e, int64_t now_ms, int *retry_s);
uint32_t ingest_tmeta_next_id(uint32_t last, int64_t wall_ms);

/* The text an in-band data message carries (all: its values decoded, the
 * handler name first), or NULL: its first argument that is a string, or
 * the first string-valued field named "text", "data" or "payload" of its
 * first object (or ECMA array) argument. Pure: fuzzed with AMF0. */
const amf0_value_t *ingest_tmeta_text(const amf0_value_t *all);

/*
 * Stamps and queues one item. By stream_id at the live edge (the admin
 * API; clock_cb maps the edge to media time and program date-time, called
 * with the lock held), or by session_id at dts_ms (in band; no clock:
 * the packager maps it). Returns 0 with *out filled, -ENOENT (not live
 * here), -EAGAIN (no media yet, or clock_cb's -EAGAIN), -EBUSY (over the
 * rate; out->retry_after_s), -EMSGSIZE (over MEDIA_TIMED_METADATA_MAX),
 * -EILSEQ (not UTF-8), -ENOMEM.
 */
int ingest_tmeta_push(ingest_tmeta_t *t, const char *stream_id, uint64_t session_id,
                      int64_t dts_ms, const uint8_t *payload, size_t len,
                      ingest_clock_cb_t clock_cb, void *opaque, int64_t now_ms,
                      int64_t wall_ms, ingest_metadata_stamp_t *out);

#endif
