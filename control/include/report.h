/*
 * What the control plane reports: a stream's live status object, the
 * server-wide stats and the Prometheus exposition, assembled from ingest's
 * per-stream meters, the transcode workers' status, the origin's request
 * counters and viewer sessions, the store, and the process itself.
 *
 * Threads: report_new() starts one background thread that, once a second,
 * writes each stream live on this node's status and this origin's viewer
 * counts into the store (so an admin API on any node sees them) and notices
 * health changes (event_cb). The other functions may be called from any
 * thread (the admin listener's).
 */
#ifndef SLUICE_CONTROL_REPORT_H
#define SLUICE_CONTROL_REPORT_H

#include <stddef.h>

#include <jansson.h>

#include "ingest.h"
#include "origin.h"
#include "store.h"
#include "transcode.h"
#include "webhook.h"

typedef struct report report_t;

/* A stream event for webhooks: "stream.health_changed". data is borrowed
 * for the call. Called on the report thread; must not block. */
typedef void (*report_event_cb)(void *opaque, const char *event, const char *stream_id,
                                json_t *data);

typedef struct report_params {
    store_t *store;
    ingest_t *ingest;       /* NULL on a node without the ingest role */
    transcode_t *transcode; /* likewise */
    origin_t *origin;       /* NULL on a node without the origin role */
    webhook_t *webhook;     /* NULL without --webhook-url (its counters in /metrics) */
    double segment_duration;
    report_event_cb event_cb; /* may be NULL */
    void *event_opaque;
} report_params_t;

int report_new(const report_params_t *params, report_t **out) __attribute__((warn_unused_result));
/* Stops the thread and frees. NULL does nothing. */
void report_free(report_t *r);

/* Adds the live part of a stream's status object to obj (which already has
 * id, name and playback_url): "state", and while live "ingest",
 * "renditions", "transcode", "health", "health_reason"; always "viewers"
 * (summed over every origin sharing the store). A stream live on another
 * node gets the status that node's report thread last wrote. Fields are
 * listed in docs/metrics.md. Any thread. */
void report_stream_status(report_t *r, const char *stream_id, json_t *obj);
/* GET /api/v1/stats: a new JSON object (caller decrefs), NULL on OOM. */
json_t *report_stats(report_t *r);
/* GET /metrics: Prometheus text exposition, malloc'd, NUL-terminated; *len
 * its length. NULL on OOM. */
char *report_metrics(report_t *r, size_t *len);

#endif
