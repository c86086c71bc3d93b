/*
 * The report module (report.h): a live stream's status object, the
 * server-wide stats and the Prometheus exposition, assembled from ingest's
 * meters, the transcode workers' snapshots, the origin's counters and
 * viewer sessions, the store and /proc.
 *
 * Threads: report_new() starts one thread that wakes once a second to
 *  - sample the origin's and the process's counters (rates are deltas over
 *    the last REPORT_RATE_WINDOW seconds of those samples),
 *  - judge each locally live stream's health (with what changed since the
 *    last second: new drops, new late frames) and call event_cb on a change,
 *  - write each locally live stream's status JSON into the store
 *    (meta "status", short TTL) and this origin's viewer count per stream
 *    (meta "viewers.<node id>"), so that the admin API of any node sees them;
 *  - every REPORT_AUDIENCE_PERIOD_MS, aggregate the audience of each stream
 *    live here (ingest live, or its worker waiting out --reconnect-window):
 *    scan its "aud.<session>" records (the origins write them from the
 *    players' beacons), fold them with its audience_agg_t (audience.c),
 *    publish the "audience" object for the status, /metrics and the stats,
 *    and put it in the store (meta "audience", REPORT_AUDIENCE_TTL_MS) for
 *    the origins' viewers.json. When the stream leaves the local set, its
 *    totals go to meta "audience.last" (7 days) and its state is freed.
 *    The scans are store calls: they run here, never on the admin
 *    listener's thread. A failed scan keeps the last figures (the store
 *    errors are logged at most every REPORT_AUDIENCE_WARN_MS, with a count).
 * report_stream_status / report_stats / report_metrics run on the admin
 * listener's threads. Shared state (samples, per-stream health, the
 * published audience objects) is under r->lock; the sources themselves are
 * thread-safe snapshots, so no lock is held while calling them except the
 * short copies. The aggregators (report_audience_t's agg and f) are the
 * report thread's alone: admin threads only read `obj`, under r->lock, and
 * a published object is never changed, only replaced (they deep-copy it).
 */
#include "report.h"
#include "report_internal.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audience_internal.h"
#include "outputs_api_internal.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"

#define REPORT_RATE_WINDOW 5 /* seconds of counter samples behind a rate */
#define REPORT_SAMPLES (REPORT_RATE_WINDOW + 1)
#define REPORT_STATUS_TTL_MS 5000
#define REPORT_RECENT_MS 10000 /* drops / late frames this recent affect health */
#define REPORT_STREAMS_MAX 1024
#define REPORT_AUDIENCE_PERIOD_MS 2000
#define REPORT_AUDIENCE_TTL_MS 5000                             /* meta "audience" */
#define REPORT_AUDIENCE_LAST_TTL_MS (7LL * 24 * 3600 * 1000)    /* meta "audience.last" */
#define REPORT_AUDIENCE_END_TRIES 15 /* ticks an unwritable "audience.last" is retried */
#define REPORT_AUDIENCE_WARN_MS 10000

typedef struct report_sample {
    int64_t ms;
    uint64_t bytes;                 /* origin body bytes, all kinds */
    uint64_t requests[ORIGIN_KINDS];
    double cpu_s;
} report_sample_t;

/* What the report thread remembers of a live stream between ticks. */
typedef struct report_stream {
    char id[STORE_ID_MAX];
    bool live;
    bool have_health;
    int health; /* transcode_health_t scale: 0 good, 1 fair, 2 poor */
    char reason[160];
    uint64_t dropped, late;
    int64_t dropped_ms, late_ms; /* when they last grew; 0 never */
    bool viewers_put;           /* a viewers.<node> record of ours is in the store */
    bool was_live;              /* live at the previous tick */
    uint64_t viewers;
} report_stream_t;

/* The audience of a stream live on this node (see the file's comment). */
typedef struct report_audience {
    char id[STORE_ID_MAX];
    audience_agg_t *agg;  /* report thread only */
    audience_figures_t f; /* the last finished scan's; report thread only */
    bool have;            /* f is set */
    bool live;            /* in the current tick's local set; report thread only */
    int end_tries;        /* failed writes of "audience.last" */
    bool seed_checked;    /* the store's "audience" record looked at (report_audience_seed) */
    json_t *obj;          /* the published "audience" object (immutable); r->lock */
} report_audience_t;

struct report {
    report_params_t p;
    int64_t start_ms;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    report_sample_t samples[REPORT_SAMPLES];
    size_t nsamples, next_sample;
    report_stream_t *streams; /* REPORT_STREAMS_MAX */
    size_t nstreams;
    int64_t store_warn_ms;
    uint64_t refusal_seq; /* ingest input refusals already put in the store */
    /* Audience: entries under r->lock (admin threads look up obj); the
     * rest is the report thread's. */
    report_audience_t *aud;
    size_t naud, capaud;
    int64_t aud_scan_ms;      /* last audience tick, monotonic; 0 none */
    uint64_t aud_errors;      /* failed audience store calls since the last warning */
    int64_t aud_warn_ms;      /* when that warning was logged; 0 never */
    uint64_t aud_ignored;     /* records left out since the last warning */
    int64_t aud_ignored_warn_ms;
};

/* How long a stream's last input refusal stays in its status. */
#define REPORT_REFUSAL_TTL_MS (24 * 3600 * 1000)

static const char *const report_health_names[] = {"good", "fair", "poor"};

/* ---- health ---------------------------------------------------------------- */

static void report_worse(int *level, char *reason, size_t cap, int l, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void report_worse(int *level, char *reason, size_t cap, int l, const char *fmt, ...)
{
    if (l <= *level)
        return;
    *level = l;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, cap, fmt, ap);
    va_end(ap);
}

/* Health of a live stream: the worst of ingest stability and transcoding,
 * with the reason of the worst. st may be NULL (no worker), rs may be NULL
 * (not seen by the report thread yet: no "recent" information). */
static int report_judge(const report_t *r, const ingest_stream_stats_t *is,
                        const transcode_stream_status_t *ts, const report_stream_t *rs,
                        int64_t now, char *reason, size_t cap)
{
    int level = 0;
    snprintf(reason, cap, "stable input, transcoder keeping up");
    double nominal = is->nominal_fps > 0 ? is->nominal_fps : (ts && ts->fps > 0 ? ts->fps : 0);
    if (is->window_s >= 2 && is->uptime_ms > 3000) {
        if (is->bitrate_kbps <= 0)
            report_worse(&level, reason, cap, 2, "no media received for %d s", is->window_s);
        else if (nominal > 0 && is->video_frames > 0 && is->fps < 0.5 * nominal)
            report_worse(&level, reason, cap, 2, "input at %.1f fps, far below the source's %.1f",
                         is->fps, nominal);
        else if (nominal > 0 && is->video_frames > 0 && is->fps < 0.8 * nominal)
            report_worse(&level, reason, cap, 1, "input at %.1f fps, below the source's %.1f",
                         is->fps, nominal);
        if (is->bitrate_kbps > 0 && is->bitrate_stddev_kbps > 0.5 * is->bitrate_kbps)
            report_worse(&level, reason, cap, 1,
                         "input bit rate unstable (%.0f kb/s, spread %.0f kb/s)",
                         is->bitrate_kbps, is->bitrate_stddev_kbps);
    }
    bool recent_drop = rs ? (rs->dropped_ms && now - rs->dropped_ms < REPORT_RECENT_MS)
                          : is->dropped_frames > 0;
    bool recent_late = rs ? (rs->late_ms && now - rs->late_ms < REPORT_RECENT_MS)
                          : is->late_frames > 0;
    if (recent_drop)
        report_worse(&level, reason, cap, 2, "%llu frames dropped (queue full: transcoder behind)",
                     (unsigned long long)is->dropped_frames);
    if (recent_late)
        report_worse(&level, reason, cap, 1, "%llu late frames (timestamps backwards or jumping)",
                     (unsigned long long)is->late_frames);
    if (ts && ts->live) {
        double seg_ms = r->p.segment_duration * 1000;
        if (ts->health == TRANSCODE_HEALTH_POOR) {
            if (ts->dropped_rungs > 0)
                report_worse(&level, reason, cap, 2,
                             "transcoder overloaded: %d rendition(s) dropped", ts->dropped_rungs);
            else if (ts->lag_ms > 2 * seg_ms)
                report_worse(&level, reason, cap, 2, "transcoder %lld ms behind the input",
                             (long long)ts->lag_ms);
            else
                report_worse(&level, reason, cap, 2,
                             "transcoder slower than real time (speed %.2f)", ts->speed);
        } else if (ts->health == TRANSCODE_HEALTH_FAIR) {
            if (ts->preset_steps > 0)
                report_worse(&level, reason, cap, 1, "transcoder preset stepped %d faster (%s)",
                             ts->preset_steps, ts->preset);
            else
                report_worse(&level, reason, cap, 1, "little encoder headroom (speed %.2f)",
                             ts->speed);
        }
    }
    return level;
}

/* ---- status objects -------------------------------------------------------- */

static report_stream_t *report_stream_find(report_t *r, const char *id)
{
    for (size_t i = 0; i < r->nstreams; i++)
        if (strcmp(r->streams[i].id, id) == 0)
            return &r->streams[i];
    return NULL;
}

/* The record of id, created if there is room (lock held). */
static report_stream_t *report_stream_get(report_t *r, const char *id)
{
    report_stream_t *rs = report_stream_find(r, id);
    if (rs || !r->streams || r->nstreams >= REPORT_STREAMS_MAX)
        return rs;
    rs = &r->streams[r->nstreams++];
    memset(rs, 0, sizeof(*rs));
    size_t n = strlen(id);
    if (n >= sizeof(rs->id))
        n = sizeof(rs->id) - 1;
    memcpy(rs->id, id, n);
    rs->id[n] = '\0';
    return rs;
}

/* "renditions", "transcode" and the worker's reconnect and restart record
 * of a status object; ts NULL: an empty rendition list. */
