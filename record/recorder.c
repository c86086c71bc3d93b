/*
 * Recorder: a broadcast kept on disk as a VOD (recorder.h; the layout is in
 * docs/recording.md).
 *
 * While live, the packager hands over each segment right after its store
 * commit: the segment's bytes go to REND/N.m4s, then one line goes to
 * REND/journal ("MSN DURATION DISC INITFILE BYTES PDT_MS"). The journal
 * line is written last, so a segment file without one (a crash while
 * writing it) is simply not part of the recording. A new init segment
 * (another configuration, or a pipeline rebuilt after a failure) gets a
 * file of its own, init-MSN.mp4. The live master is kept in
 * .live-master.m3u8 for the finalize, and the date ranges of the live
 * playlists (timed metadata) in .dateranges; the finalize's playlists come
 * from those files and the journals only: the same code finalizes a broadcast that ended and one
 * left "recording" by a crash (recorder_recover).
 *
 * Ids, paths, recording.json, safe opens and deletion are the layout's
 * (record_layout.h): this file decides what to write and when.
 *
 * Thread: a recorder_t is used by its transcode worker only. Finalize and
 * recover touch only the directory; recording.json is always replaced by
 * rename, so another thread (retention, the API) reads the old or the new
 * one, never half of one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* getdelim */
#endif
#include "recorder.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libavformat/avformat.h>
#include <libavutil/mathematics.h>

#include "clock.h"
#include "hls_names.h"
#include "hls_playlist.h"
#include "log.h"
#include "record_layout.h"

#define REC_PATH_MAX RECORD_PATH_MAX
#define REC_RENDS_MAX 12
#define REC_NAME_MAX RECORD_RENDITION_MAX
#define REC_CTX_MAX 96
#define REC_POSTER_TRIES 10 /* segments after the second that still look for a thumbnail */
#define REC_LIVE_MASTER ".live-master.m3u8"
#define REC_DATERANGES ".dateranges"
#define REC_DATERANGES_MAX 4096 /* date ranges a VOD playlist takes (the first ones) */
#define REC_DR_WORD_MAX 64      /* an id or a class */
#define REC_DR_LINE_MAX (2 * REC_DR_WORD_MAX + 24 + 2 * RECORDER_DATERANGE_MAX + 8)

typedef struct rec_rend {
    char name[REC_NAME_MAX];
    blob_t *init;       /* bytes of the init file in use */
    char init_file[32]; /* its name in the recording */
    int journal;        /* fd, O_APPEND; -1 before the first segment */
    off_t journal_size; /* its whole lines: a line cut short is cut off */
    double duration;
    int64_t segments;
    int64_t last_msn;
    int discontinuities;
} rec_rend_t;

struct recorder {
    char dir[REC_PATH_MAX];
    char path[REC_PATH_MAX]; /* dir/rid */
    char rid[RECORD_ID_MAX];
    char stream_id[STORE_ID_MAX];
    char ctx[REC_CTX_MAX];
    char started_at[32];
    store_t *store;
    const char *poster_object; /* borrowed from the params (a literal) */
    bool mp4;
    recorder_ready_cb ready_cb;
    void *ready_opaque;
    /* Write errors (a full disk, EIO): the segments that could not be
     * written are skipped, and writing goes on when it works again. */
    bool in_gap;           /* the last segment could not be written */
    int64_t gaps;          /* stretches of skipped segments */
    int64_t skipped;       /* segments skipped in all */
    char last_error[160];  /* what failed last, for recording.json */
    rec_rend_t rends[REC_RENDS_MAX];
    size_t nrends;
    int64_t last_msn; /* newest segment number seen (recording.json refresh) */
    int64_t segments; /* distinct segment numbers */
    uint64_t bytes;
    bool poster;
    int poster_tries;
    int dr_fd; /* .dateranges, O_APPEND; -1 before the first */
    off_t dr_size;
};

/* ---- small file helpers ------------------------------------------------ */

/* snprintf for paths: a path longer than the buffer is cut (and then
 * simply not found or not created), which is not worth a warning at each
 * call. */
static void rec_pathf(char *out, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rec_pathf(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, n, fmt, ap);
    va_end(ap);
}

/* DIR/REND/N.m4s: a recorded segment's path. */
static void rec_seg_path(char *out, size_t n, const char *dir, const char *rend, int64_t msn)
{
    char file[HLS_NAME_FILE_MAX];
    (void)hls_name_segment(file, sizeof(file), msn);
    rec_pathf(out, n, "%s/%s/%s", dir, rend, file);
}

static void rec_rfc3339(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void rec_fsync_path(const char *path, bool dir)
{
    int fd = open(path, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    (void)fsync(fd);
    close(fd);
}

/* Height from a rendition name ("720p" -> 720; others 0). */
static int rec_rend_height(const char *name)
{
    return atoi(name);
}

static int rec_rend_cmp(const void *a, const void *b)
{
    const char *x = a, *y = b;
    bool ax = strcmp(x, "audio") == 0, ay = strcmp(y, "audio") == 0;
    if (ax != ay)
        return ax ? 1 : -1;
    int hx = rec_rend_height(x), hy = rec_rend_height(y);
    if (hx != hy)
        return hx > hy ? -1 : 1;
    return strcmp(x, y);
}

/* ---- live side ----------------------------------------------------------- */

static json_t *rec_json_live(const recorder_t *r, const char *state)
{
    json_t *rends = json_array();
    char names[REC_RENDS_MAX][REC_NAME_MAX];
    for (size_t i = 0; i < r->nrends; i++)
        snprintf(names[i], sizeof(names[i]), "%s", r->rends[i].name);
    qsort(names, r->nrends, sizeof(names[0]), rec_rend_cmp);
    double duration = 0;
    int discs = 0;
    for (size_t i = 0; i < r->nrends; i++) {
        json_array_append_new(rends, json_string(names[i]));
        if (r->rends[i].duration > duration)
            duration = r->rends[i].duration;
        if (r->rends[i].discontinuities > discs)
            discs = r->rends[i].discontinuities;
    }
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:n, s:f, s:I, s:I, s:i, s:o, s:n, s:o}", "id",
                          r->rid, "stream_id", r->stream_id, "state", state, "started_at",
                          r->started_at, "ended_at", "duration_s", duration, "bytes",
                          (json_int_t)r->bytes, "segments", (json_int_t)r->segments,
                          "discontinuities", discs, "renditions", rends, "mp4",
                          "poster", r->poster ? json_string("poster.jpg") : json_null());
    if (j && r->gaps > 0) /* kept by the finalize, which rewrites only its own fields */
        json_object_set_new(j, "write_errors",
                            json_pack("{s:I, s:I, s:s}", "gaps", (json_int_t)r->gaps,
                                      "segments_skipped", (json_int_t)r->skipped, "last",
                                      r->last_error));
    return j;
}

