/* Playlist reading for the viewer simulator (tests/load/viewer_sim.c).
 *
 * The input is whatever an origin sent, so the reader treats it as untrusted:
 * it walks lines with explicit lengths (no NUL terminator assumed, NULs in the
 * input are just bytes), copies every value it keeps into bounded storage,
 * caps the number of variants, items and maps, and rejects a playlist over
 * VSIM_PLAYLIST_MAX_BYTES. Runs on the simulator's single thread. */
#include "vsim_playlist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *p;
    size_t n;
} vsim_span_t;

static bool span_prefix(vsim_span_t s, const char *prefix, vsim_span_t *rest)
{
    size_t k = strlen(prefix);
    if (s.n < k || memcmp(s.p, prefix, k) != 0)
        return false;
    if (rest) {
        rest->p = s.p + k;
        rest->n = s.n - k;
    }
    return true;
}

static bool span_eq(vsim_span_t s, const char *lit)
{
    return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

/* Next line of [*pos, end): without its "\n" or "\r\n"; false at the end. */
static bool next_line(const char **pos, const char *end, vsim_span_t *line)
{
    if (*pos >= end)
        return false;
    const char *nl = memchr(*pos, '\n', (size_t)(end - *pos));
    const char *stop = nl ? nl : end;
    line->p = *pos;
    line->n = (size_t)(stop - *pos);
    if (line->n > 0 && line->p[line->n - 1] == '\r')
        line->n--;
    *pos = nl ? nl + 1 : end;
    return true;
}

/* Finds NAME's value in an attribute list "A=1,B="x,y",C=YES"; quotes are
 * stripped from the value. */
static bool attr_find(vsim_span_t attrs, const char *name, vsim_span_t *val)
{
    const char *p = attrs.p, *end = attrs.p + attrs.n;
    size_t nlen = strlen(name);
    while (p < end) {
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (!eq)
            return false;
        const char *vs = eq + 1, *ve;
        bool quoted = vs < end && *vs == '"';
        if (quoted) {
            vs++;
            ve = memchr(vs, '"', (size_t)(end - vs));
            if (!ve)
                return false; /* unterminated quote: malformed, nothing more to find */
        } else {
            ve = memchr(vs, ',', (size_t)(end - vs));
            if (!ve)
                ve = end;
        }
        if ((size_t)(eq - p) == nlen && memcmp(p, name, nlen) == 0) {
            val->p = vs;
            val->n = (size_t)(ve - vs);
            return true;
        }
        p = ve + (quoted ? 1 : 0);
        while (p < end && *p != ',')
            p++;
        if (p < end)
            p++;
    }
    return false;
}

/* Copies a span into a NUL-terminated buffer; false if it does not fit or
 * holds a NUL. */
static bool span_copy(vsim_span_t s, char *out, size_t outlen)
{
    if (s.n >= outlen || memchr(s.p, '\0', s.n))
        return false;
    memcpy(out, s.p, s.n);
    out[s.n] = '\0';
    return true;
}

static bool span_double(vsim_span_t s, double *out)
{
    char buf[48];
    if (s.n == 0 || !span_copy(s, buf, sizeof(buf)))
        return false;
    char *e;
    double v = strtod(buf, &e);
    if (e == buf || v < 0 || v > 1e9 || v != v)
        return false;
    *out = v;
    return true;
}

static bool span_int64(vsim_span_t s, int64_t *out)
{
    char buf[24];
    if (s.n == 0 || !span_copy(s, buf, sizeof(buf)))
        return false;
    char *e;
    errno = 0;
    long long v = strtoll(buf, &e, 10);
    if (errno || e == buf || v < 0)
        return false;
    *out = v;
    return true;
}

static int check_header(const char *text, size_t len)
{
    if (len > VSIM_PLAYLIST_MAX_BYTES)
        return -EMSGSIZE;
    const char *pos = text;
    vsim_span_t line;
    if (!next_line(&pos, text + len, &line) || !span_eq(line, "#EXTM3U"))
        return -EPROTO;
    return 0;
}

int vsim_master_parse(const char *text, size_t len, vsim_master_t *out)
{
    memset(out, 0, sizeof(*out));
    int rc = check_header(text, len);
    if (rc)
        return rc;
    const char *pos = text, *end = text + len;
    vsim_span_t line, rest, v;
    bool want_uri = false;
    while (next_line(&pos, end, &line)) {
        if (line.n == 0)
            continue;
        if (span_prefix(line, "#EXT-X-MEDIA:", &rest)) {
            if (!attr_find(rest, "TYPE", &v) || !span_eq(v, "AUDIO") || !attr_find(rest, "URI", &v))
                continue;
            if (out->naudio == VSIM_MAX_AUDIO)
                return -EMSGSIZE;
            vsim_audio_t *a = &out->audio[out->naudio];
            if (!span_copy(v, a->uri, sizeof(a->uri)))
                return -EMSGSIZE;
            if (attr_find(rest, "GROUP-ID", &v) && !span_copy(v, a->group, sizeof(a->group)))
                return -EMSGSIZE;
            a->is_default = attr_find(rest, "DEFAULT", &v) && span_eq(v, "YES");
            out->naudio++;
        } else if (span_prefix(line, "#EXT-X-STREAM-INF:", &rest)) {
            if (out->nvariants == VSIM_MAX_VARIANTS)
                return -EMSGSIZE;
            vsim_variant_t *var = &out->variants[out->nvariants];
            memset(var, 0, sizeof(*var));
            if (attr_find(rest, "BANDWIDTH", &v) && !span_int64(v, &var->bandwidth))
                return -EPROTO;
            if (attr_find(rest, "AUDIO", &v) && !span_copy(v, var->audio_group, sizeof(var->audio_group)))
                return -EMSGSIZE;
            want_uri = true;
        } else if (line.p[0] == '#') {
            continue;
        } else if (want_uri) {
            vsim_variant_t *var = &out->variants[out->nvariants];
            if (!span_copy(line, var->uri, sizeof(var->uri)))
                return -EMSGSIZE;
            out->nvariants++;
            want_uri = false;
        }
    }
    return out->nvariants > 0 ? 0 : -EPROTO;
}

const char *vsim_master_audio_uri(const vsim_master_t *m, const vsim_variant_t *v)
{
    if (!v->audio_group[0])
        return NULL;
    const char *first = NULL;
    for (size_t i = 0; i < m->naudio; i++) {
        if (strcmp(m->audio[i].group, v->audio_group) != 0)
            continue;
        if (m->audio[i].is_default)
            return m->audio[i].uri;
        if (!first)
            first = m->audio[i].uri;
    }
    return first;
}

void vsim_media_deinit(vsim_media_t *m)
{
    free(m->items);
    free(m->pool);
    memset(m, 0, sizeof(*m));
}

/* Appends a URI to the pool (sized for the whole input, so it always fits). */
static int pool_add(vsim_media_t *m, vsim_span_t s, uint32_t *off)
{
    if (s.n == 0 || s.n >= VSIM_URI_MAX || memchr(s.p, '\0', s.n))
        return -EPROTO;
    *off = (uint32_t)m->pool_len;
    memcpy(m->pool + m->pool_len, s.p, s.n);
    m->pool[m->pool_len + s.n] = '\0';
    m->pool_len += s.n + 1;
    return 0;
}

static vsim_item_t *item_add(vsim_media_t *m)
{
    if (m->nitems == VSIM_MAX_ITEMS)
        return NULL;
    if (m->nitems == m->items_cap) {
        size_t ncap = m->items_cap ? m->items_cap * 2 : 64;
        vsim_item_t *n = realloc(m->items, ncap * sizeof(*n));
        if (!n)
            return NULL;
        m->items = n;
        m->items_cap = ncap;
    }
    vsim_item_t *it = &m->items[m->nitems++];
    memset(it, 0, sizeof(*it));
    return it;
}

int vsim_media_parse(const char *text, size_t len, vsim_media_t *out)
{
    /* Keep the storage of an earlier parse: a viewer parses a playlist
     * several times a second. */
    vsim_item_t *items = out->items;
    size_t items_cap = out->items_cap;
    char *pool = out->pool;
    size_t pool_cap = out->pool_cap;
    memset(out, 0, sizeof(*out));
    out->items = items;
    out->items_cap = items_cap;
    out->pool = pool;
    out->pool_cap = pool_cap;
    int rc = check_header(text, len);
    if (rc)
        return rc;
    if (out->pool_cap < len + 1) {
        size_t ncap = len + 1 < 4096 ? 4096 : len + 1;
        free(out->pool);
        out->pool_cap = 0;
        out->pool = malloc(ncap);
        if (!out->pool)
            return -ENOMEM;
        out->pool_cap = ncap;
    }
    const char *pos = text, *end = text + len;
    vsim_span_t line, rest, v;
    int64_t nsegs = 0;       /* segments so far, skipped ones included */
    int32_t nparts = 0;      /* parts of the segment in progress */
    double extinf = -1;
    bool disc = false, any_item = false;
    int map = -1;
    while (next_line(&pos, end, &line)) {
        if (line.n == 0)
            continue;
        if (span_prefix(line, "#EXT-X-TARGETDURATION:", &rest)) {
            int64_t td;
            if (!span_int64(rest, &td) || td > 3600)
                return -EPROTO;
            out->target_duration = (int)td;
        } else if (span_prefix(line, "#EXT-X-MEDIA-SEQUENCE:", &rest)) {
            if (any_item || !span_int64(rest, &out->media_sequence) ||
                out->media_sequence > INT64_MAX / 2)
                return -EPROTO;
        } else if (span_prefix(line, "#EXT-X-SERVER-CONTROL:", &rest)) {
            out->can_block_reload = attr_find(rest, "CAN-BLOCK-RELOAD", &v) && span_eq(v, "YES");
        } else if (span_prefix(line, "#EXT-X-PART-INF:", &rest)) {
            if (!attr_find(rest, "PART-TARGET", &v) || !span_double(v, &out->part_target))
                return -EPROTO;
        } else if (span_prefix(line, "#EXT-X-MAP:", &rest)) {
            if (!attr_find(rest, "URI", &v))
                return -EPROTO;
            if (out->nmaps == VSIM_MAX_MAPS)
                return -EMSGSIZE;
            if ((rc = pool_add(out, v, &out->maps[out->nmaps])))
                return rc;
            map = out->nmaps++;
        } else if (span_eq(line, "#EXT-X-DISCONTINUITY")) {
            disc = true;
        } else if (span_eq(line, "#EXT-X-ENDLIST")) {
            out->endlist = true;
        } else if (span_prefix(line, "#EXT-X-SKIP:", &rest)) {
            int64_t n;
            if (!attr_find(rest, "SKIPPED-SEGMENTS", &v) || !span_int64(v, &n) || n > 1000000 ||
                nparts > 0)
                return -EPROTO;
            nsegs += n;
        } else if (span_prefix(line, "#EXTINF:", &rest)) {
            const char *comma = memchr(rest.p, ',', rest.n);
            if (comma)
                rest.n = (size_t)(comma - rest.p);
            if (!span_double(rest, &extinf))
                return -EPROTO;
        } else if (span_prefix(line, "#EXT-X-PART:", &rest)) {
            vsim_item_t *it = item_add(out);
            if (!it)
                return out->nitems == VSIM_MAX_ITEMS ? -EMSGSIZE : -ENOMEM;
            if (!attr_find(rest, "URI", &v) || (rc = pool_add(out, v, &it->uri_off)))
                return -EPROTO;
            if (!attr_find(rest, "DURATION", &v) || !span_double(v, &it->duration))
                return -EPROTO;
            it->independent = attr_find(rest, "INDEPENDENT", &v) && span_eq(v, "YES");
            it->msn = out->media_sequence + nsegs;
            it->part = nparts++;
            it->discontinuity = disc;
            it->map = map;
            disc = false;
            any_item = true;
            if (nparts > 100000)
                return -EMSGSIZE;
        } else if (line.p[0] == '#') {
            continue; /* a tag this reader has no use for */
        } else {
            if (extinf < 0)
                return -EPROTO; /* a URI line without its EXTINF */
            /* The parts just listed belong to this segment: the last one
             * completes it. */
            if (nparts > 0)
                out->items[out->nitems - 1].last_in_segment = true;
            vsim_item_t *it = item_add(out);
            if (!it)
                return out->nitems == VSIM_MAX_ITEMS ? -EMSGSIZE : -ENOMEM;
            if ((rc = pool_add(out, line, &it->uri_off)))
                return rc;
            it->msn = out->media_sequence + nsegs;
            it->part = VSIM_PART_WHOLE;
            it->duration = extinf;
            it->has_parts = nparts > 0;
            it->discontinuity = disc && nparts == 0;
            it->map = map;
            nsegs++;
            nparts = 0;
            extinf = -1;
            disc = false;
            any_item = true;
        }
    }
    return 0;
}

bool vsim_media_is_ll(const vsim_media_t *m)
{
    return m->can_block_reload && m->part_target > 0;
}

bool vsim_item_wanted(const vsim_item_t *it, bool ll)
{
    if (!ll)
        return it->part == VSIM_PART_WHOLE;
    return it->part != VSIM_PART_WHOLE || !it->has_parts;
}

int vsim_pos_cmp(int64_t msn_a, int32_t part_a, int64_t msn_b, int32_t part_b)
{
    if (msn_a != msn_b)
        return msn_a < msn_b ? -1 : 1;
    if (part_a != part_b)
        return part_a < part_b ? -1 : 1;
    return 0;
}

int vsim_resolve(const char *base, const char *uri, char *out, size_t outlen)
{
    int n;
    if (strncmp(uri, "http://", 7) == 0 || strncmp(uri, "https://", 8) == 0) {
        n = snprintf(out, outlen, "%s", uri);
    } else {
        /* scheme://host[:port] ends at the first '/' after "//" */
        const char *host = strstr(base, "//");
        host = host ? host + 2 : base;
        size_t origin_len = strcspn(host, "/?") + (size_t)(host - base);
        size_t path_end = strcspn(base, "?");
        if (uri[0] == '/') {
            n = snprintf(out, outlen, "%.*s%s", (int)origin_len, base, uri);
        } else {
            size_t dir = path_end;
            while (dir > origin_len && base[dir - 1] != '/')
                dir--;
            if (dir <= origin_len)
                n = snprintf(out, outlen, "%.*s/%s", (int)origin_len, base, uri);
            else
                n = snprintf(out, outlen, "%.*s%s", (int)dir, base, uri);
        }
    }
    return n < 0 || (size_t)n >= outlen ? -EMSGSIZE : 0;
}