static void report_transcode_status(json_t *obj, const transcode_stream_status_t *ts)
{
    json_t *rends = json_array();
    if (ts) {
        for (size_t i = 0; i < ts->nrenditions; i++) {
            const transcode_rendition_status_t *rs = &ts->renditions[i];
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string(rs->name));
            json_object_set_new(o, "width", json_integer(rs->width));
            json_object_set_new(o, "height", json_integer(rs->height));
            json_object_set_new(o, "bitrate_kbps", json_integer(rs->bitrate_kbps));
            json_object_set_new(o, "target_kbps", json_integer(rs->target_kbps));
            json_object_set_new(o, "passthrough", json_boolean(rs->passthrough));
            json_object_set_new(o, "dropped", json_boolean(rs->dropped));
            /* A copied rung keeps up by definition: speed of the worker. */
            double speed = rs->passthrough ? ts->speed : rs->encoder_speed;
            json_object_set_new(o, "encoder_speed", json_real(round(speed * 100) / 100));
            json_object_set_new(o, "frames", json_integer((json_int_t)rs->frames));
            /* Rungs on demand: false while nobody watches it (not encoded). */
            json_object_set_new(o, "active", json_boolean(!rs->idle));
            json_object_set_new(o, "wakes", json_integer((json_int_t)rs->wakes));
            json_array_append_new(rends, o);
        }
        json_t *tr = json_object();
        json_object_set_new(tr, "speed", json_real(round(ts->speed * 100) / 100));
        json_object_set_new(tr, "preset", json_string(ts->preset));
        json_object_set_new(tr, "preset_steps", json_integer(ts->preset_steps));
        if (ts->ladder_source[0])
            json_object_set_new(tr, "ladder_source", json_string(ts->ladder_source));
        json_object_set_new(tr, "dropped_rungs", json_integer(ts->dropped_rungs));
        json_object_set_new(tr, "queue_lag_ms", json_integer(ts->lag_ms));
        json_object_set_new(tr, "segments", json_integer((json_int_t)ts->segments));
        json_object_set_new(tr, "segment_lag_ms", json_integer(ts->segment_lag_ms));
        json_object_set_new(tr, "health", json_string(transcode_health_name(ts->health)));
        json_object_set_new(tr, "reconnects", json_integer(ts->reconnects));
        json_object_set_new(tr, "restarts", json_integer(ts->restarts));
        if (ts->last_error[0])
            json_object_set_new(tr, "last_error", json_string(ts->last_error));
        json_object_set_new(obj, "transcode", tr);
    }
    json_object_set_new(obj, "renditions", rends);
}

/* "protocol", and for SRT its link figures (issue 25). */
static void report_ingest_protocol(json_t *in, const ingest_stream_stats_t *is)
{
    json_object_set_new(in, "protocol", json_string(is->protocol[0] ? is->protocol : "rtmp"));
    if (strcmp(is->protocol, "srt") != 0 || !is->has_srt)
        return;
    const ingest_srt_stats_t *s = &is->srt;
    json_t *o = json_object();
    json_object_set_new(o, "rtt_ms", json_real(round(s->rtt_ms * 10) / 10));
    json_object_set_new(o, "latency_ms", json_integer(s->latency_ms));
    json_object_set_new(o, "packets_received", json_integer((json_int_t)s->packets_received));
    json_object_set_new(o, "packets_lost", json_integer((json_int_t)s->packets_lost));
    json_object_set_new(o, "packets_retransmitted",
                        json_integer((json_int_t)s->packets_retransmitted));
    json_object_set_new(o, "packets_dropped", json_integer((json_int_t)s->packets_dropped));
    json_object_set_new(o, "recv_buffer_ms", json_integer(s->recv_buffer_ms));
    json_object_set_new(o, "recv_buffer_bytes", json_integer((json_int_t)s->recv_buffer_bytes));
    json_object_set_new(o, "recv_rate_mbps", json_real(round(s->recv_rate_mbps * 100) / 100));
    json_object_set_new(in, "srt", o);
}

/* The live part of a status object from local data. */
static void report_live_status(report_t *r, const ingest_stream_stats_t *is, json_t *obj,
                               int64_t now)
{
    transcode_stream_status_t ts;
    bool have_ts = r->p.transcode &&
                   transcode_stream_status(r->p.transcode, is->stream_id, &ts) == 0 && ts.live;
    json_object_set_new(obj, "state", json_string("live"));
    json_t *in = json_object();
    json_object_set_new(in, "bitrate_kbps", json_integer((json_int_t)lround(is->bitrate_kbps)));
    json_object_set_new(in, "fps", json_real(round(is->fps * 10) / 10));
    json_object_set_new(in, "width", json_integer(is->width));
    json_object_set_new(in, "height", json_integer(is->height));
    json_object_set_new(in, "video_codec", json_string(is->video_codec));
    json_object_set_new(in, "audio_codec", json_string(is->audio_codec));
    json_object_set_new(in, "uptime_s", json_integer(is->uptime_ms / 1000));
    json_object_set_new(in, "bitrate_stddev_kbps",
                        json_integer((json_int_t)lround(is->bitrate_stddev_kbps)));
    json_object_set_new(in, "window_s", json_integer(is->window_s));
    json_object_set_new(in, "bytes", json_integer((json_int_t)is->bytes));
    json_object_set_new(in, "video_frames", json_integer((json_int_t)is->video_frames));
    json_object_set_new(in, "audio_frames", json_integer((json_int_t)is->audio_frames));
    json_object_set_new(in, "dropped_frames", json_integer((json_int_t)is->dropped_frames));
    json_object_set_new(in, "late_frames", json_integer((json_int_t)is->late_frames));
    json_object_set_new(in, "peer", json_string(is->peer));
    report_ingest_protocol(in, is);
    json_object_set_new(obj, "ingest", in);

    report_transcode_status(obj, have_ts ? &ts : NULL);

    char reason[160];
    int level;
    pthread_mutex_lock(&r->lock);
    report_stream_t *rs = report_stream_find(r, is->stream_id);
    if (rs && rs->have_health) {
        level = rs->health;
        snprintf(reason, sizeof(reason), "%s", rs->reason);
    } else {
        level = report_judge(r, is, have_ts ? &ts : NULL, NULL, now, reason, sizeof(reason));
    }
    pthread_mutex_unlock(&r->lock);
    json_object_set_new(obj, "health", json_string(report_health_names[level]));
    json_object_set_new(obj, "health_reason", json_string(reason));
}

typedef struct report_viewers_sum {
    const char *own; /* our own field: counted from local data instead */
    uint64_t sum;
} report_viewers_sum_t;

static void report_viewers_cb(void *opaque, const char *field, const char *value)
{
    report_viewers_sum_t *v = opaque;
    if (v->own && strcmp(field, v->own) == 0)
        return;
    char *end = NULL;
    unsigned long long n = strtoull(value, &end, 10);
    if (end != value && n < (1ull << 40))
        v->sum += n;
}

static uint64_t report_viewers(report_t *r, const char *stream_id)
{
    uint64_t local = r->p.origin ? origin_viewers(r->p.origin, stream_id) : 0;
    char own[STORE_ID_MAX + 80];
    snprintf(own, sizeof(own), "viewers.%s", store_node_id(r->p.store));
    report_viewers_sum_t v = {.own = r->p.origin ? own : NULL, .sum = 0};
    if (store_meta_scan(r->p.store, stream_id, "viewers.", report_viewers_cb, &v) < 0)
        return local;
    return v.sum + local;
}

/* ---- audience ---------------------------------------------------------------- */

