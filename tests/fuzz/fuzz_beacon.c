/* Fuzz target: the audience beacon's body (origin/beacon.c), as a player
 * (or anyone) POSTs it to /beacon/ID: the whole input is the body.
 * Checks contracts: a body over the limit is -EMSGSIZE and nothing else
 * is; a refusal always says why; an accepted beacon has a valid session
 * id, a state, a valid or empty rendition, and always makes a store record
 * (common/audience.h) that reads back to the same session. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "beacon_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    beacon_t b;
    const char *why = NULL;
    int rc = beacon_parse((const char *)data, size, &b, &why);
    if ((rc == -EMSGSIZE) != (size > BEACON_BODY_MAX))
        abort();
    if (rc < 0) {
        if (!why || (rc != -EPROTO && rc != -EMSGSIZE))
            abort();
        return 0;
    }
    if (rc != 0 || why)
        abort();
    if (!audience_session_id_valid(b.session, strlen(b.session)) ||
        (unsigned)b.s.state >= AUDIENCE_STATES ||
        (b.s.rendition[0] && !audience_rendition_valid(b.s.rendition, strlen(b.s.rendition))) ||
        strlen(b.player) > BEACON_PLAYER_MAX || (b.has_token && b.token_len > TOKEN_MAX + 1))
        abort();
    char rec[AUDIENCE_RECORD_MAX];
    if (audience_record_format(&b.s, rec, sizeof(rec)) <= 0)
        abort();
    audience_session_t back;
    if (audience_record_parse(rec, &back) != 0 || memcmp(&back, &b.s, sizeof(back)) != 0)
        abort();
    return 0;
}
