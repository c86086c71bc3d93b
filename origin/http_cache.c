/*
 * CDN-facing HTTP semantics as pure functions (see http_cache_internal.h):
 * the Cache-Control policy, entity-tag and byte-range preconditions and
 * gzip negotiation. Every parser walks its input once with explicit bounds
 * and never allocates: they run on the hot path of every request, on MHD's
 * worker threads, and parse bytes a client chose.
 */
#include "http_cache_internal.h"

#include <stdio.h>
#include <string.h>

#include "hls_names.h"

/* "public, max-age=N" for N = 0..30: every lifetime the policy can hand out
 * (segments are at most 30 s, so half a segment and a blocking target
 * duration both fit), as static strings a caller never frees. */
#define HTTP_CACHE_AGE_MAX 30
#define A(n) "public, max-age=" #n
static const char *const http_cache_public_age[HTTP_CACHE_AGE_MAX + 1] = {
    A(0),  A(1),  A(2),  A(3),  A(4),  A(5),  A(6),  A(7),  A(8),  A(9),  A(10),
    A(11), A(12), A(13), A(14), A(15), A(16), A(17), A(18), A(19), A(20), A(21),
    A(22), A(23), A(24), A(25), A(26), A(27), A(28), A(29), A(30),
};
#undef A

static const char *http_cache_age(double seconds, int min)
{
    int n = seconds >= HTTP_CACHE_AGE_MAX ? HTTP_CACHE_AGE_MAX : seconds > 0 ? (int)seconds : 0;
    if (n < min)
        n = min;
    return http_cache_public_age[n];
}

const char *http_cache_control(http_object_type_t type, bool blocking,
                               const origin_params_t *params)
{
    if (type != HTTP_OBJECT_PLAYLIST)
        return HTTP_CACHE_CONTROL_IMMUTABLE;
    if (blocking) /* the target duration, rounded like EXT-X-TARGETDURATION */
        return http_cache_age(params->segment_duration + 0.5, 1);
    if (params->playlist_no_cache)
        return "no-cache";
    /* A playlist changes with every part: a CDN may serve it for half a
     * part (0 s for 0.333 s parts: it still coalesces a burst of misses
     * into one origin fetch) or half a segment without parts. */
    if (params->part_duration > 0)
        return http_cache_age(params->part_duration / 2, 0);
    return http_cache_age(params->segment_duration / 2, 0);
}

const char *http_cache_control_route(const http_route_t *route, bool blocking,
                                     const origin_params_t *params)
{
    if (route->kind == HTTP_ROUTE_VOD)
        return route->object_type == HTTP_OBJECT_PLAYLIST ? HTTP_CACHE_CONTROL_VOD_PLAYLIST
                                                          : HTTP_CACHE_CONTROL_IMMUTABLE;
    /* The live thumbnail changes at most once a segment. */
    if (route->object_type == HTTP_OBJECT_THUMBNAIL)
        return http_cache_age(params->segment_duration, 1);
    if (route->object_type == HTTP_OBJECT_INIT) {
        const char *slash = strrchr(route->object, '/');
        if (strcmp(slash ? slash + 1 : route->object, HLS_NAME_INIT) == 0)
            return http_cache_age(params->segment_duration + 0.5, 1);
    }
    return http_cache_control(route->object_type, blocking, params);
}

void http_cache_format_date(int64_t ms, char out[HTTP_DATE_MAX])
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        memset(&tm, 0, sizeof(tm));
        tm.tm_mday = 1;
        tm.tm_year = 70;
        tm.tm_wday = 4;
    }
    /* Each field is clamped to its width so the date always fits. */
    snprintf(out, HTTP_DATE_MAX, "%.3s, %02u %.3s %04u %02u:%02u:%02u GMT",
             days[(unsigned)tm.tm_wday % 7], (unsigned)tm.tm_mday % 100u,
             months[(unsigned)tm.tm_mon % 12], (unsigned)(tm.tm_year + 1900) % 10000u,
             (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u);
}

static bool http_cache_ows(char c)
{
    return c == ' ' || c == '\t';
}

static char http_cache_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* etagc = %x21 / %x23-7E / obs-text */
static bool http_cache_etagc(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c != 0x7f);
}

/* Parses one entity-tag at s[*i..len): sets *weak and the opaque-tag (with
 * its quotes) as [*tag, *tag + *tag_len). False if malformed. */