/* A write that failed (a full disk, an I/O error). Nothing is given up:
 * `segment` says this segment is skipped (a gap in the recording, which the
 * finalize shows as a discontinuity: its journal has no line for it), and
 * the next one is written again as usual. Logged once per gap, and when
 * writing works again. The live stream never hears of it. */
static void rec_write_error(recorder_t *r, const char *what, int err, bool segment)
{
    /* A path inside the recording is said relative to it ("360p/12.m4s"). */
    size_t n = strlen(r->path);
    if (strncmp(what, r->path, n) == 0 && what[n] == '/')
        what += n + 1;
    snprintf(r->last_error, sizeof(r->last_error), "%.100s: %.50s", what, strerror(-err));
    if (!segment) {
        log_warn(r->ctx, "recording %s: %s (tried again later)", r->rid, r->last_error);
        return;
    }
    r->skipped++;
    if (r->in_gap)
        return;
    r->in_gap = true;
    r->gaps++;
    log_error(r->ctx, "recording %s: %s; its segments are skipped until writing works again "
                      "(the stream goes on, the recording keeps what it has)",
              r->rid, r->last_error);
}

static void rec_json_refresh(recorder_t *r)
{
    json_t *j = rec_json_live(r, "recording");
    int ret = j ? record_json_write(r->path, j, false) : -ENOMEM;
    json_decref(j);
    if (ret < 0)
        rec_write_error(r, RECORD_JSON, ret, false);
}

int recorder_open(const recorder_params_t *p, recorder_t **out)
{
    *out = NULL;
    recorder_t *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    snprintf(r->dir, sizeof(r->dir), "%s", p->dir);
    snprintf(r->stream_id, sizeof(r->stream_id), "%s", p->stream_id);
    if (p->log_ctx)
        snprintf(r->ctx, sizeof(r->ctx), "%s", p->log_ctx);
    else
        snprintf(r->ctx, sizeof(r->ctx), "stream=%s", p->stream_id);
    r->store = p->store;
    r->poster_object = p->poster_object;
    r->mp4 = p->mp4;
    r->ready_cb = p->ready_cb;
    r->ready_opaque = p->ready_opaque;
    r->last_msn = INT64_MIN;
    for (size_t i = 0; i < REC_RENDS_MAX; i++)
        r->rends[i].journal = -1;
    r->dr_fd = -1;
    int64_t start = p->start_wall_ms ? p->start_wall_ms : clock_wall_ms();
    rec_rfc3339(start, r->started_at);

    if (mkdir(r->dir, 0755) < 0 && errno != EEXIST) {
        int err = -errno;
        log_error(r->ctx, "--recordings-dir %s: %s; this broadcast is not recorded", r->dir,
                  strerror(-err));
        free(r);
        return err;
    }
    /* RID: "<stream_id>-YYYYMMDDTHHMMSSZ[-N]", kept within the id rules
     * (1-63 characters) by shortening the stream id part if need be. */
    char stamp[20];
    time_t secs = (time_t)(start / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    int err = -EEXIST;
    for (int n = 1; n < 100 && err == -EEXIST; n++) {
        char suffix[8] = "";
        if (n > 1)
            snprintf(suffix, sizeof(suffix), "-%d", n);
        int keep = (int)(RECORD_ID_MAX - 1 - 1 - strlen(stamp) - strlen(suffix));
        snprintf(r->rid, sizeof(r->rid), "%.*s-%s%s", keep, r->stream_id, stamp, suffix);
        rec_pathf(r->path, sizeof(r->path), "%s/%s", r->dir, r->rid);
        err = mkdir(r->path, 0755) < 0 ? -errno : 0;
    }
    if (err < 0) {
        log_error(r->ctx, "cannot create the recording directory %s: %s; this broadcast is not "
                          "recorded", r->path, strerror(-err));
        free(r);
        return err;
    }
    json_t *j = rec_json_live(r, "recording");
    err = j ? record_json_write(r->path, j, false) : -ENOMEM;
    json_decref(j);
    if (err < 0) {
        log_error(r->ctx, "cannot write %s/%s: %s; this broadcast is not recorded", r->path,
                  RECORD_JSON, strerror(-err));
        if (record_delete(r->dir, r->rid, true) < 0)
            log_warn(r->ctx, "cannot remove %s either", r->path);
        free(r);
        return err;
    }
    log_info(r->ctx, "recording %s to %s", r->rid, r->path);
    *out = r;
    return 0;
}

const char *recorder_id(const recorder_t *r)
{
    return r->rid;
}

static rec_rend_t *rec_rend(recorder_t *r, const char *name)
{
    for (size_t i = 0; i < r->nrends; i++)
        if (strcmp(r->rends[i].name, name) == 0)
            return &r->rends[i];
    if (r->nrends == REC_RENDS_MAX || strlen(name) >= REC_NAME_MAX || !name[0] ||
        strchr(name, '/') || name[0] == '.')
        return NULL;
    char path[REC_PATH_MAX + 32];
    rec_pathf(path, sizeof(path), "%s/%s", r->path, name);
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        rec_write_error(r, path, -errno, true);
        return NULL;
    }
    rec_pathf(path, sizeof(path), "%s/%s/journal", r->path, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        rec_write_error(r, path, -errno, true);
        return NULL;
    }
    struct stat st;
    rec_rend_t *rr = &r->rends[r->nrends++];
    snprintf(rr->name, sizeof(rr->name), "%s", name);
    rr->journal = fd;
    rr->journal_size = fstat(fd, &st) == 0 ? st.st_size : 0;
    return rr;
}

