/* The viewer simulator's HLS playlist reader: master playlists (variants and
 * audio renditions) and media playlists (segments, LL-HLS parts, EXT-X-MAP,
 * discontinuities, server control). Pure functions over bytes received from
 * the network: every length is bounded, nothing is assumed NUL-terminated.
 * Used by one thread (the simulator's event loop); no shared state. */
#ifndef SLUICE_TESTS_LOAD_VSIM_PLAYLIST_H
#define SLUICE_TESTS_LOAD_VSIM_PLAYLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VSIM_PLAYLIST_MAX_BYTES (1024 * 1024) /* a bigger playlist is an error */
#define VSIM_MAX_VARIANTS 32
#define VSIM_MAX_AUDIO 32
#define VSIM_MAX_ITEMS 16384 /* segments + parts in one media playlist */
#define VSIM_MAX_MAPS 64
#define VSIM_URI_MAX 1024
#define VSIM_PART_WHOLE INT32_MAX /* the "part index" of a whole segment */

#define VSIM_WUR __attribute__((warn_unused_result))

typedef struct {
    char uri[VSIM_URI_MAX];
    char audio_group[64]; /* AUDIO="..." or "" */
    int64_t bandwidth;
} vsim_variant_t;

typedef struct {
    char group[64];
    char uri[VSIM_URI_MAX];
    bool is_default;
} vsim_audio_t;

typedef struct {
    vsim_variant_t variants[VSIM_MAX_VARIANTS];
    size_t nvariants;
    vsim_audio_t audio[VSIM_MAX_AUDIO];
    size_t naudio;
} vsim_master_t;

/* One segment or part, in playlist order (a segment's parts come before it). */
typedef struct {
    int64_t msn;
    int32_t part;         /* index in its segment, or VSIM_PART_WHOLE */
    double duration;      /* seconds */
    bool has_parts;       /* a segment whose parts are listed */
    bool last_in_segment; /* a part that ends a completed segment */
    bool independent;
    bool discontinuity;   /* the first item after EXT-X-DISCONTINUITY */
    int map;              /* index into maps[] in effect, -1: none */
    uint32_t uri_off;     /* into pool */
} vsim_item_t;

typedef struct {
    int target_duration;     /* seconds */
    double part_target;      /* seconds, 0 without EXT-X-PART-INF */
    bool can_block_reload;
    bool endlist;
    int64_t media_sequence;
    vsim_item_t *items;
    size_t nitems, items_cap;
    uint32_t maps[VSIM_MAX_MAPS]; /* offsets into pool */
    int nmaps;
    char *pool;              /* NUL-terminated URIs */
    size_t pool_len, pool_cap;
} vsim_media_t;

/* Parses a master playlist. 0, -EPROTO (not a playlist), -EMSGSIZE (over a
 * limit). */
int vsim_master_parse(const char *text, size_t len, vsim_master_t *out) VSIM_WUR;

/* The audio rendition URI the variant refers to (DEFAULT=YES first), or NULL. */
const char *vsim_master_audio_uri(const vsim_master_t *m, const vsim_variant_t *v);

/* Parses a media playlist into *out, which is zeroed or holds an earlier
 * parse whose storage is reused (caller frees with vsim_media_deinit, also
 * on failure). 0, -EPROTO, -EMSGSIZE, -ENOMEM. */
int vsim_media_parse(const char *text, size_t len, vsim_media_t *out) VSIM_WUR;
void vsim_media_deinit(vsim_media_t *m);

static inline const char *vsim_media_uri(const vsim_media_t *m, const vsim_item_t *it)
{
    return m->pool + it->uri_off;
}
static inline const char *vsim_media_map(const vsim_media_t *m, int map)
{
    return map >= 0 && map < m->nmaps ? m->pool + m->maps[map] : NULL;
}

/* LL-HLS: both CAN-BLOCK-RELOAD=YES and EXT-X-PART-INF. */
bool vsim_media_is_ll(const vsim_media_t *m);

/* Whether an item is one a viewer fetches in the given mode: LL: parts, and
 * whole segments whose parts are no longer listed; classic: whole segments. */
bool vsim_item_wanted(const vsim_item_t *it, bool ll);

/* Orders (msn, part) positions: <0, 0, >0. */
int vsim_pos_cmp(int64_t msn_a, int32_t part_a, int64_t msn_b, int32_t part_b);

/* Resolves URI against the playlist URL BASE (absolute http(s) URLs are kept,
 * "/path" is taken from BASE's origin, anything else from BASE's directory;
 * BASE's query is dropped). 0 or -EMSGSIZE when it does not fit OUT. */
int vsim_resolve(const char *base, const char *uri, char *out, size_t outlen) VSIM_WUR;

#endif
