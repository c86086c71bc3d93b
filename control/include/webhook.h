/*
 * Webhooks: publish authorisation and stream events, POSTed as JSON to
 * --webhook-url with libcurl, each request signed with HMAC-SHA256 of
 * --webhook-secret (docs/webhooks.md).
 *
 * Threads: webhook_new() starts one thread running a curl multi handle, so
 * that many requests are in flight at once and no caller ever waits for the
 * network. Every other function may be called from any thread and never
 * blocks on I/O (only on a short internal mutex).
 */
#ifndef SLUICE_CONTROL_WEBHOOK_H
#define SLUICE_CONTROL_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ingest.h"

typedef struct webhook webhook_t;

typedef struct webhook_params {
    const char *url;        /* http(s)://...; required */
    const char *secret;     /* NULL or "": requests are not signed */
    double timeout_s;       /* per request (authorisation and each event attempt) */
    size_t max_events;      /* events queued or being retried (0: 1000) */
    unsigned max_attempts;  /* attempts per event before it is given up (0: 8) */
    uint32_t retry_base_ms; /* first retry delay, doubled each time (0: 1000) */
    uint32_t retry_max_ms;  /* cap of the delay (0: 60000) */
} webhook_params_t;

/* Copies what it needs from params. Returns 0 or a negative errno (-EINVAL
 * without a URL, -ENOMEM, or the error of starting the thread). */
int webhook_new(const webhook_params_t *params, webhook_t **out)
    __attribute__((warn_unused_result));

/* Stops the thread and frees everything. Authorisations still waiting get
 * their done_cb (refused) before this returns; events already queued get up
 * to two seconds to go out on their first attempt, then are dropped (and
 * counted). webhook_free(NULL) does nothing. Not from a done_cb. */
void webhook_free(webhook_t *w);

/* What an accepted authorisation's 2xx answer said besides yes (every
 * field NULL for a refusal). Borrowed for the duration of the callback. */
typedef struct webhook_auth_answer {
    /* "id": the id the publish takes (checked with store_id_valid); NULL:
     * the registry's. */
    const char *stream_id;
    /* The id the publish goes on as: stream_id, else the registry's id for
     * the key; NULL when neither (ingest refuses it). */
    const char *publish_id;
    /* "ladder": the stream's ladder for this publish, as the webhook gave
     * it, not checked here (transcode_ladder_from_json does); NULL when
     * absent or null. */
    const json_t *ladder;
} webhook_auth_answer_t;

/* The answer to webhook_authorize(): INGEST_AUTH_ACCEPTED with what the
 * answer said (webhook_auth_answer_t); INGEST_AUTH_REFUSED when the webhook
 * said no (non-2xx, an invalid id); INGEST_AUTH_NO_ANSWER when it could not
 * be reached or did not answer in time. Called on the webhook thread (or in
 * webhook_free), exactly once per accepted request; must not block and must
 * not call webhook_free(). */
typedef void (*webhook_auth_done_cb)(void *opaque, uint64_t ticket,
                                     ingest_auth_verdict_t verdict,
                                     const webhook_auth_answer_t *answer);

/* Asks the webhook whether a publish may go ahead: POST {"event":"publish",
 * "stream_key_hash", "app", "client_ip", "stream_id"}. A 2xx answer accepts
 * (with {"id": "..."} the publish takes that id, with {"ladder": {...}} the
 * broadcast that starts has that ladder; a body that is not JSON is an
 * accept without either); anything else refuses: another status, an invalid
 * id, no connection, no answer within the timeout. The request is copied.
 * Returns 0 (done_cb will run), or a negative errno (-ENOMEM, -ESHUTDOWN)
 * and done_cb will not run. Auth requests go out before any queued event. */
int webhook_authorize(webhook_t *w, const ingest_auth_request_t *req, webhook_auth_done_cb done_cb,
                      void *opaque) __attribute__((warn_unused_result));

/* Queues an event: POST {"event", "stream_id", "timestamp" (ms since the
 * epoch), "delivery" (unique id, the same on every retry), "data"}. data is
 * borrowed (may be NULL: {}). Never blocks; when the queue is full the event
 * is dropped, counted and logged. A 2xx answer delivers; anything else is
 * retried with exponential backoff up to max_attempts. w == NULL does
 * nothing. */
void webhook_event(webhook_t *w, const char *event, const char *stream_id, json_t *data);

/* SIGHUP: the URL, secret and timeout of requests started from now on.
 * Returns 0, -EINVAL (no URL) or -ENOMEM; on error nothing changes. */
int webhook_reconfigure(webhook_t *w, const char *url, const char *secret, double timeout_s)
    __attribute__((warn_unused_result));

/* Counters since webhook_new; they only grow (events_queued is a gauge).
 * Exposed in /metrics as sluice_webhook_auth_total{result="accepted"|
 * "rejected"|"failed"}, sluice_webhook_events_total{result="delivered"|
 * "retried"|"dropped"|"failed"} and sluice_webhook_events_queued. */
typedef struct webhook_stats {
    uint64_t auth_accepted;    /* 2xx */
    uint64_t auth_rejected;    /* the webhook said no (non-2xx, or an invalid id) */
    uint64_t auth_failed;      /* no answer: connection error, timeout, shutdown */
    uint64_t events_delivered; /* 2xx */
    uint64_t events_retried;   /* attempts after a failed one */
    uint64_t events_dropped;   /* queue full, or still queued at shutdown */
    uint64_t events_failed;    /* given up after max_attempts */
    uint64_t events_queued;    /* gauge: waiting, in flight or waiting to retry */
} webhook_stats_t;

/* Copies the counters; any thread. w == NULL gives zeros. */
void webhook_get_stats(const webhook_t *w, webhook_stats_t *out);

/* The X-Sluice-Signature value: "sha256=" + lower-case hex of
 * HMAC-SHA256(secret, timestamp + "." + body). out must hold
 * WEBHOOK_SIGNATURE_MAX bytes. Returns 0 or -ENOMEM/-EINVAL. */
#define WEBHOOK_SIGNATURE_MAX (7 + 64 + 1)
int webhook_sign(const char *secret, const char *timestamp, const char *body, size_t len,
                 char out[WEBHOOK_SIGNATURE_MAX]) __attribute__((warn_unused_result));

#endif
