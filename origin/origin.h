/*
 * The public HTTP origin: playlists, init segments and segments straight
 * from the store, /healthz and /readyz. libmicrohttpd runs it on its own
 * thread pool; handlers only read immutable blobs from the store.
 */
#ifndef SLUICE_ORIGIN_ORIGIN_H
#define SLUICE_ORIGIN_ORIGIN_H

#include <stdbool.h>

#include "store.h"

typedef struct origin origin_t;

typedef struct origin_params {
    const char *http_listen; /* "HOST:PORT" */
    store_t *store;
    unsigned int threads;    /* MHD thread pool size (0: one per CPU) */
    unsigned int max_connections;
    /* HLS timing of the streams the packager writes; the origin's cache
     * lifetimes and blocking-request limits derive from them. */
    double segment_duration;  /* target seconds */
    double part_duration;     /* LL-HLS part target, seconds; 0: LL-HLS off */
    bool playlist_no_cache;   /* --playlist-cache no-cache */
    const char *cors_origin;  /* Access-Control-Allow-Origin; NULL: "*" */
    const char *playback_secret; /* NULL: playback is open; else signed tokens */
} origin_params_t;

int origin_open(const origin_params_t *params, origin_t **out)
    __attribute__((warn_unused_result));
int origin_port(const origin_t *o);
/* Stops the listener and frees everything. NULL does nothing. */
void origin_close(origin_t *o);

#endif
