/*
 * Server side of the RTMP handshake: C0+C1 in, S0+S1+S2 out, C2 in.
 * Both the plain handshake (S2 echoes C1) and the digest-signed "complex"
 * one that Flash-era clients, librtmp (OBS) and FFmpeg send (HMAC-SHA256
 * with the Genuine FP/FMS keys, digest at the scheme 0 or scheme 1 offset);
 * the answer uses the variant the client used.
 *
 * A rtmp_handshake_t is caller-owned storage driven by one thread.
 */
#ifndef SLUICE_INGEST_RTMP_HANDSHAKE_INTERNAL_H
#define SLUICE_INGEST_RTMP_HANDSHAKE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#define RTMP_HANDSHAKE_SIZE 1536
#define RTMP_HANDSHAKE_VERSION 3
#define RTMP_HANDSHAKE_DIGEST_LEN 32

typedef enum rtmp_handshake_kind {
    RTMP_HANDSHAKE_PLAIN = 0,
    RTMP_HANDSHAKE_DIGEST_SCHEME0, /* digest offset from C1 bytes 8..11 */
    RTMP_HANDSHAKE_DIGEST_SCHEME1, /* digest offset from C1 bytes 772..775 */
} rtmp_handshake_kind_t;

typedef enum rtmp_handshake_state {
    RTMP_HANDSHAKE_WAIT_C0C1 = 0,
    RTMP_HANDSHAKE_WAIT_C2,
    RTMP_HANDSHAKE_DONE,
} rtmp_handshake_state_t;

typedef struct rtmp_handshake {
    rtmp_handshake_state_t state;
    rtmp_handshake_kind_t kind;
    uint8_t in[1 + RTMP_HANDSHAKE_SIZE];
    size_t in_len;
    /* S0+S1+S2 once C0+C1 is in; the caller sends out[0..out_len) and then
     * sets out_len to 0. */
    uint8_t out[1 + 2 * RTMP_HANDSHAKE_SIZE];
    size_t out_len;
} rtmp_handshake_t;

void rtmp_handshake_init(rtmp_handshake_t *hs);

/*
 * Feeds bytes from the client; *consumed says how many were used (bytes
 * after C2 belong to the chunk stream). Returns 0 once C2 has been read,
 * -EAGAIN while more bytes are needed (check out_len: the reply is ready
 * after C0+C1), -EPROTO for a version other than 3 (RTMPE's 6 included),
 * -EIO when the random source fails.
 */
int rtmp_handshake_feed(rtmp_handshake_t *hs, const uint8_t *data, size_t len, size_t *consumed)
    __attribute__((warn_unused_result));

/* Where a scheme's digest sits in a 1536-byte C1/S1 (for tests too). */
size_t rtmp_handshake_digest_offset(const uint8_t *pkt, rtmp_handshake_kind_t scheme);

const char *rtmp_handshake_kind_name(rtmp_handshake_kind_t kind);

#endif
