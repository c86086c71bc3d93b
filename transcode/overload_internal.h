/*
 * Overload protection's policy, apart from its effects: at each segment
 * start the pipeline hands over what it measured (media time, the worker's
 * busy time, the queue's lag) and the ladder as it stands; overload_decide()
 * smooths the speed, keeps the cooldown and restore-hold hysteresis, and
 * answers with one action. The pipeline applies it (encoders reopened or
 * closed, the packager told, threads rebalanced) and logs it.
 *
 * The policy: slower than real time, or a growing queue while barely real
 * time, steps the x264 preset one faster; at the fastest preset, the most
 * expensive transcoded rung still in the ladder is dropped, as long as
 * another video rendition stays. With headroom predicted from a rough cost
 * model (ladder_preset_cost x area, plus decoding), the last rung dropped
 * comes back first, then a preset step is undone. After a step or drop the
 * next decision waits one segment start; after a restore or step back, two.
 * A drop within four segments of a restore (the estimate was too hopeful)
 * holds the next restore for fifteen segment starts.
 *
 * Pure: no clock, no I/O, no logging. The state is the caller's; any thread.
 */
#ifndef SLUICE_TRANSCODE_OVERLOAD_INTERNAL_H
#define SLUICE_TRANSCODE_OVERLOAD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transcode.h"

#define OVERLOAD_BEHIND_SPEED 1.0  /* under it: behind real time */
#define OVERLOAD_RESTORE_SPEED 1.2 /* predicted speed a restore or step back needs */

typedef enum overload_action {
    OVERLOAD_NONE = 0,
    OVERLOAD_STEP_FASTER, /* every transcoded rung one preset faster (state.steps + 1) */
    OVERLOAD_DROP,        /* rung `rung` leaves new segments */
    OVERLOAD_RESTORE,     /* rung `rung` (the last one dropped) comes back */
    OVERLOAD_STEP_SLOWER, /* one preset step undone (state.steps - 1) */
    OVERLOAD_FLOOR,       /* behind, and nothing left to shed (said once until a restore) */
} overload_action_t;

/* One rung of the ladder as it stands. */
typedef struct overload_rung {
    int width, height;
    bool passthrough; /* the source copied: costs nothing, never dropped */
    bool dropped;
    int preset;       /* its x264 preset index now (ladder_preset_index) */
    int base_preset;  /* the configured one */
} overload_rung_t;

typedef struct overload_input {
    int64_t pts;      /* of the picture that starts segment msn, 1/90000 s */
    int64_t busy_us;  /* the worker's busy time so far (any origin) */
    int64_t msn;
    int64_t lag_ms;   /* the input queue's lag */
    double segment_duration; /* s */
    bool protection;  /* false: measured and reported only */
    int src_width, src_height;
    const overload_rung_t *rungs; /* nrungs <= TRANSCODE_RUNGS_MAX */
    size_t nrungs;
} overload_input_t;

typedef struct overload_state {
    /* Speed: media time over busy time since the last evaluation. */
    bool have_eval;
    int64_t eval_pts;
    int64_t eval_busy_us;
    int nevals;
    bool have_speed;
    double speed;     /* smoothed; valid when have_speed */
    /* What protection has done. */
    int steps;        /* preset steps faster than configured */
    int dropped[TRANSCODE_RUNGS_MAX]; /* rung indexes in the order they were dropped */
    int ndropped;
    /* Hysteresis. */
    int cooldown;     /* segment starts to wait before the next decision */
    int restore_hold; /* segment starts before a restore may be tried again */
    int64_t restore_msn; /* segment of the last restore (-1: none) */
    bool warned_floor;
} overload_state_t;

typedef struct overload_decision {
    bool evaluated;   /* a speed was measured (state.speed is new): report it */
    overload_action_t action;
    int rung;         /* DROP, RESTORE: index into the input's rungs; else -1 */
} overload_decision_t;

void overload_state_init(overload_state_t *st);

/*
 * One segment start. Updates *st (speed, hysteresis, steps, the drop
 * order) as if the action were applied, and fills *out. The first call
 * only starts the measurement; a window under 0.4 s of media, or the first
 * full one (encoder start-up), is not evaluated (out->evaluated false,
 * OVERLOAD_NONE).
 */
void overload_decide(overload_state_t *st, const overload_input_t *in, overload_decision_t *out);

#endif
