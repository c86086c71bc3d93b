/*
 * Rewrites the URIs of an HLS playlist so that a query parameter (the
 * playback token) travels with every request a player makes from it:
 * URI lines (segments, variant streams) and the URI attribute of
 * EXT-X-MEDIA, EXT-X-I-FRAME-STREAM-INF, EXT-X-MAP, EXT-X-PART,
 * EXT-X-PRELOAD-HINT and EXT-X-RENDITION-REPORT. Only relative URIs are
 * touched (a token never leaks to another host); "?" or "&" is chosen by
 * whether the URI already has a query, and the parameter goes before a
 * "#fragment". Everything else is copied byte for byte.
 * Pure and bounded: one pass over the input, no allocation. Any thread.
 */
#ifndef SLUICE_ORIGIN_PLAYLIST_REWRITE_INTERNAL_H
#define SLUICE_ORIGIN_PLAYLIST_REWRITE_INTERNAL_H

#include <stddef.h>

/*
 * Writes the rewrite of in[0..len), with `param` ("token=...", param_len
 * bytes) appended to every URI, into out[0..cap) (no NUL; out may be NULL
 * when cap is 0) and returns the rewritten length, like snprintf: when the
 * result is larger than cap, only the first cap bytes are written. The
 * result is at most len + (lines in the input) * (param_len + 1) bytes.
 */
size_t playlist_rewrite(const char *in, size_t len, const char *param, size_t param_len,
                        char *out, size_t cap);

#endif
