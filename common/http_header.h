/*
 * HTTP header values as pure functions (RFC 9110): IMF-fixdate, entity-tag
 * matching (If-None-Match, If-Range), single byte ranges (Range) and
 * content negotiation of gzip (Accept-Encoding). Nothing here touches a
 * connection or allocates; every parser is bounded by its input length and
 * fuzzed (tests/fuzz/fuzz_http_cache.c, with every request header the
 * origin reads). Any thread. Used by the public origin and by both
 * listeners' web pages (web_reply_asset).
 */
#ifndef SLUICE_COMMON_HTTP_HEADER_H
#define SLUICE_COMMON_HTTP_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_DATE_MAX 32
/* Formats an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") of a wall-clock
 * time in ms since the epoch into out (>= 30 bytes). */
void http_header_format_date(int64_t ms, char out[HTTP_DATE_MAX]);

/*
 * If-None-Match (RFC 9110 13.1.2): true when the header value `inm`
 * (a comma-separated list of entity tags, or "*") matches `etag` (one
 * quoted entity tag, e.g. "\"abc\"") by weak comparison. A malformed list
 * matches nothing from the malformed element on (the answer is then a full
 * 200, which is always safe).
 */
bool http_header_none_match(const char *inm, size_t len, const char *etag);

/* If-Range (RFC 9110 13.1.5): true when `if_range` is an entity tag that
 * strongly equals `etag`, or exactly our Last-Modified date `last_modified`. */
bool http_header_if_range(const char *if_range, size_t len, const char *etag,
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
http_range_result_t http_header_range(const char *range, size_t len, uint64_t size,
                                     uint64_t *first, uint64_t *count);

/* Accept-Encoding (RFC 9110 12.5.3): true when gzip (or x-gzip, or "*" when
 * gzip is not named) is acceptable with a non-zero q. */
bool http_header_accepts_gzip(const char *accept_encoding, size_t len);

#endif
