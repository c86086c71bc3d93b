/*
 * Playlist URI rewriting for signed playback (see the header). Works line
 * by line; inside the tags that carry a URI attribute it walks the
 * attribute list (RFC 8216bis 4.2: NAME=value, quoted-strings may hold
 * commas), so a URI= inside a quoted value of another attribute is never
 * mistaken for the attribute. A line it cannot parse is copied unchanged.
 */
#include "playlist_rewrite_internal.h"

#include <stdbool.h>
#include <string.h>

typedef struct rw_out {
    char *p;
    size_t cap;
    size_t n;
} rw_out_t;

static void rw_put(rw_out_t *o, const char *s, size_t n)
{
    if (o->n < o->cap) {
        size_t room = o->cap - o->n;
        memcpy(o->p + o->n, s, n < room ? n : room);
    }
    o->n += n;
}

/* A relative reference: no scheme ("x:" before any "/?#") and not "//host". */
static bool rw_relative(const char *u, size_t n)
{
    if (n == 0)
        return false;
    if (n >= 2 && u[0] == '/' && u[1] == '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = u[i];
        if (c == ':')
            return false;
        if (c == '/' || c == '?' || c == '#')
            break;
    }
    return true;
}

/* Copies URI u[0..n) with the parameter added before any fragment. */
static void rw_uri(rw_out_t *o, const char *u, size_t n, const char *param, size_t param_len)
{
    if (!rw_relative(u, n)) {
        rw_put(o, u, n);
        return;
    }
    const char *hash = memchr(u, '#', n);
    size_t body = hash ? (size_t)(hash - u) : n;
    rw_put(o, u, body);
    rw_put(o, memchr(u, '?', body) ? "&" : "?", 1);
    rw_put(o, param, param_len);
    rw_put(o, u + body, n - body);
}

static bool rw_starts(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n >= l && memcmp(s, lit, l) == 0;
}

/* Tags whose attribute list may carry a URI we serve. */
static bool rw_uri_tag(const char *line, size_t n)
{
    static const char *const tags[] = {
        "#EXT-X-MEDIA:",        "#EXT-X-I-FRAME-STREAM-INF:", "#EXT-X-MAP:",
        "#EXT-X-PART:",         "#EXT-X-PRELOAD-HINT:",       "#EXT-X-RENDITION-REPORT:",
    };
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
        if (rw_starts(line, n, tags[i]))
            return true;
    return false;
}

static bool rw_attr_name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/* A tag line: copy it, rewriting the value of a quoted URI attribute. */
static void rw_tag(rw_out_t *o, const char *line, size_t n, const char *param, size_t param_len)
{
    const char *colon = memchr(line, ':', n);
    size_t i = (size_t)(colon - line) + 1; /* rw_uri_tag() saw the colon */
    rw_put(o, line, i);
    bool rewritten = false; /* one URI per line keeps the size bound simple */
    while (i < n) {
        size_t name = i;
        while (i < n && rw_attr_name_char(line[i]))
            i++;
        size_t name_len = i - name;
        if (name_len == 0 || i >= n || line[i] != '=') {
            i = name; /* copy the unparsable rest verbatim */
            break;
        }
        i++;
        bool is_uri = name_len == 3 && memcmp(line + name, "URI", 3) == 0;
        if (i < n && line[i] == '"') {
            const char *close = memchr(line + i + 1, '"', n - i - 1);
            if (!close) {
                i = name;
                break;
            }
            size_t vstart = i + 1, vend = (size_t)(close - line);
            rw_put(o, line + name, vstart - name);
            if (is_uri && !rewritten) {
                rw_uri(o, line + vstart, vend - vstart, param, param_len);
                rewritten = true;
            }
            else
                rw_put(o, line + vstart, vend - vstart);
            i = vend + 1;
            rw_put(o, "\"", 1);
        } else {
            while (i < n && line[i] != ',')
                i++;
            rw_put(o, line + name, i - name);
        }
        if (i < n) {
            if (line[i] != ',')
                break;
            rw_put(o, ",", 1);
            i++;
        }
    }
    rw_put(o, line + i, n - i); /* whatever could not be parsed, verbatim */
}

size_t playlist_rewrite(const char *in, size_t len, const char *param, size_t param_len,
                        char *out, size_t cap)
{
    rw_out_t o = {out, cap, 0};
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(in + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - in) : len;   /* end of the line's content */
        size_t next = nl ? end + 1 : len;
        size_t n = end - pos;
        if (n > 0 && in[pos + n - 1] == '\r')
            n--;
        const char *line = in + pos;
        if (n == 0 || (line[0] == '#' && !rw_uri_tag(line, n)))
            rw_put(&o, line, n);
        else if (line[0] == '#')
            rw_tag(&o, line, n, param, param_len);
        else {
            /* A URI line: surrounding whitespace is not part of the URI. */
            size_t a = 0, b = n;
            while (a < b && (line[a] == ' ' || line[a] == '\t'))
                a++;
            while (b > a && (line[b - 1] == ' ' || line[b - 1] == '\t'))
                b--;
            rw_put(&o, line, a);
            rw_uri(&o, line + a, b - a, param, param_len);
            rw_put(&o, line + b, n - b);
        }
        rw_put(&o, in + pos + n, next - (pos + n)); /* "\r\n", "\n" or nothing */
        pos = next;
    }
    return o.n;
}
