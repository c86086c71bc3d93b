/* Unit tests for control/audience.c: one scan's figures (viewers, states,
 * renditions with "unknown" and "other", rebuffer ratio, percentiles,
 * sums), the totals across scans (peak, new sessions, watch-time deltas,
 * a session that leaves keeps what it added), abort after a failed scan,
 * malformed records, the JSON objects, and flat memory with 10,000
 * concurrent sessions churned over many scans. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "audience_internal.h"

static audience_session_t sess(audience_state_t st, const char *rend, int64_t watch_ms)
{
    audience_session_t s;
    audience_session_init(&s);
    s.state = st;
    if (rend)
        snprintf(s.rendition, sizeof(s.rendition), "%s", rend);
    s.watch_ms = watch_ms;
    return s;
}

/* A valid session id for number i. */
static const char *sid(int i)
{
    static char buf[8][40];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, 40, "session-%08d-abcdef", i);
    return b;
}

static uint64_t rend_count(const audience_figures_t *f, const char *name)
{
    for (size_t i = 0; i < f->nrenditions; i++)
        if (strcmp(f->renditions[i].name, name) == 0)
            return f->renditions[i].n;
    return 0;
}

static void test_one_scan(void **state)
{
    (void)state;
    audience_agg_t *a;
    assert_int_equal(audience_agg_new(&a), 0);
    audience_agg_begin(a, NULL, 0);
    audience_session_t s = sess(AUDIENCE_PLAYING, "720p", 10000);
    s.startup_ms = 800;
    s.latency_ms = 4000;
    s.dropped_frames = 3;
    assert_int_equal(audience_agg_add(a, sid(1), &s), 0);
    s = sess(AUDIENCE_PLAYING, "720p", 20000);
    s.startup_ms = 1200;
    s.latency_ms = 6000;
    assert_int_equal(audience_agg_add(a, sid(2), &s), 0);
    s = sess(AUDIENCE_STALLED, "360p", 5000);
    s.stall_ms = 5000;
    s.errors = 2;
    s.latency_ms = 9000;
    assert_int_equal(audience_agg_add(a, sid(3), &s), 0);
    s = sess(AUDIENCE_PAUSED, NULL, 0);
    assert_int_equal(audience_agg_add(a, sid(4), &s), 0);
    s = sess(AUDIENCE_STARTING, NULL, 0); /* counted, but in no rendition yet */
    assert_int_equal(audience_agg_add(a, sid(5), &s), 0);
    s = sess(AUDIENCE_ENDED, "720p", 30000); /* not watching: no viewer, no sums */
    s.errors = 100;
    assert_int_equal(audience_agg_add(a, sid(6), &s), 0);
    s = sess(AUDIENCE_ERROR, "360p", 1000);
    assert_int_equal(audience_agg_add(a, sid(7), &s), 0);

    audience_figures_t f;
    assert_int_equal(audience_agg_end(a, &f), 0);
    assert_int_equal(f.heard, 7);
    assert_int_equal(f.beacon_viewers, 5);
    assert_int_equal(f.states[AUDIENCE_PLAYING], 2);
    assert_int_equal(f.states[AUDIENCE_STALLED], 1);
    assert_int_equal(f.states[AUDIENCE_PAUSED], 1);
    assert_int_equal(f.states[AUDIENCE_STARTING], 1);
    assert_int_equal(f.states[AUDIENCE_ENDED], 1);
    assert_int_equal(f.nrenditions, 3);
    assert_int_equal(rend_count(&f, "720p"), 2);
    assert_int_equal(rend_count(&f, "360p"), 1);
    assert_int_equal(rend_count(&f, "unknown"), 1);
    /* stall 5000 / (watch 35000 + stall 5000) over the watching ones */
    assert_true(f.rebuffer_ratio > 0.1249 && f.rebuffer_ratio < 0.1251);
    assert_true(f.have_startup);
    assert_int_equal(f.startup_p50, 800);
    assert_int_equal(f.startup_p90, 1200);
    assert_true(f.have_latency);
    assert_int_equal(f.latency_p50, 6000);
    assert_int_equal(f.latency_p90, 9000);
    assert_int_equal(f.dropped_frames, 3);
    assert_int_equal(f.errors, 2);
    assert_int_equal(f.peak, 5);
    assert_int_equal(f.sessions_total, 7);
    assert_int_equal(f.watch_ms_total, 66000);
    assert_int_equal(f.ignored, 0);
    assert_int_equal(audience_agg_sessions(a), 7);
    audience_agg_free(a);
    audience_agg_free(NULL);
}

