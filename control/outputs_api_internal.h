/*
 * The admin API of a stream's simulcast outputs (docs/api.md, "Simulcast
 * outputs"): /api/v1/streams/ID/outputs and /api/v1/streams/ID/outputs/OID.
 * The definitions live in the registry (store_stream_get/set_outputs, the
 * text of output/output_def.h); the live part of each output (state, bytes,
 * bit rate, ...) is what the engine on the stream's ingest node last wrote
 * in the stream's meta field "outputs". An output without an entry there is
 * "idle".
 *
 * Secrets: a destination URL carries its key. It is accepted in a request
 * body and kept in the registry; every answer and log line shows it only
 * through output_url_mask.
 *
 * Kept apart from admin.c (which routes and replies) so that the rules can
 * be unit-tested against the memory store without an HTTP listener. Any
 * thread; changes of one process are serialized by a lock (two nodes that
 * change one stream's outputs at the same moment: the last write wins).
 */
#ifndef SLUICE_CONTROL_OUTPUTS_API_INTERNAL_H
#define SLUICE_CONTROL_OUTPUTS_API_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "output_def.h"
#include "store.h"

/* The meta field the engine writes (a JSON object keyed by output id). */
#define OUTPUTS_META_FIELD "outputs"

typedef struct outputs_api_reply {
    unsigned int status; /* HTTP status */
    json_t *body;        /* the answer (owned by the reply); NULL: none (204) */
    const char *allow;   /* with 405: the Allow header's value */
} outputs_api_reply_t;

/*
 * Handles one request. stream_id: a valid id (the caller checked the
 * grammar); oid: NULL for the collection, else the path's output id (any
 * text: checked here). body/len: the request body (may be NULL/0). live:
 * whether the stream is live now (an enabled output it adds or enables is
 * then "connecting"). Fills *out; its body is the caller's to free.
 */
void outputs_api_handle(store_t *st, const char *method, const char *stream_id, const char *oid,
                        const char *body, size_t len, bool live, outputs_api_reply_t *out);

/* How many outputs stream_id has defined (the stream status' "outputs"),
 * or a negative errno (-ENOENT, -EIO, -EPROTO unreadable text). */
int outputs_api_count(store_t *st, const char *stream_id);

/* One output of a live stream as /metrics shows it (never its URL). */
typedef struct outputs_api_metric {
    char stream[STORE_ID_MAX];
    char id[OUTPUT_ID_MAX];
    char rendition[OUTPUT_RENDITION_MAX];
    bool up; /* "live" */
    uint64_t bytes, dropped_packets, retries;
    double bitrate_kbps;
} outputs_api_metric_t;

/*
 * Appends to *rows (realloc'd; *n counts them) one row per output of
 * stream_id that is defined, enabled and has an entry in the engine's live
 * status. For the stream live on this node (report.c's /metrics). 0, or
 * -ENOMEM (*rows and *n as they were). A store that cannot answer, or text
 * that cannot be read, adds nothing.
 */
int outputs_api_metrics(store_t *st, const char *stream_id, outputs_api_metric_t **rows,
                        size_t *n) __attribute__((warn_unused_result));

#endif
