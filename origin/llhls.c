/*
 * LL-HLS requests at the origin (RFC 8216bis 6.2.5 and 6.2.6): parsing of
 * the delivery directives, the position of a stored media playlist, the
 * answer-wait-refuse decision, and the hub that holds waiting requests.
 *
 * The position is read from the playlist text the packager stored, so any
 * origin node (one that never ran the packager, behind Redis) decides from
 * the same bytes it would serve. The parsers are pure and bounded: one pass,
 * no allocation, every number range-checked.
 *
 * The hub: a held request is a suspended libmicrohttpd connection, so a
 * thousand of them cost a thousand small structs and no thread. Per stream
 * with held requests the hub keeps ONE one-shot store watch (a group), not
 * one per request. The watch's callback only flags the group and wakes the
 * hub's thread, which re-arms the watch and then resumes the group's
 * suspended connections (every one reads the store again after the
 * re-arm, so no commit is missed); the same thread resumes holds whose
 * deadline passed even when the stream never changes. So libmicrohttpd is
 * never called from the store's callback (on the committing thread, with
 * the store's callback lock held), and the store's watch functions never
 * from an HTTP worker, except to create a stream's first watch.
 *
 * Locks, always taken in this order: arm_lock (creating, re-arming and
 * dropping group watches: store_watch_add/remove are only called under it,
 * never under `lock`), then the store's callback lock (inside the store),
 * then `lock` (groups, holds and their states; the store callback takes
 * it), then libmicrohttpd's own (suspend is called under `lock`, so that a
 * resume can never come before the suspend it undoes; resumes are issued
 * after `lock` is dropped).
 */
#include "llhls_internal.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "hls_names.h"
#include "log.h"

/* ---- small bounded readers ----------------------------------------------- */

/* A decimal-integer (RFC 8216bis 4.2) of s[0..len) that fits int64. */
static int llhls_dec(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > LLHLS_VALUE_MAX)
        return -EINVAL;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        int d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* A decimal-floating-point of s[0..len) in milliseconds (rounded), for
 * values up to a day. */
static int llhls_dec_ms(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    int64_t whole = 0, frac = 0, scale = 1000;
    if (len == 0 || len > LLHLS_VALUE_MAX)
        return -EINVAL;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        whole = whole * 10 + (s[i] - '0');
        if (whole > 86400)
            return -EINVAL;
    }
    if (i == 0)
        return -EINVAL;
    if (i < len && s[i] == '.') {
        i++;
        /* Milliseconds plus one digit for rounding; the rest is ignored. */
        int digits = 0;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            if (digits < 4) {
                frac = frac * 10 + (s[i] - '0');
                digits++;
            }
        }
        while (digits < 4) {
            frac *= 10;
            digits++;
        }
    }
    if (i != len)
        return -EINVAL;
    *out = whole * scale + (frac + 5) / 10;
    return 0;
}

/* Finds attribute `name` in an attribute-list s[0..len) (RFC 8216bis 4.2):
 * NAME=value pairs separated by commas, values possibly quoted (commas
 * inside quotes are not separators). The value is returned without quotes. */
static bool llhls_attr(const char *s, size_t len, const char *name, const char **val,
                       size_t *vlen)
{
    size_t nlen = strlen(name);
    size_t i = 0;
    while (i < len) {
        size_t key = i;
        while (i < len && s[i] != '=' && s[i] != ',')
            i++;
        size_t key_len = i - key;
        if (i >= len || s[i] == ',') {
            i++; /* a bare word: skip it */
            continue;
        }
        i++; /* '=' */
        const char *v = s + i;
        size_t vl;
        if (i < len && s[i] == '"') {
            i++;
            v = s + i;
            while (i < len && s[i] != '"')
                i++;
            vl = (size_t)(s + i - v);
            if (i < len)
                i++; /* closing quote */
            while (i < len && s[i] != ',')
                i++;
        } else {
            while (i < len && s[i] != ',')
                i++;
            vl = (size_t)(s + i - v);
        }
        if (i < len)
            i++; /* ',' */
        if (key_len == nlen && memcmp(s + key, name, nlen) == 0) {
            *val = v;
            *vlen = vl;
            return true;
        }
    }
    return false;
}

