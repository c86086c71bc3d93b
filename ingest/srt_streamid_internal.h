/*
 * The SRT stream id grammar (SRTO_STREAMID, what a caller sends in its
 * handshake): a plain stream key, or SRT's access-control form
 * "#!::r=live/KEY,m=publish" (comma-separated KEY=VALUE pairs; "r" the
 * resource, "m" the mode; "u", "s", "t" and unknown keys are ignored). The
 * resource is "live/KEY" or just "KEY", in either form. A mode other than
 * "publish" (absent means publish: ffmpeg and OBS send only a key) is
 * refused: "request" is a pull, which sluice does not serve.
 *
 * Pure, bounded, no I/O, never logs (the key is a secret); any thread.
 */
#ifndef SLUICE_INGEST_SRT_STREAMID_INTERNAL_H
#define SLUICE_INGEST_SRT_STREAMID_INTERNAL_H

#include <stddef.h>

/* Longest stream id SRT carries (SRTO_STREAMID's limit). */
#define SRT_STREAMID_MAX 512
/* Longest stream key, the same as RTMP's (ingest's keys are shorter). */
#define SRT_STREAMID_KEY_MAX 256

/*
 * Parses sid (len bytes, not NUL-terminated necessarily) into key (a
 * buffer of keycap bytes, >= SRT_STREAMID_KEY_MAX + 1; NUL-terminated on
 * success, emptied on failure). Returns 0, or a negative errno with *why a
 * static reason fit for a log line and a refusal (never the key):
 * -ENOENT "no stream id", -EPERM "pull is not supported" (m=request) or
 * another mode, -EMSGSIZE over SRT_STREAMID_MAX or a key over
 * SRT_STREAMID_KEY_MAX, -EPROTO malformed.
 */
int srt_streamid_parse(const char *sid, size_t len, char *key, size_t keycap,
                       const char **why) __attribute__((warn_unused_result));

#endif
