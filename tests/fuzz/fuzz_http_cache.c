/* Fuzz target: everything of a request a client controls that the origin
 * parses beyond the path: Range, If-None-Match, If-Range, Accept-Encoding,
 * the playback token, and the playlist URI rewrite that carries the token
 * (the input doubles as a playlist). Checks the parsers' contracts, not
 * just their survival. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_cache_internal.h"
#include "http_header.h"
#include "playlist_rewrite_internal.h"
#include "token_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;

    /* Range over a representation whose size the input also picks. */
    uint64_t rep = size ? (uint64_t)data[0] * 977u + (size > 1 ? data[1] : 0u) : 0;
    uint64_t first, count;
    http_range_result_t rr = http_header_range(s, size, rep, &first, &count);
    if (rr == HTTP_RANGE_OK && (count == 0 || first >= rep || count > rep - first))
        abort();
    if (rr == HTTP_RANGE_UNSATISFIABLE && rep != 0 && size == 0)
        abort();

    (void)http_header_none_match(s, size, "\"0123456789abcdef-1f\"");
    /* "*" anywhere as a list element matches; a list of just our tag does. */
    if (http_header_none_match("\"0123456789abcdef-1f\"", 21, "\"0123456789abcdef-1f\"") != true)
        abort();
    (void)http_header_if_range(s, size, "\"0123456789abcdef-1f\"", "Sun, 06 Nov 1994 08:49:37 GMT");
    (void)http_header_accepts_gzip(s, size);

    token_fields_t f;
    if (token_parse(s, size, &f) == 0) {
        if (f.sig_len != TOKEN_SIG_LEN || f.exp_len == 0 || f.ip_len > TOKEN_IP_MAX ||
            f.sid_len > TOKEN_SID_MAX || f.sig < s || f.sig + f.sig_len > s + size)
            abort();
    }
    static const char secret[] = "fuzzing-secret-0123456789";
    (void)token_verify(secret, sizeof(secret) - 1, "demo", s, size, 1900000000, NULL);

    /* The rewrite: the sizing pass and the writing pass agree, the result
     * respects the documented bound, and a short buffer gets a prefix. */
    static const char param[] = "token=1900000000~~~Xg7XIrOqv_gmshKmoHaeDFjehCyiUr-KyCsMVMRhg10";
    size_t plen = sizeof(param) - 1;
    size_t need = playlist_rewrite(s, size, param, plen, NULL, 0);
    size_t lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    if (need < size || need > size + lines * (plen + 1))
        abort();
    char *out = malloc(need + 1);
    if (!out)
        return 0;
    if (playlist_rewrite(s, size, param, plen, out, need) != need)
        abort();
    size_t cut = need / 2;
    char *half = malloc(cut + 1);
    if (half) {
        if (playlist_rewrite(s, size, param, plen, half, cut) != need || memcmp(half, out, cut))
            abort();
        free(half);
    }
    /* Without its insertions the output is the input again (unless the
     * input itself holds the parameter, which the stripping cannot tell). */
    if (memmem(s, size, param, plen)) {
        free(out);
        return 0;
    }
    size_t w = 0;
    for (size_t r = 0; r < need;) {
        if (need - r >= plen + 1 && (out[r] == '?' || out[r] == '&') &&
            memcmp(out + r + 1, param, plen) == 0) {
            r += plen + 1;
            continue;
        }
        out[w++] = out[r++];
    }
    if (w != size || memcmp(out, s, size) != 0)
        abort();
    free(out);
    return 0;
}