/* ISO-8601 UTC text of a wall-clock time in ms. */
static void report_iso8601(int64_t wall_ms, char *out, size_t cap)
{
    time_t secs = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The entry of stream id (lock held), or NULL. */
static report_audience_t *report_audience_find(report_t *r, const char *id)
{
    for (size_t i = 0; i < r->naud; i++)
        if (strcmp(r->aud[i].id, id) == 0)
            return &r->aud[i];
    return NULL;
}

/* A copy of the published audience of a stream aggregated here (any
 * thread), or NULL. */
static json_t *report_audience_copy(report_t *r, const char *id)
{
    json_t *a = NULL;
    pthread_mutex_lock(&r->lock);
    report_audience_t *e = report_audience_find(r, id);
    if (e && e->obj)
        a = json_deep_copy(e->obj);
    pthread_mutex_unlock(&r->lock);
    return a;
}

/* Puts audience object a (taken; NULL or not an object: none known yet,
 * requests are the source) into a live stream's status obj, with the
 * request count req as of now: while requests are the source, the headline
 * follows them at once rather than at the next scan. Top-level "viewers"
 * is the headline. */
static void report_audience_set_live(json_t *obj, json_t *a, uint64_t req)
{
    if (!json_is_object(a)) {
        json_decref(a);
        a = json_pack("{s:s}", "source", "requests");
        if (!a)
            return;
    }
    json_object_set_new(a, "request_viewers", json_integer((json_int_t)req));
    const char *src = json_string_value(json_object_get(a, "source"));
    if (!src || strcmp(src, "beacons") != 0)
        json_object_set_new(a, "viewers", json_integer((json_int_t)req));
    json_t *v = json_object_get(a, "viewers");
    json_object_set_new(obj, "viewers", json_is_integer(v) ? json_incref(v) : json_integer(0));
    json_object_set_new(obj, "audience", a);
}

/* An idle stream's audience: 0 viewers, the request count (sessions still
 * reading an ended playlist) apart, and the last broadcast's totals when
 * the store still has them. */
static void report_audience_set_idle(report_t *r, const char *stream_id, json_t *obj,
                                     uint64_t req)
{
    json_t *a = json_pack("{s:i, s:I}", "viewers", 0, "request_viewers", (json_int_t)req);
    char *text = NULL;
    if (a && store_meta_get(r->p.store, stream_id, "audience.last", &text) == 0 && text) {
        json_t *last = json_loads(text, 0, NULL);
        if (json_is_object(last))
            json_object_set_new(a, "last", last);
        else
            json_decref(last);
    }
    free(text);
    json_object_set_new(obj, "viewers", json_integer(0));
    if (a)
        json_object_set_new(obj, "audience", a);
}

/* Counts a failed audience store call; logs at most once per
 * REPORT_AUDIENCE_WARN_MS, with how many failed since the last line. */
static void report_audience_store_error(report_t *r, const char *what, const char *stream_id,
                                        int rc)
{
    r->aud_errors++;
    int64_t now = clock_mono_ms();
    if (r->aud_warn_ms && now - r->aud_warn_ms < REPORT_AUDIENCE_WARN_MS)
        return;
    log_warn("report",
             "audience: %llu store call(s) failed since the last report, the latest to %s of "
             "stream %s (%s); the last figures stay",
             (unsigned long long)r->aud_errors, what, stream_id, strerror(-rc));
    r->aud_warn_ms = now ? now : 1;
    r->aud_errors = 0;
}

static void report_audience_scan_cb(void *opaque, const char *field, const char *value)
{
    (void)audience_agg_add_record(opaque, field, value);
}

/* A stream that starts being aggregated here while the store still has a
 * fresh "audience" record of it (5 s TTL; withdrawn at a broadcast's end)
 * continues a broadcast another aggregator was counting: a node that took
 * the stream over, or this process restarted. Its totals go on instead of
 * starting from 0 (audience_agg_seed). */
static void report_audience_seed(report_t *r, report_audience_t *e)
{
    char *text = NULL;
    int rc = store_meta_get(r->p.store, e->id, "audience", &text);
    if (rc < 0 && rc != -ENOENT)
        return; /* the store cannot say: look again at the next scan */
    e->seed_checked = true;
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    json_t *peak = json_object_get(j, "peak"), *total = json_object_get(j, "sessions_total"),
           *watch = json_object_get(j, "watch_time_s");
    if (json_is_integer(peak) && json_integer_value(peak) >= 0 && json_is_integer(total) &&
        json_integer_value(total) >= 0 && json_is_number(watch) && json_number_value(watch) >= 0) {
        audience_agg_seed(e->agg, (uint64_t)json_integer_value(peak),
                          (uint64_t)json_integer_value(total),
                          (int64_t)llround(json_number_value(watch) * 1000));
        log_info("report",
                 "audience of stream %s: continuing its broadcast's totals from the store (peak "
                 "%lld, %lld sessions)",
                 e->id, (long long)json_integer_value(peak), (long long)json_integer_value(total));
    }
    json_decref(j);
}

/* One scan of a stream live here (report thread). */
static void report_audience_scan(report_t *r, report_audience_t *e, int64_t wall_ms)
{
    if (!e->seed_checked)
        report_audience_seed(r, e);
    /* The stream's own rendition names bound the per-rendition counts (a
     * packager track without a rung name is "video" or "audio"). */
    const char *names[TRANSCODE_RUNGS_MAX + 2];
    size_t nnames = 0;
    transcode_stream_status_t ts;
    if (r->p.transcode && transcode_stream_status(r->p.transcode, e->id, &ts) == 0 && ts.live &&
        ts.nrenditions > 0) {
        for (size_t i = 0; i < ts.nrenditions && i < TRANSCODE_RUNGS_MAX; i++)
            names[nnames++] = ts.renditions[i].name;
        names[nnames++] = "audio";
        names[nnames++] = "video";
    }
    audience_agg_begin(e->agg, nnames ? names : NULL, nnames);
    int rc = store_meta_scan(r->p.store, e->id, AUDIENCE_FIELD_PREFIX, report_audience_scan_cb,
                             e->agg);
    if (rc < 0) {
        audience_agg_abort(e->agg);
        report_audience_store_error(r, "read the sessions", e->id, rc);
        return;
    }
    audience_figures_t f;
    if ((rc = audience_agg_end(e->agg, &f)) < 0) {
        log_warn("report", "audience of stream %s: this scan is lost (%s)", e->id,
                 strerror(-rc));
        return;
    }
    if (f.ignored) {
        r->aud_ignored += f.ignored;
        int64_t now = clock_mono_ms();
        if (!r->aud_ignored_warn_ms || now - r->aud_ignored_warn_ms >= REPORT_AUDIENCE_WARN_MS) {
            log_warn("report",
                     "audience of stream %s: %llu session record(s) left out since the last "
                     "report (malformed, or over %d a stream)",
                     e->id, (unsigned long long)r->aud_ignored, AUDIENCE_AGG_SESSIONS_MAX);
            r->aud_ignored_warn_ms = now ? now : 1;
            r->aud_ignored = 0;
        }
    }
    e->f = f;
    e->have = true;
    char updated[32];
    report_iso8601(wall_ms, updated, sizeof(updated));
    json_t *obj = audience_figures_json(&f, report_viewers(r, e->id), updated);
    char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    if (!obj || !text) {
        log_warn("report", "audience of stream %s: out of memory for its object", e->id);
        json_decref(obj);
        free(text);
        return;
    }
    pthread_mutex_lock(&r->lock);
    json_t *old = e->obj;
    e->obj = obj;
    pthread_mutex_unlock(&r->lock);
    json_decref(old);
    rc = store_meta_put(r->p.store, e->id, "audience", text, REPORT_AUDIENCE_TTL_MS);
    free(text);
    if (rc < 0)
        report_audience_store_error(r, "write the audience", e->id, rc);
}

/* A stream that left the local set: its totals to "audience.last" and its
 * "audience" record withdrawn (a TTL of 1 ms: the store has no delete for
 * meta). True when the entry can go; false: retry at the next tick. */
static bool report_audience_end(report_t *r, report_audience_t *e, int64_t wall_ms)
{
    if (!e->have)
        return true;
    char ended[32];
    report_iso8601(wall_ms, ended, sizeof(ended));
    json_t *last = audience_last_json(&e->f, ended);
    char *text = last ? json_dumps(last, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(last);
    int rc = text ? store_meta_put(r->p.store, e->id, "audience.last", text,
                                   REPORT_AUDIENCE_LAST_TTL_MS)
                  : -ENOMEM;
    free(text);
    if (rc < 0) {
        report_audience_store_error(r, "write the last totals", e->id, rc);
        if (++e->end_tries < REPORT_AUDIENCE_END_TRIES)
            return false;
        log_warn("report", "audience of stream %s: its totals (peak %llu, %llu sessions) are "
                 "lost: the store did not take them in %d tries", e->id,
                 (unsigned long long)e->f.peak, (unsigned long long)e->f.sessions_total,
                 REPORT_AUDIENCE_END_TRIES);
        return true;
    }
    log_info("report", "audience of stream %s: broadcast over, peak %llu, %llu sessions, %.0f s "
             "watched", e->id, (unsigned long long)e->f.peak,
             (unsigned long long)e->f.sessions_total, (double)e->f.watch_ms_total / 1000.0);
    if ((rc = store_meta_put(r->p.store, e->id, "audience", "{\"viewers\":0}", 1)) < 0)
        report_audience_store_error(r, "withdraw the audience", e->id, rc);
    return true;
}

void report_audience_tick(report_t *r, const char *const *live, size_t nlive, int64_t wall_ms)
{
    for (size_t i = 0; i < r->naud; i++)
        r->aud[i].live = false;
    /* New entries (under the lock: admin threads look entries up). */
    for (size_t i = 0; i < nlive; i++) {
        pthread_mutex_lock(&r->lock);
        report_audience_t *e = report_audience_find(r, live[i]);
        if (!e && r->naud < REPORT_STREAMS_MAX && strlen(live[i]) < STORE_ID_MAX) {
            if (r->naud == r->capaud) {
                size_t cap = r->capaud ? r->capaud * 2 : 8;
                report_audience_t *na = realloc(r->aud, cap * sizeof(*na));
                if (na) {
                    r->aud = na;
                    r->capaud = cap;
                }
            }
            audience_agg_t *agg = NULL;
            if (r->naud < r->capaud && audience_agg_new(&agg) == 0) {
                e = &r->aud[r->naud++];
                memset(e, 0, sizeof(*e));
                memcpy(e->id, live[i], strlen(live[i]) + 1);
                e->agg = agg;
            } else {
                log_warn("report", "audience of stream %s: out of memory, not aggregated",
                         live[i]);
            }
        }
        if (e)
            e->live = true;
        pthread_mutex_unlock(&r->lock);
    }
    /* Scans, without the lock (store calls). Entries only move under the
     * lock, and only this thread moves them. */
    for (size_t i = 0; i < r->naud; i++)
        if (r->aud[i].live)
            report_audience_scan(r, &r->aud[i], wall_ms);
    /* Ended broadcasts: no longer shown as live at once, even while their
     * totals wait for the store. */
    for (size_t i = 0; i < r->naud;) {
        report_audience_t *e = &r->aud[i];
        if (!e->live && e->obj) {
            pthread_mutex_lock(&r->lock);
            json_t *obj = e->obj;
            e->obj = NULL;
            pthread_mutex_unlock(&r->lock);
            json_decref(obj);
        }
        if (e->live || !report_audience_end(r, e, wall_ms)) {
            i++;
            continue;
        }
        audience_agg_free(e->agg);
        pthread_mutex_lock(&r->lock);
        r->aud[i] = r->aud[--r->naud];
        pthread_mutex_unlock(&r->lock);
    }
}

/* The published audience objects of the streams aggregated here, copied
 * (lock held only to copy). *n entries; the caller frees with
 * report_audience_snap_free. */
typedef struct report_audience_snap {
    char id[STORE_ID_MAX];
    json_t *obj;
} report_audience_snap_t;

static report_audience_snap_t *report_audience_snap(report_t *r, size_t *n)
{
    *n = 0;
    pthread_mutex_lock(&r->lock);
    report_audience_snap_t *s = r->naud ? calloc(r->naud, sizeof(*s)) : NULL;
    for (size_t i = 0; s && i < r->naud; i++) {
        if (!r->aud[i].obj)
            continue;
        memcpy(s[*n].id, r->aud[i].id, sizeof(s[*n].id));
        if ((s[*n].obj = json_deep_copy(r->aud[i].obj)))
            (*n)++;
    }
    pthread_mutex_unlock(&r->lock);
    return s;
}

static void report_audience_snap_free(report_audience_snap_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(s[i].obj);
    free(s);
}

static double report_json_number(json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

/* The streams live on this node for the audience: ingest live, or a
 * worker still live (waiting for its publisher within the reconnect
 * window). 0 and *out a malloc'd array of *n ids (caller frees), or -ENOMEM
 * (then nothing is known: the caller must not take it for "none live"). */
static int report_local_live(report_t *r, char (**out)[STORE_ID_MAX], size_t *n)
{
    *out = NULL;
    *n = 0;
    ingest_stream_stats_t *live = NULL;
    size_t nlive = 0;
    if (r->p.ingest && ingest_list_streams(r->p.ingest, &live, &nlive) < 0)
        return -ENOMEM;
    transcode_stream_status_t *all = NULL;
    size_t nall = 0;
    if (r->p.transcode && transcode_list(r->p.transcode, &all, &nall) < 0) {
        free(live);
        return -ENOMEM;
    }
    char(*ids)[STORE_ID_MAX] = malloc((nlive + nall + 1) * sizeof(*ids));
    for (size_t i = 0; ids && i < nlive + nall; i++) {
        if (i >= nlive && !all[i - nlive].live)
            continue;
        const char *id = i < nlive ? live[i].stream_id : all[i - nlive].stream_id;
        bool dup = false;
        for (size_t j = 0; j < *n && !dup; j++)
            dup = strcmp(ids[j], id) == 0;
        if (!dup)
            snprintf(ids[(*n)++], STORE_ID_MAX, "%s", id);
    }
    free(live);
    free(all);
    if (!ids)
        return -ENOMEM;
    *out = ids;
    return 0;
}

static void report_tick_audience(report_t *r)
{
    size_t n = 0;
    char(*ids)[STORE_ID_MAX] = NULL;
    if (report_local_live(r, &ids, &n) < 0) {
        log_warn("report", "audience: out of memory listing the live streams; tick skipped");
        return;
    }
    const char **list = malloc((n + 1) * sizeof(*list));
    if (!list) {
        log_warn("report", "audience: out of memory listing the live streams; tick skipped");
        free(ids);
        return;
    }
    for (size_t i = 0; i < n; i++)
        list[i] = ids[i];
    report_audience_tick(r, list, n, clock_wall_ms());
    free(list);
    free(ids);
}

void report_stream_status(report_t *r, const char *stream_id, json_t *obj)
{
    ingest_stream_stats_t is;
    transcode_stream_status_t ts;
    if (r->p.ingest && ingest_stream_stats(r->p.ingest, stream_id, &is) == 0) {
        report_live_status(r, &is, obj, clock_mono_ms());
        json_object_set_new(obj, "reconnecting", json_false());
    } else if (r->p.transcode && transcode_stream_status(r->p.transcode, stream_id, &ts) == 0 &&
               ts.live) {
        /* The publisher dropped; its playlists wait for it to come back
         * (--reconnect-window): still live for viewers, no ingest. */
        json_object_set_new(obj, "state", json_string("live"));
        json_object_set_new(obj, "reconnecting", json_true());
        report_transcode_status(obj, &ts);
        json_object_set_new(obj, "health", json_string(report_health_names[2]));
        json_object_set_new(obj, "health_reason",
                            json_string("the publisher dropped; waiting for it to come back"));
    } else {
        /* Live on another node? Its report thread keeps "status" fresh. */
        char *text = NULL;
        json_t *remote = NULL;
        if (store_meta_get(r->p.store, stream_id, "status", &text) == 0 && text)
            remote = json_loads(text, 0, NULL);
        free(text);
        if (json_is_object(remote)) {
            const char *k;
            json_t *val;
            json_object_foreach(remote, k, val)
            {
                if (strcmp(k, "viewers") != 0 && strcmp(k, "id") != 0 && strcmp(k, "name") != 0 &&
                    strcmp(k, "playback_url") != 0)
                    json_object_set(obj, k, val);
            }
        } else {
            json_object_set_new(obj, "state", json_string("idle"));
        }
        json_decref(remote);
    }
    /* Viewers: the audience of a live stream (aggregated here, else as its
     * ingest node wrote it), the request count as of now when no beacons. */
    uint64_t req = report_viewers(r, stream_id);
    const char *state = json_string_value(json_object_get(obj, "state"));
    if (state && strcmp(state, "live") == 0) {
        json_t *a = report_audience_copy(r, stream_id);
        if (!a)
            a = json_deep_copy(json_object_get(obj, "audience"));
        report_audience_set_live(obj, a, req);
    } else {
        report_audience_set_idle(r, stream_id, obj, req);
    }
    /* Its last publish ended for its input (over --max-input-*), from
     * whichever node it was: {"reason", "at"}. */
    char *text = NULL;
    if (store_meta_get(r->p.store, stream_id, "refusal", &text) == 0 && text) {
        json_t *j = json_loads(text, 0, NULL);
        if (json_is_object(j))
            json_object_set_new(obj, "last_refusal", j);
        else
            json_decref(j);
    }
    free(text);
}

/* ---- the report thread ------------------------------------------------------- */

static void report_sample_now(report_t *r, report_sample_t *s)
{
    memset(s, 0, sizeof(*s));
    s->ms = clock_mono_ms();
    origin_stats_t os;
    origin_get_stats(r->p.origin, &os);
    for (size_t k = 0; k < ORIGIN_KINDS; k++) {
        s->bytes += os.bytes[k];
        for (size_t c = 0; c < ORIGIN_CODES; c++)
            s->requests[k] += os.requests[k][c];
    }
    metrics_process_t pr;
    (void)metrics_process_read(&pr);
    s->cpu_s = pr.cpu_seconds;
}

/* Rates between the oldest and the newest sample (lock held). */
typedef struct report_rates {
    double bytes_per_s;
    double requests_per_s[ORIGIN_KINDS];
    double cpu_percent;
} report_rates_t;

static void report_rates(const report_t *r, report_rates_t *out)
{
    memset(out, 0, sizeof(*out));
    if (r->nsamples < 2)
        return;
    size_t newest = (r->next_sample + REPORT_SAMPLES - 1) % REPORT_SAMPLES;
    size_t oldest = r->nsamples < REPORT_SAMPLES ? 0 : r->next_sample;
    const report_sample_t *a = &r->samples[oldest], *b = &r->samples[newest];
    double dt = (double)(b->ms - a->ms) / 1000.0;
    if (dt <= 0)
        return;
    out->bytes_per_s = (double)(b->bytes - a->bytes) / dt;
    for (size_t k = 0; k < ORIGIN_KINDS; k++)
        out->requests_per_s[k] = (double)(b->requests[k] - a->requests[k]) / dt;
    out->cpu_percent = (b->cpu_s - a->cpu_s) / dt * 100.0;
}

static void report_store_warn(report_t *r, int rc, const char *what)
{
    int64_t now = clock_mono_ms();
    if (now - r->store_warn_ms < 30000)
        return;
    r->store_warn_ms = now;
    log_warn("report", "could not write %s to the store (%s)", what, strerror(-rc));
}

static void report_emit_health(report_t *r, const char *id, int health, int previous,
                               const char *reason)
{
    log_info("report", "stream %s health %s -> %s: %s", id, report_health_names[previous],
             report_health_names[health], reason);
    if (!r->p.event_cb)
        return;
    json_t *data = json_object();
    if (!data)
        return;
    json_object_set_new(data, "health", json_string(report_health_names[health]));
    json_object_set_new(data, "previous", json_string(report_health_names[previous]));
    json_object_set_new(data, "reason", json_string(reason));
    r->p.event_cb(r->p.event_opaque, "stream.health_changed", id, data);
    json_decref(data);
}

/* One tick: live streams' health and status records, viewer records. */
static void report_tick_streams(report_t *r, int64_t now)
{
    ingest_stream_stats_t *live = NULL;
    size_t nlive = 0;
    if (r->p.ingest && ingest_list_streams(r->p.ingest, &live, &nlive) < 0)
        nlive = 0;
    origin_stream_viewers_t *vw = NULL;
    size_t nvw = 0;
    if (r->p.origin && origin_viewers_list(r->p.origin, &vw, &nvw) < 0)
        nvw = 0;

    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->nstreams; i++) {
        r->streams[i].was_live = r->streams[i].live;
        r->streams[i].live = false;
        r->streams[i].viewers = 0;
    }
    for (size_t i = 0; i < nlive; i++) {
        report_stream_t *rs = report_stream_get(r, live[i].stream_id);
        if (rs)
            rs->live = true;
    }
    for (size_t i = 0; i < nvw; i++) {
        report_stream_t *rs = report_stream_get(r, vw[i].stream_id);
        if (rs)
            rs->viewers = vw[i].viewers;
    }
    pthread_mutex_unlock(&r->lock);

    /* Health, with what changed since the last tick. */
    for (size_t i = 0; i < nlive; i++) {
        const ingest_stream_stats_t *is = &live[i];
        transcode_stream_status_t ts;
        bool have_ts = r->p.transcode &&
                       transcode_stream_status(r->p.transcode, is->stream_id, &ts) == 0 && ts.live;
        char reason[160];
        int previous = -1, health;
        pthread_mutex_lock(&r->lock);
        report_stream_t *rs = report_stream_find(r, is->stream_id);
        if (!rs) {
            pthread_mutex_unlock(&r->lock);
            continue;
        }
        if (is->dropped_frames > rs->dropped)
            rs->dropped_ms = now;
        if (is->late_frames > rs->late)
            rs->late_ms = now;
        rs->dropped = is->dropped_frames;
        rs->late = is->late_frames;
        health = report_judge(r, is, have_ts ? &ts : NULL, rs, now, reason, sizeof(reason));
        if (rs->have_health)
            previous = rs->health;
        rs->have_health = true;
        rs->health = health;
        snprintf(rs->reason, sizeof(rs->reason), "%s", reason);
        pthread_mutex_unlock(&r->lock);
        if (previous >= 0 && previous != health)
            report_emit_health(r, is->stream_id, health, previous, reason);

        /* The status record other nodes' admin APIs read. */
        json_t *obj = json_object();
        if (!obj)
            continue;
        report_live_status(r, is, obj, now);
        /* Its audience as of the last scan: every node's API shows it. */
        json_t *aud = report_audience_copy(r, is->stream_id);
        if (aud) {
            json_object_set(obj, "viewers", json_object_get(aud, "viewers"));
            json_object_set_new(obj, "audience", aud);
        }
        char *text = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(6));
        json_decref(obj);
        if (!text)
            continue;
        int rc = store_meta_put(r->p.store, is->stream_id, "status", text, REPORT_STATUS_TTL_MS);
        free(text);
        if (rc < 0)
            report_store_warn(r, rc, "a stream status");
    }

    /* This origin's viewers per stream, for 3 target durations; a stream
     * whose viewers left gets a last 0 so that the sum drops at once. */
    if (r->p.origin) {
        char field[STORE_ID_MAX + 80];
        snprintf(field, sizeof(field), "viewers.%s", store_node_id(r->p.store));
        int64_t ttl = (int64_t)(3 * ceil(r->p.segment_duration > 0 ? r->p.segment_duration : 2) *
                                1000);
        pthread_mutex_lock(&r->lock);
        size_t n = r->nstreams;
        report_stream_t *copy = n ? malloc(n * sizeof(*copy)) : NULL;
        if (copy)
            memcpy(copy, r->streams, n * sizeof(*copy));
        pthread_mutex_unlock(&r->lock);
        for (size_t i = 0; copy && i < n; i++) {
            if (copy[i].viewers == 0 && !copy[i].viewers_put)
                continue;
            char val[32];
            snprintf(val, sizeof(val), "%llu", (unsigned long long)copy[i].viewers);
            int rc = store_meta_put(r->p.store, copy[i].id, field, val, ttl);
            if (rc < 0)
                report_store_warn(r, rc, "a viewer count");
            pthread_mutex_lock(&r->lock);
            report_stream_t *rs = report_stream_find(r, copy[i].id);
            if (rs)
                rs->viewers_put = copy[i].viewers > 0;
            pthread_mutex_unlock(&r->lock);
        }
        free(copy);
    }

    /* A publish that ended here: replace its status record at once rather
     * than let other nodes read "live" until it expires. A node that took
     * the stream over rewrites it within a second. */
    pthread_mutex_lock(&r->lock);
    size_t nended = 0;
    char(*ended)[STORE_ID_MAX] = r->nstreams ? malloc(r->nstreams * sizeof(*ended)) : NULL;
    for (size_t i = 0; ended && i < r->nstreams; i++) {
        if (r->streams[i].was_live && !r->streams[i].live) {
            memcpy(ended[nended++], r->streams[i].id, STORE_ID_MAX);
            r->streams[i].was_live = false;
        }
    }
    pthread_mutex_unlock(&r->lock);
    for (size_t i = 0; i < nended; i++) {
        int rc = store_meta_put(r->p.store, ended[i], "status", "{\"state\":\"idle\"}",
                                REPORT_STATUS_TTL_MS);
        if (rc < 0)
            report_store_warn(r, rc, "a stream status");
    }
    free(ended);

    /* Forget streams that are neither live here nor watched here. */
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->nstreams;) {
        report_stream_t *rs = &r->streams[i];
        if (!rs->live && !rs->was_live && rs->viewers == 0 && !rs->viewers_put) {
            r->streams[i] = r->streams[--r->nstreams];
            continue;
        }
        if (!rs->live)
            rs->have_health = false; /* a new publish starts afresh */
        i++;
    }
    pthread_mutex_unlock(&r->lock);
    free(live);
    free(vw);
}

