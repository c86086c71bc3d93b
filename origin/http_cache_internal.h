/*
 * What makes the origin correct behind a CDN: the Cache-Control policy of
 * every kind of answer, as pure functions. The header grammar it goes with
 * (dates, entity tags, ranges, Accept-Encoding) is common/http_header.h.
 * Any thread.
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

#endif
