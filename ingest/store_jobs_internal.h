/*
 * Store calls off the ingest loop (store_jobs.c): the key lookup, the lease
 * claim and its release that a publish needs run on one worker thread, and
 * their answers come back to the loop through done_ev, so a slow store
 * never stalls the loop.
 *
 * Threads: jobs are made and submitted on the loop, run on the worker,
 * answered on the loop.
 */
#ifndef SLUICE_INGEST_STORE_JOBS_INTERNAL_H
#define SLUICE_INGEST_STORE_JOBS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct event;

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

/* start: the worker thread and done_ev on
 * sh->base (0 or a negative errno). submit: loop thread (or after the loop
 * has stopped); takes ownership of the job. stop: after the loop has
 * stopped and every session is freed: runs what is queued (leases given
 * back), joins the worker, releases the leases of answers nobody took, and
 * frees the rest. */
int ingest_jobs_start(struct ingest_shared *sh);
ingest_job_t *ingest_job_new(struct ingest_shared *sh, ingest_job_kind_t kind, uint64_t session_id);
void ingest_jobs_submit(struct ingest_shared *sh, ingest_job_t *job);
void ingest_jobs_stop(struct ingest_shared *sh);

#endif
