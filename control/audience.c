/*
 * A live stream's audience from its sessions' store records:
 * audience_internal.h. The report thread owns each aggregator; nothing here
 * locks or does I/O.
 *
 * Memory: between scans, one sorted array of the last scan's sessions
 * (id, watch_ms): 72 bytes a session, trimmed to size after every scan.
 * During a scan, the array being built and the startup/latency samples
 * (freed at its end). Lookups are binary searches, so an id chosen by a
 * forger costs what any other id costs (no hash to flood).
 */
#include "audience_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct audience_seen {
    char id[AUDIENCE_SESSION_MAX + 1];
    int64_t watch_ms;
} audience_seen_t;

typedef struct audience_samples {
    int64_t *v;
    size_t n, cap;
} audience_samples_t;

struct audience_agg {
    /* The last finished scan's sessions, sorted by id. */
    audience_seen_t *prev;
    size_t nprev;
    /* The scan in progress. */
    bool open, failed;
    audience_seen_t *cur;
    size_t ncur, capcur;
    audience_samples_t startup, latency;
    const char *const *known;
    size_t nknown;
    size_t nregular; /* rendition names in f other than unknown/other */
    audience_figures_t f;
    uint64_t new_sessions;
    int64_t watch_delta;
    /* The broadcast's totals, committed at each scan's end. */
    uint64_t peak, sessions_total;
    int64_t watch_ms_total;
    bool priming; /* seeded: the next scan learns the sessions, counts nothing */
};

int audience_agg_new(audience_agg_t **out)
{
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : -ENOMEM;
}

static void audience_scan_free(audience_agg_t *a)
{
    free(a->cur);
    free(a->startup.v);
    free(a->latency.v);
    a->cur = NULL;
    a->ncur = a->capcur = 0;
    memset(&a->startup, 0, sizeof(a->startup));
    memset(&a->latency, 0, sizeof(a->latency));
    a->open = a->failed = false;
    a->known = NULL;
    a->nknown = 0;
}

void audience_agg_free(audience_agg_t *a)
{
    if (!a)
        return;
    audience_scan_free(a);
    free(a->prev);
    free(a);
}

void audience_agg_abort(audience_agg_t *a)
{
    audience_scan_free(a);
}

void audience_agg_begin(audience_agg_t *a, const char *const *renditions, size_t nrenditions)
{
    audience_scan_free(a);
    a->open = true;
    a->known = nrenditions ? renditions : NULL;
    a->nknown = a->known ? nrenditions : 0;
    a->nregular = 0;
    memset(&a->f, 0, sizeof(a->f));
    a->new_sessions = 0;
    a->watch_delta = 0;
}

static int audience_seen_cmp(const void *x, const void *y)
{
    return strcmp(((const audience_seen_t *)x)->id, ((const audience_seen_t *)y)->id);
}

static const audience_seen_t *audience_prev_find(const audience_agg_t *a, const char *id)
{
    if (!a->nprev)
        return NULL;
    audience_seen_t key;
    size_t n = strlen(id);
    memcpy(key.id, id, n + 1);
    return bsearch(&key, a->prev, a->nprev, sizeof(*a->prev), audience_seen_cmp);
}

static bool audience_samples_add(audience_samples_t *s, int64_t v)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        int64_t *nv = realloc(s->v, cap * sizeof(*nv));
        if (!nv)
            return false;
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n++] = v;
    return true;
}

/* The slot of rendition `name` in f, added if new: the stream's own names
 * (or the first AUDIENCE_AGG_RENDITIONS_MAX when they are not known) keep
 * their name, every other one counts as "other". */
static audience_rendition_count_t *audience_rendition_slot(audience_agg_t *a, const char *name)
{
    bool special = strcmp(name, AUDIENCE_AGG_UNKNOWN) == 0 || strcmp(name, AUDIENCE_AGG_OTHER) == 0;
    if (!special && a->known) {
        bool ok = false;
        for (size_t i = 0; i < a->nknown && !ok; i++)
            ok = a->known[i] && strcmp(a->known[i], name) == 0;
        if (!ok)
            name = AUDIENCE_AGG_OTHER, special = true;
    }
    for (size_t i = 0; i < a->f.nrenditions; i++)
        if (strcmp(a->f.renditions[i].name, name) == 0)
            return &a->f.renditions[i];
    if (!special && a->nregular >= AUDIENCE_AGG_RENDITIONS_MAX)
        return audience_rendition_slot(a, AUDIENCE_AGG_OTHER);
    /* Room by construction: at most MAX regular names plus the two. */
    audience_rendition_count_t *rc = &a->f.renditions[a->f.nrenditions++];
    memset(rc, 0, sizeof(*rc));
    size_t n = strlen(name);
    if (n > AUDIENCE_RENDITION_MAX)
        n = AUDIENCE_RENDITION_MAX;
    memcpy(rc->name, name, n);
    rc->name[n] = '\0';
    if (!special)
        a->nregular++;
    return rc;
}