static bool llhls_prefix(const char *line, size_t len, const char *tag, size_t *rest)
{
    size_t n = strlen(tag);
    if (len < n || memcmp(line, tag, n) != 0)
        return false;
    *rest = n;
    return true;
}

/* ---- directives ----------------------------------------------------------- */

int llhls_query_parse(const char *msn, size_t msn_len, const char *part, size_t part_len,
                      const char *skip, size_t skip_len, llhls_query_t *out)
{
    memset(out, 0, sizeof(*out));
    /* RFC 8216bis 6.2.5.2: "If the Playlist URI contains an _HLS_part
     * directive but no _HLS_msn directive, the Server MUST return Bad
     * Request". */
    if (part && !msn)
        return -EINVAL;
    if (msn) {
        if (llhls_dec(msn, msn_len, &out->msn) != 0)
            return -EINVAL;
        out->has_msn = true;
    }
    if (part) {
        if (llhls_dec(part, part_len, &out->part) != 0)
            return -EINVAL;
        out->has_part = true;
    }
    /* 6.2.5.1: the values are YES and v2; anything else asks for nothing
     * we know, and the full playlist is always a correct answer. */
    if (skip && skip_len == 3 && memcmp(skip, "YES", 3) == 0)
        out->skip = LLHLS_SKIP_YES;
    else if (skip && skip_len == 2 && memcmp(skip, "v2", 2) == 0)
        out->skip = LLHLS_SKIP_V2;
    return 0;
}

/* ---- playlist position ---------------------------------------------------- */

int llhls_media_name_parse(const char *name, size_t len, int64_t *msn, int64_t *part)
{
    /* "N.m4s" or "N.P.m4s": the last path component, without a query. */
    for (size_t i = len; i > 0; i--) {
        if (name[i - 1] == '/') {
            name += i;
            len -= i;
            break;
        }
    }
    for (size_t i = 0; i < len; i++) {
        if (name[i] == '?') {
            len = i;
            break;
        }
    }
    hls_name_t h;
    if (!hls_name_parse(name, len, &h) ||
        (h.kind != HLS_NAME_KIND_SEGMENT && h.kind != HLS_NAME_KIND_PART))
        return -EINVAL;
    *msn = h.msn;
    *part = h.part;
    return 0;
}

/* Caps that keep every later sum and product far from overflow. */
#define LLHLS_SEQ_MAX (INT64_C(1) << 60)
#define LLHLS_COUNT_MAX (INT64_C(1) << 40)

