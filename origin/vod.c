/*
 * Recordings on disk for /vod/ (see vod_internal.h). The origin reads the
 * directory the recorder writes, possibly on another node (a shared
 * directory), so nothing is cached here: every request opens the
 * recording's directory and reads its recording.json (a few hundred bytes),
 * so a recording deleted or finalised is seen at once. Opening and reading
 * are record_layout's (the one reader of the format). Runs on MHD's
 * worker threads; no state of its own.
 */
#include "vod_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "record_layout.h"

int vod_recording_open(const char *dir, const char *rid, vod_recording_t *out)
{
    memset(out, 0, sizeof(*out));
    out->dirfd = -1;
    int d = record_open_in(dir, rid);
    if (d < 0)
        return d;
    out->dirfd = d;
    record_info_t info;
    int rc = record_json_read(d, rid, &info);
    if (rc < 0) {
        vod_recording_close(out);
        return rc == -EIO ? -EIO : -ENOENT;
    }
    out->ready = info.state == RECORD_STATE_READY;
    snprintf(out->stream_id, sizeof(out->stream_id), "%s", info.stream_id);
    record_info_deinit(&info);
    return 0;
}

void vod_recording_close(vod_recording_t *rec)
{
    if (rec->dirfd >= 0)
        close(rec->dirfd);
    rec->dirfd = -1;
}

int vod_file_open(const vod_recording_t *rec, const char *object, struct stat *st)
{
    return record_file_open(rec->dirfd, object, st);
}

int vod_file_read(int fd, const struct stat *st, size_t max, blob_t **out)
{
    *out = NULL;
    if (st->st_size < 0 || (uint64_t)st->st_size > max) {
        close(fd);
        return -EFBIG;
    }
    size_t size = (size_t)st->st_size;
    blob_t *b = blob_new_uninit(size);
    if (!b) {
        close(fd);
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, b->data + got, size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* shorter than it said: it is being rewritten */
        got += (size_t)n;
    }
    close(fd);
    if (got != size) {
        blob_unref(b);
        return -EIO;
    }
    b->created_ms = (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
    *out = b;
    return 0;
}

void vod_file_etag(const struct stat *st, char out[VOD_ETAG_MAX])
{
    uint64_t ns = (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec;
    snprintf(out, VOD_ETAG_MAX, "\"v%" PRIx64 "-%" PRIx64 "\"", ns, (uint64_t)st->st_size);
}
