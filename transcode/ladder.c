/*
 * Ladder arithmetic: built-in rungs (CONTRACT.md), --ladder parsing with the
 * config file's per-rung overrides, the grammar of a stream's own ladder
 * (the API's and the webhook answer's "ladder", transcode.h) and how it
 * resolves against the server's, the x264 preset scale and rung sizing for
 * a source. Pure functions with no state; any thread.
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

/* ---- a stream's own ladder ("ladder" in the API and the webhook answer) ---- */

#define LADDER_BUILTINS (sizeof(ladder_builtins) / sizeof(ladder_builtins[0]))

_Static_assert(TRANSCODE_LADDER_RUNGS_MAX == LADDER_BUILTINS,
               "a stream's ladder has at most the built-in rung count");

/* Whether name is a rung a stream may ask for: built in, or defined by a
 * [rung.NAME] section. */
static bool ladder_rung_known(const char *name, const transcode_rung_spec_t *defined,
                              size_t ndefined)
{
    transcode_rung_spec_t r;
    if (ladder_builtin(name, &r) == 0)
        return true;
    for (size_t i = 0; i < ndefined; i++)
        if (strcmp(defined[i].name, name) == 0)
            return true;
    return false;
}

/* A name from the request for an error message: at most 24 bytes, printable
 * ASCII only (the rest as '?'), so that a message never carries control
 * bytes or a cut UTF-8 sequence. */
static void ladder_quote(char out[32], const char *s)
{
    size_t n = 0;
    for (; s[n] && n < 24; n++)
        out[n] = s[n] >= 0x20 && s[n] < 0x7f && s[n] != '"' ? s[n] : '?';
    if (s[n])
        out[n++] = '.', out[n++] = '.', out[n++] = '.';
    out[n] = '\0';
}

static int ladder_json_rung(const json_t *v, size_t i, const transcode_rung_spec_t *defined,
                            size_t ndefined, transcode_ladder_rung_t *out, char *err,
                            size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const json_t *jname = v;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            if (strcmp(k, "name") != 0 && strcmp(k, "bitrate_kbps") != 0) {
                char q[32];
                ladder_quote(q, k);
                ladder_err(err, errlen, "ladder.rungs[%zu]: unknown field \"%s\" (name, "
                           "bitrate_kbps)", i, q);
                return -EINVAL;
            }
        }
        jname = json_object_get(v, "name");
        if (!json_is_string(jname)) {
            ladder_err(err, errlen, "ladder.rungs[%zu].name must be a rung name (a string)", i);
            return -EINVAL;
        }
        const json_t *jb = json_object_get(v, "bitrate_kbps");
        if (jb && !json_is_null(jb)) {
            if (!json_is_integer(jb)) {
                ladder_err(err, errlen, "ladder.rungs[%zu].bitrate_kbps must be a whole number "
                           "of kb/s", i);
                return -EINVAL;
            }
            json_int_t kbps = json_integer_value(jb);
            if (kbps < TRANSCODE_LADDER_KBPS_MIN || kbps > TRANSCODE_LADDER_KBPS_MAX) {
                ladder_err(err, errlen, "ladder.rungs[%zu].bitrate_kbps: %lld is out of range "
                           "(%d to %d kb/s)", i, (long long)kbps, TRANSCODE_LADDER_KBPS_MIN,
                           TRANSCODE_LADDER_KBPS_MAX);
                return -EINVAL;
            }
            out->bitrate_kbps = (int)kbps;
        }
    } else if (!json_is_string(v)) {
        ladder_err(err, errlen, "ladder.rungs[%zu] must be a rung name or {\"name\": ..., "
                   "\"bitrate_kbps\": ...}", i);
        return -EINVAL;
    }
    const char *name = json_string_value(jname);
    size_t len = json_string_length(jname);
    if (!ladder_name_valid(name, len) || strlen(name) != len ||
        !ladder_rung_known(name, defined, ndefined)) {
        char q[32];
        ladder_quote(q, name);
        ladder_err(err, errlen, "ladder.rungs[%zu]: unknown rung \"%s\" (1080p, 720p, 480p, "
                   "360p, or one the configuration defines with [rung.NAME])", i, q);
        return -EINVAL;
    }
    memcpy(out->name, name, len + 1);
    return 0;
}