typedef struct report_refusals {
    ingest_input_refusal_t list[INGEST_INPUT_REFUSALS];
    size_t n;
} report_refusals_t;

static void report_refusal_cb(void *opaque, const ingest_input_refusal_t *x)
{
    report_refusals_t *rf = opaque;
    if (rf->n < INGEST_INPUT_REFUSALS)
        rf->list[rf->n++] = *x;
}

/* Puts this node's new input refusals in the store, where every node's
 * API finds them (report_stream_status). */
static void report_tick_refusals(report_t *r)
{
    report_refusals_t rf = {.n = 0};
    ingest_input_refusals(r->p.ingest, &r->refusal_seq, report_refusal_cb, &rf);
    for (size_t i = 0; i < rf.n; i++) {
        char at[32];
        time_t secs = (time_t)(rf.list[i].wall_ms / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_t *j = json_pack("{s:s, s:s}", "reason", rf.list[i].reason, "at", at);
        char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        if (text && store_meta_put(r->p.store, rf.list[i].stream_id, "refusal", text,
                                   REPORT_REFUSAL_TTL_MS) < 0)
            log_warn("report", "stream %s: its input refusal could not be stored",
                     rf.list[i].stream_id);
        free(text);
    }
}

static void *report_main(void *arg)
{
    report_t *r = arg;
    pthread_mutex_lock(&r->lock);
    while (!r->stop) {
        pthread_mutex_unlock(&r->lock);
        report_sample_t s;
        report_sample_now(r, &s);
        int64_t now = clock_mono_ms();
        pthread_mutex_lock(&r->lock);
        r->samples[r->next_sample] = s;
        r->next_sample = (r->next_sample + 1) % REPORT_SAMPLES;
        if (r->nsamples < REPORT_SAMPLES)
            r->nsamples++;
        pthread_mutex_unlock(&r->lock);
        if (!r->aud_scan_ms || now - r->aud_scan_ms >= REPORT_AUDIENCE_PERIOD_MS - 100) {
            r->aud_scan_ms = now ? now : 1;
            report_tick_audience(r);
        }
        report_tick_streams(r, now);
        report_tick_refusals(r);
        pthread_mutex_lock(&r->lock);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += 1;
        while (!r->stop && pthread_cond_timedwait(&r->cond, &r->lock, &until) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static int report_create(const report_params_t *params, bool start, report_t **out)
{
    *out = NULL;
    if (!params || !params->store)
        return -EINVAL;
    report_t *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->p = *params;
    if (r->p.segment_duration <= 0)
        r->p.segment_duration = 2;
    r->start_ms = clock_mono_ms();
    r->streams = calloc(REPORT_STREAMS_MAX, sizeof(*r->streams));
    if (!r->streams) {
        free(r);
        return -ENOMEM;
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (!start) {
        *out = r;
        return 0;
    }
    int rc = pthread_create(&r->thread, NULL, report_main, r);
    if (rc != 0) {
        report_free(r);
        return -rc;
    }
    pthread_setname_np(r->thread, "report");
    r->started = true;
    *out = r;
    return 0;
}

int report_new(const report_params_t *params, report_t **out)
{
    return report_create(params, true, out);
}

int report_new_unstarted(const report_params_t *params, report_t **out)
{
    return report_create(params, false, out);
}

void report_free(report_t *r)
{
    if (!r)
        return;
    if (r->started) {
        pthread_mutex_lock(&r->lock);
        r->stop = true;
        pthread_cond_signal(&r->cond);
        pthread_mutex_unlock(&r->lock);
        pthread_join(r->thread, NULL);
    }
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    for (size_t i = 0; i < r->naud; i++) {
        /* Shutdown is not the broadcast's end: with a shared store another
         * node carries the stream on, so no "audience.last" here. */
        audience_agg_free(r->aud[i].agg);
        json_decref(r->aud[i].obj);
    }
    free(r->aud);
    free(r->streams);
    free(r);
}

/* ---- /api/v1/stats ------------------------------------------------------------- */

json_t *report_stats(report_t *r)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    report_rates_t rates;
    pthread_mutex_lock(&r->lock);
    report_rates(r, &rates);
    pthread_mutex_unlock(&r->lock);

    json_object_set_new(o, "uptime_s", json_integer((clock_mono_ms() - r->start_ms) / 1000));
    json_object_set_new(o, "version", json_string(SLUICE_VERSION));
    json_object_set_new(o, "node_id", json_string(store_node_id(r->p.store)));

    ingest_stream_stats_t *live = NULL;
    size_t nlive = 0;
    if (r->p.ingest && ingest_list_streams(r->p.ingest, &live, &nlive) < 0)
        nlive = 0;
    double kbps = 0;
    for (size_t i = 0; i < nlive; i++)
        kbps += live[i].bitrate_kbps;
    free(live);
    json_object_set_new(o, "live_streams", json_integer((json_int_t)nlive));
    json_object_set_new(o, "ingest_bitrate_kbps", json_integer((json_int_t)lround(kbps)));
    if (r->p.ingest) {
        ingest_stats_t st;
        ingest_get_stats(r->p.ingest, &st);
        json_t *in = json_object();
        json_object_set_new(in, "connections_open", json_integer((json_int_t)st.connections_open));
        json_object_set_new(in, "publishers_live", json_integer((json_int_t)st.publishers_live));
        json_object_set_new(in, "bad_keys", json_integer((json_int_t)st.bad_keys));
        json_object_set_new(in, "dropped_packets", json_integer((json_int_t)st.dropped_packets));
        json_object_set_new(o, "ingest", in);
    }

    origin_stats_t os;
    origin_get_stats(r->p.origin, &os);
    json_t *eg = json_object();
    json_object_set_new(eg, "bytes_per_s", json_integer((json_int_t)llround(rates.bytes_per_s)));
    json_object_set_new(eg, "bitrate_kbps",
                        json_integer((json_int_t)llround(rates.bytes_per_s * 8 / 1000)));
    json_t *rq = json_object();
    double total = 0;
    for (size_t k = 0; k < ORIGIN_KINDS; k++) {
        json_object_set_new(rq, origin_kind_name((origin_kind_t)k),
                            json_real(round(rates.requests_per_s[k] * 100) / 100));
        total += rates.requests_per_s[k];
    }
    json_object_set_new(rq, "total", json_real(round(total * 100) / 100));
    json_object_set_new(eg, "requests_per_s", rq);
    json_object_set_new(eg, "connections_open", json_integer((json_int_t)os.connections_open));
    json_object_set_new(eg, "connections_refused",
                        json_integer((json_int_t)os.connections_refused));
    json_object_set_new(eg, "held_requests", json_integer((json_int_t)os.held_requests));
    json_object_set_new(eg, "held_refused", json_integer((json_int_t)os.held_refused));
    json_object_set_new(eg, "hints_moved", json_integer((json_int_t)os.hints_moved));
    json_object_set_new(eg, "rung_demand_writes", json_integer((json_int_t)os.demand_writes));
    json_object_set_new(eg, "rung_wake_holds", json_integer((json_int_t)os.cold_holds));
    json_t *bc = json_object();
    for (size_t i = 0; i < ORIGIN_BEACON_RESULTS; i++)
        json_object_set_new(bc, origin_beacon_result_name((origin_beacon_result_t)i),
                            json_integer((json_int_t)os.beacons[i]));
    json_object_set_new(bc, "sessions", json_integer((json_int_t)os.beacon_sessions));
    json_object_set_new(bc, "store_errors", json_integer((json_int_t)os.beacon_store_errors));
    json_object_set_new(eg, "beacons", bc);
    json_object_set_new(o, "egress", eg);
    json_object_set_new(o, "viewers", json_integer((json_int_t)os.viewer_sessions));
    /* The audience of the streams live here (all origins), as last scanned. */
    size_t naud = 0;
    report_audience_snap_t *snap = report_audience_snap(r, &naud);
    double aud_viewers = 0;
    for (size_t i = 0; i < naud; i++)
        aud_viewers += report_json_number(snap[i].obj, "viewers");
    report_audience_snap_free(snap, naud);
    json_object_set_new(o, "audience", json_pack("{s:I, s:I}", "viewers", (json_int_t)aud_viewers,
                                                 "streams", (json_int_t)naud));

    json_t *tr = json_object();
    if (r->p.transcode) {
        transcode_stats_t tst;
        transcode_get_stats(r->p.transcode, &tst);
        transcode_stream_status_t *all = NULL;
        size_t n = 0;
        if (transcode_list(r->p.transcode, &all, &n) < 0)
            n = 0;
        double load = 0;
        double slowest = 0;
        size_t streams = 0;
        for (size_t i = 0; i < n; i++) {
            if (!all[i].live)
                continue;
            streams++;
            if (all[i].speed > 0) {
                load += 1.0 / all[i].speed;
                if (slowest == 0 || all[i].speed < slowest)
                    slowest = all[i].speed;
            }
        }
        free(all);
        json_object_set_new(tr, "streams", json_integer((json_int_t)streams));
        json_object_set_new(tr, "workers", json_integer(tst.workers));
        json_object_set_new(tr, "cpus", json_integer(tst.cpus));
        json_object_set_new(tr, "load", json_real(round(load * 100) / 100));
        json_object_set_new(tr, "slowest_speed", json_real(round(slowest * 100) / 100));
    }
    json_object_set_new(o, "transcode", tr);

    store_stats_t ss;
    store_get_stats(r->p.store, &ss);
    json_t *so = json_object();
    json_object_set_new(so, "backend", json_string(store_backend_name(r->p.store)));
    json_object_set_new(so, "connected", json_boolean(ss.connected));
    json_object_set_new(so, "errors", json_integer((json_int_t)ss.errors));
    json_object_set_new(so, "operations",
                        json_integer((json_int_t)(ss.commits + ss.gets + ss.registry_ops +
                                                  ss.meta_ops)));
    if (strcmp(store_backend_name(r->p.store), "memory") == 0) {
        json_object_set_new(so, "memory_bytes", json_integer((json_int_t)ss.memory_bytes));
        json_object_set_new(so, "memory_limit_bytes", json_integer((json_int_t)ss.memory_limit));
        json_object_set_new(so, "evictions", json_integer((json_int_t)ss.evictions));
    }
    if (ss.sentinel) {
        /* The admin API may name addresses (never on the public /readyz). */
        json_object_set_new(so, "mode", json_string("sentinel"));
        json_object_set_new(so, "master", ss.master[0] ? json_string(ss.master) : json_null());
        json_object_set_new(so, "master_name", json_string(ss.master_name));
        json_t *sn = json_object();
        json_object_set_new(sn, "configured", json_integer(ss.sentinels));
        json_object_set_new(sn, "reachable", json_integer(ss.sentinels_up));
        json_object_set_new(so, "sentinels", sn);
        json_object_set_new(so, "failovers", json_integer((json_int_t)ss.failovers));
        json_object_set_new(so, "early_switches", json_integer((json_int_t)ss.early_switches));
        char when[40];
        if (ss.last_failover_ms > 0)
            report_iso8601(ss.last_failover_ms, when, sizeof(when));
        json_object_set_new(so, "last_failover",
                            ss.last_failover_ms > 0 ? json_string(when) : json_null());
        json_object_set_new(so, "last_outage_ms", json_integer(ss.last_outage_ms));
        json_object_set_new(so, "replica_wait_timeouts",
                            json_integer((json_int_t)ss.replica_wait_timeouts));
    }
    json_object_set_new(o, "store", so);

    metrics_process_t pr;
    (void)metrics_process_read(&pr);
    json_t *po = json_object();
    json_object_set_new(po, "cpu_percent", json_real(round(rates.cpu_percent * 10) / 10));
    json_object_set_new(po, "cpu_seconds", json_real(round(pr.cpu_seconds * 100) / 100));
    json_object_set_new(po, "rss_bytes", json_integer((json_int_t)pr.rss_bytes));
    json_object_set_new(po, "open_fds", json_integer((json_int_t)pr.open_fds));
    json_object_set_new(o, "process", po);
    return o;
}

/* ---- /metrics ------------------------------------------------------------------- */

/* sluice_srt_*: SRT publishers' link figures, labelled by stream only. */
static void report_metrics_srt(metrics_buf_t *b, const ingest_stream_stats_t *live, size_t n)
{
    static const struct {
        const char *name, *type, *help;
    } fams[] = {
        {"sluice_srt_rtt_seconds", "gauge", "Round-trip time to the SRT publisher."},
        {"sluice_srt_latency_seconds", "gauge", "Negotiated SRT latency (receiver TSBPD delay)."},
        {"sluice_srt_packets_received_total", "counter", "SRT data packets received."},
        {"sluice_srt_packets_lost_total", "counter",
         "SRT packets detected missing (most are then retransmitted)."},
        {"sluice_srt_packets_retransmitted_total", "counter",
         "Retransmitted SRT packets that arrived."},
        {"sluice_srt_packets_dropped_total", "counter",
         "SRT packets that came too late to play or never came (lost for good)."},
        {"sluice_srt_receive_buffer_seconds", "gauge", "Media the SRT receive buffer holds."},
    };
    for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]); f++) {
        metrics_family(b, fams[f].name, fams[f].type, fams[f].help);
        for (size_t i = 0; i < n; i++) {
            const ingest_stream_stats_t *is = &live[i];
            if (strcmp(is->protocol, "srt") != 0 || !is->has_srt)
                continue;
            const char *labels[] = {"stream", is->stream_id, NULL};
            const ingest_srt_stats_t *s = &is->srt;
            switch (f) {
            case 0: metrics_sample(b, fams[f].name, labels, s->rtt_ms / 1000.0); break;
            case 1: metrics_sample(b, fams[f].name, labels, s->latency_ms / 1000.0); break;
            case 2: metrics_sample_u64(b, fams[f].name, labels, s->packets_received); break;
            case 3: metrics_sample_u64(b, fams[f].name, labels, s->packets_lost); break;
            case 4: metrics_sample_u64(b, fams[f].name, labels, s->packets_retransmitted); break;
            case 5: metrics_sample_u64(b, fams[f].name, labels, s->packets_dropped); break;
            default: metrics_sample(b, fams[f].name, labels, s->recv_buffer_ms / 1000.0); break;
            }
        }
    }
}

static void report_metrics_ingest(report_t *r, metrics_buf_t *b, size_t *nlive_out)
{
    ingest_stream_stats_t *live = NULL;
    size_t n = 0;
    if (r->p.ingest && ingest_list_streams(r->p.ingest, &live, &n) < 0)
        n = 0;
    *nlive_out = n;
    metrics_family(b, "sluice_ingest_bytes_total", "counter",
                   "Audio and video payload bytes received from the stream's publisher.");
    for (size_t i = 0; i < n; i++)
        metrics_sample_u64(b, "sluice_ingest_bytes_total",
                           (const char *[]){"stream", live[i].stream_id, NULL}, live[i].bytes);
    metrics_family(b, "sluice_ingest_bytes_per_second", "gauge",
                   "Input rate (audio and video payload) over the last seconds (sliding window).");
    for (size_t i = 0; i < n; i++)
        metrics_sample(b, "sluice_ingest_bytes_per_second",
                       (const char *[]){"stream", live[i].stream_id, NULL},
                       round(live[i].bitrate_kbps * 1000 / 8));
    metrics_family(b, "sluice_ingest_frames_total", "counter",
                   "Access units received, by track (video, audio).");
    for (size_t i = 0; i < n; i++) {
        metrics_sample_u64(b, "sluice_ingest_frames_total",
                           (const char *[]){"stream", live[i].stream_id, "track", "video", NULL},
                           live[i].video_frames);
        metrics_sample_u64(b, "sluice_ingest_frames_total",
                           (const char *[]){"stream", live[i].stream_id, "track", "audio", NULL},
                           live[i].audio_frames);
    }
    metrics_family(b, "sluice_ingest_frames_per_second", "gauge",
                   "Input video frame rate over the last seconds (sliding window).");
    for (size_t i = 0; i < n; i++)
        metrics_sample(b, "sluice_ingest_frames_per_second",
                       (const char *[]){"stream", live[i].stream_id, NULL}, live[i].fps);
    metrics_family(b, "sluice_ingest_dropped_frames_total", "counter",
                   "Access units dropped because the stream's media queue was full.");
    for (size_t i = 0; i < n; i++)
        metrics_sample_u64(b, "sluice_ingest_dropped_frames_total",
                           (const char *[]){"stream", live[i].stream_id, NULL},
                           live[i].dropped_frames);
    metrics_family(b, "sluice_ingest_late_frames_total", "counter",
                   "Access units whose timestamp went backwards or jumped more than 1 s.");
    for (size_t i = 0; i < n; i++)
        metrics_sample_u64(b, "sluice_ingest_late_frames_total",
                           (const char *[]){"stream", live[i].stream_id, NULL},
                           live[i].late_frames);
    metrics_family(b, "sluice_ingest_uptime_seconds", "gauge",
                   "Time since the stream's current publish started.");
    for (size_t i = 0; i < n; i++)
        metrics_sample(b, "sluice_ingest_uptime_seconds",
                       (const char *[]){"stream", live[i].stream_id, NULL},
                       live[i].uptime_ms / 1000.0);
    report_metrics_srt(b, live, n);
    free(live);

    if (r->p.ingest) {
        ingest_stats_t st;
        ingest_get_stats(r->p.ingest, &st);
        metrics_family(b, "sluice_ingest_connections_open", "gauge", "Open RTMP connections.");
        metrics_sample_u64(b, "sluice_ingest_connections_open", NULL, st.connections_open);
        metrics_family(b, "sluice_ingest_connections_total", "counter",
                       "RTMP connections accepted.");
        metrics_sample_u64(b, "sluice_ingest_connections_total", NULL, st.connections_accepted);
        metrics_family(b, "sluice_ingest_bad_keys_total", "counter",
                       "Publishes refused for an unknown stream key.");
        metrics_sample_u64(b, "sluice_ingest_bad_keys_total", NULL, st.bad_keys);
        metrics_family(b, "sluice_ingest_stalled_publishers_total", "counter",
                       "Publishers that sent no media for --rtmp-stall-timeout and were "
                       "dropped.");
        metrics_sample_u64(b, "sluice_ingest_stalled_publishers_total", NULL,
                           st.stalled_publishers);
        metrics_family(b, "sluice_ingest_refused_total", "counter",
                       "Connections and publishes refused or ended by a limit, by reason.");
        const metrics_by_t refused[] = {{"max_connections", st.refused_max_connections},
                                        {"per_address", st.refused_per_ip},
                                        {"locked_out", st.refused_locked_out},
                                        {"max_publishers", st.refused_max_publishers},
                                        {"store_timeout", st.store_timeouts},
                                        {"auth_busy", st.refused_auth_busy},
                                        {"input_limits", st.refused_input},
                                        {"protocol_limit", st.limit_violations}};
        metrics_samples_by(b, "sluice_ingest_refused_total", "reason", refused,
                           sizeof(refused) / sizeof(refused[0]));
    }
}

static void report_metrics_webhook(report_t *r, metrics_buf_t *b)
{
    webhook_stats_t ws;
    webhook_get_stats(r->p.webhook, &ws);
    metrics_family(b, "sluice_webhook_auth_total", "counter",
                   "Publish authorisations by result: accepted (2xx), rejected (the webhook said "
                   "no), failed (no answer: refused as well).");
    const metrics_by_t auth[] = {{"accepted", ws.auth_accepted},
                                 {"rejected", ws.auth_rejected},
                                 {"failed", ws.auth_failed}};
    metrics_samples_by(b, "sluice_webhook_auth_total", "result", auth,
                       sizeof(auth) / sizeof(auth[0]));
    metrics_family(b, "sluice_webhook_events_total", "counter",
                   "Event deliveries by result: delivered, retried (attempts after a failure), "
                   "dropped (queue full or shutdown), failed (given up).");
    const metrics_by_t ev[] = {{"delivered", ws.events_delivered},
                               {"retried", ws.events_retried},
                               {"dropped", ws.events_dropped},
                               {"failed", ws.events_failed}};
    metrics_samples_by(b, "sluice_webhook_events_total", "result", ev, sizeof(ev) / sizeof(ev[0]));
    metrics_family(b, "sluice_webhook_events_queued", "gauge",
                   "Events waiting, in flight or waiting to be retried.");
    metrics_sample_u64(b, "sluice_webhook_events_queued", NULL, ws.events_queued);
}

/* Simulcast outputs of the streams live on this node (each node reports
 * the outputs its own engine sends), from the engine's status record. */
static void report_metrics_outputs(report_t *r, metrics_buf_t *b)
{
    transcode_stream_status_t *all = NULL;
    size_t n = 0;
    if (r->p.transcode && transcode_list(r->p.transcode, &all, &n) < 0)
        n = 0;
    outputs_api_metric_t *rows = NULL;
    size_t nrows = 0;
    for (size_t i = 0; i < n; i++)
        if (all[i].live && outputs_api_metrics(r->p.store, all[i].stream_id, &rows, &nrows) < 0)
            break;
    free(all);
#define OUTPUT_LABELS(m) \
    (const char *[]) { "stream", (m)->stream, "output", (m)->id, "rendition", (m)->rendition, NULL }
    metrics_family(b, "sluice_output_up", "gauge",
                   "1 while a simulcast output is sending to its destination (state live), else "
                   "0 (connecting, retrying, failed).");
    for (size_t i = 0; i < nrows; i++)
        metrics_sample_u64(b, "sluice_output_up", OUTPUT_LABELS(&rows[i]), rows[i].up);
    metrics_family(b, "sluice_output_bytes_total", "counter",
                   "Bytes a simulcast output sent to its destination in the current broadcast.");
    for (size_t i = 0; i < nrows; i++)
        metrics_sample_u64(b, "sluice_output_bytes_total", OUTPUT_LABELS(&rows[i]),
                           rows[i].bytes);
    metrics_family(b, "sluice_output_bitrate_kbps", "gauge",
                   "A simulcast output's sending rate over the last seconds.");
    for (size_t i = 0; i < nrows; i++)
        metrics_sample(b, "sluice_output_bitrate_kbps", OUTPUT_LABELS(&rows[i]),
                       rows[i].bitrate_kbps);
    metrics_family(b, "sluice_output_dropped_packets_total", "counter",
                   "Packets a simulcast output dropped because its destination was too slow.");
    for (size_t i = 0; i < nrows; i++)
        metrics_sample_u64(b, "sluice_output_dropped_packets_total", OUTPUT_LABELS(&rows[i]),
                           rows[i].dropped_packets);
    metrics_family(b, "sluice_output_retries_total", "counter",
                   "Reconnections of a simulcast output to its destination in the current "
                   "broadcast.");
    for (size_t i = 0; i < nrows; i++)
        metrics_sample_u64(b, "sluice_output_retries_total", OUTPUT_LABELS(&rows[i]),
                           rows[i].retries);
#undef OUTPUT_LABELS
    free(rows);
}

static void report_metrics_transcode(report_t *r, metrics_buf_t *b)
{
    transcode_stream_status_t *all = NULL;
    size_t n = 0;
    if (r->p.transcode && transcode_list(r->p.transcode, &all, &n) < 0)
        n = 0;
    metrics_family(b, "sluice_transcode_encoder_speed_ratio", "gauge",
                   "Media seconds encoded per wall second, per rendition (1 = real time; a "
                   "copied rendition reports its worker's speed).");
    for (size_t i = 0; i < n; i++) {
        if (!all[i].live)
            continue;
        for (size_t j = 0; j < all[i].nrenditions; j++) {
            const transcode_rendition_status_t *rs = &all[i].renditions[j];
            metrics_sample(b, "sluice_transcode_encoder_speed_ratio",
                           (const char *[]){"stream", all[i].stream_id, "rendition", rs->name,
                                            NULL},
                           rs->passthrough ? all[i].speed : rs->encoder_speed);
        }
    }
    metrics_family(b, "sluice_transcode_frames_total", "counter",
                   "Frames encoded (or copied) per rendition in the current broadcast.");
    for (size_t i = 0; i < n; i++) {
        if (!all[i].live)
            continue;
        for (size_t j = 0; j < all[i].nrenditions; j++)
            metrics_sample_u64(b, "sluice_transcode_frames_total",
                               (const char *[]){"stream", all[i].stream_id, "rendition",
                                                all[i].renditions[j].name, NULL},
                               all[i].renditions[j].frames);
    }
    metrics_family(b, "sluice_rung_active", "gauge",
                   "1 while a rendition is encoded (or copied); 0 while --rungs on-demand "
                   "left it idle (nobody asked for it).");
    for (size_t i = 0; i < n; i++) {
        if (!all[i].live)
            continue;
        for (size_t j = 0; j < all[i].nrenditions; j++)
            metrics_sample_u64(b, "sluice_rung_active",
                               (const char *[]){"stream", all[i].stream_id, "rendition",
                                                all[i].renditions[j].name, NULL},
                               all[i].renditions[j].idle ? 0 : 1);
    }
    metrics_family(b, "sluice_rung_wakes_total", "counter",
                   "Times an idle rendition started again because it was asked for, in the "
                   "current broadcast.");
    for (size_t i = 0; i < n; i++) {
        if (!all[i].live)
            continue;
        for (size_t j = 0; j < all[i].nrenditions; j++)
            metrics_sample_u64(b, "sluice_rung_wakes_total",
                               (const char *[]){"stream", all[i].stream_id, "rendition",
                                                all[i].renditions[j].name, NULL},
                               all[i].renditions[j].wakes);
    }
    metrics_family(b, "sluice_transcode_rendition_bytes_per_second", "gauge",
                   "Measured average rate of a rendition's committed segments.");
    for (size_t i = 0; i < n; i++) {
        if (!all[i].live)
            continue;
        for (size_t j = 0; j < all[i].nrenditions; j++)
            metrics_sample(b, "sluice_transcode_rendition_bytes_per_second",
                           (const char *[]){"stream", all[i].stream_id, "rendition",
                                            all[i].renditions[j].name, NULL},
                           all[i].renditions[j].bitrate_kbps * 1000.0 / 8);
    }
    metrics_family(b, "sluice_transcode_segments_total", "counter",
                   "Segments committed to the store in the current broadcast.");
    for (size_t i = 0; i < n; i++)
        if (all[i].live)
            metrics_sample_u64(b, "sluice_transcode_segments_total",
                               (const char *[]){"stream", all[i].stream_id, NULL},
                               all[i].segments);
    metrics_family(b, "sluice_transcode_reconnecting", "gauge",
                   "1 while the stream waits for its dropped publisher (--reconnect-window).");
    for (size_t i = 0; i < n; i++)
        if (all[i].live)
            metrics_sample_u64(b, "sluice_transcode_reconnecting",
                               (const char *[]){"stream", all[i].stream_id, NULL},
                               all[i].reconnecting);
    metrics_family(b, "sluice_transcode_reconnects_total", "counter",
                   "Publishers that came back and continued the current broadcast.");
    for (size_t i = 0; i < n; i++)
        if (all[i].live)
            metrics_sample_u64(b, "sluice_transcode_reconnects_total",
                               (const char *[]){"stream", all[i].stream_id, NULL},
                               all[i].reconnects);
    metrics_family(b, "sluice_transcode_restarts_total", "counter",
                   "Recoveries of the stream's worker from a failure in the current broadcast "
                   "(the reason is in the status API and the log).");
    for (size_t i = 0; i < n; i++)
        if (all[i].live)
            metrics_sample_u64(b, "sluice_transcode_restarts_total",
                               (const char *[]){"stream", all[i].stream_id, NULL},
                               all[i].restarts);
    metrics_family(b, "sluice_transcode_segment_lag_seconds", "summary",
                   "Segment production lag: from the arrival of the frame that closes a "
                   "segment to the segment's commit.");
    for (size_t i = 0; i < n; i++) {
        if (!all[i].live)
            continue;
        const char *const *l = (const char *[]){"stream", all[i].stream_id, NULL};
        metrics_sample(b, "sluice_transcode_segment_lag_seconds_sum", l,
                       all[i].segment_lag_sum_s);
        metrics_sample_u64(b, "sluice_transcode_segment_lag_seconds_count", l,
                           all[i].segment_lag_count);
    }
    metrics_family(b, "sluice_transcode_speed_ratio", "gauge",
                   "Whole worker: media seconds processed per busy wall second.");
    for (size_t i = 0; i < n; i++)
        if (all[i].live)
            metrics_sample(b, "sluice_transcode_speed_ratio",
                           (const char *[]){"stream", all[i].stream_id, NULL}, all[i].speed);
    metrics_family(b, "sluice_transcode_queue_lag_seconds", "gauge",
                   "How long the newest processed packet waited in the ingest queue.");
    for (size_t i = 0; i < n; i++)
        if (all[i].live)
            metrics_sample(b, "sluice_transcode_queue_lag_seconds",
                           (const char *[]){"stream", all[i].stream_id, NULL},
                           all[i].lag_ms / 1000.0);
    metrics_family(b, "sluice_stream_health", "gauge",
                   "Stream health: 0 good, 1 fair, 2 poor (see the status object's reason).");
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->nstreams; i++)
        if (r->streams[i].live && r->streams[i].have_health)
            metrics_sample(b, "sluice_stream_health",
                           (const char *[]){"stream", r->streams[i].id, NULL},
                           r->streams[i].health);
    pthread_mutex_unlock(&r->lock);
    free(all);
    if (r->p.transcode) {
        transcode_stats_t tst;
        transcode_get_stats(r->p.transcode, &tst);
        metrics_family(b, "sluice_transcode_workers", "gauge",
                       "Transcode workers writing a stream.");
        metrics_sample(b, "sluice_transcode_workers", NULL, tst.workers);
    }
}

