/*
 * Pieces shared inside ingest/ only: the seam between the listener
 * (ingest.c) and the per-connection state machine (rtmp_session.c).
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
#include "rtmp_chunk.h"

/* ---- per-publish meters (meter.c) ---------------------------------------- */

/* Complete seconds the rates are measured over. */
#define INGEST_METER_WINDOW 5
#define INGEST_METER_SLOTS (INGEST_METER_WINDOW + 2)

/* A publishing session's meter: written on the loop thread only; copies of
 * it sit in ingest_meters_t for other threads. */
typedef struct ingest_meter {
    uint64_t session_id;
    bool active;         /* publishing */
    char stream_id[STORE_ID_MAX];
    char peer[64];
    int64_t start_ms, start_sec;
    int width, height;
    double nominal_fps; /* from the SPS VUI timing, 0 unknown */
    char video_codec[8], audio_codec[8];
    uint64_t bytes, video_frames, audio_frames, dropped_frames, late_frames;
    int64_t last_dts[2]; /* video, audio */
    bool have_dts[2];
    int64_t cur_sec;          /* the second packets are going into */
    int64_t complete_through; /* seconds up to this one are complete */
    int64_t slot_sec[INGEST_METER_SLOTS];
    uint64_t slot_bytes[INGEST_METER_SLOTS];
    uint32_t slot_frames[INGEST_METER_SLOTS];
} ingest_meter_t;

/* The shared table of meter copies, one per live stream. */
typedef struct ingest_meters {
    pthread_mutex_t lock;
    ingest_meter_t *items;
    size_t n, cap;
} ingest_meters_t;

void ingest_meters_init(ingest_meters_t *t);
void ingest_meters_deinit(ingest_meters_t *t);
/* Loop thread: a publish of stream_id started / a packet was emitted (any
 * type; dts unwrapped, ms) / a media packet was dropped / the publish ended.
 * now_ms: clock_mono_ms() (a parameter so that tests drive the clock). */
void ingest_meter_start(ingest_meters_t *t, ingest_meter_t *m, uint64_t session_id,
                        const char *stream_id, const char *peer, int64_t now_ms);
void ingest_meter_media(ingest_meters_t *t, ingest_meter_t *m, media_packet_type_t type,
                        media_codec_t codec, int64_t dts_ms, const uint8_t *data, size_t len,
                        int64_t now_ms);
void ingest_meter_dropped(ingest_meter_t *m);
void ingest_meter_end(ingest_meters_t *t, ingest_meter_t *m);
/* Any thread: ingest_stream_stats / ingest_list_streams. */
int ingest_meters_get(ingest_meters_t *t, const char *stream_id, ingest_stream_stats_t *out,
                      int64_t now_ms);
int ingest_meters_list(ingest_meters_t *t, ingest_stream_stats_t **out, size_t *n,
                       int64_t now_ms);

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

/* ---- store calls off the loop (store_jobs.c) ------------------------------ */

/* How long a publish waits for one store call (registry lookup, lease)
 * before it is refused. A slow store then costs that publisher a refusal,
 * never the loop a stall (S10 of the security review). */
#define INGEST_STORE_DEADLINE_MS 500
/* Lookups and lease claims waiting at once; past this a publish is refused
 * at once (a flood of publish attempts against a slow store). */
#define INGEST_STORE_PENDING_MAX 256

typedef enum ingest_job_kind {
    INGEST_JOB_AUTH = 1, /* key_hash -> stream_id (store_stream_auth_hash) */
    INGEST_JOB_ACQUIRE,  /* stream_id -> lease (store_lease_acquire) */
    INGEST_JOB_RELEASE,  /* lease given back (store_lease_release); no answer */
} ingest_job_kind_t;

struct ingest_shared;

/* One store call run by the store worker for a session of the loop. Made on
 * the loop; while queued or running it belongs to the queues, and the
 * session that asked only keeps a pointer to it (cleared, and the job
 * cancelled, if the session stops waiting). An ACQUIRE job that won a lease
 * stays alive as the lease's owner (it is the lease's lost_cb opaque) until
 * it is sent back as a RELEASE job, which the worker frees. */
typedef struct ingest_job {
    struct ingest_job *next;
    ingest_job_kind_t kind;
    struct ingest_shared *sh;
    uint64_t session_id;     /* immutable: read by the lease's lost_cb */
    atomic_bool cancelled;   /* nobody waits any more: the worker skips it */
    uint8_t key_hash[32];    /* AUTH */
    bool takeover;           /* ACQUIRE */
    char stream_id[STORE_ID_MAX]; /* AUTH: the answer; ACQUIRE, RELEASE: the stream */
    int rc;                  /* the store's answer; -ECANCELED when skipped */
    store_lease_t *lease;    /* ACQUIRE's answer, RELEASE's input */
    int64_t submit_ms;
} ingest_job_t;

/* The worker thread and its two queues: to the worker under lock (cond
 * wakes it), back to the loop under lock through done_ev. */
typedef struct ingest_jobs {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    ingest_job_t *todo, **todo_tail;
    ingest_job_t *done, **done_tail;
    bool stop, started;
    pthread_t thread;
    struct event *done_ev;
    size_t pending; /* loop only: AUTH and ACQUIRE jobs not yet answered */
} ingest_jobs_t;

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
} ingest_shared_t;

/* Notes a publish of stream_id ended for its input (loop thread). */
void ingest_note_input_refusal(ingest_shared_t *sh, const char *stream_id, const char *reason);

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

/* Store jobs (store_jobs.c). start: the worker thread and done_ev on
 * sh->base (0 or a negative errno). submit: loop thread (or after the loop
 * has stopped); takes ownership of the job. stop: after the loop has
 * stopped and every session is freed: runs what is queued (leases given
 * back), joins the worker, releases the leases of answers nobody took, and
 * frees the rest. */
int ingest_jobs_start(ingest_shared_t *sh);
ingest_job_t *ingest_job_new(ingest_shared_t *sh, ingest_job_kind_t kind, uint64_t session_id);
void ingest_jobs_submit(ingest_shared_t *sh, ingest_job_t *job);
void ingest_jobs_stop(ingest_shared_t *sh);

/* A store job's answer, on the loop: goes on with the publish that waits for
 * it, or, when nobody waits any more, frees the job (a lease it won is
 * given back). Takes ownership of the job. */
void rtmp_session_job_done(ingest_shared_t *sh, ingest_job_t *job);

/* The answer to the publish authorisation `ticket`: goes on publishing, or
 * refuses. Does nothing when that session is gone or no longer waiting. */
void rtmp_session_auth_answer(ingest_shared_t *sh, const ingest_auth_answer_t *a);

#endif
