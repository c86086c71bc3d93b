/* sluice-viewers: a viewer simulator for load tests and benchmarks.
 *
 * N concurrent viewers that behave like hls.js against an HLS origin: each
 * fetches the master playlist, picks a video rendition (and the audio
 * rendition the variant names), fetches the init segment (again whenever the
 * playlist names a new EXT-X-MAP), then follows the live edge: with LL-HLS it
 * makes blocking playlist reloads for the next part (_HLS_msn/_HLS_part) and
 * fetches every new part in order; with classic HLS it reloads every target
 * duration and fetches new segments in order. A viewer that falls behind the
 * live edge or stops making progress counts a stall and rejoins at the edge.
 * Every request's latency goes into a per-kind histogram; errors are counted
 * per HTTP status, transport errors apart. The exit status is 0 only when
 * there was no error and no stall, so scripts can assert on it.
 *
 * One thread, epoll, libcurl's socket API (curl_multi_socket_action), so
 * the cost per event does not grow with the number of connections. Viewers
 * are split into shards of VSIM_SHARD_VIEWERS, each with a multi handle (and
 * so a connection cache) of its own: libcurl 7.88 walks every connection of
 * its cache on each curl_multi_remove_handle (close_connect_only), which
 * with one multi for 1000 viewers was most of the simulator's CPU. Each viewer has one easy handle per track (video,
 * audio), one request in flight per track, like one player's loaders. Timed
 * actions (ramp-up starts, classic reloads, retries) are found by a scan of
 * all tracks every few milliseconds.
 *
 * Bounded: viewers (VSIM_MAX_VIEWERS), run time (--duration always ends the
 * run, in-flight requests are abandoned), playlist size (1 MiB, an error
 * above), media object size (256 MiB), request time. It only connects to the
 * --url/--origin bases it was given: a playlist naming another host is an
 * error. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "vsim_playlist.h"

#define VSIM_MAX_VIEWERS 20000
#define VSIM_MAX_STREAMS 64
#define VSIM_MAX_ORIGINS 16
#define VSIM_MAX_MEDIA_BYTES (256L * 1024 * 1024)
#define VSIM_SCAN_MS 5
#define VSIM_RETRY_S 1.0
#define VSIM_WAKE_SLOTS 256
#define VSIM_SHARD_VIEWERS 16

enum {
    K_MASTER,
    K_PLAYLIST,
    K_BLOCKING,
    K_PART,
    K_SEGMENT,
    K_INIT,
    K_WAKE, /* not a request: blocking reload answered this long after the first viewer's */
    K_COUNT
};
static const char *const kind_names[K_COUNT] = {"master",  "playlist", "blocking_playlist", "part",
                                                "segment", "init",     "blocking_wake_lag"};

/* Latency histogram: 0.1 ms buckets to 100 ms, 1 ms buckets to 10 s, then
 * one overflow bucket (the exact maximum is kept apart). */
#define HIST_FINE 1000
#define HIST_COARSE 9900
#define HIST_N (HIST_FINE + HIST_COARSE + 1)

typedef struct {
    uint64_t count, errors, bytes, max_us;
    uint32_t hist[HIST_N];
} vsim_kind_stats_t;

typedef enum { A_NONE, A_MASTER, A_RELOAD } vsim_action_t;

/* A multi handle and its viewers' connections; see the file comment. */
typedef struct vsim_shard {
    CURLM *multi;
    double timer_at; /* libcurl's timeout, <0: none */
    bool due;        /* in g.due: its timeout expired (or is 0: "at once") */
    bool touched;    /* in g.touched: a transfer may have completed */
} vsim_shard_t;

/* What epoll knows about a socket (curl_multi_assign keeps it with curl). */
typedef struct {
    vsim_shard_t *shard;
    curl_socket_t fd;
} vsim_sock_t;

struct vsim_viewer;

typedef struct {
    struct vsim_viewer *v;
    CURL *easy;
    bool active, in_flight, done;
    int kind;
    char url[VSIM_URI_MAX];     /* the media playlist */
    char req_url[VSIM_URI_MAX + 64];
    char *buf; /* playlist bodies, grown up to VSIM_PLAYLIST_MAX_BYTES */
    size_t len, cap;
    bool oversize;
    uint64_t media_bytes;
    vsim_media_t pl, spare; /* the latest playlist; storage for the next */
    bool have_pl, ll;
    bool cursor_valid;
    int64_t cur_msn;
    int32_t cur_part;
    bool cur_last;
    int64_t want_msn; /* the part a blocking reload or a fetch is for */
    int32_t want_part;
    bool want_last;
    double want_duration;
    char map_url[VSIM_URI_MAX + 64]; /* the init segment fetched last */
    double wake_at;
    vsim_action_t action;
    double last_progress, last_reload;
    int64_t last_seen_msn;
    int32_t last_seen_part;
    bool pl_changed;
    int wake_slot;
} vsim_track_t;

typedef struct vsim_viewer {
    int id;
    const char *base;   /* origin, "http://127.0.0.1:PORT" */
    struct vsim_shard *shard;
    const char *stream;
    double start_at;
    bool started;
    int ntracks;
    vsim_track_t t[2];
} vsim_viewer_t;

typedef struct {
    char key[256];
    int64_t msn;
    int32_t part;
    double first;
} vsim_wake_slot_t;

