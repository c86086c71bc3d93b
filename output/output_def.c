/*
 * The definitions of a stream's simulcast outputs: the destination URL's
 * grammar and its masking, rendition names and ids, and the registry text
 * (a JSON array) the store keeps for a stream. The one owner of these rules:
 * the admin API checks with them, the engine reads the registry with them,
 * the logs, answers and webhooks show URLs only through output_url_mask.
 *
 * Pure functions on caller-owned data (output_new_id draws from OpenSSL's
 * generator); any thread.
 */
#include "output_def.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <jansson.h>
#include <openssl/rand.h>

static void output_why(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void output_why(char *why, size_t why_len, const char *fmt, ...)
{
    if (!why || !why_len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
}

/* Printable ASCII a URL may hold: no space, no quote or backslash (they
 * would need escaping in JSON, which keeps the registry text bounded). */
static bool output_url_byte_ok(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '"' && c != '\\';
}

/* The scheme at the start of url (its "://" included in *skip), or 0. */
static output_scheme_t output_scheme_of(const char *url, size_t *skip)
{
    static const struct {
        const char *prefix;
        output_scheme_t scheme;
    } schemes[] = {
        {"rtmp://", OUTPUT_SCHEME_RTMP},
        {"rtmps://", OUTPUT_SCHEME_RTMPS},
        {"srt://", OUTPUT_SCHEME_SRT},
    };
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        size_t n = strlen(schemes[i].prefix);
        if (strncasecmp(url, schemes[i].prefix, n) == 0) {
            *skip = n;
            return schemes[i].scheme;
        }
    }
    *skip = 0;
    return 0;
}

static bool output_host_ok(const char *h, size_t len)
{
    if (len == 0)
        return false;
    if (h[0] == '[') {
        /* An IPv6 literal: hex digits, ':' and '.' (an embedded IPv4). */
        if (len < 3 || h[len - 1] != ']')
            return false;
        for (size_t i = 1; i + 1 < len; i++)
            if (!isxdigit((unsigned char)h[i]) && h[i] != ':' && h[i] != '.')
                return false;
        return true;
    }
    if (len > 253 || h[0] == '.' || h[0] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)h[i];
        if (!isalnum(c) && c != '-' && c != '.' && c != '_')
            return false;
    }
    return true;
}

/* The port of "digits" (len bytes), or -1. */
static int output_port(const char *p, size_t len)
{
    if (len == 0 || len > 5)
        return -1;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v >= 1 && v <= 65535 ? v : -1;
}

int output_url_check(const char *url, output_scheme_t *scheme, char *why, size_t why_len)
{
    if (!url || !url[0]) {
        output_why(why, why_len, "url is empty");
        return -EINVAL;
    }
    size_t len = strnlen(url, OUTPUT_URL_MAX);
    if (len >= OUTPUT_URL_MAX) {
        output_why(why, why_len, "url is longer than %d bytes", OUTPUT_URL_MAX - 1);
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        if (!output_url_byte_ok((unsigned char)url[i])) {
            output_why(why, why_len, "url may hold only printable ASCII without spaces, quotes "
                                     "or backslashes (percent-encode the rest)");
            return -EINVAL;
        }
    }
    size_t skip;
    output_scheme_t sch = output_scheme_of(url, &skip);
    if (!sch) {
        output_why(why, why_len, "url must start with rtmp://, rtmps:// or srt://");
        return -EINVAL;
    }
    const char *auth = url + skip;
    size_t alen = strcspn(auth, "/?");
    const char *rest = auth + alen;
    /* The last '@' ends the userinfo (a password may hold an '@' only
     * percent-encoded, but be lenient). */
    const char *host = auth;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            host = auth + i + 1;
    if (host != auth && sch == OUTPUT_SCHEME_SRT) {
        output_why(why, why_len, "url: srt takes no user or password (give passphrase= in the "
                                 "query)");
        return -EINVAL;
    }
    size_t hlen = (size_t)(auth + alen - host);
    /* Split host and port: the port follows the last ':' outside an IPv6
     * literal's brackets. */
    size_t hostlen = hlen;
    const char *port = NULL;
    size_t portlen = 0;
    if (hlen && host[0] == '[') {
        const char *close = memchr(host, ']', hlen);
        if (close) {
            hostlen = (size_t)(close - host) + 1;
            if (hostlen < hlen) {
                if (host[hostlen] != ':') {
                    output_why(why, why_len, "url: the host is not a name or an address");
                    return -EINVAL;
                }
                port = host + hostlen + 1;
                portlen = hlen - hostlen - 1;
            }
        }
    } else {
        const char *colon = memchr(host, ':', hlen);
        if (colon) {
            hostlen = (size_t)(colon - host);
            port = colon + 1;
            portlen = hlen - hostlen - 1;
        }
    }
    if (hostlen == 0) {
        output_why(why, why_len, "url has no host");
        return -EINVAL;
    }
    if (!output_host_ok(host, hostlen)) {
        output_why(why, why_len, "url: the host is not a name or an address");
        return -EINVAL;
    }
    if (port && output_port(port, portlen) < 0) {
        output_why(why, why_len, "url: the port must be 1 to 65535");
        return -EINVAL;
    }
    if (sch == OUTPUT_SCHEME_SRT) {
        if (!port) {
            output_why(why, why_len, "url: srt needs a port (srt://host:port[?streamid=...])");
            return -EINVAL;
        }
        if (rest[0] == '/')
            rest++;
        if (rest[0] && rest[0] != '?') {
            output_why(why, why_len, "url: srt takes no path (srt://host:port[?streamid=...])");
            return -EINVAL;
        }
    } else {
        if (rest[0] != '/' || rest[1] == '/' || rest[1] == '?' || rest[1] == '\0') {
            output_why(why, why_len, "url: rtmp needs an app (rtmp://host[:port]/app[/key])");
            return -EINVAL;
        }
    }
    if (scheme)
        *scheme = sch;
    return 0;
}

