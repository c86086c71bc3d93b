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
    uint32_t idle_timeout_ms;      /* handshake done, no publish yet (default 30000) */
    /* Per-stream media queue (default 32 MiB). A publisher whose queue holds
     * more than half of it stops being read until the queue is under a
     * quarter (TCP pushes back on it); only past the whole of it is media
     * dropped to the next keyframe. */
    size_t queue_bytes;
    uint32_t max_connections;        /* open RTMP connections (default 1000) */
    uint32_t max_connections_per_ip; /* from one address (default 32) */
    uint32_t max_publishers;         /* concurrently publishing (default 100) */
    uint32_t max_key_failures;       /* bad keys per address per minute (default 10) */
    uint32_t key_lockout_s;          /* then refused for this long (default 300) */
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
    /* RTMPS: "HOST:PORT", or NULL/"" for none. Needs tls_cert (PEM, the
     * server certificate first, then its chain) and tls_key (PEM). */
    const char *rtmps_listen;
    const char *tls_cert;
    const char *tls_key;
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

/* The RTMPS port actually bound, or -1 without RTMPS. */
int ingest_tls_port(const ingest_t *in);

/* Reads the certificate and key files again (SIGHUP). New RTMPS connections
 * use them; open sessions, live streams included, keep theirs. On an error
 * (logged) the previous certificate stays in use. Returns 0 (also without
 * RTMPS) or a negative errno. Any thread but the ingest one. */
int ingest_reload_tls(ingest_t *in);

/* What ingest has refused, cut and throttled since it opened, and what is
 * open now. Counters only grow. */
typedef struct ingest_stats {
    uint64_t connections_accepted;
    uint64_t connections_open;     /* gauge */
    uint64_t publishers_live;      /* gauge */
    uint64_t refused_max_connections;
    uint64_t refused_per_ip;
    uint64_t refused_locked_out;   /* address locked out after bad keys */
    uint64_t refused_max_publishers;
    uint64_t bad_keys;             /* publishes with an unknown key */
    uint64_t lockouts;             /* addresses locked out */
    uint64_t handshake_timeouts;
    uint64_t handshake_failures;
    uint64_t tls_failures;         /* RTMPS connections whose TLS handshake failed */
    uint64_t idle_timeouts;
    uint64_t read_timeouts;
    uint64_t limit_violations;     /* message/chunk size, chunk streams, AMF depth/length */
    uint64_t protocol_errors;      /* malformed chunks or commands */
    uint64_t throttled;            /* times a publisher's reading was paused */
    uint64_t dropped_packets;      /* media dropped by full queues */
} ingest_stats_t;

/* Copies the counters. Any thread; each field is read atomically. */
void ingest_get_stats(const ingest_t *in, ingest_stats_t *out);

/* Stops accepting, ends every session (each live stream's queue gets an
 * end-of-stream packet), stops and joins the thread, frees everything.
 * ingest_close(NULL) does nothing. Call from any thread but the ingest one. */
void ingest_close(ingest_t *in);

#endif
