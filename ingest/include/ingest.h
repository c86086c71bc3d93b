/*
 * RTMP ingest: listens for publishers, checks each stream key against the
 * store's registry before answering NetStream.Publish.Start, and turns FLV
 * tags into media packets on a per-stream queue.
 *
 * Threads: ingest_open() starts one thread running a libevent loop that owns
 * every RTMP session; nothing else touches session state. The publish hooks
 * are called on that thread. The store calls a publish needs (key lookup,
 * lease) run on a second, store worker thread, so that a slow store never
 * holds the loop.
 */
#ifndef SLUICE_INGEST_INGEST_H
#define SLUICE_INGEST_INGEST_H

#include <stdbool.h>
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
    /* A publisher that sends no media for this long (though its connection
     * may still be up) is treated as dropped (default 10000). */
    uint32_t stall_timeout_ms;
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
    /* A publish waiting for publish_auth_cb's answer is refused after this
     * long, so that a lost answer cannot strand it (default 5000; set it
     * above the authoriser's own timeout). */
    uint32_t auth_timeout_ms;
    /* Chunk buffers (unfinished messages) that all connections which have
     * not published yet may hold together; a connection whose buffers would
     * cross it is closed (default 32 MiB). Each one alone may hold only
     * 256 KiB in messages of at most 64 KiB before its publish is accepted,
     * and 2 x max_message_size after. */
    size_t max_unpublished_bytes;
    /* What a publisher may send (S17 of the security review): a picture of
     * at most max_input_width x max_input_height in either orientation
     * (default 3840x2160), at most max_input_fps frames a second (default
     * 120). Over either, the publish is ended with the reason (log,
     * publish_end_cb's refusal). */
    uint32_t max_input_width, max_input_height, max_input_fps;
} ingest_limits_t;

/* Fills in the defaults above. */
void ingest_limits_default(ingest_limits_t *lim);

typedef enum ingest_duplicate_policy {
    INGEST_DUPLICATE_TAKEOVER = 0, /* the newest publisher wins */
    INGEST_DUPLICATE_REJECT,       /* the live one keeps the stream */
} ingest_duplicate_policy_t;

/* An asynchronous publish authorisation (ingest_hooks_t.publish_auth_cb).
 * Only borrowed for the duration of the call. */
typedef struct ingest_auth_request {
    uint64_t ticket;          /* pass to ingest_auth_done() */
    uint8_t key_hash[32];     /* SHA-256 of the stream key (the key itself never leaves ingest) */
    const char *app;          /* RTMP application ("live") */
    const char *client_ip;    /* publisher's address, no port */
    const char *registry_id;  /* the stream id the registry has for this key; NULL: unknown key */
} ingest_auth_request_t;

