/*
 * Signed playback tokens: parsing, minting and verification (the format is
 * in token_internal.h). The HMAC is OpenSSL's; the comparison of signatures
 * is CRYPTO_memcmp, so timing says nothing about how much of a forged
 * signature was right. Nothing here logs: a token or the secret must never
 * reach a log line. Any thread; allocates only inside OpenSSL's HMAC.
 */
#include "token_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "store.h"

#define TOKEN_EXP_DIGITS_MAX 12
#define TOKEN_PREFIX "sluice-v1|"

static bool token_sid_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

static bool token_ip_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
           c == ':' || c == '.';
}

static bool token_b64_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

/* Parses an IP text of n bytes into family + 16 bytes (v4 in the first 4). */
static bool token_ip_parse(const char *s, size_t n, int *family, uint8_t addr[16])
{
    char buf[TOKEN_IP_MAX + 1];
    if (n == 0 || n > TOKEN_IP_MAX)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, buf, addr) == 1) {
        *family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, buf, addr) == 1) {
        *family = AF_INET6;
        /* A v4-mapped address is the v4 client it stands for. */
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(addr, mapped, 12) == 0) {
            memmove(addr, addr + 12, 4);
            memset(addr + 4, 0, 12);
            *family = AF_INET;
        }
        return true;
    }
    return false;
}

int token_parse(const char *token, size_t len, token_fields_t *out)
{
    memset(out, 0, sizeof(*out));
    if (len > TOKEN_MAX)
        return -EMSGSIZE;
    const char *field[4];
    size_t flen[4];
    size_t start = 0, nf = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || token[i] == '~') {
            if (nf == 4)
                return -EPROTO;
            field[nf] = token + start;
            flen[nf] = i - start;
            nf++;
            start = i + 1;
        }
    }
    if (nf != 4)
        return -EPROTO;
    /* EXP: 1..12 digits */
    if (flen[0] == 0 || flen[0] > TOKEN_EXP_DIGITS_MAX)
        return -EPROTO;
    int64_t exp = 0;
    for (size_t i = 0; i < flen[0]; i++) {
        if (field[0][i] < '0' || field[0][i] > '9')
            return -EPROTO;
        exp = exp * 10 + (field[0][i] - '0');
    }
    if (flen[1] > TOKEN_IP_MAX || flen[2] > TOKEN_SID_MAX || flen[3] != TOKEN_SIG_LEN)
        return -EPROTO;
    for (size_t i = 0; i < flen[1]; i++)
        if (!token_ip_char(field[1][i]))
            return -EPROTO;
    int fam;
    uint8_t addr[16];
    if (flen[1] && !token_ip_parse(field[1], flen[1], &fam, addr))
        return -EPROTO;
    for (size_t i = 0; i < flen[2]; i++)
        if (!token_sid_char(field[2][i]))
            return -EPROTO;
    for (size_t i = 0; i < flen[3]; i++)
        if (!token_b64_char(field[3][i]))
            return -EPROTO;
    out->expires = exp;
    out->exp = field[0];
    out->exp_len = flen[0];
    out->ip = field[1];
    out->ip_len = flen[1];
    out->sid = field[2];
    out->sid_len = flen[2];
    out->sig = field[3];
    out->sig_len = flen[3];
    return 0;
}

static void token_b64url(const uint8_t *in, size_t n, char *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
    }
    out[o] = '\0';
}

/* The signature (TOKEN_SIG_LEN chars + NUL) of the fields for stream_id. */
static int token_signature(const char *secret, size_t secret_len, const char *stream_id,
                           const token_fields_t *f, char sig[TOKEN_SIG_LEN + 1])
{
    char msg[sizeof(TOKEN_PREFIX) + STORE_ID_MAX + TOKEN_EXP_DIGITS_MAX + TOKEN_IP_MAX +
             TOKEN_SID_MAX + 8];
    size_t id_len = strlen(stream_id);
    if (id_len >= STORE_ID_MAX)
        return -EINVAL;
    int n = snprintf(msg, sizeof(msg), TOKEN_PREFIX "%s|%.*s|%.*s|%.*s", stream_id,
                     (int)f->exp_len, f->exp, (int)f->ip_len, f->ip, (int)f->sid_len, f->sid);
    if (n < 0 || (size_t)n >= sizeof(msg))
        return -EINVAL;
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)msg, (size_t)n, mac,
              &mac_len) ||
        mac_len != 32)
        return -EIO;
    token_b64url(mac, 32, sig);
    OPENSSL_cleanse(mac, sizeof(mac));
    return 0;
}

