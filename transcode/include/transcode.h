/*
 * Transcode and packaging: one worker thread per live stream drains the
 * stream's media queue, decodes the source video once, scales and encodes
 * it into an adaptive ladder of H.264 renditions (libswscale + libx264 via
 * libavcodec; a rung matching an H.264 source may be the source copied),
 * encodes audio once into the shared "audio" rendition, packages every
 * rendition as keyframe-aligned CMAF fMP4 HLS and commits init segments,
 * segments and playlists to the store.
 *
 * Threads: transcode_stream_start() is called from the ingest thread; each
 * worker is its own thread and owns its libav contexts (x264 adds its own
 * threads inside, sized by transcode_params_t.cpus and the number of live
 * streams). transcode_stream_status() may be called from any thread.
 * transcode_free() joins every worker.
 */
#ifndef SLUICE_TRANSCODE_TRANSCODE_H
#define SLUICE_TRANSCODE_TRANSCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "media.h"
#include "output.h"
#include "store.h"

#define TRANSCODE_RUNG_NAME_MAX 16
#define TRANSCODE_RUNGS_MAX 8
#define TRANSCODE_PRESET_MAX 16

typedef struct transcode transcode_t;

/* The store object (per stream, never served: the origin's path grammar
 * cannot name it) holding the stream's next unused segment number. */
#define TRANSCODE_NEXT_MSN_NAME "next-msn"

/* Reads a stream's next unused segment number from the store: 0 when the
 * stream has never been packaged, a negative errno when the store cannot
 * say (-EIO). */
int64_t transcode_stored_next_msn(store_t *store, const char *stream_id);

/* One rung of the ladder as configured. Zero / empty fields of an override
 * keep the built-in (or the previous) value. */
typedef struct transcode_rung_spec {
    char name[TRANSCODE_RUNG_NAME_MAX]; /* "720p" */
    int width, height;                  /* the landscape box; height is the short side */
    int bitrate_kbps;                   /* target (x264 ABR) */
    int maxrate_kbps;                   /* VBV max rate; 0: 1.5 x bitrate */
    char profile[16];                   /* "high", "main", "baseline"; "": high */
    char preset[TRANSCODE_PRESET_MAX];  /* "": the stream-wide --preset */
} transcode_rung_spec_t;

typedef enum transcode_passthrough {
    TRANSCODE_PASSTHROUGH_AUTO = 0, /* an H.264 source's matching rung is copied */
    TRANSCODE_PASSTHROUGH_NEVER,
} transcode_passthrough_t;

/*
 * A stream's own ladder: "ladder" in POST/PATCH /api/v1/streams and in the
 * publish-authorisation webhook's answer (docs/api.md, "Per-stream
 * ladders"). Every field is optional; what is not given is the server's
 * (--ladder with the [rung.NAME] sections, --preset, --passthrough):
 *
 *   {"rungs": ["720p", {"name": "480p", "bitrate_kbps": 1000}, "360p"],
 *    "preset": "veryfast", "passthrough": "auto" | "never"}
 *
 * This is the one grammar of it: the admin API, the webhook answer and the
 * worker that applies it all go through these functions. Pure; any thread.
 */
#define TRANSCODE_LADDER_RUNGS_MAX 4 /* at most the built-in rung count */
#define TRANSCODE_LADDER_KBPS_MIN 100
#define TRANSCODE_LADDER_KBPS_MAX 20000
#define TRANSCODE_LADDER_TEXT_MAX 512 /* the canonical text, NUL included */

typedef struct transcode_ladder_rung {
    char name[TRANSCODE_RUNG_NAME_MAX]; /* a built-in rung or a [rung.NAME] section */
    int bitrate_kbps;                   /* 0: the rung's own */
} transcode_ladder_rung_t;

typedef struct transcode_ladder {
    size_t nrungs; /* 0: the server's --ladder */
    transcode_ladder_rung_t rungs[TRANSCODE_LADDER_RUNGS_MAX];
    char preset[TRANSCODE_PRESET_MAX]; /* "": --preset (and the [rung.NAME] presets) */
    int passthrough;                   /* -1: --passthrough; else a transcode_passthrough_t */
} transcode_ladder_t;

/* Checks a "ladder" value (a JSON object) into *out. `defined`: the rungs
 * the configuration's [rung.NAME] sections define (names besides the
 * built-in ones; NULL/0: none). Returns 0, or -EINVAL with a one-line
 * reason in err that names the field ("ladder.rungs[1].bitrate_kbps: ...").
 * JSON null is -EINVAL too: "no ladder" is the caller's to handle. */