int llhls_position_parse(const char *text, size_t len, llhls_position_t *out)
{
    memset(out, 0, sizeof(*out));
    if (len > LLHLS_PLAYLIST_MAX)
        len = LLHLS_PLAYLIST_MAX;
    int64_t parts_since_uri = 0, hint_msn = 0, hint_part = 0;
    bool in_segment = false, first = true;
    size_t pos = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (first) {
            first = false;
            if (n != 7 || memcmp(line, "#EXTM3U", 7) != 0)
                return -EPROTO;
            continue;
        }
        size_t r;
        const char *v;
        size_t vl;
        int64_t x;
        if (n == 0)
            continue;
        if (line[0] != '#') {
            /* A URI line: the segment whose EXTINF came before is complete. */
            if (in_segment) {
                if (out->segments < LLHLS_COUNT_MAX)
                    out->segments++;
                out->last_segment_parts = parts_since_uri;
                parts_since_uri = 0;
                in_segment = false;
            }
        } else if (llhls_prefix(line, n, "#EXTINF:", &r)) {
            in_segment = true;
        } else if (llhls_prefix(line, n, "#EXT-X-PART:", &r)) {
            if (parts_since_uri < LLHLS_COUNT_MAX)
                parts_since_uri++;
            /* A long segment's oldest parts may be left out (three target
             * durations, 6.2.2): its count is its last part's index + 1. */
            int64_t m, p;
            if (llhls_attr(line + r, n - r, "URI", &v, &vl) &&
                llhls_media_name_parse(v, vl, &m, &p) == 0 && p >= 0 && p < LLHLS_COUNT_MAX &&
                p + 1 > parts_since_uri)
                parts_since_uri = p + 1;
        } else if (llhls_prefix(line, n, "#EXT-X-MEDIA-SEQUENCE:", &r)) {
            if (llhls_dec(line + r, n - r, &x) == 0 && x <= LLHLS_SEQ_MAX)
                out->media_sequence = x;
        } else if (llhls_prefix(line, n, "#EXT-X-TARGETDURATION:", &r)) {
            if (llhls_dec(line + r, n - r, &x) == 0 && x <= 86400)
                out->target_duration_s = (int)x;
        } else if (llhls_prefix(line, n, "#EXT-X-PART-INF:", &r)) {
            if (llhls_attr(line + r, n - r, "PART-TARGET", &v, &vl) &&
                llhls_dec_ms(v, vl, &x) == 0 && x > 0)
                out->part_target_ms = (int)x;
        } else if (llhls_prefix(line, n, "#EXT-X-SERVER-CONTROL:", &r)) {
            if (llhls_attr(line + r, n - r, "CAN-BLOCK-RELOAD", &v, &vl) && vl == 3 &&
                memcmp(v, "YES", 3) == 0)
                out->can_block_reload = true;
            if (llhls_attr(line + r, n - r, "CAN-SKIP-UNTIL", &v, &vl))
                out->can_skip = true;
        } else if (llhls_prefix(line, n, "#EXT-X-SKIP:", &r)) {
            /* A delta update counts the segments it leaves out. */
            if (llhls_attr(line + r, n - r, "SKIPPED-SEGMENTS", &v, &vl) &&
                llhls_dec(v, vl, &x) == 0 && x <= LLHLS_COUNT_MAX &&
                out->segments + x <= LLHLS_COUNT_MAX)
                out->segments += x;
        } else if (llhls_prefix(line, n, "#EXT-X-PRELOAD-HINT:", &r)) {
            int64_t m, p;
            if (llhls_attr(line + r, n - r, "TYPE", &v, &vl) && vl == 4 &&
                memcmp(v, "PART", 4) == 0 && llhls_attr(line + r, n - r, "URI", &v, &vl) &&
                llhls_media_name_parse(v, vl, &m, &p) == 0 && p >= 0 && m <= LLHLS_SEQ_MAX &&
                p <= LLHLS_COUNT_MAX) {
                out->has_hint = true;
                hint_msn = m;
                hint_part = p;
            }
        } else if (n == 14 && memcmp(line, "#EXT-X-ENDLIST", 14) == 0) {
            out->ended = true;
        }
    }
    if (first)
        return -EPROTO;
    out->next_msn = out->media_sequence + out->segments;
    out->next_part = parts_since_uri;
    if (out->has_hint) {
        /* The hint names the next part to come (RFC 8216bis 4.4.5.3). */
        out->next_msn = hint_msn;
        out->next_part = hint_part;
    }
    return 0;
}

int64_t llhls_advance_part_limit(const llhls_position_t *pos)
{
    /* RFC 8216bis 6.2.5.2: "three divided by the Part Target Duration if
     * the Part Target Duration is less than one second, or three otherwise". */
    if (pos->part_target_ms > 0 && pos->part_target_ms < 1000)
        return 3000 / pos->part_target_ms;
    return 3;
}

int64_t llhls_hold_limit_ms(const llhls_position_t *pos, double fallback_s)
{
    /* RFC 8216bis 6.2.5.2: a server that cannot answer "after blocking for
     * more than three Target Durations SHOULD return Service Unavailable". */
    int64_t td_ms = pos->target_duration_s > 0 ? (int64_t)pos->target_duration_s * 1000
                                               : (int64_t)(fallback_s * 1000.0);
    if (td_ms <= 0)
        td_ms = 2000;
    if (td_ms > 60000)
        td_ms = 60000;
    return 3 * td_ms;
}

