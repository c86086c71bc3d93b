/*
 * The segment store: where packaged HLS objects (playlists, init segments,
 * segments, later parts) live between the packager that writes them and the
 * origin that serves them, plus the registry of streams and their keys.
 * Everything above this interface is backend-blind: the embedded memory
 * backend (one process) and the Redis backend (several nodes) behave alike.
 *
 * Objects are named per stream by a relative path ("master.m3u8",
 * "720p/index.m3u8", "720p/init.mp4", "720p/12.m4s"). A commit applies a
 * batch of operations to one stream atomically: a reader sees all of them or
 * none, so a playlist is never visible before the segment it names.
 *
 * Thread rules: a store_t may be used from any thread at once (the memory
 * backend locks; the Redis backend lends each call a connection of its own
 * from a small pool, so no hiredis context is ever used by two threads).
 * Blobs returned by store_get are references the caller must unref.
 *
 * Errors every backend keeps apart: -ENOENT "no such object / stream" (a
 * definite answer: the origin may say 404), and -EIO "the store cannot be
 * read right now" (the origin says 503 and the caller retries later).
 */
#ifndef SLUICE_COMMON_STORE_H
#define SLUICE_COMMON_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blob.h"

typedef struct store store_t;

typedef enum store_op_kind {
    STORE_OP_PUT = 1, /* name := blob, expiring after ttl_ms (0: never) */
    STORE_OP_EXPIRE,  /* an existing name expires after ttl_ms */
    STORE_OP_DELETE,  /* name is removed now */
} store_op_kind_t;

typedef struct store_op {
    store_op_kind_t kind;
    const char *name;
    blob_t *blob;   /* PUT only; the store takes its own reference */
    int64_t ttl_ms; /* PUT, EXPIRE */
} store_op_t;

/* Opens "memory" (the embedded store), "redis://[:PASSWORD@]HOST:PORT[/DB]"
 * or "redis-sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTER[?db=N&...]"
 * (the master found through Sentinel and followed across failovers; the
 * grammar is store/store_redis_url.h's and docs/configuration.md's).
 * Returns 0 or a negative errno: -EINVAL for an URL it does not understand,
 * -EPROTONOSUPPORT for a backend not built in. A Redis store opens even when
 * the server is unreachable: it logs why, keeps retrying with backoff in the
 * background, and answers -EIO (store_ping, store_get) until it connects. */
int store_open(const char *url, store_t **out) __attribute__((warn_unused_result));

/* Whether store_open would accept url's form (memory, or a well-formed
 * redis:// or redis-sentinel:// URL), connecting to nothing: 0 or -EINVAL. For checking a
 * configuration before anything starts. */
int store_url_check(const char *url);
/* store_close(NULL) does nothing. */
void store_close(store_t *st);
/* "memory" or "redis"; for logs and stats. */
const char *store_backend_name(const store_t *st);
/* 0 when the backend answers (/readyz), else -EIO. */
int store_ping(store_t *st);

/* Applies ops[0..n) to stream_id atomically, then wakes the stream's
 * watchers on every node. Object names longer than STORE_NAME_MAX are
 * refused with -ENAMETOOLONG and nothing is applied. -EPERM: another node
 * holds the stream's lease (this writer was taken over); nothing is applied.
 * While a Redis store is unreachable, commits are kept in memory (bounded)
 * and return 0; they are written, a stream at a time and atomically, when
 * it comes back. */
int store_commit(store_t *st, const char *stream_id, const store_op_t *ops, size_t n)
    __attribute__((warn_unused_result));
/* *out = a new reference to the object, or -ENOENT. */
int store_get(store_t *st, const char *stream_id, const char *name, blob_t **out)
    __attribute__((warn_unused_result));
/* Removes every object of stream_id. */
int store_drop_objects(store_t *st, const char *stream_id);

#define STORE_NAME_MAX 128
#define STORE_ID_MAX 64

/* Stream registry. The key is hashed (SHA-256) before it is stored and is
 * compared in constant time; it is never kept in clear. store_stream_add
 * records the wall-clock creation time and the name (NULL: the id), any
 * bytes up to STORE_NAME_LEN_MAX - 1 (-ENAMETOOLONG beyond). */