int token_sign(const char *secret, size_t secret_len, const char *stream_id, int64_t expires,
               const char *ip, const char *sid, char *out, size_t cap)
{
    char exp[24];
    if (expires < 0)
        return -EINVAL;
    snprintf(exp, sizeof(exp), "%lld", (long long)expires);
    token_fields_t f = {.expires = expires, .exp = exp, .exp_len = strlen(exp),
                        .ip = ip ? ip : "", .ip_len = ip ? strlen(ip) : 0,
                        .sid = sid ? sid : "", .sid_len = sid ? strlen(sid) : 0};
    char sig[TOKEN_SIG_LEN + 1];
    int rc = token_signature(secret, secret_len, stream_id, &f, sig);
    if (rc < 0)
        return rc;
    int n = snprintf(out, cap, "%s~%s~%s~%s", f.exp, f.ip, f.sid, sig);
    if (n < 0 || (size_t)n >= cap)
        return -ENOSPC;
    /* What we mint must be what we accept (field syntax, lengths). */
    token_fields_t check;
    if (token_parse(out, (size_t)n, &check) != 0)
        return -EINVAL;
    return n;
}

static bool token_peer_matches(const token_fields_t *f, const struct sockaddr *peer)
{
    int fam;
    uint8_t want[16];
    if (!peer || !token_ip_parse(f->ip, f->ip_len, &fam, want))
        return false;
    uint8_t have[16] = {0};
    int have_fam;
    if (peer->sa_family == AF_INET) {
        memcpy(have, &((const struct sockaddr_in *)(const void *)peer)->sin_addr, 4);
        have_fam = AF_INET;
    } else if (peer->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)(const void *)peer)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, 12) == 0) {
            memcpy(have, a + 12, 4);
            have_fam = AF_INET;
        } else {
            memcpy(have, a, 16);
            have_fam = AF_INET6;
        }
    } else {
        return false;
    }
    return fam == have_fam && memcmp(want, have, 16) == 0;
}

token_status_t token_verify(const char *secret, size_t secret_len, const char *stream_id,
                            const char *token, size_t len, int64_t now_s,
                            const struct sockaddr *peer)
{
    if (!token || len == 0)
        return TOKEN_MISSING;
    token_fields_t f;
    if (token_parse(token, len, &f) != 0)
        return TOKEN_INVALID;
    char want[TOKEN_SIG_LEN + 1];
    if (token_signature(secret, secret_len, stream_id, &f, want) != 0)
        return TOKEN_INVALID;
    /* Lengths are equal (parse checked TOKEN_SIG_LEN); compare in constant time. */
    if (CRYPTO_memcmp(want, f.sig, TOKEN_SIG_LEN) != 0)
        return TOKEN_INVALID;
    /* Only a genuine token learns that it expired or is bound elsewhere. */
    if (now_s >= f.expires)
        return TOKEN_EXPIRED;
    if (f.ip_len && !token_peer_matches(&f, peer))
        return TOKEN_WRONG_ADDRESS;
    return TOKEN_OK;
}

const char *token_status_text(token_status_t status)
{
    switch (status) {
    case TOKEN_OK:
        return "ok\n";
    case TOKEN_MISSING:
        return "token missing\n";
    case TOKEN_EXPIRED:
        return "token expired\n";
    case TOKEN_WRONG_ADDRESS:
        return "token invalid for this client address\n";
    case TOKEN_INVALID:
    default:
        return "token invalid\n";
    }
}
