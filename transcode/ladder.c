/*
 * Ladder arithmetic: built-in rungs (CONTRACT.md), --ladder parsing with the
 * config file's per-rung overrides, the x264 preset scale and rung sizing
 * for a source. Pure functions with no state; any thread.
 */
#include "ladder_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const transcode_rung_spec_t ladder_builtins[] = {
    {.name = "1080p", .width = 1920, .height = 1080, .bitrate_kbps = 5000},
    {.name = "720p", .width = 1280, .height = 720, .bitrate_kbps = 2800},
    {.name = "480p", .width = 854, .height = 480, .bitrate_kbps = 1400},
    {.name = "360p", .width = 640, .height = 360, .bitrate_kbps = 800},
};

/* Fastest first. Costs are rough x264 encode-time ratios against veryfast
 * measured on 720p content; they only steer overload decisions. */
static const struct {
    const char *name;
    double cost;
} ladder_presets[] = {
    {"ultrafast", 0.45}, {"superfast", 0.7}, {"veryfast", 1.0}, {"faster", 1.6},
    {"fast", 2.2},       {"medium", 2.7},    {"slow", 4.0},     {"slower", 7.0},
    {"veryslow", 14.0},  {"placebo", 40.0},
};
#define LADDER_NPRESETS (int)(sizeof(ladder_presets) / sizeof(ladder_presets[0]))

static void ladder_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void ladder_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int ladder_builtin(const char *name, transcode_rung_spec_t *out)
{
    for (size_t i = 0; i < sizeof(ladder_builtins) / sizeof(ladder_builtins[0]); i++) {
        if (strcmp(ladder_builtins[i].name, name) == 0) {
            *out = ladder_builtins[i];
            return 0;
        }
    }
    return -ENOENT;
}

int ladder_preset_index(const char *name)
{
    for (int i = 0; name && i < LADDER_NPRESETS; i++)
        if (strcmp(ladder_presets[i].name, name) == 0)
            return i;
    return -1;
}

const char *ladder_preset_name(int index)
{
    return index >= 0 && index < LADDER_NPRESETS ? ladder_presets[index].name : "?";
}

int ladder_preset_count(void)
{
    return LADDER_NPRESETS;
}

double ladder_preset_cost(int index)
{
    return index >= 0 && index < LADDER_NPRESETS ? ladder_presets[index].cost : 1.0;
}

bool ladder_profile_valid(const char *profile)
{
    return strcmp(profile, "baseline") == 0 || strcmp(profile, "main") == 0 ||
           strcmp(profile, "high") == 0;
}

