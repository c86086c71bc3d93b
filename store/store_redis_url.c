/*
 * Parsers for the Redis store's URLs and Sentinel's +switch-master message
 * (store_redis_url.h). Pure functions of their input; any thread.
 */
#include "store_redis_url.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

void rs_url_cleanse(rs_url_t *u)
{
    OPENSSL_cleanse(u->password, sizeof(u->password));
    OPENSSL_cleanse(u->sentinel_password, sizeof(u->sentinel_password));
}

/* redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?cache-mb=N]: the grammar as it
 * always was (a '@' anywhere splits off the userinfo, nothing is decoded). */
static int rs_url_parse_direct(const char *url, rs_url_t *r)
{
    const char *p = url + 8;
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon || (size_t)(at - colon - 1) >= sizeof(r->password) ||
            (size_t)(colon - p) >= sizeof(r->user))
            return -EINVAL;
        memcpy(r->user, p, (size_t)(colon - p));
        memcpy(r->password, colon + 1, (size_t)(at - colon - 1));
        p = at + 1;
    }
    const char *hend;
    if (*p == '[') {
        hend = strchr(p, ']');
        if (!hend)
            return -EINVAL;
        p++;
    } else {
        hend = p + strcspn(p, ":/");
    }
    if (hend == p || (size_t)(hend - p) >= sizeof(r->host))
        return -EINVAL;
    memcpy(r->host, p, (size_t)(hend - p));
    p = hend + (*hend == ']');
    r->port = 6379;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535)
            return -EINVAL;
        r->port = (int)port;
        p = end;
    }
    r->db = 0;
    if (*p == '/' && p[1] && p[1] != '?') {
        char *end;
        long db = strtol(p + 1, &end, 10);
        if (end == p + 1 || (*end && *end != '?') || db < 0 || db > 65535)
            return -EINVAL;
        r->db = (int)db;
        p = end;
    } else if (*p == '/') {
        p++;
    }
    r->cache_bytes = RS_URL_CACHE_BYTES_DEFAULT;
    if (strncmp(p, "?cache-mb=", 10) == 0) {
        /* The object cache's budget; 0 turns it off (benchmarks, debugging). */
        char *end;
        long mb = strtol(p + 10, &end, 10);
        if (end == p + 10 || *end || mb < 0 || mb > 65536)
            return -EINVAL;
        r->cache_bytes = (size_t)mb << 20;
        p = end;
    }
    if (*p)
        return -EINVAL;
    snprintf(r->where, sizeof(r->where), "redis://%.256s:%d/%d", r->host, r->port, r->db);
    return 0;
}

static int rs_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..len) into out (cap bytes with the NUL). A bad
 * escape, an encoded NUL or an overlong result: -EINVAL. */
static int rs_pct_decode(const char *s, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -EINVAL;
            int h = rs_hexval(s[i + 1]), l = rs_hexval(s[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0))
                return -EINVAL;
            c = (char)(h * 16 + l);
            i += 2;
        }
        if (o + 1 >= cap)
            return -EINVAL;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

