/*
 * RTMP ingest: listens for publishers, checks each stream key against the
 * store's registry before answering NetStream.Publish.Start, and turns FLV
 * tags into media packets on a per-stream queue.
 *
 * Threads: ingest_open() starts one thread running a libevent loop that owns
 * every RTMP session; nothing else touches session state. The publish hooks
 * are called on that thread.
 */
#ifndef SLUICE_INGEST_INGEST_H
#define SLUICE_INGEST_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "media.h"
#include "store.h"

typedef struct ingest ingest_t;

typedef struct ingest_limits {
    uint32_t max_message_size;  /* bytes of one RTMP message (default 4 MiB) */
    uint32_t max_chunk_size;    /* largest Set Chunk Size accepted (default 65536) */
    uint32_t max_chunk_streams; /* distinct chunk stream ids per session (default 64) */
    uint32_t max_amf_depth;     /* nesting of AMF0 objects/arrays (default 16) */
    uint32_t max_amf_string;    /* bytes of one AMF0 string (default 65535) */
    uint32_t handshake_timeout_ms; /* default 10000 */
    size_t queue_bytes;            /* per-stream media queue (default 32 MiB) */
} ingest_limits_t;

/* Fills in the defaults above. */
void ingest_limits_default(ingest_limits_t *lim);

typedef enum ingest_duplicate_policy {
    INGEST_DUPLICATE_TAKEOVER = 0, /* the newest publisher wins */
    INGEST_DUPLICATE_REJECT,       /* the live one keeps the stream */
} ingest_duplicate_policy_t;

typedef struct ingest_hooks {
    void *opaque;
    /* A publisher was accepted for stream_id. The callee takes its own
     * reference to `queue` if it keeps it (e.g. starts a transcode worker on
     * it) and returns 0; a negative return refuses the publish
     * (NetStream.Publish.Failed). Runs on the ingest thread. */
    int (*publish_start_cb)(void *opaque, const char *stream_id, media_queue_t *queue);
} ingest_hooks_t;

typedef struct ingest_params {
    const char *rtmp_listen; /* "HOST:PORT" */
    store_t *store;          /* stream key registry */
    ingest_hooks_t hooks;
    ingest_limits_t limits;
    ingest_duplicate_policy_t duplicate;
} ingest_params_t;

/* Binds the listener and starts the ingest thread. Returns 0 or a negative
 * errno (-EADDRINUSE, -EINVAL for a bad address, ...); on failure nothing is
 * left running. */
int ingest_open(const ingest_params_t *params, ingest_t **out)
    __attribute__((warn_unused_result));

/* The port actually bound (useful with port 0). */
int ingest_port(const ingest_t *in);

/* Stops accepting, ends every session (each live stream's queue gets an
 * end-of-stream packet), stops and joins the thread, frees everything.
 * ingest_close(NULL) does nothing. Call from any thread but the ingest one. */
void ingest_close(ingest_t *in);

#endif
