/*
 * The public HTTP origin: playlists, init segments and segments straight
 * from the store, recordings (/vod/) from --recordings-dir, /healthz and
 * /readyz. libmicrohttpd runs it on its own
 * thread pool; handlers only read immutable blobs from the store.
 *
 * It also measures itself (origin_get_stats: requests and bytes by kind and
 * status, a latency histogram, open connections) and counts viewer sessions
 * per stream (origin_viewers, origin_viewers_list); those may be called
 * from any thread.
 */
#ifndef SLUICE_ORIGIN_ORIGIN_H
#define SLUICE_ORIGIN_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct origin origin_t;

typedef struct origin_params {
    const char *http_listen; /* "HOST:PORT" */
    store_t *store;
    unsigned int threads;    /* MHD thread pool size (0: one per CPU) */
    unsigned int max_connections;
    unsigned int timeout_s;              /* silent connection closed after (0: 15) */
    unsigned int max_connections_per_ip; /* 0: no limit */
    unsigned int max_held;               /* LL-HLS requests held at once (0: 5000) */
    unsigned int max_held_per_ip;        /* ... by one client address once half are (0: 64) */
    /* HLS timing of the streams the packager writes; the origin's cache
     * lifetimes and blocking-request limits derive from them. */
    double segment_duration;  /* target seconds */
    double part_duration;     /* LL-HLS part target, seconds; 0: LL-HLS off */
    bool playlist_no_cache;   /* --playlist-cache no-cache */
    const char *cors_origin;  /* Access-Control-Allow-Origin; NULL: "*" */
    const char *playback_secret; /* NULL: playback is open; else signed tokens */
    /* Peers whose X-Forwarded-For is believed for viewer counting:
     * "ADDR[/BITS],..." IPv4 and IPv6; NULL or "": none. A bad list makes
     * origin_open fail with -EINVAL. */
    const char *trusted_proxies;
    /* --recordings-dir: /vod/RID/... is served from it (a recording whose
     * recording.json says "ready"); NULL: /vod/ is 404. */
    const char *recordings_dir;
    /* Audience beacons (POST /beacon/ID, docs/urls.md): --beacons off makes
     * the endpoint 404; a session not heard from for audience_timeout_s
     * (0: 30) is gone; one client address may hold audience_per_address
     * (0: 50) live sessions per stream on this node. */
    bool beacons_off;
    unsigned int audience_timeout_s;
    unsigned int audience_per_address;
    size_t max_viewer_sessions;            /* in total (0: 65536) */
    size_t max_viewer_sessions_per_stream; /* (0: 20000) */
    /* /hls/ID/thumbnail.jpg?width=N: the stored JPEG scaled to width
     * (transcode's thumbnail_scale; app.c wires it, so the origin never
     * links libav). 0 or a negative errno, *out a new blob; any thread.
     * NULL: ?width is refused. */
    int (*thumbnail_scale)(const uint8_t *jpeg, size_t size, int width, blob_t **out);
    /* --rungs on-demand: requests for a video rendition's playlist, parts
     * and segments note the demand in the store (store_demand_note), and a
     * request for the playlist of a rung that is idle (named by the master,
     * its playlist withdrawn) is held until the rung is back. */
    bool rungs_on_demand;
} origin_params_t;

int origin_open(const origin_params_t *params, origin_t **out)
    __attribute__((warn_unused_result));
int origin_port(const origin_t *o);
/* Stops the listener and frees everything. NULL does nothing. */
void origin_close(origin_t *o);

/* What a request asked for, by the path grammar. */
typedef enum origin_kind {
    ORIGIN_KIND_PLAYLIST = 0,
    ORIGIN_KIND_PART,
    ORIGIN_KIND_SEGMENT,
    ORIGIN_KIND_INIT,
    ORIGIN_KIND_OTHER, /* health checks, 404s, OPTIONS, ... */
    ORIGIN_KINDS,
} origin_kind_t;