static bool http_cache_entity_tag(const char *s, size_t len, size_t *i, bool *weak,
                                  const char **tag, size_t *tag_len)
{
    size_t p = *i;
    *weak = false;
    if (p + 1 < len && s[p] == 'W' && s[p + 1] == '/') {
        *weak = true;
        p += 2;
    }
    if (p >= len || s[p] != '"')
        return false;
    size_t start = p++;
    while (p < len && http_cache_etagc((unsigned char)s[p]))
        p++;
    if (p >= len || s[p] != '"')
        return false;
    p++;
    *tag = s + start;
    *tag_len = p - start;
    *i = p;
    return true;
}

/* Our own tag without a W/ prefix (ours are strong; be safe anyway). */
static void http_cache_opaque(const char *etag, const char **tag, size_t *tag_len, bool *weak)
{
    *weak = etag[0] == 'W' && etag[1] == '/';
    *tag = *weak ? etag + 2 : etag;
    *tag_len = strlen(*tag);
}

bool http_cache_none_match(const char *inm, size_t len, const char *etag)
{
    const char *mine;
    size_t mine_len;
    bool mine_weak;
    http_cache_opaque(etag, &mine, &mine_len, &mine_weak);
    size_t i = 0;
    for (;;) {
        while (i < len && (http_cache_ows(inm[i]) || inm[i] == ','))
            i++;
        if (i >= len)
            return false;
        if (inm[i] == '*')
            return true; /* "*": any current representation */
        bool weak;
        const char *tag;
        size_t tag_len;
        if (!http_cache_entity_tag(inm, len, &i, &weak, &tag, &tag_len))
            return false;
        /* Weak comparison: W/ prefixes do not matter, the opaque tags must. */
        if (tag_len == mine_len && memcmp(tag, mine, mine_len) == 0)
            return true;
        while (i < len && http_cache_ows(inm[i]))
            i++;
        if (i < len && inm[i] != ',')
            return false;
    }
}

bool http_cache_if_range(const char *if_range, size_t len, const char *etag,
                         const char *last_modified)
{
    while (len > 0 && http_cache_ows(if_range[0])) {
        if_range++;
        len--;
    }
    while (len > 0 && http_cache_ows(if_range[len - 1]))
        len--;
    if (len == 0)
        return false;
    if (if_range[0] == '"' || (len > 1 && if_range[0] == 'W' && if_range[1] == '/')) {
        size_t i = 0;
        bool weak, mine_weak;
        const char *tag, *mine;
        size_t tag_len, mine_len;
        if (!http_cache_entity_tag(if_range, len, &i, &weak, &tag, &tag_len) || i != len)
            return false;
        http_cache_opaque(etag, &mine, &mine_len, &mine_weak);
        /* Strong comparison: neither may be weak. */
        return !weak && !mine_weak && tag_len == mine_len && memcmp(tag, mine, mine_len) == 0;
    }
    return last_modified && strlen(last_modified) == len && memcmp(if_range, last_modified, len) == 0;
}