static void rec_poster(recorder_t *r)
{
    if (r->poster || !r->store || !r->poster_object || r->segments < 2 || r->poster_tries > REC_POSTER_TRIES)
        return;
    r->poster_tries++;
    blob_t *b = NULL;
    if (store_get(r->store, r->stream_id, r->poster_object, &b) < 0)
        return;
    char path[REC_PATH_MAX + 16];
    rec_pathf(path, sizeof(path), "%s/poster.jpg", r->path);
    int ret = record_write_atomic(path, b->data, b->size, false);
    blob_unref(b);
    if (ret < 0) {
        rec_write_error(r, path, ret, false);
        return;
    }
    r->poster = true;
}

void recorder_add_segment(recorder_t *r, const recorder_segment_t *seg)
{
    if (!r || !seg->data)
        return;
    rec_rend_t *rr = rec_rend(r, seg->rendition);
    if (!rr)
        return;
    char path[REC_PATH_MAX + 64];
    int ret;
    /* A new init file when the bytes change (a reconfiguration, or a
     * rebuilt pipeline whose packager calls its init "init.mp4" again). */
    const blob_t *init = seg->init ? seg->init : rr->init;
    if (!init) {
        rec_write_error(r, "a segment without an init segment", -EPROTO, true);
        return;
    }
    if (!rr->init || rr->init->size != init->size ||
        memcmp(rr->init->data, init->data, init->size) != 0) {
        (void)hls_name_init(rr->init_file, sizeof(rr->init_file), rr->init ? seg->msn : -1);
        rec_pathf(path, sizeof(path), "%s/%s/%s", r->path, rr->name, rr->init_file);
        if ((ret = record_write_file(path, init->data, init->size, false)) < 0) {
            unlink(path); /* half a file: give its space back */
            rec_write_error(r, path, ret, true);
            return;
        }
        blob_unref(rr->init);
        rr->init = blob_ref((blob_t *)init);
        r->bytes += init->size;
    }
    rec_seg_path(path, sizeof(path), r->path, rr->name, seg->msn);
    if ((ret = record_write_file(path, seg->data->data, seg->data->size, false)) < 0) {
        unlink(path); /* as above; the finalize would leave it out anyway */
        rec_write_error(r, path, ret, true);
        return;
    }
    char line[160];
    int len = snprintf(line, sizeof(line), "%" PRId64 " %.6f %d %s %zu %" PRId64 "\n", seg->msn,
                       seg->duration, seg->discontinuity ? 1 : 0, rr->init_file,
                       seg->data->size, seg->pdt_ms);
    if ((ret = record_write_all(rr->journal, line, (size_t)len)) < 0) {
        /* A line cut short would run into the next one: cut it off (the
         * finalize would skip it anyway), and the segment it named. */
        if (ftruncate(rr->journal, rr->journal_size) < 0)
            log_warn(r->ctx, "recording %s: cannot cut the journal back: %s", r->rid,
                     strerror(errno));
        unlink(path);
        rec_write_error(r, "journal", ret, true);
        return;
    }
    rr->journal_size += len;
    if (r->in_gap) {
        r->in_gap = false;
        log_info(r->ctx, "recording %s: writing again from segment %" PRId64 " (%" PRId64
                         " segments skipped so far; the gap is a discontinuity in the recording)",
                 r->rid, seg->msn, r->skipped);
    }
    /* Counted as the VOD playlist will show them (rec_render_media). */
    if (rr->segments > 0 && (seg->discontinuity || seg->msn != rr->last_msn + 1))
        rr->discontinuities++;
    rr->segments++;
    rr->last_msn = seg->msn;
    rr->duration += seg->duration;
    r->bytes += seg->data->size;
    if (seg->msn > r->last_msn) {
        r->last_msn = seg->msn;
        r->segments++;
        rec_poster(r);
        rec_json_refresh(r);
    }
}

/* An id or a class as .dateranges keeps them: 1-63 of [A-Za-z0-9._-]. */
static bool rec_dr_word(const char *w)
{
    size_t n = w ? strlen(w) : 0;
    if (n == 0 || n >= REC_DR_WORD_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)w[i]) && w[i] != '.' && w[i] != '_' && w[i] != '-')
            return false;
    return true;
}

void recorder_add_daterange(recorder_t *r, const recorder_daterange_t *d)
{
    if (!r || !rec_dr_word(d->id) || !rec_dr_word(d->class_name) ||
        d->payload_len > RECORDER_DATERANGE_MAX)
        return;
    char path[REC_PATH_MAX + 64];
    rec_pathf(path, sizeof(path), "%s/%s", r->path, REC_DATERANGES);
    if (r->dr_fd < 0) {
        r->dr_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (r->dr_fd < 0) {
            rec_write_error(r, path, -errno, false);
            return;
        }
        struct stat st;
        r->dr_size = fstat(r->dr_fd, &st) == 0 ? st.st_size : 0;
    }
    char line[REC_DR_LINE_MAX];
    int len = snprintf(line, sizeof(line), "%s %" PRId64 " %s ", d->id, d->start_ms,
                       d->class_name);
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < d->payload_len; i++) {
        line[len++] = hex[d->payload[i] >> 4];
        line[len++] = hex[d->payload[i] & 15];
    }
    line[len++] = '\n';
    int ret = record_write_all(r->dr_fd, line, (size_t)len);
    if (ret < 0) {
        if (ftruncate(r->dr_fd, r->dr_size) < 0)
            log_warn(r->ctx, "recording %s: cannot cut %s back: %s", r->rid, REC_DATERANGES,
                     strerror(errno));
        rec_write_error(r, REC_DATERANGES, ret, false);
        return;
    }
    r->dr_size += len;
}