int store_stream_add(store_t *st, const char *id, const char *name, const char *key)
    __attribute__((warn_unused_result));
/* Finds the stream whose key is `key` and copies its id into id_out
 * (size STORE_ID_MAX). -ENOENT for an unknown key. */
int store_stream_auth(store_t *st, const char *key, char *id_out)
    __attribute__((warn_unused_result));
/* The same with the key's SHA-256 (store_key_hash) instead of the key, so
 * that a caller can hand the lookup to another thread without copying the
 * key off its stack. */
int store_stream_auth_hash(store_t *st, const uint8_t hash[32], char *id_out)
    __attribute__((warn_unused_result));
/* -ENOENT when no stream has this id. */
int store_stream_exists(store_t *st, const char *id);
/* A stream from the configuration (--stream): added like store_stream_add,
 * and remembered, so that a shared registry that loses it (Redis restarted
 * empty) gets it back. Idempotent: 0 when the same id and key are already
 * there; -EEXIST when the key belongs to another stream. With Redis
 * unreachable it returns 0 and the stream is added on connection. */
int store_stream_seed(store_t *st, const char *id, const char *key)
    __attribute__((warn_unused_result));

/* ---- registry management (admin API) ------------------------------------ */

#define STORE_NAME_LEN_MAX 256 /* bytes of a stream's display name, NUL included */
/* Bytes of a stream's own ladder, NUL included. The store keeps it as
 * opaque text: its grammar is transcode's (transcode_ladder_format). */
#define STORE_LADDER_MAX 512

typedef struct store_stream_info {
    char id[STORE_ID_MAX];
    char name[STORE_NAME_LEN_MAX];
    int64_t created_ms; /* wall clock (ms since the epoch); 0 when unknown (seeded streams) */
    int record;         /* recording override: STORE_RECORD_DEFAULT, _OFF or _ON */
    char ladder[STORE_LADDER_MAX]; /* the stream's own ladder, opaque text; "": none */
} store_stream_info_t;

/* A stream's recording override (the API's "record"): follow --record, or
 * always off, or always on. */
#define STORE_RECORD_DEFAULT (-1)
#define STORE_RECORD_OFF 0
#define STORE_RECORD_ON 1

/* Copies the registry record of `id` into *out. -ENOENT, -EIO. */
int store_stream_get(store_t *st, const char *id, store_stream_info_t *out)
    __attribute__((warn_unused_result));
/* Every registered stream, sorted by id, in a malloc'd array the caller
 * frees (*out = NULL when there are none). -EIO. Changes made meanwhile on
 * other nodes may or may not be in it. */
int store_stream_list(store_t *st, store_stream_info_t **out, size_t *n)
    __attribute__((warn_unused_result));
/* Removes the stream from the registry: its key stops working at once, on
 * every node. Its objects and a live publisher are the caller's business
 * (store_drop_objects, store_lease_revoke). -ENOENT, -EIO. */
int store_stream_remove(store_t *st, const char *id) __attribute__((warn_unused_result));
/* Replaces the stream's key: the old one is refused from now on, on every
 * node. -ENOENT (no such stream), -EEXIST (the new key is another
 * stream's), -EINVAL (empty key), -EIO. Rotating to the current key is 0.
 * A stream from the configuration (store_stream_seed) follows: removed, it
 * is not re-added when a shared registry loses its data; rotated, it comes
 * back with the new key (every node connected at the time learns of it). */
int store_stream_rotate(store_t *st, const char *id, const char *new_key)
    __attribute__((warn_unused_result));

/* Sets the stream's recording override (STORE_RECORD_DEFAULT, _OFF, _ON),
 * on every node at once. It goes with the stream (store_stream_remove).
 * -ENOENT (no such stream), -EINVAL (another value), -EIO. */
int store_stream_set_record(store_t *st, const char *id, int record)
    __attribute__((warn_unused_result));
