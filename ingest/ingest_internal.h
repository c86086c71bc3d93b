/*
 * The seam between the listener (ingest.c) and the per-connection state
 * machine (rtmp_session.c): the listener state sessions share, and the
 * session calls the listener makes. The meters (meter_internal.h) and the
 * store worker (store_jobs_internal.h) have their own headers.
 *
 * Everything here runs on the ingest loop thread.
 */
#ifndef SLUICE_INGEST_INGEST_INTERNAL_H
#define SLUICE_INGEST_INGEST_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ingest.h"
#include "meter_internal.h"
#include "rtmp_chunk_internal.h"
#include "store_jobs_internal.h"
#include "timed_meta_internal.h"

/* ---- listener <-> session seam (ingest loop thread only) -------------- */

/* How long a publishing connection may go without sending a byte. */
#define INGEST_READ_TIMEOUT_MS 30000
#define INGEST_STALL_CHECK_MS 1000 /* how often a publisher is checked for a stall */
/* How long a reply we close after may take to reach a peer that stopped reading. */
#define INGEST_LINGER_MS 5000

struct event_base;
struct ssl_st;
struct ssl_ctx_st;
typedef struct rtmp_session rtmp_session_t;

/* What the per-address limits and the bad-key lockout count as one
 * address: a peer's address without its port, IPv4 as an IPv4-mapped IPv6
 * address, IPv6 cut to its /64 (netaddr_client_group). */
typedef struct ingest_addr {
    uint8_t b[16];
} ingest_addr_t;

void ingest_addr_from(ingest_addr_t *a, const struct sockaddr *sa);

/* An address that sent bad stream keys: failures in the current minute,
 * and until when it is locked out. */
typedef struct ingest_key_failure {
    ingest_addr_t addr;
    int64_t window_ms; /* start of the counting minute */
    uint32_t count;
    int64_t locked_until_ms;
} ingest_key_failure_t;

/* Reasons ingest refuses or cuts a peer; each has its own log rate limit. */
typedef enum ingest_refusal {
    INGEST_REFUSAL_MAX_CONNECTIONS = 0,
    INGEST_REFUSAL_PER_IP,
    INGEST_REFUSAL_LOCKED_OUT,
    INGEST_REFUSAL_MAX_PUBLISHERS,
    INGEST_REFUSAL_STORE_BUSY,
    INGEST_REFUSAL_AUTH_BUSY,
    INGEST_REFUSAL_COUNT,
} ingest_refusal_t;

/* An answer to a publish_auth_cb request, on its way to the loop. */
typedef struct ingest_auth_answer {
    uint64_t ticket;
    ingest_auth_verdict_t verdict;
    bool has_id;
    char stream_id[STORE_ID_MAX];
} ingest_auth_answer_t;

/* Counters of ingest_stats_t, bumped on the loop, read from any thread. */
#define INGEST_COUNT(sh, field) __atomic_fetch_add(&(sh)->stats.field, 1, __ATOMIC_RELAXED)
#define INGEST_GAUGE_SUB(sh, field) __atomic_fetch_sub(&(sh)->stats.field, 1, __ATOMIC_RELAXED)

/* The listener state rtmp_session.c needs. Owned by ingest.c. */
typedef struct ingest_shared {
    struct event_base *base;
    store_t *store;
    ingest_hooks_t hooks;
    ingest_limits_t limits;
    ingest_duplicate_policy_t duplicate;
    uint64_t next_session_id;
    rtmp_session_t *sessions; /* every open session, doubly linked */
    struct event *reap_ev;    /* frees sessions marked dead */
    /* Leases lost to another node, reported on a store thread: session ids
     * queued under lost_lock, drained by lost_ev on the loop. */
    pthread_mutex_t lost_lock;
    uint64_t *lost;
    size_t nlost, cap_lost;
    struct event *lost_ev;
    /* Publish authorisation answers from ingest_auth_done() (any thread):
     * queued under auth_lock, drained by auth_ev on the loop. Tickets come
     * from next_auth_ticket (loop only). */
    pthread_mutex_t auth_lock;
    ingest_auth_answer_t *answers;
    size_t nanswers, cap_answers;
    struct event *auth_ev;
    uint64_t next_auth_ticket;
    /* RTMPS: the context new connections get; replaced by ingest_reload_tls()
     * from another thread, so read and swapped under tls_lock. Each SSL holds
     * its own reference to the context it was made from. */
    pthread_mutex_t tls_lock;
    struct ssl_ctx_st *tls_ctx;
    ingest_stats_t stats; /* INGEST_COUNT only */
    ingest_meters_t meters; /* live streams' meter copies (meter.c) */
    ingest_tmeta_t tmeta;   /* timed metadata: live edges, rate limits, ids (timed_meta.c) */
    /* Chunk buffers of sessions that have not published: limit is
     * limits.max_unpublished_bytes. */
    rtmp_chunk_budget_t unpublished;
    /* Bad-key bookkeeping per address (bounded; oldest entries recycled). */
    ingest_key_failure_t *key_failures;
    size_t nkey_failures;
    /* Refusal log rate limit: last line and lines held back per reason. */
    int64_t refusal_log_ms[INGEST_REFUSAL_COUNT];
    uint64_t refusal_unlogged[INGEST_REFUSAL_COUNT];
    bool drop_on_close; /* ingest_params_t.drop_on_close */
    ingest_jobs_t jobs; /* store calls off the loop (store_jobs.c) */
    /* Publishes ended for input over the limits, newest last, for the
     * report thread (ingest_input_refusals); under refusals_lock. */
    pthread_mutex_t refusals_lock;
    ingest_input_refusal_t refusals[INGEST_INPUT_REFUSALS];
    uint64_t nrefusals; /* ever; refusals[i % INGEST_INPUT_REFUSALS] */
    struct srt_listener *srt; /* --srt-listen (srt.c), or NULL */
} ingest_shared_t;