static struct {
    /* options */
    const char *origins[VSIM_MAX_ORIGINS];
    int norigins;
    const char *streams[VSIM_MAX_STREAMS];
    int nstreams;
    int nviewers;
    double duration, ramp, behind_td, no_progress_s;
    const char *rendition;
    bool json, verbose;
    /* state */
    vsim_shard_t *shards;
    int nshards;
    vsim_shard_t **due, **touched; /* lists of shards, each nshards long */
    int ndue, ntouched;
    vsim_sock_t **grave; /* sockets closed during an epoll batch */
    size_t ngrave, capgrave;
    int epfd;
    vsim_viewer_t *viewers;
    double t0, t_end;
    bool stopping;
    vsim_kind_stats_t kinds[K_COUNT];
    uint64_t http_errors[600];
    uint64_t transport_errors, parse_errors, oversize_errors, foreign_uri_errors;
    uint64_t stalls_behind, stalls_no_progress;
    uint64_t viewers_started, tracks_ended, discontinuities, init_refetches;
    vsim_wake_slot_t wake[VSIM_WAKE_SLOTS];
    int nwake;
} g;

static volatile sig_atomic_t vsim_interrupted;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void stats_add(int kind, uint64_t us, uint64_t bytes)
{
    vsim_kind_stats_t *k = &g.kinds[kind];
    size_t b;
    if (us < 100000)
        b = us / 100;
    else if (us < 10000000)
        b = HIST_FINE + (us - 100000) / 1000;
    else
        b = HIST_N - 1;
    k->hist[b]++;
    k->count++;
    k->bytes += bytes;
    if (us > k->max_us)
        k->max_us = us;
}

/* A bucket's upper edge in ms (the overflow bucket's is the maximum). */
static double stats_bucket_upper_ms(const vsim_kind_stats_t *k, size_t b)
{
    if (b < HIST_FINE)
        return (double)(b + 1) * 0.1;
    if (b < HIST_N - 1)
        return 100.0 + (double)(b - HIST_FINE + 1);
    return (double)k->max_us / 1000.0;
}

/* The q-quantile in ms: the upper edge of the bucket that holds it. */
static double stats_quantile(const vsim_kind_stats_t *k, double q)
{
    if (k->count == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)k->count), acc = 0;
    if (rank < 1)
        rank = 1;
    for (size_t b = 0; b < HIST_N; b++) {
        acc += k->hist[b];
        if (acc >= rank) {
            double ms = stats_bucket_upper_ms(k, b);
            double max_ms = (double)k->max_us / 1000.0;
            return ms < max_ms ? ms : max_ms;
        }
    }
    return (double)k->max_us / 1000.0;
}

static void count_error(int kind)
{
    g.kinds[kind].errors++;
}

/* --- requests --------------------------------------------------------------- */

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    vsim_track_t *t = userp;
    size_t n = size * nmemb;
    if (t->kind == K_MASTER || t->kind == K_PLAYLIST || t->kind == K_BLOCKING) {
        if (n > VSIM_PLAYLIST_MAX_BYTES - t->len) {
            t->oversize = true;
            return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
        }
        if (t->len + n > t->cap) {
            size_t ncap = t->cap ? t->cap : 16384;
            while (ncap < t->len + n)
                ncap *= 2;
            if (ncap > VSIM_PLAYLIST_MAX_BYTES)
                ncap = VSIM_PLAYLIST_MAX_BYTES;
            char *nb = realloc(t->buf, ncap);
            if (!nb)
                return 0;
            t->buf = nb;
            t->cap = ncap;
        }
        memcpy(t->buf + t->len, data, n);
        t->len += n;
    } else {
        t->media_bytes += n;
        if (t->media_bytes > (uint64_t)VSIM_MAX_MEDIA_BYTES) {
            t->oversize = true;
            return 0;
        }
    }
    return n;
}

/* Whether URL lies under one of the origins this run was given. */
static bool url_allowed(const vsim_viewer_t *v, const char *url)
{
    size_t n = strlen(v->base);
    return strncmp(url, v->base, n) == 0 && (url[n] == '/' || url[n] == '\0');
}

static void track_request(vsim_track_t *t, int kind, const char *url, long timeout_ms)
{
    if (g.stopping)
        return;
    snprintf(t->req_url, sizeof(t->req_url), "%s", url);
    t->kind = kind;
    t->len = 0;
    t->media_bytes = 0;
    t->oversize = false;
    t->action = A_NONE;
    t->wake_at = 0;
    curl_easy_setopt(t->easy, CURLOPT_URL, t->req_url);
    curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
    CURLMcode mc = curl_multi_add_handle(t->v->shard->multi, t->easy);
    if (mc != CURLM_OK) {
        fprintf(stderr, "sluice-viewers: curl_multi_add_handle: %s\n", curl_multi_strerror(mc));
        g.transport_errors++;
        count_error(kind);
        return;
    }
    t->in_flight = true;
}

static void track_schedule(vsim_track_t *t, vsim_action_t a, double at)
{
    t->action = a;
    t->wake_at = at;
}

static long playlist_timeout_ms(const vsim_track_t *t)
{
    int td = t->have_pl && t->pl.target_duration > 0 ? t->pl.target_duration : 6;
    return (long)(3 * td + 5) * 1000L; /* the server answers 503 after 3 target durations */
}

/* --- the player logic ------------------------------------------------------- */

/* Index of the first item to fetch after the cursor (or, with no cursor, the
 * one to join at: three items back from the live edge, like hls.js's
 * PART-HOLD-BACK and its 3-target-duration live sync), -1 when none. */