/* Sets the stream's own ladder (the API's "ladder", checked and put in its
 * canonical text by the caller), on every node at once; NULL or "" clears
 * it (the server's ladder). Kept across a rotation, gone with the stream,
 * persisted like the other fields (--state-dir, Redis). -ENOENT (no such
 * stream), -EMSGSIZE (STORE_LADDER_MAX bytes or more), -EINVAL (bytes
 * outside printable ASCII), -EIO. */
int store_stream_set_ladder(store_t *st, const char *id, const char *ladder)
    __attribute__((warn_unused_result));
/* Bytes of a stream's simulcast outputs' text, NUL included (the literal
 * of OUTPUT_DEFS_TEXT_MAX: the store does not include output/). */
#define STORE_OUTPUTS_MAX 16384
/* A stream's simulcast outputs: opaque text (output_defs_format, which
 * checks it; it holds the destinations' keys in clear), at most
 * STORE_OUTPUTS_MAX bytes with the NUL; NULL or "": none. Set on every node
 * at once, kept across restarts (the memory store: --state-dir; Redis: the
 * {registry}:outputs hash) and a key rotation, gone with the stream.
 * set: -ENOENT (no such stream), -EMSGSIZE (too long), -EINVAL (bytes
 * outside printable ASCII), -EIO. get: *text_out a malloc'd copy ("" for
 * none); -ENOENT (no such stream), -ENOMEM, -EIO. Any thread. */
int store_stream_set_outputs(store_t *st, const char *id, const char *text)
    __attribute__((warn_unused_result));
int store_stream_get_outputs(store_t *st, const char *id, char **text_out)
    __attribute__((warn_unused_result));
/* Whether a broadcast of stream_id starting now is recorded: its override,
 * or dflt (--record) when it has none. A store that cannot answer, or an
 * unknown stream, gives dflt. Any thread. */
bool store_stream_record(store_t *st, const char *stream_id, bool dflt);

/* Small per-stream records that are neither served nor announced to
 * watchers: a live stream's status as its ingest node last wrote it, each
 * origin node's viewer count. A record is a field of the stream's record
 * set, expiring ttl_ms after it was put (Redis: by the server's clock).
 * Limits: field 1..STORE_NAME_MAX bytes, ttl_ms > 0 (else -EINVAL); value
 * up to 64 KiB (else -EMSGSIZE). The stream need not be registered. */
int store_meta_put(store_t *st, const char *stream_id, const char *field, const char *value,
                   int64_t ttl_ms) __attribute__((warn_unused_result));
/* store_meta_put, except that an unexpired value beginning with
 * final_prefix (a record its writer declared final, e.g. a playback
 * session's "ended") is kept: 0 written, 1 kept. Writers on several nodes
 * may hear one client's messages out of order; the final one must win. */
int store_meta_put_unless_final(store_t *st, const char *stream_id, const char *field,
                                const char *value, int64_t ttl_ms, const char *final_prefix)
    __attribute__((warn_unused_result));
/* *value_out = a malloc'd copy, or -ENOENT (absent or expired), -EIO. */
int store_meta_get(store_t *st, const char *stream_id, const char *field, char **value_out)
    __attribute__((warn_unused_result));
/* Calls cb for every unexpired field whose name starts with prefix ("" or
 * NULL: every field), on the calling thread, with no store lock held (cb may
 * call the store). The strings are only valid during the call. */
typedef void (*store_meta_cb)(void *opaque, const char *field, const char *value);
int store_meta_scan(store_t *st, const char *stream_id, const char *prefix, store_meta_cb cb,
                    void *opaque) __attribute__((warn_unused_result));
/* This process's node id (stable for its life; unique among the nodes
 * sharing a store), for per-node meta fields. */
const char *store_node_id(const store_t *st);

/* ---- rungs on demand (--rungs on-demand) -------------------------------- */

/* "Rendition R of stream S was asked for", so that the transcode worker of
 * S (on whichever node) keeps R encoding while someone watches it; through
 * the store, so that the viewers of every origin node count. A meta record
 * (field "demand.R") holding the newest now_ms (wall clock, ms since the
 * epoch) of any node, expiring after STORE_DEMAND_TTL_MS.
 *
 * store_demand_note is called per request (media playlist, part, segment)
 * and writes at most once per STORE_DEMAND_THROTTLE_MS per node, stream and
 * rendition: 1 when it wrote, 0 when a write of this node within that time
 * covers it (nothing done), -EINVAL (a bad id or rendition name: 1..31 of
 * [A-Za-z0-9_-]), -EIO. A failed write is not remembered (the next request
 * tries again). Any thread. */