static void report_metrics_origin(report_t *r, metrics_buf_t *b)
{
    origin_stats_t os;
    origin_get_stats(r->p.origin, &os);
    metrics_family(b, "sluice_http_requests_total", "counter",
                   "Public origin requests answered, by kind and status code.");
    for (size_t k = 0; k < ORIGIN_KINDS; k++)
        for (size_t c = 0; c < ORIGIN_CODES; c++)
            if (os.requests[k][c] || (c == 0 && k < ORIGIN_KIND_OTHER))
                metrics_sample_u64(b, "sluice_http_requests_total",
                                   (const char *[]){"kind", origin_kind_name((origin_kind_t)k),
                                                    "code", origin_code_label(c), NULL},
                                   os.requests[k][c]);
    metrics_family(b, "sluice_http_response_bytes_total", "counter",
                   "Response body bytes queued by the public origin, by kind.");
    for (size_t k = 0; k < ORIGIN_KINDS; k++)
        metrics_sample_u64(b, "sluice_http_response_bytes_total",
                           (const char *[]){"kind", origin_kind_name((origin_kind_t)k), NULL},
                           os.bytes[k]);
    metrics_family(b, "sluice_http_request_duration_seconds", "histogram",
                   "Public origin request latency, first byte of the request to the end of "
                   "the exchange; a held LL-HLS request counts its whole wait.");
    for (size_t k = 0; k < ORIGIN_KINDS; k++)
        metrics_histogram(b, "sluice_http_request_duration_seconds",
                          (const char *[]){"kind", origin_kind_name((origin_kind_t)k), NULL},
                          origin_latency_bounds, os.latency[k], ORIGIN_LATENCY_BUCKETS,
                          os.latency_sum_s[k]);
    metrics_family(b, "sluice_http_connections_open", "gauge",
                   "Open connections on the public origin.");
    metrics_sample_u64(b, "sluice_http_connections_open", NULL, os.connections_open);
    metrics_family(b, "sluice_http_connections_refused_total", "counter",
                   "Connections the public origin closed at accept: --http-max-connections or "
                   "--http-max-connections-per-ip reached.");
    metrics_sample_u64(b, "sluice_http_connections_refused_total", NULL, os.connections_refused);
    metrics_family(b, "sluice_http_held_requests", "gauge",
                   "LL-HLS blocking requests held (waiting for the stream) right now.");
    metrics_sample_u64(b, "sluice_http_held_requests", NULL, os.held_requests);
    metrics_family(b, "sluice_http_held_refused_total", "counter",
                   "LL-HLS requests answered at once instead of held: --http-max-held reached.");
    metrics_sample_u64(b, "sluice_http_held_refused_total", NULL, os.held_refused);
    metrics_family(b, "sluice_http_hints_moved_total", "counter",
                   "Requests for a preload-hinted part that a keyframe pre-empted (the segment "
                   "ended first), answered with part 0 of the next segment.");
    metrics_sample_u64(b, "sluice_http_hints_moved_total", NULL, os.hints_moved);
    metrics_family(b, "sluice_http_rung_demand_writes_total", "counter",
                   "Rungs on demand: \"someone asked for this rendition\" records this origin "
                   "wrote to the store (at most one a second per rendition).");
    metrics_sample_u64(b, "sluice_http_rung_demand_writes_total", NULL, os.demand_writes);
    metrics_family(b, "sluice_http_rung_wake_holds_total", "counter",
                   "Rungs on demand: media playlist requests held until their idle rung was "
                   "back.");
    metrics_sample_u64(b, "sluice_http_rung_wake_holds_total", NULL, os.cold_holds);
    metrics_family(b, "sluice_viewer_sessions", "gauge",
                   "Viewer sessions alive on this origin, all streams.");
    metrics_sample_u64(b, "sluice_viewer_sessions", NULL, os.viewer_sessions);
    metrics_family(b, "sluice_viewer_sessions_created_total", "counter",
                   "Viewer sessions started on this origin.");
    metrics_sample_u64(b, "sluice_viewer_sessions_created_total", NULL,
                       os.viewer_sessions_created);
    metrics_family(b, "sluice_viewer_sessions_refused_total", "counter",
                   "Viewer sessions not tracked because a cap was reached.");
    metrics_sample_u64(b, "sluice_viewer_sessions_refused_total", NULL,
                       os.viewer_sessions_refused);
    metrics_family(b, "sluice_beacons_total", "counter",
                   "Audience beacons (POST /beacon/ID) this origin answered, by result.");
    metrics_by_t beacons[ORIGIN_BEACON_RESULTS];
    for (size_t i = 0; i < ORIGIN_BEACON_RESULTS; i++)
        beacons[i] = (metrics_by_t){origin_beacon_result_name((origin_beacon_result_t)i),
                                    os.beacons[i]};
    metrics_samples_by(b, "sluice_beacons_total", "result", beacons, ORIGIN_BEACON_RESULTS);
    metrics_family(b, "sluice_beacon_sessions", "gauge",
                   "Playback sessions this origin heard a beacon from within --audience-timeout.");
    metrics_sample_u64(b, "sluice_beacon_sessions", NULL, os.beacon_sessions);
    metrics_family(b, "sluice_beacon_store_errors_total", "counter",
                   "Beacon session records the store refused (the audience misses them).");
    metrics_sample_u64(b, "sluice_beacon_store_errors_total", NULL, os.beacon_store_errors);
    origin_stream_viewers_t *vw = NULL;
    size_t n = 0;
    if (r->p.origin && origin_viewers_list(r->p.origin, &vw, &n) < 0)
        n = 0;
    metrics_family(b, "sluice_viewers", "gauge",
                   "Concurrent viewers of a stream on this origin (distinct playback sessions).");
    for (size_t i = 0; i < n; i++)
        metrics_sample_u64(b, "sluice_viewers", (const char *[]){"stream", vw[i].stream_id, NULL},
                           vw[i].viewers);
    free(vw);
}