static int track_find_next(const vsim_track_t *t)
{
    const vsim_media_t *m = &t->pl;
    if (!t->cursor_valid) {
        int n = 0;
        for (size_t i = 0; i < m->nitems; i++)
            n += vsim_item_wanted(&m->items[i], t->ll);
        if (n == 0)
            return -1;
        int skip = n > 3 ? n - 3 : 0;
        for (size_t i = 0; i < m->nitems; i++) {
            if (!vsim_item_wanted(&m->items[i], t->ll))
                continue;
            if (skip-- == 0)
                return (int)i;
        }
        return -1;
    }
    for (size_t i = 0; i < m->nitems; i++) {
        const vsim_item_t *it = &m->items[i];
        if (!vsim_item_wanted(it, t->ll))
            continue;
        /* A whole segment counts as fetched when any of its parts were
         * (an ended playlist no longer lists the parts). */
        if (it->part == VSIM_PART_WHOLE ? it->msn > t->cur_msn
                                        : vsim_pos_cmp(it->msn, it->part, t->cur_msn,
                                                       t->cur_part) > 0)
            return (int)i;
    }
    return -1;
}

static void viewer_track_next(vsim_track_t *t);

static void track_blocking_reload(vsim_track_t *t)
{
    int64_t msn = t->cur_msn;
    int32_t part = t->cur_part;
    if (part == VSIM_PART_WHOLE || t->cur_last) {
        msn++;
        part = 0;
    } else {
        part++;
    }
    t->want_msn = msn;
    t->want_part = part;
    char url[VSIM_URI_MAX + 64];
    snprintf(url, sizeof(url), "%s%s_HLS_msn=%" PRId64 "&_HLS_part=%" PRId32, t->url,
             strchr(t->url, '?') ? "&" : "?", msn, part);
    track_request(t, K_BLOCKING, url, playlist_timeout_ms(t));
}

static void viewer_track_next(vsim_track_t *t)
{
    if (g.stopping || t->done)
        return;
    int idx = track_find_next(t);
    if (idx >= 0) {
        const vsim_item_t *it = &t->pl.items[idx];
        const char *map = vsim_media_map(&t->pl, it->map);
        char url[VSIM_URI_MAX];
        if (map) {
            if (vsim_resolve(t->url, map, url, sizeof(url)) != 0 || !url_allowed(t->v, url)) {
                g.foreign_uri_errors++;
                count_error(K_INIT);
                track_schedule(t, A_RELOAD, now_s() + VSIM_RETRY_S);
                return;
            }
            if (strcmp(url, t->map_url) != 0) {
                if (t->map_url[0])
                    g.init_refetches++;
                track_request(t, K_INIT, url, 10000);
                return;
            }
        }
        int kind = it->part == VSIM_PART_WHOLE ? K_SEGMENT : K_PART;
        if (vsim_resolve(t->url, vsim_media_uri(&t->pl, it), url, sizeof(url)) != 0 ||
            !url_allowed(t->v, url)) {
            g.foreign_uri_errors++;
            count_error(kind);
            track_schedule(t, A_RELOAD, now_s() + VSIM_RETRY_S);
            return;
        }
        if (it->discontinuity)
            g.discontinuities++;
        t->want_msn = it->msn;
        t->want_part = it->part;
        t->want_last = it->last_in_segment;
        t->want_duration = it->duration;
        track_request(t, kind, url, 30000);
        return;
    }
    if (t->pl.endlist) {
        t->done = true;
        g.tracks_ended++;
        return;
    }
    double now = now_s();
    if (!t->cursor_valid) {
        /* Nothing listed yet to join at: ask again shortly. */
        double wait = t->pl.part_target > 0 ? t->pl.part_target : 0.5;
        track_schedule(t, A_RELOAD, now + wait);
        return;
    }
    if (t->ll) {
        track_blocking_reload(t);
        return;
    }
    /* Classic HLS (RFC 8216 6.3.4): reload after a target duration, after
     * half of one when the playlist did not change. */
    double td = t->pl.target_duration > 0 ? t->pl.target_duration : 1;
    double at = t->last_reload + (t->pl_changed ? td : td / 2);
    track_schedule(t, A_RELOAD, at > now ? at : now);
}

/* Wake-up lag of a blocking reload: how long after the first viewer that
 * received a playlist ending at the part it waited for this one received it.
 * The key is the playlist path without the origin, so that viewers spread
 * over several origins share a slot. */
static void track_wake_lag(vsim_track_t *t, double now)
{
    const vsim_media_t *m = &t->pl;
    int last = -1;
    for (size_t i = 0; i < m->nitems; i++)
        if (m->items[i].part != VSIM_PART_WHOLE)
            last = (int)i;
    if (last < 0)
        return;
    const vsim_item_t *it = &m->items[last];
    /* Only a reload that was waiting for exactly this part measures a wake-up
     * (one asked for an older part is answered at once with a newer list). */
    bool exact = (it->msn == t->want_msn && it->part == t->want_part) ||
                 (it->msn == t->want_msn + 1 && it->part == 0 && t->want_part > 0);
    if (!exact)
        return;
    if (t->wake_slot < 0) {
        const char *path = t->url + strlen(t->v->base);
        for (int i = 0; i < g.nwake; i++)
            if (strcmp(g.wake[i].key, path) == 0)
                t->wake_slot = i;
        if (t->wake_slot < 0) {
            if (g.nwake == VSIM_WAKE_SLOTS)
                return;
            t->wake_slot = g.nwake++;
            snprintf(g.wake[t->wake_slot].key, sizeof(g.wake[0].key), "%s", path);
            g.wake[t->wake_slot].msn = -1;
        }
    }
    vsim_wake_slot_t *s = &g.wake[t->wake_slot];
    int c = vsim_pos_cmp(it->msn, it->part, s->msn, s->part);
    if (c > 0) {
        s->msn = it->msn;
        s->part = it->part;
        s->first = now;
        stats_add(K_WAKE, 0, 0);
    } else if (c == 0) {
        stats_add(K_WAKE, (uint64_t)((now - s->first) * 1e6), 0);
    }
}