void recorder_set_master(recorder_t *r, const blob_t *master)
{
    if (!r || !master)
        return;
    char path[REC_PATH_MAX + 32];
    rec_pathf(path, sizeof(path), "%s/%s", r->path, REC_LIVE_MASTER);
    int ret = record_write_atomic(path, master->data, master->size, false);
    if (ret < 0) /* the finalize makes one from the renditions when it has none */
        rec_write_error(r, path, ret, false);
}

/* ---- finalize (end of broadcast, and crash recovery) -------------------- */

typedef record_seg_t rec_seg_t;

typedef struct rec_fin_rend {
    char name[REC_NAME_MAX];
    rec_seg_t *segs;
    size_t n;
    double duration;
    int discontinuities;
    uint64_t bytes;
} rec_fin_rend_t;

static bool rec_file_size_is(const char *path, uint64_t size)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size;
}

static bool rec_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Reads REND/journal (record_journal_read): the segments whose line is
 * whole and whose file is there with the size the line says. */
static int rec_read_journal(const char *dir, const char *rid, rec_fin_rend_t *fr, const char *ctx)
{
    char recdir[REC_PATH_MAX];
    rec_pathf(recdir, sizeof(recdir), "%s/%s", dir, rid);
    rec_seg_t *segs;
    size_t n, dropped;
    int rc = record_journal_read(dir, rid, fr->name, &segs, &n, &dropped);
    if (rc < 0)
        return rc;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        char seg[REC_PATH_MAX + 96], init[REC_PATH_MAX + 96];
        rec_seg_path(seg, sizeof(seg), recdir, fr->name, segs[i].msn);
        rec_pathf(init, sizeof(init), "%s/%s/%s", recdir, fr->name, segs[i].init);
        if (!rec_file_size_is(seg, segs[i].bytes) || !rec_file_exists(init)) {
            dropped++;
            continue;
        }
        segs[kept++] = segs[i];
    }
    fr->segs = segs;
    fr->n = kept;
    if (dropped)
        log_warn(ctx, "%s: %zu journal line(s) or segment file(s) incomplete; left out", fr->name,
                 dropped);
    return 0;
}

/* The date ranges of a recording (.dateranges), oldest first. */
typedef struct rec_drs {
    hls_daterange_t *d;
    char (*words)[2][REC_DR_WORD_MAX];
    uint8_t *bytes; /* the payloads, back to back */
    size_t n;
} rec_drs_t;

static void rec_drs_free(rec_drs_t *drs)
{
    free(drs->d);
    free(drs->words);
    free(drs->bytes);
    memset(drs, 0, sizeof(*drs));
}

static int rec_hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Reads .dateranges: whole, well-formed lines only (one cut short by a
 * crash is left out), at most REC_DATERANGES_MAX. No file: none. */
static int rec_read_dateranges(const char *recdir, rec_drs_t *drs, const char *ctx)
{
    memset(drs, 0, sizeof(*drs));
    char path[REC_PATH_MAX + 64];
    rec_pathf(path, sizeof(path), "%s/%s", recdir, REC_DATERANGES);
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? 0 : -errno;
    size_t cap = 0, used = 0, dropped = 0;
    int ret = 0;
    char *line = malloc(REC_DR_LINE_MAX + 2);
    if (!line) {
        fclose(f);
        return -ENOMEM;
    }
    while (fgets(line, REC_DR_LINE_MAX + 2, f)) {
        size_t len = strlen(line);
        if (len == 0 || line[len - 1] != '\n') {
            dropped++;
            /* The rest of an over-long line. */
            int c;
            while (len > REC_DR_LINE_MAX && (c = fgetc(f)) != EOF && c != '\n')
                ;
            continue;
        }
        line[--len] = '\0';
        char id[REC_DR_WORD_MAX], cls[REC_DR_WORD_MAX];
        int64_t start;
        int off = 0;
        if (sscanf(line, "%63s %" SCNd64 " %63s %n", id, &start, cls, &off) != 3 || off <= 0 ||
            !rec_dr_word(id) || !rec_dr_word(cls)) {
            dropped++;
            continue;
        }
        const char *hex = line + off;
        size_t hl = strlen(hex);
        bool ok = hl % 2 == 0 && hl / 2 <= RECORDER_DATERANGE_MAX;
        for (size_t i = 0; ok && i < hl; i++)
            ok = rec_hexval(hex[i]) >= 0;
        if (!ok) {
            dropped++;
            continue;
        }
        if (drs->n == REC_DATERANGES_MAX)
            break;
        if (drs->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            hls_daterange_t *nd = realloc(drs->d, ncap * sizeof(*nd));
            if (nd)
                drs->d = nd;
            char(*nw)[2][REC_DR_WORD_MAX] = nd ? realloc(drs->words, ncap * sizeof(*nw)) : NULL;
            if (nw)
                drs->words = nw;
            uint8_t *nb = nw ? realloc(drs->bytes, ncap * RECORDER_DATERANGE_MAX) : NULL;
            if (!nb) {
                ret = -ENOMEM;
                break;
            }
            drs->bytes = nb;
            cap = ncap;
        }
        size_t k = drs->n++;
        snprintf(drs->words[k][0], REC_DR_WORD_MAX, "%s", id);
        snprintf(drs->words[k][1], REC_DR_WORD_MAX, "%s", cls);
        uint8_t *p = drs->bytes + k * RECORDER_DATERANGE_MAX;
        for (size_t i = 0; i < hl / 2; i++)
            p[i] = (uint8_t)(rec_hexval(hex[2 * i]) << 4 | rec_hexval(hex[2 * i + 1]));
        drs->d[k] = (hls_daterange_t){.start_ms = start, .payload_len = hl / 2};
        used++;
    }
    free(line);
    fclose(f);
    /* Pointers last: the arrays may have moved while growing. */
    for (size_t k = 0; k < drs->n; k++) {
        drs->d[k].id = drs->words[k][0];
        drs->d[k].class_name = drs->words[k][1];
        drs->d[k].payload = drs->bytes + k * RECORDER_DATERANGE_MAX;
    }
    if (dropped)
        log_warn(ctx, "%s: %zu line(s) incomplete; left out", REC_DATERANGES, dropped);
    if (ret < 0)
        rec_drs_free(drs);
    return ret;
}

