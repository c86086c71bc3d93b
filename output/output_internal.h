/*
 * The simulcast engine's pure parts (output.c uses them; the unit tests
 * call them): each output's clock, the retry schedule, the bit-rate window
 * and the status text. No I/O, no threads: the caller owns every struct.
 */
#ifndef SLUICE_OUTPUT_OUTPUT_INTERNAL_H
#define SLUICE_OUTPUT_OUTPUT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "media.h"
#include "output_def.h"

/* ---- an output's clock ----------------------------------------------------
 * Input timestamps (ms) of one feed -> the output's timeline: it starts at
 * 0 on each connection, every track's dts strictly increases (what the
 * muxers require), and a jump of the input (a publisher back after a drop
 * restarts its clock near 0; a publisher's own glitch) continues
 * OUTPUT_REBASE_GAP_MS after the newest dts sent instead of going back or
 * leaving a hole. A jump is a dts more than OUTPUT_JUMP_BACK_MS before or
 * OUTPUT_JUMP_FORWARD_MS after the newest of its own track, measured on the
 * output's timeline so that both tracks share one offset (the other
 * track's first packet after the jump lands near the new base and is not
 * a jump again). */
#define OUTPUT_JUMP_BACK_MS 1000
#define OUTPUT_JUMP_FORWARD_MS 10000
#define OUTPUT_REBASE_GAP_MS 40
#define OUTPUT_TRACKS 2 /* 0 video, 1 audio */

typedef struct output_clock {
    bool have;
    int64_t offset_ms;
    bool have_out[OUTPUT_TRACKS];
    int64_t last_out_ms[OUTPUT_TRACKS];
} output_clock_t;

void output_clock_reset(output_clock_t *c);
/* The output timestamps of a packet of `track` with input dts and pts
 * (pts < dts is taken as pts = dts). Returns true when this packet
 * rebased the clock (a jump). */
bool output_clock_map(output_clock_t *c, int track, int64_t dts, int64_t pts, int64_t *dts_out,
                      int64_t *pts_out);

/* ---- containers --------------------------------------------------------------
 * Whether video of this codec can be sent with this scheme's container
 * (FLV for rtmp(s): H.264 only in libavformat 5.1; MPEG-TS for srt: H.264
 * and HEVC); else false with the reason for "failed" in why. */
bool output_codec_fits(output_scheme_t scheme, media_codec_t video, char *why, size_t len);

/* ---- retries ----------------------------------------------------------------
 * The wait before attempt n + 1 after n failures in a row (n >= 1): 1 s,
 * 2 s, 4 s, 8 s, then OUTPUT_BACKOFF_MAX_MS for ever. */
#define OUTPUT_BACKOFF_FIRST_MS 1000
#define OUTPUT_BACKOFF_MAX_MS 10000
int64_t output_backoff_ms(unsigned failures);

/* ---- bit rate over the last OUTPUT_RATE_WINDOW_S whole seconds ---------- */
#define OUTPUT_RATE_WINDOW_S 5
typedef struct output_rate {
    int64_t sec[OUTPUT_RATE_WINDOW_S + 1];   /* which second (mono ms / 1000) a slot holds */
    uint64_t bytes[OUTPUT_RATE_WINDOW_S + 1];
} output_rate_t;

void output_rate_init(output_rate_t *r);
void output_rate_add(output_rate_t *r, int64_t now_ms, uint64_t bytes);
/* kb/s over the whole seconds before now_ms's second (the current one is
 * still filling). */
int output_rate_kbps(const output_rate_t *r, int64_t now_ms);

/* ---- status text (meta field "outputs", docs/simulcast.md) -------------- */
typedef enum output_state {
    OUTPUT_STATE_CONNECTING = 0,
    OUTPUT_STATE_LIVE,
    OUTPUT_STATE_RETRYING,
    OUTPUT_STATE_FAILED,
} output_state_t;

const char *output_state_name(output_state_t s);

typedef struct output_status {
    char id[OUTPUT_ID_MAX];
    char masked_url[OUTPUT_URL_MAX];
    output_state_t state;
    uint64_t bytes;
    int bitrate_kbps;
    uint64_t dropped_packets;
    uint64_t skips;
    int64_t connected_since_ms; /* wall clock; 0: not connected */
    char last_error[256];       /* "": none */
    uint64_t retries;
} output_status_t;

/* The JSON object keyed by output id; malloc'd, NULL on OOM. */
char *output_status_format(const output_status_t *list, size_t n);

#endif
