/*
 * What makes the origin correct behind a CDN, as pure functions of header
 * values: the Cache-Control policy of every kind of answer, entity-tag
 * matching (If-None-Match, If-Range), single byte ranges (Range), and
 * content negotiation of gzip (Accept-Encoding). Nothing here touches a
 * connection or allocates; every parser is bounded by its input length and
 * fuzzed (tests/fuzz/fuzz_http_cache.c). Any thread.
 */
#ifndef SLUICE_ORIGIN_HTTP_CACHE_INTERNAL_H
#define SLUICE_ORIGIN_HTTP_CACHE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "http_path_internal.h"
#include "origin.h"

/* Every error answer (400, 403, 404, 405, 414, 416, 503): a CDN may absorb
 * a burst for a second but never keeps a missing object around. */
#define HTTP_CACHE_CONTROL_ERROR "max-age=1"
/* Init segments, segments and parts: names are never reused. */
#define HTTP_CACHE_CONTROL_IMMUTABLE "public, max-age=31536000, immutable"

/*
 * The Cache-Control value of a successful (200/206/304) answer for an object
 * of `type`. Media objects are immutable. Playlists: "no-cache" when
 * params->playlist_no_cache, else "public, max-age=M" with M half a part
 * (LL-HLS) or half a segment, rounded down. `blocking` is for an LL-HLS
 * blocking playlist reload (_HLS_msn...): its URL names one playlist
 * version, so it may live for a target duration, whole seconds, at least 1.
 * Returns a static string.
 */
const char *http_cache_control(http_object_type_t type, bool blocking,
                               const origin_params_t *params);

/* A recording's playlists (/vod/): a VOD never changes once it is ready,
 * but it can be deleted, so a CDN keeps its playlists a minute; everything
 * else of a recording (init segments, segments, poster, MP4) is immutable. */
#define HTTP_CACHE_CONTROL_VOD_PLAYLIST "public, max-age=60"

/* The same for a parsed route: "init.mp4", the name every broadcast's
 * first init segment has, may hold other bytes in the next broadcast (say,
 * another resolution), so it lives for a target duration only, like a
 * blocking reload; "init-N.mp4" names are never reused and are immutable.
 * A recording's (HTTP_ROUTE_VOD): HTTP_CACHE_CONTROL_VOD_PLAYLIST for its
 * playlists, immutable for every other file.
 * The live thumbnail changes at most once a segment: a segment duration. */
const char *http_cache_control_route(const http_route_t *route, bool blocking,
                                     const origin_params_t *params);

/* Formats an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") of a wall-clock
 * time in ms since the epoch into out (>= 30 bytes). */
#define HTTP_DATE_MAX 32
void http_cache_format_date(int64_t ms, char out[HTTP_DATE_MAX]);

/*
 * If-None-Match (RFC 9110 13.1.2): true when the header value `inm`
 * (a comma-separated list of entity tags, or "*") matches `etag` (one
 * quoted entity tag, e.g. "\"abc\"") by weak comparison. A malformed list
 * matches nothing from the malformed element on (the answer is then a full
 * 200, which is always safe).
 */
bool http_cache_none_match(const char *inm, size_t len, const char *etag);

/* If-Range (RFC 9110 13.1.5): true when `if_range` is an entity tag that
 * strongly equals `etag`, or exactly our Last-Modified date `last_modified`. */
bool http_cache_if_range(const char *if_range, size_t len, const char *etag,
                         const char *last_modified);

typedef enum http_range_result {
    HTTP_RANGE_IGNORE = 0,   /* absent, malformed, several ranges: serve 200 */
    HTTP_RANGE_OK,           /* serve 206 of [*first, *first + *count) */
    HTTP_RANGE_UNSATISFIABLE /* serve 416 with Content-Range: bytes * /size */
} http_range_result_t;

/*
 * Range (RFC 9110 14.2): parses a single "bytes=" range of a representation
 * of `size` bytes: "A-B", "A-" or "-N" (suffix). Several ranges or anything
 * malformed is ignored (the RFC allows answering those with the full 200).
 */
http_range_result_t http_cache_range(const char *range, size_t len, uint64_t size,
                                     uint64_t *first, uint64_t *count);

/* Accept-Encoding (RFC 9110 12.5.3): true when gzip (or x-gzip, or "*" when
 * gzip is not named) is acceptable with a non-zero q. */
bool http_cache_accepts_gzip(const char *accept_encoding, size_t len);

#endif
