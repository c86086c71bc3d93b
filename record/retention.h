/*
 * Retention: deletes finished recordings that are too old, then the oldest
 * finished ones until all fit a size (--recordings-max-age,
 * --recordings-max-bytes; docs/recording.md). A recording in state
 * "recording" is never deleted and still counts towards the size. Deletion
 * goes through record_delete (renamed aside, then removed), the same as the
 * admin API's, so a /vod/ reader never meets a half-deleted recording.
 *
 * Threads: any (the transcode janitor calls it every minute, app.c once at
 * start-up after the recovery); no state.
 */
#ifndef SLUICE_RECORD_RETENTION_H
#define SLUICE_RECORD_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record_layout.h"

/* One recording as retention sees it. */
typedef struct record_entry {
    char id[RECORD_ID_MAX];
    bool recording;      /* state "recording": never deleted */
    int64_t finished_s;  /* ended_at (or started_at), seconds since the epoch */
    uint64_t bytes;      /* on disk */
} record_entry_t;

/* Retention's choice, a pure function: marks del[i] for every finished
 * recording whose age (now_s - finished_s) exceeds max_age_s (> 0), then
 * the oldest finished ones until the total (all entries) is at most
 * max_bytes (> 0). Returns the number marked. */
size_t record_retention_select(const record_entry_t *e, size_t n, int64_t now_s,
                               int64_t max_age_s, uint64_t max_bytes, bool *del);

/* Applies retention to dir (each deletion is logged). Returns the number
 * deleted or a negative errno. */
int record_retention(const char *dir, int64_t max_age_s, uint64_t max_bytes);

/* Clips (docs/clips.md, "kind": "clip") are not recordings here: the two
 * above leave them out. This deletes every clip asked for (started_at)
 * more than max_age_s (> 0) ago, except one being made. Returns the number
 * deleted or a negative errno. */
int record_retention_clips(const char *dir, int64_t max_age_s);

#endif
