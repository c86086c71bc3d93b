/*
 * The recordings directory as the admin API sees it (--recordings-dir; the
 * layout in docs/api.md, "Recordings"): list a stream's recordings, read
 * one, delete one. Each recording is DIR/RID/ with a recording.json the
 * recorder writes atomically (temp file + rename), so a reader never sees
 * half of one. Everything is opened relative to DIR and never through a
 * symbolic link below it (record_layout.h does all of it; a recording id
 * is record_id_valid's). No state; any thread (the admin listener's).
 */
#ifndef SLUICE_CONTROL_RECORDINGS_INTERNAL_H
#define SLUICE_CONTROL_RECORDINGS_INTERNAL_H

#include <jansson.h>

/*
 * *out = a new JSON array of the recording.json objects (with "id" set to
 * the directory name) of every recording of stream_id, newest first (by
 * "started_at", then id). Unreadable or foreign entries are left out; a
 * missing DIR is an empty list. 0, -ENOMEM, -EIO (DIR unreadable).
 */
int recordings_list(const char *dir, const char *stream_id, json_t **out)
    __attribute__((warn_unused_result));

/* *out = a new JSON object: recording rid's recording.json ("id" set to
 * rid). 0, -ENOENT (no such recording, or no readable recording.json),
 * -ENOMEM, -EIO. */
int recordings_get(const char *dir, const char *rid, json_t **out)
    __attribute__((warn_unused_result));

/*
 * Deletes recording rid (record_delete): refused with -EBUSY while its state is
 * "recording" (the recorder is writing it). The directory is first renamed
 * to a hidden name (".deleted-RID-XXXXXXXX": from then on neither /vod/ nor
 * the API sees it, all at once), then its files are removed; a tree that
 * cannot be removed completely is logged and left hidden. 0, -ENOENT,
 * -EBUSY, -EIO.
 */
int recordings_delete(const char *dir, const char *rid) __attribute__((warn_unused_result));

#endif
