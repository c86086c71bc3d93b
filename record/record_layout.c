/*
 * The recordings directory format (record_layout.h; the layout itself is in
 * docs/recording.md). The one place that says what a recording id is, how
 * a recording and its files are opened (openat() below --recordings-dir,
 * O_NOFOLLOW: a planted link can neither be read through nor make a delete
 * leave the directory), how recording.json is read and written, and how a
 * recording is deleted (renamed aside first, then removed). The recorder,
 * retention, the origin's /vod/ and the admin API call it; none of them
 * opens a recording's files any other way.
 *
 * No state of its own but the disk-usage walk's lock; any thread.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw, strptime, timegm */
#endif
#include "record_layout.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "log.h"

/* DIR/RID/REND/file: a recording is two levels deep; a little slack. */
#define RECORD_DEPTH_MAX 4

/* A recording id is a stream id by its rule (same characters, same size):
 * the store's check says it, so the two cannot drift apart. */
bool record_id_valid_n(const char *p, size_t n)
{
    return store_id_valid_n(p, n) != 0;
}

bool record_id_valid(const char *rid)
{
    return rid && record_id_valid_n(rid, strnlen(rid, RECORD_ID_MAX));
}

void record_path(char *out, size_t n, const char *dir, const char *rid, const char *file)
{
    if (file)
        snprintf(out, n, "%s/%s/%s", dir, rid, file);
    else
        snprintf(out, n, "%s/%s", dir, rid);
}

void record_info_deinit(record_info_t *info)
{
    json_decref(info->json);
    info->json = NULL;
}

/* What a failed open means to a reader: no such recording (or file), or
 * the directory cannot be read. */
static int record_errno(int e)
{
    return e == ENOENT || e == ENOTDIR || e == ELOOP || e == EISDIR ? -ENOENT : -EIO;
}

int record_dir_open(const char *dir)
{
    int base = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return base < 0 ? record_errno(errno) : base;
}

