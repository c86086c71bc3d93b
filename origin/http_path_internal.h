/*
 * Routing of public origin paths. A pure, bounded parser of the request
 * path (already percent-decoded by libmicrohttpd) into a route: which stream,
 * which object, and what it is. Anything not matching the strict grammar of
 * docs/urls.md is "not found", so a path can never name something outside a
 * stream's objects. Any thread.
 */
#ifndef SLUICE_ORIGIN_HTTP_PATH_INTERNAL_H
#define SLUICE_ORIGIN_HTTP_PATH_INTERNAL_H

#include <stddef.h>

#include "record_layout.h"
#include "store.h"

#define HTTP_PATH_MAX 512

typedef enum http_route_kind {
    HTTP_ROUTE_NONE = 0,
    HTTP_ROUTE_HEALTHZ,
    HTTP_ROUTE_READYZ,
    HTTP_ROUTE_HLS,    /* an object of a stream */
    HTTP_ROUTE_PLAYER, /* /player/ID: the player page of a stream */
    HTTP_ROUTE_ASSET,  /* /assets/NAME: a file of the player page (object = NAME) */
    HTTP_ROUTE_VOD,    /* /vod/RID/...: a file of a recording (recording_id, object) */
    HTTP_ROUTE_BEACON, /* /beacon/ID: an audience beacon of a stream (POST) */
} http_route_kind_t;

typedef enum http_object_type {
    HTTP_OBJECT_NONE = 0,
    HTTP_OBJECT_PLAYLIST, /* master.m3u8, RENDITION/index.m3u8 */
    HTTP_OBJECT_INIT,     /* RENDITION/init.mp4 */
    HTTP_OBJECT_SEGMENT,  /* RENDITION/N.m4s */
    HTTP_OBJECT_PART,     /* RENDITION/N.P.m4s */
    HTTP_OBJECT_POSTER,   /* poster.jpg (a recording's) */
    HTTP_OBJECT_MP4,      /* recording.mp4 (a recording's download) */
    HTTP_OBJECT_THUMBNAIL, /* thumbnail.jpg */
    HTTP_OBJECT_VIEWERS,   /* viewers.json: the public viewer count (not a stored object) */
} http_object_type_t;

#define HTTP_RENDITION_MAX 16

typedef struct http_route {
    http_route_kind_t kind;
    http_object_type_t object_type;
    char stream_id[STORE_ID_MAX];
    char object[STORE_NAME_MAX + 1]; /* store name: "master.m3u8", "720p/3.m4s" */
    /* HTTP_ROUTE_VOD: the recording (its directory name, a valid
     * recording id: record_id_valid); stream_id is then empty (the
     * recording's stream comes from its recording.json) and object is the
     * file's path inside the recording's directory. */
    char recording_id[RECORD_ID_MAX];
} http_route_t;

/*
 * Parses path[0..len). Returns 0 with *out filled, -ENOENT for a path that
 * names nothing we serve, -EMSGSIZE for one longer than HTTP_PATH_MAX.
 */
int http_path_parse(const char *path, size_t len, http_route_t *out);

/* The Content-Type of an object type. */
const char *http_path_content_type(http_object_type_t type);

#endif