static void track_on_playlist(vsim_track_t *t, double now)
{
    vsim_media_t *m = &t->pl;
    t->ll = vsim_media_is_ll(m);
    t->last_reload = now;
    int64_t lm = -1;
    int32_t lp = 0;
    double behind = 0;
    for (size_t i = 0; i < m->nitems; i++) {
        const vsim_item_t *it = &m->items[i];
        if (!vsim_item_wanted(it, t->ll))
            continue;
        lm = it->msn;
        lp = it->part;
        if (t->cursor_valid && vsim_pos_cmp(it->msn, it->part, t->cur_msn, t->cur_part) > 0)
            behind += it->duration;
    }
    t->pl_changed = lm != t->last_seen_msn || lp != t->last_seen_part;
    t->last_seen_msn = lm;
    t->last_seen_part = lp;
    double td = m->target_duration > 0 ? m->target_duration : 1;
    if (t->cursor_valid && !m->endlist && behind > g.behind_td * td) {
        g.stalls_behind++;
        if (g.verbose)
            fprintf(stderr, "viewer %d: %.1f s behind the live edge of %s: stall, rejoin\n",
                    t->v->id, behind, t->url);
        t->cursor_valid = false;
        t->last_progress = now;
    }
    viewer_track_next(t);
}

static void viewer_start_tracks(vsim_viewer_t *v, const vsim_master_t *m)
{
    const vsim_variant_t *var = &m->variants[0];
    const char *r = g.rendition;
    if (strcmp(r, "lowest") == 0 || strcmp(r, "highest") == 0) {
        bool low = r[0] == 'l';
        for (size_t i = 1; i < m->nvariants; i++)
            if (low ? m->variants[i].bandwidth < var->bandwidth
                    : m->variants[i].bandwidth > var->bandwidth)
                var = &m->variants[i];
    } else if (strcmp(r, "spread") == 0) {
        var = &m->variants[(size_t)v->id % m->nvariants];
    } else {
        size_t n = strlen(r);
        bool found = false;
        for (size_t i = 0; i < m->nvariants && !found; i++) {
            const char *u = m->variants[i].uri;
            const char *s = strstr(u, r);
            if (s && (s == u || s[-1] == '/') && s[n] == '/') {
                var = &m->variants[i];
                found = true;
            }
        }
        if (!found) {
            fprintf(stderr, "sluice-viewers: viewer %d: no rendition named %s\n", v->id, r);
            g.parse_errors++;
            count_error(K_MASTER);
            track_schedule(&v->t[0], A_MASTER, now_s() + VSIM_RETRY_S);
            return;
        }
    }
    char master_url[VSIM_URI_MAX];
    snprintf(master_url, sizeof(master_url), "%s/hls/%s/master.m3u8", v->base, v->stream);
    const char *uris[2] = {var->uri, vsim_master_audio_uri(m, var)};
    v->ntracks = uris[1] ? 2 : 1;
    double now = now_s();
    for (int i = 0; i < v->ntracks; i++) {
        vsim_track_t *t = &v->t[i];
        if (vsim_resolve(master_url, uris[i], t->url, sizeof(t->url)) != 0 ||
            !url_allowed(v, t->url)) {
            g.foreign_uri_errors++;
            count_error(K_MASTER);
            track_schedule(&v->t[0], A_MASTER, now + VSIM_RETRY_S);
            return;
        }
    }
    for (int i = 0; i < v->ntracks; i++) {
        vsim_track_t *t = &v->t[i];
        t->active = true;
        t->last_progress = now;
        track_schedule(t, A_RELOAD, now);
    }
}

static void track_retry(vsim_track_t *t, double now)
{
    track_schedule(t, t->kind == K_MASTER ? A_MASTER : A_RELOAD, now + VSIM_RETRY_S);
}

static void track_done(vsim_track_t *t, CURLcode res)
{
    double now = now_s();
    long status = 0;
    curl_off_t total_us = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME_T, &total_us);
    curl_multi_remove_handle(t->v->shard->multi, t->easy);
    t->in_flight = false;
    int kind = t->kind;
    if (res != CURLE_OK) {
        count_error(kind);
        if (t->oversize)
            g.oversize_errors++;
        else
            g.transport_errors++;
        if (g.verbose)
            fprintf(stderr, "viewer %d: %s %s: %s\n", t->v->id, kind_names[kind], t->req_url,
                    curl_easy_strerror(res));
        track_retry(t, now);
        return;
    }
    if (status != 200) {
        count_error(kind);
        g.http_errors[status > 0 && status < 600 ? status : 0]++;
        if (g.verbose)
            fprintf(stderr, "viewer %d: %s %s: HTTP %ld\n", t->v->id, kind_names[kind],
                    t->req_url, status);
        track_retry(t, now);
        return;
    }
    uint64_t bytes = kind == K_MASTER || kind == K_PLAYLIST || kind == K_BLOCKING ? t->len
                                                                                   : t->media_bytes;
    stats_add(kind, (uint64_t)(total_us > 0 ? total_us : 0), bytes);
    switch (kind) {
    case K_MASTER: {
        vsim_master_t *m = malloc(sizeof(*m));
        if (!m || vsim_master_parse(t->buf, t->len, m) != 0) {
            g.parse_errors++;
            count_error(kind);
            free(m);
            track_retry(t, now);
            return;
        }
        viewer_start_tracks(t->v, m);
        free(m);
        return;
    }
    case K_PLAYLIST:
    case K_BLOCKING: {
        if (vsim_media_parse(t->buf, t->len, &t->spare) != 0) {
            g.parse_errors++;
            count_error(kind);
            track_retry(t, now);
            return;
        }
        vsim_media_t m = t->pl;
        t->pl = t->spare;
        t->spare = m;
        t->have_pl = true;
        if (kind == K_BLOCKING)
            track_wake_lag(t, now);
        track_on_playlist(t, now);
        return;
    }
    case K_INIT:
        snprintf(t->map_url, sizeof(t->map_url), "%s", t->req_url);
        viewer_track_next(t);
        return;
    default: /* a part or a segment: the cursor moves on */
        t->cursor_valid = true;
        t->cur_msn = t->want_msn;
        t->cur_part = t->want_part;
        t->cur_last = t->want_last;
        t->last_progress = now;
        viewer_track_next(t);
        return;
    }
}

