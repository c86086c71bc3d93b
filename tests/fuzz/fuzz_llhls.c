/* Fuzz target: LL-HLS request parsing at the origin (origin/llhls.c). The
 * input is read two ways: as a stored media playlist (position parser and
 * both deciders against directives taken from its first bytes), and as
 * "msn&part&skip" directive values (a leading flags byte says which are
 * present). Invariants are checked, not just crashes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llhls_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_position(const uint8_t *data, size_t size)
{
    llhls_position_t pos;
    if (llhls_position_parse((const char *)data, size, &pos) != 0)
        return;
    if (pos.next_msn < 0 || pos.next_part < 0 || pos.segments < 0 || pos.media_sequence < 0 ||
        pos.target_duration_s < 0 || pos.part_target_ms < 0 || pos.last_segment_parts < 0)
        abort();
    int64_t apl = llhls_advance_part_limit(&pos);
    if (apl < 1 || apl > 3000)
        abort();
    int64_t hold = llhls_hold_limit_ms(&pos, 2.0);
    if (hold < 3 || hold > 180000)
        abort();
    /* Directives around the position, and from the input's own bytes. */
    int64_t raw = 0;
    for (size_t i = 0; i < size && i < 8; i++)
        raw = (raw << 8) | data[i];
    int64_t msns[] = {0, pos.next_msn - 1, pos.next_msn, pos.next_msn + 1, pos.next_msn + 2,
                      INT64_MAX, raw & INT64_MAX};
    int64_t parts[] = {-1, 0, pos.next_part, pos.next_part + apl, INT64_MAX, raw & 0xffff};
    for (size_t i = 0; i < sizeof(msns) / sizeof(msns[0]); i++) {
        for (size_t j = 0; j < sizeof(parts) / sizeof(parts[0]); j++) {
            if (msns[i] < 0)
                continue;
            llhls_query_t q = {.has_msn = true, .msn = msns[i], .has_part = parts[j] >= 0,
                               .part = parts[j] >= 0 ? parts[j] : 0};
            llhls_decision_t d = llhls_decide_playlist(&pos, &q);
            if (d != LLHLS_ANSWER && d != LLHLS_WAIT && d != LLHLS_BAD_REQUEST)
                abort();
            /* 6.2.5.2: an ended playlist answers at once; more than two
             * segments ahead never waits. */
            if (pos.ended && d != LLHLS_ANSWER)
                abort();
            if (msns[i] > pos.next_msn + 1 && d == LLHLS_WAIT)
                abort();
            llhls_decision_t o = llhls_decide_object(&pos, msns[i], parts[j]);
            if (o != LLHLS_WAIT && o != LLHLS_NOT_FOUND && o != LLHLS_NEXT_SEGMENT)
                abort();
            if (pos.ended && o != LLHLS_NOT_FOUND)
                abort();
            /* Only the part one past the newest complete segment's last
             * moves, and only to the segment that follows it. */
            if (o == LLHLS_NEXT_SEGMENT &&
                (msns[i] != pos.next_msn - 1 || parts[j] != pos.last_segment_parts ||
                 pos.last_segment_parts <= 0))
                abort();
        }
    }
}

static void check_query(const uint8_t *data, size_t size)
{
    if (size == 0)
        return;
    uint8_t flags = data[0];
    const char *v[3] = {NULL, NULL, NULL};
    size_t vl[3] = {0, 0, 0};
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    for (int i = 0; i < 3; i++) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if (flags & (1u << i)) {
            v[i] = p;
            vl[i] = (size_t)(stop - p);
        }
        p = amp ? amp + 1 : end;
    }
    llhls_query_t q;
    if (llhls_query_parse(v[0], vl[0], v[1], vl[1], v[2], vl[2], &q) == 0) {
        if (q.has_part && !q.has_msn)
            abort(); /* 6.2.5.2: that is a 400 */
        if (q.msn < 0 || q.part < 0 || q.has_msn != (v[0] != NULL))
            abort();
    } else if (!v[0] && !v[1]) {
        abort(); /* without msn or part there is nothing to refuse */
    }
    int64_t m, pt;
    if (llhls_media_name_parse((const char *)data, size, &m, &pt) == 0 && (m < 0 || pt < -1))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_position(data, size);
    check_query(data, size);
    return 0;
}
