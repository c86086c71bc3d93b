/*
 * Tests for transcode/overload.c: the decisions of overload protection, fed
 * one segment start at a time with a chosen speed (1 s of media that took
 * 1/speed s of busy time), and the action applied to the ladder the way
 * pipeline.c applies it.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ladder_internal.h"
#include "overload_internal.h"

typedef struct fixture {
    overload_state_t st;
    overload_rung_t rungs[TRANSCODE_RUNGS_MAX];
    size_t nrungs;
    bool protection;
    int64_t pts, busy_us, msn, lag_ms;
} fixture_t;

static void fx_init(fixture_t *f)
{
    memset(f, 0, sizeof(*f));
    overload_state_init(&f->st);
    f->protection = true;
    f->msn = 10;
}

static void fx_rung(fixture_t *f, int w, int h, bool passthrough, const char *preset)
{
    int p = ladder_preset_index(preset);
    assert_true(p >= 0);
    f->rungs[f->nrungs++] = (overload_rung_t){
        .width = w, .height = h, .passthrough = passthrough, .preset = p, .base_preset = p};
}

/* One segment start after `media_s` of media that took media_s / speed of
 * busy time; the action is applied to the ladder. */
static overload_decision_t fx_window(fixture_t *f, double media_s, double speed)
{
    f->pts += (int64_t)llround(media_s * 90000);
    f->busy_us += (int64_t)llround(media_s / speed * 1e6);
    f->msn++;
    overload_input_t in = {
        .pts = f->pts,
        .busy_us = f->busy_us,
        .msn = f->msn,
        .lag_ms = f->lag_ms,
        .segment_duration = 1.0,
        .protection = f->protection,
        .src_width = 1280,
        .src_height = 720,
        .rungs = f->rungs,
        .nrungs = f->nrungs,
    };
    overload_decision_t d;
    overload_decide(&f->st, &in, &d);
    switch (d.action) {
    case OVERLOAD_STEP_FASTER:
    case OVERLOAD_STEP_SLOWER:
        for (size_t i = 0; i < f->nrungs; i++) {
            overload_rung_t *r = &f->rungs[i];
            if (!r->passthrough)
                r->preset = r->base_preset - f->st.steps < 0 ? 0 : r->base_preset - f->st.steps;
        }
        break;
    case OVERLOAD_DROP:
        assert_false(f->rungs[d.rung].dropped);
        f->rungs[d.rung].dropped = true;
        break;
    case OVERLOAD_RESTORE:
        assert_true(f->rungs[d.rung].dropped);
        f->rungs[d.rung].dropped = false;
        break;
    default:
        assert_int_equal(d.rung, -1);
        break;
    }
    return d;
}

static overload_decision_t fx_step(fixture_t *f, double speed)
{
    return fx_window(f, 1.0, speed);
}

/* Asserts an evaluated decision of `action` (on `rung` for DROP/RESTORE). */
static void fx_expect(fixture_t *f, double speed, overload_action_t action, int rung)
{
    overload_decision_t d = fx_step(f, speed);
    assert_true(d.evaluated);
    assert_int_equal(d.action, action);
    assert_int_equal(d.rung, rung);
}

/* The measurement's start and the start-up window: never evaluated. */
static void fx_prime(fixture_t *f)
{
    overload_decision_t d = fx_step(f, 1.0);
    assert_false(d.evaluated);
    assert_int_equal(d.action, OVERLOAD_NONE);
    d = fx_step(f, 0.1); /* encoder start-up: however slow, ignored */
    assert_false(d.evaluated);
    assert_int_equal(d.action, OVERLOAD_NONE);
    assert_false(f->st.have_speed);
}

/* 720p, 480p and 360p transcoded at veryfast from a 720p source. */
static void fx_three(fixture_t *f)
{
    fx_init(f);
    fx_rung(f, 1280, 720, false, "veryfast");
    fx_rung(f, 854, 480, false, "veryfast");
    fx_rung(f, 640, 360, false, "veryfast");
    fx_prime(f);
}

