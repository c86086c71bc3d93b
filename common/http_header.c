/*
 * HTTP header grammar (see http_header.h): dates, entity-tag and byte-range
 * preconditions, gzip negotiation. Every parser walks its input once with
 * explicit bounds and never allocates: they run on the hot path of every
 * request, on MHD's worker threads, and parse bytes a client chose.
 */
#include "http_header.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void http_header_format_date(int64_t ms, char out[HTTP_DATE_MAX])
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

static bool http_header_ows(char c)
{
    return c == ' ' || c == '\t';
}

static char http_header_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* etagc = %x21 / %x23-7E / obs-text */
static bool http_header_etagc(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c != 0x7f);
}

/* Parses one entity-tag at s[*i..len): sets *weak and the opaque-tag (with
 * its quotes) as [*tag, *tag + *tag_len). False if malformed. */
static bool http_header_entity_tag(const char *s, size_t len, size_t *i, bool *weak,
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
    while (p < len && http_header_etagc((unsigned char)s[p]))
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
static void http_header_opaque(const char *etag, const char **tag, size_t *tag_len, bool *weak)
{
    *weak = etag[0] == 'W' && etag[1] == '/';
    *tag = *weak ? etag + 2 : etag;
    *tag_len = strlen(*tag);
}

bool http_header_none_match(const char *inm, size_t len, const char *etag)
{
    const char *mine;
    size_t mine_len;
    bool mine_weak;
    http_header_opaque(etag, &mine, &mine_len, &mine_weak);
    size_t i = 0;
    for (;;) {
        while (i < len && (http_header_ows(inm[i]) || inm[i] == ','))
            i++;
        if (i >= len)
            return false;
        if (inm[i] == '*')
            return true; /* "*": any current representation */
        bool weak;
        const char *tag;
        size_t tag_len;
        if (!http_header_entity_tag(inm, len, &i, &weak, &tag, &tag_len))
            return false;
        /* Weak comparison: W/ prefixes do not matter, the opaque tags must. */
        if (tag_len == mine_len && memcmp(tag, mine, mine_len) == 0)
            return true;
        while (i < len && http_header_ows(inm[i]))
            i++;
        if (i < len && inm[i] != ',')
            return false;
    }
}

bool http_header_if_range(const char *if_range, size_t len, const char *etag,
                         const char *last_modified)
{
    while (len > 0 && http_header_ows(if_range[0])) {
        if_range++;
        len--;
    }
    while (len > 0 && http_header_ows(if_range[len - 1]))
        len--;
    if (len == 0)
        return false;
    if (if_range[0] == '"' || (len > 1 && if_range[0] == 'W' && if_range[1] == '/')) {
        size_t i = 0;
        bool weak, mine_weak;
        const char *tag, *mine;
        size_t tag_len, mine_len;
        if (!http_header_entity_tag(if_range, len, &i, &weak, &tag, &tag_len) || i != len)
            return false;
        http_header_opaque(etag, &mine, &mine_len, &mine_weak);
        /* Strong comparison: neither may be weak. */
        return !weak && !mine_weak && tag_len == mine_len && memcmp(tag, mine, mine_len) == 0;
    }
    return last_modified && strlen(last_modified) == len && memcmp(if_range, last_modified, len) == 0;
}

/* 1*DIGIT at s[*i..len), saturating at UINT64_MAX. False if no digit. */
static bool http_header_number(const char *s, size_t len, size_t *i, uint64_t *out)
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

http_range_result_t http_header_range(const char *range, size_t len, uint64_t size,
                                     uint64_t *first, uint64_t *count)
{
    *first = *count = 0;
    size_t i = 0;
    while (i < len && http_header_ows(range[i]))
        i++;
    static const char unit[] = "bytes=";
    if (len - i < sizeof(unit) - 1)
        return HTTP_RANGE_IGNORE;
    for (size_t k = 0; k < sizeof(unit) - 1; k++)
        if (http_header_lower(range[i + k]) != unit[k])
            return HTTP_RANGE_IGNORE;
    i += sizeof(unit) - 1;
    /* One range only: a list (even "a-b, ") is answered with the full body. */
    if (memchr(range + i, ',', len - i))
        return HTTP_RANGE_IGNORE;
    while (i < len && http_header_ows(range[i]))
        i++;
    uint64_t a = 0, b = UINT64_MAX;
    bool suffix = false;
    if (i < len && range[i] == '-') {
        suffix = true;
        i++;
        if (!http_header_number(range, len, &i, &b))
            return HTTP_RANGE_IGNORE;
    } else {
        if (!http_header_number(range, len, &i, &a) || i >= len || range[i] != '-')
            return HTTP_RANGE_IGNORE;
        i++;
        if (i < len && range[i] >= '0' && range[i] <= '9') {
            if (!http_header_number(range, len, &i, &b))
                return HTTP_RANGE_IGNORE;
            if (b < a)
                return HTTP_RANGE_IGNORE; /* invalid, not unsatisfiable (RFC 9110 14.1.1) */
        }
    }
    while (i < len && http_header_ows(range[i]))
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
static int http_header_qvalue(const char *s, size_t len)
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

static bool http_header_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool http_header_token_is(const char *s, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return false;
    for (size_t k = 0; k < n; k++)
        if (http_header_lower(s[k]) != lit[k])
            return false;
    return true;
}

bool http_header_accepts_gzip(const char *ae, size_t len)
{
    int gzip_q = -1, star_q = -1; /* -1: not named */
    size_t i = 0;
    while (i < len) {
        while (i < len && (http_header_ows(ae[i]) || ae[i] == ','))
            i++;
        if (i >= len)
            break;
        size_t name = i;
        while (i < len && http_header_tchar(ae[i]))
            i++;
        size_t name_len = i - name;
        int q = 1;
        bool malformed = name_len == 0;
        /* Parameters: only q matters; a malformed one makes the coding
         * unacceptable rather than guessed at. */
        for (;;) {
            while (i < len && http_header_ows(ae[i]))
                i++;
            if (i >= len || ae[i] != ';')
                break;
            i++;
            while (i < len && http_header_ows(ae[i]))
                i++;
            size_t pn = i;
            while (i < len && http_header_tchar(ae[i]))
                i++;
            size_t pn_len = i - pn;
            if (pn_len == 0 || i >= len || ae[i] != '=') {
                malformed = true;
                break;
            }
            i++;
            size_t pv = i;
            while (i < len && http_header_tchar(ae[i]))
                i++;
            if (http_header_token_is(ae + pn, pn_len, "q")) {
                q = http_header_qvalue(ae + pv, i - pv);
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
        if ((http_header_token_is(ae + name, name_len, "gzip") ||
             http_header_token_is(ae + name, name_len, "x-gzip")) && gzip_q < 0)
            gzip_q = q;
        else if (http_header_token_is(ae + name, name_len, "*") && star_q < 0)
            star_q = q;
    }
    return gzip_q >= 0 ? gzip_q > 0 : star_q > 0;
}
