/*
 * The SRT stream id grammar (srt_streamid_internal.h): pure, bounded. Runs in
 * libsrt's listen callback (srt.c) on libsrt's receiver thread, before a
 * caller is accepted. The key is copied only into the caller's buffer.
 */
#include "srt_streamid_internal.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define SRT_AC_PREFIX "#!::"
#define SRT_RESOURCE_APP "live/"

/* A key is printable ASCII without spaces, slashes, commas, '=' or '?'. */
static bool srt_key_char(char c)
{
    return c > 0x20 && c < 0x7f && c != '/' && c != ',' && c != '=' && c != '?';
}

/* "live/KEY" or "KEY" -> key. */
static int srt_resource_key(const char *r, size_t n, char *key, size_t keycap, const char **why)
{
    size_t app = strlen(SRT_RESOURCE_APP);
    if (n >= app && memcmp(r, SRT_RESOURCE_APP, app) == 0) {
        r += app;
        n -= app;
    }
    if (n == 0) {
        *why = "no stream id";
        return -ENOENT;
    }
    if (n > SRT_STREAMID_KEY_MAX || n + 1 > keycap) {
        *why = "stream id too long";
        return -EMSGSIZE;
    }
    for (size_t i = 0; i < n; i++) {
        if (!srt_key_char(r[i])) {
            *why = "malformed stream id";
            return -EPROTO;
        }
    }
    memcpy(key, r, n);
    key[n] = '\0';
    return 0;
}

int srt_streamid_parse(const char *sid, size_t len, char *key, size_t keycap, const char **why)
{
    static const char *none;
    if (!why)
        why = &none;
    *why = NULL;
    if (key && keycap)
        key[0] = '\0';
    if (!key || keycap == 0) {
        *why = "stream id too long";
        return -EMSGSIZE;
    }
    if (!sid || len == 0) {
        *why = "no stream id";
        return -ENOENT;
    }
    if (len > SRT_STREAMID_MAX) {
        *why = "stream id too long";
        return -EMSGSIZE;
    }
    if (memchr(sid, '\0', len)) {
        *why = "malformed stream id";
        return -EPROTO;
    }
    size_t pre = strlen(SRT_AC_PREFIX);
    if (len < pre || memcmp(sid, SRT_AC_PREFIX, pre) != 0)
        return srt_resource_key(sid, len, key, keycap, why);

    const char *res = NULL, *mode = NULL;
    size_t res_len = 0, mode_len = 0;
    size_t pos = pre;
    while (pos < len) {
        const char *item = sid + pos;
        const char *comma = memchr(item, ',', len - pos);
        size_t n = comma ? (size_t)(comma - item) : len - pos;
        pos += n + 1;
        if (n == 0)
            continue; /* ",," or a trailing comma */
        const char *eq = memchr(item, '=', n);
        if (!eq || eq == item) {
            *why = "malformed stream id";
            return -EPROTO;
        }
        size_t klen = (size_t)(eq - item);
        const char *v = eq + 1;
        size_t vlen = n - klen - 1;
        if (klen == 1 && item[0] == 'r') {
            if (res) {
                *why = "malformed stream id";
                return -EPROTO;
            }
            res = v;
            res_len = vlen;
        } else if (klen == 1 && item[0] == 'm') {
            if (mode) {
                *why = "malformed stream id";
                return -EPROTO;
            }
            mode = v;
            mode_len = vlen;
        }
        /* u (user), s (session), t (type), h (host) and the rest: ignored. */
    }
    if (mode && !(mode_len == 7 && memcmp(mode, "publish", 7) == 0)) {
        *why = (mode_len == 7 && memcmp(mode, "request", 7) == 0)
                   ? "pull is not supported"
                   : "only m=publish is supported";
        return -EPERM;
    }
    if (!res) {
        *why = "no stream id";
        return -ENOENT;
    }
    return srt_resource_key(res, res_len, key, keycap, why);
}
