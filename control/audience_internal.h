/*
 * The audience of one live stream, aggregated from the playback sessions'
 * store records (common/audience.h; the origin writes one meta field
 * "aud.<session>" per session it heard from within --audience-timeout).
 *
 * One scan of the stream's records is begin -> add (once per record) ->
 * end, which yields the figures of the "audience" object (docs/api.md):
 * the scan's own counts (viewers, renditions, states, rebuffer ratio,
 * startup and latency percentiles, sums) and the broadcast's running
 * totals (peak, distinct sessions, watch time). abort() forgets a scan
 * that could not finish (the store failed half-way): the totals then stay
 * as they were, so a store outage never counts a session twice.
 *
 * Across scans the aggregator keeps only the sessions of the last
 * finished scan (id -> last watch_ms, a sorted array), so its memory
 * follows the concurrent audience, not the broadcast's history: a session
 * id absent from the previous scan is new (sessions_total + 1) and its
 * whole watch_ms counts; one seen before adds what its watch_ms grew by; a
 * session that goes away keeps what it added. A session silent for longer
 * than the timeout that comes back is therefore counted again (documented).
 *
 * Bounds: AUDIENCE_AGG_SESSIONS_MAX records per scan (the rest are counted
 * in `ignored`, never aggregated); rendition names are bounded to the
 * stream's own when the caller knows them, else to the first
 * AUDIENCE_AGG_RENDITIONS_MAX distinct names; the rest count as "other",
 * so a forged name never becomes a metric label of its own.
 *
 * Pure computation, no I/O, no locks: one aggregator is used by one thread
 * at a time (the report thread, control/report.c).
 */
#ifndef SLUICE_CONTROL_AUDIENCE_INTERNAL_H
#define SLUICE_CONTROL_AUDIENCE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "audience.h"

/* Records one scan of one stream aggregates (the origin keeps at most 20000
 * sessions per stream per node). */
#define AUDIENCE_AGG_SESSIONS_MAX 200000
/* Distinct rendition names kept when the stream's own are not known. */
#define AUDIENCE_AGG_RENDITIONS_MAX 16
/* The names a rendition count may carry besides a rendition's own. */
#define AUDIENCE_AGG_UNKNOWN "unknown"
#define AUDIENCE_AGG_OTHER "other"

typedef struct audience_rendition_count {
    char name[AUDIENCE_RENDITION_MAX + 1];
    uint64_t n;
} audience_rendition_count_t;

/* What one finished scan yields. */
typedef struct audience_figures {
    /* This scan. */
    uint64_t heard;          /* records aggregated, any state: > 0 means beacons are the source */
    uint64_t beacon_viewers; /* sessions whose state is watching (audience_state_watching) */
    uint64_t states[AUDIENCE_STATES];
    /* Playing, stalled and paused sessions by rendition; "unknown" for
     * none, "other" for a name over the bound. Order: first seen. */
    audience_rendition_count_t renditions[AUDIENCE_AGG_RENDITIONS_MAX + 2];
    size_t nrenditions;
    int64_t stall_ms, watch_ms;      /* sums over the watching sessions */
    double rebuffer_ratio;           /* stall / (watch + stall) of those; 0 when both are 0 */
    bool have_startup, have_latency; /* false: no watching session reported one */
    int64_t startup_p50, startup_p90, latency_p50, latency_p90; /* ms, nearest rank */
    uint64_t dropped_frames, errors; /* sums over the watching sessions */
    uint64_t ignored; /* records left out: malformed, or over AUDIENCE_AGG_SESSIONS_MAX */
    /* The broadcast so far. */
    uint64_t peak;           /* highest beacon_viewers of a finished scan */
    uint64_t sessions_total; /* distinct sessions (see above) */
    int64_t watch_ms_total;  /* sum of watch_ms growth */
} audience_figures_t;

typedef struct audience_agg audience_agg_t;

/* 0, or -ENOMEM. */
int audience_agg_new(audience_agg_t **out) __attribute__((warn_unused_result));
/* NULL does nothing. */
void audience_agg_free(audience_agg_t *a);

/* Starts a scan (a scan still open is aborted first). renditions: the
 * stream's rendition names (borrowed for the scan), or NULL/0 when not
 * known: then the first AUDIENCE_AGG_RENDITIONS_MAX distinct names count. */
void audience_agg_begin(audience_agg_t *a, const char *const *renditions, size_t nrenditions);
/* One session of the scan. 0; -EINVAL for an id that is not a session id
 * (audience_session_id_valid) or a session out of range; -E2BIG over
 * AUDIENCE_AGG_SESSIONS_MAX; -EEXIST for an id already in this scan;
 * -ENOMEM (the scan then fails at end). Refused sessions are counted in
 * `ignored`. */
int audience_agg_add(audience_agg_t *a, const char *session_id, const audience_session_t *s);
/* One store meta field: "aud.<session>" and its record
 * (audience_record_parse), as store_meta_scan hands them. Same returns. */
int audience_agg_add_record(audience_agg_t *a, const char *field, const char *value);
/* Finishes the scan: commits the totals and *out. 0, or -ENOMEM (the scan
 * is aborted, the totals stay). */
int audience_agg_end(audience_agg_t *a, audience_figures_t *out)
    __attribute__((warn_unused_result));
/* Forgets the open scan; the totals and the previous scan's sessions stay. */
void audience_agg_abort(audience_agg_t *a);

/* Continues a broadcast another aggregator was counting (a node that took
 * the stream over, or this process restarted): its totals become ours, and
 * the next finished scan only learns the sessions (none counted as new, no
 * watch time added: the previous aggregator counted them). Call before the
 * first scan. */
void audience_agg_seed(audience_agg_t *a, uint64_t peak, uint64_t sessions_total,
                       int64_t watch_ms_total);

/* Sessions remembered from the last finished scan, and the bytes the
 * aggregator holds between scans (for the bounded-memory test). */
size_t audience_agg_sessions(const audience_agg_t *a);
size_t audience_agg_state_bytes(const audience_agg_t *a);

/* The "audience" object of a live stream's status (docs/api.md): f's
 * figures with request_viewers (the request-based count over every origin)
 * and "viewers"/"source" chosen from the two (beacons when any session was
 * heard from, else requests); updated: ISO-8601 text. A new object, or NULL
 * on OOM. */
json_t *audience_figures_json(const audience_figures_t *f, uint64_t request_viewers,
                              const char *updated);
/* The totals kept after the broadcast (meta "audience.last"): peak,
 * sessions_total, watch_time_s, ended_at. NULL on OOM. */
json_t *audience_last_json(const audience_figures_t *f, const char *ended_at);

#endif