#define STORE_DEMAND_THROTTLE_MS 1000
#define STORE_DEMAND_TTL_MS (2 * 3600 * 1000)
#define STORE_DEMAND_PREFIX "demand."
int store_demand_note(store_t *st, const char *stream_id, const char *rendition, int64_t now_ms);
/* *last_ms = the now_ms of the newest note of rendition on any node: 0, or
 * -ENOENT (none within STORE_DEMAND_TTL_MS), -EINVAL, -EIO. Any thread. */
int store_demand_last(store_t *st, const char *stream_id, const char *rendition,
                      int64_t *last_ms) __attribute__((warn_unused_result));

/* Operation counters for /metrics. Counters only grow. registry_ops counts
 * the store_stream_* calls and store_lease_revoke; meta_ops the store_meta_*
 * calls; an answer such as -ENOENT is not an error. */
typedef struct store_stats {
    uint64_t commits, gets, registry_ops, meta_ops;
    uint64_t errors;      /* calls that failed with -EIO */
    bool connected;       /* memory: always; redis: the server answers */
    /* Memory backend only (0 for others): bytes held now (blobs plus an
     * estimate of each object's own overhead), the limit (0: none), and
     * objects evicted to stay under it (a counter). */
    uint64_t memory_bytes, memory_limit, evictions;
    /* Redis through Sentinel only (false / zero / "" otherwise): the master
     * in use ("HOST:PORT", "" while none), the name the sentinels know it
     * by, the sentinels configured and those whose +switch-master
     * subscription is up, failovers this process followed (a counter), the
     * last one's wall-clock time (ms since the epoch, 0: none), how long the
     * last outage lasted (and the current one so far) (lost master -> resynchronised, ms), and registry or
     * lease changes no replica acknowledged within wait-ms (a counter). */
    bool sentinel;
    char master[280];
    char master_name[64];
    uint32_t sentinels, sentinels_up;
    uint64_t failovers;
    int64_t last_failover_ms, last_outage_ms;
    int64_t outage_ms; /* the outage going on now, so far (0: none) */
    uint64_t replica_wait_timeouts;
    /* Failovers followed to a promoted replica before the sentinels
     * announced it (+switch-master); also counted in failovers. */
    uint64_t early_switches;
} store_stats_t;
void store_get_stats(store_t *st, store_stats_t *out);

/* ---- bounded memory (memory backend) ------------------------------------ */

/* Caps what the memory store holds at limit_bytes (0: unlimited). When a
 * commit takes it over, the store first drops what has already expired,
 * then evicts, until it is under the limit again:
 *   1. every expiring object of an ended or idle stream: one without a
 *      live publisher (no store_lease held on it in this process) or with
 *      no commit for idle_ms (0: 10 s); the stream whose last commit is the
 *      oldest first;
 *   2. objects whose expiry a commit set with STORE_OP_EXPIRE (a segment
 *      kept only for its grace time after it left a live playlist), the
 *      one due to expire first first;
 * and never the rest: a live stream's window, init segments, playlists,
 * parts, nor objects put without a TTL (a stream's small bookkeeping such
 * as its next segment number). If only those remain, the commit is
 * accepted over the limit and a warning logged (at most every 10 s): a
 * refused commit would end a live stream. An evicted object is exactly an
 * expired one: store_get says -ENOENT, watchers are not woken.
 * Other backends bound their own memory (Redis: maxmemory): there it does
 * nothing and returns 0, so a caller need not know the backend. Any thread. */
int store_set_memory_limit(store_t *st, uint64_t limit_bytes, int64_t idle_ms)
    __attribute__((warn_unused_result));

/* ---- persistent registry (memory backend) -------------------------------- */