/* One gauge or counter per stream from a number of its audience object
 * (sub: a nested object's key, or NULL); a missing or null value writes no
 * sample. */
static void report_metrics_audience_family(metrics_buf_t *b, const char *name, const char *type,
                                           const char *help, const report_audience_snap_t *s,
                                           size_t n, const char *key, const char *sub,
                                           double scale)
{
    metrics_family(b, name, type, help);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(s[i].obj, key);
        if (sub)
            v = json_object_get(v, sub);
        if (!json_is_number(v))
            continue;
        metrics_sample(b, name, (const char *[]){"stream", s[i].id, NULL},
                       json_number_value(v) * scale);
    }
}

/* sluice_audience_*: on the node that aggregates the stream (where it is
 * live), labels stream and rendition only. */
static void report_metrics_audience(report_t *r, metrics_buf_t *b)
{
    size_t n = 0;
    report_audience_snap_t *s = report_audience_snap(r, &n);
    report_metrics_audience_family(
        b, "sluice_audience_viewers", "gauge",
        "Viewers of the stream, all origins: sessions heard from by beacon within "
        "--audience-timeout, or the request-based count when no player sends beacons.",
        s, n, "viewers", NULL, 1);
    report_metrics_audience_family(
        b, "sluice_audience_request_viewers", "gauge",
        "The request-based viewer count of the stream, summed over the origins (the fallback).",
        s, n, "request_viewers", NULL, 1);
    metrics_family(b, "sluice_audience_rendition_viewers", "gauge",
                   "Beacon sessions playing, stalled or paused, by the rendition they play "
                   "(\"unknown\": not reported yet, \"other\": not one of the stream's).");
    for (size_t i = 0; i < n; i++) {
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(s[i].obj, "renditions"), k, v)
        {
            metrics_sample(b, "sluice_audience_rendition_viewers",
                           (const char *[]){"stream", s[i].id, "rendition", k, NULL},
                           json_number_value(v));
        }
    }
    report_metrics_audience_family(b, "sluice_audience_peak_viewers", "gauge",
                                   "Highest beacon viewer count of the current broadcast.", s, n,
                                   "peak", NULL, 1);
    report_metrics_audience_family(b, "sluice_audience_sessions_total", "counter",
                                   "Distinct playback sessions of the current broadcast.", s, n,
                                   "sessions_total", NULL, 1);
    report_metrics_audience_family(b, "sluice_audience_watch_seconds_total", "counter",
                                   "Time played by the sessions of the current broadcast.", s, n,
                                   "watch_time_s", NULL, 1);
    report_metrics_audience_family(b, "sluice_audience_stalled", "gauge",
                                   "Sessions stalled (rebuffering) now.", s, n, "states",
                                   "stalled", 1);
    report_metrics_audience_family(
        b, "sluice_audience_rebuffer_ratio", "gauge",
        "Stall time / (watch time + stall time) over the sessions watching now (0..1).", s, n,
        "rebuffer_ratio", NULL, 1);
    report_metrics_audience_family(b, "sluice_audience_startup_seconds_p50", "gauge",
                                   "Median startup time (load to first frame) of the sessions "
                                   "watching now that reported one.",
                                   s, n, "startup_ms", "p50", 0.001);
    report_metrics_audience_family(b, "sluice_audience_startup_seconds_p90", "gauge",
                                   "90th percentile startup time of the sessions watching now.",
                                   s, n, "startup_ms", "p90", 0.001);
    report_metrics_audience_family(b, "sluice_audience_latency_seconds_p50", "gauge",
                                   "Median latency (live edge to playhead) of the sessions "
                                   "watching now that reported one.",
                                   s, n, "latency_ms", "p50", 0.001);
    report_metrics_audience_family(b, "sluice_audience_latency_seconds_p90", "gauge",
                                   "90th percentile latency of the sessions watching now.", s, n,
                                   "latency_ms", "p90", 0.001);
    report_metrics_audience_family(
        b, "sluice_audience_errors", "gauge",
        "Player errors reported by the sessions watching now (the sum of their counts).", s, n,
        "errors", NULL, 1);
    report_audience_snap_free(s, n);
}