int transcode_ladder_from_json(const json_t *v, const transcode_rung_spec_t *defined,
                               size_t ndefined, transcode_ladder_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->passthrough = -1;
    if (!json_is_object(v)) {
        ladder_err(err, errlen, "ladder must be an object like {\"rungs\": [\"720p\", "
                   "\"360p\"], \"preset\": \"veryfast\", \"passthrough\": \"auto\"}");
        return -EINVAL;
    }
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x)
    {
        if (strcmp(k, "rungs") != 0 && strcmp(k, "preset") != 0 &&
            strcmp(k, "passthrough") != 0) {
            char q[32];
            ladder_quote(q, k);
            ladder_err(err, errlen, "ladder: unknown field \"%s\" (rungs, preset, passthrough)",
                       q);
            return -EINVAL;
        }
    }
    const json_t *jr = json_object_get(v, "rungs");
    if (jr && !json_is_null(jr)) {
        if (!json_is_array(jr)) {
            ladder_err(err, errlen, "ladder.rungs must be a list of rung names or {\"name\", "
                       "\"bitrate_kbps\"} objects");
            return -EINVAL;
        }
        size_t n = json_array_size(jr);
        if (n == 0) {
            ladder_err(err, errlen, "ladder.rungs needs at least one rung (or leave it out: "
                       "the server's ladder)");
            return -EINVAL;
        }
        if (n > TRANSCODE_LADDER_RUNGS_MAX) {
            ladder_err(err, errlen, "ladder.rungs: %zu rungs, at most %d", n,
                       TRANSCODE_LADDER_RUNGS_MAX);
            return -EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
            transcode_ladder_rung_t *r = &out->rungs[i];
            int ret = ladder_json_rung(json_array_get(jr, i), i, defined, ndefined, r, err,
                                       errlen);
            if (ret < 0)
                return ret;
            for (size_t j = 0; j < i; j++) {
                if (strcmp(out->rungs[j].name, r->name) == 0) {
                    ladder_err(err, errlen, "ladder.rungs[%zu]: \"%s\" is listed twice", i,
                               r->name);
                    return -EINVAL;
                }
            }
            out->nrungs++;
        }
    }
    const json_t *jp = json_object_get(v, "preset");
    if (jp && !json_is_null(jp)) {
        const char *p = json_string_value(jp);
        if (!p || ladder_preset_index(p) < 0 || strlen(p) >= sizeof(out->preset)) {
            char q[32];
            ladder_quote(q, p ? p : "(not a string)");
            ladder_err(err, errlen, "ladder.preset: \"%s\" is not an x264 preset (ultrafast, "
                       "superfast, veryfast, faster, fast, medium, slow, slower, veryslow, "
                       "placebo)", q);
            return -EINVAL;
        }
        snprintf(out->preset, sizeof(out->preset), "%s", p);
    }
    const json_t *jt = json_object_get(v, "passthrough");
    if (jt && !json_is_null(jt)) {
        const char *p = json_string_value(jt);
        if (p && strcmp(p, "auto") == 0) {
            out->passthrough = TRANSCODE_PASSTHROUGH_AUTO;
        } else if (p && strcmp(p, "never") == 0) {
            out->passthrough = TRANSCODE_PASSTHROUGH_NEVER;
        } else {
            ladder_err(err, errlen, "ladder.passthrough must be \"auto\" or \"never\"");
            return -EINVAL;
        }
    }
    return 0;
}

