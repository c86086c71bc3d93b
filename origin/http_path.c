/*
 * Public path grammar (docs/urls.md):
 *   /healthz  /readyz
 *   /player/ID  /assets/NAME (NAME: [A-Za-z0-9._-], no leading dot)
 *   /hls/ID/master.m3u8  /hls/ID/thumbnail.jpg  /hls/ID/viewers.json
 *   /beacon/ID
 *   /hls/ID/RENDITION/index.m3u8 | init.mp4 | init-N.mp4 | N.m4s | N.P.m4s
 *   /vod/RID/master.m3u8 | poster.jpg | recording.mp4 | clip.mp4 (a clip's RID: its CID)
 *   /vod/RID/RENDITION/index.m3u8 | init.mp4 | init-N.mp4 | N.m4s  (no parts)
 * ID is a store id ([A-Za-z0-9_-], < 64), RID a recording id
 * (record_layout.h: the same rule), RENDITION is [a-z0-9] (< 16),
 * N and P are decimal numbers without leading zeros (< 16 digits: segment
 * numbers start at the wall clock in quarter seconds, see transcode.h). Pure and
 * bounded; any thread.
 */
#include "http_path_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "hls_names.h"

/* Returns the length of the leading segment (up to '/' or the end). */
static size_t http_path_segment(const char *p, size_t len)
{
    const char *slash = memchr(p, '/', len);
    return slash ? (size_t)(slash - p) : len;
}

