/*
 * Viewer sessions: concurrent viewers per stream, estimated from distinct
 * playback sessions seen by this origin (docs/cdn.md, "Counting viewers").
 *
 * A session is identified by the player's `sid` query parameter, else the
 * signed token's SID, else the client address (from X-Forwarded-For only
 * when the peer is a trusted proxy) with the User-Agent. A session expires
 * `ttl_ms` (2 target durations) after its last request.
 *
 * Threads: viewers_touch() runs on MHD's threads for every playback
 * request: the table is split into stripes, each with its own mutex and a
 * fixed open-addressing array, so a known session costs one hash, one lock
 * and one store, no allocation. New sessions also take the stream table's
 * lock (lock order: stripe, then streams). Counting and listing (the admin
 * and report threads) sweep expired sessions at most a few times a second.
 * Memory is bounded: at most max_total sessions, max_per_stream per stream
 * and VIEWERS_STREAMS_MAX streams; what does not fit is counted as refused.
 */
#ifndef SLUICE_ORIGIN_VIEWERS_INTERNAL_H
#define SLUICE_ORIGIN_VIEWERS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "origin.h"

#define VIEWERS_STREAMS_MAX 4096
#define VIEWERS_PROXIES_MAX 64
#define VIEWERS_XFF_HOPS_MAX 32

typedef struct viewers viewers_t;

/* One trusted network: an address (IPv4 as IPv4-mapped IPv6) and prefix. */
typedef struct viewers_net {
    uint8_t addr[16];
    int bits; /* 0..128 */
} viewers_net_t;

/* Parses "ADDR[/BITS],..." (IPv4 and IPv6; spaces allowed) into out (cap
 * entries). Returns the count, or -EINVAL (a bad entry) / -E2BIG. */
int viewers_parse_proxies(const char *spec, viewers_net_t *out, size_t cap);

/* trusted_proxies may be NULL or "". -EINVAL for a bad list. */
int viewers_new(const char *trusted_proxies, int64_t ttl_ms, size_t max_total,
                size_t max_per_stream, viewers_t **out) __attribute__((warn_unused_result));
void viewers_free(viewers_t *v);

/* The client address of a request (16 bytes, IPv4-mapped): the peer, or,
 * when the peer is a trusted proxy, the nearest untrusted address of
 * X-Forwarded-For walking from the right (xff may be NULL). */
void viewers_client_addr(const viewers_t *v, const struct sockaddr *peer, const char *xff,
                         uint8_t out[16]);

/* A playback request of stream_id by session (kind 's' sid, 't' token SID,
 * 'a' address + user agent: a = the 16-byte address, b = the User-Agent).
 * Any thread. */
void viewers_touch(viewers_t *v, const char *stream_id, char kind, const void *a, size_t alen,
                   const void *b, size_t blen, int64_t now_ms);

/* Sessions of stream_id alive at now_ms. Any thread. */
uint64_t viewers_count(viewers_t *v, const char *stream_id, int64_t now_ms);
/* Every stream with sessions: a malloc'd array (caller frees). */
int viewers_list(viewers_t *v, int64_t now_ms, origin_stream_viewers_t **out, size_t *n);
/* Sessions alive in total, sessions ever created, sessions refused. */
void viewers_get_stats(viewers_t *v, int64_t now_ms, uint64_t *alive, uint64_t *created,
                       uint64_t *refused);

#endif
