/*
 * Replies with an embedded web file on either listener (web.h).
 */
#include "web.h"

#include <stdbool.h>
#include <string.h>

#include <microhttpd.h>

#include "http_header.h"

/* Pages play media from blob: URLs (MSE); their scripts and styles come
 * from this server only. The player page may be framed anywhere (the embed
 * mode) and shows product cards whose pictures come from the platform's
 * own hosts (docs/metadata.md), so it takes images over https too. It also
 * takes media from data: URLs: hls.js 1.7 gives every text track it makes
 * (timed metadata, captions) the source "data:,WEBVTT" (Safari drops the
 * cues of a track without one), which media-src refused with a console
 * error. The dashboard takes images from itself only and is never framed. */
#define WEB_PAGE_CSP(img_src, media_src, frame_ancestors)                                          \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src " img_src "; "               \
    "media-src " media_src "; connect-src 'self' http: https:; "                                   \
    "worker-src 'self' blob:; frame-ancestors " frame_ancestors

int web_reply_asset(struct MHD_Connection *c, const web_asset_t *a, const char *cache_control,
                    bool frameable)
{
    const char *ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding");
    bool gzip = ae && a->gz_size < a->size && http_header_accepts_gzip(ae, strlen(ae));
    const char *etag = gzip ? a->etag_gz : a->etag;
    const unsigned char *data = gzip ? a->gz_data : a->data;
    size_t size = gzip ? a->gz_size : a->size;
    const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
    bool not_modified = inm && http_header_none_match(inm, strlen(inm), etag);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(size, (void *)data, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", a->content_type);
    MHD_add_response_header(r, "Cache-Control", cache_control);
    MHD_add_response_header(r, "ETag", etag);
    MHD_add_response_header(r, "Vary", "Accept-Encoding");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (gzip)
        MHD_add_response_header(r, "Content-Encoding", "gzip");
    if (strncmp(a->content_type, "text/html", 9) == 0) {
        /* The public player is made to be embedded; the dashboard must
         * never be framed (clickjacking its buttons). */
        MHD_add_response_header(
            r, "Content-Security-Policy",
            frameable ? WEB_PAGE_CSP("'self' data: https:", "'self' blob: data: http: https:", "*")
                      : WEB_PAGE_CSP("'self' data:", "'self' blob: http: https:", "'none'"));
        MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    }
    if (!frameable)
        MHD_add_response_header(r, "X-Frame-Options", "DENY");
    enum MHD_Result ret =
        MHD_queue_response(c, not_modified ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}