static bool ladder_name_valid(const char *s, size_t len)
{
    if (len == 0 || len >= TRANSCODE_RUNG_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    /* "audio" is the shared audio rendition's name. */
    return !(len == 5 && memcmp(s, "audio", 5) == 0);
}

/* Applies the non-zero fields of o to r. */
static void ladder_apply(transcode_rung_spec_t *r, const transcode_rung_spec_t *o)
{
    if (o->width > 0)
        r->width = o->width;
    if (o->height > 0)
        r->height = o->height;
    if (o->bitrate_kbps > 0)
        r->bitrate_kbps = o->bitrate_kbps;
    if (o->maxrate_kbps > 0)
        r->maxrate_kbps = o->maxrate_kbps;
    if (o->profile[0])
        snprintf(r->profile, sizeof(r->profile), "%s", o->profile);
    if (o->preset[0])
        snprintf(r->preset, sizeof(r->preset), "%s", o->preset);
}

static int ladder_check(const transcode_rung_spec_t *r, char *err, size_t errlen)
{
    if (r->width < 16 || r->height < 16 || r->width > 7680 || r->height > 4320 ||
        r->width % 2 || r->height % 2) {
        ladder_err(err, errlen, "rung %s: size %dx%d must be even, 16x16 to 7680x4320", r->name,
                   r->width, r->height);
        return -EINVAL;
    }
    if (r->height > r->width) {
        ladder_err(err, errlen, "rung %s: give the landscape box (width >= height); portrait "
                   "sources are handled by turning it", r->name);
        return -EINVAL;
    }
    if (r->bitrate_kbps < 50 || r->bitrate_kbps > 100000) {
        ladder_err(err, errlen, "rung %s: bitrate %d kb/s is out of range (50 to 100000)",
                   r->name, r->bitrate_kbps);
        return -EINVAL;
    }
    if (r->maxrate_kbps && (r->maxrate_kbps < r->bitrate_kbps || r->maxrate_kbps > 200000)) {
        ladder_err(err, errlen, "rung %s: maxrate %d kb/s must be at least the bitrate",
                   r->name, r->maxrate_kbps);
        return -EINVAL;
    }
    if (r->profile[0] && !ladder_profile_valid(r->profile)) {
        ladder_err(err, errlen, "rung %s: profile '%s' is not baseline, main or high", r->name,
                   r->profile);
        return -EINVAL;
    }
    if (r->preset[0] && ladder_preset_index(r->preset) < 0) {
        ladder_err(err, errlen, "rung %s: '%s' is not an x264 preset", r->name, r->preset);
        return -EINVAL;
    }
    return 0;
}

static int ladder_cmp(const void *a, const void *b)
{
    const transcode_rung_spec_t *x = a, *y = b;
    if (x->height != y->height)
        return y->height - x->height;
    return y->bitrate_kbps - x->bitrate_kbps;
}

int ladder_parse(const char *list, const transcode_rung_spec_t *overrides, size_t noverrides,
                 transcode_rung_spec_t *out, size_t *nout, char *err, size_t errlen)
{
    *nout = 0;
    if (!list)
        list = LADDER_DEFAULT;
    for (size_t i = 0; i < noverrides; i++) {
        if (!ladder_name_valid(overrides[i].name, strlen(overrides[i].name))) {
            ladder_err(err, errlen, "rung name '%s' must be 1-15 characters of A-Z a-z 0-9 _ - "
                       "(and not 'audio')", overrides[i].name);
            return -EINVAL;
        }
    }
    const char *p = list;
    while (*p) {
        while (*p == ',' || *p == ' ')
            p++;
        if (!*p)
            break;
        const char *end = p;
        while (*end && *end != ',' && *end != ' ')
            end++;
        size_t len = (size_t)(end - p);
        if (!ladder_name_valid(p, len)) {
            ladder_err(err, errlen, "--ladder: '%.*s' is not a rung name", (int)(len > 40 ? 40 : len), p);
            return -EINVAL;
        }
        transcode_rung_spec_t r;
        memset(&r, 0, sizeof(r));
        memcpy(r.name, p, len);
        bool known = ladder_builtin(r.name, &r) == 0;
        for (size_t i = 0; i < noverrides; i++) {
            if (strcmp(overrides[i].name, r.name) == 0) {
                ladder_apply(&r, &overrides[i]);
                known = true;
            }
        }
        if (!known) {
            ladder_err(err, errlen, "--ladder: unknown rung '%s' (built in: 1080p, 720p, 480p, "
                       "360p; others need a [rung.%s] section with width, height, bitrate)",
                       r.name, r.name);
            return -EINVAL;
        }
        int ret = ladder_check(&r, err, errlen);
        if (ret < 0)
            return ret;
        bool dup = false;
        for (size_t i = 0; i < *nout; i++)
            dup = dup || strcmp(out[i].name, r.name) == 0;
        if (!dup) {
            if (*nout == TRANSCODE_RUNGS_MAX) {
                ladder_err(err, errlen, "--ladder: at most %d rungs", TRANSCODE_RUNGS_MAX);
                return -EINVAL;
            }
            out[(*nout)++] = r;
        }
        p = end;
    }
    if (*nout == 0) {
        ladder_err(err, errlen, "--ladder: no rung given");
        return -EINVAL;
    }
    qsort(out, *nout, sizeof(*out), ladder_cmp);
    return 0;
}

static int ladder_even(double x)
{
    int v = 2 * (int)lround(x / 2.0);
    return v < 2 ? 2 : v;
}

bool ladder_fit(const transcode_rung_spec_t *r, int src_w, int src_h, int *out_w, int *out_h)
{
    *out_w = *out_h = 0;
    if (src_w <= 0 || src_h <= 0)
        return false;
    bool portrait = src_h > src_w;
    int src_short = portrait ? src_w : src_h, src_long = portrait ? src_h : src_w;
    if (r->height > src_short)
        return false;
    int s = r->height;
    int l = ladder_even((double)src_long * s / src_short);
    if (l > r->width) { /* wider than the box: fit the long side instead */
        l = r->width;
        s = ladder_even((double)src_short * l / src_long);
    }
    *out_w = portrait ? s : l;
    *out_h = portrait ? l : s;
    return true;
}

int ladder_rung_threads(int threads, int w, int h, int top_w, int top_h)
{
    if (threads <= 1 || top_w <= 0 || top_h <= 0)
        return 1;
    return 4.0 * w * h >= (double)top_w * top_h ? threads : 1;
}

int ladder_scale_source(int w, int h, const int *cand_w, const int *cand_h, size_t n)
{
    int best = -1;
    for (size_t i = 0; i < n; i++) {
        if (cand_w[i] <= 0 || cand_h[i] <= 0 || cand_w[i] < w ||
            cand_h[i] < LADDER_SCALE_FROM_RATIO * h)
            continue;
        if (best < 0 || (double)cand_w[i] * cand_h[i] < (double)cand_w[best] * cand_h[best])
            best = (int)i;
    }
    return best;
}