/* The VOD media playlist of one rendition: every segment of the journal,
 * EXT-X-MAP where the init segment changes, EXT-X-DISCONTINUITY where the
 * live playlist had one (or segment numbers jump: a rung that was dropped
 * for a while). Decides here, renders with the live playlists' renderer
 * (hls_playlist.h). Sets the rendition's totals. Returns a new blob or
 * NULL (no memory). */
static blob_t *rec_render_media(rec_fin_rend_t *fr, const rec_drs_t *drs)
{
    hls_segment_t *segs = calloc(fr->n ? fr->n : 1, sizeof(*segs));
    if (!segs)
        return NULL;
    int target = 1;
    fr->duration = 0;
    fr->discontinuities = 0;
    fr->bytes = 0;
    for (size_t i = 0; i < fr->n; i++) {
        const rec_seg_t *s = &fr->segs[i];
        int d = (int)lround(s->duration);
        if (d > target)
            target = d;
        bool disc = i > 0 && (s->discontinuity || s->msn != fr->segs[i - 1].msn + 1);
        if (disc)
            fr->discontinuities++;
        segs[i] = (hls_segment_t){
            .msn = s->msn,
            .duration = s->duration,
            .pdt_ms = s->pdt_ms,
            .discontinuity = disc,
            .bytes = (size_t)s->bytes,
        };
        snprintf(segs[i].map_uri, sizeof(segs[i].map_uri), "%s", s->init);
        fr->duration += s->duration;
        fr->bytes += s->bytes;
    }
    hls_media_playlist_t pl = {
        .target_duration = target,
        .media_sequence = fr->n ? fr->segs[0].msn : 0,
        .segments = segs,
        .nsegments = fr->n,
        .ended = true,
        .playlist_type = HLS_PLAYLIST_TYPE_VOD,
        .independent_segments = true,
        .dateranges = drs->d,
        .ndateranges = drs->n,
    };
    blob_t *out = NULL;
    int ret = hls_playlist_render_media(&pl, &out);
    free(segs);
    return ret == 0 ? out : NULL;
}

/* A master for a recording whose live master never reached the disk (the
 * process died before every rendition had a segment): variants with the
 * measured bandwidth, no CODECS. Returns a new blob or NULL. */
static blob_t *rec_render_master(rec_fin_rend_t *fr, size_t n)
{
    bool audio = false, video = false;
    for (size_t i = 0; i < n; i++) {
        if (fr[i].n == 0)
            continue;
        if (strcmp(fr[i].name, "audio") == 0)
            audio = true;
        else
            video = true;
    }
    hls_media_rendition_t media = {
        .type = "AUDIO",
        .group_id = "audio",
        .name = "audio",
        .is_default = true,
        .autoselect = true,
        .uri = "audio/" HLS_NAME_PLAYLIST,
    };
    hls_variant_t variants[REC_RENDS_MAX];
    char uris[REC_RENDS_MAX][REC_NAME_MAX + 16];
    size_t nv = 0;
    for (size_t i = n; i-- > 0;) {
        bool is_audio = strcmp(fr[i].name, "audio") == 0;
        if (fr[i].n == 0 || (is_audio && video))
            continue;
        double bw = fr[i].duration > 0 ? fr[i].bytes * 8.0 / fr[i].duration : 0;
        (void)hls_name_join(uris[nv], sizeof(uris[nv]), fr[i].name, HLS_NAME_PLAYLIST);
        variants[nv] = (hls_variant_t){
            .bandwidth = (int64_t)ceil(bw * 1.2),
            .audio_group = audio && !is_audio ? "audio" : NULL,
            .uri = uris[nv],
        };
        nv++;
    }
    hls_master_playlist_t pl = {
        .independent_segments = true,
        .media = &media,
        .nmedia = audio && video ? 1 : 0,
        .variants = variants,
        .nvariants = nv,
    };
    blob_t *out = NULL;
    return hls_playlist_render_master(&pl, &out) == 0 ? out : NULL;
}

/* Concatenates rendition fr's init and its segments (while they use the
 * same init segment as the first) into path: a plain fragmented MP4. */
static int rec_concat(const char *recdir, const rec_fin_rend_t *fr, const char *path,
                      size_t *used)
{
    *used = 0;
    if (fr->n == 0)
        return -ENOENT;
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0)
        return -errno;
    int ret = 0;
    char buf[65536];
    for (size_t i = 0; i <= fr->n && ret == 0; i++) {
        char src[REC_PATH_MAX + 96];
        if (i == 0)
            rec_pathf(src, sizeof(src), "%s/%s/%s", recdir, fr->name, fr->segs[0].init);
        else if (strcmp(fr->segs[i - 1].init, fr->segs[0].init) != 0)
            break;
        else
            rec_seg_path(src, sizeof(src), recdir, fr->name, fr->segs[i - 1].msn);
        int in = open(src, O_RDONLY | O_CLOEXEC);
        if (in < 0) {
            ret = -errno;
            break;
        }
        ssize_t n;
        while ((n = read(in, buf, sizeof(buf))) > 0 && ret == 0)
            ret = record_write_all(out, buf, (size_t)n);
        if (n < 0 && ret == 0)
            ret = -errno;
        close(in);
        if (i > 0)
            (*used)++;
    }
    if (close(out) < 0 && ret == 0)
        ret = -errno;
    return ret;
}

static int rec_averr(int err)
{
    return err == AVERROR(ENOMEM) ? -ENOMEM : -EIO;
}

