/*
 * The audience beacon's body (POST /beacon/ID, docs/urls.md): a bounded
 * parser from the bytes a player sent to the session it reports. The
 * fields' ranges and names' grammar are common/audience.h's; this file only
 * reads JSON. Pure; any thread.
 *
 * Bounds, checked before jansson sees a byte: at most BEACON_BODY_MAX bytes,
 * nesting at most BEACON_DEPTH_MAX deep (unknown fields are ignored, but a
 * deep one is refused rather than built). Duplicate keys are refused
 * (JSON_REJECT_DUPLICATES), as is a NUL inside a string.
 */
#ifndef SLUICE_ORIGIN_BEACON_INTERNAL_H
#define SLUICE_ORIGIN_BEACON_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "audience.h"
#include "token_internal.h"

#define BEACON_BODY_MAX 2048
#define BEACON_DEPTH_MAX 4
#define BEACON_PLAYER_MAX 40

typedef struct beacon {
    char session[AUDIENCE_SESSION_MAX + 1];
    /* The playback token, NUL-terminated; token_len > TOKEN_MAX for one
     * that was longer (kept at TOKEN_MAX + 1 bytes, so a verifier refuses
     * it as too long, never as a shorter token). */
    bool has_token;
    char token[TOKEN_MAX + 2];
    size_t token_len;
    char player[BEACON_PLAYER_MAX + 1]; /* "": not sent; for logs only */
    audience_session_t s;
} beacon_t;

/*
 * Parses body[0..len) into *out. Returns 0; -EMSGSIZE for a body over
 * BEACON_BODY_MAX; -EPROTO for anything else wrong, with *why set to a
 * static text that names the field (e.g. "\"state\" must be one of
 * starting, playing, stalled, paused, ended, error"), fit for the answer.
 */
int beacon_parse(const char *body, size_t len, beacon_t *out, const char **why)
    __attribute__((warn_unused_result));

#endif
