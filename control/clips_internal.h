/*
 * Clips for the admin API (docs/clips.md): a request's range resolved
 * against what the recordings directory holds (the stream's recording
 * being written for {"last": S}, any of its recordings for {"start": PDT},
 * or a named recording), the clip's directory and "processing" JSON
 * created in the recordings layout (record_layout.h, "kind": "clip"), and
 * the making handed to transcode's clip worker (clip.h). Reading, listing
 * and deleting go through record_layout too. No state; the admin thread.
 */
#ifndef SLUICE_CONTROL_CLIPS_INTERNAL_H
#define SLUICE_CONTROL_CLIPS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "clip.h"
#include "record_layout.h"
#include "store.h"

#define CLIPS_DURATION_MIN_S 1
#define CLIPS_DURATION_MAX_S 300

/* Where a clip's range comes from. */
typedef struct clips_source {
    const char *stream_id; /* POST /api/v1/streams/ID/clips; else NULL */
    const char *rid;       /* POST /api/v1/recordings/RID/clips; else NULL */
} clips_source_t;

/* The range a request body asks for, checked: {"last": S} or {"start":
 * PDT, "duration": S} (stream), {"start_offset": S, "duration": S}
 * (recording); each may add "rendition": "720p" (else the top rung). Pure. 0 or -EINVAL with why. */
typedef struct clips_range {
    double last_s;         /* > 0: the last S seconds held */
    int64_t start_ms;      /* PDT, ms since the epoch (with "start") */
    double start_offset_s; /* from a recording's start (with "start_offset") */
    bool has_start, has_offset;
    double duration_s;
    char rendition[RECORD_RENDITION_MAX]; /* "rendition" (optional): the rung; "": the top one */
} clips_range_t;
int clips_range_parse(const json_t *body, bool recording, clips_range_t *out, char *why, size_t n)
    __attribute__((warn_unused_result));

/* "2026-12-07T17:50:00.250Z" (fraction optional) -> ms since the epoch;
 * -1 when it is not one. Pure. */
int64_t clips_pdt_parse(const char *s);

/* The tallest variant's rendition and the audio rendition ("" when none)
 * of a master playlist. 0; -ENOENT (no variant). Pure. */
int clips_master_parse(const char *text, size_t len, char video[RECORD_RENDITION_MAX],
                       char audio[RECORD_RENDITION_MAX]) __attribute__((warn_unused_result));

/* Every rendition a master playlist names (variants and EXT-X-MEDIA URIs
 * "REND/index.m3u8"), at most max. 0; -ENOENT (none). Pure. */
int clips_master_list(const char *text, size_t len, char (*out)[RECORD_RENDITION_MAX], size_t max,
                      size_t *n) __attribute__((warn_unused_result));

/* The segments of a live media playlist (number, EXTINF, discontinuity,
 * EXT-X-MAP, program date-time, carried forward when a segment has none)
 * as journal lines. *out: a new array (free()). 0, -ENOMEM. Pure. */
int clips_playlist_parse(const char *text, size_t len, record_seg_t **out, size_t *n)
    __attribute__((warn_unused_result));

/*
 * Creates a clip from a stream's recording that holds the range (the one
 * in progress for "last") or, when none does and st is not NULL, from the
 * stream's live window in the store (its segments taken as blobs): *out = its JSON ("state": "processing"). 0; -EINVAL
 * (why); -ENOENT (no such stream recording / recording); -ERANGE (the range
 * is not held, why); -EBUSY (the worker's queue is full); -ENOMEM; -EIO.
 */
int clips_create(const char *dir, store_t *st, clip_service_t *svc, const clips_source_t *src,
                 const clips_range_t *range, json_t **out, char *why, size_t n)
    __attribute__((warn_unused_result));

/* Clip cid's JSON (0, -ENOENT: no such clip), every clip's newest first (0,
 * -ENOMEM, -EIO), deleting one (0, -ENOENT, -EIO). */
int clips_get(const char *dir, const char *cid, json_t **out) __attribute__((warn_unused_result));
int clips_list(const char *dir, json_t **out) __attribute__((warn_unused_result));
int clips_delete(const char *dir, const char *cid) __attribute__((warn_unused_result));

#endif
