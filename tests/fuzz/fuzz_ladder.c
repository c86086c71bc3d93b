/* Fuzz target: a stream's own ladder (transcode/ladder.c), as the admin API
 * and the publish webhook's answer hand it over: the whole input is the
 * JSON text of the "ladder" value. Checks contracts: a refusal is -EINVAL
 * with a reason of printable ASCII; an accepted ladder has 0..4 known,
 * distinct rungs with bit rates in range, a known preset and passthrough,
 * formats into its canonical text (which reads back to the same ladder),
 * and resolves against the server's ladder into exactly its rungs, tallest
 * first, with its bit rates. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ladder_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const transcode_rung_spec_t defined[] = {
    {.name = "540p", .width = 960, .height = 540, .bitrate_kbps = 2000},
    {.name = "720p", .bitrate_kbps = 2500, .maxrate_kbps = 3000, .preset = "faster"},
};
#define NDEFINED (sizeof(defined) / sizeof(defined[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *v = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (!v)
        return 0;
    transcode_ladder_t l;
    char err[256] = "";
    int rc = transcode_ladder_from_json(v, defined, NDEFINED, &l, err, sizeof(err));
    json_decref(v);
    if (rc < 0) {
        if (rc != -EINVAL || !err[0])
            abort();
        for (const char *p = err; *p; p++)
            if (*p < 0x20 || *p > 0x7e)
                abort();
        return 0;
    }
    if (rc != 0 || l.nrungs > TRANSCODE_LADDER_RUNGS_MAX || l.passthrough < -1 ||
        l.passthrough > TRANSCODE_PASSTHROUGH_NEVER ||
        (l.preset[0] && ladder_preset_index(l.preset) < 0))
        abort();
    for (size_t i = 0; i < l.nrungs; i++) {
        const transcode_ladder_rung_t *r = &l.rungs[i];
        if (r->bitrate_kbps != 0 && (r->bitrate_kbps < TRANSCODE_LADDER_KBPS_MIN ||
                                     r->bitrate_kbps > TRANSCODE_LADDER_KBPS_MAX))
            abort();
        for (size_t j = 0; j < i; j++)
            if (strcmp(l.rungs[j].name, r->name) == 0)
                abort();
    }
    char text[TRANSCODE_LADDER_TEXT_MAX];
    transcode_ladder_t back;
    if (transcode_ladder_format(&l, text) != 0 ||
        transcode_ladder_parse(text, defined, NDEFINED, &back, err, sizeof(err)) != 0 ||
        memcmp(&back, &l, sizeof(l)) != 0)
        abort();
    transcode_rung_spec_t server[TRANSCODE_RUNGS_MAX], out[TRANSCODE_RUNGS_MAX];
    size_t nserver = 0, n = 0;
    if (ladder_parse("720p,360p", defined, NDEFINED, server, &nserver, err, sizeof(err)) != 0 ||
        ladder_resolve(&l, server, nserver, defined, NDEFINED, out, &n, err, sizeof(err)) != 0)
        abort();
    if (n != (l.nrungs ? l.nrungs : nserver))
        abort();
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && out[i].height > out[i - 1].height)
            abort();
        if (l.preset[0] && out[i].preset[0])
            abort();
        for (size_t j = 0; j < l.nrungs; j++)
            if (strcmp(l.rungs[j].name, out[i].name) == 0 && l.rungs[j].bitrate_kbps &&
                out[i].bitrate_kbps != l.rungs[j].bitrate_kbps)
                abort();
    }
    return 0;
}