/* recording.mp4: the top video rendition and the audio remuxed (no
 * re-encode) into one progressive MP4 with the index up front (faststart).
 * A configuration change mid-broadcast (another init segment) ends what
 * the MP4 holds; the HLS recording has all of it. */
static int rec_mp4(const char *recdir, const rec_fin_rend_t *video, const rec_fin_rend_t *audio,
                   const char *ctx)
{
    const rec_fin_rend_t *src[2] = {video, audio};
    char tmp[2][REC_PATH_MAX + 64];
    AVFormatContext *in[2] = {NULL, NULL};
    int outidx[2] = {-1, -1};
    AVFormatContext *out = NULL;
    AVPacket *pkt[2] = {av_packet_alloc(), av_packet_alloc()};
    bool have[2] = {false, false}, eof[2] = {false, false};
    char outtmp[REC_PATH_MAX + 32], outpath[REC_PATH_MAX + 32];
    rec_pathf(outtmp, sizeof(outtmp), "%s/recording.mp4.tmp", recdir);
    rec_pathf(outpath, sizeof(outpath), "%s/recording.mp4", recdir);
    int ret = pkt[0] && pkt[1] ? 0 : -ENOMEM;
    AVDictionary *opts = NULL;
    tmp[0][0] = tmp[1][0] = '\0';
    int nin = 0;
    for (int i = 0; i < 2 && ret == 0; i++) {
        if (!src[i] || src[i]->n == 0)
            continue;
        rec_pathf(tmp[i], sizeof(tmp[i]), "%s/%s/.mp4-source", recdir, src[i]->name);
        size_t used = 0;
        if ((ret = rec_concat(recdir, src[i], tmp[i], &used)) < 0)
            break;
        if (used < src[i]->n)
            log_warn(ctx, "recording.mp4: %s changes configuration at segment %" PRId64
                          "; the MP4 stops there",
                     src[i]->name, src[i]->segs[used].msn);
        int r = avformat_open_input(&in[i], tmp[i], NULL, NULL);
        if (r >= 0)
            r = avformat_find_stream_info(in[i], NULL);
        if (r < 0 || in[i]->nb_streams < 1) {
            ret = r < 0 ? rec_averr(r) : -EPROTO;
            break;
        }
        nin++;
    }
    if (ret == 0 && nin == 0)
        ret = -ENOENT;
    if (ret == 0) {
        int r = avformat_alloc_output_context2(&out, NULL, "mp4", outtmp);
        if (r < 0)
            ret = rec_averr(r);
    }
    for (int i = 0; i < 2 && ret == 0; i++) {
        if (!in[i])
            continue;
        AVStream *is = in[i]->streams[0];
        AVStream *os = avformat_new_stream(out, NULL);
        if (!os || avcodec_parameters_copy(os->codecpar, is->codecpar) < 0) {
            ret = -ENOMEM;
            break;
        }
        os->codecpar->codec_tag = 0;
        os->time_base = is->time_base;
        outidx[i] = os->index;
    }
    if (ret == 0) {
        int r = avio_open(&out->pb, outtmp, AVIO_FLAG_WRITE);
        if (r >= 0) {
            av_dict_set(&opts, "movflags", "+faststart", 0);
            r = avformat_write_header(out, &opts);
        }
        if (r < 0)
            ret = rec_averr(r);
    }
    /* Both inputs share the packager's timeline: merge them by dts and
     * move the earliest to zero. */
    int64_t start_us = INT64_MAX;
    for (int i = 0; i < 2 && ret == 0; i++) {
        if (!in[i])
            continue;
        int r = av_read_frame(in[i], pkt[i]);
        if (r < 0) {
            eof[i] = true;
            continue;
        }
        have[i] = true;
        int64_t ts = pkt[i]->dts != AV_NOPTS_VALUE ? pkt[i]->dts : pkt[i]->pts;
        int64_t us = av_rescale_q(ts, in[i]->streams[0]->time_base, AV_TIME_BASE_Q);
        if (us < start_us)
            start_us = us;
    }
    while (ret == 0 && (have[0] || have[1])) {
        int i;
        if (have[0] && have[1]) {
            i = av_compare_ts(pkt[0]->dts, in[0]->streams[0]->time_base, pkt[1]->dts,
                              in[1]->streams[0]->time_base) <= 0
                    ? 0
                    : 1;
        } else {
            i = have[0] ? 0 : 1;
        }
        AVStream *is = in[i]->streams[0], *os = out->streams[outidx[i]];
        int64_t off = av_rescale_q(start_us, AV_TIME_BASE_Q, is->time_base);
        if (pkt[i]->pts != AV_NOPTS_VALUE)
            pkt[i]->pts -= off;
        if (pkt[i]->dts != AV_NOPTS_VALUE)
            pkt[i]->dts -= off;
        av_packet_rescale_ts(pkt[i], is->time_base, os->time_base);
        pkt[i]->stream_index = outidx[i];
        pkt[i]->pos = -1;
        int r = av_interleaved_write_frame(out, pkt[i]);
        if (r < 0) {
            ret = rec_averr(r);
            break;
        }
        have[i] = false;
        if (!eof[i]) {
            r = av_read_frame(in[i], pkt[i]);
            if (r >= 0)
                have[i] = true;
            else
                eof[i] = true;
        }
    }
    if (ret == 0) {
        int r = av_write_trailer(out);
        if (r < 0)
            ret = rec_averr(r);
    }
    if (out && out->pb) {
        if (avio_closep(&out->pb) < 0 && ret == 0)
            ret = -EIO;
    }
    avformat_free_context(out);
    av_dict_free(&opts);
    for (int i = 0; i < 2; i++) {
        avformat_close_input(&in[i]);
        av_packet_free(&pkt[i]);
        if (tmp[i][0])
            unlink(tmp[i]);
    }
    if (ret == 0) {
        rec_fsync_path(outtmp, false);
        if (rename(outtmp, outpath) < 0)
            ret = -errno;
    }
    if (ret < 0)
        unlink(outtmp);
    return ret;
}

