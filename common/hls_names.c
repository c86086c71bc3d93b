/* See hls_names.h. */
#include "hls_names.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* snprintf's result as ours: the length, or why nothing usable was written. */
static int hls_name_fmt(size_t dstlen, int n)
{
    if (n < 0)
        return -EINVAL;
    if ((size_t)n >= dstlen)
        return -ENAMETOOLONG;
    return n;
}

int hls_name_segment(char *dst, size_t dstlen, int64_t msn)
{
    if (msn < 0)
        return -EINVAL;
    return hls_name_fmt(dstlen, snprintf(dst, dstlen, "%" PRId64 ".m4s", msn));
}

int hls_name_part(char *dst, size_t dstlen, int64_t msn, int64_t part)
{
    if (msn < 0 || part < 0)
        return -EINVAL;
    return hls_name_fmt(dstlen,
                        snprintf(dst, dstlen, "%" PRId64 ".%" PRId64 ".m4s", msn, part));
}

int hls_name_init(char *dst, size_t dstlen, int64_t msn)
{
    if (msn < 0)
        return hls_name_fmt(dstlen, snprintf(dst, dstlen, "%s", HLS_NAME_INIT));
    return hls_name_fmt(dstlen, snprintf(dst, dstlen, "init-%" PRId64 ".mp4", msn));
}

int hls_name_join(char *dst, size_t dstlen, const char *rendition, const char *file)
{
    return hls_name_fmt(dstlen, snprintf(dst, dstlen, "%s/%s", rendition, file));
}

/* ---- parsing ----------------------------------------------------------------- */

/* A number at p[0..n) without leading zeros: its length, or 0. */
static size_t hls_name_number(const char *p, size_t n, int64_t *out)
{
    size_t i = 0;
    int64_t v = 0;
    while (i < n && i <= HLS_NAME_DIGITS_MAX && p[i] >= '0' && p[i] <= '9')
        v = v * 10 + (p[i++] - '0');
    if (i == 0 || i > HLS_NAME_DIGITS_MAX || (i > 1 && p[0] == '0'))
        return 0;
    *out = v;
    return i;
}

static bool hls_name_is(const char *p, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(p, lit, n) == 0;
}

bool hls_name_parse(const char *p, size_t n, hls_name_t *out)
{
    *out = (hls_name_t){.kind = HLS_NAME_NONE, .msn = -1, .part = -1};
    if (hls_name_is(p, n, HLS_NAME_MASTER)) {
        out->kind = HLS_NAME_KIND_MASTER;
        return true;
    }
    if (hls_name_is(p, n, HLS_NAME_PLAYLIST) || hls_name_is(p, n, HLS_NAME_PLAYLIST_SKIP) ||
        hls_name_is(p, n, HLS_NAME_PLAYLIST_SKIP2)) {
        out->kind = HLS_NAME_KIND_PLAYLIST;
        return true;
    }
    if (hls_name_is(p, n, HLS_NAME_INIT)) {
        out->kind = HLS_NAME_KIND_INIT;
        return true;
    }
    int64_t a = -1, b = -1;
    if (n > 5 && memcmp(p, "init-", 5) == 0) {
        size_t d = hls_name_number(p + 5, n - 5, &a);
        if (!d || !hls_name_is(p + 5 + d, n - 5 - d, ".mp4"))
            return false;
        out->kind = HLS_NAME_KIND_INIT;
        out->msn = a;
        return true;
    }
    size_t d = hls_name_number(p, n, &a);
    if (!d)
        return false;
    if (hls_name_is(p + d, n - d, ".m4s")) {
        out->kind = HLS_NAME_KIND_SEGMENT;
        out->msn = a;
        return true;
    }
    if (d < n && p[d] == '.') {
        size_t e = hls_name_number(p + d + 1, n - d - 1, &b);
        if (e && hls_name_is(p + d + 1 + e, n - d - 1 - e, ".m4s")) {
            out->kind = HLS_NAME_KIND_PART;
            out->msn = a;
            out->part = b;
            return true;
        }
    }
    return false;
}

bool hls_name_immutable(const char *name)
{
    const char *last = strrchr(name, '/');
    last = last ? last + 1 : name;
    hls_name_t h;
    if (!hls_name_parse(last, strlen(last), &h))
        return false;
    return h.kind == HLS_NAME_KIND_INIT || h.kind == HLS_NAME_KIND_SEGMENT ||
           h.kind == HLS_NAME_KIND_PART;
}