/* Keeps the memory store's stream registry in DIR/registry.db (SQLite; DIR
 * is created if missing, its parent is not): loads the streams stored there
 * (*loaded = how many), then writes every registry change (store_stream_add,
 * _seed, _rotate, _remove, _set_record) in its own transaction, durable
 * before the call returns. A change that cannot be written fails with -EIO
 * and changes nothing. Call it once, before any stream is added (-EBUSY
 * after). Errors, with a sentence in why[] naming the path and the cause:
 * -EACCES, -ENOENT, -ENOTDIR (the directory), -EBUSY (another process holds
 * the database), -EIO, -EPROTO (a newer schema). -ENOTSUP on a backend that
 * is not the memory store (Redis keeps its own registry). */
int store_set_state_dir(store_t *st, const char *dir, size_t *loaded, char *why, size_t whylen)
    __attribute__((warn_unused_result));
/* Every store_stream_seed of this start has been made: a stream that came
 * from the configuration of an earlier start (a persisted registry) and
 * that this start's configuration no longer has is removed, as a SIGHUP
 * reload would remove it. *removed = how many. 0, or -EIO (nothing removed
 * from then on). Backends without a persisted registry: 0, nothing done. */
int store_stream_seed_done(store_t *st, size_t *removed) __attribute__((warn_unused_result));

/* ---- live-stream ownership (the duplicate-publisher policy) ----------- */

typedef struct store_lease store_lease_t;
/* The lease was lost: another node took the stream over, or this node found
 * it held by another after an outage. Called at most once per lease, on a
 * store thread; it must not call back into the lease or watch functions. */
typedef void (*store_lease_lost_cb)(void *opaque, const char *stream_id);

/* Claims stream_id for this node while it is live. takeover: the claim wins
 * over another node's, which is told (its lost_cb runs) and disconnects its
 * publisher; otherwise -EBUSY while another node holds it. The backend
 * renews the claim in the background until store_lease_release. -EIO when
 * the store is unreachable. Within one process, publishers of one stream are
 * the caller's business (the memory store always grants). */
int store_lease_acquire(store_t *st, const char *stream_id, bool takeover,
                        store_lease_lost_cb lost_cb, void *opaque, store_lease_t **out)
    __attribute__((warn_unused_result));
/* Ends whoever owns the live stream id, on whichever node: that lease's
 * lost_cb runs (so its ingest disconnects the publisher). 0 also when
 * nobody holds it. -EIO. Any thread; not from a store callback. */
int store_lease_revoke(store_t *st, const char *stream_id) __attribute__((warn_unused_result));
/* Gives the claim up (if still ours) and frees the lease. After it returns
 * the lost_cb is not running and never will. NULL does nothing. */
void store_lease_release(store_lease_t *lease);

/* ---- change notification (blocking playlist reloads) -------------------- */

typedef struct store_watch store_watch_t;
/* Something of stream_id changed (a commit, on any node). Called at most once
 * per watch, on a store thread or the committing thread; it must not call the
 * watch or lease functions (resuming a suspended request is what it is for). */
typedef void (*store_watch_cb)(void *opaque, const char *stream_id);

/* Registers a one-shot watch on stream_id. To wait without missing a change:
 * add the watch, then re-read, then sleep until the callback. */
int store_watch_add(store_t *st, const char *stream_id, store_watch_cb cb, void *opaque,
                    store_watch_t **out) __attribute__((warn_unused_result));
/* Removes and frees a watch, fired or not. After it returns the callback is
 * not running and never will. NULL does nothing. */
void store_watch_remove(store_watch_t *w);
/* Blocks the calling thread until stream_id changes or timeout_ms passes:
 * 0 on a change, -ETIMEDOUT. For tools and tests; request handlers suspend
 * with store_watch_add instead of holding a thread. */
int store_wait_change(store_t *st, const char *stream_id, int timeout_ms);

/* Valid stream ids: 1..63 of [A-Za-z0-9_-]. The one rule for stream ids
 * (and recording ids, record_layout.h); store_id_valid_n checks id[0..n),
 * which need not be NUL-terminated (a path component). */
int store_id_valid(const char *id);
int store_id_valid_n(const char *id, size_t n);

#endif