static void test_empty_scan(void **state)
{
    (void)state;
    audience_agg_t *a;
    assert_int_equal(audience_agg_new(&a), 0);
    audience_agg_begin(a, NULL, 0);
    audience_figures_t f;
    assert_int_equal(audience_agg_end(a, &f), 0);
    assert_int_equal(f.heard, 0);
    assert_int_equal(f.beacon_viewers, 0);
    assert_false(f.have_startup);
    assert_false(f.have_latency);
    assert_true(f.rebuffer_ratio == 0);
    assert_int_equal(f.nrenditions, 0);
    /* The JSON: requests are the source, percentiles null. */
    json_t *o = audience_figures_json(&f, 4, "2026-12-07T10:00:00Z");
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "viewers")), 4);
    assert_string_equal(json_string_value(json_object_get(o, "source")), "requests");
    assert_int_equal(json_integer_value(json_object_get(o, "request_viewers")), 4);
    assert_int_equal(json_integer_value(json_object_get(o, "beacon_viewers")), 0);
    assert_true(json_is_null(json_object_get(o, "startup_ms")));
    assert_true(json_is_null(json_object_get(o, "latency_ms")));
    assert_int_equal(json_object_size(json_object_get(o, "renditions")), 0);
    assert_string_equal(json_string_value(json_object_get(o, "updated")), "2026-12-07T10:00:00Z");
    json_decref(o);
    /* end without begin */
    assert_int_equal(audience_agg_end(a, &f), -EINVAL);
    assert_int_equal(audience_agg_add(a, sid(1), &(audience_session_t){0}), -EINVAL);
    audience_agg_free(a);
}