/* 1*DIGIT at s[*i..len), saturating at UINT64_MAX. False if no digit. */
static bool http_cache_number(const char *s, size_t len, size_t *i, uint64_t *out)
{
    size_t p = *i;
    uint64_t v = 0;
    while (p < len && s[p] >= '0' && s[p] <= '9') {
        uint64_t d = (uint64_t)(s[p] - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
        p++;
    }
    if (p == *i)
        return false;
    *i = p;
    *out = v;
    return true;
}

http_range_result_t http_cache_range(const char *range, size_t len, uint64_t size,
                                     uint64_t *first, uint64_t *count)
{
    *first = *count = 0;
    size_t i = 0;
    while (i < len && http_cache_ows(range[i]))
        i++;
    static const char unit[] = "bytes=";
    if (len - i < sizeof(unit) - 1)
        return HTTP_RANGE_IGNORE;
    for (size_t k = 0; k < sizeof(unit) - 1; k++)
        if (http_cache_lower(range[i + k]) != unit[k])
            return HTTP_RANGE_IGNORE;
    i += sizeof(unit) - 1;
    /* One range only: a list (even "a-b, ") is answered with the full body. */
    if (memchr(range + i, ',', len - i))
        return HTTP_RANGE_IGNORE;
    while (i < len && http_cache_ows(range[i]))
        i++;
    uint64_t a = 0, b = UINT64_MAX;
    bool suffix = false;
    if (i < len && range[i] == '-') {
        suffix = true;
        i++;
        if (!http_cache_number(range, len, &i, &b))
            return HTTP_RANGE_IGNORE;
    } else {
        if (!http_cache_number(range, len, &i, &a) || i >= len || range[i] != '-')
            return HTTP_RANGE_IGNORE;
        i++;
        if (i < len && range[i] >= '0' && range[i] <= '9') {
            if (!http_cache_number(range, len, &i, &b))
                return HTTP_RANGE_IGNORE;
            if (b < a)
                return HTTP_RANGE_IGNORE; /* invalid, not unsatisfiable (RFC 9110 14.1.1) */
        }
    }
    while (i < len && http_cache_ows(range[i]))
        i++;
    if (i != len)
        return HTTP_RANGE_IGNORE;
    if (suffix) {
        if (b == 0 || size == 0)
            return HTTP_RANGE_UNSATISFIABLE;
        uint64_t n = b > size ? size : b;
        *first = size - n;
        *count = n;
        return HTTP_RANGE_OK;
    }
    if (a >= size)
        return HTTP_RANGE_UNSATISFIABLE;
    uint64_t last = b >= size ? size - 1 : b;
    *first = a;
    *count = last - a + 1;
    return HTTP_RANGE_OK;
}

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ): returns 1
 * for a non-zero q, 0 for zero, -1 for malformed. */
static int http_cache_qvalue(const char *s, size_t len)
{
    if (len == 0 || (s[0] != '0' && s[0] != '1'))
        return -1;
    bool nonzero = s[0] == '1';
    if (len == 1)
        return nonzero;
    if (s[1] != '.' || len > 5)
        return -1;
    for (size_t k = 2; k < len; k++) {
        if (s[k] < '0' || s[k] > '9' || (s[0] == '1' && s[k] != '0'))
            return -1;
        if (s[k] != '0')
            nonzero = true;
    }
    return nonzero;
}

static bool http_cache_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool http_cache_token_is(const char *s, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return false;
    for (size_t k = 0; k < n; k++)
        if (http_cache_lower(s[k]) != lit[k])
            return false;
    return true;
}

bool http_cache_accepts_gzip(const char *ae, size_t len)
{
    int gzip_q = -1, star_q = -1; /* -1: not named */
    size_t i = 0;
    while (i < len) {
        while (i < len && (http_cache_ows(ae[i]) || ae[i] == ','))
            i++;
        if (i >= len)
            break;
        size_t name = i;
        while (i < len && http_cache_tchar(ae[i]))
            i++;
        size_t name_len = i - name;
        int q = 1;
        bool malformed = name_len == 0;
        /* Parameters: only q matters; a malformed one makes the coding
         * unacceptable rather than guessed at. */
        for (;;) {
            while (i < len && http_cache_ows(ae[i]))
                i++;
            if (i >= len || ae[i] != ';')
                break;
            i++;
            while (i < len && http_cache_ows(ae[i]))
                i++;
            size_t pn = i;
            while (i < len && http_cache_tchar(ae[i]))
                i++;
            size_t pn_len = i - pn;
            if (pn_len == 0 || i >= len || ae[i] != '=') {
                malformed = true;
                break;
            }
            i++;
            size_t pv = i;
            while (i < len && http_cache_tchar(ae[i]))
                i++;
            if (http_cache_token_is(ae + pn, pn_len, "q")) {
                q = http_cache_qvalue(ae + pv, i - pv);
                if (q < 0)
                    malformed = true;
            }
        }
        if (malformed)
            q = 0;
        /* Skip whatever is left of a malformed element up to the next comma. */
        while (i < len && ae[i] != ',')
            i++;
        if (name_len == 0)
            continue;
        if ((http_cache_token_is(ae + name, name_len, "gzip") ||
             http_cache_token_is(ae + name, name_len, "x-gzip")) && gzip_q < 0)
            gzip_q = q;
        else if (http_cache_token_is(ae + name, name_len, "*") && star_q < 0)
            star_q = q;
    }
    return gzip_q >= 0 ? gzip_q > 0 : star_q > 0;
}
