/*
 * Signed playback tokens (--playback-secret). A token authorises one stream
 * until an expiry time, optionally for one client address and one session:
 *
 *   token   = EXP "~" IP "~" SID "~" SIG
 *   SIG     = base64url, unpadded, of
 *             HMAC-SHA256(secret, "sluice-v1|" STREAM_ID "|" EXP "|" IP "|" SID)
 *
 * EXP is unix seconds (decimal), IP an IPv4 or IPv6 address or empty, SID
 * [A-Za-z0-9_.-]{0,64} or empty. The stream id is signed but not carried:
 * it comes from the URL, so a token for one stream is invalid on another.
 * Every character of a token is URL-safe and needs no escaping in a query
 * string or an HLS quoted-string. docs/cdn.md shows minting it in Python and
 * Node. Verification compares in constant time. Pure; any thread.
 */
#ifndef SLUICE_ORIGIN_TOKEN_INTERNAL_H
#define SLUICE_ORIGIN_TOKEN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define TOKEN_MAX 256
#define TOKEN_SID_MAX 64
#define TOKEN_IP_MAX 45 /* INET6_ADDRSTRLEN - 1 */
#define TOKEN_SIG_LEN 43 /* 32 bytes in unpadded base64url */

typedef enum token_status {
    TOKEN_OK = 0,
    TOKEN_MISSING,       /* no token parameter */
    TOKEN_EXPIRED,       /* well signed, past its expiry */
    TOKEN_INVALID,       /* malformed, forged, or another stream's */
    TOKEN_WRONG_ADDRESS, /* well signed and current, bound to another IP */
} token_status_t;

typedef struct token_fields {
    int64_t expires;
    const char *exp, *ip, *sid, *sig; /* views into the token */
    size_t exp_len, ip_len, sid_len, sig_len;
} token_fields_t;

/* Splits and checks the syntax of token[0..len). Returns 0, -EPROTO when
 * malformed, -EMSGSIZE when longer than TOKEN_MAX. Views point into token. */
int token_parse(const char *token, size_t len, token_fields_t *out);

/*
 * Mints a token for stream_id into out (cap bytes, NUL-terminated). ip and
 * sid may be NULL or "". Returns the token's length, -EINVAL when a field is
 * not allowed, -ENOSPC when cap is too small. For tests and tools; the
 * platform backend mints its own (docs/cdn.md).
 */
int token_sign(const char *secret, size_t secret_len, const char *stream_id, int64_t expires,
               const char *ip, const char *sid, char *out, size_t cap);

/*
 * Checks token[0..len) (NULL: missing) for stream_id at time now_s (unix
 * seconds) from client address peer (NULL: unknown, which fails an
 * IP-bound token).
 */
token_status_t token_verify(const char *secret, size_t secret_len, const char *stream_id,
                            const char *token, size_t len, int64_t now_s,
                            const struct sockaddr *peer);

/* The 403 body of a failed check, e.g. "token expired\n". */
const char *token_status_text(token_status_t status);

#endif
