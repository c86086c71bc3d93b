/*
 * Clips for the admin API (see clips_internal.h). The clip's files and
 * JSON live in the recordings layout (record_layout.h); the making is
 * transcode's clip worker's (clip.h).
 */
#include "clips_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "clock.h"
#include "hls_names.h"
#include "log.h"
#include "record_layout.h"

int64_t clips_pdt_parse(const char *s)
{
    if (!s)
        return -1;
    int y, mo, d, h, mi, sec, n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
        return -1;
    const char *p = s + n;
    int64_t ms = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
        if (digits == 0)
            return -1;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    if (strcmp(p, "Z") != 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 60)
        return -1;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    return t < 0 ? -1 : (int64_t)t * 1000 + ms;
}

static bool clips_number(const json_t *v, double *out)
{
    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return isfinite(*out);
}

int clips_range_parse(const json_t *body, bool recording, clips_range_t *out, char *why, size_t n)
{
    memset(out, 0, sizeof(*out));
    if (!json_is_object(body)) {
        snprintf(why, n, "body must be a JSON object");
        return -EINVAL;
    }
    const json_t *last = json_object_get(body, "last"), *start = json_object_get(body, "start"),
                 *off = json_object_get(body, "start_offset"),
                 *dur = json_object_get(body, "duration");
    double v = 0;
    if (recording) {
        if (!off || !dur || last || start) {
            snprintf(why, n, "a recording's clip takes {\"start_offset\": S, \"duration\": S}");
            return -EINVAL;
        }
        if (!clips_number(off, &out->start_offset_s) || out->start_offset_s < 0) {
            snprintf(why, n, "\"start_offset\" must be a number of seconds, 0 or more");
            return -EINVAL;
        }
        out->has_offset = true;
    } else if (last && !start && !dur && !off) {
        if (!clips_number(last, &v)) {
            snprintf(why, n, "\"last\" must be a number of seconds");
            return -EINVAL;
        }
        out->last_s = v;
        out->duration_s = v;
    } else if (start && dur && !last && !off) {
        out->start_ms = clips_pdt_parse(json_string_value(start));
        if (out->start_ms < 0) {
            snprintf(why, n,
                     "\"start\" must be a program date-time like "
                     "\"2026-12-07T17:50:00.250Z\"");
            return -EINVAL;
        }
        out->has_start = true;
    } else {
        snprintf(why, n,
                 "a stream's clip takes {\"last\": S} or {\"start\": PDT, \"duration\": S}");
        return -EINVAL;
    }
    if (!out->last_s && !clips_number(dur, &out->duration_s)) {
        snprintf(why, n, "\"duration\" must be a number of seconds");
        return -EINVAL;
    }
    const json_t *rend = json_object_get(body, "rendition");
    if (rend) {
        const char *r = json_string_value(rend);
        size_t rl = r ? strlen(r) : 0;
        bool ok = rl > 0 && rl < sizeof(out->rendition) && strcmp(r, "audio") != 0;
        for (size_t i = 0; ok && i < rl; i++)
            ok = (r[i] >= 'a' && r[i] <= 'z') || (r[i] >= 'A' && r[i] <= 'Z') ||
                 (r[i] >= '0' && r[i] <= '9') || r[i] == '_' || r[i] == '-';
        if (!ok) {
            snprintf(why, n, "\"rendition\" must name a video rendition, like \"720p\"");
            return -EINVAL;
        }
        snprintf(out->rendition, sizeof(out->rendition), "%s", r);
    }
    if (!(out->duration_s >= CLIPS_DURATION_MIN_S && out->duration_s <= CLIPS_DURATION_MAX_S)) {
        snprintf(why, n, "a clip lasts %d to %d seconds", CLIPS_DURATION_MIN_S,
                 CLIPS_DURATION_MAX_S);
        return -EINVAL;
    }
    return 0;
}

static void clips_iso(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char s[24];
    strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%s.%03dZ", s, (int)(ms % 1000));
}