int record_open(int base, const char *rid)
{
    if (!record_id_valid(rid))
        return -ENOENT;
    int fd = openat(base, rid, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    return fd < 0 ? record_errno(errno) : fd;
}

int record_file_open(int rec, const char *object, struct stat *st)
{
    int dirfd = rec;
    int sub = -1;
    const char *leaf = object;
    const char *slash = strchr(object, '/');
    if (slash) {
        char rend[RECORD_RENDITION_MAX];
        size_t n = (size_t)(slash - object);
        if (n == 0 || n >= sizeof(rend) || strchr(slash + 1, '/'))
            return -ENOENT;
        memcpy(rend, object, n);
        rend[n] = '\0';
        sub = openat(dirfd, rend, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0)
            return record_errno(errno);
        dirfd = sub;
        leaf = slash + 1;
    }
    /* O_NONBLOCK: a FIFO planted in a recording must not hang the thread
     * before fstat says it is not a regular file. */
    int fd = openat(dirfd, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    int err = errno;
    if (sub >= 0)
        close(sub);
    if (fd < 0)
        return record_errno(err);
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return -ENOENT;
    }
    /* Back to blocking reads (a regular file never blocks for long). */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

int64_t record_time_parse(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
        return 0;
    return (int64_t)timegm(&tm);
}

static record_state_t record_state_parse(const char *s)
{
    if (strcmp(s, "recording") == 0)
        return RECORD_STATE_RECORDING;
    if (strcmp(s, "ready") == 0)
        return RECORD_STATE_READY;
    if (strcmp(s, "failed") == 0)
        return RECORD_STATE_FAILED;
    return RECORD_STATE_OTHER;
}

int record_json_read(int rec, const char *rid, record_info_t *out)
{
    memset(out, 0, sizeof(*out));
    struct stat st;
    int fd = record_file_open(rec, RECORD_JSON, &st);
    if (fd < 0)
        return fd;
    if (st.st_size < 0 || st.st_size > RECORD_JSON_MAX) {
        close(fd);
        return -ENOENT;
    }
    size_t size = (size_t)st.st_size, got = 0;
    char *buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    int rc = 0;
    while (got < size) {
        ssize_t n = pread(fd, buf + got, size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = -EIO;
        if (n <= 0)
            break; /* shorter than it said: the parse below refuses it */
        got += (size_t)n;
    }
    close(fd);
    json_t *j = rc == 0 ? json_loadb(buf, got, 0, NULL) : NULL;
    free(buf);
    if (rc < 0)
        return rc;
    const char *state = json_string_value(json_object_get(j, "state"));
    const char *sid = json_string_value(json_object_get(j, "stream_id"));
    if (!json_is_object(j) || !state || !sid || !store_id_valid(sid)) {
        json_decref(j);
        return -ENOENT;
    }
    snprintf(out->id, sizeof(out->id), "%s", rid);
    snprintf(out->stream_id, sizeof(out->stream_id), "%s", sid);
    out->state = record_state_parse(state);
    out->started_s = record_time_parse(json_string_value(json_object_get(j, "started_at")));
    out->ended_s = record_time_parse(json_string_value(json_object_get(j, "ended_at")));
    const char *kind = json_string_value(json_object_get(j, "kind"));
    out->clip = kind && strcmp(kind, "clip") == 0;
    /* The directory name is the id every URL uses. */
    json_object_set_new(j, "id", json_string(out->id));
    out->json = j;
    return 0;
}

int record_open_in(const char *dir, const char *rid)
{
    if (!dir || !record_id_valid(rid))
        return -ENOENT;
    int base = record_dir_open(dir);
    if (base < 0)
        return base;
    int rec = record_open(base, rid);
    close(base);
    return rec;
}

int record_read(const char *dir, const char *rid, record_info_t *out)
{
    memset(out, 0, sizeof(*out));
    int rec = record_open_in(dir, rid);
    if (rec < 0)
        return rec;
    int rc = record_json_read(rec, rid, out);
    close(rec);
    return rc;
}

/* ---- writing ------------------------------------------------------------- */

int record_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int record_write_file(const char *path, const void *data, size_t len, bool sync)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int ret = record_write_all(fd, data, len);
    if (ret == 0 && sync && fsync(fd) < 0)
        ret = -errno;
    if (close(fd) < 0 && ret == 0)
        ret = -errno;
    return ret;
}

int record_write_atomic(const char *path, const void *data, size_t len, bool sync)
{
    char tmp[RECORD_PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int ret = record_write_file(tmp, data, len, sync);
    if (ret == 0 && rename(tmp, path) < 0)
        ret = -errno;
    if (ret < 0)
        unlink(tmp);
    return ret;
}

int record_json_write(const char *recdir, json_t *j, bool sync)
{
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text)
        return -ENOMEM;
    char path[RECORD_PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", recdir, RECORD_JSON);
    int ret = record_write_atomic(path, text, strlen(text), sync);
    free(text);
    return ret;
}

/* ---- listing -------------------------------------------------------------- */

void record_list_free(record_info_t *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        record_info_deinit(&list[i]);
    free(list);
}

/* Newest first: by start, then id. */
static int record_list_cmp(const void *a, const void *b)
{
    const record_info_t *x = a, *y = b;
    if (x->started_s != y->started_s)
        return x->started_s > y->started_s ? -1 : 1;
    return strcmp(y->id, x->id);
}

int record_list(const char *dir, const char *stream_id, record_info_t **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (!dir)
        return 0;
    int base = record_dir_open(dir);
    if (base == -ENOENT)
        return 0; /* nothing recorded yet */
    if (base < 0)
        return base;
    int scan = dup(base);
    DIR *d = scan >= 0 ? fdopendir(scan) : NULL;
    if (!d) {
        if (scan >= 0)
            close(scan);
        close(base);
        return -EIO;
    }
    record_info_t *items = NULL;
    size_t n = 0, cap = 0;
    size_t prefix = stream_id ? strlen(stream_id) : 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        /* Hidden entries (deletions in progress) are no ids; a recording id
         * starts with its stream id: skip the others without opening them. */
        if (!record_id_valid(e->d_name) ||
            (stream_id && (strncmp(e->d_name, stream_id, prefix) != 0 ||
                           e->d_name[prefix] != '-')))
            continue;
        int rec = record_open(base, e->d_name);
        if (rec < 0)
            continue;
        record_info_t info;
        int r = record_json_read(rec, e->d_name, &info);
        close(rec);
        if (r == -ENOMEM)
            rc = r;
        if (r < 0)
            continue; /* not a recording (or being created) */
        if (stream_id && strcmp(info.stream_id, stream_id) != 0) {
            record_info_deinit(&info);
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            record_info_t *ni = realloc(items, ncap * sizeof(*ni));
            if (!ni) {
                record_info_deinit(&info);
                rc = -ENOMEM;
                break;
            }
            items = ni;
            cap = ncap;
        }
        items[n++] = info;
    }
    closedir(d);
    close(base);
    if (rc < 0) {
        record_list_free(items, n);
        return rc;
    }
    if (n > 1)
        qsort(items, n, sizeof(*items), record_list_cmp);
    *out = items;
    *n_out = n;
    return 0;
}

/* ---- deleting ------------------------------------------------------------- */

/* Removes parent/name and everything below it without following a link
 * (a link is removed, never what it points to). 0 or a negative errno. */
static int record_remove_tree(int parent, const char *name, int depth)
{
    if (depth > RECORD_DEPTH_MAX)
        return -ELOOP;
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -errno;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        bool isdir = e->d_type == DT_DIR;
        if (e->d_type == DT_UNKNOWN) {
            struct stat st;
            isdir = fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
        }
        int r = isdir ? record_remove_tree(fd, e->d_name, depth + 1)
                      : (unlinkat(fd, e->d_name, 0) == 0 ? 0 : -errno);
        if (r < 0 && r != -ENOENT && rc == 0)
            rc = r;
    }
    closedir(d);
    if (unlinkat(parent, name, AT_REMOVEDIR) != 0 && rc == 0 && errno != ENOENT)
        rc = -errno;
    return rc;
}

int record_delete(const char *dir, const char *rid, bool unfinished)
{
    if (!dir || !record_id_valid(rid))
        return -ENOENT;
    int base = record_dir_open(dir);
    if (base < 0)
        return base;
    int rc = 0;
    if (!unfinished) {
        int rec = record_open(base, rid);
        record_info_t info = {0};
        rc = rec < 0 ? rec : record_json_read(rec, rid, &info);
        if (rec >= 0)
            close(rec);
        if (rc == 0 && info.state == RECORD_STATE_RECORDING)
            rc = -EBUSY;
        record_info_deinit(&info);
        if (rc < 0) {
            close(base);
            return rc;
        }
    }
    /* Hidden at once and for good: every reader opens valid recording ids
     * only, which never start with a dot. */
    unsigned char rnd[4];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        memset(rnd, 0, sizeof(rnd));
    char hidden[RECORD_ID_MAX + 32];
    snprintf(hidden, sizeof(hidden), ".deleted-%s-%02x%02x%02x%02x", rid, rnd[0], rnd[1], rnd[2],
             rnd[3]);
    if (renameat(base, rid, base, hidden) != 0) {
        rc = record_errno(errno);
        close(base);
        return rc;
    }
    rc = record_remove_tree(base, hidden, 0);
    if (rc < 0) {
        char ctx[RECORD_ID_MAX + 16];
        snprintf(ctx, sizeof(ctx), "recording=%s", rid);
        log_warn(ctx, "deleted, but %s/%s could not be removed completely: %s", dir, hidden,
                 strerror(-rc));
    }
    close(base);
    return 0;
}

/* ---- disk usage ------------------------------------------------------------- */

static uint64_t record_du_total;
static int record_du_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F)
        record_du_total += (uint64_t)st->st_size;
    return 0;
}