int audience_agg_add(audience_agg_t *a, const char *session_id, const audience_session_t *s)
{
    if (!a->open)
        return -EINVAL;
    size_t idn = session_id ? strlen(session_id) : 0;
    if (!audience_session_id_valid(session_id, idn) || !audience_state_name(s->state) ||
        s->watch_ms < 0 || s->stall_ms < 0 || s->dropped_frames < 0 || s->errors < 0 ||
        strnlen(s->rendition, sizeof(s->rendition)) >= sizeof(s->rendition)) {
        a->f.ignored++;
        return -EINVAL;
    }
    if (a->f.heard >= AUDIENCE_AGG_SESSIONS_MAX) {
        a->f.ignored++;
        return -E2BIG;
    }
    if (a->ncur == a->capcur) {
        size_t cap = a->capcur ? a->capcur * 2 : (a->nprev > 64 ? a->nprev + a->nprev / 8 : 64);
        audience_seen_t *nc = realloc(a->cur, cap * sizeof(*nc));
        if (!nc) {
            a->failed = true;
            return -ENOMEM;
        }
        a->cur = nc;
        a->capcur = cap;
    }
    audience_seen_t *e = &a->cur[a->ncur++];
    memcpy(e->id, session_id, idn + 1);
    e->watch_ms = s->watch_ms;

    /* The broadcast's totals: new session, or what its watch time grew by
     * (a counter that went back -- a player restarting its count under the
     * same id -- adds nothing now and counts on from its new value). */
    const audience_seen_t *p = audience_prev_find(a, session_id);
    if (!p) {
        a->new_sessions++;
        a->watch_delta += s->watch_ms;
    } else if (s->watch_ms > p->watch_ms) {
        a->watch_delta += s->watch_ms - p->watch_ms;
    }

    a->f.heard++;
    a->f.states[s->state]++;
    if (!audience_state_watching(s->state))
        return 0;
    a->f.beacon_viewers++;
    a->f.stall_ms += s->stall_ms;
    a->f.watch_ms += s->watch_ms;
    a->f.dropped_frames += (uint64_t)s->dropped_frames;
    a->f.errors += (uint64_t)s->errors;
    if (s->state != AUDIENCE_STARTING)
        audience_rendition_slot(a, s->rendition[0] ? s->rendition : AUDIENCE_AGG_UNKNOWN)->n++;
    if ((s->startup_ms >= 0 && !audience_samples_add(&a->startup, s->startup_ms)) ||
        (s->latency_ms >= 0 && !audience_samples_add(&a->latency, s->latency_ms)))
        a->failed = true;
    return 0;
}

int audience_agg_add_record(audience_agg_t *a, const char *field, const char *value)
{
    size_t plen = strlen(AUDIENCE_FIELD_PREFIX);
    audience_session_t s;
    if (!a->open)
        return -EINVAL;
    if (!field || !value || strncmp(field, AUDIENCE_FIELD_PREFIX, plen) != 0 ||
        audience_record_parse(value, &s) < 0) {
        a->f.ignored++;
        return -EINVAL;
    }
    return audience_agg_add(a, field + plen, &s);
}