static int clips_track_add(clip_track_t *t, const char *dir, const char *rid, const char *rend,
                           const char *file)
{
    char rel[RECORD_RENDITION_MAX + 48], path[RECORD_PATH_MAX];
    snprintf(rel, sizeof(rel), "%s/%s", rend, file);
    record_path(path, sizeof(path), dir, rid, rel);
    char **np = realloc(t->paths, (t->n + 1) * sizeof(*np));
    if (!np)
        return -ENOMEM;
    t->paths = np;
    if (!(t->paths[t->n] = strdup(path)))
        return -ENOMEM;
    t->n++;
    return 0;
}

/* The segments [i0, i1] of rend (journal segs) as a track. */
static int clips_track(clip_track_t *t, const char *dir, const char *rid, const char *rend,
                       const record_seg_t *segs, size_t i0, size_t i1)
{
    int rc = clips_track_add(t, dir, rid, rend, segs[i0].init);
    for (size_t i = i0; i <= i1 && rc == 0; i++) {
        char name[32];
        if (hls_name_segment(name, sizeof(name), segs[i].msn) < 0)
            return -EIO;
        rc = clips_track_add(t, dir, rid, rend, name);
    }
    return rc;
}

/* Where a range falls in a source's segments (video v, audio au). */
typedef struct clips_pick {
    size_t i0, i1, j0, j1;
    bool audio;
    int64_t a_ms;   /* the range's start, PDT */
    int64_t rel_ms; /* its start from segment i0's */
    int64_t dur_ms;
} clips_pick_t;

/* [a_ms, a_ms + dur) (last_s > 0: the last dur held; offset_s >= 0: from
 * the first segment) in the segments of a source named `what`. -ERANGE
 * with why when they do not hold it. Pure. */
static int clips_pick(const record_seg_t *v, size_t nv, const record_seg_t *au, size_t na,
                      int64_t a_ms, double offset_s, double last_s, double dur_s, const char *what,
                      clips_pick_t *out, char *why, size_t n)
{
    memset(out, 0, sizeof(*out));
    if (nv == 0) {
        snprintf(why, n, "%s holds no video segment", what);
        return -ERANGE;
    }
    int64_t held_lo = v[0].pdt_ms;
    int64_t held_hi = v[nv - 1].pdt_ms + (int64_t)llround(v[nv - 1].duration * 1000);
    /* With audio, what both renditions hold: its segment may land a little
     * after the video's of the same number. */
    out->audio = na > 0;
    if (out->audio) {
        for (size_t i = nv; i > 0; i--) /* the last video segment audio has too */
            if (v[i - 1].msn <= au[na - 1].msn) {
                int64_t vhi = v[i - 1].pdt_ms + (int64_t)llround(v[i - 1].duration * 1000);
                held_hi = vhi < held_hi ? vhi : held_hi;
                break;
            }
    }
    int64_t dur_ms = (int64_t)llround(dur_s * 1000);
    if (last_s > 0)
        a_ms = held_hi - dur_ms;
    else if (offset_s >= 0)
        a_ms = held_lo + (int64_t)llround(offset_s * 1000);
    int64_t b_ms = a_ms + dur_ms;
    if (a_ms < held_lo || b_ms > held_hi) {
        char lo[32], hi[32];
        clips_iso(held_lo, lo);
        clips_iso(held_hi, hi);
        snprintf(why, n, "the range is not held: %s holds %s to %s", what, lo, hi);
        return -ERANGE;
    }
    size_t i0 = 0, i1 = 0;
    for (size_t i = 0; i < nv; i++) {
        if (v[i].pdt_ms <= a_ms)
            i0 = i;
        if (v[i].pdt_ms < b_ms)
            i1 = i;
    }
    for (size_t i = i0 + 1; i <= i1; i++)
        if (v[i].discontinuity || strcmp(v[i].init, v[i0].init) != 0 ||
            v[i].msn != v[i - 1].msn + 1) {
            snprintf(why, n, "the range crosses a discontinuity or a gap of %s", what);
            return -ERANGE;
        }
    if (out->audio) {
        size_t j0 = na, j1 = na;
        for (size_t j = 0; j < na; j++) {
            if (au[j].msn == v[i0].msn)
                j0 = j;
            if (au[j].msn == v[i1].msn)
                j1 = j;
        }
        if (j0 == na || j1 == na || j1 - j0 != i1 - i0) {
            snprintf(why, n, "the range is not held: %s lacks audio segments in it", what);
            return -ERANGE;
        }
        out->j0 = j0;
        out->j1 = j1;
    }
    out->i0 = i0;
    out->i1 = i1;
    out->a_ms = a_ms;
    out->rel_ms = a_ms - v[i0].pdt_ms;
    out->dur_ms = dur_ms;
    return 0;
}