/* Notes a publish of stream_id ended for its input (loop thread). */
void ingest_note_input_refusal(ingest_shared_t *sh, const char *stream_id, const char *reason);
/* Queues a publisher whose lease another node took (RTMP or SRT session
 * id) for the loop to disconnect; any thread. */
void ingest_lost_push(ingest_shared_t *sh, uint64_t session_id);

/* Logs a refusal, at most one line per reason per 10 s (with the count of
 * those held back), so a flood cannot flood the log too. */
void ingest_log_refusal(ingest_shared_t *sh, ingest_refusal_t why, const char *peer,
                        const char *detail);

/* True while `a` is locked out for bad keys. */
bool ingest_addr_locked_out(ingest_shared_t *sh, const ingest_addr_t *a, int64_t now_ms);

/* Counts one bad key from `a`; returns true when this locks the address out. */
bool ingest_key_failed(ingest_shared_t *sh, const ingest_addr_t *a, int64_t now_ms);

/* Live sessions (not yet marked dead) from address `a`. */
size_t rtmp_session_count_from(ingest_shared_t *sh, const ingest_addr_t *a);

/* Sessions waiting for a publish_auth_cb answer. */
size_t rtmp_session_count_authorizing(ingest_shared_t *sh);

/* Whether an RTMP session publishes stream_id. */
bool rtmp_session_publishing(ingest_shared_t *sh, const char *stream_id);

/* Ends the RTMP publish of stream_id, taken over by the SRT publisher
 * srt#new_id from new_peer. */
void rtmp_session_end_publisher(ingest_shared_t *sh, const char *stream_id, uint64_t new_id,
                                const char *new_peer);

/* Sessions currently publishing, `except` not counted. */
size_t rtmp_session_count_publishers(ingest_shared_t *sh, const rtmp_session_t *except);

/* Takes ownership of the connected, non-blocking socket `fd`, and of `ssl`
 * (an OpenSSL SSL for an RTMPS connection, else NULL), on every path.
 * Returns 0, or a negative errno when the session could not be set up (the
 * socket is closed then). */
int rtmp_session_new(ingest_shared_t *sh, int fd, const struct sockaddr *peer, int peerlen,
                     struct ssl_st *ssl);

/* Ends the session now: a live stream gets its EOS, the socket is closed and
 * the memory freed. Only call from outside the session's own callbacks
 * (the reaper, or shutdown after the loop has stopped). */
void rtmp_session_free(rtmp_session_t *s);

/* Frees every session marked dead. The reap event's callback. */
void rtmp_session_reap(ingest_shared_t *sh);

/* Another node took over the stream session_id publishes: disconnect it.
 * Does nothing when that session is gone or no longer publishing. */
void rtmp_session_lease_lost(ingest_shared_t *sh, uint64_t session_id);

/* A store job's answer, on the loop: goes on with the publish that waits for
 * it, or, when nobody waits any more, frees the job (a lease it won is
 * given back). Takes ownership of the job. */
void rtmp_session_job_done(ingest_shared_t *sh, ingest_job_t *job);

/* The answer to the publish authorisation `ticket`: goes on publishing, or
 * refuses. Does nothing when that session is gone or no longer waiting. */
void rtmp_session_auth_answer(ingest_shared_t *sh, const ingest_auth_answer_t *a);

#endif