int transcode_ladder_from_json(const json_t *v, const transcode_rung_spec_t *defined,
                               size_t ndefined, transcode_ladder_t *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* The same for the canonical text (below) or any JSON text of the value. */
int transcode_ladder_parse(const char *text, const transcode_rung_spec_t *defined,
                           size_t ndefined, transcode_ladder_t *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* The ladder as the API shows it: only the fields that were given, a rung
 * without its own bit rate as its bare name. NULL on OOM. */
json_t *transcode_ladder_to_json(const transcode_ladder_t *l);
/* The canonical text of l (compact JSON of transcode_ladder_to_json), what
 * the registry stores. 0, or -ENOMEM / -EMSGSIZE. */
int transcode_ladder_format(const transcode_ladder_t *l, char out[TRANSCODE_LADDER_TEXT_MAX])
    __attribute__((warn_unused_result));

typedef struct transcode_params {
    store_t *store;
    double segment_duration; /* target seconds (default 2) */
    int playlist_segments;   /* live window (default 6) */
    double dvr_window;       /* seconds kept in the media playlists for seeking back (0: off) */
    double part_duration;    /* LL-HLS part target, seconds; 0: off (default 0.333) */
    int64_t ended_ttl_ms;    /* how long an ended stream's playlists and media stay (default 600000) */

    /* The ladder: rung names, comma-separated ("1080p,720p,480p,360p"),
     * looked up first in `overrides`, then among the built-in rungs. */
    const char *ladder;                   /* NULL: the default ladder; borrowed until transcode_new returns */
    const transcode_rung_spec_t *overrides; /* per-rung settings from the config file; copied */
    size_t noverrides;
    transcode_passthrough_t passthrough;
    const char *preset;                   /* x264 preset (default "veryfast"); copied */
    int cpus;                             /* cores to share among live streams; 0: online CPUs */
    /* A stream the store has no segment count for starts its numbers at
     * the wall clock in quarter seconds, not at 0, so that the names of a
     * stream restarted on an empty (memory) store never repeat names a CDN
     * may still hold as immutable. false: start at 0 (tests). */
    bool msn_from_clock;
    /* Test aid: simulated extra encoding cost, milliseconds per frame of a
     * 1920x1080 rung at the configured preset (scaled by rung area and the
     * current preset's speed). 0: off. Makes overload protection testable. */
    int debug_slow_encode_ms;
    /* Test aid: the Nth picture given to any transcoded rung of the process
     * fails as an encoder error would, once (worker recovery). 0: off. */
    int debug_fail_encode;
    /* A publisher that drops (ingest's EOS says so) has this long to come
     * back and continue the same playlists; then the stream ends. 0: a
     * drop ends the stream at once. */
    int64_t reconnect_window_ms;
    /* A shared store: at transcode_free, a stream waiting for its dropped
     * publisher is handed over instead of ended (its playlists stay live
     * for the rest of the window: the publisher may come back through
     * another node, whose packager follows on), and a janitor thread ends
     * the playlists of handed-over streams nobody took once their window
     * has passed (on whichever node runs it first). */
    bool handover;
    /* Rungs on demand (--rungs on-demand, docs/operations.md): a
     * transcoded rung nobody asked for (store_demand_note, by the origins)
     * for this long stops encoding until it is asked for again; a
     * recorded broadcast keeps every rung. 0: every rung always encodes. */
    int64_t rung_idle_ms;
    /* Simulcast (output.h, docs/simulcast.md): every broadcast also
     * sends itself to the outputs the registry defines for its stream
     * (store_stream_get_outputs); their events go to output_event_cb
     * (NULL: none). A stream without outputs costs a registry read every
     * 2 s (the set's manager thread) and nothing on the worker. */
    output_event_cb output_event_cb;
    void *output_event_opaque;
    /* Benchmarks: measure without stepping the preset or dropping rungs
     * (speed and health are still measured and reported). */
    bool no_overload_protection;

    /* Recording (recorder.h, docs/recording.md). `record` is the default;
     * record_cb, when set, is asked once when a broadcast starts (on the
     * worker thread) and may override it per stream (dflt is `record`). */
    bool record;
    bool (*record_cb)(void *opaque, const char *stream_id, bool dflt);
    void *record_opaque;
    const char *recordings_dir;  /* NULL: nothing is recorded; copied */
    bool record_mp4;
    /* A recording became ready (worker thread). */
    void (*recording_ready_cb)(void *opaque, const char *rid, const char *stream_id,
                               double duration_s);
    void *recording_ready_opaque;
    /* Retention, checked every 60 s on the janitor thread; 0: off. */
    int64_t recordings_max_age_s;
    uint64_t recordings_max_bytes;
} transcode_params_t;

void transcode_params_default(transcode_params_t *p);

/* Routes libav* log output into the log sink (log.h) at our levels: libav's
 * errors and warnings as ours, its info chatter as debug. Call once at
 * start-up, before any stream starts. */
void transcode_log_route_libav(void);

/* Checks the ladder and the overrides (unknown rung names, bad sizes,
 * presets or profiles are logged and give -EINVAL). */
int transcode_new(const transcode_params_t *params, transcode_t **out)
    __attribute__((warn_unused_result));

/* The rungs the configuration's [rung.NAME] sections define, as given to
 * transcode_new (borrowed until transcode_free; *n may be 0): what a
 * stream's ladder may name besides the built-in rungs. Any thread. */
const transcode_rung_spec_t *transcode_defined_rungs(const transcode_t *t, size_t *n);

/* The ladder the next broadcast of stream_id that starts on this node uses
 * instead of the stream's own (the publish authorisation webhook's answer
 * for the publish about to start); NULL: the stream's own again. A
 * publisher that continues a broadcast (reconnect window) keeps that
 * broadcast's ladder. 0, -EINVAL, -ENOMEM. Any thread. */
int transcode_stream_next_ladder(transcode_t *t, const char *stream_id,
                                 const transcode_ladder_t *l);

/* Starts a worker for stream_id that reads `queue` (it takes its own
 * reference) until an end-of-stream packet. A new broadcast's ladder is
 * the one transcode_stream_next_ladder gave, else the stream's own from
 * the registry (store_stream_info_t.ladder), else the server's; one that
 * cannot be used (a rung the configuration no longer defines) is logged
 * and the next one in that order applies. If a previous worker of the
 * same stream is still finishing, the new one waits for it, so that a
 * stream's objects always have one writer. Segment numbers of a stream are
 * never reused within the process. Returns 0 or a negative errno. */
int transcode_stream_start(transcode_t *t, const char *stream_id, media_queue_t *queue);

typedef enum transcode_health {
    TRANSCODE_HEALTH_GOOD = 0, /* keeping up with room to spare, nothing degraded */
    TRANSCODE_HEALTH_FAIR,     /* preset stepped faster, or little headroom */
    TRANSCODE_HEALTH_POOR,     /* a rung dropped, or falling behind real time */
} transcode_health_t;

typedef struct transcode_rendition_status {
    char name[TRANSCODE_RUNG_NAME_MAX];
    int width, height;
    int bitrate_kbps;     /* measured average of the committed segments (0 before the first) */
    int target_kbps;      /* configured target; 0 for a passthrough rung */
    bool passthrough;
    bool dropped;         /* left out of new segments by overload protection */
    double encoder_speed; /* media seconds encoded per wall second of this rung's encoder; 0 for passthrough */
    uint64_t frames;      /* frames encoded (passthrough: copied) since the stream started */
    bool idle;            /* rungs on demand: not encoded now, nobody asked for it */
    uint64_t wakes;       /* rungs on demand: times it started again when asked for */
} transcode_rendition_status_t;

typedef struct transcode_stream_status {
    char stream_id[STORE_ID_MAX];
    bool live;
    int width, height;    /* source video */
    double fps;
    double speed;         /* whole worker: media seconds per busy wall second (>1: faster than real time) */
    int64_t lag_ms;       /* how long the newest processed packet waited in ingest's queue */
    char preset[TRANSCODE_PRESET_MAX]; /* current x264 preset of the transcoded rungs */
    /* Whose ladder the broadcast has: "server", "stream" (the registry's)
     * or "webhook" (the authorisation's answer). */
    char ladder_source[16];
    int preset_steps;     /* how many steps faster than configured */
    int dropped_rungs;
    transcode_health_t health;
    uint64_t segments;        /* segments committed in this broadcast */
    int64_t segment_lag_ms;   /* newest segment: its closing frame's arrival -> commit */
    double segment_lag_sum_s; /* sum and count of that lag over the broadcast */
    uint64_t segment_lag_count;
    /* The worker's own: waiting for a dropped publisher (live stays true),
     * publishers that came back in this broadcast, recoveries from a
     * failure and the newest failure's reason. */
    bool reconnecting;
    uint32_t reconnects;
    uint32_t restarts;
    char last_error[320]; /* what failed, where, and the errno text */
    size_t nrenditions;
    transcode_rendition_status_t renditions[TRANSCODE_RUNGS_MAX];
} transcode_stream_status_t;

/* A snapshot of a stream's worker, refreshed by the worker at least once
 * per segment. Thread-safe. Returns 0, or -ENOENT when no worker has been
 * started for that id (a finished stream reports live = false). */
int transcode_stream_status(transcode_t *t, const char *stream_id,
                            transcode_stream_status_t *out);

const char *transcode_health_name(transcode_health_t h);
/* Timed metadata: the media time (ms on the playlists' timeline) and
 * program date-time (ms since the epoch) the stream's packager gives a
 * packet of dts_ms of its input now, from the clock its worker publishes
 * (the same arithmetic the packager does). Any thread. Returns 0, -ENOENT
 * (no such stream here), -EAGAIN (no media packaged yet, or an input break
 * not yet resumed). */
int transcode_stream_clock(transcode_t *t, const char *stream_id, int64_t dts_ms,
                           int64_t *media_ms, int64_t *pdt_ms)
    __attribute__((warn_unused_result));

/* Every stream a worker has been started for in this process (live or
 * finished): a malloc'd array of status snapshots the caller frees. */
int transcode_list(transcode_t *t, transcode_stream_status_t **out, size_t *n)
    __attribute__((warn_unused_result));

/* Manager figures: workers writing a stream now, and the cores they share. */
typedef struct transcode_stats {
    int workers;
    int cpus;
} transcode_stats_t;
void transcode_get_stats(transcode_t *t, transcode_stats_t *out);

/* Waits for every worker to finish (their queues must get end-of-stream,
 * which ingest_close() guarantees) and frees everything. NULL does nothing. */
void transcode_free(transcode_t *t);

#endif
