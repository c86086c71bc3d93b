/*
 * The recordings directory format, in one place (docs/recording.md has the
 * layout): what a recording id is, where a recording's files are, how its
 * recording.json is read and written, how a recording or one of its files
 * is opened safely, how the directory is listed, and how a recording is
 * deleted. The recorder (writer, recovery, retention), the public origin's
 * /vod/ and the admin API's recordings all go through here, so the three
 * cannot disagree about any of it.
 *
 * Safety: everything below --recordings-dir is opened with openat()
 * relative to it and never through a symbolic link (the directory itself
 * may be one: an operator's mount point). A deletion first renames the
 * recording to a hidden name, so a reader sees it whole or not at all.
 *
 * No state; every function may run on any thread.
 */
#ifndef SLUICE_RECORD_RECORD_LAYOUT_H
#define SLUICE_RECORD_RECORD_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <jansson.h>

#include "store.h"

/*
 * A recording id (RID): 1 to 63 characters of [A-Za-z0-9_-], the stream
 * id's rule and size (STORE_ID_MAX). The recorder makes "<stream id>-
 * YYYYMMDDTHHMMSSZ[-N]" and shortens the stream id part to stay within it,
 * so every id it ever wrote fits; the readers used to accept up to 95
 * characters, which no recording ever had. Never starts with a dot, so a
 * hidden name (a deletion in progress, a temp file) is never an id.
 */
#define RECORD_ID_MAX STORE_ID_MAX /* with the terminating NUL */

/* The file that says what a recording is; replaced atomically. */
#define RECORD_JSON "recording.json"
/* recording.json is read whole; anything bigger is not one the recorder
 * wrote. */
#define RECORD_JSON_MAX (64 * 1024)
/* A rendition's directory name inside a recording ("720p", "audio"). */
#define RECORD_RENDITION_MAX 16
/* More rendition directories than a recording can have (rungs, source,
 * audio): the bound of a scan of one recording. */
#define RECORD_RENDITIONS_SCAN_MAX 16
/* Paths the layout builds: DIR/RID/REND/FILE. */
#define RECORD_PATH_MAX 1024

/* Whether rid is a recording id; the _n form for p[0..n) (not terminated). */
bool record_id_valid(const char *rid);
bool record_id_valid_n(const char *p, size_t n);

/*
 * out = "DIR/RID" or "DIR/RID/FILE" (file NULL: the recording's directory;
 * FILE may be "REND/NAME"). A path longer than n is cut, which then names
 * nothing (not found, not created).
 */
void record_path(char *out, size_t n, const char *dir, const char *rid, const char *file);

typedef enum record_state {
    RECORD_STATE_OTHER = 0, /* a state this version does not know */
    RECORD_STATE_RECORDING, /* being written (or left so by a crash) */
    RECORD_STATE_READY,     /* finalized: playable */
    RECORD_STATE_FAILED,    /* journals vouch for nothing: left for a look */
} record_state_t;

/* A recording as recording.json says it is. */
typedef struct record_info {
    char id[RECORD_ID_MAX];        /* its directory name */
    char stream_id[STORE_ID_MAX];  /* a valid stream id */
    record_state_t state;
    int64_t started_s;             /* "started_at", seconds since the epoch; 0: none */
    int64_t ended_s;               /* "ended_at"; 0: none (still recording) */
    bool clip;                     /* "kind": "clip" (docs/clips.md): a clip, not a recording */
    /* The whole document, "id" set to the directory name (the id every
     * URL uses). Owned: record_info_deinit. */
    json_t *json;
} record_info_t;

/* Releases info->json; safe to repeat. */
void record_info_deinit(record_info_t *info);

/* Opens --recordings-dir (which may be a link). A descriptor, -ENOENT when
 * it does not exist, -EIO. */
int record_dir_open(const char *dir) __attribute__((warn_unused_result));

/* Opens recording rid's directory under the open --recordings-dir `base`,
 * never through a link. A descriptor; -ENOENT for an invalid id or no such
 * directory; -EIO. */
int record_open(int base, const char *rid) __attribute__((warn_unused_result));

/* record_dir_open + record_open: recording rid under dir (NULL: none).
 * Same returns. */
int record_open_in(const char *dir, const char *rid) __attribute__((warn_unused_result));

/*
 * Opens the file `object` ("master.m3u8", "720p/3.m4s": at most one
 * directory level) of the open recording directory `rec`, read-only, never
 * through a link, and only when it is a regular file (a FIFO planted there
 * cannot block the open). Returns the descriptor with *st filled, -ENOENT,
 * -EIO.
 */
