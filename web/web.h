/*
 * The web files sluice serves (the player page on the public listener, the
 * dashboard on the admin listener, and the pinned npm files they use),
 * embedded into the binary at build time by web/embed.py so that both work
 * with no internet access and nothing to install beside the binary.
 * Read-only data: any thread. web_reply_asset serves one over HTTP.
 */
#ifndef SLUICE_WEB_WEB_H
#define SLUICE_WEB_WEB_H

#include <stdbool.h>
#include <stddef.h>

typedef struct web_asset {
    const char *name;         /* "player.js", "hls.min.js" */
    const char *content_type;
    const unsigned char *data;
    size_t size;
    const unsigned char *gz_data; /* the same, gzip-compressed at build time */
    size_t gz_size;
    const char *etag;    /* strong ETag of data, quoted */
    const char *etag_gz; /* of gz_data */
} web_asset_t;

struct MHD_Connection;

/* The asset called name, or NULL. */
const web_asset_t *web_asset_find(const char *name);
size_t web_asset_count(void);
const web_asset_t *web_asset_at(size_t i);

/* Answers a request with the embedded file `a` (not NULL): ETag and
 * If-None-Match (304), gzip when accepted, the given Cache-Control, and for
 * a page a Content-Security-Policy whose frame-ancestors is * when
 * frameable (the public player), else 'none' with X-Frame-Options: DENY
 * (the dashboard). For the public origin and the admin listener alike, on
 * their MHD threads. Returns an enum MHD_Result. */
int web_reply_asset(struct MHD_Connection *c, const web_asset_t *a, const char *cache_control,
                    bool frameable);

#endif