/* Resolves a range in recording rid into *in (files). */
static int clips_resolve(const char *dir, const char *rid, int64_t a_ms, double offset_s,
                         double last_s, double dur_s, clip_input_t *in,
                         char rend[RECORD_RENDITION_MAX], int64_t *start_out, char *why, size_t n)
{
    record_seg_t *v = NULL, *au = NULL;
    size_t nv = 0, na = 0;
    /* rend on entry: the chosen rendition; "": the top one */
    int rc = rend[0] ? 0 : record_top_rendition(dir, rid, rend);
    if (rc == 0)
        rc = record_journal_read(dir, rid, rend, &v, &nv, NULL);
    if (rc == -ENOMEM) {
        free(v);
        return rc;
    }
    if (rc < 0 && rend[0]) {
        snprintf(why, n, "recording %s has no rendition \"%s\"", rid, rend);
        return -ERANGE;
    }
    if (record_journal_read(dir, rid, "audio", &au, &na, NULL) < 0)
        na = 0;
    char what[RECORD_ID_MAX + 16];
    snprintf(what, sizeof(what), "recording %s", rid);
    clips_pick_t pk;
    rc = clips_pick(v, nv, au, na, a_ms, offset_s, last_s, dur_s, what, &pk, why, n);
    if (rc == 0)
        rc = clips_track(&in->video, dir, rid, rend, v, pk.i0, pk.i1);
    if (rc == 0 && pk.audio)
        rc = clips_track(&in->audio, dir, rid, "audio", au, pk.j0, pk.j1);
    if (rc == 0) {
        in->start_ms = pk.rel_ms;
        in->duration_ms = pk.dur_ms;
        *start_out = pk.a_ms;
    }
    free(v);
    free(au);
    return rc;
}

/* ---- the live window (the store) -------------------------------------- */

/* The value of attribute `name` (NAME=VALUE or NAME="VALUE") in a tag line
 * [p, e) into out; false when absent. */
static bool clips_attr(const char *p, const char *e, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *q = p; q + nl + 1 < e; q++) {
        if ((q == p || q[-1] == ':' || q[-1] == ',') && memcmp(q, name, nl) == 0 && q[nl] == '=') {
            q += nl + 1;
            bool quoted = *q == '"';
            if (quoted)
                q++;
            size_t k = 0;
            while (q < e && (quoted ? *q != '"' : *q != ',') && k + 1 < n)
                out[k++] = *q++;
            out[k] = '\0';
            return true;
        }
    }
    return false;
}

/* The rendition part of "REND/index.m3u8". */
static bool clips_uri_rend(const char *uri, char rend[RECORD_RENDITION_MAX])
{
    const char *slash = strchr(uri, '/');
    size_t len = slash ? (size_t)(slash - uri) : 0;
    if (len == 0 || len >= RECORD_RENDITION_MAX || strcmp(slash + 1, HLS_NAME_PLAYLIST) != 0)
        return false;
    memcpy(rend, uri, len);
    rend[len] = '\0';
    return true;
}