/* What became of an audience beacon (POST /beacon/ID). */
typedef enum origin_beacon_result {
    ORIGIN_BEACON_ACCEPTED = 0, /* 204 */
    ORIGIN_BEACON_BAD_REQUEST,  /* 400 */
    ORIGIN_BEACON_FORBIDDEN,    /* 403 */
    ORIGIN_BEACON_NOT_FOUND,    /* 404: no such stream, not live, or --beacons off */
    ORIGIN_BEACON_TOO_LARGE,    /* 413 */
    ORIGIN_BEACON_LIMITED,      /* 429 */
    ORIGIN_BEACON_RESULTS,
} origin_beacon_result_t;

/* Status codes counted one by one; any other is counted as "other". 499:
 * the client went away before an answer was queued (nginx's convention). */
#define ORIGIN_CODES 16
/* Latency histogram upper bounds, seconds (ORIGIN_LATENCY_BUCKETS of them,
 * plus the overflow bucket). A held LL-HLS request counts its whole wait. */
#define ORIGIN_LATENCY_BUCKETS 14
extern const double origin_latency_bounds[ORIGIN_LATENCY_BUCKETS];

typedef struct origin_stats {
    uint64_t requests[ORIGIN_KINDS][ORIGIN_CODES]; /* answered requests */
    uint64_t bytes[ORIGIN_KINDS];                  /* response body bytes queued */
    uint64_t latency[ORIGIN_KINDS][ORIGIN_LATENCY_BUCKETS + 1]; /* per bucket, not cumulative */
    double latency_sum_s[ORIGIN_KINDS];
    uint64_t connections_open;  /* MHD's current connections (gauge) */
    uint64_t viewer_sessions;   /* alive now, all streams (gauge) */
    uint64_t viewer_sessions_created;
    uint64_t viewer_sessions_refused; /* over a cap */
    uint64_t held_requests;       /* LL-HLS requests held now (gauge) */
    uint64_t held_refused;        /* answered at once: --http-max-held reached */
    uint64_t hints_moved;         /* hinted parts a keyframe pre-empted, answered with the
                                   * next segment's part 0 */
    uint64_t connections_refused; /* closed at accept: a connection limit reached */
    /* Rungs on demand: demand records written to the store, and playlist
     * requests held because their rung was idle. */
    uint64_t demand_writes;
    uint64_t cold_holds;
    /* Audience beacons by answer (origin_beacon_result_name), and this
     * node's sessions that sent one within --audience-timeout (gauge). */
    uint64_t beacons[ORIGIN_BEACON_RESULTS];
    uint64_t beacon_sessions;
    uint64_t beacon_store_errors; /* session records the store refused */
} origin_stats_t;

/* "accepted", "bad_request", "forbidden", "not_found", "too_large",
 * "limited" (the label of sluice_beacons_total{result}). */
const char *origin_beacon_result_name(origin_beacon_result_t r);

const char *origin_kind_name(origin_kind_t k);
/* The label of code index i ("200", ..., "other"). */
const char *origin_code_label(size_t i);

/* Copies the counters; any thread. o may be NULL (all zero). */
void origin_get_stats(origin_t *o, origin_stats_t *out);

/* Concurrent viewer sessions of stream_id on this origin; any thread. */
uint64_t origin_viewers(origin_t *o, const char *stream_id);

typedef struct origin_stream_viewers {
    char stream_id[STORE_ID_MAX];
    uint64_t viewers;
} origin_stream_viewers_t;
/* Every stream with viewers on this origin: a malloc'd array the caller
 * frees; 0 or -ENOMEM. */
int origin_viewers_list(origin_t *o, origin_stream_viewers_t **out, size_t *n);

/* Whether spec is a valid --trusted-proxies list (addresses and ADDR/BITS
 * networks, at most 64): 0, or -EINVAL with the reason in why. */
int origin_check_trusted_proxies(const char *spec, char *why, size_t whylen);

#endif
