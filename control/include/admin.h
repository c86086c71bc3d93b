/*
 * The admin listener (--admin-listen): the REST API for streams and stats,
 * /metrics and the dashboard, on a libmicrohttpd daemon of its own, apart
 * from the public origin. Requests need "Authorization: Bearer TOKEN" when
 * --admin-token is set; without one only loopback clients are answered.
 *
 * Threads: MHD's own thread; handlers call the store and the report module,
 * both thread-safe.
 */
#ifndef SLUICE_CONTROL_ADMIN_H
#define SLUICE_CONTROL_ADMIN_H

#include <stdbool.h>

#include "clip.h"
#include "ingest.h"
#include "report.h"
#include "store.h"
#include "transcode.h"

typedef struct admin admin_t;

typedef struct admin_params {
    const char *listen;          /* "HOST:PORT" */
    const char *token;           /* NULL: loopback clients only */
    store_t *store;
    report_t *report;            /* live status, stats, metrics */
    const char *public_http_url; /* base of playback URLs, no trailing slash */
    const char *public_rtmp_url; /* base of RTMP URLs ("rtmp://host:1935/live") */
    bool rotate_cuts;            /* --key-rotation cut */
    const char *recordings_dir;  /* --recordings-dir; NULL: no recordings API data */
    clip_service_t *clips;       /* the clip worker (clips' POST); NULL: clips cannot be made */
    bool record;                 /* --record: what a stream without an override does */
    const char *allowed_hosts;   /* --admin-allowed-hosts: more names of the listener, comma-separated */
    /* The configuration's [rung.NAME] sections: what a stream's "ladder"
     * may name besides the built-in rungs (copied). */
    const transcode_rung_spec_t *rungs;
    size_t nrungs;
    /* POST /api/v1/streams/ID/metadata: stamps and queues a timed-metadata
     * item for the stream live on this node (app.c: ingest_metadata_push
     * with transcode's clock); same returns as ingest_metadata_push. NULL
     * (no ingest here): every such POST is a 404. Runs on the admin
     * thread; must not block. */
    int (*metadata_cb)(void *opaque, const char *stream_id, const uint8_t *payload, size_t len,
                       ingest_metadata_stamp_t *out);
    void *metadata_opaque;
} admin_params_t;

int admin_open(const admin_params_t *params, admin_t **out) __attribute__((warn_unused_result));
int admin_port(const admin_t *a);
/* A new --admin-token (SIGHUP); NULL or "": loopback clients only from now
 * on. Any thread. */
int admin_set_token(admin_t *a, const char *token);
void admin_close(admin_t *a);

/* `sluice streams create NAME | list | get ID | delete ID | rotate-key ID |
 * disconnect ID`: the operator's CLI, a client of the admin API found
 * through the same configuration (--admin-listen, --admin-token, --config,
 * SLUICE_*; --admin-url URL overrides). argv[0] is "streams". Prints to
 * stdout, errors to stderr; returns the process exit code (0 ok, 1 the API
 * said no or cannot be reached, 2 usage). */
int admin_cli_main(int argc, char **argv, char **envp);

#endif