/* --- the event loop (curl socket API over epoll) ---------------------------- */

static void shard_touch(vsim_shard_t *sh)
{
    if (!sh->touched) {
        sh->touched = true;
        g.touched[g.ntouched++] = sh;
    }
}

static void shard_make_due(vsim_shard_t *sh)
{
    if (!sh->due) {
        sh->due = true;
        g.due[g.ndue++] = sh;
    }
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    vsim_shard_t *sh = userp;
    vsim_sock_t *vs = socketp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(g.epfd, EPOLL_CTL_DEL, s, NULL);
        curl_multi_assign(sh->multi, s, NULL);
        /* An event for it may still wait in this round's epoll batch: mark
         * it dead now, free it after the batch. */
        if (vs) {
            vs->fd = CURL_SOCKET_BAD;
            if (g.ngrave == g.capgrave) {
                size_t ncap = g.capgrave ? g.capgrave * 2 : 64;
                vsim_sock_t **n = realloc(g.grave, ncap * sizeof(*n));
                if (!n) {
                    free(vs); /* cannot defer: rather leak nothing */
                    return 0;
                }
                g.grave = n;
                g.capgrave = ncap;
            }
            g.grave[g.ngrave++] = vs;
        }
        return 0;
    }
    struct epoll_event ev = {0};
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    if (vs) {
        ev.data.ptr = vs;
        if (epoll_ctl(g.epfd, EPOLL_CTL_MOD, s, &ev) != 0)
            perror("sluice-viewers: epoll_ctl mod");
        return 0;
    }
    vs = malloc(sizeof(*vs));
    if (!vs)
        return -1;
    vs->shard = sh;
    vs->fd = s;
    ev.data.ptr = vs;
    if (epoll_ctl(g.epfd, EPOLL_CTL_ADD, s, &ev) != 0 &&
        (errno != EEXIST || epoll_ctl(g.epfd, EPOLL_CTL_MOD, s, &ev) != 0))
        perror("sluice-viewers: epoll_ctl add");
    curl_multi_assign(sh->multi, s, vs);
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    vsim_shard_t *sh = userp;
    sh->timer_at = timeout_ms < 0 ? -1 : now_s() + (double)timeout_ms / 1000.0;
    if (timeout_ms == 0)
        shard_make_due(sh); /* "at once": this loop round, not the next scan */
    return 0;
}

/* Completed transfers of the shards that had activity. */
static void drain_done(void)
{
    for (int i = 0; i < g.ntouched; i++) {
        vsim_shard_t *sh = g.touched[i];
        sh->touched = false;
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(sh->multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            void *t = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &t);
            if (t)
                track_done((vsim_track_t *)t, msg->data.result);
        }
    }
    g.ntouched = 0;
}

/* Runs libcurl's expired timeouts: the due shards, and (each scan) any shard
 * whose timeout has passed. */
