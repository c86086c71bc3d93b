/*
 * libFuzzer target for ingest/rtmp_handshake.c. Input: one byte seeding how
 * the rest is split, then what a client would send. Feeds it piecewise like
 * the session does and checks the bookkeeping.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rtmp_handshake_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint32_t seed = data[0] + 1u;
    data++;
    size--;
    rtmp_handshake_t hs;
    rtmp_handshake_init(&hs);
    size_t pos = 0;
    bool replied = false;
    while (pos < size) {
        seed = seed * 1103515245u + 12345u;
        size_t piece = 1 + (seed >> 16) % 2048;
        if (piece > size - pos)
            piece = size - pos;
        uint8_t *copy = malloc(piece);
        if (!copy)
            return 0;
        memcpy(copy, data + pos, piece);
        size_t used = 0;
        int ret = rtmp_handshake_feed(&hs, copy, piece, &used);
        free(copy);
        if (used > piece)
            abort();
        if (hs.out_len) {
            if (replied || hs.out_len != 1 + 2 * RTMP_HANDSHAKE_SIZE || hs.out[0] != 3)
                abort();
            replied = true;
            hs.out_len = 0;
        }
        pos += used;
        if (ret == 0) {
            if (hs.state != RTMP_HANDSHAKE_DONE || !replied || pos != 1 + 2 * RTMP_HANDSHAKE_SIZE)
                abort();
            break;
        }
        if (ret != -EAGAIN)
            break;
        if (used != piece)
            abort(); /* -EAGAIN means everything was taken */
    }
    return 0;
}