/* Parts per segment, to measure a distance in parts across a segment
 * boundary: the last complete segment's count, else target / part target. */
static int64_t llhls_parts_per_segment(const llhls_position_t *pos)
{
    if (pos->last_segment_parts > 0)
        return pos->last_segment_parts < 100000 ? pos->last_segment_parts : 100000;
    if (pos->part_target_ms > 0 && pos->target_duration_s > 0)
        return ((int64_t)pos->target_duration_s * 1000 + pos->part_target_ms - 1) /
               pos->part_target_ms;
    return 1;
}

llhls_decision_t llhls_decide_playlist(const llhls_position_t *pos, const llhls_query_t *q)
{
    if (!q->has_msn)
        return LLHLS_ANSWER;
    /* 6.2.5.2: "A Server MUST ignore _HLS_msn and _HLS_part if the Playlist
     * contains an EXT-X-ENDLIST tag." */
    if (pos->ended)
        return LLHLS_ANSWER;
    int64_t m = q->msn;
    /* "If the _HLS_msn is greater than the Media Sequence Number of the last
     * Media Segment in the current Playlist plus two ... the server SHOULD
     * immediately return Bad Request". The last segment is next_msn - 1. */
    if (m > pos->next_msn + 1)
        return LLHLS_BAD_REQUEST;
    /* Without parts in the playlist an _HLS_part names nothing to wait for:
     * the request waits for its segment, like _HLS_msn alone. */
    if (!q->has_part || pos->part_target_ms == 0)
        return m < pos->next_msn ? LLHLS_ANSWER : LLHLS_WAIT; /* 6.2.5.2: segment M or later */
    int64_t p = q->part;
    if (m < pos->next_msn - 1)
        return LLHLS_ANSWER; /* segment M and the one after it are complete */
    if (m == pos->next_msn - 1) {
        /* "If the Client requests a Part Index greater than that of the
         * final Partial Segment of the Parent Segment, the Server MUST
         * treat the request as one for Part Index 0 of the following
         * Parent Segment." Unknown count (parts no longer listed): segment
         * M is complete, which is all it can ask for. */
        if (pos->last_segment_parts == 0 || p < pos->last_segment_parts)
            return LLHLS_ANSWER;
        m = pos->next_msn;
        p = 0;
    }
    if (m == pos->next_msn && p < pos->next_part)
        return LLHLS_ANSWER;
    /* Not there yet. "... or if the _HLS_part exceeds the last Partial
     * Segment in the current Playlist by the Advance Part Limit, then the
     * server SHOULD immediately return Bad Request". Distance in parts from
     * the last one listed (next - 1) to the one asked for. */
    int64_t apl = llhls_advance_part_limit(pos);
    int64_t pps = llhls_parts_per_segment(pos);
    if (p > LLHLS_COUNT_MAX)
        return LLHLS_BAD_REQUEST;
    int64_t dist = (m - pos->next_msn) * pps + p - pos->next_part + 1;
    return dist > apl ? LLHLS_BAD_REQUEST : LLHLS_WAIT;
}

llhls_decision_t llhls_decide_object(const llhls_position_t *pos, int64_t msn, int64_t part)
{
    /* An ended playlist hints nothing: what is not there will not come. */
    if (pos->ended)
        return LLHLS_NOT_FOUND;
    if (part < 0) /* a whole segment: only the one in progress is coming */
        return msn == pos->next_msn ? LLHLS_WAIT : LLHLS_NOT_FOUND;
    if (pos->part_target_ms == 0 || part > LLHLS_COUNT_MAX)
        return LLHLS_NOT_FOUND;
    /* The preload hint names the next part of the segment in progress, but
     * whether that part comes is up to the publisher: a keyframe ends the
     * segment once it is long enough, and then the next media is part 0
     * of the next segment. RFC 8216bis 6.2.6 lets a server answer "Not
     * Found" for a hinted resource that the segmentation did not produce,
     * but players report that as an error (Shaka: 1001, then a gap jump).
     * The media the client asked for, the next after the last part it
     * has, exists under the other name: it gets that (the spec's note to
     * 4.4.5.3 foresees a hinted part turning out to start a new parent
     * segment). */
    if (msn == pos->next_msn - 1 && pos->last_segment_parts > 0 &&
        part == pos->last_segment_parts)
        return LLHLS_NEXT_SEGMENT;
    /* Behind the next part: it should exist and does not (expired, or a
     * part index past its segment's last): 6.2.6 "Not Found". */
    if (msn < pos->next_msn || (msn == pos->next_msn && part < pos->next_part))
        return LLHLS_NOT_FOUND;
    if (msn > pos->next_msn + 1)
        return LLHLS_NOT_FOUND;
    /* The hinted part (distance 0) or one within the Advance Part Limit of
     * it: a client reading ahead of the hint, answered when it exists. */
    int64_t dist = (msn - pos->next_msn) * llhls_parts_per_segment(pos) + part - pos->next_part;
    return dist <= llhls_advance_part_limit(pos) ? LLHLS_WAIT : LLHLS_NOT_FOUND;
}