static void test_totals_across_scans(void **state)
{
    (void)state;
    audience_agg_t *a;
    assert_int_equal(audience_agg_new(&a), 0);
    audience_figures_t f;
    audience_session_t s;

    /* Scan 1: A 1000, B 2000. */
    audience_agg_begin(a, NULL, 0);
    s = sess(AUDIENCE_PLAYING, "720p", 1000);
    assert_int_equal(audience_agg_add(a, sid(1), &s), 0);
    s = sess(AUDIENCE_PLAYING, "720p", 2000);
    assert_int_equal(audience_agg_add(a, sid(2), &s), 0);
    assert_int_equal(audience_agg_end(a, &f), 0);
    assert_int_equal(f.sessions_total, 2);
    assert_int_equal(f.watch_ms_total, 3000);
    assert_int_equal(f.peak, 2);

    /* Scan 2: A 3000 (+2000), B gone (keeps its 2000), C 500 new, D new. */
    audience_agg_begin(a, NULL, 0);
    s = sess(AUDIENCE_PLAYING, "720p", 3000);
    assert_int_equal(audience_agg_add(a, sid(1), &s), 0);
    s = sess(AUDIENCE_PLAYING, "360p", 500);
    assert_int_equal(audience_agg_add(a, sid(3), &s), 0);
    s = sess(AUDIENCE_STARTING, NULL, 0);
    assert_int_equal(audience_agg_add(a, sid(4), &s), 0);
    assert_int_equal(audience_agg_end(a, &f), 0);
    assert_int_equal(f.sessions_total, 4);
    assert_int_equal(f.watch_ms_total, 5500);
    assert_int_equal(f.peak, 3);
    assert_int_equal(audience_agg_sessions(a), 3);

    /* Scan 3: A's counter went back (a restarted count): adds nothing;
     * C ended with its final figure: +1500. Peak stays 3. */
    audience_agg_begin(a, NULL, 0);
    s = sess(AUDIENCE_PLAYING, "720p", 100);
    assert_int_equal(audience_agg_add(a, sid(1), &s), 0);
    s = sess(AUDIENCE_ENDED, "360p", 2000);
    assert_int_equal(audience_agg_add(a, sid(3), &s), 0);
    assert_int_equal(audience_agg_end(a, &f), 0);
    assert_int_equal(f.beacon_viewers, 1);
    assert_int_equal(f.sessions_total, 4);
    assert_int_equal(f.watch_ms_total, 7000);
    assert_int_equal(f.peak, 3);

    /* Scan 4: A counts on from its new value: +400. */
    audience_agg_begin(a, NULL, 0);
    s = sess(AUDIENCE_PLAYING, "720p", 500);
    assert_int_equal(audience_agg_add(a, sid(1), &s), 0);
    assert_int_equal(audience_agg_end(a, &f), 0);
    assert_int_equal(f.watch_ms_total, 7400);
    assert_int_equal(f.sessions_total, 4);

    json_t *last = audience_last_json(&f, "2026-12-07T11:00:00Z");
    assert_int_equal(json_integer_value(json_object_get(last, "peak")), 3);
    assert_int_equal(json_integer_value(json_object_get(last, "sessions_total")), 4);
    assert_true(json_real_value(json_object_get(last, "watch_time_s")) == 7.4);
    assert_string_equal(json_string_value(json_object_get(last, "ended_at")),
                        "2026-12-07T11:00:00Z");
    json_decref(last);
    audience_agg_free(a);
}

static void test_abort_keeps_totals(void **state)
{
    (void)state;
    audience_agg_t *a;
    assert_int_equal(audience_agg_new(&a), 0);
    audience_figures_t f;
    audience_session_t s = sess(AUDIENCE_PLAYING, "720p", 1000);
    audience_agg_begin(a, NULL, 0);
    assert_int_equal(audience_agg_add(a, sid(1), &s), 0);
    assert_int_equal(audience_agg_end(a, &f), 0);

    /* A scan the store broke off half-way: nothing of it counts. */
    audience_agg_begin(a, NULL, 0);
    s.watch_ms = 5000;
    assert_int_equal(audience_agg_add(a, sid(1), &s), 0);
    assert_int_equal(audience_agg_add(a, sid(2), &s), 0);
    audience_agg_abort(a);
    assert_int_equal(audience_agg_sessions(a), 1);

    /* A begin while a scan is open aborts that one too. */
    audience_agg_begin(a, NULL, 0);
    assert_int_equal(audience_agg_add(a, sid(3), &s), 0);
    audience_agg_begin(a, NULL, 0);
    s.watch_ms = 6000;
    assert_int_equal(audience_agg_add(a, sid(1), &s), 0);
    assert_int_equal(audience_agg_end(a, &f), 0);
    assert_int_equal(f.sessions_total, 1);
    assert_int_equal(f.watch_ms_total, 6000);
    assert_int_equal(f.peak, 1);
    audience_agg_free(a);
}

