/*
 * The origin's Cache-Control policy as pure functions (see
 * http_cache_internal.h).
 */
#include "http_cache_internal.h"

#include <stdio.h>
#include <string.h>

#include "hls_names.h"

/* "public, max-age=N" for N = 0..30: every lifetime the policy can hand out
 * (segments are at most 30 s, so half a segment and a blocking target
 * duration both fit), as static strings a caller never frees. */
#define HTTP_CACHE_AGE_MAX 30
#define A(n) "public, max-age=" #n
static const char *const http_cache_public_age[HTTP_CACHE_AGE_MAX + 1] = {
    A(0),  A(1),  A(2),  A(3),  A(4),  A(5),  A(6),  A(7),  A(8),  A(9),  A(10),
    A(11), A(12), A(13), A(14), A(15), A(16), A(17), A(18), A(19), A(20), A(21),
    A(22), A(23), A(24), A(25), A(26), A(27), A(28), A(29), A(30),
};
#undef A

static const char *http_cache_age(double seconds, int min)
{
    int n = seconds >= HTTP_CACHE_AGE_MAX ? HTTP_CACHE_AGE_MAX : seconds > 0 ? (int)seconds : 0;
    if (n < min)
        n = min;
    return http_cache_public_age[n];
}

const char *http_cache_control(http_object_type_t type, bool blocking,
                               const origin_params_t *params)
{
    if (type != HTTP_OBJECT_PLAYLIST)
        return HTTP_CACHE_CONTROL_IMMUTABLE;
    if (blocking) /* the target duration, rounded like EXT-X-TARGETDURATION */
        return http_cache_age(params->segment_duration + 0.5, 1);
    if (params->playlist_no_cache)
        return "no-cache";
    /* A playlist changes with every part: a CDN may serve it for half a
     * part (0 s for 0.333 s parts: it still coalesces a burst of misses
     * into one origin fetch) or half a segment without parts. */
    if (params->part_duration > 0)
        return http_cache_age(params->part_duration / 2, 0);
    return http_cache_age(params->segment_duration / 2, 0);
}

const char *http_cache_control_route(const http_route_t *route, bool blocking,
                                     const origin_params_t *params)
{
    if (route->kind == HTTP_ROUTE_VOD)
        return route->object_type == HTTP_OBJECT_PLAYLIST ? HTTP_CACHE_CONTROL_VOD_PLAYLIST
                                                          : HTTP_CACHE_CONTROL_IMMUTABLE;
    /* The live thumbnail changes at most once a segment. */
    if (route->object_type == HTTP_OBJECT_THUMBNAIL)
        return http_cache_age(params->segment_duration, 1);
    if (route->object_type == HTTP_OBJECT_INIT) {
        const char *slash = strrchr(route->object, '/');
        if (strcmp(slash ? slash + 1 : route->object, HLS_NAME_INIT) == 0)
            return http_cache_age(params->segment_duration + 0.5, 1);
    }
    return http_cache_control(route->object_type, blocking, params);
}