/* ---- the hub -------------------------------------------------------------- */

struct llhls_group {
    llhls_group_t *next; /* in hub->groups */
    llhls_hub_t *hub;
    store_watch_t *watch; /* the armed one-shot watch; arm_lock */
    bool fired;           /* the watch fired: the timer thread re-arms it, then wakes */
    llhls_hold_t *holds;
    size_t nholds;
    char stream_id[STORE_ID_MAX];
};

struct llhls_hub {
    store_t *st;
    llhls_conn_cb suspend, resume;
    pthread_mutex_t arm_lock;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* timer wake-ups and shutdown drain */
    pthread_t timer;
    bool timer_started;
    bool closing;
    bool stop_timer;
    bool changed;  /* a group's watch fired: work for the timer thread */
    size_t nholds;
    int64_t next_deadline_ms; /* what the timer sleeps towards; INT64_MAX: nothing */
    llhls_group_t *groups;
};

/* Connections to resume once `lock` is dropped (a resumed hold stays in its
 * group, so they are collected in an array: on the stack up to 64). */
typedef struct llhls_resume_batch {
    void *stack[64];
    void **conns;
    size_t n, cap;
} llhls_resume_batch_t;

static void llhls_batch_init(llhls_resume_batch_t *b)
{
    b->conns = b->stack;
    b->n = 0;
    b->cap = sizeof(b->stack) / sizeof(b->stack[0]);
}

/* lock held. Returns false on OOM (the caller resumes under the lock then). */
static bool llhls_batch_add(llhls_resume_batch_t *b, void *conn)
{
    if (b->n == b->cap) {
        size_t cap = b->cap * 2;
        void **c = malloc(cap * sizeof(*c));
        if (!c)
            return false;
        memcpy(c, b->conns, b->n * sizeof(*c));
        if (b->conns != b->stack)
            free(b->conns);
        b->conns = c;
        b->cap = cap;
    }
    b->conns[b->n++] = conn;
    return true;
}

/* After lock is dropped: every connection in the batch is still suspended
 * (only the hub resumes them), so it is safe to resume them now. */
static void llhls_batch_run(llhls_hub_t *hub, llhls_resume_batch_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        hub->resume(b->conns[i]);
    if (b->conns != b->stack)
        free(b->conns);
    llhls_batch_init(b);
}

/* lock held: the stream changed or the deadline passed for h. */
static void llhls_wake_locked(llhls_hub_t *hub, llhls_hold_t *h, llhls_resume_batch_t *b)
{
    if (h->state == LLHLS_HOLD_SUSPENDED) {
        h->state = LLHLS_HOLD_RUNNING;
        h->woken = true;
        if (!llhls_batch_add(b, h->conn))
            hub->resume(h->conn);
    } else if (h->state == LLHLS_HOLD_RUNNING) {
        h->woken = true; /* its handler is reading: it must read again */
    }
}

/* Store callback: a commit on the group's stream (any node). It runs on
 * the committing thread with the store's callback lock held, so it only
 * hands the news to the timer thread: libmicrohttpd and the store's watch
 * functions are called from there, never from here (a resume from inside
 * the store's callback could wait on an HTTP worker that waits on the
 * store). */
