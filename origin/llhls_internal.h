/*
 * The request side of LL-HLS (RFC 8216bis 6.2.5, 6.2.6) for the origin:
 *
 * - llhls_query_parse(): the delivery directives _HLS_msn, _HLS_part,
 *   _HLS_skip of a media playlist request (pure, bounded).
 * - llhls_position_parse(): where a stored media playlist stands (the next
 *   part to come, whether it ended, its target durations), read from the
 *   playlist text itself so that the origin never needs the packager's
 *   state (pure, bounded: one pass over the bytes, no allocation).
 * - llhls_decide_playlist() / llhls_decide_object(): answer now, wait, or
 *   refuse, from a position and a request (pure).
 * - llhls_hub_t: the waiting room. A held request is a suspended
 *   libmicrohttpd connection (no thread held); the hub keeps one store
 *   watch per stream with held requests, resumes them when the stream
 *   changes, and resumes them from its timer thread when their deadline
 *   passes. It knows nothing of MHD: suspending and resuming a connection
 *   are callbacks, so it is unit-tested with plain threads.
 *
 * Threads: the parsers and deciders are pure (any thread). The hub is used
 * from any thread; its callbacks run on the store's notifying thread, the
 * hub's timer thread, or the caller's thread.
 */
#ifndef SLUICE_ORIGIN_LLHLS_INTERNAL_H
#define SLUICE_ORIGIN_LLHLS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* ---- delivery directives (RFC 8216bis 6.2.5) ---------------------------- */

typedef enum llhls_skip {
    LLHLS_SKIP_NONE = 0,
    LLHLS_SKIP_YES, /* _HLS_skip=YES: REND/index-skip.m3u8 */
    LLHLS_SKIP_V2,  /* _HLS_skip=v2: REND/index-skip2.m3u8 */
} llhls_skip_t;

typedef struct llhls_query {
    bool has_msn;
    bool has_part;
    int64_t msn;  /* _HLS_msn, when has_msn */
    int64_t part; /* _HLS_part, when has_part */
    llhls_skip_t skip;
} llhls_query_t;

/* Longest directive value we read (a decimal-integer of int64 has 19 digits). */
#define LLHLS_VALUE_MAX 32

/*
 * Parses the three directives' values as libmicrohttpd hands them over:
 * each is NULL when the parameter is absent, else the (percent-decoded)
 * value of `len` bytes (0 for "_HLS_msn" or "_HLS_msn="). Returns 0, or
 * -EINVAL for what RFC 8216bis 6.2.5.2 answers with 400 Bad Request:
 * _HLS_part without _HLS_msn, or a value that is not a decimal-integer
 * (empty, sign, other bytes, or beyond INT64_MAX). An _HLS_skip value other
 * than "YES" or "v2" is ignored (a full playlist is always a valid answer).
 */
int llhls_query_parse(const char *msn, size_t msn_len, const char *part, size_t part_len,
                      const char *skip, size_t skip_len, llhls_query_t *out);

/* True when the query asks for a blocking reload. */
static inline bool llhls_query_blocking(const llhls_query_t *q)
{
    return q->has_msn;
}

/* ---- where a stored playlist stands -------------------------------------- */

typedef struct llhls_position {
    int64_t media_sequence;  /* EXT-X-MEDIA-SEQUENCE (0 when absent) */
    int64_t segments;        /* complete segments listed (EXTINF, plus EXT-X-SKIP's count) */
    /* The next part to come: every part of the segments before next_msn
     * exists, and parts 0..next_part-1 of segment next_msn exist. From the
     * PART preload hint when there is one, else media_sequence + segments
     * and the parts listed after the last segment. */
    int64_t next_msn;
    int64_t next_part;
    int64_t last_segment_parts; /* EXT-X-PART lines of the last complete segment (0: unknown) */
    int target_duration_s;   /* EXT-X-TARGETDURATION (0: absent) */
    int part_target_ms;      /* EXT-X-PART-INF:PART-TARGET in ms (0: absent, no parts) */
    bool ended;              /* EXT-X-ENDLIST */
    bool has_hint;           /* EXT-X-PRELOAD-HINT:TYPE=PART with a parsable URI */
    bool can_block_reload;   /* EXT-X-SERVER-CONTROL CAN-BLOCK-RELOAD=YES */
    bool can_skip;           /* EXT-X-SERVER-CONTROL CAN-SKIP-UNTIL present */
} llhls_position_t;

/* Longest playlist text looked at; anything after it is ignored. */
#define LLHLS_PLAYLIST_MAX (4u << 20)

/*
 * Reads the position of the media playlist text[0..len). Always fills *out
 * (lines it does not understand are skipped); returns 0, or -EPROTO when the
 * text does not start with #EXTM3U.
 */
int llhls_position_parse(const char *text, size_t len, llhls_position_t *out);

/* Parses a part or segment name "N.P.m4s" / "N.m4s" (hls_names.h), after
 * any directory and before any query.
 * 0 with *msn, *part (-1 for a segment), else -EINVAL. */