/* Whether any REND/ under recdir holds a .m4s file. */
static bool rec_has_media(const char *recdir)
{
    DIR *d = opendir(recdir);
    if (!d)
        return false;
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[REC_PATH_MAX + 300];
        rec_pathf(path, sizeof(path), "%s/%s", recdir, de->d_name);
        DIR *r = opendir(path);
        if (!r)
            continue;
        struct dirent *f;
        while (!found && (f = readdir(r))) {
            hls_name_t h;
            found = hls_name_parse(f->d_name, strlen(f->d_name), &h) &&
                    h.kind == HLS_NAME_KIND_SEGMENT;
        }
        closedir(r);
    }
    closedir(d);
    return found;
}

static int rec_name_cmp(const void *a, const void *b)
{
    return rec_rend_cmp(((const rec_fin_rend_t *)a)->name, ((const rec_fin_rend_t *)b)->name);
}

/* Finalizes DIR/RID from its journals and files. ended_ms 0: from the last
 * segment's program date-time (recovery). Returns 0 when ready (duration
 * and stream id out), 1 when nothing was recorded (the directory is
 * removed), or a negative errno (marked failed when it could be). */
static int rec_finalize(const char *dir, const char *rid, bool mp4, int64_t ended_ms,
                        double *duration_out, char *stream_id_out, size_t stream_id_len)
{
    char recdir[REC_PATH_MAX], path[REC_PATH_MAX + 64], ctx[REC_CTX_MAX];
    rec_pathf(recdir, sizeof(recdir), "%s/%s", dir, rid);
    snprintf(ctx, sizeof(ctx), "recording=%s", rid);
    record_info_t info;
    int rret = record_read(dir, rid, &info);
    if (rret < 0) {
        log_error(ctx, "%s/%s: unreadable (%s); left as it is", recdir, RECORD_JSON,
                  strerror(-rret));
        return -EPROTO;
    }
    json_t *j = info.json; /* ours now: rewritten below */
    snprintf(stream_id_out, stream_id_len, "%s", info.stream_id);

    rec_fin_rend_t fr[REC_RENDS_MAX];
    memset(fr, 0, sizeof(fr));
    char names[REC_RENDS_MAX][RECORD_RENDITION_MAX];
    size_t n = 0;
    int ret = record_renditions(dir, rid, names, REC_RENDS_MAX, &n);
    if (ret < 0) {
        json_decref(j);
        return ret;
    }
    for (size_t i = 0; i < n; i++)
        snprintf(fr[i].name, sizeof(fr[i].name), "%s", names[i]);
    qsort(fr, n, sizeof(fr[0]), rec_name_cmp);

    /* Every VOD playlist carries every date range of the broadcast. */
    rec_drs_t drs;
    if ((ret = rec_read_dateranges(recdir, &drs, ctx)) < 0) {
        log_warn(ctx, "%s unreadable (%s); the playlists go without date ranges", REC_DATERANGES,
                 strerror(-ret));
        ret = 0;
    }
    json_t *rends = json_array();
    double duration = 0;
    int64_t segments = 0, last_end_ms = 0;
    int discs = 0;
    size_t top_video = SIZE_MAX, audio = SIZE_MAX;
    for (size_t i = 0; i < n && ret == 0; i++) {
        if ((ret = rec_read_journal(dir, rid, &fr[i], ctx)) < 0)
            break;
        if (fr[i].n == 0)
            continue;
        blob_t *pl = rec_render_media(&fr[i], &drs);
        if (!pl) {
            ret = -ENOMEM;
            break;
        }
        rec_pathf(path, sizeof(path), "%s/%s/%s", recdir, fr[i].name, HLS_NAME_PLAYLIST);
        ret = record_write_atomic(path, pl->data, pl->size, true);
        blob_unref(pl);
        /* The segments were written without fsync while live. */
        for (size_t k = 0; k < fr[i].n && ret == 0; k++) {
            rec_seg_path(path, sizeof(path), recdir, fr[i].name, fr[i].segs[k].msn);
            rec_fsync_path(path, false);
            if (k == 0 || strcmp(fr[i].segs[k].init, fr[i].segs[k - 1].init) != 0) {
                rec_pathf(path, sizeof(path), "%s/%s/%s", recdir, fr[i].name, fr[i].segs[k].init);
                rec_fsync_path(path, false);
            }
        }
        rec_pathf(path, sizeof(path), "%s/%s", recdir, fr[i].name);
        rec_fsync_path(path, true);
        json_array_append_new(rends, json_string(fr[i].name));
        bool is_audio = strcmp(fr[i].name, "audio") == 0;
        if (is_audio)
            audio = i;
        else if (top_video == SIZE_MAX)
            top_video = i;
        if (fr[i].duration > duration)
            duration = fr[i].duration;
        if ((int64_t)fr[i].n > segments)
            segments = (int64_t)fr[i].n;
        if (!is_audio && fr[i].discontinuities > discs)
            discs = fr[i].discontinuities;
        const rec_seg_t *last = &fr[i].segs[fr[i].n - 1];
        int64_t end = last->pdt_ms + (int64_t)(last->duration * 1000);
        if (last->pdt_ms > 0 && end > last_end_ms)
            last_end_ms = end;
    }
    rec_drs_free(&drs);
    if (ret == 0 && top_video == SIZE_MAX && audio != SIZE_MAX)
        discs = fr[audio].discontinuities; /* audio only */

    if (ret == 0 && segments == 0) {
        for (size_t i = 0; i < n; i++)
            free(fr[i].segs);
        json_decref(rends);
        if (rec_has_media(recdir)) {
            /* Segment files, but no journal line that vouches for one: not
             * something to delete unasked. */
            log_warn(ctx, "no complete segment in the journals, but media files: marked failed "
                          "and left for a look");
            json_object_set_new(j, "state", json_string("failed"));
            ret = record_json_write(recdir, j, true);
            json_decref(j);
            return ret < 0 ? ret : -EPROTO;
        }
        log_info(ctx, "nothing was recorded (no segment); removed");
        json_decref(j);
        if (record_delete(dir, rid, true) < 0)
            log_warn(ctx, "%s: cannot be removed", recdir);
        return 1;
    }

    /* The master: the live one's lines (same variants, BANDWIDTH, CODECS,
     * RESOLUTION), or one made from the renditions when it never reached
     * the disk. */
    blob_t *master = NULL;
    if (ret == 0) {
        rec_pathf(path, sizeof(path), "%s/%s", recdir, REC_LIVE_MASTER);
        FILE *f = fopen(path, "re");
        if (f) {
            char *text = NULL;
            size_t cap = 0;
            ssize_t len = getdelim(&text, &cap, '\0', f);
            fclose(f);
            if (len > 0)
                master = blob_new(text, (size_t)len);
            free(text);
        }
        if (!master)
            master = rec_render_master(fr, n);
        if (!master)
            ret = -ENOMEM;
    }
    if (ret == 0) {
        rec_pathf(path, sizeof(path), "%s/%s", recdir, HLS_NAME_MASTER);
        ret = record_write_atomic(path, master->data, master->size, true);
    }
    blob_unref(master);

    bool have_mp4 = false;
    if (ret == 0 && mp4) {
        int r = rec_mp4(recdir, top_video != SIZE_MAX ? &fr[top_video] : NULL,
                        audio != SIZE_MAX ? &fr[audio] : NULL, ctx);
        if (r < 0)
            log_error(ctx, "recording.mp4 could not be made (%s); the HLS recording is fine",
                      strerror(-r));
        have_mp4 = r == 0;
    }
    for (size_t i = 0; i < n; i++)
        free(fr[i].segs);
    if (ret == 0) {
        rec_pathf(path, sizeof(path), "%s/%s", recdir, REC_LIVE_MASTER);
        unlink(path);
    }

    char ended[32];
    if (!ended_ms)
        ended_ms = last_end_ms ? last_end_ms : clock_wall_ms();
    rec_rfc3339(ended_ms, ended);
    rec_pathf(path, sizeof(path), "%s/poster.jpg", recdir);
    bool poster = rec_file_exists(path);
    /* A finalize that could not write (a full disk) leaves the recording
     * "recording": the next start's recovery finalizes it again, and
     * retention never deletes it meanwhile. */
    json_object_set_new(j, "state", json_string(ret == 0 ? "ready" : "recording"));
    json_object_set_new(j, "ended_at", json_string(ended));
    json_object_set_new(j, "duration_s", json_real(round(duration * 1000) / 1000));
    json_object_set_new(j, "segments", json_integer(segments));
    json_object_set_new(j, "discontinuities", json_integer(discs));
    json_object_set_new(j, "renditions", rends);
    json_object_set_new(j, "mp4", have_mp4 ? json_string("recording.mp4") : json_null());
    json_object_set_new(j, "poster", poster ? json_string("poster.jpg") : json_null());
    /* Everything but recording.json itself (its size depends on this). */
    uint64_t bytes = record_disk_usage(recdir);
    struct stat jst;
    rec_pathf(path, sizeof(path), "%s/%s", recdir, RECORD_JSON);
    if (stat(path, &jst) == 0 && (uint64_t)jst.st_size <= bytes)
        bytes -= (uint64_t)jst.st_size;
    json_object_set_new(j, "bytes", json_integer((json_int_t)bytes));
    int wret = record_json_write(recdir, j, true);
    json_decref(j);
    rec_fsync_path(recdir, true);
    if (ret < 0) {
        log_error(ctx, "finalize failed: %s; left to be finalized again at the next start",
                  strerror(-ret));
        return ret;
    }
    if (wret < 0) {
        log_error(ctx, "cannot write recording.json: %s", strerror(-wret));
        return wret;
    }
    *duration_out = duration;
    return 0;
}