/* 480p and 360p transcoded at ultrafast: no preset step left to take. */
static void fx_two(fixture_t *f)
{
    fx_init(f);
    fx_rung(f, 854, 480, false, "ultrafast");
    fx_rung(f, 640, 360, false, "ultrafast");
    fx_prime(f);
}

static void test_no_action_when_fast_enough(void **state)
{
    (void)state;
    fixture_t f;
    fx_three(&f);
    for (int i = 0; i < 10; i++)
        fx_expect(&f, 1.5, OVERLOAD_NONE, -1);
    /* Just real time is not behind either. */
    for (int i = 0; i < 5; i++)
        fx_expect(&f, 1.0, OVERLOAD_NONE, -1);
    assert_int_equal(f.st.steps, 0);
    assert_int_equal(f.st.ndropped, 0);
}

static void test_steps_the_preset_first_then_drops_the_worst_rung(void **state)
{
    (void)state;
    fixture_t f;
    fx_three(&f);
    fx_expect(&f, 0.5, OVERLOAD_STEP_FASTER, -1);
    assert_int_equal(f.st.steps, 1);
    assert_string_equal(ladder_preset_name(f.rungs[0].preset), "superfast");
    fx_expect(&f, 0.5, OVERLOAD_NONE, -1); /* cooldown */
    fx_expect(&f, 0.5, OVERLOAD_STEP_FASTER, -1);
    assert_int_equal(f.st.steps, 2);
    assert_string_equal(ladder_preset_name(f.rungs[2].preset), "ultrafast");
    fx_expect(&f, 0.5, OVERLOAD_NONE, -1);
    /* At the fastest preset: the most expensive rung (720p) goes, then 480p. */
    fx_expect(&f, 0.5, OVERLOAD_DROP, 0);
    fx_expect(&f, 0.5, OVERLOAD_NONE, -1);
    fx_expect(&f, 0.5, OVERLOAD_DROP, 1);
    assert_int_equal(f.st.ndropped, 2);
    assert_int_equal(f.st.dropped[0], 0);
    assert_int_equal(f.st.dropped[1], 1);
    assert_int_equal(f.st.steps, 2);
}

/* The last video rendition stays, however slow; that is said once. */
static void test_never_drops_the_last_rendition(void **state)
{
    (void)state;
    fixture_t f;
    fx_two(&f);
    fx_expect(&f, 0.3, OVERLOAD_DROP, 0);
    fx_expect(&f, 0.3, OVERLOAD_NONE, -1);
    fx_expect(&f, 0.3, OVERLOAD_FLOOR, -1);
    for (int i = 0; i < 5; i++)
        fx_expect(&f, 0.3, OVERLOAD_NONE, -1);
    assert_false(f.rungs[1].dropped);
    assert_int_equal(f.st.ndropped, 1);
}

/* A copied rung costs nothing and is never dropped; it counts as the
 * rendition that stays, so every transcoded rung may go. */
static void test_passthrough_is_never_dropped(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f);
    fx_rung(&f, 1280, 720, true, "ultrafast");
    fx_rung(&f, 854, 480, false, "ultrafast");
    fx_rung(&f, 640, 360, false, "ultrafast");
    fx_prime(&f);
    fx_expect(&f, 0.3, OVERLOAD_DROP, 1);
    fx_expect(&f, 0.3, OVERLOAD_NONE, -1);
    fx_expect(&f, 0.3, OVERLOAD_DROP, 2);
    fx_expect(&f, 0.3, OVERLOAD_NONE, -1);
    fx_expect(&f, 0.3, OVERLOAD_FLOOR, -1);
    assert_false(f.rungs[0].dropped);
}

/* A queue more than two segments long counts as behind while the speed is
 * under 1.1x; over that, or with a short queue, nothing happens. */
