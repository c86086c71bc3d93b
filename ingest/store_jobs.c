/*
 * Store calls off the ingest loop: the registry lookup of a stream key, and
 * taking and giving back a stream's lease. With the Redis store each is a
 * network round trip (up to 1 s to connect and 3 s per command), and the
 * loop owns every RTMP session: a slow Redis, or a flood of publish attempts
 * against it, would stop reading every live publisher (S10 of the security
 * review). So the loop hands each call to one worker thread as a job and
 * goes on; the answer comes back through done_ev, the way publish
 * authorisation answers do (ingest_auth_done), and rtmp_session_job_done()
 * resumes the publish that waits for it. The session refuses a publish whose
 * answer is later than INGEST_STORE_DEADLINE_MS; the late answer then finds
 * nobody waiting and is dropped (a lease it won is given back).
 *
 * One worker, in order: a lease given back (a publisher taken over) and the
 * same stream's next claim reach the store in the order the loop made them.
 * Jobs nobody waits for any more are skipped, so a queue that grew while
 * the store was slow drains at once when it answers again.
 *
 * Threads: ingest_job_new and ingest_jobs_submit on the loop (or after it
 * has stopped, from ingest_close); the worker runs the store calls and the
 * leases' lost_cb runs on a store thread. Ownership: a job belongs to the
 * queue it is in; see ingest_job_t.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "ingest_internal.h"
#include "log.h"

/* A store thread says another node owns the stream now: queue the session
 * id for the loop (ingest.c's lost_ev). The job outlives every call of this:
 * store_lease_release returns only once no lost_cb runs, and the job is
 * freed after it. */
static void ingest_jobs_lease_lost_cb(void *opaque, const char *stream_id)
{
    (void)stream_id;
    ingest_job_t *job = opaque;
    ingest_shared_t *sh = job->sh;
    ingest_lost_push(sh, job->session_id);
}

ingest_job_t *ingest_job_new(ingest_shared_t *sh, ingest_job_kind_t kind, uint64_t session_id)
{
    ingest_job_t *job = calloc(1, sizeof(*job));
    if (!job)
        return NULL;
    job->kind = kind;
    job->sh = sh;
    job->session_id = session_id;
    atomic_init(&job->cancelled, false);
    return job;
}

/* Runs one job on the worker. Returns true when it goes back to the loop. */
static bool ingest_jobs_run(ingest_shared_t *sh, ingest_job_t *job)
{
    bool cancelled = atomic_load(&job->cancelled);
    switch (job->kind) {
    case INGEST_JOB_AUTH:
        job->rc = cancelled ? -ECANCELED
                            : store_stream_auth_hash(sh->store, job->key_hash, job->stream_id);
        return true;
    case INGEST_JOB_ACQUIRE:
        job->rc = cancelled ? -ECANCELED
                            : store_lease_acquire(sh->store, job->stream_id, job->takeover,
                                                  ingest_jobs_lease_lost_cb, job, &job->lease);
        return true;
    case INGEST_JOB_RELEASE:
        store_lease_release(job->lease);
        free(job);
        return false;
    }
    free(job);
    return false;
}

static void *ingest_jobs_main(void *arg)
{
    ingest_shared_t *sh = arg;
    ingest_jobs_t *q = &sh->jobs;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (!q->todo && !q->stop)
            pthread_cond_wait(&q->cond, &q->lock);
        if (!q->todo)
            break; /* stopping, and nothing left to run */
        ingest_job_t *job = q->todo;
        q->todo = job->next;
        if (!q->todo)
            q->todo_tail = &q->todo;
        job->next = NULL;
        pthread_mutex_unlock(&q->lock);
        bool answer = ingest_jobs_run(sh, job);
        pthread_mutex_lock(&q->lock);
        if (answer) {
            *q->done_tail = job;
            q->done_tail = &job->next;
            if (!q->stop)
                event_active(q->done_ev, 0, 0);
        }
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

/* done_ev: hand every answer to its session (rtmp_session.c), in order. */
static void ingest_jobs_done_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ingest_shared_t *sh = arg;
    ingest_jobs_t *q = &sh->jobs;
    pthread_mutex_lock(&q->lock);
    ingest_job_t *list = q->done;
    q->done = NULL;
    q->done_tail = &q->done;
    pthread_mutex_unlock(&q->lock);
    while (list) {
        ingest_job_t *job = list;
        list = job->next;
        job->next = NULL;
        if (q->pending)
            q->pending--;
        rtmp_session_job_done(sh, job);
    }
}

int ingest_jobs_start(ingest_shared_t *sh)
{
    ingest_jobs_t *q = &sh->jobs;
    q->todo_tail = &q->todo;
    q->done_tail = &q->done;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->cond, NULL);
    q->done_ev = event_new(sh->base, -1, 0, ingest_jobs_done_cb, sh);
    if (!q->done_ev)
        return -ENOMEM;
    int ret = pthread_create(&q->thread, NULL, ingest_jobs_main, sh);
    if (ret != 0)
        return -ret;
    pthread_setname_np(q->thread, "ingest-store");
    q->started = true;
    return 0;
}

void ingest_jobs_submit(ingest_shared_t *sh, ingest_job_t *job)
{
    ingest_jobs_t *q = &sh->jobs;
    job->submit_ms = clock_mono_ms();
    job->next = NULL;
    if (job->kind != INGEST_JOB_RELEASE)
        q->pending++;
    pthread_mutex_lock(&q->lock);
    *q->todo_tail = job;
    q->todo_tail = &job->next;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

void ingest_jobs_stop(ingest_shared_t *sh)
{
    ingest_jobs_t *q = &sh->jobs;
    if (!q->todo_tail)
        return; /* never started */
    if (q->started) {
        pthread_mutex_lock(&q->lock);
        q->stop = true;
        pthread_cond_signal(&q->cond);
        pthread_mutex_unlock(&q->lock);
        pthread_join(q->thread, NULL);
        q->started = false;
    }
    /* Without a worker (it could not start) queued jobs are only freed;
     * a RELEASE job still gives its lease back here. */
    ingest_job_t *lists[2] = {q->todo, q->done};
    q->todo = q->done = NULL;
    q->todo_tail = &q->todo;
    q->done_tail = &q->done;
    for (int i = 0; i < 2; i++) {
        while (lists[i]) {
            ingest_job_t *job = lists[i];
            lists[i] = job->next;
            /* Every session is gone: a lease won meanwhile is nobody's. */
            store_lease_release(job->lease);
            free(job);
        }
    }
    if (q->done_ev)
        event_free(q->done_ev);
    q->done_ev = NULL;
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->lock);
    q->todo_tail = NULL;
}
