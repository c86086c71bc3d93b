/*
 * SRT ingest (srt.c): the --srt-listen listener and its publishers, and the
 * calls the ingest loop (ingest.c, rtmp_session.c) makes into it so that
 * the duplicate policy, leases and authorisation answers reach SRT
 * publishers as they reach RTMP ones.
 *
 * Threads: one listener thread ("srt-listen", srt_epoll over the listening
 * socket), one thread per publisher ("srt:N": blocking reads, the MPEG-TS
 * demux, pushes into the stream's queue), one key-lookup thread
 * ("srt-auth"). libsrt calls the listen callback on its own receiver
 * thread. Every step of a publish's life that RTMP takes on the ingest
 * loop (the local duplicate policy, publish_start/live/end_cb, the meters'
 * start and end, timed metadata) runs on the loop here too, through a call
 * the publisher thread waits for (srt_loop_call).
 */
#ifndef SLUICE_INGEST_SRT_INTERNAL_H
#define SLUICE_INGEST_SRT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

struct ingest_shared;
struct ingest_auth_answer;
typedef struct srt_listener srt_listener_t;

typedef struct srt_listener_params {
    const char *listen;     /* "HOST:PORT" */
    const char *passphrase; /* NULL/"": no encryption; else 10..79 characters */
    uint32_t latency_ms;    /* receiver latency (SRTO_RCVLATENCY) */
} srt_listener_params_t;

/* Binds and starts the listener thread. 0, or a negative errno (nothing
 * left running). Main thread, before the ingest loop runs. */
int srt_listener_open(struct ingest_shared *sh, const srt_listener_params_t *p,
                      srt_listener_t **out) __attribute__((warn_unused_result));

/* The UDP port bound. */
int srt_listener_port(const srt_listener_t *l);

/* Stops accepting, ends every publisher (their streams get EOS through the
 * loop, which must still run), joins every thread and frees. NULL: nothing. */
void srt_listener_close(srt_listener_t *l);

/* ---- called on the ingest loop ------------------------------------------ */

/* Whether an SRT publisher has stream_id live. */
bool srt_has_publisher(srt_listener_t *l, const char *stream_id);
/* Ends the SRT publish of stream_id at once (taken over by another
 * publisher): its stream gets EOS (dropped), publish_end_cb runs, and its
 * connection closes. */
void srt_end_publisher(srt_listener_t *l, const char *stream_id, const char *why);
/* SRT publishers live (for the publisher limit). */
size_t srt_count_publishers(srt_listener_t *l);
/* Another node took the stream of session_id over. */
void srt_lease_lost(srt_listener_t *l, uint64_t session_id);
/* A publish authorisation answer: true when an SRT publisher waited for it. */
bool srt_auth_answer(srt_listener_t *l, const struct ingest_auth_answer *a);

#endif
