/*
 * The definitions of a stream's simulcast outputs (issue 24): where a live
 * stream is also sent (an RTMP, RTMPS or SRT destination), which rendition,
 * whether it is on. This header owns their grammar: the destination URL's
 * check and its masking (the URL carries the destination's key, a secret:
 * only the masked form may leave the process in an answer, a log line or a
 * metric), the rendition names, output ids, and the registry text (a JSON
 * array, opaque to the store) with its parser and formatter.
 *
 * Pure functions on caller-owned data; any thread.
 */
#ifndef SLUICE_OUTPUT_OUTPUT_DEF_H
#define SLUICE_OUTPUT_OUTPUT_DEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OUTPUT_MAX_PER_STREAM 8
#define OUTPUT_URL_MAX 1024        /* bytes, NUL included */
#define OUTPUT_ID_MAX 24           /* "o" + 16 hex + NUL, random (OpenSSL RAND_bytes) */
#define OUTPUT_RENDITION_MAX 32
#define OUTPUT_DEFS_TEXT_MAX 16384 /* the registry text of one stream's outputs, NUL included */
/* What output_url_mask puts in place of a secret. */
#define OUTPUT_MASK "****"
/* The rendition that sends the source itself, untouched. */
#define OUTPUT_RENDITION_SOURCE "source"

typedef enum output_scheme {
    OUTPUT_SCHEME_RTMP = 1,
    OUTPUT_SCHEME_RTMPS,
    OUTPUT_SCHEME_SRT
} output_scheme_t;

typedef struct output_def {
    char id[OUTPUT_ID_MAX];
    char url[OUTPUT_URL_MAX];             /* a secret: carries the destination's key */
    char rendition[OUTPUT_RENDITION_MAX]; /* "source" or a rung name */
    bool enabled;
    int64_t created_ms; /* ms since the epoch */
} output_def_t;

/*
 * 0 and the scheme (scheme may be NULL), or -EINVAL with a one-line reason
 * of printable ASCII in why (never quoting the URL or any part of it).
 * Accepted: rtmp://[user[:pass]@]host[:port]/app[/key...][?query],
 * rtmps://... the same, srt://host:port[/][?query]. The scheme is matched
 * without regard to case. Printable ASCII only (no spaces, control bytes,
 * '"', '\\' or bytes above 0x7e), shorter than OUTPUT_URL_MAX, a host is
 * required (a name, an IPv4 address or an [IPv6] literal), a port is 1 to
 * 65535.
 */
int output_url_check(const char *url, output_scheme_t *scheme, char *why, size_t why_len)
    __attribute__((warn_unused_result));

/*
 * The URL with every secret replaced by "****": the userinfo, the RTMP path
 * after the app (the key) and every RTMP query value, and the SRT query
 * values of streamid, passphrase and any key not known to be harmless (a
 * bare query word too). A string that is not a URL of a known scheme keeps
 * only its scheme and host. Bytes outside printable ASCII become '?'. Always
 * NUL-terminated (truncated to cap - 1 bytes; a prefix of a masked URL
 * holds no secret). out must not overlap url; url NULL gives "".
 */
void output_url_mask(const char *url, char *out, size_t cap);

/*
 * text (an error message, say) with every secret of url in it replaced:
 * url itself by its mask, each part output_url_mask hides (and each word of
 * 4 bytes or more of it) by "****". Bytes outside printable ASCII become
 * '?'. Always NUL-terminated, truncated to cap - 1 bytes. For text that may
 * quote a destination, before it is logged, answered or sent in a webhook.
 */
void output_text_scrub(const char *text, const char *url, char *out, size_t cap);

/* The rendition grammar: "source" or a rung name ([a-z0-9][a-z0-9_-]{0,30}). */
bool output_rendition_ok(const char *rendition);

/* The id grammar: "o" and 16 lower-case hex digits. */
bool output_id_ok(const char *id);

/*
 * Registry text -> definitions. "" or NULL: none (*defs NULL, *n 0).
 * Otherwise a JSON array of at most OUTPUT_MAX_PER_STREAM objects
 * {"id", "url", "rendition", "enabled", "created_ms"} ("rendition" defaults
 * to "source", "enabled" to true, "created_ms" to 0; unknown members are
 * ignored) with distinct valid ids, URLs that pass output_url_check and
 * valid renditions. On success *defs is malloc'd (the caller frees it; NULL
 * when *n is 0). -EMSGSIZE text of OUTPUT_DEFS_TEXT_MAX bytes or more, or
 * too many outputs; -EPROTO malformed; -ENOMEM. On failure *defs is NULL
 * and *n 0.
 */
int output_defs_parse(const char *text, output_def_t **defs, size_t *n)
    __attribute__((warn_unused_result));

/* Definitions -> registry text (the array above; "[]" for none), malloc'd;
 * NULL on OOM. Valid definitions of at most OUTPUT_MAX_PER_STREAM outputs
 * always format to less than OUTPUT_DEFS_TEXT_MAX bytes. */
char *output_defs_format(const output_def_t *defs, size_t n);

/* A new random id ("o" + 16 hex digits) from OpenSSL's RAND_bytes. */
void output_new_id(char id[OUTPUT_ID_MAX]);

#endif