int transcode_ladder_parse(const char *text, const transcode_rung_spec_t *defined,
                           size_t ndefined, transcode_ladder_t *out, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *v = text ? json_loads(text, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (!v) {
        memset(out, 0, sizeof(*out));
        out->passthrough = -1;
        ladder_err(err, errlen, "ladder is not valid JSON");
        return -EINVAL;
    }
    int ret = transcode_ladder_from_json(v, defined, ndefined, out, err, errlen);
    json_decref(v);
    return ret;
}

json_t *transcode_ladder_to_json(const transcode_ladder_t *l)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    bool ok = true;
    if (l->nrungs > 0) {
        json_t *arr = json_array();
        ok = arr && json_object_set_new(o, "rungs", arr) == 0;
        for (size_t i = 0; ok && i < l->nrungs && i < TRANSCODE_LADDER_RUNGS_MAX; i++) {
            const transcode_ladder_rung_t *r = &l->rungs[i];
            json_t *e = r->bitrate_kbps > 0 ? json_pack("{s:s, s:i}", "name", r->name,
                                                        "bitrate_kbps", r->bitrate_kbps)
                                            : json_string(r->name);
            ok = e && json_array_append_new(arr, e) == 0;
        }
    }
    if (ok && l->preset[0])
        ok = json_object_set_new(o, "preset", json_string(l->preset)) == 0;
    if (ok && l->passthrough >= 0)
        ok = json_object_set_new(o, "passthrough",
                                 json_string(l->passthrough == TRANSCODE_PASSTHROUGH_NEVER
                                                 ? "never"
                                                 : "auto")) == 0;
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int transcode_ladder_format(const transcode_ladder_t *l, char out[TRANSCODE_LADDER_TEXT_MAX])
{
    out[0] = '\0';
    json_t *o = transcode_ladder_to_json(l);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return -ENOMEM;
    size_t n = strlen(text);
    int ret = 0;
    if (n >= TRANSCODE_LADDER_TEXT_MAX)
        ret = -EMSGSIZE;
    else
        memcpy(out, text, n + 1);
    free(text);
    return ret;
}

int ladder_resolve(const transcode_ladder_t *l, const transcode_rung_spec_t *server,
                   size_t nserver, const transcode_rung_spec_t *overrides, size_t noverrides,
                   transcode_rung_spec_t *out, size_t *nout, char *err, size_t errlen)
{
    *nout = 0;
    if (l->nrungs == 0) {
        if (nserver == 0 || nserver > TRANSCODE_RUNGS_MAX) {
            ladder_err(err, errlen, "no server ladder");
            return -EINVAL;
        }
        memcpy(out, server, nserver * sizeof(*out));
        *nout = nserver;
    } else {
        /* The names as a --ladder list, so that a rung means here what it
         * means there (built in, then [rung.NAME] on top, then checked). */
        char list[TRANSCODE_LADDER_RUNGS_MAX * TRANSCODE_RUNG_NAME_MAX + 8];
        size_t n = 0;
        list[0] = '\0';
        for (size_t i = 0; i < l->nrungs && i < TRANSCODE_LADDER_RUNGS_MAX; i++)
            n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? "," : "",
                                  l->rungs[i].name);
        int ret = ladder_parse(list, overrides, noverrides, out, nout, err, errlen);
        if (ret < 0)
            return ret;
        for (size_t i = 0; i < *nout; i++) {
            for (size_t j = 0; j < l->nrungs; j++) {
                int kbps = l->rungs[j].bitrate_kbps;
                if (strcmp(out[i].name, l->rungs[j].name) != 0 || kbps <= 0)
                    continue;
                out[i].bitrate_kbps = kbps;
                if (out[i].maxrate_kbps && out[i].maxrate_kbps < kbps)
                    out[i].maxrate_kbps = 0;
            }
        }
        qsort(out, *nout, sizeof(*out), ladder_cmp);
    }
    if (l->preset[0])
        for (size_t i = 0; i < *nout; i++)
            out[i].preset[0] = '\0';
    return 0;
}