/* nftw has no user pointer: a lock guards the total. */
static pthread_mutex_t record_du_lock = PTHREAD_MUTEX_INITIALIZER;

uint64_t record_disk_usage(const char *path)
{
    pthread_mutex_lock(&record_du_lock);
    record_du_total = 0;
    (void)nftw(path, record_du_cb, 16, FTW_PHYS);
    uint64_t n = record_du_total;
    pthread_mutex_unlock(&record_du_lock);
    return n;
}

int record_journal_read(const char *dir, const char *rid, const char *rend, record_seg_t **out,
                        size_t *n_out, size_t *skipped)
{
    *out = NULL;
    *n_out = 0;
    size_t skip = 0;
    if (skipped)
        *skipped = 0;
    int rec = record_open_in(dir, rid);
    if (rec < 0)
        return rec;
    char name[RECORD_RENDITION_MAX + 16];
    snprintf(name, sizeof(name), "%s/journal", rend);
    struct stat st;
    int fd = strchr(rend, '/') || rend[0] == '.' ? -ENOENT : record_file_open(rec, name, &st);
    close(rec);
    if (fd < 0)
        return fd;
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        return -EIO;
    }
    record_seg_t *segs = NULL;
    size_t n = 0, cap = 0;
    char line[256];
    int rc = 0;
    while (fgets(line, sizeof(line), f)) {
        size_t len = strlen(line);
        if (len == 0 || line[len - 1] != '\n') {
            skip++; /* cut short by a crash */
            continue;
        }
        record_seg_t s;
        memset(&s, 0, sizeof(s));
        int disc = 0;
        if (sscanf(line, "%" SCNd64 " %lf %d %31s %" SCNu64 " %" SCNd64, &s.msn, &s.duration,
                   &disc, s.init, &s.bytes, &s.pdt_ms) != 6 ||
            !(s.duration >= 0 && s.duration < 3600) || strchr(s.init, '/') ||
            (n > 0 && s.msn <= segs[n - 1].msn)) {
            skip++;
            continue;
        }
        s.discontinuity = disc != 0;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            record_seg_t *ns = realloc(segs, ncap * sizeof(*ns));
            if (!ns) {
                rc = -ENOMEM;
                break;
            }
            segs = ns;
            cap = ncap;
        }
        segs[n++] = s;
    }
    fclose(f);
    if (rc < 0) {
        free(segs);
        return rc;
    }
    *out = segs;
    *n_out = n;
    if (skipped)
        *skipped = skip;
    return 0;
}

