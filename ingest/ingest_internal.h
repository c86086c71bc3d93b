/*
 * Pieces shared inside ingest/ only: a growable output byte buffer used by
 * the AMF0 encoder and the chunk writer, and the seam between the listener
 * (ingest.c) and the per-connection state machine (rtmp_session.c).
 *
 * Everything here runs on the ingest loop thread, except the byte buffer,
 * which is plain storage any thread may use on its own instance.
 */
#ifndef SLUICE_INGEST_INGEST_INTERNAL_H
#define SLUICE_INGEST_INGEST_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ingest.h"

/* ---- growable byte buffer -------------------------------------------- */

/* Storage owned by whoever declares it; zero-initialise, then append.
 * An allocation failure sets the sticky `oom` flag and later appends do
 * nothing, so a writer checks once at the end (like byteio's error flag). */
typedef struct ingest_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool oom;
} ingest_buf_t;

static inline bool ingest_buf_reserve(ingest_buf_t *b, size_t extra)
{
    if (b->oom)
        return false;
    if (extra > SIZE_MAX / 2 - b->len) {
        b->oom = true;
        return false;
    }
    if (b->len + extra <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

static inline void ingest_buf_append(ingest_buf_t *b, const void *src, size_t n)
{
    if (n == 0 || !ingest_buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, src, n);
    b->len += n;
}

static inline void ingest_buf_u8(ingest_buf_t *b, uint8_t v)
{
    ingest_buf_append(b, &v, 1);
}

/* Empties the buffer but keeps its storage. */
static inline void ingest_buf_reset(ingest_buf_t *b)
{
    b->len = 0;
    b->oom = false;
}

static inline void ingest_buf_deinit(ingest_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* ---- listener <-> session seam (ingest loop thread only) -------------- */

/* How long a connection may sit between handshake and publish. */
#define INGEST_IDLE_TIMEOUT_MS 30000
/* How long a publishing connection may go without sending a byte. */
#define INGEST_READ_TIMEOUT_MS 30000
/* How long a reply we close after may take to reach a peer that stopped reading. */
#define INGEST_LINGER_MS 5000

struct event_base;
typedef struct rtmp_session rtmp_session_t;

/* The listener state rtmp_session.c needs. Owned by ingest.c. */
typedef struct ingest_shared {
    struct event_base *base;
    store_t *store;
    ingest_hooks_t hooks;
    ingest_limits_t limits;
    ingest_duplicate_policy_t duplicate;
    uint64_t next_session_id;
    rtmp_session_t *sessions; /* every open session, doubly linked */
    struct event *reap_ev;    /* frees sessions marked dead */
    /* Leases lost to another node, reported on a store thread: session ids
     * queued under lost_lock, drained by lost_ev on the loop. */
    pthread_mutex_t lost_lock;
    uint64_t *lost;
    size_t nlost, cap_lost;
    struct event *lost_ev;
} ingest_shared_t;

/* Takes ownership of the connected, non-blocking socket `fd` on every path.
 * Returns 0, or a negative errno when the session could not be set up (the
 * socket is closed then). */
int rtmp_session_new(ingest_shared_t *sh, int fd, const struct sockaddr *peer, int peerlen);

/* Ends the session now: a live stream gets its EOS, the socket is closed and
 * the memory freed. Only call from outside the session's own callbacks
 * (the reaper, or shutdown after the loop has stopped). */
void rtmp_session_free(rtmp_session_t *s);

/* Frees every session marked dead. The reap event's callback. */
void rtmp_session_reap(ingest_shared_t *sh);

/* Another node took over the stream session_id publishes: disconnect it.
 * Does nothing when that session is gone or no longer publishing. */
void rtmp_session_lease_lost(ingest_shared_t *sh, uint64_t session_id);

#endif
