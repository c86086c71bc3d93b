/*
 * The ladder's arithmetic, apart from any codec: built-in rungs, the
 * --ladder list with per-rung overrides, the x264 preset scale that overload
 * protection steps along, and the output size of a rung for a given source
 * (aspect kept, even dimensions, no upscaling, portrait sources rotated).
 *
 * Pure functions on caller-owned data; any thread.
 */
#ifndef SLUICE_TRANSCODE_LADDER_INTERNAL_H
#define SLUICE_TRANSCODE_LADDER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "transcode.h"

#define LADDER_DEFAULT "1080p,720p,480p,360p"

/* Fills *out with a built-in rung (1080p, 720p, 480p, 360p). -ENOENT if
 * there is none of that name. */
int ladder_builtin(const char *name, transcode_rung_spec_t *out);

/* Resolves a comma-separated list of rung names against the overrides
 * (which may also define new rungs) and the built-in rungs. The result is
 * sorted by height, tallest first, without duplicates. Returns 0, or
 * -EINVAL with a one-line reason in err. */
int ladder_parse(const char *list, const transcode_rung_spec_t *overrides, size_t noverrides,
                 transcode_rung_spec_t *out, size_t *nout, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * The rungs one broadcast of a stream with its own ladder l uses: l's rung
 * names resolved like --ladder (built-in rungs with the [rung.NAME]
 * overrides), each with l's bit rate where it gives one (a configured
 * maxrate below it is dropped: 1.5 x the bit rate then), or the server's
 * ladder (server[0..nserver), already resolved) when l names no rungs. When
 * l gives a preset, the rungs' own [rung.NAME] presets give way to it.
 * Sorted tallest first. 0, or -EINVAL with the reason in err (a rung the
 * configuration no longer defines).
 */
int ladder_resolve(const transcode_ladder_t *l, const transcode_rung_spec_t *server,
                   size_t nserver, const transcode_rung_spec_t *overrides, size_t noverrides,
                   transcode_rung_spec_t *out, size_t *nout, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* x264 presets from fastest (0, ultrafast) to slowest; -1 if unknown. */
int ladder_preset_index(const char *name);
const char *ladder_preset_name(int index);
int ladder_preset_count(void);
/* Rough encoding cost of a preset relative to veryfast (1.0), for
 * predicting what a preset step or a rung drop buys. */
double ladder_preset_cost(int index);

bool ladder_profile_valid(const char *profile);

/*
 * The size of rung r for a source of src_w x src_h. The rung's height names
 * the short side of the picture (a portrait 1080x1920 source is "1080p");
 * the long side follows the source's aspect ratio, and the picture is fitted
 * into the rung's box (width x height, turned for portrait) when it would
 * be wider. Both sides are even. Returns false when the rung is taller than
 * the source's short side (no upscaling).
 */
bool ladder_fit(const transcode_rung_spec_t *r, int src_w, int src_h, int *out_w, int *out_h);

/*
 * x264 threads for a rung of w x h when the largest transcoded rung is
 * top_w x top_h and the stream may use `threads`. Rungs of at least a
 * quarter of the largest one's area get them all: their frame threads let
 * encoding overlap with the worker. Smaller rungs get one thread: they
 * encode synchronously in the worker, with none of the extra frames x264
 * buffers for frame threads and the lookahead thread.
 */
int ladder_rung_threads(int threads, int w, int h, int top_w, int top_h);

/*
 * Which picture a rung of w x h is scaled from: the index of the smallest
 * of the n candidate pictures (cand_w[i] x cand_h[i]; a size of 0 means the
 * picture is not there) that is at least LADDER_SCALE_FROM_RATIO times the
 * rung's height and no narrower than the rung, or -1 for the decoded
 * source. A smaller input makes libswscale's work shrink with it. The ratio
 * is 2 because quality says so (tests/bench/ladder.sh, PSNR against the
 * source scaled directly): 360p from the 720p picture (2:1) scores within
 * 0.05 dB of scaling from 1080p, but 480p from 720p (1.5:1, a second
 * fractional resampling) loses 0.35 dB.
 */
#define LADDER_SCALE_FROM_RATIO 2.0
int ladder_scale_source(int w, int h, const int *cand_w, const int *cand_h, size_t n);

#endif