static void run_timeouts(double now, bool all)
{
    int running;
    if (all)
        for (int i = 0; i < g.nshards; i++)
            if (g.shards[i].timer_at >= 0 && now >= g.shards[i].timer_at)
                shard_make_due(&g.shards[i]);
    /* Handling one shard may make it (or another) due again: take the list. */
    while (g.ndue > 0) {
        vsim_shard_t *sh = g.due[--g.ndue];
        sh->due = false;
        sh->timer_at = -1;
        curl_multi_socket_action(sh->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        shard_touch(sh);
    }
}

static void scan_tracks(double now)
{
    for (int i = 0; i < g.nviewers; i++) {
        vsim_viewer_t *v = &g.viewers[i];
        if (!v->started) {
            if (now >= v->start_at) {
                v->started = true;
                g.viewers_started++;
                char url[VSIM_URI_MAX];
                snprintf(url, sizeof(url), "%s/hls/%s/master.m3u8", v->base, v->stream);
                track_request(&v->t[0], K_MASTER, url, 10000);
            }
            continue;
        }
        for (int j = 0; j < 2; j++) {
            vsim_track_t *t = &v->t[j];
            if (t->done || t->in_flight || (!t->active && t->action != A_MASTER))
                continue;
            if (t->action != A_NONE && now >= t->wake_at) {
                vsim_action_t a = t->action;
                if (a == A_MASTER) {
                    char url[VSIM_URI_MAX];
                    snprintf(url, sizeof(url), "%s/hls/%s/master.m3u8", v->base, v->stream);
                    track_request(t, K_MASTER, url, 10000);
                } else {
                    track_request(t, K_PLAYLIST, t->url, playlist_timeout_ms(t));
                }
            }
        }
        for (int j = 0; j < v->ntracks; j++) {
            vsim_track_t *t = &v->t[j];
            if (t->active && !t->done && now - t->last_progress > g.no_progress_s) {
                g.stalls_no_progress++;
                if (g.verbose)
                    fprintf(stderr, "viewer %d: no progress for %.1f s on %s: stall, rejoin\n",
                            v->id, now - t->last_progress, t->url);
                t->last_progress = now;
                t->cursor_valid = false;
            }
        }
    }
}

static void on_signal(int sig)
{
    (void)sig;
    vsim_interrupted = 1;
}

/* Every viewer reached EXT-X-ENDLIST on every track: nothing left to do. */
static bool all_ended(void)
{
    if (g.tracks_ended == 0 || g.viewers_started < (uint64_t)g.nviewers)
        return false;
    for (int i = 0; i < g.nviewers; i++) {
        if (g.viewers[i].ntracks == 0)
            return false;
        for (int j = 0; j < g.viewers[i].ntracks; j++)
            if (!g.viewers[i].t[j].done)
                return false;
    }
    return true;
}

static void free_grave(void)
{
    for (size_t i = 0; i < g.ngrave; i++)
        free(g.grave[i]);
    g.ngrave = 0;
}

static int run_loop(void)
{
    struct epoll_event evs[256];
    double next_scan = 0;
    for (;;) {
        double now = now_s();
        if (now >= g.t_end || vsim_interrupted)
            break;
        bool scan = now >= next_scan;
        if (scan) {
            scan_tracks(now);
            if (all_ended())
                break;
            next_scan = now + VSIM_SCAN_MS / 1000.0;
        }
        run_timeouts(now, scan);
        drain_done();
        int wait_ms = g.ndue > 0 ? 0 : (int)ceil((next_scan - now_s()) * 1000.0);
        if (wait_ms < 0)
            wait_ms = 0;
        int n = epoll_wait(g.epfd, evs, 256, wait_ms);
        if (n < 0 && errno != EINTR) {
            perror("sluice-viewers: epoll_wait");
            return -errno;
        }
        int running;
        for (int i = 0; i < n; i++) {
            vsim_sock_t *vs = evs[i].data.ptr;
            if (vs->fd == CURL_SOCKET_BAD)
                continue; /* closed by an earlier event of this batch */
            int flags = (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                        (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                        (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
            vsim_shard_t *sh = vs->shard;
            curl_multi_socket_action(sh->multi, vs->fd, flags, &running);
            shard_touch(sh);
        }
        drain_done();
        free_grave();
    }
    free_grave();
    return 0;
}

/* --- report ------------------------------------------------------------------- */

static uint64_t total_errors(void)
{
    uint64_t e = g.transport_errors + g.parse_errors + g.oversize_errors + g.foreign_uri_errors;
    for (int s = 0; s < 600; s++)
        e += g.http_errors[s];
    return e;
}

static void report(double elapsed)
{
    uint64_t requests = 0, bytes = 0;
    for (int k = 0; k < K_WAKE; k++) {
        requests += g.kinds[k].count + g.kinds[k].errors;
        bytes += g.kinds[k].bytes;
    }
    uint64_t stalls = g.stalls_behind + g.stalls_no_progress;
    FILE *o = g.json ? stdout : stderr;
    if (g.json) {
        fprintf(o, "{\"viewers\": %d, \"viewers_started\": %" PRIu64 ", \"tracks_ended\": %" PRIu64
                   ", \"duration_s\": %.3f, \"requests\": %" PRIu64
                   ", \"requests_per_s\": %.1f, \"bytes\": %" PRIu64 ", \"errors\": %" PRIu64
                   ", \"transport_errors\": %" PRIu64 ", \"parse_errors\": %" PRIu64
                   ", \"oversize_errors\": %" PRIu64 ", \"foreign_uri_errors\": %" PRIu64
                   ", \"stalls\": %" PRIu64 ", \"stalls_behind\": %" PRIu64
                   ", \"stalls_no_progress\": %" PRIu64 ", \"discontinuities\": %" PRIu64
                   ", \"init_refetches\": %" PRIu64 ", \"http_errors\": {",
                g.nviewers, g.viewers_started, g.tracks_ended, elapsed, requests,
                elapsed > 0 ? (double)requests / elapsed : 0.0, bytes, total_errors(),
                g.transport_errors, g.parse_errors, g.oversize_errors, g.foreign_uri_errors, stalls,
                g.stalls_behind, g.stalls_no_progress, g.discontinuities, g.init_refetches);
        const char *sep = "";
        for (int s = 0; s < 600; s++)
            if (g.http_errors[s]) {
                fprintf(o, "%s\"%d\": %" PRIu64, sep, s, g.http_errors[s]);
                sep = ", ";
            }
        fprintf(o, "}, \"kinds\": {");
        for (int k = 0; k < K_COUNT; k++) {
            const vsim_kind_stats_t *ks = &g.kinds[k];
            fprintf(o,
                    "%s\"%s\": {\"count\": %" PRIu64 ", \"errors\": %" PRIu64 ", \"bytes\": %" PRIu64
                    ", \"p50_ms\": %.1f, \"p90_ms\": %.1f, \"p99_ms\": %.1f, \"max_ms\": %.1f}",
                    k ? ", " : "", kind_names[k], ks->count, ks->errors, ks->bytes,
                    stats_quantile(ks, 0.5), stats_quantile(ks, 0.9), stats_quantile(ks, 0.99),
                    (double)ks->max_us / 1000.0);
        }
        /* The histograms, so that reports of several processes can be
         * merged exactly: [upper edge ms, count] for each non-empty bucket. */
        fprintf(o, "}, \"histograms\": {");
        for (int k = 0; k < K_COUNT; k++) {
            const vsim_kind_stats_t *ks = &g.kinds[k];
            fprintf(o, "%s\"%s\": [", k ? ", " : "", kind_names[k]);
            const char *sep = "";
            for (size_t b = 0; b < HIST_N; b++) {
                if (!ks->hist[b])
                    continue;
                fprintf(o, "%s[%.1f, %" PRIu32 "]", sep, stats_bucket_upper_ms(ks, b), ks->hist[b]);
                sep = ", ";
            }
            fprintf(o, "]");
        }
        fprintf(o, "}}\n");
        return;
    }
    fprintf(o, "viewers %d (started %" PRIu64 "), %.1f s, %" PRIu64 " requests (%.0f/s), %.1f MB\n",
            g.nviewers, g.viewers_started, elapsed, requests,
            elapsed > 0 ? (double)requests / elapsed : 0.0, (double)bytes / 1e6);
    fprintf(o, "%-18s %9s %7s %9s %9s %9s %9s\n", "kind", "count", "errors", "p50 ms", "p90 ms",
            "p99 ms", "max ms");
    for (int k = 0; k < K_COUNT; k++) {
        const vsim_kind_stats_t *ks = &g.kinds[k];
        fprintf(o, "%-18s %9" PRIu64 " %7" PRIu64 " %9.1f %9.1f %9.1f %9.1f\n", kind_names[k],
                ks->count, ks->errors, stats_quantile(ks, 0.5), stats_quantile(ks, 0.9),
                stats_quantile(ks, 0.99), (double)ks->max_us / 1000.0);
    }
    fprintf(o, "errors %" PRIu64 " (transport %" PRIu64 ", parse %" PRIu64 ", oversize %" PRIu64
               ", foreign uri %" PRIu64 ")",
            total_errors(), g.transport_errors, g.parse_errors, g.oversize_errors,
            g.foreign_uri_errors);
    for (int s = 0; s < 600; s++)
        if (g.http_errors[s])
            fprintf(o, ", HTTP %d: %" PRIu64, s, g.http_errors[s]);
    fprintf(o, "\nstalls %" PRIu64 " (behind %" PRIu64 ", no progress %" PRIu64
               "), tracks ended %" PRIu64 ", discontinuities %" PRIu64 "\n",
            stalls, g.stalls_behind, g.stalls_no_progress, g.tracks_ended, g.discontinuities);
}

/* --- set-up ------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sluice-viewers --url BASE --stream ID [options]\n"
            "  --url BASE, --origin BASE  origin base URL, http://127.0.0.1:PORT (repeatable:\n"
            "                             viewers are spread over the origins)\n"
            "  --stream ID                stream id (repeatable: viewers spread over them)\n"
            "  --viewers N                concurrent viewers (default 10, at most %d)\n"
            "  --duration S               run time, a hard bound (default 10)\n"
            "  --ramp S                   start the viewers evenly over S seconds (default 0)\n"
            "  --rendition R              lowest | highest | spread | a rendition name (default lowest)\n"
            "  --behind N                 a stall: more than N target durations behind the live\n"
            "                             edge (default 3)\n"
            "  --no-progress S            a stall: no new part or segment for S seconds (default 10)\n"
            "  --json                     one JSON object on stdout at the end\n"
            "  --verbose                  each error and stall on stderr\n"
            "Exit status: 0 when no request failed and no viewer stalled, 1 otherwise, 2 on bad usage.\n",
            VSIM_MAX_VIEWERS);
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *e;
    double v = strtod(s, &e);
    if (e == s || *e || !(v >= lo && v <= hi))
        return -EINVAL;
    *out = v;
    return 0;
}

static int raise_nofile(rlim_t need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -errno;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return -errno;
    }
    return rl.rlim_cur >= need ? 0 : -EMFILE;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},      {"origin", required_argument, NULL, 'u'},
        {"stream", required_argument, NULL, 's'},   {"viewers", required_argument, NULL, 'n'},
        {"duration", required_argument, NULL, 'd'}, {"ramp", required_argument, NULL, 'r'},
        {"rendition", required_argument, NULL, 'R'}, {"behind", required_argument, NULL, 'b'},
        {"no-progress", required_argument, NULL, 'p'}, {"json", no_argument, NULL, 'j'},
        {"verbose", no_argument, NULL, 'v'},        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    double nv = 10;
    g.duration = 10;
    g.behind_td = 3;
    g.no_progress_s = 10;
    g.rendition = "lowest";
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            if (g.norigins == VSIM_MAX_ORIGINS || strncmp(optarg, "http", 4) != 0 ||
                strlen(optarg) > 200) {
                fprintf(stderr, "sluice-viewers: bad or too many --url/--origin: %s\n", optarg);
                return 2;
            }
            g.origins[g.norigins] = strdup(optarg);
            /* no trailing slash: paths are appended */
            for (char *e = (char *)g.origins[g.norigins] + strlen(optarg);
                 e > g.origins[g.norigins] && e[-1] == '/'; e--)
                e[-1] = '\0';
            g.norigins++;
            break;
        case 's':
            if (g.nstreams == VSIM_MAX_STREAMS || !*optarg || strlen(optarg) > 128 ||
                strpbrk(optarg, "/?#%& ")) {
                fprintf(stderr, "sluice-viewers: bad or too many --stream: %s\n", optarg);
                return 2;
            }
            g.streams[g.nstreams++] = optarg;
            break;
        case 'n':
            if (parse_double(optarg, 1, VSIM_MAX_VIEWERS, &nv) || nv != floor(nv)) {
                fprintf(stderr, "sluice-viewers: --viewers 1..%d\n", VSIM_MAX_VIEWERS);
                return 2;
            }
            break;
        case 'd':
            if (parse_double(optarg, 0.1, 86400, &g.duration)) {
                fprintf(stderr, "sluice-viewers: --duration 0.1..86400\n");
                return 2;
            }
            break;
        case 'r':
            if (parse_double(optarg, 0, 3600, &g.ramp)) {
                fprintf(stderr, "sluice-viewers: --ramp 0..3600\n");
                return 2;
            }
            break;
        case 'R':
            g.rendition = optarg;
            break;
        case 'b':
            if (parse_double(optarg, 0.5, 1000, &g.behind_td)) {
                fprintf(stderr, "sluice-viewers: --behind 0.5..1000\n");
                return 2;
            }
            break;
        case 'p':
            if (parse_double(optarg, 0.1, 3600, &g.no_progress_s)) {
                fprintf(stderr, "sluice-viewers: --no-progress 0.1..3600\n");
                return 2;
            }
            break;
        case 'j':
            g.json = true;
            break;
        case 'v':
            g.verbose = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc || g.norigins == 0 || g.nstreams == 0) {
        usage(stderr);
        return 2;
    }
    g.nviewers = (int)nv;
    int rc = raise_nofile((rlim_t)g.nviewers * 2 + 64);
    if (rc) {
        fprintf(stderr, "sluice-viewers: %d viewers need %d file descriptors: %s\n", g.nviewers,
                g.nviewers * 2 + 64, strerror(-rc));
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 2;
    g.nshards = (g.nviewers + VSIM_SHARD_VIEWERS - 1) / VSIM_SHARD_VIEWERS;
    g.epfd = epoll_create1(EPOLL_CLOEXEC);
    g.viewers = calloc((size_t)g.nviewers, sizeof(*g.viewers));
    g.shards = calloc((size_t)g.nshards, sizeof(*g.shards));
    g.due = calloc((size_t)g.nshards, sizeof(*g.due));
    g.touched = calloc((size_t)g.nshards, sizeof(*g.touched));
    if (g.epfd < 0 || !g.viewers || !g.shards || !g.due || !g.touched) {
        fprintf(stderr, "sluice-viewers: out of resources\n");
        return 2;
    }
    for (int i = 0; i < g.nshards; i++) {
        vsim_shard_t *sh = &g.shards[i];
        sh->timer_at = -1;
        sh->multi = curl_multi_init();
        if (!sh->multi) {
            fprintf(stderr, "sluice-viewers: out of resources\n");
            return 2;
        }
        curl_multi_setopt(sh->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
        curl_multi_setopt(sh->multi, CURLMOPT_SOCKETDATA, sh);
        curl_multi_setopt(sh->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
        curl_multi_setopt(sh->multi, CURLMOPT_TIMERDATA, sh);
        /* Keep every viewer's connections open between requests, as players do. */
        curl_multi_setopt(sh->multi, CURLMOPT_MAXCONNECTS, (long)VSIM_SHARD_VIEWERS * 2 + 4);
    }
    g.t0 = now_s();
    g.t_end = g.t0 + g.duration;
    for (int i = 0; i < g.nviewers; i++) {
        vsim_viewer_t *v = &g.viewers[i];
        v->id = i;
        v->base = g.origins[i % g.norigins];
        v->shard = &g.shards[i / VSIM_SHARD_VIEWERS];
        v->stream = g.streams[i % g.nstreams];
        v->start_at = g.t0 + (g.nviewers > 1 ? g.ramp * i / (g.nviewers - 1) : 0);
        for (int j = 0; j < 2; j++) {
            vsim_track_t *t = &v->t[j];
            t->v = v;
            t->wake_slot = -1;
            t->last_seen_msn = -1;
            t->easy = curl_easy_init();
            if (!t->easy) {
                fprintf(stderr, "sluice-viewers: out of memory\n");
                return 2;
            }
            curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, write_cb);
            curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
            curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
            curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(t->easy, CURLOPT_FOLLOWLOCATION, 0L);
            curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, "http,https");
            curl_easy_setopt(t->easy, CURLOPT_USERAGENT, "sluice-viewers/1");
            curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, 5000L);

        }
    }
    rc = run_loop();
    double elapsed = now_s() - g.t0;
    g.stopping = true;
    for (int i = 0; i < g.nviewers; i++)
        for (int j = 0; j < 2; j++) {
            vsim_track_t *t = &g.viewers[i].t[j];
            if (t->in_flight)
                curl_multi_remove_handle(g.viewers[i].shard->multi, t->easy);
            curl_easy_cleanup(t->easy);
            vsim_media_deinit(&t->pl);
            vsim_media_deinit(&t->spare);
            free(t->buf);
        }

    report(elapsed);
    /* Closing a multi's cached connections calls socket_cb (REMOVE), which
     * frees what was assigned to each socket. */
    for (int i = 0; i < g.nshards; i++)
        curl_multi_cleanup(g.shards[i].multi);
    free_grave();
    free(g.grave);
    free(g.shards);
    free(g.due);
    free(g.touched);
    close(g.epfd);
    free(g.viewers);
    for (int i = 0; i < g.norigins; i++)
        free((char *)g.origins[i]);
    curl_global_cleanup();
    if (rc)
        return 2;
    return total_errors() == 0 && g.stalls_behind + g.stalls_no_progress == 0 &&
                   g.viewers_started == (uint64_t)g.nviewers
               ? 0
               : 1;
}
