/*
 * Transcode manager: one worker thread per live stream. A worker drains its
 * stream's media queue into a pipeline (pipeline.c: decode once, scale and
 * encode the ladder, package) until end-of-stream.
 *
 * Threads: transcode_stream_start() runs on the ingest thread; workers run
 * on their own threads; transcode_free() on whoever owns the manager. The
 * manager's lock guards its two lists: per-stream records (the next media
 * sequence number of every stream id seen, and whether a worker is writing
 * that stream) and the workers. A worker takes its stream's record at start
 * (waiting while an earlier worker of the same id finishes, so a stream's
 * objects have one writer) and gives it back with the next unused segment
 * number, so numbers are never reused within the process.
 *
 * Threads per stream: the worker is handed cpus / live streams (at least
 * one), fixed when it starts, so that several streams on a small machine
 * share its cores instead of each sizing itself for the whole machine. The
 * pipeline gives that count to the decoder and to rungs of at least a
 * quarter of the largest transcoded rung's area; smaller rungs encode with
 * one thread (pipeline.c). Worker threads are named "tc:ID" so that top and
 * perf tell them from the ingest thread that started them.
 *
 * Status: each stream record holds the latest snapshot its worker
 * published (transcode_stream_status_t), under the manager's lock, so it
 * outlives the worker and can be read from any thread.
 *
 * Ownership: a worker owns its pipeline and a reference to its queue. The
 * manager owns the worker structs; finished ones are joined and freed at the
 * next start and by transcode_free(), which joins them all.
 */
#include "transcode.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include <libavutil/log.h>

#include "clock.h"
#include "ladder_internal.h"
#include "failure_internal.h"
#include "log.h"
#include "packager_internal.h"
#include "pipeline_internal.h"
#include "recorder.h"
#include "retention.h"
#include "thumbnail.h"

#define TRANSCODE_POP_TIMEOUT_MS 1000
#define TRANSCODE_CTX_MAX 96

typedef struct transcode_stream {
    struct transcode_stream *next;
    char id[STORE_ID_MAX];
    int64_t next_msn;
    bool next_msn_loaded; /* next_msn was reconciled with the store's record */
    bool busy;            /* a worker is writing this stream's objects */
    bool finishing;       /* ...and has decided to end the stream */
    /* A new publisher's queue for the busy worker (reconnect window): it
     * continues the same playlists with it. */
    media_queue_t *handoff;
    /* The ladder the next broadcast uses (transcode_stream_next_ladder). */
    bool next_ladder_set;
    transcode_ladder_t next_ladder;
    bool have_status;
    transcode_stream_status_t status; /* guarded by the manager's lock */
    packager_clock_t clock;           /* the packager's (transcode_stream_clock); same lock */
} transcode_stream_t;

typedef struct transcode_worker {
    struct transcode_worker *next;
    transcode_t *t;
    transcode_stream_t *stream; /* lives as long as the manager */
    media_queue_t *queue;
    media_packet_t *pending; /* popped, not yet fed (left by a failure) */
    output_set_t *outputs;   /* the broadcast's simulcast outputs; NULL: none */
    pthread_t thread;
    bool done;
    char ctx[TRANSCODE_CTX_MAX];
} transcode_worker_t;

struct transcode {
    transcode_params_t params;
    char preset[TRANSCODE_PRESET_MAX];
    transcode_rung_spec_t ladder[TRANSCODE_RUNGS_MAX];
    size_t nladder;
    transcode_rung_spec_t *overrides; /* the [rung.NAME] sections, for streams' own ladders */
    size_t noverrides;
    int cpus;
    int live; /* workers writing a stream */
    bool closing; /* transcode_free: waiting workers end their streams now */
    bool have_janitor;
    pthread_t janitor; /* params.handover: ends streams handed over and not taken;
                        * recordings' retention */
    char recordings_dir[1024];
    pthread_mutex_t lock;
    pthread_cond_t cond; /* a stream record became free */
    transcode_stream_t *streams;
    transcode_worker_t *workers;
};

static void *transcode_janitor_main(void *arg);

static bool transcode_retention_on(const transcode_params_t *p)
{
    return p->recordings_dir && (p->recordings_max_age_s > 0 || p->recordings_max_bytes > 0);
}

void transcode_params_default(transcode_params_t *p)
{
    memset(p, 0, sizeof(*p));
    p->segment_duration = 2.0;
    p->playlist_segments = 6;
    p->part_duration = 0.333;
    p->msn_from_clock = true;
    p->ended_ttl_ms = 600000;
    p->ladder = LADDER_DEFAULT;
    p->passthrough = TRANSCODE_PASSTHROUGH_AUTO;
    p->preset = "veryfast";
}

const char *transcode_health_name(transcode_health_t h)
{
    switch (h) {
    case TRANSCODE_HEALTH_GOOD:
        return "good";
    case TRANSCODE_HEALTH_FAIR:
        return "fair";
    default:
        return "poor";
    }
}

