/*
 * This origin node's audience sessions (docs/security.md, "Audience
 * beacons"): per stream and player session id, the state the player last
 * reported, when, and whether the store has it yet; and the limits a
 * beacon passes before it counts:
 *
 *  - per session, a token bucket of AUDIENCE_SESSION_RATE beacons/s, burst
 *    AUDIENCE_SESSION_BURST;
 *  - per client address, AUDIENCE_ADDR_RATE beacons/s, burst
 *    AUDIENCE_ADDR_BURST;
 *  - per client address and stream, at most per_address live sessions (a
 *    beacon that would start one more is refused and not counted);
 *  - at most max_total sessions in all, max_per_stream per stream.
 *
 * Addresses are kept only as a keyed hash (HMAC-SHA256 with a key drawn at
 * random when the table is made, truncated to 16 bytes); an IPv6 address
 * counts by its /64, an IPv4 one by itself. Neither the hash nor the
 * address is ever written to the store or a log line.
 *
 * A session not heard from for timeout_ms is gone: the flush reclaims it
 * once its last record is written (a session that speaks again after its
 * timeout starts afresh, under the caps). audience_sessions_flush() writes each dirty
 * session's record (common/audience.h's format) as the stream's meta
 * AUDIENCE_FIELD_PREFIX + session id with a TTL of timeout_ms; a session
 * that reported `ended` is written with a TTL of AUDIENCE_ENDED_TTL_MS and
 * leaves the table. A store error is counted and logged at most every 10 s;
 * nothing is retried (the player's next beacon makes the session dirty
 * again).
 *
 * Threads: audience_sessions_beacon() runs on MHD's threads under one
 * mutex (a beacon is a lookup, two bucket updates and a copy; players send
 * one every 10 s). The flush copies the dirty records out under the mutex
 * and writes them with it dropped, so a slow store never holds a beacon.
 * audience_sessions_start() runs the flush once a second on its own thread
 * ("audience-flush"); tests call the flush themselves with their own
 * clock. Every time is a monotonic ms value the caller passes.
 */
#ifndef SLUICE_ORIGIN_AUDIENCE_SESSIONS_INTERNAL_H
#define SLUICE_ORIGIN_AUDIENCE_SESSIONS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "audience.h"
#include "store.h"

#define AUDIENCE_SESSION_RATE 1
#define AUDIENCE_SESSION_BURST 5
#define AUDIENCE_ADDR_RATE 20
#define AUDIENCE_ADDR_BURST 60
#define AUDIENCE_ENDED_TTL_MS 5000
#define AUDIENCE_SESSIONS_MAX 65536
#define AUDIENCE_SESSIONS_PER_STREAM_MAX 20000
/* Addresses remembered at once (their buckets); one more is refused until
 * an idle one can be forgotten. */
#define AUDIENCE_ADDRS_MAX 65536

typedef struct audience_sessions audience_sessions_t;

typedef struct audience_sessions_params {
    store_t *store;        /* where the flush writes; not owned */
    int64_t timeout_ms;    /* --audience-timeout */
    uint32_t per_address;  /* --audience-per-address (0: 50) */
    size_t max_total;      /* (0: AUDIENCE_SESSIONS_MAX) */
    size_t max_per_stream; /* (0: AUDIENCE_SESSIONS_PER_STREAM_MAX) */
} audience_sessions_params_t;

typedef enum audience_verdict {
    AUDIENCE_ACCEPTED = 0,
    AUDIENCE_LIMIT_SESSION,  /* the session's bucket is empty */
    AUDIENCE_LIMIT_ADDRESS,  /* the address's bucket is empty */
    AUDIENCE_LIMIT_PER_ADDRESS, /* one session more than per_address for the stream */
    AUDIENCE_LIMIT_FULL,     /* the table (or the stream's share, or the address list) is full */
} audience_verdict_t;

int audience_sessions_new(const audience_sessions_params_t *p, audience_sessions_t **out)
    __attribute__((warn_unused_result));
/* Stops the flush thread (after one last flush) and frees. NULL: nothing. */
void audience_sessions_free(audience_sessions_t *t);
/* Starts the flush thread. 0 or a negative errno. */
int audience_sessions_start(audience_sessions_t *t) __attribute__((warn_unused_result));

/*
 * A valid beacon of stream_id from client address addr (16 bytes,
 * IPv4-mapped, as viewers_client_addr gives it) at now_ms. Accepted: the
 * session's state is s, it is dirty, and AUDIENCE_ACCEPTED is returned.
 * Else nothing changes but the buckets, and *retry_after_s says when to
 * try again (at least 1). Any thread.
 */
audience_verdict_t audience_sessions_beacon(audience_sessions_t *t, const char *stream_id,
                                            const char *session, const uint8_t addr[16],
                                            const audience_session_t *s, int64_t now_ms,
                                            unsigned int *retry_after_s);

/* Reclaims expired sessions and writes the dirty ones to the store. Returns
 * how many records were written. Any thread (the flush thread, or a test). */
size_t audience_sessions_flush(audience_sessions_t *t, int64_t now_ms);

/* Sessions in the table (live on this node: not expired, not ended and
 * flushed). Any thread. */
uint64_t audience_sessions_count(audience_sessions_t *t);
/* Store writes that failed since the start. */
uint64_t audience_sessions_store_errors(audience_sessions_t *t);

#endif