static void test_records(void **state)
{
    (void)state;
    audience_agg_t *a;
    assert_int_equal(audience_agg_new(&a), 0);
    audience_agg_begin(a, NULL, 0);
    char rec[AUDIENCE_RECORD_MAX];
    audience_session_t s = sess(AUDIENCE_STALLED, "480p", 9000);
    s.stall_ms = 1000;
    s.startup_ms = 700;
    assert_true(audience_record_format(&s, rec, sizeof(rec)) > 0);
    char field[100];
    snprintf(field, sizeof(field), "%s%s", AUDIENCE_FIELD_PREFIX, sid(1));
    assert_int_equal(audience_agg_add_record(a, field, rec), 0);
    /* Malformed: wrong prefix, bad id, a record from another version or a
     * stray writer. All counted as ignored, none aggregated. */
    assert_int_equal(audience_agg_add_record(a, "viewers.node1", "3"), -EINVAL);
    assert_int_equal(audience_agg_add_record(a, "aud.short", rec), -EINVAL);
    assert_int_equal(audience_agg_add_record(a, "aud.bad id with spaces!", rec), -EINVAL);
    snprintf(field, sizeof(field), "%s%s", AUDIENCE_FIELD_PREFIX, sid(2));
    assert_int_equal(audience_agg_add_record(a, field, "2 playing - -1 -1 0 0 0 0 0"), -EINVAL);
    assert_int_equal(audience_agg_add_record(a, field, "{\"state\":\"playing\"}"), -EINVAL);
    assert_int_equal(audience_agg_add_record(a, field, ""), -EINVAL);
    assert_int_equal(audience_agg_add_record(a, NULL, rec), -EINVAL);
    audience_figures_t f;
    assert_int_equal(audience_agg_end(a, &f), 0);
    assert_int_equal(f.heard, 1);
    assert_int_equal(f.ignored, 7);
    assert_int_equal(f.beacon_viewers, 1);
    assert_int_equal(f.states[AUDIENCE_STALLED], 1);
    assert_int_equal(rend_count(&f, "480p"), 1);
    assert_true(f.rebuffer_ratio > 0.0999 && f.rebuffer_ratio < 0.1001);
    assert_int_equal(f.startup_p50, 700);

    json_t *o = audience_figures_json(&f, 9, "t");
    assert_int_equal(json_integer_value(json_object_get(o, "viewers")), 1);
    assert_string_equal(json_string_value(json_object_get(o, "source")), "beacons");
    assert_int_equal(json_integer_value(json_object_get(o, "request_viewers")), 9);
    json_t *st = json_object_get(o, "states");
    assert_int_equal(json_object_size(st), 4);
    assert_int_equal(json_integer_value(json_object_get(st, "stalled")), 1);
    assert_int_equal(json_integer_value(json_object_get(st, "playing")), 0);
    assert_null(json_object_get(st, "ended"));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "renditions"), "480p")),
                     1);
    assert_true(json_real_value(json_object_get(o, "rebuffer_ratio")) == 0.1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "startup_ms"), "p90")),
                     700);
    json_decref(o);
    audience_agg_free(a);
}

/* Only ended sessions heard from: beacons are still the source (the count
 * drops to 0 at once instead of falling back to the request count). */
static void test_all_ended(void **state)
{
    (void)state;
    audience_agg_t *a;
    assert_int_equal(audience_agg_new(&a), 0);
    audience_agg_begin(a, NULL, 0);
    audience_session_t s = sess(AUDIENCE_ENDED, "720p", 1000);
    assert_int_equal(audience_agg_add(a, sid(1), &s), 0);
    audience_figures_t f;
    assert_int_equal(audience_agg_end(a, &f), 0);
    json_t *o = audience_figures_json(&f, 2, "t");
    assert_int_equal(json_integer_value(json_object_get(o, "viewers")), 0);
    assert_string_equal(json_string_value(json_object_get(o, "source")), "beacons");
    json_decref(o);
    audience_agg_free(a);
}