/* ---- masking -------------------------------------------------------- */

#define OUTPUT_SECRETS_MAX 64

typedef struct output_mask_out {
    char *out;
    size_t cap, len;
    /* When set: where the secrets masked were in the URL (start, length),
     * for output_text_scrub. */
    struct output_span {
        const char *p;
        size_t n;
    } *secrets;
    size_t nsecrets;
} output_mask_out_t;

/* Notes a masked secret and, when it is made of several words, each word of
 * 4 bytes or more (an error message may quote one part of it). */
static void mask_secret(output_mask_out_t *m, const char *p, size_t n)
{
    if (!m->secrets || n == 0)
        return;
    if (m->nsecrets < OUTPUT_SECRETS_MAX)
        m->secrets[m->nsecrets++] = (struct output_span){p, n};
    size_t i = 0;
    while (i < n) {
        size_t w = i;
        while (w < n && !strchr("/?&=:@,", p[w]))
            w++;
        if (w - i >= 4 && w - i < n && m->nsecrets < OUTPUT_SECRETS_MAX)
            m->secrets[m->nsecrets++] = (struct output_span){p + i, w - i};
        i = w + 1;
    }
}

static void mask_put(output_mask_out_t *m, const char *s, size_t n)
{
    for (size_t i = 0; i < n && m->len + 1 < m->cap; i++) {
        unsigned char c = (unsigned char)s[i];
        m->out[m->len++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    m->out[m->len] = '\0';
}

static void mask_puts(output_mask_out_t *m, const char *s)
{
    mask_put(m, s, strlen(s));
}

/* SRT options (libsrt's and FFmpeg's names) whose values say nothing
 * secret; every other key's value is masked. */
static bool mask_srt_key_harmless(const char *k, size_t n)
{
    static const char *const keys[] = {
        "mode",           "latency",       "rcvlatency",      "peerlatency",
        "maxbw",          "inputbw",       "oheadbw",         "pbkeylen",
        "connect_timeout", "timeout",      "rw_timeout",      "listen_timeout",
        "send_buffer_size", "recv_buffer_size", "sndbuf",     "rcvbuf",
        "payload_size",   "pkt_size",      "transtype",       "tlpktdrop",
        "nakreport",      "tsbpd",         "tsbpddelay",      "ipttl",
        "iptos",          "mss",           "ffs",             "linger",
        "messageapi",     "enforced_encryption", "kmrefreshrate", "kmpreannounce",
        "snddropdelay",   "lossmaxttl",    "minversion",      "congestion",
        "smoother",       "conntimeo",     "groupconnect",
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strlen(keys[i]) == n && strncasecmp(keys[i], k, n) == 0)
            return true;
    return false;
}

/* q points after the '?'. srt: keep the values of harmless SRT options;
 * otherwise every value is masked. A bare word (no '=') is masked unless it
 * is a harmless key. */
static void mask_query(output_mask_out_t *m, const char *q, bool srt)
{
    mask_puts(m, "?");
    bool first = true;
    while (true) {
        size_t n = strcspn(q, "&");
        if (!first)
            mask_puts(m, "&");
        first = false;
        const char *eq = memchr(q, '=', n);
        size_t klen = eq ? (size_t)(eq - q) : n;
        bool keep = srt && mask_srt_key_harmless(q, klen);
        if (keep) {
            mask_put(m, q, n);
        } else if (eq) {
            mask_put(m, q, klen);
            mask_puts(m, "=" OUTPUT_MASK);
            mask_secret(m, eq + 1, n - klen - 1);
        } else if (n) {
            mask_puts(m, OUTPUT_MASK);
            mask_secret(m, q, n);
        }
        if (!q[n])
            break;
        q += n + 1;
    }
}

/* Masks url into m (its out already terminated). */
static void mask_run(const char *url, output_mask_out_t *m)
{
    if (!url)
        return;
    const char *sep = strstr(url, "://");
    bool scheme_ok = sep && sep > url;
    for (const char *p = url; scheme_ok && p < sep; p++)
        if (!isalnum((unsigned char)*p) && *p != '+' && *p != '-' && *p != '.')
            scheme_ok = false;
    if (!scheme_ok) {
        mask_puts(m, OUTPUT_MASK);
        mask_secret(m, url, strlen(url));
        return;
    }
    size_t skip;
    output_scheme_t sch = output_scheme_of(url, &skip);
    mask_put(m, url, (size_t)(sep - url) + 3);
    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?");
    const char *host = auth;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            host = auth + i + 1;
    if (host != auth) {
        mask_puts(m, OUTPUT_MASK "@");
        mask_secret(m, auth, (size_t)(host - auth) - 1);
    }
    mask_put(m, host, (size_t)(auth + alen - host));
    const char *rest = auth + alen;
    if (!rest[0])
        return;
    if (sch == OUTPUT_SCHEME_RTMP || sch == OUTPUT_SCHEME_RTMPS) {
        if (rest[0] == '/') {
            /* The app stays; what follows it is the key. */
            size_t app = 1 + strcspn(rest + 1, "/?");
            mask_put(m, rest, app);
            rest += app;
        }
        if (rest[0] == '/') {
            mask_puts(m, "/" OUTPUT_MASK);
            mask_secret(m, rest + 1, strlen(rest + 1));
        } else if (rest[0] == '?') {
            mask_query(m, rest + 1, false);
        }
        return;
    }
    if (sch == OUTPUT_SCHEME_SRT) {
        size_t path = strcspn(rest, "?");
        if (path == 1) {
            mask_puts(m, "/");
        } else if (path > 1) {
            mask_puts(m, "/" OUTPUT_MASK);
            mask_secret(m, rest + 1, path - 1);
        }
        if (rest[path] == '?')
            mask_query(m, rest + path + 1, true);
        return;
    }
    /* An unknown scheme: nothing after the host is known to be harmless. */
    mask_put(m, rest, 1);
    mask_puts(m, OUTPUT_MASK);
    mask_secret(m, rest + 1, strlen(rest + 1));
}

void output_url_mask(const char *url, char *out, size_t cap)
{
    if (!out || !cap)
        return;
    output_mask_out_t m = {.out = out, .cap = cap};
    out[0] = '\0';
    mask_run(url, &m);
}

void output_text_scrub(const char *text, const char *url, char *out, size_t cap)
{
    if (!out || !cap)
        return;
    out[0] = '\0';
    if (!text)
        return;
    char masked[OUTPUT_URL_MAX];
    struct output_span spans[OUTPUT_SECRETS_MAX + 1];
    output_mask_out_t m = {.out = masked, .cap = sizeof(masked), .secrets = spans};
    masked[0] = '\0';
    if (url && url[0]) {
        /* The whole URL first: it reads better masked than cut up. */
        spans[0] = (struct output_span){url, strlen(url)};
        m.secrets = spans + 1;
        mask_run(url, &m);
        m.nsecrets++;
        m.secrets = spans;
    }
    output_mask_out_t w = {.out = out, .cap = cap};
    for (const char *p = text; *p;) {
        size_t hit = 0;
        bool whole = false;
        for (size_t i = 0; i < m.nsecrets; i++) {
            /* Secrets of fewer than 4 bytes would mask ordinary words. */
            if (spans[i].n >= 4 && spans[i].n > hit && strncmp(p, spans[i].p, spans[i].n) == 0) {
                hit = spans[i].n;
                whole = i == 0 && url && url[0];
            }
        }
        if (hit) {
            mask_puts(&w, whole ? masked : OUTPUT_MASK);
            p += hit;
        } else {
            mask_put(&w, p, 1);
            p++;
        }
    }
}

/* ---- names ---------------------------------------------------------- */

bool output_rendition_ok(const char *r)
{
    if (!r || !r[0])
        return false;
    if (strcmp(r, OUTPUT_RENDITION_SOURCE) == 0)
        return true;
    size_t n = strnlen(r, OUTPUT_RENDITION_MAX);
    if (n > 31)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = r[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '-')))
            return false;
    }
    return true;
}