int llhls_media_name_parse(const char *name, size_t len, int64_t *msn, int64_t *part);

/* RFC 8216bis 6.2.5.2: the Advance Part Limit, in parts: 3 / PART-TARGET
 * when the part target is under a second, else 3. */
int64_t llhls_advance_part_limit(const llhls_position_t *pos);

/* The hold limit of a blocking request, ms: three target durations
 * (RFC 8216bis 6.2.5.2); fallback_s when the playlist has none. */
int64_t llhls_hold_limit_ms(const llhls_position_t *pos, double fallback_s);

typedef enum llhls_decision {
    LLHLS_ANSWER = 0,    /* serve it now */
    LLHLS_WAIT,          /* hold the request until the stream changes */
    LLHLS_BAD_REQUEST,   /* 400 now (RFC 8216bis 6.2.5.2) */
    LLHLS_NOT_FOUND,     /* 404 now: the object will not come (6.2.6) */
    LLHLS_NEXT_SEGMENT,  /* a hinted part that the segment ended before: part 0 of
                          * the next segment took its place (serve that one) */
} llhls_decision_t;

/* A media playlist request with directives q, against a playlist at pos. */
llhls_decision_t llhls_decide_playlist(const llhls_position_t *pos, const llhls_query_t *q);

/* A part (part >= 0) or segment (part < 0) of msn that is NOT in the store
 * yet, against its rendition's playlist at pos: LLHLS_WAIT when it is the
 * hinted next part or within the Advance Part Limit past it (or the segment
 * in progress); LLHLS_NEXT_SEGMENT for the part one past the last of the
 * newest complete segment (the one the preload hint named before a
 * keyframe ended that segment early: part 0 of segment msn + 1 is what
 * follows it in time); else LLHLS_NOT_FOUND. */
llhls_decision_t llhls_decide_object(const llhls_position_t *pos, int64_t msn, int64_t part);

/* ---- the waiting room ---------------------------------------------------- */

typedef struct llhls_hub llhls_hub_t;
typedef struct llhls_group llhls_group_t;

/* Suspends or resumes the connection `conn` (MHD_suspend_connection /
 * MHD_resume_connection). Called with the hub's lock held: they must not
 * call back into the hub. */
typedef void (*llhls_conn_cb)(void *conn);

typedef enum llhls_hold_state {
    LLHLS_HOLD_OFF = 0,   /* not in the hub */
    LLHLS_HOLD_RUNNING,   /* in the hub; its handler is running */
    LLHLS_HOLD_SUSPENDED, /* in the hub; its connection is suspended */
} llhls_hold_state_t;

/* One held request; embedded in the caller's per-request state and
 * zero-initialised. Fields are the hub's (under its lock). */
typedef struct llhls_hold {
    struct llhls_hold *prev, *next; /* in its group */
    llhls_group_t *group;
    llhls_hub_t *hub;
    void *conn;
    int64_t deadline_ms; /* clock_mono_ms() */
    llhls_hold_state_t state;
    bool woken;   /* the stream changed since the last arm */
    bool expired; /* the deadline passed (or the hub is shutting down) */
} llhls_hold_t;

int llhls_hub_new(store_t *st, llhls_conn_cb suspend, llhls_conn_cb resume, llhls_hub_t **out)
    __attribute__((warn_unused_result));
/* Refuses new holds, wakes every held one (they see llhls_hold_expired())
 * and waits up to timeout_ms until all have left. Returns how many are
 * still in (0 when it is safe to stop the HTTP daemon). */
size_t llhls_hub_shutdown(llhls_hub_t *hub, int timeout_ms);
/* Stops the timer thread and frees the hub; every hold must have left.
 * NULL does nothing. */
void llhls_hub_free(llhls_hub_t *hub);
/* Requests held right now (in the hub). */
size_t llhls_hub_count(llhls_hub_t *hub);

/*
 * Before every (re-)read of the store for this request: joins the hub on
 * the first call (stream_id, conn, deadline_ms), and makes sure a watch is
 * armed on the stream, so that any commit from now on wakes this hold.
 * Then read, decide, and either answer (llhls_hold_leave) or
 * llhls_hold_suspend. -ESHUTDOWN when the hub is shutting down, -ENOMEM,
 * -EINVAL for an invalid stream id.
 */
int llhls_hold_arm(llhls_hub_t *hub, llhls_hold_t *h, const char *stream_id, void *conn,
                   int64_t deadline_ms) __attribute__((warn_unused_result));
/* The deadline passed, or the hub is shutting down: answer now. */
bool llhls_hold_expired(llhls_hold_t *h);
/* Suspends the connection unless the stream changed or the deadline passed
 * since the last arm: true when suspended (return to MHD; the hub resumes it
 * later), false when the caller must arm and re-read again. */
bool llhls_hold_suspend(llhls_hold_t *h);
/* Leaves the hub (answered, or the request is gone). Idempotent; must not
 * be called while the connection is suspended. */
void llhls_hold_leave(llhls_hold_t *h);

#endif
