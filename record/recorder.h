/*
 * Recorder: keeps a broadcast as a VOD recording on disk (docs/recording.md
 * has the layout). While the broadcast runs, every segment and init
 * segment the packager commits to the store is written, byte for byte,
 * under DIR/RID/REND/ and a line per segment is appended to REND/journal;
 * DIR/RID/recording.json says "recording". When the broadcast ends the
 * recording is finalized from those journals: VOD media playlists, the
 * master (the live one's variant lines), optionally one MP4 of the top
 * rendition with audio, and recording.json "ready". A process that died
 * mid-broadcast leaves "recording" ones behind; recorder_recover()
 * finalizes them the same way at the next start. Ids, paths,
 * recording.json and deletion are the layout's (record_layout.h);
 * retention (retention.h) deletes old finished recordings.
 *
 * Threads: a recorder_t belongs to one transcode worker (it writes on that
 * thread; the page cache absorbs it, fsync happens at finalize only).
 * recorder_recover may run on any thread; a finalize replaces
 * recording.json atomically (written to a temp file, then renamed).
 *
 * Errors: a disk error never reaches the live stream. The first one is
 * logged, the recording is marked "failed" and nothing more is written.
 */
#ifndef SLUICE_RECORD_RECORDER_H
#define SLUICE_RECORD_RECORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blob.h"
#include "record_layout.h"
#include "store.h"

typedef struct recorder recorder_t;

/* A recording became "ready" (finalized at the end of its broadcast, or
 * recovered at start-up). Called on the thread that finalized it. */
typedef void (*recorder_ready_cb)(void *opaque, const char *rid, const char *stream_id,
                                  double duration_s);

typedef struct recorder_params {
    const char *dir;       /* --recordings-dir; created if missing */
    const char *stream_id;
    const char *log_ctx;   /* NULL: "stream=<id>" */
    store_t *store;        /* where the poster thumbnail is read; NULL: no poster */
    /* The store object (in the stream's namespace) a poster is copied from:
     * the live thumbnail (THUMBNAIL_NAME). A string that outlives the
     * recorder; NULL: no poster. */
    const char *poster_object;
    bool mp4;              /* --record-mp4 */
    int64_t start_wall_ms; /* broadcast start (the RID); 0: now */
    recorder_ready_cb ready_cb; /* may be NULL */
    void *ready_opaque;
} recorder_params_t;

/* Creates DIR/RID with recording.json in state "recording". Returns 0 or a
 * negative errno (logged); the broadcast then goes on unrecorded. */
int recorder_open(const recorder_params_t *p, recorder_t **out)
    __attribute__((warn_unused_result));

/* The recording's id (valid until recorder_close). */
const char *recorder_id(const recorder_t *r);

/* One committed segment of a rendition. */
typedef struct recorder_segment {
    const char *rendition;  /* "720p", "audio" */
    int64_t msn;
    double duration;        /* seconds */
    int64_t pdt_ms;         /* wall clock of its first sample */
    bool discontinuity;     /* EXT-X-DISCONTINUITY before it in the live playlist */
    const blob_t *data;     /* the segment's bytes */
    const blob_t *init;     /* the init segment it needs (its bytes) */
} recorder_segment_t;

/* Hooks the packager calls after each successful store commit (same
 * thread). They never fail: errors mark the recording failed. */
void recorder_add_segment(recorder_t *r, const recorder_segment_t *seg);
void recorder_set_master(recorder_t *r, const blob_t *master);

/* A date range of the live playlists (timed metadata), for every VOD
 * media playlist of the recording: a line of .dateranges, "ID START_MS
 * CLASS HEX-PAYLOAD", which the finalize reads back. id and class_name:
 * 1-63 of [A-Za-z0-9._-]; payload at most RECORDER_DATERANGE_MAX bytes.
 * Same thread as the segments; never fails (a write error is logged). */
#define RECORDER_DATERANGE_MAX 1024
typedef struct recorder_daterange {
    const char *id;
    const char *class_name;
    int64_t start_ms;
    const uint8_t *payload;
    size_t payload_len;
} recorder_daterange_t;
void recorder_add_daterange(recorder_t *r, const recorder_daterange_t *d);

/* The broadcast ended: finalize (fsync, playlists, master, MP4, "ready"),
 * call ready_cb, and free. finalize = false (the stream was handed to
 * another node at shutdown) leaves it "recording" for recover. NULL does
 * nothing. */
void recorder_close(recorder_t *r, bool finalize);

/* At start-up: finalizes every recording in state "recording" under dir
 * (segments without a journal line are dropped). Streams live in this
 * process must not be in the directory yet (call it before ingest starts).
 * Returns the number finalized, or a negative errno (dir unreadable). */
int recorder_recover(const char *dir, bool mp4, recorder_ready_cb cb, void *opaque);

#endif
