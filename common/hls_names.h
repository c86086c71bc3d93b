/*
 * The one grammar of HLS object names: what the packager and the recorder
 * write, the renderer puts in playlists, and the origin, the LL-HLS
 * decider and the store's cache parse back. Objects of a stream:
 *
 *   master.m3u8
 *   REND/index.m3u8   (REND/index-skip.m3u8, REND/index-skip2.m3u8: the
 *                      delta playlists of EXT-X-SKIP, v1 and v2)
 *   REND/init.mp4     the rendition's first init segment
 *   REND/init-N.mp4   an init segment that replaced an earlier one at a
 *                     discontinuity; N is the first segment that uses it
 *   REND/N.m4s        media segment N (its media sequence number)
 *   REND/N.P.m4s      part P of segment N (LL-HLS)
 *
 * Numbers are decimal without leading zeros, at most HLS_NAME_DIGITS_MAX
 * digits (well inside JavaScript's exact integers). A parser accepts only
 * the form the builders write, so a name has one spelling.
 *
 * Pure functions, no state: any thread (MediaMTX's recordstore path
 * encode/decode pair plays this role for its recordings).
 */
#ifndef SLUICE_COMMON_HLS_NAMES_H
#define SLUICE_COMMON_HLS_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HLS_NAME_MASTER "master.m3u8"
#define HLS_NAME_PLAYLIST "index.m3u8"
#define HLS_NAME_PLAYLIST_SKIP "index-skip.m3u8"   /* _HLS_skip=YES */
#define HLS_NAME_PLAYLIST_SKIP2 "index-skip2.m3u8" /* _HLS_skip=v2 */
#define HLS_NAME_INIT "init.mp4"
#define HLS_NAME_DIGITS_MAX 15
/* Room for any one-component name the builders make, with its NUL. */
#define HLS_NAME_FILE_MAX 48

typedef enum hls_name_kind {
    HLS_NAME_NONE = 0, /* not an HLS object name */
    HLS_NAME_KIND_MASTER,
    HLS_NAME_KIND_PLAYLIST, /* index.m3u8 and its skip variants */
    HLS_NAME_KIND_INIT,     /* init.mp4 (msn -1) or init-N.mp4 (msn N) */
    HLS_NAME_KIND_SEGMENT,  /* N.m4s */
    HLS_NAME_KIND_PART,     /* N.P.m4s */
} hls_name_kind_t;

typedef struct hls_name {
    hls_name_kind_t kind;
    int64_t msn;  /* SEGMENT, PART, INIT (-1: init.mp4); else -1 */
    int64_t part; /* PART; else -1 */
} hls_name_t;

/* The file names inside a rendition. Each writes dst (NUL-terminated) and
 * returns its length, or -ENAMETOOLONG when dstlen is too small, -EINVAL
 * for a negative number. */
int hls_name_segment(char *dst, size_t dstlen, int64_t msn);
int hls_name_part(char *dst, size_t dstlen, int64_t msn, int64_t part);
/* msn < 0: "init.mp4"; else "init-N.mp4". */
int hls_name_init(char *dst, size_t dstlen, int64_t msn);

/* "REND/FILE": a store object name from a rendition and a file name (from
 * the builders above or one of the HLS_NAME_* playlists). Same returns. */
int hls_name_join(char *dst, size_t dstlen, const char *rendition, const char *file);

/* Parses one path component file[0..len) (no '/', no query). True, with
 * *out filled, for a name of the grammar above; false (and out->kind
 * HLS_NAME_NONE) for anything else. */
bool hls_name_parse(const char *file, size_t len, hls_name_t *out);

/* Whether the object a store name (any number of components; the last is
 * parsed) stands for never changes once written: init segments, segments
 * and parts. Playlists and anything else may be rewritten. */
bool hls_name_immutable(const char *name);

#endif