int clips_master_parse(const char *text, size_t len, char video[RECORD_RENDITION_MAX],
                       char audio[RECORD_RENDITION_MAX])
{
    video[0] = audio[0] = '\0';
    long best = -1, height = -1;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e)
            e = end;
        char val[256];
        if ((size_t)(e - p) > 13 && memcmp(p, "#EXT-X-MEDIA:", 13) == 0 &&
            clips_attr(p + 13, e, "TYPE", val, sizeof(val)) && strcmp(val, "AUDIO") == 0 &&
            !audio[0] && clips_attr(p + 13, e, "URI", val, sizeof(val)))
            (void)clips_uri_rend(val, audio);
        if ((size_t)(e - p) > 18 && memcmp(p, "#EXT-X-STREAM-INF:", 18) == 0) {
            height = 0;
            int w = 0, h = 0;
            if (clips_attr(p + 18, e, "RESOLUTION", val, sizeof(val)) &&
                sscanf(val, "%dx%d", &w, &h) == 2)
                height = h;
        } else if (p < e && *p != '#' && height >= 0) {
            char uri[256], rend[RECORD_RENDITION_MAX];
            size_t ul = (size_t)(e - p) < sizeof(uri) ? (size_t)(e - p) : sizeof(uri) - 1;
            memcpy(uri, p, ul);
            uri[ul] = '\0';
            if (ul && uri[ul - 1] == '\r')
                uri[ul - 1] = '\0';
            if (clips_uri_rend(uri, rend) && height > best) {
                best = height;
                snprintf(video, RECORD_RENDITION_MAX, "%s", rend);
            }
            height = -1;
        }
        p = e + 1;
    }
    return video[0] ? 0 : -ENOENT;
}

int clips_master_list(const char *text, size_t len, char (*out)[RECORD_RENDITION_MAX], size_t max,
                      size_t *n)
{
    *n = 0;
    const char *p = text, *end = text + len;
    while (p < end && *n < max) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e)
            e = end;
        char uri[256] = "", rend[RECORD_RENDITION_MAX];
        if ((size_t)(e - p) > 13 && memcmp(p, "#EXT-X-MEDIA:", 13) == 0) {
            if (!clips_attr(p + 13, e, "URI", uri, sizeof(uri)))
                uri[0] = '\0';
        } else if (p < e && *p != '#' && (size_t)(e - p) < sizeof(uri)) {
            memcpy(uri, p, (size_t)(e - p));
            uri[e - p] = '\0';
            if (uri[e - p - 1] == '\r')
                uri[e - p - 1] = '\0';
        }
        if (uri[0] && clips_uri_rend(uri, rend)) {
            bool dup = false;
            for (size_t i = 0; i < *n; i++)
                dup = dup || strcmp(out[i], rend) == 0;
            if (!dup)
                snprintf(out[(*n)++], RECORD_RENDITION_MAX, "%s", rend);
        }
        p = e + 1;
    }
    return *n ? 0 : -ENOENT;
}