int record_file_open(int rec, const char *object, struct stat *st)
    __attribute__((warn_unused_result));

/*
 * Reads recording.json of the open recording directory `rec` into *out
 * (id set to rid). 0; -ENOENT when it is missing, larger than
 * RECORD_JSON_MAX, cut short or malformed, or lacks a string "state" or a
 * valid "stream_id"; -EIO; -ENOMEM. On failure *out holds nothing.
 */
int record_json_read(int rec, const char *rid, record_info_t *out)
    __attribute__((warn_unused_result));

/* record_open_in + record_json_read: recording rid under dir. Same
 * returns. */
int record_read(const char *dir, const char *rid, record_info_t *out)
    __attribute__((warn_unused_result));

/* Writes path with data (created or truncated), fsynced when sync; and
 * the same through a temp file renamed over path, so a reader sees the old
 * or the new file, never half of one. 0 or a negative errno. */
int record_write_file(const char *path, const void *data, size_t len, bool sync)
    __attribute__((warn_unused_result));
int record_write_atomic(const char *path, const void *data, size_t len, bool sync)
    __attribute__((warn_unused_result));
/* All of data to fd (EINTR retried). 0 or a negative errno. */
int record_write_all(int fd, const void *data, size_t len) __attribute__((warn_unused_result));

/* Replaces DIR/RID/recording.json (recdir = "DIR/RID") with j, atomically
 * (temp file + rename), fsynced when sync. 0 or a negative errno. */
int record_json_write(const char *recdir, json_t *j, bool sync)
    __attribute__((warn_unused_result));

/*
 * Every recording under dir with a readable recording.json (see
 * record_json_read), newest first (by started_at, then id); with stream_id
 * (not NULL) only that stream's. *out is a new array of *n entries:
 * record_list_free. A missing dir is an empty list. 0, -ENOMEM, -EIO.
 */
int record_list(const char *dir, const char *stream_id, record_info_t **out, size_t *n)
    __attribute__((warn_unused_result));
void record_list_free(record_info_t *list, size_t n);

/*
 * Deletes recording rid under dir: first renamed to a hidden name
 * (".deleted-RID-XXXXXXXX": from then on no reader opening it by its id
 * finds it, all at once), then its files are removed without following a
 * link; a tree that cannot be removed completely is logged and left
 * hidden. Refused with -EBUSY while its state is "recording"; with
 * `unfinished` (the recorder discarding one it made) the state is not
 * looked at. 0, -ENOENT (no such recording, or no readable
 * recording.json), -EBUSY, -EIO.
 */
int record_delete(const char *dir, const char *rid, bool unfinished)
    __attribute__((warn_unused_result));

/* One line of a rendition's journal, REND/journal: "MSN DURATION DISC
 * INITFILE BYTES PDT_MS" (the recorder appends one per segment it wrote). */
typedef struct record_seg {
    int64_t msn;
    double duration;    /* seconds */
    bool discontinuity; /* an EXT-X-DISCONTINUITY before it */
    char init[32];      /* its init segment's file name in REND/ */
    uint64_t bytes;
    int64_t pdt_ms;     /* its program date-time, ms since the epoch */
} record_seg_t;

/*
 * The whole lines of DIR/RID/REND/journal, in order (a line cut short or
 * malformed, or not after the line before it, is left out and counted in
 * *skipped when skipped is not NULL). *out: a new array of *n (free()). 0,
 * -ENOENT, -ENOMEM, -EIO.
 */
int record_journal_read(const char *dir, const char *rid, const char *rend, record_seg_t **out,
                        size_t *n, size_t *skipped) __attribute__((warn_unused_result));

/* The rendition directories of recording rid that have a journal (at most
 * max names into out, RECORD_RENDITION_MAX each). 0 with *n; -ENOENT, -EIO. */
int record_renditions(const char *dir, const char *rid, char (*out)[RECORD_RENDITION_MAX],
                      size_t max, size_t *n) __attribute__((warn_unused_result));

/* The top video rendition of recording rid: of its rendition directories
 * with a journal other than "audio", the one whose name starts with the
 * largest number ("1080p" over "720p"; "source" counts as 0). 0, -ENOENT. */
int record_top_rendition(const char *dir, const char *rid, char out[RECORD_RENDITION_MAX])
    __attribute__((warn_unused_result));

/* Bytes of the regular files below path (not following links). */
uint64_t record_disk_usage(const char *path);

/* "2026-11-22T11:39:03Z" -> seconds since the epoch; 0 when s is NULL or
 * not one. */
int64_t record_time_parse(const char *s);

#endif