void recorder_close(recorder_t *r, bool finalize)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nrends; i++) {
        if (r->rends[i].journal >= 0)
            close(r->rends[i].journal);
        blob_unref(r->rends[i].init);
    }
    if (r->dr_fd >= 0)
        close(r->dr_fd);
    if (!finalize) {
        log_info(r->ctx, "recording %s left unfinished (finalized at the next start)", r->rid);
    } else {
        if (r->gaps > 0) /* write_errors in recording.json, which the finalize keeps */
            rec_json_refresh(r);
        double duration = 0;
        char sid[STORE_ID_MAX];
        int ret = rec_finalize(r->dir, r->rid, r->mp4, clock_wall_ms(), &duration, sid,
                               sizeof(sid));
        if (ret == 0) {
            log_info(r->ctx, "recording %s ready: %.1f s", r->rid, duration);
            if (r->ready_cb)
                r->ready_cb(r->ready_opaque, r->rid, r->stream_id, duration);
        }
    }
    free(r);
}

/* ---- start-up and retention ---------------------------------------------- */

int recorder_recover(const char *dir, bool mp4, recorder_ready_cb cb, void *opaque)
{
    record_info_t *list = NULL;
    size_t n = 0;
    int ret = record_list(dir, NULL, &list, &n);
    if (ret < 0)
        return ret;
    int done = 0;
    for (size_t i = 0; i < n; i++) {
        if (list[i].state != RECORD_STATE_RECORDING)
            continue;
        const char *id = list[i].id;
        char ctx[REC_CTX_MAX];
        snprintf(ctx, sizeof(ctx), "recording=%s", id);
        log_info(ctx, "left unfinished by an earlier run; finalizing it from its journals");
        double duration = 0;
        char sid[STORE_ID_MAX];
        ret = rec_finalize(dir, id, mp4, 0, &duration, sid, sizeof(sid));
        if (ret == 0) {
            done++;
            log_info(ctx, "recovered: ready, %.1f s", duration);
            if (cb)
                cb(opaque, id, sid, duration);
        }
    }
    record_list_free(list, n);
    return done;
}
