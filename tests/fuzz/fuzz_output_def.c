/* Fuzz target: the definitions of simulcast outputs (output/output_def.c).
 * The whole input is tried as a destination URL and as the registry text.
 * Checks contracts: a refused URL has a reason of printable ASCII that
 * starts with "url"; a mask is always terminated, printable and within its
 * buffer, and masking an accepted URL again changes nothing; accepted
 * registry text has at most OUTPUT_MAX_PER_STREAM valid definitions with
 * distinct ids, formats into less than OUTPUT_DEFS_TEXT_MAX bytes and reads
 * back to the same definitions; scrubbed text keeps no secret. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "output_def.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_mask(const char *url, size_t cap)
{
    char out[OUTPUT_URL_MAX + 8];
    memset(out, 'X', sizeof(out));
    output_url_mask(url, out, cap);
    size_t len = strnlen(out, cap);
    if (len >= cap)
        abort();
    for (size_t i = 0; i < len; i++)
        if (out[i] < 0x20 || out[i] > 0x7e)
            abort();
    if (out[cap] != 'X')
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    output_scheme_t sch = 0;
    char why[256] = "";
    int rc = output_url_check(text, &sch, why, sizeof(why));
    if (rc == 0) {
        if (sch < OUTPUT_SCHEME_RTMP || sch > OUTPUT_SCHEME_SRT)
            abort();
        char m1[OUTPUT_URL_MAX], m2[OUTPUT_URL_MAX];
        output_url_mask(text, m1, sizeof(m1));
        output_url_mask(m1, m2, sizeof(m2));
        /* (A mask cut at the buffer's end may read differently.) */
        if (strlen(m1) < sizeof(m1) - 1 && strcmp(m1, m2) != 0)
            abort();
    } else {
        if (rc != -EINVAL || strncmp(why, "url", 3) != 0)
            abort();
        for (const char *p = why; *p; p++)
            if (*p < 0x20 || *p > 0x7e)
                abort();
    }
    check_mask(text, OUTPUT_URL_MAX);
    check_mask(text, 1 + size % 16);

    /* Scrubbing: the input as text with a fixed URL's secrets, and a fixed
     * text with the input as the URL; terminated and printable either way,
     * and the fixed URL's key never survives. */
    char clean[300];
    output_text_scrub(text, "rtmp://h/app/Key-1234?sig=Sig-5678", clean, sizeof(clean));
    if (strnlen(clean, sizeof(clean)) >= sizeof(clean) || strstr(clean, "Key-1234") ||
        strstr(clean, "Sig-5678"))
        abort();
    output_text_scrub("error: rtmp://h/app/Key-1234 refused", text, clean, 1 + size % 64);
    for (const char *p = clean; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            abort();

    output_def_t *defs;
    size_t n;
    rc = output_defs_parse(text, &defs, &n);
    if (rc != 0) {
        if ((rc != -EPROTO && rc != -EMSGSIZE && rc != -ENOMEM) || defs || n)
            abort();
        free(text);
        return 0;
    }
    if (n > OUTPUT_MAX_PER_STREAM || (n == 0) != (defs == NULL))
        abort();
    for (size_t i = 0; i < n; i++) {
        if (!output_id_ok(defs[i].id) || !output_rendition_ok(defs[i].rendition) ||
            output_url_check(defs[i].url, NULL, NULL, 0) != 0 || defs[i].created_ms < 0)
            abort();
        for (size_t j = 0; j < i; j++)
            if (strcmp(defs[i].id, defs[j].id) == 0)
                abort();
    }
    char *back = output_defs_format(defs, n);
    if (!back || strlen(back) >= OUTPUT_DEFS_TEXT_MAX)
        abort();
    output_def_t *again;
    size_t m;
    if (output_defs_parse(back, &again, &m) != 0 || m != n)
        abort();
    for (size_t i = 0; i < n; i++)
        if (strcmp(again[i].id, defs[i].id) || strcmp(again[i].url, defs[i].url) ||
            strcmp(again[i].rendition, defs[i].rendition) ||
            again[i].enabled != defs[i].enabled || again[i].created_ms != defs[i].created_ms)
            abort();
    free(again);
    free(back);
    free(defs);
    free(text);
    return 0;
}