int clips_playlist_parse(const char *text, size_t len, record_seg_t **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    record_seg_t *segs = NULL;
    size_t n = 0, cap = 0;
    char init[32] = "";
    int64_t pdt = -1;
    double dur = -1;
    bool disc = false;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e)
            e = end;
        size_t l = (size_t)(e - p);
        if (l && p[l - 1] == '\r')
            l--;
        char line[256];
        if (l >= sizeof(line)) {
            p = e + 1;
            continue;
        }
        memcpy(line, p, l);
        line[l] = '\0';
        if (strncmp(line, "#EXT-X-MAP:", 11) == 0) {
            char uri[64];
            if (clips_attr(line + 11, line + l, "URI", uri, sizeof(uri)) && !strchr(uri, '/') &&
                strlen(uri) < sizeof(init))
                snprintf(init, sizeof(init), "%s", uri);
        } else if (strncmp(line, "#EXT-X-PROGRAM-DATE-TIME:", 25) == 0) {
            pdt = clips_pdt_parse(line + 25);
        } else if (strncmp(line, "#EXTINF:", 8) == 0) {
            dur = strtod(line + 8, NULL);
        } else if (strcmp(line, "#EXT-X-DISCONTINUITY") == 0) {
            disc = true;
        } else if (line[0] && line[0] != '#') {
            hls_name_t nm;
            if (hls_name_parse(line, l, &nm) && nm.kind == HLS_NAME_KIND_SEGMENT && dur >= 0 &&
                init[0]) {
                if (pdt < 0 && n > 0)
                    pdt = segs[n - 1].pdt_ms + (int64_t)llround(segs[n - 1].duration * 1000);
                if (pdt >= 0) {
                    if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 64;
                        record_seg_t *ns = realloc(segs, ncap * sizeof(*ns));
                        if (!ns) {
                            free(segs);
                            return -ENOMEM;
                        }
                        segs = ns;
                        cap = ncap;
                    }
                    record_seg_t *sg = &segs[n++];
                    memset(sg, 0, sizeof(*sg));
                    sg->msn = nm.msn;
                    sg->duration = dur;
                    sg->discontinuity = disc;
                    snprintf(sg->init, sizeof(sg->init), "%s", init);
                    sg->pdt_ms = pdt;
                }
            }
            pdt = -1;
            dur = -1;
            disc = false;
        }
        p = e + 1;
    }
    *out = segs;
    *n_out = n;
    return 0;
}

/* A rendition's playlist from the store, parsed. */
static int clips_store_segs(store_t *st, const char *sid, const char *rend, record_seg_t **out,
                            size_t *n)
{
    char name[RECORD_RENDITION_MAX + 16];
    if (hls_name_join(name, sizeof(name), rend, HLS_NAME_PLAYLIST) < 0)
        return -ENOENT;
    blob_t *b = NULL;
    int rc = store_get(st, sid, name, &b);
    if (rc < 0)
        return rc;
    rc = clips_playlist_parse((const char *)b->data, b->size, out, n);
    blob_unref(b);
    return rc;
}

/* Segments [i0, i1] of rend from the store, as blobs (init first). */
static int clips_store_track(clip_track_t *t, store_t *st, const char *sid, const char *rend,
                             const record_seg_t *segs, size_t i0, size_t i1)
{
    t->blobs = calloc(i1 - i0 + 2, sizeof(*t->blobs));
    if (!t->blobs)
        return -ENOMEM;
    for (size_t i = i0; i <= i1 + 1; i++) {
        char file[HLS_NAME_FILE_MAX], name[RECORD_RENDITION_MAX + HLS_NAME_FILE_MAX + 2];
        if (i == i0)
            snprintf(file, sizeof(file), "%s", segs[i0].init);
        else if (hls_name_segment(file, sizeof(file), segs[i - 1].msn) < 0)
            return -EIO;
        if (hls_name_join(name, sizeof(name), rend, file) < 0)
            return -EIO;
        int rc = store_get(st, sid, name, &t->blobs[t->n]);
        if (rc < 0)
            return rc == -ENOENT ? -ERANGE : rc; /* expired meanwhile */
        t->n++;
    }
    return 0;
}

