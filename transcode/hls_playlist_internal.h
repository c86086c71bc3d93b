/*
 * HLS playlist models and their renderer (RFC 8216). The packager decides
 * what a playlist says (which segments, target duration, end of list) and
 * fills these structs; hls_playlist_render_*() only turns a model into text,
 * the way FFmpeg's hlsplaylist.c only writes lines that hlsenc.c decided.
 *
 * Models are plain data owned by the caller; rendering is pure and may run
 * on any thread.
 */
#ifndef SLUICE_TRANSCODE_HLS_PLAYLIST_INTERNAL_H
#define SLUICE_TRANSCODE_HLS_PLAYLIST_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blob.h"

#define HLS_PLAYLIST_VERSION 7

/* One media segment as a playlist names it ("<msn>.m4s"). Room for LL-HLS
 * parts comes later (a parts array per segment). */
typedef struct hls_segment {
    int64_t msn;          /* media sequence number, also the file name */
    double duration;      /* seconds, EXTINF */
    int64_t pdt_ms;       /* wall clock of the first sample, ms since the epoch */
    bool discontinuity;   /* EXT-X-DISCONTINUITY before this segment */
    size_t bytes;         /* size of the object (for bandwidth; not rendered) */
} hls_segment_t;

typedef struct hls_media_playlist {
    int target_duration;            /* EXT-X-TARGETDURATION, whole seconds */
    int64_t media_sequence;         /* msn of segments[0] (or of the next one when empty) */
    int64_t discontinuity_sequence; /* EXT-X-DISCONTINUITY-SEQUENCE; rendered when non-zero */
    const char *map_uri;            /* EXT-X-MAP URI, e.g. "init.mp4" */
    const hls_segment_t *segments;  /* oldest first */
    size_t nsegments;
    bool ended;                     /* EXT-X-ENDLIST */
} hls_media_playlist_t;

/* EXT-X-MEDIA (an alternative rendition, here the audio group). */
typedef struct hls_media_rendition {
    const char *type; /* "AUDIO" */
    const char *group_id;
    const char *name;
    const char *language; /* NULL: omitted */
    bool is_default;
    bool autoselect;
    int channels; /* 0: omitted */
    const char *uri;
} hls_media_rendition_t;

/* EXT-X-STREAM-INF. */
typedef struct hls_variant {
    int64_t bandwidth;         /* peak bits/s */
    int64_t average_bandwidth; /* 0: omitted */
    const char *codecs;        /* "avc1.64001f,mp4a.40.2" */
    int width, height;         /* 0: RESOLUTION omitted */
    double frame_rate;         /* 0: FRAME-RATE omitted */
    const char *audio_group;   /* NULL: AUDIO omitted */
    const char *uri;
} hls_variant_t;

typedef struct hls_master_playlist {
    bool independent_segments;
    const hls_media_rendition_t *media;
    size_t nmedia;
    const hls_variant_t *variants;
    size_t nvariants;
} hls_master_playlist_t;

/* Render a model into a new blob (refcount 1). Return 0 or -ENOMEM. */
int hls_playlist_render_media(const hls_media_playlist_t *pl, blob_t **out)
    __attribute__((warn_unused_result));
int hls_playlist_render_master(const hls_master_playlist_t *pl, blob_t **out)
    __attribute__((warn_unused_result));

/* Formats ms since the epoch as ISO 8601 UTC with milliseconds
 * ("2024-05-01T12:00:00.123Z") into buf (>= 25 bytes). */
void hls_playlist_format_pdt(int64_t wall_ms, char *buf, size_t buflen);

#endif
