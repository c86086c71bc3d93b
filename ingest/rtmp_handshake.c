/*
 * RTMP handshake, server side. C1 is checked for a client digest (HMAC-
 * SHA256 under the 30-byte "Genuine Adobe Flash Player 001" key) at the
 * scheme 0 offset, then the scheme 1 one; when one matches, S1 carries our
 * digest at the same scheme's offset (key: the 36-byte "Genuine Adobe Flash
 * Media Server 001") and S2 is signed with a key derived from the client's
 * digest, which is what librtmp and FFmpeg verify. Otherwise S1 is random
 * with a zero version and S2 echoes C1. C2 is read and not checked: clients
 * fill it inconsistently and it carries nothing we need.
 *
 * Runs on whatever thread drives the rtmp_handshake_t (the ingest loop).
 */
#include "rtmp_handshake_internal.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

/* The 32 bytes that follow the readable part of both Genuine keys. */
#define RTMP_KEY_TAIL                                                                        \
    0xf0, 0xee, 0xc2, 0x4a, 0x80, 0x68, 0xbe, 0xe8, 0x2e, 0x00, 0xd0, 0xd1, 0x02, 0x9e, 0x7e, \
        0x57, 0x6e, 0xec, 0x5d, 0x2d, 0x29, 0x80, 0x6f, 0xab, 0x93, 0xb8, 0xe6, 0x36, 0xcf,  \
        0xeb, 0x31, 0xae

static const uint8_t rtmp_fp_key[30 + 32] = {'G', 'e', 'n', 'u', 'i', 'n', 'e', ' ', 'A', 'd', 'o',
                                             'b', 'e', ' ', 'F', 'l', 'a', 's', 'h', ' ', 'P', 'l',
                                             'a', 'y', 'e', 'r', ' ', '0', '0', '1', RTMP_KEY_TAIL};
static const uint8_t rtmp_fms_key[36 + 32] = {
    'G', 'e', 'n', 'u', 'i', 'n', 'e', ' ', 'A', 'd', 'o', 'b', 'e', ' ', 'F', 'l', 'a', 's',
    'h', ' ', 'M', 'e', 'd', 'i', 'a', ' ', 'S', 'e', 'r', 'v', 'e', 'r', ' ', '0', '0', '1',
    RTMP_KEY_TAIL};
#define RTMP_FP_KEY_PARTIAL 30
#define RTMP_FMS_KEY_PARTIAL 36

/* What we claim to be in S1 when answering a digest handshake: FMS 4.5.0.1.
 * FFmpeg only checks our digest when this version's second byte is >= 3. */
static const uint8_t rtmp_server_version[4] = {4, 5, 0, 1};

void rtmp_handshake_init(rtmp_handshake_t *hs)
{
    memset(hs, 0, sizeof(*hs));
}

const char *rtmp_handshake_kind_name(rtmp_handshake_kind_t kind)
{
    switch (kind) {
    case RTMP_HANDSHAKE_DIGEST_SCHEME0:
        return "digest scheme 0";
    case RTMP_HANDSHAKE_DIGEST_SCHEME1:
        return "digest scheme 1";
    default:
        return "plain";
    }
}

size_t rtmp_handshake_digest_offset(const uint8_t *pkt, rtmp_handshake_kind_t scheme)
{
    /* The four bytes at `base` are summed; the digest follows them within a
     * 728-byte window, so it never overlaps the other scheme's block. */
    size_t base = scheme == RTMP_HANDSHAKE_DIGEST_SCHEME1 ? 772 : 8;
    size_t sum = (size_t)pkt[base] + pkt[base + 1] + pkt[base + 2] + pkt[base + 3];
    return sum % 728 + base + 4;
}

/* HMAC-SHA256 over pkt without the 32 digest bytes at `off`. */
static int rtmp_handshake_hmac_skip(const uint8_t *pkt, size_t off, const uint8_t *key,
                                    size_t keylen, uint8_t out[RTMP_HANDSHAKE_DIGEST_LEN])
{
    uint8_t msg[RTMP_HANDSHAKE_SIZE - RTMP_HANDSHAKE_DIGEST_LEN];
    memcpy(msg, pkt, off);
    memcpy(msg + off, pkt + off + RTMP_HANDSHAKE_DIGEST_LEN,
           RTMP_HANDSHAKE_SIZE - off - RTMP_HANDSHAKE_DIGEST_LEN);
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), key, (int)keylen, msg, sizeof(msg), out, &n) ||
        n != RTMP_HANDSHAKE_DIGEST_LEN)
        return -EIO;
    return 0;
}

