/*
 * Packager: turns one stream's media packets into HLS objects in the store.
 * It decides where segments are cut (video keyframes once the target
 * duration has passed; audio at the same media time), keeps the playlist
 * models (live window, target duration, master playlist attributes), drives
 * one CMAF muxer per rendition and commits each new segment together with
 * the playlists that name it in one atomic store commit.
 *
 * One packager per broadcast, owned and used by that stream's transcode
 * worker thread only.
 */
#ifndef SLUICE_TRANSCODE_PACKAGER_INTERNAL_H
#define SLUICE_TRANSCODE_PACKAGER_INTERNAL_H

#include <stdint.h>

#include "media.h"
#include "store.h"

typedef struct packager_params {
    store_t *store;
    const char *stream_id;   /* copied */
    const char *log_ctx;     /* copied; NULL: "stream=<id>" */
    double segment_duration; /* target seconds */
    int playlist_segments;   /* live window */
    int64_t ended_ttl_ms;    /* lifetime of everything once the stream ends */
    int64_t first_msn;       /* media sequence number of the first segment */
} packager_params_t;

typedef struct packager packager_t;

int packager_new(const packager_params_t *params, packager_t **out)
    __attribute__((warn_unused_result));

/* Feeds one packet (not EOS: use packager_finish). Takes ownership of `pkt`
 * on every path. Returns 0, or a negative errno when the stream cannot be
 * packaged any further (already logged); the caller then ends the worker. */
int packager_push(packager_t *pk, media_packet_t *pkt) __attribute__((warn_unused_result));

/* End of stream: flushes the last (partial) segments, writes the playlists
 * with EXT-X-ENDLIST and lets every object of the broadcast expire after
 * ended_ttl_ms. Returns 0 or a negative errno. */
int packager_finish(packager_t *pk) __attribute__((warn_unused_result));

/* The first media sequence number this packager has not used; a later
 * broadcast of the same stream starts there. */
int64_t packager_next_msn(const packager_t *pk);

/* Segments committed so far (per rendition; the larger count). */
int64_t packager_segments_written(const packager_t *pk);

/* Frees everything; pending media is dropped. NULL does nothing. */
void packager_free(packager_t *pk);

#endif
