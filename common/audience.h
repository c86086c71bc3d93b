/*
 * The one owner of what a player reports about a playback session
 * (docs/audience.md): the states, the names' grammar, and the record one
 * session leaves in the store. The origin parses beacons into an
 * audience_session_t and writes it with audience_record_format (meta field
 * AUDIENCE_FIELD_PREFIX + session id); the aggregator reads it back with
 * audience_record_parse. Nothing else spells the record.
 *
 * Record (ASCII, one line, fields separated by one space):
 *   "1 STATE REND LATENCY STARTUP STALLS STALL_MS WATCH_MS DROPPED ERRORS"
 * "1" is the format version; STATE a state name; REND a rendition name or
 * "-" (unknown); the rest decimal integers, -1 for "not reported" where a
 * field is optional (LATENCY, STARTUP), else 0 when not reported.
 *
 * Pure functions, no state: any thread.
 */
#ifndef SLUICE_COMMON_AUDIENCE_H
#define SLUICE_COMMON_AUDIENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUDIENCE_FIELD_PREFIX "aud."
#define AUDIENCE_SESSION_MIN 16
#define AUDIENCE_SESSION_MAX 64     /* characters, without the NUL */
#define AUDIENCE_RENDITION_MAX 15   /* characters, without the NUL */
#define AUDIENCE_RECORD_MAX 160     /* a formatted record with its NUL */

/* Upper bounds of the reported numbers (a beacon beyond them is refused). */
#define AUDIENCE_LATENCY_MS_MAX 3600000
#define AUDIENCE_STARTUP_MS_MAX 600000
#define AUDIENCE_COUNT_MAX 1000000       /* stalls, errors */
#define AUDIENCE_DURATION_MS_MAX 86400000 /* stall_ms, watch_ms */
#define AUDIENCE_DROPPED_MAX 100000000

typedef enum audience_state {
    AUDIENCE_STARTING = 0,
    AUDIENCE_PLAYING,
    AUDIENCE_STALLED,
    AUDIENCE_PAUSED,
    AUDIENCE_ENDED,
    AUDIENCE_ERROR,
    AUDIENCE_STATES,
} audience_state_t;

typedef struct audience_session {
    audience_state_t state;
    char rendition[AUDIENCE_RENDITION_MAX + 1]; /* "": unknown */
    int64_t latency_ms;                         /* -1: not reported */
    int64_t startup_ms;                         /* -1: not reported */
    int64_t stalls;
    int64_t stall_ms;
    int64_t watch_ms;
    int64_t dropped_frames;
    int64_t errors;
} audience_session_t;

/* "starting", ...; NULL for a value out of range. */
const char *audience_state_name(audience_state_t s);
/* 0 and *out, or -EINVAL for a name that is not a state. n: its length. */
int audience_state_parse(const char *name, size_t n, audience_state_t *out);
/* Whether the state counts the session as watching (not ended, not error). */
bool audience_state_watching(audience_state_t s);

/* A session id: AUDIENCE_SESSION_MIN..MAX of A-Za-z0-9_- . */
bool audience_session_id_valid(const char *id, size_t n);
/* A rendition name: 1..AUDIENCE_RENDITION_MAX of a-z0-9_- , not "-" alone
 * (the record's "unknown"). */
bool audience_rendition_valid(const char *name, size_t n);

/* A session with nothing reported: starting, unknown rendition. */
void audience_session_init(audience_session_t *s);

/* Writes the record (NUL-terminated) and returns its length, or -EINVAL
 * for a session whose fields are out of range, -ENAMETOOLONG when cap is
 * too small (AUDIENCE_RECORD_MAX always fits). */
int audience_record_format(const audience_session_t *s, char *out, size_t cap);
/* How every record of an ended session begins: the session said goodbye,
 * and a record of it from a beacon sent earlier (arriving later, or at
 * another origin) must not replace it (store_meta_put_unless_final). */
const char *audience_record_final_prefix(void);
/* Reads a record back: 0, or -EINVAL for anything but the exact form
 * audience_record_format writes (the store is shared, so a value from
 * another version or a stray writer is refused, not guessed at). */
int audience_record_parse(const char *value, audience_session_t *out);

#endif