char *report_metrics(report_t *r, size_t *len)
{
    metrics_buf_t b;
    metrics_buf_init(&b);
    metrics_family(&b, "sluice_build_info", "gauge", "Always 1; the version is a label.");
    metrics_sample(&b, "sluice_build_info", (const char *[]){"version", SLUICE_VERSION, NULL}, 1);
    metrics_single(&b, "sluice_uptime_seconds", "gauge",
                   "Seconds since the server started.",
                   (clock_mono_ms() - r->start_ms) / 1000.0);

    size_t nlive = 0;
    report_metrics_ingest(r, &b, &nlive);
    metrics_single_u64(&b, "sluice_live_streams", "gauge",
                       "Streams live on this node.",
                       nlive);
    report_metrics_transcode(r, &b);
    report_metrics_outputs(r, &b);
    report_metrics_origin(r, &b);
    report_metrics_audience(r, &b);
    if (r->p.webhook)
        report_metrics_webhook(r, &b);

    store_stats_t ss;
    store_get_stats(r->p.store, &ss);
    metrics_family(&b, "sluice_store_operations_total", "counter",
                   "Store operations by type (commit, get, registry, meta).");
    metrics_sample_u64(&b, "sluice_store_operations_total", (const char *[]){"op", "commit", NULL},
                       ss.commits);
    metrics_sample_u64(&b, "sluice_store_operations_total", (const char *[]){"op", "get", NULL},
                       ss.gets);
    metrics_sample_u64(&b, "sluice_store_operations_total",
                       (const char *[]){"op", "registry", NULL}, ss.registry_ops);
    metrics_sample_u64(&b, "sluice_store_operations_total", (const char *[]){"op", "meta", NULL},
                       ss.meta_ops);
    metrics_single_u64(&b, "sluice_store_errors_total", "counter",
                       "Store calls that failed because the store could not be reached.",
                       ss.errors);
    metrics_family(&b, "sluice_store_connected", "gauge", "1 when the store answers.");
    metrics_sample(&b, "sluice_store_connected",
                   (const char *[]){"backend", store_backend_name(r->p.store), NULL},
                   ss.connected ? 1 : 0);
    if (strcmp(store_backend_name(r->p.store), "memory") == 0) {
        metrics_single_u64(&b, "sluice_store_memory_bytes", "gauge",
                           "Bytes the memory store holds: blobs plus an estimate of per-object "
                           "overhead.",
                           ss.memory_bytes);
        metrics_single_u64(&b, "sluice_store_memory_limit_bytes", "gauge",
                           "--store-memory-limit; 0: no limit.",
                           ss.memory_limit);
        metrics_single_u64(&b, "sluice_store_evictions_total", "counter",
                           "Objects the memory store evicted to stay under its limit.",
                           ss.evictions);
    }
    if (ss.sentinel) {
        metrics_family(&b, "sluice_store_master_info", "gauge",
                       "The Redis master in use through Sentinel (1; no sample while none).");
        if (ss.master[0])
            metrics_sample(&b, "sluice_store_master_info",
                           (const char *[]){"name", ss.master_name, "addr", ss.master, NULL}, 1);
        metrics_single_u64(&b, "sluice_store_failovers_total", "counter",
                           "Redis failovers this process followed to a new master.",
                           ss.failovers);
        metrics_single_u64(&b, "sluice_store_early_switches_total", "counter",
                           "Failovers followed to a promoted replica before Sentinel announced it.",
                           ss.early_switches);
        metrics_single(&b, "sluice_store_last_failover_timestamp_seconds", "gauge",
                       "When the last failover was followed (Unix time; 0: never).",
                       (double)ss.last_failover_ms / 1000.0);
        metrics_single(&b, "sluice_store_last_outage_seconds", "gauge",
                       "How long the last store outage lasted, from losing the master to "
                       "working with the next one.",
                       (double)ss.last_outage_ms / 1000.0);
        metrics_family(&b, "sluice_store_sentinels", "gauge",
                       "Sentinels configured, and those whose +switch-master subscription is up.");
        metrics_sample_u64(&b, "sluice_store_sentinels", (const char *[]){"state", "configured", NULL},
                           ss.sentinels);
        metrics_sample_u64(&b, "sluice_store_sentinels", (const char *[]){"state", "reachable", NULL},
                           ss.sentinels_up);
        metrics_single_u64(&b, "sluice_store_replica_wait_timeouts_total", "counter",
                           "Registry or lease changes no replica acknowledged within wait-ms.",
                           ss.replica_wait_timeouts);
    }

    metrics_process_t pr;
    (void)metrics_process_read(&pr);
    metrics_single(&b, "sluice_process_cpu_seconds_total", "counter",
                   "User and system CPU time of the process.",
                   pr.cpu_seconds);
    metrics_single_u64(&b, "sluice_process_resident_memory_bytes", "gauge",
                       "Resident memory.",
                       pr.rss_bytes);
    metrics_single_u64(&b, "sluice_process_virtual_memory_bytes", "gauge",
                       "Virtual memory.",
                       pr.virtual_bytes);
    metrics_single_u64(&b, "sluice_process_open_fds", "gauge",
                       "Open file descriptors.",
                       pr.open_fds);
    metrics_single_u64(&b, "sluice_process_max_fds", "gauge",
                       "File descriptor limit (soft).",
                       pr.max_fds);
    metrics_single(&b, "sluice_process_start_time_seconds", "gauge",
                   "Start time of the process, unix seconds.",
                   pr.start_time_s);
    return metrics_buf_take(&b, len);
}