static void test_rendition_bounds(void **state)
{
    (void)state;
    audience_agg_t *a;
    assert_int_equal(audience_agg_new(&a), 0);
    audience_figures_t f;
    char name[16];

    /* Names not known: the first AUDIENCE_AGG_RENDITIONS_MAX keep theirs. */
    audience_agg_begin(a, NULL, 0);
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof(name), "forged%d", i);
        audience_session_t s = sess(AUDIENCE_PLAYING, name, 0);
        assert_int_equal(audience_agg_add(a, sid(i), &s), 0);
    }
    audience_session_t s = sess(AUDIENCE_PLAYING, NULL, 0);
    assert_int_equal(audience_agg_add(a, sid(100), &s), 0);
    assert_int_equal(audience_agg_end(a, &f), 0);
    assert_int_equal(f.nrenditions, AUDIENCE_AGG_RENDITIONS_MAX + 2);
    assert_int_equal(rend_count(&f, "other"), 40 - AUDIENCE_AGG_RENDITIONS_MAX);
    assert_int_equal(rend_count(&f, "unknown"), 1);
    assert_int_equal(rend_count(&f, "forged0"), 1);

    /* The stream's own names known: anything else is "other". */
    const char *own[] = {"720p", "360p", "audio"};
    audience_agg_begin(a, own, 3);
    s = sess(AUDIENCE_PLAYING, "720p", 0);
    assert_int_equal(audience_agg_add(a, sid(1), &s), 0);
    s = sess(AUDIENCE_PAUSED, "audio", 0);
    assert_int_equal(audience_agg_add(a, sid(2), &s), 0);
    s = sess(AUDIENCE_PLAYING, "1080p", 0);
    assert_int_equal(audience_agg_add(a, sid(3), &s), 0);
    s = sess(AUDIENCE_STALLED, "zzz", 0);
    assert_int_equal(audience_agg_add(a, sid(4), &s), 0);
    s = sess(AUDIENCE_PLAYING, NULL, 0);
    assert_int_equal(audience_agg_add(a, sid(5), &s), 0);
    assert_int_equal(audience_agg_end(a, &f), 0);
    assert_int_equal(f.nrenditions, 4);
    assert_int_equal(rend_count(&f, "720p"), 1);
    assert_int_equal(rend_count(&f, "audio"), 1);
    assert_int_equal(rend_count(&f, "other"), 2);
    assert_int_equal(rend_count(&f, "unknown"), 1);
    audience_agg_free(a);
}

/* Percentiles by nearest rank over the sessions that reported one. */
static void test_percentiles(void **state)
{
    (void)state;
    audience_agg_t *a;
    assert_int_equal(audience_agg_new(&a), 0);
    audience_agg_begin(a, NULL, 0);
    for (int i = 1; i <= 100; i++) {
        audience_session_t s = sess(AUDIENCE_PLAYING, "720p", 0);
        s.latency_ms = (101 - i) * 10; /* 1000 .. 10, out of order */
        s.startup_ms = i % 2 ? i : -1; /* half report one: 1, 3, ... 99 */
        assert_int_equal(audience_agg_add(a, sid(i), &s), 0);
    }
    audience_figures_t f;
    assert_int_equal(audience_agg_end(a, &f), 0);
    assert_int_equal(f.latency_p50, 500);
    assert_int_equal(f.latency_p90, 900);
    assert_int_equal(f.startup_p50, 49);
    assert_int_equal(f.startup_p90, 89);
    audience_agg_free(a);
}

/* 10,000 concurrent sessions, a tenth replaced at every scan, over 30
 * scans: the state held between scans follows the concurrent audience, not
 * the 37,000 sessions the broadcast saw. */
