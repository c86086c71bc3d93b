/*
 * Bounded big-endian reader for untrusted bytes (dav1d getbits.h, FFmpeg
 * GetByteContext). Reads past the end return zeros and set a sticky error
 * flag; a parser checks `br.error` once per record instead of after each read.
 * Header-only; no allocation; any thread.
 */
#ifndef SLUICE_COMMON_BYTEIO_H
#define SLUICE_COMMON_BYTEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct byteio_reader {
    const uint8_t *start;
    const uint8_t *pos;
    const uint8_t *end;
    bool error;
} byteio_reader_t;

static inline void byteio_init(byteio_reader_t *br, const void *data, size_t len)
{
    br->start = data;
    br->pos = data;
    /* Pointer arithmetic on NULL is undefined even with a zero length, and
     * an empty input may well come as (NULL, 0). */
    br->end = len ? br->start + len : br->start;
    br->error = false;
}

static inline size_t byteio_left(const byteio_reader_t *br)
{
    return (size_t)(br->end - br->pos);
}

static inline size_t byteio_tell(const byteio_reader_t *br)
{
    return (size_t)(br->pos - br->start);
}

/* Returns a pointer to n bytes and advances, or NULL (and sets error). */
static inline const uint8_t *byteio_take(byteio_reader_t *br, size_t n)
{
    if (br->error || byteio_left(br) < n) {
        br->error = true;
        br->pos = br->end;
        return NULL;
    }
    const uint8_t *p = br->pos;
    if (n)
        br->pos += n;
    return p;
}

static inline void byteio_skip(byteio_reader_t *br, size_t n)
{
    (void)byteio_take(br, n);
}

static inline uint8_t byteio_u8(byteio_reader_t *br)
{
    const uint8_t *p = byteio_take(br, 1);
    return p ? p[0] : 0;
}

static inline uint16_t byteio_be16(byteio_reader_t *br)
{
    const uint8_t *p = byteio_take(br, 2);
    return p ? (uint16_t)((p[0] << 8) | p[1]) : 0;
}

static inline uint32_t byteio_be24(byteio_reader_t *br)
{
    const uint8_t *p = byteio_take(br, 3);
    return p ? ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | p[2] : 0;
}

static inline uint32_t byteio_be32(byteio_reader_t *br)
{
    const uint8_t *p = byteio_take(br, 4);
    return p ? ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3] : 0;
}

static inline uint32_t byteio_le32(byteio_reader_t *br)
{
    const uint8_t *p = byteio_take(br, 4);
    return p ? ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0] : 0;
}

static inline uint64_t byteio_be64(byteio_reader_t *br)
{
    uint64_t hi = byteio_be32(br);
    return (hi << 32) | byteio_be32(br);
}

/* Big-endian writers into a caller-sized buffer. */
static inline void byteio_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void byteio_put_be24(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 16);
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)v;
}

static inline void byteio_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void byteio_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

#endif