int transcode_new(const transcode_params_t *params, transcode_t **out)
{
    *out = NULL;
    if (!params->store || params->segment_duration <= 0 || params->playlist_segments < 1)
        return -EINVAL;
    const char *preset = params->preset ? params->preset : "veryfast";
    if (ladder_preset_index(preset) < 0) {
        log_error(NULL, "--preset: '%s' is not an x264 preset (ultrafast ... placebo)", preset);
        return -EINVAL;
    }
    transcode_t *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    char err[256];
    if (ladder_parse(params->ladder, params->overrides, params->noverrides, t->ladder,
                     &t->nladder, err, sizeof(err)) < 0) {
        log_error(NULL, "%s", err);
        free(t);
        return -EINVAL;
    }
    if (params->noverrides > 0) {
        t->overrides = calloc(params->noverrides, sizeof(*t->overrides));
        if (!t->overrides) {
            free(t);
            return -ENOMEM;
        }
        memcpy(t->overrides, params->overrides, params->noverrides * sizeof(*t->overrides));
        t->noverrides = params->noverrides;
    }
    t->params = *params;
    snprintf(t->preset, sizeof(t->preset), "%s", preset);
    t->params.preset = t->preset;
    t->params.ladder = NULL;    /* parsed above; the caller's string is not kept */
    t->params.overrides = NULL;
    t->params.noverrides = 0;
    if (params->recordings_dir) {
        snprintf(t->recordings_dir, sizeof(t->recordings_dir), "%s", params->recordings_dir);
        t->params.recordings_dir = t->recordings_dir;
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    t->cpus = params->cpus > 0 ? params->cpus : online > 0 ? (int)online : 1;
    pthread_mutex_init(&t->lock, NULL);
    /* Monotonic: the reconnect window must not follow wall-clock steps. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cond, &ca);
    pthread_condattr_destroy(&ca);
    if ((t->params.handover && t->params.reconnect_window_ms > 0) ||
        transcode_retention_on(&t->params)) {
        int ret = -pthread_create(&t->janitor, NULL, transcode_janitor_main, t);
        if (ret < 0)
            log_warn(NULL, "cannot start the janitor thread: %s", strerror(-ret));
        t->have_janitor = ret == 0;
    }
    *out = t;
    return 0;
}

int64_t transcode_stored_next_msn(store_t *store, const char *stream_id)
{
    blob_t *b = NULL;
    int ret = store_get(store, stream_id, TRANSCODE_NEXT_MSN_NAME, &b);
    if (ret == -ENOENT)
        return 0;
    if (ret < 0)
        return ret;
    char *end = NULL;
    long long v = strtoll((const char *)b->data, &end, 10); /* blobs are NUL-terminated */
    bool ok = end && end != (const char *)b->data && *end == '\0' && v >= 0;
    blob_unref(b);
    return ok ? (int64_t)v : 0;
}

#define TRANSCODE_RESTART_BACKOFF_MS 1000
#define TRANSCODE_RESTART_BACKOFF_MAX_MS 10000

typedef enum transcode_input_end {
    TRANSCODE_INPUT_ENDED = 0, /* EOS: the publish ended */
    TRANSCODE_INPUT_DROPPED,   /* EOS: the publisher dropped (may come back) */
    TRANSCODE_INPUT_FAILED,    /* the pipeline failed; *err says why */
} transcode_input_end_t;

/* Feeds one publisher's queue to the pipeline until its EOS or a failure. */
static transcode_input_end_t transcode_drain(transcode_worker_t *w, pipeline_t *pl, int *err)
{
    for (;;) {
        media_packet_t *list = w->pending;
        w->pending = NULL;
        if (!list)
            list = media_queue_pop_all(w->queue, TRANSCODE_POP_TIMEOUT_MS);
        while (list) {
            media_packet_t *p = list;
            list = p->next;
            p->next = NULL;
            if (p->type == MEDIA_PACKET_EOS) {
                bool dropped = p->dropped;
                media_packet_free(p);
                media_packet_list_free(list);
                return dropped ? TRANSCODE_INPUT_DROPPED : TRANSCODE_INPUT_ENDED;
            }
            failure_reset();
            /* A copy for the outputs of the source (never waits). */
            output_set_push_source(w->outputs, p);
            int ret = pipeline_push(pl, p);
            if (ret < 0) {
                w->pending = list; /* fed after the recovery: may hold the EOS */
                *err = ret;
                return TRANSCODE_INPUT_FAILED;
            }
        }
    }
}

/* Counts a publisher's return or a recovery (with its reason). */
static void transcode_status_update(transcode_worker_t *w, bool reconnected, bool restarted,
                                    const char *error)
{
    pthread_mutex_lock(&w->t->lock);
    transcode_stream_status_t *st = &w->stream->status;
    st->reconnects += reconnected;
    st->restarts += restarted;
    if (error)
        snprintf(st->last_error, sizeof(st->last_error), "%s", error);
    pthread_mutex_unlock(&w->t->lock);
}

/* The next publisher of the stream, handed over by transcode_stream_start:
 * waits for one up to the reconnect window when `wait` (the publisher
 * dropped), else only takes one already there. Returns true with w->queue
 * replaced, or false: the stream ends (decided under the lock, so that no
 * publisher is handed to a worker that is finishing). */
static bool transcode_next_input(transcode_worker_t *w, bool wait)
{
    transcode_t *t = w->t;
    int64_t window = wait ? t->params.reconnect_window_ms : 0;
    int64_t t0 = clock_mono_ms();
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(window / 1000);
    deadline.tv_nsec += (long)(window % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&t->lock);
    w->stream->status.reconnecting = wait;
    while (wait && !w->stream->handoff && !t->closing) {
        if (pthread_cond_timedwait(&t->cond, &t->lock, &deadline) == ETIMEDOUT)
            break;
    }
    media_queue_t *q = w->stream->handoff;
    w->stream->handoff = NULL;
    w->stream->status.reconnecting = false;
    if (!q)
        w->stream->finishing = true;
    bool closing = t->closing;
    pthread_mutex_unlock(&t->lock);
    if (!q) {
        if (wait)
            log_info(w->ctx, "%s",
                     closing ? "shutting down while waiting for the publisher; the stream ends"
                             : "the publisher did not come back to this node within the "
                               "reconnect window");
        return false;
    }
    media_queue_unref(w->queue);
    w->queue = q;
    log_info(w->ctx, "a publisher is back after %.1f s; the playlists continue after a "
                     "discontinuity",
             (clock_mono_ms() - t0) / 1000.0);
    return true;
}

/* Whether another node wrote the stream while this worker waited for its
 * publisher (who came back through another ingest node): every commit
 * records the next segment number in the store, so a larger one than ours
 * means ending the playlists here would overwrite that node's live ones. */
static bool transcode_superseded(transcode_worker_t *w, pipeline_t *pl)
{
    int64_t stored = transcode_stored_next_msn(w->t->params.store, w->stream->id);
    return stored > pipeline_next_msn(pl);
}

#define TRANSCODE_HANDOVER_FIELD "handover"
#define TRANSCODE_JANITOR_EVERY_MS 2000

static bool transcode_closing(transcode_t *t)
{
    pthread_mutex_lock(&t->lock);
    bool closing = t->closing;
    pthread_mutex_unlock(&t->lock);
    return closing;
}

/* Shutting down with the publisher gone and a shared store: the playlists
 * stay live until the window that began at the drop passes, and a record
 * says so ("DEADLINE_MS NEXT_MSN", wall clock), for the node the publisher
 * comes back through (its packager follows on) or, if none, for a janitor
 * (transcode_janitor_tick) to end them then. */
static void transcode_hand_over(transcode_worker_t *w, pipeline_t *pl, int64_t drop_wall_ms)
{
    transcode_t *t = w->t;
    int64_t deadline = drop_wall_ms + t->params.reconnect_window_ms;
    char rec[64];
    snprintf(rec, sizeof(rec), "%" PRId64 " %" PRId64, deadline, pipeline_next_msn(pl));
    int ret = store_meta_put(t->params.store, w->stream->id, TRANSCODE_HANDOVER_FIELD, rec,
                             t->params.reconnect_window_ms + t->params.ended_ttl_ms);
    if (ret < 0) {
        log_warn(w->ctx, "could not record the handover (%s); ending the stream instead",
                 strerror(-ret));
        if ((ret = pipeline_finish(pl)) < 0)
            log_error(w->ctx, "could not end the stream cleanly (%s)", strerror(-ret));
        return;
    }
    int64_t left = deadline - clock_wall_ms();
    log_info(w->ctx, "shutting down: the stream is handed over, its playlists stay live for "
                     "%.0f s more for the publisher to come back through another node",
             left > 0 ? left / 1000.0 : 0.0);
}

/* Whether a worker of this process is writing stream id now. */
static bool transcode_stream_busy(transcode_t *t, const char *id)
{
    bool busy = false;
    pthread_mutex_lock(&t->lock);
    for (transcode_stream_t *s = t->streams; s && !busy; s = s->next)
        busy = s->busy && strcmp(s->id, id) == 0;
    pthread_mutex_unlock(&t->lock);
    return busy;
}

/* One round of the janitor: every registered stream with a handover record
 * whose deadline has passed is ended, unless a writer went on meanwhile
 * (the stored next segment number moved). Several nodes may do it at once:
 * the result is the same. */
static void transcode_janitor_tick(transcode_t *t)
{
    store_t *st = t->params.store;
    store_stream_info_t *list = NULL;
    size_t n = 0;
    if (store_stream_list(st, &list, &n) < 0)
        return;
    for (size_t i = 0; i < n && !transcode_closing(t); i++) {
        const char *id = list[i].id;
        char *rec = NULL;
        if (transcode_stream_busy(t, id) ||
            store_meta_get(st, id, TRANSCODE_HANDOVER_FIELD, &rec) < 0)
            continue;
        long long deadline = 0, msn = 0;
        if (sscanf(rec, "%lld %lld", &deadline, &msn) == 2 && clock_wall_ms() >= deadline) {
            char ctx[TRANSCODE_CTX_MAX];
            snprintf(ctx, sizeof(ctx), "stream=%s", id);
            if (transcode_stored_next_msn(st, id) == msn) {
                int ret = packager_end_stored(st, id, t->params.ended_ttl_ms);
                if (ret < 0)
                    log_warn(ctx, "could not end the playlists of the stream handed over (%s)",
                             strerror(-ret));
                else
                    log_info(ctx, "the publisher of the stream handed over by another node did "
                                  "not come back within the reconnect window; %d playlists ended",
                             ret);
            }
            if (store_meta_put(st, id, TRANSCODE_HANDOVER_FIELD, "done", 60000) < 0)
                log_debug(ctx, "could not mark the handover done");
        }
        free(rec);
    }
    free(list);
}

#define TRANSCODE_RETENTION_EVERY_MS 60000

static void *transcode_janitor_main(void *arg)
{
    transcode_t *t = arg;
    pthread_setname_np(pthread_self(), "tc-janitor");
    bool handover = t->params.handover && t->params.reconnect_window_ms > 0;
    int64_t retention_at = clock_mono_ms() + TRANSCODE_RETENTION_EVERY_MS;
    pthread_mutex_lock(&t->lock);
    while (!t->closing) {
        struct timespec at;
        clock_gettime(CLOCK_MONOTONIC, &at);
        at.tv_sec += TRANSCODE_JANITOR_EVERY_MS / 1000;
        (void)pthread_cond_timedwait(&t->cond, &t->lock, &at);
        if (t->closing)
            break;
        pthread_mutex_unlock(&t->lock);
        if (handover)
            transcode_janitor_tick(t);
        if (transcode_retention_on(&t->params) && clock_mono_ms() >= retention_at) {
            retention_at = clock_mono_ms() + TRANSCODE_RETENTION_EVERY_MS;
            int ret = record_retention(t->params.recordings_dir, t->params.recordings_max_age_s,
                                       t->params.recordings_max_bytes);
            if (ret < 0)
                log_warn(NULL, "recordings retention: %s: %s", t->params.recordings_dir,
                         strerror(-ret));
        }
        pthread_mutex_lock(&t->lock);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

/* Sleeps ms, unless the manager closes meanwhile. */
static void transcode_backoff(transcode_t *t, int64_t ms)
{
    int64_t until = clock_mono_ms() + ms;
    while (clock_mono_ms() < until) {
        pthread_mutex_lock(&t->lock);
        bool closing = t->closing;
        pthread_mutex_unlock(&t->lock);
        if (closing)
            return;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* The broadcast's recording, if this stream is recorded (asked once per
 * broadcast); NULL otherwise or when the recording cannot start. */
static recorder_t *transcode_recorder_open(transcode_worker_t *w)
{
    const transcode_params_t *p = &w->t->params;
    if (!p->recordings_dir)
        return NULL;
    bool on = p->record;
    if (p->record_cb)
        on = p->record_cb(p->record_opaque, w->stream->id, p->record);
    if (!on)
        return NULL;
    recorder_params_t rp = {
        .dir = p->recordings_dir,
        .stream_id = w->stream->id,
        .log_ctx = w->ctx,
        .store = p->store,
        .poster_object = THUMBNAIL_NAME,
        .mp4 = p->record_mp4,
        .ready_cb = p->recording_ready_cb,
        .ready_opaque = p->recording_ready_opaque,
    };
    recorder_t *r = NULL;
    if (recorder_open(&rp, &r) < 0)
        return NULL;
    return r;
}

const transcode_rung_spec_t *transcode_defined_rungs(const transcode_t *t, size_t *n)
{
    *n = t ? t->noverrides : 0;
    return t ? t->overrides : NULL;
}

/* The stream's record, or NULL. Manager lock held. */
static transcode_stream_t *transcode_stream_find(transcode_t *t, const char *stream_id)
{
    transcode_stream_t *s = t->streams;
    while (s && strcmp(s->id, stream_id) != 0)
        s = s->next;
    return s;
}

/* The stream's record, made if it has none yet (NULL: out of memory).
 * Manager lock held. */
static transcode_stream_t *transcode_stream_record(transcode_t *t, const char *stream_id)
{
    transcode_stream_t *s = transcode_stream_find(t, stream_id);
    if (s)
        return s;
    if (!(s = calloc(1, sizeof(*s))))
        return NULL;
    snprintf(s->id, sizeof(s->id), "%s", stream_id);
    s->next = t->streams;
    t->streams = s;
    return s;
}

int transcode_stream_next_ladder(transcode_t *t, const char *stream_id,
                                 const transcode_ladder_t *l)
{
    if (!t || !stream_id || !store_id_valid(stream_id))
        return -EINVAL;
    int ret = 0;
    pthread_mutex_lock(&t->lock);
    transcode_stream_t *s = l ? transcode_stream_record(t, stream_id)
                              : transcode_stream_find(t, stream_id);
    if (s) {
        s->next_ladder_set = l != NULL;
        if (l)
            s->next_ladder = *l;
    } else if (l) {
        ret = -ENOMEM;
    }
    pthread_mutex_unlock(&t->lock);
    return ret;
}

/* One broadcast's ladder (the settings a stream's ladder may change). */
typedef struct transcode_bladder {
    transcode_params_t params; /* the server's, with preset and passthrough the stream's */
    char preset[TRANSCODE_PRESET_MAX];
    transcode_rung_spec_t rungs[TRANSCODE_RUNGS_MAX];
    size_t nrungs;
} transcode_bladder_t;

/* Applies l over the server's settings into *b. 0, or -EINVAL with err. */
static int transcode_bladder_apply(const transcode_t *t, const transcode_ladder_t *l,
                                   transcode_bladder_t *b, char *err, size_t errlen)
{
    int ret = ladder_resolve(l, t->ladder, t->nladder, t->overrides, t->noverrides, b->rungs,
                             &b->nrungs, err, errlen);
    if (ret < 0)
        return ret;
    if (l->preset[0]) {
        snprintf(b->preset, sizeof(b->preset), "%s", l->preset);
        b->params.preset = b->preset;
    }
    if (l->passthrough >= 0)
        b->params.passthrough = (transcode_passthrough_t)l->passthrough;
    return 0;
}

/* Chooses the ladder of the broadcast that starts: the webhook's answer
 * for this publish, else the stream's own (registry), else the server's.
 * One that cannot be used is logged and the next applies: a platform's
 * mistake must not keep a seller off the air. Worker thread, at start. */
static void transcode_bladder_choose(transcode_worker_t *w, transcode_bladder_t *b)
{
    transcode_t *t = w->t;
    b->params = t->params;
    memcpy(b->rungs, t->ladder, sizeof(b->rungs));
    b->nrungs = t->nladder;
    const char *source = "server";
    transcode_ladder_t l;
    bool have = false;
    pthread_mutex_lock(&t->lock);
    if (w->stream->next_ladder_set) {
        l = w->stream->next_ladder;
        w->stream->next_ladder_set = false;
        have = true;
    }
    pthread_mutex_unlock(&t->lock);
    char err[256];
    if (have) {
        if (transcode_bladder_apply(t, &l, b, err, sizeof(err)) == 0)
            source = "webhook";
        else
            log_warn(w->ctx, "the webhook's ladder for this publish cannot be used (%s); the "
                             "stream's own or the server's applies", err);
    }
    if (strcmp(source, "server") == 0) {
        store_stream_info_t info;
        int rc = store_stream_get(t->params.store, w->stream->id, &info);
        if (rc == 0 && info.ladder[0]) {
            if (transcode_ladder_parse(info.ladder, t->overrides, t->noverrides, &l, err,
                                       sizeof(err)) == 0 &&
                transcode_bladder_apply(t, &l, b, err, sizeof(err)) == 0)
                source = "stream";
            else
                log_warn(w->ctx, "the stream's own ladder cannot be used (%s); the server's "
                                 "applies", err);
        } else if (rc < 0 && rc != -ENOENT) {
            log_warn(w->ctx, "cannot read the stream's own ladder (%s); the server's applies",
                     strerror(-rc));
        }
        if (strcmp(source, "server") == 0) { /* whatever a failed try left */
            b->params = t->params;
            memcpy(b->rungs, t->ladder, sizeof(b->rungs));
            b->nrungs = t->nladder;
        }
    }
    if (strcmp(source, "server") != 0) {
        char desc[256];
        size_t n = 0;
        desc[0] = '\0';
        for (size_t i = 0; i < b->nrungs && n < sizeof(desc); i++)
            n += (size_t)snprintf(desc + n, sizeof(desc) - n, "%s%s %d kb/s", i ? ", " : "",
                                  b->rungs[i].name, b->rungs[i].bitrate_kbps);
        log_info(w->ctx, "ladder: the %s's (%s; preset %s; passthrough %s)",
                 strcmp(source, "webhook") == 0 ? "webhook" : "stream", desc, b->params.preset,
                 b->params.passthrough == TRANSCODE_PASSTHROUGH_NEVER ? "never" : "auto");
    }
    pthread_mutex_lock(&t->lock);
    snprintf(w->stream->status.ladder_source, sizeof(w->stream->status.ladder_source), "%s",
             source);
    pthread_mutex_unlock(&t->lock);
}

/* Runs pipelines over the stream's input until it ends: through publisher
 * drops (within the reconnect window) and through failures, which replace
 * the decoder and encoders (pipeline_recover) or, when that fails too,
 * the whole pipeline after a back-off; either way the stream continues and
 * no other stream is touched. */
static void transcode_worker_run(transcode_worker_t *w, int64_t first_msn, int threads,
                                 int64_t *next_msn)
{
    transcode_t *t = w->t;
    /* This broadcast's ladder, fixed for its life (a publisher back within
     * the reconnect window, a rebuilt pipeline: the same). */
    transcode_bladder_t *b = calloc(1, sizeof(*b));
    if (!b) {
        log_error(w->ctx, "cannot start packaging: %s", strerror(ENOMEM));
        return;
    }
    transcode_bladder_choose(w, b);
    /* The broadcast's outputs live as long as it (through the reconnect
     * window: open, unfed), not as long as one pipeline. */
    output_set_params_t op = {
        .store = t->params.store,
        .stream_id = w->stream->id,
        .log_ctx = w->ctx,
        .event_cb = t->params.output_event_cb,
        .event_opaque = t->params.output_event_opaque,
        .note_demand = t->params.rung_idle_ms > 0,
    };
    int ret = output_set_new(&op, &w->outputs);
    if (ret < 0)
        log_error(w->ctx, "cannot start the stream's simulcast outputs: %s", strerror(-ret));
    pipeline_params_t pp = {
        .tp = &b->params,
        .rungs = b->rungs,
        .nrungs = b->nrungs,
        .stream_id = w->stream->id,
        .log_ctx = w->ctx,
        .first_msn = first_msn,
        .threads = threads,
        .status_lock = &t->lock,
        .status = &w->stream->status,
        .clock = &w->stream->clock,
        .recorder = transcode_recorder_open(w),
        .outputs = w->outputs,
    };
    pipeline_t *pl = NULL;
    ret = pipeline_new(&pp, &pl);
    if (ret < 0) {
        log_error(w->ctx, "cannot start packaging: %s", strerror(-ret));
        recorder_close(pp.recorder, true);
        output_set_free(w->outputs);
        w->outputs = NULL;
        free(b);
        return;
    }
    int64_t backoff_ms = 0;
    bool superseded = false, handed_over = false;
    int64_t drop_wall_ms = 0;
    for (;;) {
        int err = 0;
        transcode_input_end_t end = transcode_drain(w, pl, &err);
        if (end == TRANSCODE_INPUT_ENDED) {
            /* Ended, but a new publisher may already be waiting (a quick
             * restart, or a takeover racing the old one's end). */
            if (!transcode_next_input(w, false))
                break;
        } else if (end == TRANSCODE_INPUT_DROPPED) {
            bool wait = t->params.reconnect_window_ms > 0;
            drop_wall_ms = clock_wall_ms();
            if (wait && (ret = pipeline_input_break(pl)) < 0)
                log_warn(w->ctx, "could not publish the last media before the drop (%s)",
                         strerror(-ret));
            if (wait)
                log_info(w->ctx, "publisher dropped; waiting up to %.0f s for it to come back",
                         t->params.reconnect_window_ms / 1000.0);
            if (!transcode_next_input(w, wait)) {
                superseded = wait && transcode_superseded(w, pl);
                handed_over = wait && !superseded && t->params.handover && transcode_closing(t);
                break;
            }
        }
        if (end != TRANSCODE_INPUT_FAILED) {
            if (end == TRANSCODE_INPUT_ENDED && (ret = pipeline_input_break(pl)) < 0)
                log_warn(w->ctx, "could not publish the last media of the previous publisher "
                                 "(%s)",
                         strerror(-ret));
            transcode_status_update(w, true, false, NULL);
            continue;
        }
        /* A failure: decoder, encoder, muxer, store or memory; the stage
         * that failed said what and where (failure_internal.h). */
        const char *stage = failure_text();
        char why[sizeof(w->stream->status.last_error)];
        snprintf(why, sizeof(why), "%s (%s)", stage[0] ? stage : "no stage said why",
                 strerror(-err));
        transcode_status_update(w, false, true, why);
        log_error(w->ctx, "stream worker failed: %s; restarting its decoder and encoders", why);
        if ((ret = pipeline_recover(pl)) == 0) {
            backoff_ms = 0;
            continue;
        }
        /* Not even that: a new pipeline (fresh playlists, numbers continue)
         * after a growing pause, while the input keeps arriving. */
        backoff_ms = backoff_ms ? backoff_ms * 2 : TRANSCODE_RESTART_BACKOFF_MS;
        if (backoff_ms > TRANSCODE_RESTART_BACKOFF_MAX_MS)
            backoff_ms = TRANSCODE_RESTART_BACKOFF_MAX_MS;
        log_error(w->ctx, "recovery failed (%s); restarting the stream's pipeline in %.0f s",
                  strerror(-ret), backoff_ms / 1000.0);
        pp.first_msn = pipeline_next_msn(pl);
        pipeline_free(pl);
        pl = NULL;
        transcode_backoff(t, backoff_ms);
        if ((ret = pipeline_new(&pp, &pl)) < 0) {
            log_error(w->ctx, "cannot restart packaging: %s", strerror(-ret));
            *next_msn = pp.first_msn;
            recorder_close(pp.recorder, true);
            output_set_free(w->outputs);
            w->outputs = NULL;
            free(b);
            return;
        }
    }
    if (superseded)
        log_info(w->ctx, "the stream went on from another node meanwhile; its playlists are "
                         "left to that node");
    else if (handed_over)
        transcode_hand_over(w, pl, drop_wall_ms);
    else if ((ret = pipeline_finish(pl)) < 0)
        log_error(w->ctx, "could not end the stream cleanly (%s)", strerror(-ret));
    *next_msn = pipeline_next_msn(pl);
    pipeline_free(pl);
    /* The stream's end (not a drop within the window): every output sends
     * what it has and closes. */
    output_set_free(w->outputs);
    w->outputs = NULL;
    /* The broadcast is over here (the reconnect window has passed): the
     * recording is finalized; a stream handed over at shutdown may go on
     * through another node, so its recording is left for recovery. */
    recorder_close(pp.recorder, !handed_over);
    free(b);
}

static void *transcode_worker_main(void *arg)
{
    transcode_worker_t *w = arg;
    transcode_t *t = w->t;

    /* Linux limits thread names to 15 bytes; a long id is cut, which only
     * affects what tools display. */
    char name[16] = "tc:";
    size_t idlen = strnlen(w->stream->id, sizeof(name) - 4);
    memcpy(name + 3, w->stream->id, idlen);
    name[3 + idlen] = '\0';
    pthread_setname_np(pthread_self(), name);

    pthread_mutex_lock(&t->lock);
    while (w->stream->busy)
        pthread_cond_wait(&t->cond, &t->lock);
    w->stream->busy = true;
    w->stream->have_status = true;
    memset(&w->stream->status, 0, sizeof(w->stream->status));
    w->stream->status.live = true;
    bool load_msn = !w->stream->next_msn_loaded;
    t->live++;
    int threads = t->cpus / t->live;
    if (threads < 1)
        threads = 1;
    pthread_mutex_unlock(&t->lock);

    /* The first broadcast of a stream in this process continues the numbers
     * the store remembers (another node's, or an earlier process's), so that
     * no segment name is ever reused. `busy` makes this worker the stream's
     * only writer, so the record can be read without the lock held. */
    if (load_msn) {
        int64_t stored = transcode_stored_next_msn(t->params.store, w->stream->id);
        if (stored < 0) {
            /* The store is away (a Redis failover just after this node took
             * the stream over): the clock, which runs ahead of every
             * number a broadcast counted from it (4 a second, at most 2
             * segments a second), keeps names from being reused. */
            pthread_mutex_lock(&t->lock);
            int64_t clock = clock_wall_ms() / 250;
            if (t->params.msn_from_clock && clock > w->stream->next_msn)
                w->stream->next_msn = clock;
            pthread_mutex_unlock(&t->lock);
            log_warn(w->ctx, "cannot read the stream's last segment number (%s); numbering "
                             "continues from %s",
                     strerror((int)-stored),
                     t->params.msn_from_clock ? "the clock" : "this node's own count");
        } else {
            pthread_mutex_lock(&t->lock);
            if (stored > w->stream->next_msn)
                w->stream->next_msn = stored;
            if (w->stream->next_msn == 0 && t->params.msn_from_clock)
                w->stream->next_msn = clock_wall_ms() / 250;
            w->stream->next_msn_loaded = true;
            pthread_mutex_unlock(&t->lock);
            if (stored > 0)
                log_info(w->ctx, "continuing at segment %" PRId64, stored);
        }
    }
    pthread_mutex_lock(&t->lock);
    int64_t first_msn = w->stream->next_msn;
    pthread_mutex_unlock(&t->lock);

    int64_t next_msn = first_msn;
    transcode_worker_run(w, first_msn, threads, &next_msn);
    media_packet_list_free(w->pending);
    w->pending = NULL;
    media_queue_unref(w->queue);
    w->queue = NULL;

    pthread_mutex_lock(&t->lock);
    if (next_msn > w->stream->next_msn)
        w->stream->next_msn = next_msn;
    if (w->stream->handoff) {
        /* Only when the pipeline could not be made at all. */
        log_error(w->ctx, "a returning publisher could not be taken: the stream's worker failed");
        media_queue_unref(w->stream->handoff);
        w->stream->handoff = NULL;
    }
    w->stream->busy = false;
    w->stream->finishing = false;
    w->stream->status.live = false;
    t->live--;
    w->done = true;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

/* Joins and frees finished workers. Lock held; they no longer take it. */
static void transcode_reap(transcode_t *t)
{
    transcode_worker_t **pp = &t->workers;
    while (*pp) {
        transcode_worker_t *w = *pp;
        if (w->done) {
            *pp = w->next;
            pthread_join(w->thread, NULL);
            free(w);
        } else {
            pp = &w->next;
        }
    }
}

int transcode_stream_start(transcode_t *t, const char *stream_id, media_queue_t *queue)
{
    if (!t || !stream_id || !queue || !store_id_valid(stream_id))
        return -EINVAL;
    transcode_worker_t *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    int ret = 0;
    pthread_mutex_lock(&t->lock);
    transcode_reap(t);
    transcode_stream_t *s = transcode_stream_find(t, stream_id);
    if (s && s->busy && !s->finishing && t->params.reconnect_window_ms > 0) {
        /* Its worker continues the same playlists with this publisher once
         * the previous one's input has ended (dropped, taken over). A
         * publisher handed over before and not yet taken was taken over. */
        media_queue_unref(s->handoff);
        s->handoff = media_queue_ref(queue);
        pthread_cond_broadcast(&t->cond);
        pthread_mutex_unlock(&t->lock);
        free(w);
        return 0;
    }
    if (!s && !(s = transcode_stream_record(t, stream_id))) {
        ret = -ENOMEM;
        goto fail;
    }
    w->t = t;
    w->stream = s;
    w->queue = media_queue_ref(queue);
    snprintf(w->ctx, sizeof(w->ctx), "stream=%s", stream_id);
    ret = -pthread_create(&w->thread, NULL, transcode_worker_main, w);
    if (ret < 0) {
        media_queue_unref(w->queue);
        log_error(w->ctx, "cannot start the transcode worker: %s", strerror(-ret));
        goto fail;
    }
    w->next = t->workers;
    t->workers = w;
    pthread_mutex_unlock(&t->lock);
    return 0;

fail:
    pthread_mutex_unlock(&t->lock);
    free(w);
    return ret;
}

int transcode_stream_status(transcode_t *t, const char *stream_id,
                            transcode_stream_status_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!t || !stream_id)
        return -EINVAL;
    int ret = -ENOENT;
    pthread_mutex_lock(&t->lock);
    for (transcode_stream_t *s = t->streams; s; s = s->next) {
        if (strcmp(s->id, stream_id) == 0 && s->have_status) {
            *out = s->status;
            snprintf(out->stream_id, sizeof(out->stream_id), "%s", s->id);
            ret = 0;
            break;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return ret;
}

int transcode_stream_clock(transcode_t *t, const char *stream_id, int64_t dts_ms,
                           int64_t *media_ms, int64_t *pdt_ms)
{
    if (!t || !stream_id)
        return -ENOENT;
    int ret = -ENOENT;
    pthread_mutex_lock(&t->lock);
    for (transcode_stream_t *s = t->streams; s; s = s->next) {
        if (strcmp(s->id, stream_id) != 0)
            continue;
        ret = s->busy && s->clock.valid ? 0 : -EAGAIN;
        if (ret == 0)
            packager_clock_map(&s->clock, dts_ms, media_ms, pdt_ms);
        break;
    }
    pthread_mutex_unlock(&t->lock);
    return ret;
}

int transcode_list(transcode_t *t, transcode_stream_status_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!t)
        return 0;
    pthread_mutex_lock(&t->lock);
    size_t cnt = 0;
    for (transcode_stream_t *s = t->streams; s; s = s->next)
        cnt += s->have_status;
    transcode_stream_status_t *res = cnt ? calloc(cnt, sizeof(*res)) : NULL;
    if (cnt && !res) {
        pthread_mutex_unlock(&t->lock);
        return -ENOMEM;
    }
    size_t i = 0;
    for (transcode_stream_t *s = t->streams; s; s = s->next) {
        if (!s->have_status)
            continue;
        res[i] = s->status;
        snprintf(res[i].stream_id, sizeof(res[i].stream_id), "%s", s->id);
        i++;
    }
    pthread_mutex_unlock(&t->lock);
    *out = res;
    *n = cnt;
    return 0;
}

void transcode_get_stats(transcode_t *t, transcode_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    out->workers = t->live;
    out->cpus = t->cpus;
    pthread_mutex_unlock(&t->lock);
}

void transcode_free(transcode_t *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    transcode_worker_t *w = t->workers;
    t->workers = NULL;
    t->closing = true;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
    if (t->have_janitor)
        pthread_join(t->janitor, NULL);
    /* Joined without the lock: running workers take it when they finish. */
    while (w) {
        transcode_worker_t *next = w->next;
        pthread_join(w->thread, NULL);
        free(w);
        w = next;
    }
    transcode_stream_t *s = t->streams;
    while (s) {
        transcode_stream_t *next = s->next;
        media_queue_unref(s->handoff);
        free(s);
        s = next;
    }
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->lock);
    free(t->overrides);
    free(t);
}

/* ---- libav* log routing --------------------------------------------------- */

static void transcode_libav_log_cb(void *avcl, int level, const char *fmt, va_list vl)
{
    log_level_t ours;
    if (level <= AV_LOG_ERROR)
        ours = LOG_LEVEL_ERROR;
    else if (level <= AV_LOG_WARNING)
        ours = LOG_LEVEL_WARN;
    else if (level <= AV_LOG_INFO)
        ours = LOG_LEVEL_DEBUG; /* libav's info chatter is debug for us */
    else
        return;
    if (ours > log_current_level)
        return;
    char msg[1024];
    int print_prefix = 1;
    av_log_format_line2(avcl, level, fmt, vl, msg, sizeof(msg), &print_prefix);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    /* On a simulcast output's thread libav may quote the destination's URL
     * with its key (the SRT protocol does when it cannot connect). */
    char clean[sizeof(msg)];
    if (output_log_scrub(msg, clean, sizeof(clean))) {
        memcpy(msg, clean, sizeof(msg));
        n = strlen(msg);
    }
    if (n > 0)
        log_write(ours, "libav", "%s", msg);
}

void transcode_log_route_libav(void)
{
    av_log_set_callback(transcode_libav_log_cb);
}
