/*
 * Overload protection's decisions (overload_internal.h): pure arithmetic on
 * the caller's state and a snapshot of the ladder, as ladder.c is. The
 * pipeline (pipeline.c) measures, applies the action and logs it; this file
 * only says what to do next. Runs on the transcode worker; no globals.
 */
#include "overload_internal.h"

#include <string.h>

#include "ladder_internal.h"

#define OVERLOAD_DECODE_COST 0.35 /* decoding a picture, against encoding it at veryfast */
#define OVERLOAD_MIN_MEDIA_S 0.4  /* shorter windows say nothing about speed */
#define OVERLOAD_RESTORE_COOLDOWN 2
#define OVERLOAD_SHED_COOLDOWN 1
#define OVERLOAD_REDROP_SEGMENTS 4 /* a drop this soon after a restore ... */
#define OVERLOAD_REDROP_HOLD 15    /* ... holds the next restore this long */

void overload_state_init(overload_state_t *st)
{
    memset(st, 0, sizeof(*st));
    st->restore_msn = -1;
}

static double overload_rung_cost(const overload_rung_t *r, int preset)
{
    return (double)r->width * r->height * ladder_preset_cost(preset);
}

/* Relative cost of the work now, with `extra` added (a rung restored) and
 * every transcoded rung's preset index moved by step_delta, at most to its
 * configured one. The step back is priced with step_delta -1, as it was
 * before this policy moved here: that is a faster preset, not the slower
 * one a step back goes to, so the prediction is hopeful (kept as it was;
 * behaviour is unchanged by the move). */
static double overload_cost(const overload_input_t *in, int step_delta, const overload_rung_t *extra)
{
    double c = (double)in->src_width * in->src_height * OVERLOAD_DECODE_COST;
    for (size_t i = 0; i < in->nrungs; i++) {
        const overload_rung_t *r = &in->rungs[i];
        if (r->passthrough || (r->dropped && r != extra))
            continue;
        int p = r->preset + step_delta;
        if (p > r->base_preset)
            p = r->base_preset;
        c += overload_rung_cost(r, p < 0 ? 0 : p);
    }
    return c;
}

static bool overload_can_step_faster(const overload_input_t *in)
{
    for (size_t i = 0; i < in->nrungs; i++) {
        const overload_rung_t *r = &in->rungs[i];
        if (!r->passthrough && !r->dropped && r->preset > 0)
            return true;
    }
    return false;
}

/* Video renditions left in the master: copied ones count, dropped ones not. */
static int overload_renditions(const overload_input_t *in)
{
    int n = 0;
    for (size_t i = 0; i < in->nrungs; i++)
        n += !in->rungs[i].dropped;
    return n;
}

/* The most expensive transcoded rung still in the ladder, or -1. */
static int overload_worst(const overload_input_t *in)
{
    int worst = -1;
    for (size_t i = 0; i < in->nrungs; i++) {
        const overload_rung_t *r = &in->rungs[i];
        if (r->passthrough || r->dropped)
            continue;
        if (worst < 0 ||
            overload_rung_cost(r, r->preset) >
                overload_rung_cost(&in->rungs[worst], in->rungs[worst].preset))
            worst = (int)i;
    }
    return worst;
}

/* Behind: shed work, a preset step first, then the worst rung. */
static void overload_shed(overload_state_t *st, const overload_input_t *in,
                          overload_decision_t *out)
{
    if (overload_can_step_faster(in)) {
        st->steps++;
        st->cooldown = OVERLOAD_SHED_COOLDOWN;
        out->action = OVERLOAD_STEP_FASTER;
        return;
    }
    int worst = overload_worst(in);
    if (worst >= 0 && overload_renditions(in) > 1) {
        st->dropped[st->ndropped++] = worst;
        st->cooldown = OVERLOAD_SHED_COOLDOWN;
        /* Dropped again right after coming back: the estimate was too
         * hopeful; wait much longer before the next try. */
        if (st->restore_msn >= 0 && in->msn - st->restore_msn <= OVERLOAD_REDROP_SEGMENTS)
            st->restore_hold = OVERLOAD_REDROP_HOLD;
        out->action = OVERLOAD_DROP;
        out->rung = worst;
    } else if (!st->warned_floor) {
        st->warned_floor = true;
        out->action = OVERLOAD_FLOOR;
    }
}

/* Headroom: the last rung dropped comes back first, then the preset, each
 * only when the cost model predicts real time with a margin after it. */
static void overload_recover(overload_state_t *st, const overload_input_t *in,
                             overload_decision_t *out)
{
    double now = overload_cost(in, 0, NULL);
    if (st->ndropped > 0 && st->restore_hold == 0) {
        int i = st->dropped[st->ndropped - 1];
        double predicted = st->speed * now / overload_cost(in, 0, &in->rungs[i]);
        if (predicted >= OVERLOAD_RESTORE_SPEED) {
            st->ndropped--;
            st->cooldown = OVERLOAD_RESTORE_COOLDOWN;
            st->restore_msn = in->msn;
            st->warned_floor = false;
            out->action = OVERLOAD_RESTORE;
            out->rung = i;
        }
    } else if (st->steps > 0) {
        double predicted = st->speed * now / overload_cost(in, -1, NULL);
        if (predicted >= OVERLOAD_RESTORE_SPEED) {
            st->steps--;
            st->cooldown = OVERLOAD_RESTORE_COOLDOWN;
            out->action = OVERLOAD_STEP_SLOWER;
        }
    }
}

void overload_decide(overload_state_t *st, const overload_input_t *in, overload_decision_t *out)
{
    *out = (overload_decision_t){.evaluated = false, .action = OVERLOAD_NONE, .rung = -1};
    if (!st->have_eval) {
        st->have_eval = true;
        st->eval_pts = in->pts;
        st->eval_busy_us = in->busy_us;
        return;
    }
    double media = (double)(in->pts - st->eval_pts) / 90000.0;
    double wall = (double)(in->busy_us - st->eval_busy_us) / 1e6;
    if (media < OVERLOAD_MIN_MEDIA_S || wall <= 0)
        return;
    st->eval_pts = in->pts;
    st->eval_busy_us = in->busy_us;
    double speed = media / wall;
    if (++st->nevals == 1) {
        /* The first segment pays for encoder start-up (threads, lookahead,
         * first allocations): it says little about the steady state. */
        return;
    }
    st->speed = st->have_speed ? 0.5 * st->speed + 0.5 * speed : speed;
    st->have_speed = true;
    out->evaluated = true;
    double seg_ms = in->segment_duration * 1000;
    if (st->restore_hold > 0)
        st->restore_hold--;
    if (!in->protection) {
        /* measured and reported only */
    } else if (st->cooldown > 0) {
        st->cooldown--;
    } else if (st->speed < OVERLOAD_BEHIND_SPEED ||
               (in->lag_ms > 2 * seg_ms && st->speed < OVERLOAD_BEHIND_SPEED + 0.1)) {
        overload_shed(st, in, out);
    } else if (st->speed >= OVERLOAD_BEHIND_SPEED && in->lag_ms < seg_ms) {
        overload_recover(st, in, out);
    }
}