/* Resolves a range in stream sid's live window (the store) into *in. */
static int clips_resolve_live(store_t *st, const char *sid, const clips_range_t *range,
                              clip_input_t *in, char rend[RECORD_RENDITION_MAX], int64_t *start_out,
                              char *why, size_t n)
{
    char audio[RECORD_RENDITION_MAX], top[RECORD_RENDITION_MAX];
    blob_t *m = NULL;
    int rc = store_get(st, sid, HLS_NAME_MASTER, &m);
    if (rc < 0)
        return rc == -ENOENT ? -ENOENT : -EIO;
    rc = clips_master_parse((const char *)m->data, m->size, top, audio);
    blob_unref(m);
    if (rc < 0)
        return -ENOENT;
    if (!range->rendition[0])
        snprintf(rend, RECORD_RENDITION_MAX, "%s", top);
    record_seg_t *v = NULL, *au = NULL;
    size_t nv = 0, na = 0;
    rc = clips_store_segs(st, sid, rend, &v, &nv);
    if (rc == -ENOENT && range->rendition[0]) {
        snprintf(why, n, "the live stream has no rendition \"%s\"", rend);
        return -ERANGE;
    }
    if (rc == 0 && audio[0] && clips_store_segs(st, sid, audio, &au, &na) < 0)
        na = 0;
    clips_pick_t pk;
    if (rc == 0)
        rc = clips_pick(v, nv, au, na, range->has_start ? range->start_ms : 0, -1, range->last_s,
                        range->duration_s, "the live window", &pk, why, n);
    if (rc == 0)
        rc = clips_store_track(&in->video, st, sid, rend, v, pk.i0, pk.i1);
    if (rc == 0 && pk.audio)
        rc = clips_store_track(&in->audio, st, sid, audio, au, pk.j0, pk.j1);
    if (rc == -ERANGE && !why[0])
        snprintf(why, n, "the range is not held: its segments left the live window");
    if (rc == 0) {
        in->start_ms = pk.rel_ms;
        in->duration_ms = pk.dur_ms;
        *start_out = pk.a_ms;
    }
    free(v);
    free(au);
    return rc == -ENOENT ? -ERANGE : rc;
}

/* ---- the HLS form: every rendition's whole segments the range touches -- */

#define CLIPS_HLS_RENDS_MAX RECORD_RENDITIONS_SCAN_MAX

/* The segments of s[0..n) that [a, b) touches: [*i0, *i1], one init, no
 * discontinuity or gap. */
static bool clips_hls_range(const record_seg_t *s, size_t n, int64_t a, int64_t b, size_t *i0,
                            size_t *i1)
{
    if (n == 0 || s[0].pdt_ms > a ||
        s[n - 1].pdt_ms + (int64_t)llround(s[n - 1].duration * 1000) < b)
        return false;
    *i0 = *i1 = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i].pdt_ms <= a)
            *i0 = i;
        if (s[i].pdt_ms < b)
            *i1 = i;
    }
    for (size_t i = *i0 + 1; i <= *i1; i++)
        if (s[i].discontinuity || s[i].msn != s[i - 1].msn + 1 || strcmp(s[i].init, s[*i0].init))
            return false;
    return true;
}

/* Adds rendition `name` (segments segs[0..n), taken) to in's HLS form when
 * it holds [a, b): from the recording's files (rid) or the store. */
static void clips_hls_add(clip_input_t *in, const char *dir, store_t *st, const char *sid,
                          const char *rid, const char *name, record_seg_t *segs, size_t n,
                          int64_t a, int64_t b)
{
    size_t i0, i1;
    if (!clips_hls_range(segs, n, a, b, &i0, &i1)) {
        free(segs);
        return;
    }
    clip_hls_rend_t *h = &in->hls[in->nhls];
    memset(h, 0, sizeof(*h));
    snprintf(h->name, sizeof(h->name), "%s", name);
    int rc = rid[0] ? clips_track(&h->track, dir, rid, name, segs, i0, i1)
                    : clips_store_track(&h->track, st, sid, name, segs, i0, i1);
    h->nsegs = i1 - i0 + 1;
    h->segs = malloc(h->nsegs * sizeof(*h->segs));
    if (rc < 0 || !h->segs) {
        clip_track_deinit(&h->track);
        free(h->segs);
        free(segs);
        return;
    }
    memcpy(h->segs, segs + i0, h->nsegs * sizeof(*h->segs));
    free(segs);
    in->nhls++;
}

/* The HLS form's inputs (best effort: without them the clip has only its
 * MP4): every rendition of the source with the segments [a, b) touches,
 * and its master playlist (the recording's, else the live one). */
