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

#endif
