/*
 * Recordings on disk for /vod/ (see vod_internal.h). The origin reads the
 * directory the recorder writes, possibly on another node (a shared
 * directory), so nothing is cached here: every request opens the
 * recording's directory and reads its recording.json (a few hundred bytes),
 * so a recording deleted or finalised is seen at once. Runs on MHD's
 * worker threads; no state of its own.
 */
#include "vod_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "http_path_internal.h"

int vod_recording_open(const char *dir, const char *rid, vod_recording_t *out)
{
    memset(out, 0, sizeof(*out));
    out->dirfd = -1;
    /* The recordings directory itself may be a link (an operator's mount
     * point); nothing below it may. */
    int base = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (base < 0)
        return errno == ENOENT || errno == ENOTDIR ? -ENOENT : -EIO;
    int d = openat(base, rid, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    close(base);
    if (d < 0)
        return err == ENOENT || err == ENOTDIR || err == ELOOP ? -ENOENT : -EIO;
    out->dirfd = d;
    struct stat st;
    int fd = vod_file_open(out, "recording.json", &st);
    blob_t *b = NULL;
    int rc = fd < 0 ? fd : vod_file_read(fd, &st, VOD_JSON_MAX, &b);
    if (rc < 0) {
        vod_recording_close(out);
        return rc == -EIO ? -EIO : -ENOENT;
    }
    json_t *j = json_loadb((const char *)b->data, b->size, 0, NULL);
    blob_unref(b);
    const char *state = json_string_value(json_object_get(j, "state"));
    const char *sid = json_string_value(json_object_get(j, "stream_id"));
    if (!state || !sid || !store_id_valid(sid)) {
        json_decref(j);
        vod_recording_close(out);
        return -ENOENT;
    }
    out->ready = strcmp(state, "ready") == 0;
    snprintf(out->stream_id, sizeof(out->stream_id), "%s", sid);
    json_decref(j);
    return 0;
}

void vod_recording_close(vod_recording_t *rec)
{
    if (rec->dirfd >= 0)
        close(rec->dirfd);
    rec->dirfd = -1;
}

static int vod_errno(int e)
{
    return e == ENOENT || e == ENOTDIR || e == ELOOP || e == EISDIR ? -ENOENT : -EIO;
}

int vod_file_open(const vod_recording_t *rec, const char *object, struct stat *st)
{
    int dirfd = rec->dirfd;
    int sub = -1;
    const char *leaf = object;
    const char *slash = strchr(object, '/');
    if (slash) {
        char rend[HTTP_RENDITION_MAX];
        size_t n = (size_t)(slash - object);
        if (n == 0 || n >= sizeof(rend) || strchr(slash + 1, '/'))
            return -ENOENT;
        memcpy(rend, object, n);
        rend[n] = '\0';
        sub = openat(dirfd, rend, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0)
            return vod_errno(errno);
        dirfd = sub;
        leaf = slash + 1;
    }
    /* O_NONBLOCK: a FIFO planted in a recording must not hang a worker
     * thread before fstat says it is not a regular file. */
    int fd = openat(dirfd, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    int err = errno;
    if (sub >= 0)
        close(sub);
    if (fd < 0)
        return vod_errno(err);
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return -ENOENT;
    }
    /* Back to blocking reads (sendfile and read on a regular file never
     * block for long anyway). */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
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