static void clips_hls(const char *dir, store_t *st, const char *sid, const char *rid, int64_t a,
                      int64_t b, clip_input_t *in)
{
    char names[CLIPS_HLS_RENDS_MAX][RECORD_RENDITION_MAX];
    size_t nn = 0;
    blob_t *master = NULL;
    if (rid[0]) {
        int rec = record_open_in(dir, rid);
        struct stat sb;
        int fd = rec >= 0 ? record_file_open(rec, HLS_NAME_MASTER, &sb) : -ENOENT;
        if (rec >= 0)
            close(rec);
        if (fd >= 0) {
            master =
                sb.st_size > 0 && sb.st_size < 65536 ? blob_new_uninit((size_t)sb.st_size) : NULL;
            if (master && pread(fd, master->data, master->size, 0) != (ssize_t)master->size) {
                blob_unref(master);
                master = NULL;
            }
            close(fd);
        }
        if (record_renditions(dir, rid, names, CLIPS_HLS_RENDS_MAX, &nn) < 0)
            nn = 0;
    }
    if (!master && st && store_get(st, sid, HLS_NAME_MASTER, &master) < 0)
        master = NULL;
    if (!master)
        return;
    if (!rid[0] && clips_master_list((const char *)master->data, master->size, names,
                                     CLIPS_HLS_RENDS_MAX, &nn) < 0)
        nn = 0; /* the live renditions: the master's */
    in->hls = calloc(nn ? nn : 1, sizeof(*in->hls));
    if (!in->hls || nn == 0) {
        free(in->hls);
        in->hls = NULL;
        blob_unref(master);
        return;
    }
    for (size_t i = 0; i < nn; i++) {
        record_seg_t *segs = NULL;
        size_t n = 0;
        int rc = rid[0] ? record_journal_read(dir, rid, names[i], &segs, &n, NULL)
                        : clips_store_segs(st, sid, names[i], &segs, &n);
        if (rc == 0)
            clips_hls_add(in, dir, st, sid, rid, names[i], segs, n, a, b);
        else
            free(segs);
    }
    if (in->nhls == 0) {
        free(in->hls);
        in->hls = NULL;
        blob_unref(master);
        return;
    }
    in->hls_master = master;
}

static int clips_new_id(char out[RECORD_ID_MAX])
{
    uint8_t r[8];
    if (RAND_bytes(r, sizeof(r)) != 1)
        return -EIO;
    snprintf(out, RECORD_ID_MAX, "clip-%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3],
             r[4], r[5], r[6], r[7]);
    return 0;
}