static int audience_i64_cmp(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* Nearest-rank percentile p (0..100] of n sorted values, n > 0. */
static int64_t audience_rank(const int64_t *v, size_t n, int p)
{
    size_t k = (size_t)ceil((double)p * (double)n / 100.0);
    return v[k ? k - 1 : 0];
}

static bool audience_percentiles(audience_samples_t *s, int64_t *p50, int64_t *p90)
{
    if (!s->n)
        return false;
    qsort(s->v, s->n, sizeof(*s->v), audience_i64_cmp);
    *p50 = audience_rank(s->v, s->n, 50);
    *p90 = audience_rank(s->v, s->n, 90);
    return true;
}

int audience_agg_end(audience_agg_t *a, audience_figures_t *out)
{
    if (!a->open)
        return -EINVAL;
    if (a->failed) {
        audience_scan_free(a);
        return -ENOMEM;
    }
    audience_figures_t *f = &a->f;
    int64_t denom = f->watch_ms + f->stall_ms;
    f->rebuffer_ratio = denom > 0 ? (double)f->stall_ms / (double)denom : 0;
    f->have_startup = audience_percentiles(&a->startup, &f->startup_p50, &f->startup_p90);
    f->have_latency = audience_percentiles(&a->latency, &f->latency_p50, &f->latency_p90);

    /* The next scan's "previous": sorted, trimmed to size so that the
     * memory held between scans follows the audience. Ids are unique in a
     * scan (store fields are); a duplicate would only cost a lookup. */
    if (a->ncur > 1)
        qsort(a->cur, a->ncur, sizeof(*a->cur), audience_seen_cmp);
    free(a->prev);
    a->prev = NULL;
    a->nprev = 0;
    if (a->ncur) {
        audience_seen_t *t = realloc(a->cur, a->ncur * sizeof(*t));
        a->prev = t ? t : a->cur; /* a failed shrink keeps the larger block */
        a->nprev = a->ncur;
        a->cur = NULL;
    }

    if (!a->priming) {
        a->sessions_total += a->new_sessions;
        a->watch_ms_total += a->watch_delta;
    }
    a->priming = false;
    if (f->beacon_viewers > a->peak)
        a->peak = f->beacon_viewers;
    f->peak = a->peak;
    f->sessions_total = a->sessions_total;
    f->watch_ms_total = a->watch_ms_total;
    *out = *f;
    audience_scan_free(a);
    return 0;
}

void audience_agg_seed(audience_agg_t *a, uint64_t peak, uint64_t sessions_total,
                       int64_t watch_ms_total)
{
    a->peak = peak;
    a->sessions_total = sessions_total;
    a->watch_ms_total = watch_ms_total > 0 ? watch_ms_total : 0;
    a->priming = true;
}

size_t audience_agg_sessions(const audience_agg_t *a)
{
    return a->nprev;
}

size_t audience_agg_state_bytes(const audience_agg_t *a)
{
    return sizeof(*a) + a->nprev * sizeof(*a->prev);
}

/* ---- JSON ------------------------------------------------------------------ */

static json_t *audience_pct_json(bool have, int64_t p50, int64_t p90)
{
    if (!have)
        return json_null();
    return json_pack("{s:I, s:I}", "p50", (json_int_t)p50, "p90", (json_int_t)p90);
}

static json_t *audience_seconds_json(int64_t ms)
{
    return json_real(round((double)ms / 100.0) / 10.0);
}

json_t *audience_figures_json(const audience_figures_t *f, uint64_t request_viewers,
                              const char *updated)
{
    json_t *o = json_object();
    json_t *rends = json_object();
    json_t *states = json_object();
    if (!o || !rends || !states) {
        json_decref(o);
        json_decref(rends);
        json_decref(states);
        return NULL;
    }
    bool beacons = f->heard > 0;
    json_object_set_new(o, "viewers",
                        json_integer((json_int_t)(beacons ? f->beacon_viewers : request_viewers)));
    json_object_set_new(o, "source", json_string(beacons ? "beacons" : "requests"));
    json_object_set_new(o, "beacon_viewers", json_integer((json_int_t)f->beacon_viewers));
    json_object_set_new(o, "request_viewers", json_integer((json_int_t)request_viewers));
    json_object_set_new(o, "peak", json_integer((json_int_t)f->peak));
    json_object_set_new(o, "sessions_total", json_integer((json_int_t)f->sessions_total));
    json_object_set_new(o, "watch_time_s", audience_seconds_json(f->watch_ms_total));
    for (size_t i = 0; i < f->nrenditions; i++)
        json_object_set_new(rends, f->renditions[i].name,
                            json_integer((json_int_t)f->renditions[i].n));
    json_object_set_new(o, "renditions", rends);
    for (int s = 0; s < AUDIENCE_STATES; s++)
        if (audience_state_watching((audience_state_t)s))
            json_object_set_new(states, audience_state_name((audience_state_t)s),
                                json_integer((json_int_t)f->states[s]));
    json_object_set_new(o, "states", states);
    json_object_set_new(o, "rebuffer_ratio", json_real(round(f->rebuffer_ratio * 10000) / 10000));
    json_object_set_new(o, "startup_ms",
                        audience_pct_json(f->have_startup, f->startup_p50, f->startup_p90));
    json_object_set_new(o, "latency_ms",
                        audience_pct_json(f->have_latency, f->latency_p50, f->latency_p90));
    json_object_set_new(o, "dropped_frames", json_integer((json_int_t)f->dropped_frames));
    json_object_set_new(o, "errors", json_integer((json_int_t)f->errors));
    if (updated)
        json_object_set_new(o, "updated", json_string(updated));
    return o;
}

json_t *audience_last_json(const audience_figures_t *f, const char *ended_at)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "peak", json_integer((json_int_t)f->peak));
    json_object_set_new(o, "sessions_total", json_integer((json_int_t)f->sessions_total));
    json_object_set_new(o, "watch_time_s", audience_seconds_json(f->watch_ms_total));
    if (ended_at)
        json_object_set_new(o, "ended_at", json_string(ended_at));
    return o;
}