bool output_id_ok(const char *id)
{
    if (!id || id[0] != 'o')
        return false;
    for (size_t i = 1; i <= 16; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return id[17] == '\0';
}

void output_new_id(char id[OUTPUT_ID_MAX])
{
    unsigned char raw[8];
    if (RAND_bytes(raw, sizeof(raw)) != 1 &&
        getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        /* Both generators failing is next to impossible; the id only has
         * to be unique within one stream, so the clock will do. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t v = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        for (size_t i = 0; i < sizeof(raw); i++)
            raw[i] = (unsigned char)(v >> (8 * i));
    }
    static const char hex[] = "0123456789abcdef";
    id[0] = 'o';
    for (size_t i = 0; i < sizeof(raw); i++) {
        id[1 + 2 * i] = hex[raw[i] >> 4];
        id[2 + 2 * i] = hex[raw[i] & 15];
    }
    id[17] = '\0';
}

/* ---- the registry text ---------------------------------------------- */

static int output_def_from_json(const json_t *o, output_def_t *d)
{
    if (!json_is_object(o))
        return -EPROTO;
    const char *id = json_string_value(json_object_get(o, "id"));
    const char *url = json_string_value(json_object_get(o, "url"));
    if (!id || !url || !output_id_ok(id) || strlen(url) >= sizeof(d->url) ||
        output_url_check(url, NULL, NULL, 0) != 0)
        return -EPROTO;
    memset(d, 0, sizeof(*d));
    memcpy(d->id, id, strlen(id) + 1);
    memcpy(d->url, url, strlen(url) + 1);
    const json_t *r = json_object_get(o, "rendition");
    if (r) {
        const char *rs = json_string_value(r);
        if (!rs || !output_rendition_ok(rs))
            return -EPROTO;
        memcpy(d->rendition, rs, strlen(rs) + 1);
    } else {
        memcpy(d->rendition, OUTPUT_RENDITION_SOURCE, sizeof(OUTPUT_RENDITION_SOURCE));
    }
    const json_t *e = json_object_get(o, "enabled");
    if (e && !json_is_boolean(e))
        return -EPROTO;
    d->enabled = e ? json_is_true(e) : true;
    const json_t *c = json_object_get(o, "created_ms");
    if (c && (!json_is_integer(c) || json_integer_value(c) < 0))
        return -EPROTO;
    d->created_ms = c ? (int64_t)json_integer_value(c) : 0;
    return 0;
}

int output_defs_parse(const char *text, output_def_t **defs, size_t *n)
{
    *defs = NULL;
    *n = 0;
    if (!text || !text[0])
        return 0;
    size_t len = strnlen(text, OUTPUT_DEFS_TEXT_MAX);
    if (len >= OUTPUT_DEFS_TEXT_MAX)
        return -EMSGSIZE;
    json_error_t jerr;
    json_t *a = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!a)
        return -EPROTO;
    int rc = 0;
    output_def_t *out = NULL;
    size_t count = json_is_array(a) ? json_array_size(a) : 0;
    if (!json_is_array(a)) {
        rc = -EPROTO;
        goto done;
    }
    if (count > OUTPUT_MAX_PER_STREAM) {
        rc = -EMSGSIZE;
        goto done;
    }
    if (count == 0)
        goto done;
    out = calloc(count, sizeof(*out));
    if (!out) {
        rc = -ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < count; i++) {
        rc = output_def_from_json(json_array_get(a, i), &out[i]);
        if (rc != 0)
            goto done;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(out[j].id, out[i].id) == 0) {
                rc = -EPROTO;
                goto done;
            }
        }
    }
done:
    json_decref(a);
    if (rc != 0) {
        free(out);
        return rc;
    }
    *defs = out;
    *n = out ? count : 0;
    return 0;
}

char *output_defs_format(const output_def_t *defs, size_t n)
{
    json_t *a = json_array();
    if (!a)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const output_def_t *d = &defs[i];
        json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:I}", "id", d->id, "url", d->url,
                              "rendition", d->rendition, "enabled", d->enabled ? 1 : 0,
                              "created_ms", (json_int_t)d->created_ms);
        if (!o || json_array_append_new(a, o) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    char *text = json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(a);
    return text;
}