typedef struct ingest_hooks {
    void *opaque;
    /* Optional. Asked before every publish, after the registry lookup and
     * before NetStream.Publish.Start; the publisher waits (its connection
     * is not read) until ingest_auth_done() answers. Return 0 when an
     * answer will come, a negative errno to refuse at once. Runs on the
     * ingest thread; must not block. */
    int (*publish_auth_cb)(void *opaque, const ingest_auth_request_t *req);
    /* Optional. A publish of stream_id ended (unpublish, disconnect, cut,
     * taken over, shutdown): once for every publish that publish_live_cb
     * announced. Runs on the ingest thread (at shutdown, on the thread in
     * ingest_close); must not block. `dropped`: the publisher went away
     * without ending its publish (connection lost, stalled, taken over),
     * so the stream waits for it within the reconnect window; false for an
     * unpublish, an admin cut, a takeover on another node or shutdown.
     * `refusal`: NULL, or why sluice ended it (the input is over
     * max_input_width/height/fps), then dropped is false. */
    void (*publish_end_cb)(void *opaque, const char *stream_id, bool dropped,
                           const char *refusal);
    /* Optional. stream_id is live: NetStream.Publish.Start has just been
     * sent to the publisher at client_ip (no port). Runs on the ingest
     * thread; must not block. */
    void (*publish_live_cb)(void *opaque, const char *stream_id, const char *client_ip);
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
    /* ingest_close ends live publishes as dropped, not ended, so that their
     * streams are handed over (the playlists stay live for the reconnect
     * window: a shared store, another node may take the publisher). */
    bool drop_on_close;
    /* SRT (srt.c): "HOST:PORT" (UDP), or NULL/"" for none. Publishers send
     * MPEG-TS with the stream key as their stream id; the limits above
     * (connections, publishers, lockout, stall, queue, input size) apply
     * to them too. srt_passphrase: NULL/"" (no encryption) or 10..79
     * characters (AES, callers must send the same); srt_latency_ms: the
     * receiver latency (default 0 means 120). */
    const char *srt_listen;
    /* srt_listen is the server's default, not an operator's choice: a port
     * that is taken is a warning and no SRT listener, not a failure. */
    bool srt_listen_optional;
    const char *srt_passphrase;
    uint32_t srt_latency_ms;
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

/* The SRT (UDP) port actually bound, or -1 without SRT. */
int ingest_srt_port(const ingest_t *in);

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
    uint64_t stalled_publishers; /* no media for stall_timeout_ms: dropped */
    uint64_t limit_violations;     /* message/chunk size, chunk streams, AMF depth/length */
    uint64_t protocol_errors;      /* malformed chunks or commands */
    uint64_t throttled;            /* times a publisher's reading was paused */
    uint64_t dropped_packets;      /* media dropped by full queues */
    /* Publishes refused because the store did not answer a key lookup or a
     * lease claim in time, or too many such calls were waiting. */
    uint64_t store_timeouts;
    /* Publishes refused because 2 x max_publishers already waited for the
     * publish authoriser's answer. */
    uint64_t refused_auth_busy;
    /* Publishes ended because the input was over max_input_width/height/fps. */
    uint64_t refused_input;
} ingest_stats_t;

/* Copies the counters. Any thread; each field is read atomically. */
void ingest_get_stats(const ingest_t *in, ingest_stats_t *out);

/* A publish ended because its input was over the limits. */
#define INGEST_INPUT_REFUSALS 32
typedef struct ingest_input_refusal {
    uint64_t seq; /* 1, 2, ... in the order they happened */
    char stream_id[STORE_ID_MAX];
    char reason[160];
    int64_t wall_ms;
} ingest_input_refusal_t;
/* Calls cb for each refusal newer than *seq (of the last
 * INGEST_INPUT_REFUSALS), oldest first, and moves *seq past them. Any
 * thread; cb runs with a lock held and must not call ingest. */
void ingest_input_refusals(ingest_t *in, uint64_t *seq,
                           void (*cb)(void *opaque, const ingest_input_refusal_t *r),
                           void *opaque);

/* How a publish authorisation ended (ingest_auth_done). */
typedef enum ingest_auth_verdict {
    INGEST_AUTH_REFUSED = 0, /* the authoriser said no */
    INGEST_AUTH_ACCEPTED,
    INGEST_AUTH_NO_ANSWER,   /* it could not be asked or did not answer: refused too */
} ingest_auth_verdict_t;

/* Answers a publish_auth_cb request; any thread. Anything but ACCEPTED
 * refuses with NetStream.Publish.Rejected and closes the connection; for a
 * key the registry does not know, every refusal (NO_ANSWER and the auth
 * timeout included) counts towards the bad-key lockout, while a key the
 * registry knows never does (an authoriser outage locks no registered
 * publisher out). stream_id: the id to publish as
 * (validated with store_id_valid); NULL keeps the registry's, and an unknown
 * key with no id given is refused. A ticket whose publisher has gone
 * meanwhile is ignored. */
void ingest_auth_done(ingest_t *in, uint64_t ticket, ingest_auth_verdict_t verdict,
                      const char *stream_id);

/* A live stream's input as ingest measures it. Rates are over a sliding
 * window of the last few seconds. */
/* An SRT publisher's link as libsrt measures it (srt_bstats), refreshed
 * once a second. Counters since the connection started. */
typedef struct ingest_srt_stats {
    double rtt_ms;
    uint64_t packets_received;
    uint64_t packets_lost;          /* detected missing (most are then retransmitted) */
    uint64_t packets_retransmitted; /* retransmitted packets that arrived */
    uint64_t packets_dropped;       /* too late to play: lost for good */
    int recv_buffer_ms;             /* what the receive buffer holds, ms... */
    uint64_t recv_buffer_bytes;     /* ...and bytes */
    int latency_ms;                 /* negotiated latency (TSBPD delay) */
    double recv_rate_mbps;
} ingest_srt_stats_t;