/* Finds the client's digest; returns the scheme, or PLAIN. */
static rtmp_handshake_kind_t rtmp_handshake_find_digest(const uint8_t *c1, size_t *off_out)
{
    /* A zero version means a client that does not sign. */
    if (c1[4] == 0 && c1[5] == 0 && c1[6] == 0 && c1[7] == 0)
        return RTMP_HANDSHAKE_PLAIN;
    static const rtmp_handshake_kind_t schemes[2] = {RTMP_HANDSHAKE_DIGEST_SCHEME0,
                                                     RTMP_HANDSHAKE_DIGEST_SCHEME1};
    for (int i = 0; i < 2; i++) {
        size_t off = rtmp_handshake_digest_offset(c1, schemes[i]);
        uint8_t digest[RTMP_HANDSHAKE_DIGEST_LEN];
        if (rtmp_handshake_hmac_skip(c1, off, rtmp_fp_key, RTMP_FP_KEY_PARTIAL, digest) < 0)
            continue;
        if (CRYPTO_memcmp(digest, c1 + off, RTMP_HANDSHAKE_DIGEST_LEN) == 0) {
            *off_out = off;
            return schemes[i];
        }
    }
    return RTMP_HANDSHAKE_PLAIN;
}

static int rtmp_handshake_answer(rtmp_handshake_t *hs)
{
    const uint8_t *c1 = hs->in + 1;
    uint8_t *s1 = hs->out + 1;
    uint8_t *s2 = s1 + RTMP_HANDSHAKE_SIZE;
    size_t c1_off = 0;

    hs->out[0] = RTMP_HANDSHAKE_VERSION;
    hs->kind = rtmp_handshake_find_digest(c1, &c1_off);
    if (RAND_bytes(s1, RTMP_HANDSHAKE_SIZE) != 1)
        return -EIO;
    memset(s1, 0, 4); /* our epoch */

    if (hs->kind == RTMP_HANDSHAKE_PLAIN) {
        memset(s1 + 4, 0, 4);
        memcpy(s2, c1, RTMP_HANDSHAKE_SIZE);
        hs->out_len = sizeof(hs->out);
        return 0;
    }

    memcpy(s1 + 4, rtmp_server_version, 4);
    size_t s1_off = rtmp_handshake_digest_offset(s1, hs->kind);
    uint8_t digest[RTMP_HANDSHAKE_DIGEST_LEN];
    if (rtmp_handshake_hmac_skip(s1, s1_off, rtmp_fms_key, RTMP_FMS_KEY_PARTIAL, digest) < 0)
        return -EIO;
    memcpy(s1 + s1_off, digest, RTMP_HANDSHAKE_DIGEST_LEN);

    /* S2: random, signed with HMAC(key = HMAC(full FMS key, client digest)). */
    if (RAND_bytes(s2, RTMP_HANDSHAKE_SIZE) != 1)
        return -EIO;
    uint8_t key[RTMP_HANDSHAKE_DIGEST_LEN];
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), rtmp_fms_key, sizeof(rtmp_fms_key), c1 + c1_off,
              RTMP_HANDSHAKE_DIGEST_LEN, key, &n))
        return -EIO;
    if (!HMAC(EVP_sha256(), key, sizeof(key), s2, RTMP_HANDSHAKE_SIZE - RTMP_HANDSHAKE_DIGEST_LEN,
              s2 + RTMP_HANDSHAKE_SIZE - RTMP_HANDSHAKE_DIGEST_LEN, &n))
        return -EIO;
    hs->out_len = sizeof(hs->out);
    return 0;
}

int rtmp_handshake_feed(rtmp_handshake_t *hs, const uint8_t *data, size_t len, size_t *consumed)
{
    size_t used = 0;
    int ret = -EAGAIN;
    *consumed = 0;

    if (hs->state == RTMP_HANDSHAKE_WAIT_C0C1) {
        size_t want = sizeof(hs->in) - hs->in_len;
        size_t n = len < want ? len : want;
        if (n)
            memcpy(hs->in + hs->in_len, data, n);
        hs->in_len += n;
        used += n;
        /* Check C0 as soon as it is here: an RTMPE or HTTP client is told
         * off without waiting for 1536 bytes it may never send. */
        if (hs->in_len > 0 && hs->in[0] != RTMP_HANDSHAKE_VERSION) {
            *consumed = used;
            return -EPROTO;
        }
        if (hs->in_len < sizeof(hs->in)) {
            *consumed = used;
            return -EAGAIN;
        }
        ret = rtmp_handshake_answer(hs);
        if (ret < 0) {
            *consumed = used;
            return ret;
        }
        hs->state = RTMP_HANDSHAKE_WAIT_C2;
        hs->in_len = 0;
        ret = -EAGAIN;
    }
    if (hs->state == RTMP_HANDSHAKE_WAIT_C2) {
        size_t want = RTMP_HANDSHAKE_SIZE - hs->in_len;
        size_t left = len - used;
        size_t n = left < want ? left : want;
        hs->in_len += n; /* C2's content is not checked, so not kept */
        used += n;
        if (hs->in_len == RTMP_HANDSHAKE_SIZE) {
            hs->state = RTMP_HANDSHAKE_DONE;
            ret = 0;
        }
    } else if (hs->state == RTMP_HANDSHAKE_DONE) {
        ret = 0;
    }
    *consumed = used;
    return ret;
}