int clips_create(const char *dir, store_t *st, clip_service_t *svc, const clips_source_t *src,
                 const clips_range_t *range, json_t **out, char *why, size_t n)
{
    *out = NULL;
    why[0] = '\0';
    clip_input_t in = {0};
    char rend[RECORD_RENDITION_MAX] = "";
    char rid[RECORD_ID_MAX] = "", sid[STORE_ID_MAX] = "";
    int64_t start_ms = 0;
    int rc = -ENOENT;
    if (src->rid) {
        record_info_t info;
        if ((rc = record_read(dir, src->rid, &info)) < 0 || info.clip) {
            if (rc == 0)
                record_info_deinit(&info);
            snprintf(why, n, "no such recording");
            return -ENOENT;
        }
        snprintf(rid, sizeof(rid), "%s", info.id);
        snprintf(sid, sizeof(sid), "%s", info.stream_id);
        record_info_deinit(&info);
        snprintf(rend, sizeof(rend), "%s", range->rendition);
        rc = clips_resolve(dir, rid, 0, range->start_offset_s, 0, range->duration_s, &in, rend,
                           &start_ms, why, n);
    } else {
        record_info_t *list = NULL;
        size_t nl = 0;
        if ((rc = record_list(dir, src->stream_id, &list, &nl)) < 0)
            return rc;
        snprintf(sid, sizeof(sid), "%s", src->stream_id);
        rc = -ENOENT;
        for (size_t i = 0; i < nl; i++) {
            if (list[i].clip || (range->last_s > 0 && list[i].state != RECORD_STATE_RECORDING))
                continue;
            clip_input_deinit(&in);
            snprintf(rid, sizeof(rid), "%s", list[i].id);
            snprintf(rend, sizeof(rend), "%s", range->rendition);
            rc = clips_resolve(dir, rid, range->start_ms, -1, range->last_s, range->duration_s, &in,
                               rend, &start_ms, why, n);
            if (rc != -ERANGE || range->last_s > 0)
                break;
        }
        record_list_free(list, nl);
        if ((rc == -ENOENT || rc == -ERANGE) && st) {
            /* no recording holds it: the live window in the store */
            char rwhy[256];
            snprintf(rwhy, sizeof(rwhy), "%s", why);
            clip_input_deinit(&in);
            rid[0] = '\0';
            why[0] = '\0';
            snprintf(rend, sizeof(rend), "%s", range->rendition);
            int lrc = clips_resolve_live(st, sid, range, &in, rend, &start_ms, why, n);
            if (lrc == -ENOENT || (lrc == -ERANGE && rc == -ERANGE && rwhy[0] && !range->last_s)) {
                /* no live window: what the recordings said */
                snprintf(why, n, "%s", rwhy);
            } else {
                rc = lrc;
            }
        }
        if (rc == -ENOENT)
            snprintf(why, n, "the stream is not live here and has no recording");
    }
    if (rc < 0)
        goto fail;
    clips_hls(dir, st, sid, rid, start_ms, start_ms + (int64_t)llround(range->duration_s * 1000),
              &in);
    char cid[RECORD_ID_MAX], path[RECORD_PATH_MAX];
    if ((rc = clips_new_id(cid)) < 0)
        goto fail;
    record_path(path, sizeof(path), dir, cid, NULL);
    if ((mkdir(dir, 0755) != 0 && errno != EEXIST) || mkdir(path, 0755) != 0) {
        rc = -EIO;
        snprintf(why, n, "cannot create the clip's directory");
        goto fail;
    }
    char at[32], now[32];
    clips_iso(start_ms, at);
    int64_t now_ms = clock_wall_ms();
    clips_iso(now_ms, now);
    char started[24];
    {
        time_t t = (time_t)(now_ms / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s, s:s, s:f, s:s, s:s, s:s}", "id", cid, "kind",
                  CLIP_KIND, "stream_id", sid, "source_recording", rid[0] ? rid : NULL, "rendition",
                  rend, "state", "processing", "start_at", at, "requested_duration_s",
                  range->duration_s, "started_at", started, "mp4", CLIP_MP4, "poster", CLIP_POSTER);
    if (!j) {
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = record_json_write(path, j, true)) < 0) {
        json_decref(j);
        snprintf(why, n, "cannot write the clip's JSON");
        goto fail;
    }
    if ((rc = clip_service_submit(svc, cid, &in)) < 0) {
        json_decref(j);
        if (record_delete(dir, cid, true) < 0)
            log_warn("admin", "clip %s: cannot remove it after a full queue", cid);
        snprintf(why, n, "too many clips being made; retry");
        return rc;
    }
    *out = j;
    return 0;
fail:
    clip_input_deinit(&in);
    return rc;
}

int clips_get(const char *dir, const char *cid, json_t **out)
{
    *out = NULL;
    record_info_t info;
    int rc = record_read(dir, cid, &info);
    if (rc < 0)
        return rc;
    if (!info.clip) {
        record_info_deinit(&info);
        return -ENOENT;
    }
    *out = info.json;
    return 0;
}

int clips_list(const char *dir, json_t **out)
{
    *out = json_array();
    if (!*out)
        return -ENOMEM;
    record_info_t *list = NULL;
    size_t n = 0;
    int rc = record_list(dir, NULL, &list, &n);
    for (size_t i = 0; i < n; i++)
        if (rc == 0 && list[i].clip && json_array_append(*out, list[i].json) != 0)
            rc = -ENOMEM;
    record_list_free(list, n);
    if (rc < 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

int clips_delete(const char *dir, const char *cid)
{
    json_t *j;
    int rc = clips_get(dir, cid, &j);
    if (rc < 0)
        return rc;
    json_decref(j);
    return record_delete(dir, cid, true);
}