typedef struct ingest_stream_stats {
    char stream_id[STORE_ID_MAX];
    char protocol[8];         /* "rtmp", "rtmps" or "srt" */
    bool has_srt;             /* srt holds figures (SRT, after its first second) */
    ingest_srt_stats_t srt;
    char peer[64];            /* publisher's address */
    double bitrate_kbps;      /* audio + video payload, sliding window */
    double fps;               /* video frames per second, sliding window */
    double bitrate_stddev_kbps; /* spread of per-second bit rates in the window (stability) */
    int width, height;        /* from the video decoder configuration; 0 unknown */
    char video_codec[8];      /* "h264", "hevc", "av1", "" */
    char audio_codec[8];      /* "aac", "" */
    uint64_t bytes;           /* media payload since publish start */
    uint64_t video_frames, audio_frames;
    uint64_t dropped_frames;  /* dropped by a full queue */
    uint64_t late_frames;     /* dts below the track's previous one, or over 1 s above it (counted, passed on) */
    int64_t uptime_ms;        /* since publish start */
    double nominal_fps;       /* the source's declared frame rate (H.264 VUI timing); 0 unknown */
    int window_s;             /* complete seconds the rates cover (0: average since start) */
} ingest_stream_stats_t;

/* Stats of the live publish of stream_id: 0, or -ENOENT when it is not
 * live on this node. Any thread. */
int ingest_stream_stats(ingest_t *in, const char *stream_id, ingest_stream_stats_t *out);
/* Every stream live on this node, in a malloc'd array the caller frees. */
int ingest_list_streams(ingest_t *in, ingest_stream_stats_t **out, size_t *n);

/* Timed metadata (issue 21). What ingest_metadata_push stamped. */
typedef struct ingest_metadata_stamp {
    uint32_t id;           /* unique per stream (emsg id, DATERANGE "sluice-<id>") */
    int64_t media_time_ms; /* the stream's media time (clock_cb's), ms */
    int64_t pdt_ms;        /* its program date-time, ms since the epoch (clock_cb's) */
    int retry_after_s;     /* -EBUSY: when the rate limit lets the next one through */
} ingest_metadata_stamp_t;

/* Maps a dts of stream_id's media queue to the media time (ms on the
 * playlists' timeline) and program date-time the packager gives it.
 * Returns 0, or -EAGAIN when that is not known yet, or another negative
 * errno. Must not call ingest. */
typedef int (*ingest_clock_cb_t)(void *opaque, const char *stream_id, int64_t dts_ms,
                                 int64_t *media_ms, int64_t *pdt_ms);

/*
 * Queues a timed-metadata item (payload: UTF-8, at most
 * MEDIA_TIMED_METADATA_MAX bytes, copied) for the stream live on this node,
 * stamped at its live edge: the newest frame ingested for it. clock_cb runs
 * with ingest's metadata lock held. Any thread. Returns 0 with *out filled,
 * -ENOENT when the stream is not live on this node, -EAGAIN when it has no
 * media yet (or clock_cb's -EAGAIN), -EBUSY over the rate (5 a second per
 * stream, burst 10, shared with in-band metadata; out->retry_after_s),
 * -EMSGSIZE, -EILSEQ (not UTF-8), -ENOMEM.
 */
int ingest_metadata_push(ingest_t *in, const char *stream_id, const uint8_t *payload,
                         size_t len, ingest_clock_cb_t clock_cb, void *opaque,
                         ingest_metadata_stamp_t *out) __attribute__((warn_unused_result));

/* New limits (SIGHUP): connections accepted and publishes started from
 * now on obey them; open sessions keep the message and chunk limits they
 * started with. Zero fields get defaults. Any thread but the ingest one. */
int ingest_set_limits(ingest_t *in, const ingest_limits_t *limits);

/* Stops accepting, ends every session (each live stream's queue gets an
 * end-of-stream packet), stops and joins the thread, frees everything.
 * ingest_close(NULL) does nothing. Call from any thread but the ingest one. */
void ingest_close(ingest_t *in);

#endif