static int http_path_is_rendition(const char *p, size_t n)
{
    if (n == 0 || n >= HTTP_RENDITION_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9')))
            return 0;
    return 1;
}

static int http_path_equals(const char *p, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(p, lit, n) == 0;
}

/* Classifies the object file name inside a rendition (hls_names.h). Of
 * the playlists only index.m3u8 is served by name: the skip variants are
 * answers to _HLS_skip, chosen by the origin. */
static http_object_type_t http_path_media_object(const char *p, size_t n)
{
    hls_name_t h;
    if (!hls_name_parse(p, n, &h))
        return HTTP_OBJECT_NONE;
    switch (h.kind) {
    case HLS_NAME_KIND_PLAYLIST:
        return http_path_equals(p, n, HLS_NAME_PLAYLIST) ? HTTP_OBJECT_PLAYLIST : HTTP_OBJECT_NONE;
    case HLS_NAME_KIND_INIT:
        return HTTP_OBJECT_INIT;
    case HLS_NAME_KIND_SEGMENT:
        return HTTP_OBJECT_SEGMENT;
    case HLS_NAME_KIND_PART:
        return HTTP_OBJECT_PART;
    default:
        return HTTP_OBJECT_NONE;
    }
}

/* "REND/OBJECT" (p[first] is the '/'): a rendition name and one media
 * object of it; sets out->object_type. Returns 0 or -ENOENT. */
static int http_path_rendition_object(const char *p, size_t n, size_t first, http_route_t *out)
{
    if (!http_path_is_rendition(p, first))
        return -ENOENT;
    const char *obj = p + first + 1;
    size_t objn = n - first - 1;
    if (memchr(obj, '/', objn))
        return -ENOENT;
    out->object_type = http_path_media_object(obj, objn);
    return out->object_type == HTTP_OBJECT_NONE ? -ENOENT : 0;
}

/* "RID/..." after "/vod/": the file of a recording. Everything a recording
 * directory holds that is not named here (recording.json, the journals, a
 * temp file) is never served. */
static int http_path_parse_vod(const char *p, size_t n, http_route_t *out)
{
    size_t idn = http_path_segment(p, n);
    if (!record_id_valid_n(p, idn) || idn == n)
        return -ENOENT;
    memcpy(out->recording_id, p, idn);
    out->recording_id[idn] = '\0';
    p += idn + 1;
    n -= idn + 1;
    size_t first = http_path_segment(p, n);
    if (first == n) {
        if (http_path_equals(p, n, HLS_NAME_MASTER))
            out->object_type = HTTP_OBJECT_PLAYLIST;
        else if (http_path_equals(p, n, "poster.jpg"))
            out->object_type = HTTP_OBJECT_POSTER;
        else if (http_path_equals(p, n, "recording.mp4") || http_path_equals(p, n, "clip.mp4"))
            out->object_type = HTTP_OBJECT_MP4;
        else
            return -ENOENT;
    } else if (http_path_rendition_object(p, n, first, out) != 0 ||
               out->object_type == HTTP_OBJECT_PART) {
        return -ENOENT; /* a recording keeps whole segments only */
    }
    if (n > STORE_NAME_MAX)
        return -ENOENT;
    memcpy(out->object, p, n);
    out->object[n] = '\0';
    out->kind = HTTP_ROUTE_VOD;
    return 0;
}

int http_path_parse(const char *path, size_t len, http_route_t *out)
{
    memset(out, 0, sizeof(*out));
    if (len > HTTP_PATH_MAX)
        return -EMSGSIZE;
    if (http_path_equals(path, len, "/healthz")) {
        out->kind = HTTP_ROUTE_HEALTHZ;
        return 0;
    }
    if (http_path_equals(path, len, "/readyz")) {
        out->kind = HTTP_ROUTE_READYZ;
        return 0;
    }
    if (len > 8 && memcmp(path, "/player/", 8) == 0) {
        if (!store_id_valid_n(path + 8, len - 8))
            return -ENOENT;
        out->kind = HTTP_ROUTE_PLAYER;
        memcpy(out->stream_id, path + 8, len - 8);
        return 0;
    }
    if (len > 8 && memcmp(path, "/beacon/", 8) == 0) {
        if (!store_id_valid_n(path + 8, len - 8))
            return -ENOENT;
        out->kind = HTTP_ROUTE_BEACON;
        memcpy(out->stream_id, path + 8, len - 8);
        return 0;
    }
    if (len > 8 && memcmp(path, "/assets/", 8) == 0) {
        const char *nm = path + 8;
        size_t nl = len - 8;
        if (nl >= sizeof(out->object) || nm[0] == '.')
            return -ENOENT;
        for (size_t i = 0; i < nl; i++) {
            char ch = nm[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
                return -ENOENT;
        }
        out->kind = HTTP_ROUTE_ASSET;
        memcpy(out->object, nm, nl);
        return 0;
    }
    if (len > 5 && memcmp(path, "/vod/", 5) == 0) {
        int rc = http_path_parse_vod(path + 5, len - 5, out);
        if (rc < 0)
            memset(out, 0, sizeof(*out));
        return rc;
    }
    if (len < 5 || memcmp(path, "/hls/", 5) != 0)
        return -ENOENT;
    const char *p = path + 5;
    size_t n = len - 5;

    size_t idn = http_path_segment(p, n);
    if (!store_id_valid_n(p, idn) || idn == n)
        return -ENOENT;
    memcpy(out->stream_id, p, idn);
    out->stream_id[idn] = '\0';
    p += idn + 1;
    n -= idn + 1;

    size_t first = http_path_segment(p, n);
    if (first == n) {
        if (http_path_equals(p, n, HLS_NAME_MASTER))
            out->object_type = HTTP_OBJECT_PLAYLIST;
        else if (http_path_equals(p, n, "thumbnail.jpg"))
            out->object_type = HTTP_OBJECT_THUMBNAIL;
        else if (http_path_equals(p, n, "viewers.json"))
            out->object_type = HTTP_OBJECT_VIEWERS;
        else
            return -ENOENT;
    } else if (http_path_rendition_object(p, n, first, out) != 0) {
        return -ENOENT;
    }
    /* Both parts were checked above to fit: id < 64, rendition < 16, the
     * object file name < 30, so the store name fits STORE_NAME_MAX. */
    if (n > STORE_NAME_MAX)
        return -ENOENT;
    memcpy(out->object, p, n);
    out->object[n] = '\0';
    out->kind = HTTP_ROUTE_HLS;
    return 0;
}

const char *http_path_content_type(http_object_type_t type)
{
    switch (type) {
    case HTTP_OBJECT_PLAYLIST:
        return "application/vnd.apple.mpegurl";
    case HTTP_OBJECT_INIT:
        return "video/mp4";
    case HTTP_OBJECT_SEGMENT:
    case HTTP_OBJECT_PART:
        return "video/iso.segment";
    case HTTP_OBJECT_POSTER:
        return "image/jpeg";
    case HTTP_OBJECT_MP4:
        return "video/mp4";
    case HTTP_OBJECT_THUMBNAIL:
        return "image/jpeg";
    case HTTP_OBJECT_VIEWERS:
        return "application/json";
    default:
        return "application/octet-stream";
    }
}