static void llhls_group_cb(void *opaque, const char *stream_id)
{
    (void)stream_id;
    llhls_group_t *g = opaque;
    llhls_hub_t *hub = g->hub;
    pthread_mutex_lock(&hub->lock);
    g->fired = true;
    hub->changed = true;
    /* A handler reading right now must read again (it sees the refusal
     * of its suspend); suspended ones are resumed by the timer thread. */
    for (llhls_hold_t *h = g->holds; h; h = h->next)
        if (h->state == LLHLS_HOLD_RUNNING)
            h->woken = true;
    pthread_cond_broadcast(&hub->cond);
    pthread_mutex_unlock(&hub->lock);
}

static void llhls_abs_time(int64_t deadline_ms, struct timespec *ts)
{
    int64_t wait = deadline_ms - clock_mono_ms();
    if (wait < 0)
        wait = 0;
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(wait / 1000);
    ts->tv_nsec += (long)(wait % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Timer thread, lock held: re-arms every group whose watch fired, then
 * wakes all of its holds (each reads the store again after this point, so
 * a commit between the fire and the new watch is not lost). The store is
 * called without `lock` (its callback takes it), under arm_lock, which
 * keeps the groups where they are. */
static void llhls_rearm_locked(llhls_hub_t *hub, llhls_resume_batch_t *b)
{
    hub->changed = false;
    pthread_mutex_unlock(&hub->lock);
    pthread_mutex_lock(&hub->arm_lock);
    pthread_mutex_lock(&hub->lock);
    for (llhls_group_t *g = hub->groups; g; g = g->next) {
        if (!g->fired)
            continue;
        g->fired = false;
        store_watch_t *old = g->watch, *w = NULL;
        g->watch = NULL;
        pthread_mutex_unlock(&hub->lock);
        store_watch_remove(old); /* fired already: it cannot fire again */
        int rc = store_watch_add(hub->st, g->stream_id, llhls_group_cb, g, &w);
        pthread_mutex_lock(&hub->lock);
        g->watch = w;
        if (rc < 0) {
            /* Out of memory: the holds poll at their deadline, and the next
             * arm of a new group or a later commit tries again. */
            g->fired = true;
        }
        for (llhls_hold_t *h = g->holds; h; h = h->next)
            llhls_wake_locked(hub, h, b);
    }
    pthread_mutex_unlock(&hub->arm_lock);
}

/* Resumes holds when their stream changed (re-arming its watch first) or
 * their deadline passed. The only thread that resumes connections while
 * the hub runs. */
static void *llhls_timer_main(void *arg)
{
    llhls_hub_t *hub = arg;
    llhls_resume_batch_t b;
    llhls_batch_init(&b);
    pthread_mutex_lock(&hub->lock);
    while (!hub->stop_timer) {
        if (hub->changed)
            llhls_rearm_locked(hub, &b);
        int64_t now = clock_mono_ms(), next = INT64_MAX;
        for (llhls_group_t *g = hub->groups; g; g = g->next) {
            for (llhls_hold_t *h = g->holds; h; h = h->next) {
                if (h->expired)
                    continue;
                if (h->deadline_ms <= now) {
                    h->expired = true;
                    llhls_wake_locked(hub, h, &b);
                } else if (h->deadline_ms < next) {
                    next = h->deadline_ms;
                }
            }
        }
        hub->next_deadline_ms = next;
        if (b.n) {
            pthread_mutex_unlock(&hub->lock);
            llhls_batch_run(hub, &b);
            pthread_mutex_lock(&hub->lock);
            continue;
        }
        if (hub->changed || hub->stop_timer)
            continue;
        if (next == INT64_MAX) {
            pthread_cond_wait(&hub->cond, &hub->lock);
        } else {
            struct timespec ts;
            llhls_abs_time(next, &ts);
            pthread_cond_timedwait(&hub->cond, &hub->lock, &ts);
        }
    }
    pthread_mutex_unlock(&hub->lock);
    return NULL;
}

int llhls_hub_new(store_t *st, llhls_conn_cb suspend, llhls_conn_cb resume, llhls_hub_t **out)
{
    *out = NULL;
    llhls_hub_t *hub = calloc(1, sizeof(*hub));
    if (!hub)
        return -ENOMEM;
    hub->st = st;
    hub->suspend = suspend;
    hub->resume = resume;
    hub->next_deadline_ms = INT64_MAX;
    pthread_mutex_init(&hub->arm_lock, NULL);
    pthread_mutex_init(&hub->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&hub->cond, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&hub->timer, NULL, llhls_timer_main, hub);
    if (rc != 0) {
        llhls_hub_free(hub);
        return -rc;
    }
    pthread_setname_np(hub->timer, "llhls-hub");
    hub->timer_started = true;
    *out = hub;
    return 0;
}

size_t llhls_hub_shutdown(llhls_hub_t *hub, int timeout_ms)
{
    llhls_resume_batch_t b;
    llhls_batch_init(&b);
    pthread_mutex_lock(&hub->lock);
    hub->closing = true;
    for (llhls_group_t *g = hub->groups; g; g = g->next) {
        for (llhls_hold_t *h = g->holds; h; h = h->next) {
            h->expired = true;
            llhls_wake_locked(hub, h, &b);
        }
    }
    pthread_cond_broadcast(&hub->cond);
    pthread_mutex_unlock(&hub->lock);
    llhls_batch_run(hub, &b);

    /* The resumed handlers answer at once and leave. */
    struct timespec ts;
    llhls_abs_time(clock_mono_ms() + timeout_ms, &ts);
    pthread_mutex_lock(&hub->lock);
    while (hub->nholds > 0) {
        if (pthread_cond_timedwait(&hub->cond, &hub->lock, &ts) == ETIMEDOUT)
            break;
    }
    size_t left = hub->nholds;
    pthread_mutex_unlock(&hub->lock);
    return left;
}

void llhls_hub_free(llhls_hub_t *hub)
{
    if (!hub)
        return;
    if (hub->timer_started) {
        pthread_mutex_lock(&hub->lock);
        hub->stop_timer = true;
        pthread_cond_broadcast(&hub->cond);
        pthread_mutex_unlock(&hub->lock);
        pthread_join(hub->timer, NULL);
    }
    /* Holds still in (a shutdown that timed out): their groups' watches go,
     * so no store callback can reach freed memory. */
    while (hub->groups) {
        llhls_group_t *g = hub->groups;
        hub->groups = g->next;
        store_watch_remove(g->watch);
        for (llhls_hold_t *h = g->holds; h;) {
            llhls_hold_t *next = h->next;
            h->group = NULL;
            h->hub = NULL; /* its later llhls_hold_leave() does nothing */
            h->prev = h->next = NULL;
            h->state = LLHLS_HOLD_OFF;
            h = next;
        }
        free(g);
    }
    pthread_cond_destroy(&hub->cond);
    pthread_mutex_destroy(&hub->lock);
    pthread_mutex_destroy(&hub->arm_lock);
    free(hub);
}

size_t llhls_hub_count(llhls_hub_t *hub)
{
    pthread_mutex_lock(&hub->lock);
    size_t n = hub->nholds;
    pthread_mutex_unlock(&hub->lock);
    return n;
}

int llhls_hold_arm(llhls_hub_t *hub, llhls_hold_t *h, const char *stream_id, void *conn,
                   int64_t deadline_ms)
{
    if (!store_id_valid(stream_id))
        return -EINVAL;
    pthread_mutex_lock(&hub->arm_lock);
    pthread_mutex_lock(&hub->lock);
    if (hub->closing) {
        pthread_mutex_unlock(&hub->lock);
        pthread_mutex_unlock(&hub->arm_lock);
        return -ESHUTDOWN;
    }
    if (h->state == LLHLS_HOLD_OFF) {
        llhls_group_t *g = hub->groups;
        while (g && strcmp(g->stream_id, stream_id) != 0)
            g = g->next;
        if (!g) {
            /* A new group: its watch is added outside `lock` (the store
             * callback takes it), still under arm_lock. */
            pthread_mutex_unlock(&hub->lock);
            g = calloc(1, sizeof(*g));
            if (!g) {
                pthread_mutex_unlock(&hub->arm_lock);
                return -ENOMEM;
            }
            g->hub = hub;
            strcpy(g->stream_id, stream_id);
            int rc = store_watch_add(hub->st, stream_id, llhls_group_cb, g, &g->watch);
            if (rc < 0) {
                free(g);
                pthread_mutex_unlock(&hub->arm_lock);
                return rc;
            }
            pthread_mutex_lock(&hub->lock);
            g->next = hub->groups;
            hub->groups = g;
        }
        h->hub = hub;
        h->group = g;
        h->conn = conn;
        h->deadline_ms = deadline_ms;
        h->expired = hub->closing;
        h->prev = NULL;
        h->next = g->holds;
        if (g->holds)
            g->holds->prev = h;
        g->holds = h;
        g->nholds++;
        hub->nholds++;
        if (deadline_ms < hub->next_deadline_ms) {
            hub->next_deadline_ms = deadline_ms;
            pthread_cond_broadcast(&hub->cond);
        }
    }
    /* Clear `woken` before the caller reads: a commit after this point
     * fires the group's watch (or, if it already fired and the timer has
     * not re-armed it yet, the timer wakes every hold of the group once it
     * has), which sets it again. */
    h->state = LLHLS_HOLD_RUNNING;
    h->woken = false;
    pthread_mutex_unlock(&hub->lock);
    pthread_mutex_unlock(&hub->arm_lock);
    return 0;
}

bool llhls_hold_expired(llhls_hold_t *h)
{
    llhls_hub_t *hub = h->hub;
    if (!hub)
        return true;
    pthread_mutex_lock(&hub->lock);
    bool expired = h->expired || hub->closing || clock_mono_ms() >= h->deadline_ms;
    pthread_mutex_unlock(&hub->lock);
    return expired;
}

bool llhls_hold_suspend(llhls_hold_t *h)
{
    llhls_hub_t *hub = h->hub;
    if (!hub)
        return false;
    pthread_mutex_lock(&hub->lock);
    bool suspend = h->state == LLHLS_HOLD_RUNNING && !h->woken && !h->expired && !hub->closing;
    if (suspend) {
        /* Under `lock`: a wake-up that comes now sees SUSPENDED and resumes
         * after this suspend, never before it. */
        h->state = LLHLS_HOLD_SUSPENDED;
        hub->suspend(h->conn);
    }
    pthread_mutex_unlock(&hub->lock);
    return suspend;
}

void llhls_hold_leave(llhls_hold_t *h)
{
    llhls_hub_t *hub = h->hub;
    if (!hub)
        return; /* never joined */
    pthread_mutex_lock(&hub->arm_lock);
    pthread_mutex_lock(&hub->lock);
    llhls_group_t *g = h->group;
    bool drop = false;
    if (g && h->state != LLHLS_HOLD_OFF) {
        if (h->prev)
            h->prev->next = h->next;
        else
            g->holds = h->next;
        if (h->next)
            h->next->prev = h->prev;
        g->nholds--;
        hub->nholds--;
        if (g->nholds == 0) {
            for (llhls_group_t **pp = &hub->groups; *pp; pp = &(*pp)->next) {
                if (*pp == g) {
                    *pp = g->next;
                    break;
                }
            }
            drop = true;
        }
    }
    h->group = NULL;
    h->prev = h->next = NULL;
    h->state = LLHLS_HOLD_OFF;
    if (hub->nholds == 0 || hub->closing)
        pthread_cond_broadcast(&hub->cond);
    pthread_mutex_unlock(&hub->lock);
    if (drop) {
        /* After store_watch_remove the callback is not running and never
         * will, so the group can go. */
        store_watch_remove(g->watch);
        free(g);
    }
    pthread_mutex_unlock(&hub->arm_lock);
}