int record_top_rendition(const char *dir, const char *rid, char out[RECORD_RENDITION_MAX])
{
    out[0] = '\0';
    char names[RECORD_RENDITIONS_SCAN_MAX][RECORD_RENDITION_MAX];
    size_t n = 0;
    int rc = record_renditions(dir, rid, names, RECORD_RENDITIONS_SCAN_MAX, &n);
    if (rc < 0)
        return rc;
    long best = -1;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], "audio") == 0)
            continue;
        long h = strtol(names[i], NULL, 10);
        if (h > best) {
            best = h;
            snprintf(out, RECORD_RENDITION_MAX, "%s", names[i]);
        }
    }
    return best < 0 ? -ENOENT : 0;
}

int record_renditions(const char *dir, const char *rid, char (*out)[RECORD_RENDITION_MAX],
                      size_t max, size_t *n)
{
    *n = 0;
    int rec = record_open_in(dir, rid);
    if (rec < 0)
        return rec;
    int scan = openat(rec, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    close(rec);
    DIR *d = scan >= 0 ? fdopendir(scan) : NULL;
    if (!d) {
        if (scan >= 0)
            close(scan);
        return -EIO;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL && *n < max) {
        if (e->d_name[0] == '.' || strlen(e->d_name) >= RECORD_RENDITION_MAX)
            continue;
        struct stat st;
        char journal[RECORD_RENDITION_MAX + 16];
        snprintf(journal, sizeof(journal), "%s/journal", e->d_name);
        if (fstatat(dirfd(d), journal, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        snprintf(out[(*n)++], RECORD_RENDITION_MAX, "%s", e->d_name);
    }
    closedir(d);
    return 0;
}