static void test_churn_flat_memory(void **state)
{
    (void)state;
    enum { CONCURRENT = 10000, CHURN = 1000, SCANS = 30 };
    audience_agg_t *a;
    assert_int_equal(audience_agg_new(&a), 0);
    audience_figures_t f;
    size_t first_bytes = 0, max_bytes = 0;
    int64_t expect_watch = 0;
    for (int scan = 0; scan < SCANS; scan++) {
        int lo = scan * CHURN;
        audience_agg_begin(a, NULL, 0);
        for (int i = lo; i < lo + CONCURRENT; i++) {
            /* Each session plays 1 s more per scan it is in. */
            int64_t age = scan - (i < CONCURRENT ? 0 : (i - CONCURRENT) / CHURN + 1) + 1;
            audience_session_t s = sess(AUDIENCE_PLAYING, i % 2 ? "720p" : "360p", age * 1000);
            assert_int_equal(audience_agg_add(a, sid(i), &s), 0);
        }
        assert_int_equal(audience_agg_end(a, &f), 0);
        assert_int_equal(f.beacon_viewers, CONCURRENT);
        assert_int_equal(audience_agg_sessions(a), CONCURRENT);
        size_t bytes = audience_agg_state_bytes(a);
        if (scan == 0)
            first_bytes = bytes;
        if (bytes > max_bytes)
            max_bytes = bytes;
        expect_watch += CONCURRENT * 1000;
    }
    assert_int_equal(f.sessions_total, CONCURRENT + (SCANS - 1) * CHURN);
    assert_int_equal(f.watch_ms_total, expect_watch);
    assert_int_equal(f.peak, CONCURRENT);
    assert_int_equal(max_bytes, first_bytes);
    assert_true(max_bytes < (size_t)CONCURRENT * 100);

    /* Everyone leaves: the state shrinks to nothing but the totals. */
    audience_agg_begin(a, NULL, 0);
    assert_int_equal(audience_agg_end(a, &f), 0);
    assert_int_equal(audience_agg_sessions(a), 0);
    assert_true(audience_agg_state_bytes(a) < 1024);
    assert_int_equal(f.sessions_total, CONCURRENT + (SCANS - 1) * CHURN);
    audience_agg_free(a);
}

static void test_scan_cap(void **state)
{
    (void)state;
    audience_agg_t *a;
    assert_int_equal(audience_agg_new(&a), 0);
    audience_agg_begin(a, NULL, 0);
    audience_session_t s = sess(AUDIENCE_PLAYING, "720p", 0);
    int i;
    for (i = 0; i < AUDIENCE_AGG_SESSIONS_MAX; i++)
        assert_int_equal(audience_agg_add(a, sid(i), &s), 0);
    assert_int_equal(audience_agg_add(a, sid(i), &s), -E2BIG);
    audience_figures_t f;
    assert_int_equal(audience_agg_end(a, &f), 0);
    assert_int_equal(f.beacon_viewers, AUDIENCE_AGG_SESSIONS_MAX);
    assert_int_equal(f.ignored, 1);
    audience_agg_free(a);
}

/* A broadcast taken over from another aggregator: its totals go on, the
 * sessions it already counted are not counted again. */
static void test_seed(void **state)
{
    (void)state;
    audience_agg_t *a;
    assert_int_equal(audience_agg_new(&a), 0);
    audience_agg_seed(a, 7, 40, 100000);
    audience_figures_t f;
    audience_agg_begin(a, NULL, 0);
    audience_session_t s = sess(AUDIENCE_PLAYING, "720p", 5000);
    assert_int_equal(audience_agg_add(a, sid(1), &s), 0);
    assert_int_equal(audience_agg_add(a, sid(2), &s), 0);
    assert_int_equal(audience_agg_end(a, &f), 0);
    assert_int_equal(f.beacon_viewers, 2);
    assert_int_equal(f.peak, 7);
    assert_int_equal(f.sessions_total, 40);
    assert_int_equal(f.watch_ms_total, 100000);
    /* From then on, as usual. */
    audience_agg_begin(a, NULL, 0);
    s.watch_ms = 6000;
    assert_int_equal(audience_agg_add(a, sid(1), &s), 0);
    assert_int_equal(audience_agg_add(a, sid(3), &s), 0);
    assert_int_equal(audience_agg_end(a, &f), 0);
    assert_int_equal(f.sessions_total, 41);
    assert_int_equal(f.watch_ms_total, 100000 + 1000 + 6000);
    audience_agg_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_scan),
        cmocka_unit_test(test_empty_scan),
        cmocka_unit_test(test_totals_across_scans),
        cmocka_unit_test(test_abort_keeps_totals),
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_all_ended),
        cmocka_unit_test(test_rendition_bounds),
        cmocka_unit_test(test_percentiles),
        cmocka_unit_test(test_churn_flat_memory),
        cmocka_unit_test(test_scan_cap),
        cmocka_unit_test(test_seed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