static void test_a_long_queue_counts_as_behind(void **state)
{
    (void)state;
    fixture_t f;
    fx_three(&f);
    f.lag_ms = 2500;
    fx_expect(&f, 1.15, OVERLOAD_NONE, -1);
    f.lag_ms = 1500;
    fx_expect(&f, 1.05, OVERLOAD_NONE, -1);
    f.lag_ms = 2500;
    fx_expect(&f, 1.05, OVERLOAD_STEP_FASTER, -1);
}

/* Headroom brings back the last rung dropped first, then the one before,
 * then the preset steps; each waits two segment starts after the last. */
static void test_restores_in_reverse_order_then_steps_back(void **state)
{
    (void)state;
    fixture_t f;
    fx_three(&f);
    static const overload_action_t shed[] = {
        OVERLOAD_STEP_FASTER, OVERLOAD_NONE, OVERLOAD_STEP_FASTER, OVERLOAD_NONE,
        OVERLOAD_DROP, OVERLOAD_NONE, OVERLOAD_DROP};
    for (size_t i = 0; i < sizeof(shed) / sizeof(shed[0]); i++)
        assert_int_equal(fx_step(&f, 0.5).action, shed[i]);
    assert_int_equal(f.st.ndropped, 2);
    fx_expect(&f, 0.5, OVERLOAD_NONE, -1); /* cooldown after the drop */
    /* Real time, but not enough to predict 1.2x with 480p back. */
    for (int i = 0; i < 4; i++)
        fx_expect(&f, 1.6, OVERLOAD_NONE, -1);
    assert_true(f.st.speed > 1.5);
    fx_expect(&f, 10, OVERLOAD_RESTORE, 1);
    fx_expect(&f, 10, OVERLOAD_NONE, -1);
    fx_expect(&f, 10, OVERLOAD_NONE, -1);
    fx_expect(&f, 10, OVERLOAD_RESTORE, 0);
    assert_int_equal(f.st.ndropped, 0);
    fx_expect(&f, 10, OVERLOAD_NONE, -1);
    fx_expect(&f, 10, OVERLOAD_NONE, -1);
    fx_expect(&f, 10, OVERLOAD_STEP_SLOWER, -1);
    assert_int_equal(f.st.steps, 1);
    fx_expect(&f, 10, OVERLOAD_NONE, -1);
    fx_expect(&f, 10, OVERLOAD_NONE, -1);
    fx_expect(&f, 10, OVERLOAD_STEP_SLOWER, -1);
    assert_int_equal(f.st.steps, 0);
    assert_string_equal(ladder_preset_name(f.rungs[0].preset), "veryfast");
    for (int i = 0; i < 5; i++)
        fx_expect(&f, 10, OVERLOAD_NONE, -1);
}

/* With headroom but a long queue (over one segment), nothing comes back. */
static void test_no_restore_while_the_queue_is_long(void **state)
{
    (void)state;
    fixture_t f;
    fx_two(&f);
    fx_expect(&f, 0.3, OVERLOAD_DROP, 0);
    f.lag_ms = 1000;
    for (int i = 0; i < 5; i++)
        fx_expect(&f, 10, OVERLOAD_NONE, -1);
    f.lag_ms = 999;
    fx_expect(&f, 10, OVERLOAD_RESTORE, 0);
}

/* Drops the 480p rung again `after` (3 or more) segments after it came
 * back, then counts the evaluations with headroom until it is restored
 * again. */
static int redrop_then_count(int after)
{
    fixture_t f;
    fx_two(&f);
    fx_expect(&f, 0.3, OVERLOAD_DROP, 0);
    fx_expect(&f, 10, OVERLOAD_NONE, -1);
    fx_expect(&f, 10, OVERLOAD_RESTORE, 0);
    int64_t restored = f.msn;
    /* Real time (two of them the restore's cooldown), then slow enough
     * to bring the smoothed speed under 1x at once. */
    while (f.msn < restored + after - 1)
        fx_expect(&f, 1.0, OVERLOAD_NONE, -1);
    fx_expect(&f, 0.01, OVERLOAD_DROP, 0);
    assert_int_equal(f.msn, restored + after);
    int n = 1;
    while (fx_step(&f, 100).action != OVERLOAD_RESTORE) {
        assert_true(n < 100);
        n++;
    }
    return n;
}

