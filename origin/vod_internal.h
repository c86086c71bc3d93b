/*
 * A recording on disk, as the public origin reads it for /vod/RID/...
 * (the layout in docs/api.md, "Recordings"; the recorder writes it).
 * Every open is relative to the recording's directory, which is opened
 * relative to --recordings-dir, and never follows a symbolic link below
 * that directory: a path the parser let through can only name a regular
 * file of the recording itself. Pure file-system reads; any thread.
 */
#ifndef SLUICE_ORIGIN_VOD_INTERNAL_H
#define SLUICE_ORIGIN_VOD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "blob.h"
#include "store.h"

/* Playlists are read whole; anything bigger is not one the recorder wrote
 * (a 24 h recording's playlist is about 3 MB). */
#define VOD_PLAYLIST_MAX (16 * 1024 * 1024)

typedef struct vod_recording {
    int dirfd;                      /* the recording's directory */
    bool ready;                     /* "state": "ready" */
    char stream_id[STORE_ID_MAX];   /* "stream_id": whose token plays it */
} vod_recording_t;

/*
 * Opens recording `rid` under `dir` and reads its recording.json
 * (record_open, record_json_read). 0 with *out filled (close it with vod_recording_close);
 * -ENOENT when there is no such recording or its recording.json is missing,
 * malformed or names no valid stream id; -EIO when the directory cannot be
 * read for another reason (permissions, I/O).
 */
int vod_recording_open(const char *dir, const char *rid, vod_recording_t *out)
    __attribute__((warn_unused_result));
/* Closes what vod_recording_open opened; safe to repeat (dirfd -1). */
void vod_recording_close(vod_recording_t *rec);

/*
 * Opens the file `object` ("master.m3u8", "720p/3.m4s": at most one
 * directory level, as http_path_parse gives it) of an open recording,
 * read-only, never through a symbolic link (record_file_open). Returns the descriptor with
 * *st filled, -ENOENT when it is not a regular file there, -EIO.
 */
int vod_file_open(const vod_recording_t *rec, const char *object, struct stat *st)
    __attribute__((warn_unused_result));

/* Reads an open regular file of st->st_size bytes (at most `max`) into a
 * new blob whose created_ms is its modification time. Closes fd. 0,
 * -EFBIG over max, -EIO, -ENOMEM. */
int vod_file_read(int fd, const struct stat *st, size_t max, blob_t **out)
    __attribute__((warn_unused_result));

/* The entity tag of a recording file that is served from its descriptor
 * (never read whole): its modification time and size, quoted, strong, e.g.
 * "\"v187a2b3c4d5e6f70-2c4a1\"". The same file gives the same tag on every
 * origin sharing the directory; a rewritten one gets a new tag. */
#define VOD_ETAG_MAX 48
void vod_file_etag(const struct stat *st, char out[VOD_ETAG_MAX]);

#endif
