/*
 * Playback-session states, names and the store record: audience.h.
 */
#include "audience.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const audience_state_names[AUDIENCE_STATES] = {
    [AUDIENCE_STARTING] = "starting", [AUDIENCE_PLAYING] = "playing",
    [AUDIENCE_STALLED] = "stalled",   [AUDIENCE_PAUSED] = "paused",
    [AUDIENCE_ENDED] = "ended",       [AUDIENCE_ERROR] = "error",
};

const char *audience_state_name(audience_state_t s)
{
    return (unsigned)s < AUDIENCE_STATES ? audience_state_names[s] : NULL;
}

int audience_state_parse(const char *name, size_t n, audience_state_t *out)
{
    for (int i = 0; i < AUDIENCE_STATES; i++) {
        if (strlen(audience_state_names[i]) == n && memcmp(audience_state_names[i], name, n) == 0) {
            *out = (audience_state_t)i;
            return 0;
        }
    }
    return -EINVAL;
}

bool audience_state_watching(audience_state_t s)
{
    return s == AUDIENCE_STARTING || s == AUDIENCE_PLAYING || s == AUDIENCE_STALLED ||
           s == AUDIENCE_PAUSED;
}

static bool audience_chars_ok(const char *s, size_t n, bool upper)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                  (upper && c >= 'A' && c <= 'Z');
        if (!ok)
            return false;
    }
    return true;
}

bool audience_session_id_valid(const char *id, size_t n)
{
    return id && n >= AUDIENCE_SESSION_MIN && n <= AUDIENCE_SESSION_MAX &&
           audience_chars_ok(id, n, true);
}

bool audience_rendition_valid(const char *name, size_t n)
{
    /* "-" alone is the record's "unknown": a rendition by that name would
     * read back as none. */
    return name && n >= 1 && n <= AUDIENCE_RENDITION_MAX && !(n == 1 && name[0] == '-') &&
           audience_chars_ok(name, n, false);
}

void audience_session_init(audience_session_t *s)
{
    memset(s, 0, sizeof(*s));
    s->state = AUDIENCE_STARTING;
    s->latency_ms = -1;
    s->startup_ms = -1;
}

static bool audience_in(int64_t v, int64_t lo, int64_t hi)
{
    return v >= lo && v <= hi;
}

/* The one range rule, for format and parse alike. */
static bool audience_session_ok(const audience_session_t *s)
{
    size_t rn = strnlen(s->rendition, sizeof(s->rendition));
    return audience_state_name(s->state) && rn < sizeof(s->rendition) &&
           (rn == 0 || audience_rendition_valid(s->rendition, rn)) &&
           audience_in(s->latency_ms, -1, AUDIENCE_LATENCY_MS_MAX) &&
           audience_in(s->startup_ms, -1, AUDIENCE_STARTUP_MS_MAX) &&
           audience_in(s->stalls, 0, AUDIENCE_COUNT_MAX) &&
           audience_in(s->stall_ms, 0, AUDIENCE_DURATION_MS_MAX) &&
           audience_in(s->watch_ms, 0, AUDIENCE_DURATION_MS_MAX) &&
           audience_in(s->dropped_frames, 0, AUDIENCE_DROPPED_MAX) &&
           audience_in(s->errors, 0, AUDIENCE_COUNT_MAX);
}

#define AUDIENCE_RECORD_VERSION "1"

const char *audience_record_final_prefix(void)
{
    return AUDIENCE_RECORD_VERSION " ended ";
}

int audience_record_format(const audience_session_t *s, char *out, size_t cap)
{
    if (!audience_session_ok(s))
        return -EINVAL;
    int n = snprintf(out, cap, AUDIENCE_RECORD_VERSION " %s %s %lld %lld %lld %lld %lld %lld %lld",
                     audience_state_name(s->state), s->rendition[0] ? s->rendition : "-",
                     (long long)s->latency_ms, (long long)s->startup_ms, (long long)s->stalls,
                     (long long)s->stall_ms, (long long)s->watch_ms,
                     (long long)s->dropped_frames, (long long)s->errors);
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    return n;
}

/* One token of p (up to the next space or the end): its start and length;
 * advances *p past it and one space. NULL at the end. */
static const char *audience_token(const char **p, size_t *len)
{
    const char *s = *p;
    if (!*s)
        return NULL;
    const char *e = strchr(s, ' ');
    *len = e ? (size_t)(e - s) : strlen(s);
    *p = e ? e + 1 : s + *len;
    return *len ? s : NULL;
}

/* A decimal as the formatter writes it: "-1", "0" or no leading zero. */
static int audience_int(const char *s, size_t n, int64_t *out)
{
    if (n == 2 && s[0] == '-' && s[1] == '1') {
        *out = -1;
        return 0;
    }
    if (n == 0 || n > 12 || (n > 1 && s[0] == '0'))
        return -EINVAL;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int audience_record_parse(const char *value, audience_session_t *out)
{
    audience_session_t s;
    audience_session_init(&s);
    const char *p = value;
    size_t n = 0;
    const char *t = audience_token(&p, &n);
    if (!t || n != 1 || t[0] != '1')
        return -EINVAL;
    if (!(t = audience_token(&p, &n)) || audience_state_parse(t, n, &s.state) < 0)
        return -EINVAL;
    if (!(t = audience_token(&p, &n)))
        return -EINVAL;
    if (!(n == 1 && t[0] == '-')) {
        if (!audience_rendition_valid(t, n))
            return -EINVAL;
        memcpy(s.rendition, t, n);
        s.rendition[n] = '\0';
    }
    int64_t *nums[] = {&s.latency_ms, &s.startup_ms, &s.stalls,         &s.stall_ms,
                       &s.watch_ms,   &s.dropped_frames, &s.errors};
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        if (!(t = audience_token(&p, &n)) || audience_int(t, n, nums[i]) < 0)
            return -EINVAL;
    }
    if (*p || p[-1] == ' ' || !audience_session_ok(&s))
        return -EINVAL;
    *out = s;
    return 0;
}
