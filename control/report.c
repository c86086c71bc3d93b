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
 *    (meta "viewers.<node id>"), so that the admin API of any node sees them.
 * report_stream_status / report_stats / report_metrics run on the admin
 * listener's threads. Shared state (samples, per-stream health) is under
 * r->lock; the sources themselves are thread-safe snapshots, so no lock is
 * held while calling them except the short copies.
 */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

#define REPORT_RATE_WINDOW 5 /* seconds of counter samples behind a rate */
#define REPORT_SAMPLES (REPORT_RATE_WINDOW + 1)
#define REPORT_STATUS_TTL_MS 5000
#define REPORT_RECENT_MS 10000 /* drops / late frames this recent affect health */
#define REPORT_STREAMS_MAX 1024

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
            json_array_append_new(rends, o);
        }
        json_t *tr = json_object();
        json_object_set_new(tr, "speed", json_real(round(ts->speed * 100) / 100));
        json_object_set_new(tr, "preset", json_string(ts->preset));
        json_object_set_new(tr, "preset_steps", json_integer(ts->preset_steps));
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
    json_object_set_new(obj, "viewers", json_integer((json_int_t)report_viewers(r, stream_id)));
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

int report_new(const report_params_t *params, report_t **out)
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
    json_object_set_new(o, "egress", eg);
    json_object_set_new(o, "viewers", json_integer((json_int_t)os.viewer_sessions));

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

char *report_metrics(report_t *r, size_t *len)
{
    metrics_buf_t b;
    metrics_buf_init(&b);
    metrics_family(&b, "sluice_build_info", "gauge", "Always 1; the version is a label.");
    metrics_sample(&b, "sluice_build_info", (const char *[]){"version", SLUICE_VERSION, NULL}, 1);
    metrics_family(&b, "sluice_uptime_seconds", "gauge", "Seconds since the server started.");
    metrics_sample(&b, "sluice_uptime_seconds", NULL, (clock_mono_ms() - r->start_ms) / 1000.0);

    size_t nlive = 0;
    report_metrics_ingest(r, &b, &nlive);
    metrics_family(&b, "sluice_live_streams", "gauge", "Streams live on this node.");
    metrics_sample_u64(&b, "sluice_live_streams", NULL, nlive);
    report_metrics_transcode(r, &b);
    report_metrics_origin(r, &b);
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
    metrics_family(&b, "sluice_store_errors_total", "counter",
                   "Store calls that failed because the store could not be reached.");
    metrics_sample_u64(&b, "sluice_store_errors_total", NULL, ss.errors);
    metrics_family(&b, "sluice_store_connected", "gauge", "1 when the store answers.");
    metrics_sample(&b, "sluice_store_connected",
                   (const char *[]){"backend", store_backend_name(r->p.store), NULL},
                   ss.connected ? 1 : 0);
    if (strcmp(store_backend_name(r->p.store), "memory") == 0) {
        metrics_family(&b, "sluice_store_memory_bytes", "gauge",
                       "Bytes the memory store holds: blobs plus an estimate of per-object "
                       "overhead.");
        metrics_sample_u64(&b, "sluice_store_memory_bytes", NULL, ss.memory_bytes);
        metrics_family(&b, "sluice_store_memory_limit_bytes", "gauge",
                       "--store-memory-limit; 0: no limit.");
        metrics_sample_u64(&b, "sluice_store_memory_limit_bytes", NULL, ss.memory_limit);
        metrics_family(&b, "sluice_store_evictions_total", "counter",
                       "Objects the memory store evicted to stay under its limit.");
        metrics_sample_u64(&b, "sluice_store_evictions_total", NULL, ss.evictions);
    }

    metrics_process_t pr;
    (void)metrics_process_read(&pr);
    metrics_family(&b, "sluice_process_cpu_seconds_total", "counter",
                   "User and system CPU time of the process.");
    metrics_sample(&b, "sluice_process_cpu_seconds_total", NULL, pr.cpu_seconds);
    metrics_family(&b, "sluice_process_resident_memory_bytes", "gauge", "Resident memory.");
    metrics_sample_u64(&b, "sluice_process_resident_memory_bytes", NULL, pr.rss_bytes);
    metrics_family(&b, "sluice_process_virtual_memory_bytes", "gauge", "Virtual memory.");
    metrics_sample_u64(&b, "sluice_process_virtual_memory_bytes", NULL, pr.virtual_bytes);
    metrics_family(&b, "sluice_process_open_fds", "gauge", "Open file descriptors.");
    metrics_sample_u64(&b, "sluice_process_open_fds", NULL, pr.open_fds);
    metrics_family(&b, "sluice_process_max_fds", "gauge", "File descriptor limit (soft).");
    metrics_sample_u64(&b, "sluice_process_max_fds", NULL, pr.max_fds);
    metrics_family(&b, "sluice_process_start_time_seconds", "gauge",
                   "Start time of the process, unix seconds.");
    metrics_sample(&b, "sluice_process_start_time_seconds", NULL, pr.start_time_s);
    return metrics_buf_take(&b, len);
}
