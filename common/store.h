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
 * backend locks; the Redis backend keeps one connection per thread).
 * Blobs returned by store_get are references the caller must unref.
 */
#ifndef SLUICE_COMMON_STORE_H
#define SLUICE_COMMON_STORE_H

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

/* Opens "memory" (the embedded store). Returns 0 or a negative errno:
 * -EINVAL for an URL it does not understand, -EPROTONOSUPPORT for a backend
 * not built in. */
int store_open(const char *url, store_t **out) __attribute__((warn_unused_result));
/* store_close(NULL) does nothing. */
void store_close(store_t *st);
/* "memory" or "redis"; for logs and stats. */
const char *store_backend_name(const store_t *st);
/* 0 when the backend answers (/readyz). */
int store_ping(store_t *st);

/* Applies ops[0..n) to stream_id atomically. Object names longer than
 * STORE_NAME_MAX are refused with -ENAMETOOLONG and nothing is applied. */
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
 * compared in constant time; it is never kept in clear. */
int store_stream_add(store_t *st, const char *id, const char *name, const char *key)
    __attribute__((warn_unused_result));
/* Finds the stream whose key is `key` and copies its id into id_out
 * (size STORE_ID_MAX). -ENOENT for an unknown key. */
int store_stream_auth(store_t *st, const char *key, char *id_out)
    __attribute__((warn_unused_result));
/* -ENOENT when no stream has this id. */
int store_stream_exists(store_t *st, const char *id);

/* Valid stream ids: 1..63 of [A-Za-z0-9_-]. */
int store_id_valid(const char *id);

#endif