/* A decimal number of at most 6 digits in [lo, hi]. */
static int rs_number(const char *s, size_t len, long lo, long hi, long *out)
{
    if (len == 0 || len > 6)
        return -EINVAL;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

/* One sentinel: HOST[:PORT] or [V6][:PORT]. */
static int rs_url_sentinel_host(const char *s, size_t len, rs_url_host_t *h)
{
    const char *end = s + len;
    const char *hs = s, *he;
    const char *p;
    if (len && *s == '[') {
        hs = s + 1;
        he = memchr(hs, ']', (size_t)(end - hs));
        if (!he)
            return -EINVAL;
        p = he + 1;
    } else {
        he = memchr(s, ':', len);
        if (!he)
            he = end;
        p = he;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= sizeof(h->host))
        return -EINVAL;
    for (size_t i = 0; i < hl; i++) {
        unsigned char c = (unsigned char)hs[i];
        /* a host name or an address; never a character of the grammar */
        if (c <= ' ' || c >= 0x7f || strchr("@/?&,%[]", c) || (c == ':' && *s != '['))
            return -EINVAL;
    }
    memcpy(h->host, hs, hl);
    h->host[hl] = '\0';
    h->port = RS_URL_SENTINEL_PORT;
    if (p == end)
        return 0;
    if (*p != ':')
        return -EINVAL;
    long port;
    if (rs_number(p + 1, (size_t)(end - p - 1), 1, 65535, &port) < 0)
        return -EINVAL;
    h->port = (int)port;
    return 0;
}

static bool rs_master_name_valid(const char *s, size_t len)
{
    if (len == 0 || len > RS_URL_MASTER_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* One "key=value" of the sentinel form's query; seen[] refuses repeats. */
static int rs_url_param(rs_url_t *u, const char *s, size_t len, unsigned *seen)
{
    static const char *const names[] = {"db", "cache-mb", "sentinel-user", "sentinel-password",
                                        "wait-ms"};
    const char *eq = memchr(s, '=', len);
    if (!eq)
        return -EINVAL;
    size_t kl = (size_t)(eq - s);
    const char *v = eq + 1;
    size_t vl = len - kl - 1;
    unsigned i;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == kl && memcmp(names[i], s, kl) == 0)
            break;
    if (i == sizeof(names) / sizeof(names[0]) || (*seen & (1u << i)))
        return -EINVAL;
    *seen |= 1u << i;
    long n;
    switch (i) {
    case 0:
        if (rs_number(v, vl, 0, 65535, &n) < 0)
            return -EINVAL;
        u->db = (int)n;
        return 0;
    case 1:
        if (rs_number(v, vl, 0, 65536, &n) < 0)
            return -EINVAL;
        u->cache_bytes = (size_t)n << 20;
        return 0;
    case 2:
        if (vl == 0)
            return -EINVAL;
        return rs_pct_decode(v, vl, u->sentinel_user, sizeof(u->sentinel_user));
    case 3:
        if (vl == 0)
            return -EINVAL;
        return rs_pct_decode(v, vl, u->sentinel_password, sizeof(u->sentinel_password));
    default:
        if (rs_number(v, vl, 0, RS_URL_WAIT_MS_MAX, &n) < 0)
            return -EINVAL;
        u->wait_ms = (int)n;
        return 0;
    }
}

/* redis-sentinel://[[USER]:PASSWORD@]HOSTS/MASTER[?PARAMS]: the query starts
 * at the first '?', the authority ends at the first '/', and the userinfo
 * ends at the authority's last '@' (a password's own '@', '/', '?', '&',
 * ',' and '%' are percent-encoded). */
static int rs_url_parse_sentinel(const char *url, rs_url_t *u)
{
    const char *p = url + strlen("redis-sentinel://");
    const char *q = strchr(p, '?');
    const char *end = q ? q : p + strlen(p);
    const char *slash = memchr(p, '/', (size_t)(end - p));
    if (!slash)
        return -EINVAL;
    const char *auth = p;
    for (const char *a = slash; a > p; a--) {
        if (a[-1] == '@') {
            const char *ui = p;
            size_t ul = (size_t)(a - 1 - p);
            const char *colon = memchr(ui, ':', ul);
            if (!colon)
                return -EINVAL;
            if (rs_pct_decode(ui, (size_t)(colon - ui), u->user, sizeof(u->user)) < 0 ||
                rs_pct_decode(colon + 1, (size_t)(ui + ul - colon - 1), u->password,
                              sizeof(u->password)) < 0 ||
                !u->password[0])
                return -EINVAL;
            auth = a;
            break;
        }
    }
    /* the sentinels */
    for (const char *h = auth; h <= slash;) {
        const char *comma = memchr(h, ',', (size_t)(slash - h));
        const char *he = comma ? comma : slash;
        if (u->nsentinels == RS_URL_SENTINELS_MAX ||
            rs_url_sentinel_host(h, (size_t)(he - h), &u->sentinels[u->nsentinels]) < 0)
            return -EINVAL;
        u->nsentinels++;
        h = he + 1;
    }
    const char *name = slash + 1;
    if (!rs_master_name_valid(name, (size_t)(end - name)))
        return -EINVAL;
    memcpy(u->master_name, name, (size_t)(end - name));
    u->master_name[end - name] = '\0';
    if (q) {
        unsigned seen = 0;
        const char *s = q + 1;
        if (!*s)
            return -EINVAL;
        for (;;) {
            size_t l = strcspn(s, "&");
            if (rs_url_param(u, s, l, &seen) < 0)
                return -EINVAL;
            if (!s[l])
                break;
            s += l + 1;
        }
    }
    size_t w = (size_t)snprintf(u->where, sizeof(u->where), "redis-sentinel://");
    for (unsigned i = 0; i < u->nsentinels; i++) {
        char one[280];
        const rs_url_host_t *h = &u->sentinels[i];
        int n = snprintf(one, sizeof(one), strchr(h->host, ':') ? "%s[%.256s]:%d" : "%s%.256s:%d",
                         i ? "," : "", h->host, h->port);
        char tail[80];
        int tn = snprintf(tail, sizeof(tail), "/%s db %d", u->master_name, u->db);
        if (w + (size_t)n + (size_t)tn + 4 >= sizeof(u->where)) {
            w += (size_t)snprintf(u->where + w, sizeof(u->where) - w, ",...");
            break;
        }
        memcpy(u->where + w, one, (size_t)n + 1);
        w += (size_t)n;
    }
    snprintf(u->where + w, sizeof(u->where) - w, "/%s db %d", u->master_name, u->db);
    return 0;
}

int rs_url_parse(const char *url, rs_url_t *out)
{
    memset(out, 0, sizeof(*out));
    out->cache_bytes = RS_URL_CACHE_BYTES_DEFAULT;
    int rc = -EINVAL;
    if (strncmp(url, "redis://", 8) == 0) {
        out->mode = RS_URL_DIRECT;
        rc = rs_url_parse_direct(url, out);
    } else if (strncmp(url, "redis-sentinel://", 17) == 0) {
        out->mode = RS_URL_SENTINEL;
        out->wait_ms = RS_URL_WAIT_MS_DEFAULT;
        rc = rs_url_parse_sentinel(url, out);
    }
    if (rc < 0)
        rs_url_cleanse(out);
    return rc;
}

int rs_switch_parse(const char *msg, size_t len, const char *want_name, char *host,
                    size_t hostlen, int *port)
{
    const char *tok[5];
    size_t tl[5];
    size_t n = 0, i = 0;
    while (i < len) {
        if (msg[i] == ' ') {
            i++;
            continue;
        }
        size_t s = i;
        while (i < len && msg[i] != ' ') {
            if (msg[i] == '\0')
                return -EINVAL;
            i++;
        }
        if (n == 5)
            return -EINVAL;
        tok[n] = msg + s;
        tl[n++] = i - s;
    }
    if (n != 5)
        return -EINVAL;
    long p;
    if (rs_number(tok[2], tl[2], 1, 65535, &p) < 0 || rs_number(tok[4], tl[4], 1, 65535, &p) < 0)
        return -EINVAL;
    if (tl[3] == 0 || tl[3] >= hostlen)
        return -EINVAL;
    if (strlen(want_name) != tl[0] || memcmp(want_name, tok[0], tl[0]) != 0)
        return -ENOENT;
    memcpy(host, tok[3], tl[3]);
    host[tl[3]] = '\0';
    *port = (int)p;
    return 0;
}
