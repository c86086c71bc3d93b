/*
 * emsg (ISO/IEC 23009-1 5.10.3.3, version 1) boxes carrying ID3v2.4 tags:
 * see emsg.h for the exact bytes. Pure writers into a buf_t; any thread.
 */
#include "emsg.h"

#include <errno.h>
#include <string.h>

#define EMSG_ID3_HEADER 10     /* "ID3", version, revision, flags, size */
#define EMSG_ID3_FRAME_HEADER 10 /* id, size, flags */
#define EMSG_SYNCSAFE_MAX ((1u << 28) - 1)

static void emsg_be32(buf_t *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    buf_append(b, x, sizeof(x));
}

static void emsg_be64(buf_t *b, uint64_t v)
{
    emsg_be32(b, (uint32_t)(v >> 32));
    emsg_be32(b, (uint32_t)v);
}

/* ID3v2.4 sizes: 28 bits, 7 to a byte, the top bit of each byte clear. */
static void emsg_syncsafe(buf_t *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)((v >> 21) & 0x7f), (uint8_t)((v >> 14) & 0x7f),
                    (uint8_t)((v >> 7) & 0x7f), (uint8_t)(v & 0x7f)};
    buf_append(b, x, sizeof(x));
}

/* TXXX body: encoding, description and its NUL, then the value. */
static size_t emsg_txxx_size(size_t len)
{
    return 1 + sizeof(EMSG_ID3_DESCRIPTION) + len;
}

size_t emsg_id3_tag_size(size_t len)
{
    return EMSG_ID3_HEADER + EMSG_ID3_FRAME_HEADER + emsg_txxx_size(len);
}

int emsg_id3_append(buf_t *b, const uint8_t *payload, size_t len)
{
    if (len > EMSG_SYNCSAFE_MAX - EMSG_ID3_FRAME_HEADER - emsg_txxx_size(0))
        return -EMSGSIZE;
    size_t frame = emsg_txxx_size(len);
    buf_append(b, "ID3\x04\x00\x00", 6); /* v2.4.0, no flags */
    emsg_syncsafe(b, (uint32_t)(EMSG_ID3_FRAME_HEADER + frame));
    buf_append(b, "TXXX", 4);
    emsg_syncsafe(b, (uint32_t)frame); /* v2.4: frame sizes are syncsafe too */
    buf_append(b, "\x00\x00", 2);      /* frame flags */
    buf_u8(b, 0x03);                   /* UTF-8 */
    buf_append(b, EMSG_ID3_DESCRIPTION, sizeof(EMSG_ID3_DESCRIPTION)); /* with its NUL */
    buf_append(b, payload, len);
    return 0;
}

int emsg_box_append(buf_t *b, uint32_t timescale, uint64_t presentation_time, uint32_t id,
                    const uint8_t *payload, size_t len)
{
    if (len > EMSG_SYNCSAFE_MAX - EMSG_ID3_FRAME_HEADER - emsg_txxx_size(0))
        return -EMSGSIZE;
    size_t size = 8 + 4 + 4 + 8 + 4 + 4 + sizeof(EMSG_ID3_SCHEME) + 1 + emsg_id3_tag_size(len);
    emsg_be32(b, (uint32_t)size);
    buf_append(b, "emsg", 4);
    emsg_be32(b, 1u << 24); /* version 1, flags 0 */
    emsg_be32(b, timescale);
    emsg_be64(b, presentation_time);
    emsg_be32(b, 0xFFFFFFFFu); /* event_duration: unknown */
    emsg_be32(b, id);
    buf_append(b, EMSG_ID3_SCHEME, sizeof(EMSG_ID3_SCHEME)); /* with its NUL */
    buf_u8(b, 0);                                          /* value: "" */
    return emsg_id3_append(b, payload, len);
}