/* A rung dropped again within four segments of its restore waits fifteen
 * segment starts before the next try; later than that, the usual
 * cooldown. */
static void test_restore_hold_after_a_quick_redrop(void **state)
{
    (void)state;
    assert_int_equal(redrop_then_count(4), 15);
    assert_int_equal(redrop_then_count(5), 2);
}

/* --overload-protection off: measured and reported, never acted on. */
static void test_no_overload_protection(void **state)
{
    (void)state;
    fixture_t f;
    fx_three(&f);
    f.protection = false;
    for (int i = 0; i < 10; i++)
        fx_expect(&f, 0.2, OVERLOAD_NONE, -1);
    assert_true(f.st.have_speed);
    assert_true(fabs(f.st.speed - 0.2) < 1e-6);
    assert_int_equal(f.st.steps, 0);
    assert_int_equal(f.st.ndropped, 0);
    assert_int_equal(f.st.cooldown, 0);
    /* On again: it acts at once. */
    f.protection = true;
    fx_expect(&f, 0.2, OVERLOAD_STEP_FASTER, -1);
}

/* The speed is media time over busy time since the last evaluation,
 * averaged with the previous value; windows under 0.4 s of media (or no
 * busy time) wait for more. */
static void test_speed_smoothing(void **state)
{
    (void)state;
    fixture_t f;
    fx_init(&f);
    f.protection = false;
    fx_rung(&f, 640, 360, false, "veryfast");
    fx_prime(&f);
    fx_expect(&f, 2.0, OVERLOAD_NONE, -1);
    assert_true(fabs(f.st.speed - 2.0) < 1e-6);
    fx_expect(&f, 1.0, OVERLOAD_NONE, -1);
    assert_true(fabs(f.st.speed - 1.5) < 1e-6);
    /* 0.3 s at 0.5x is too short to say anything... */
    assert_false(fx_window(&f, 0.3, 0.5).evaluated);
    assert_true(fabs(f.st.speed - 1.5) < 1e-6);
    /* ... and counts with the next window: 0.3 + 0.7 s of media in
     * 0.6 + 0.4 s, 1.0x; averaged with 1.5x. */
    fx_window(&f, 0.7, 1.75);
    assert_true(fabs(f.st.speed - 1.25) < 1e-6);
    /* No busy time at all: not a measurement. */
    f.pts += 90000;
    f.msn++;
    overload_input_t in = {.pts = f.pts, .busy_us = f.busy_us, .msn = f.msn,
                           .segment_duration = 1.0, .src_width = 1280, .src_height = 720,
                           .rungs = f.rungs, .nrungs = f.nrungs};
    overload_decision_t d;
    overload_decide(&f.st, &in, &d);
    assert_false(d.evaluated);
    assert_true(fabs(f.st.speed - 1.25) < 1e-6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_action_when_fast_enough),
        cmocka_unit_test(test_steps_the_preset_first_then_drops_the_worst_rung),
        cmocka_unit_test(test_never_drops_the_last_rendition),
        cmocka_unit_test(test_passthrough_is_never_dropped),
        cmocka_unit_test(test_a_long_queue_counts_as_behind),
        cmocka_unit_test(test_restores_in_reverse_order_then_steps_back),
        cmocka_unit_test(test_no_restore_while_the_queue_is_long),
        cmocka_unit_test(test_restore_hold_after_a_quick_redrop),
        cmocka_unit_test(test_no_overload_protection),
        cmocka_unit_test(test_speed_smoothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
