/*
 * One growable buffer for the whole program: bytes or text appended at the
 * end, the write-side twin of byteio.h's reader (Redis's sds, h2o's
 * h2o_buffer_t, FFmpeg's AVBPrint).
 *
 * Storage is owned by whoever declares the buf_t; zero-initialise it, then
 * append. The contents are always followed by a NUL (not counted in len),
 * so a text buffer is a C string as it grows. An allocation failure (or a
 * size past buf_t.max, when set) sets the sticky `oom` flag and later
 * appends do nothing, so a writer checks once at the end (like byteio's
 * error flag). `data` and `bytes` are the same storage, typed for text and
 * for binary writers.
 *
 * Threads: none of its own; one thread at a time per buffer.
 */
#ifndef SLUICE_COMMON_BUF_H
#define SLUICE_COMMON_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct buf {
    union {
        char *data;
        uint8_t *bytes;
    };
    size_t len; /* bytes written, without the trailing NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* 0: no limit; else len may not exceed it (sets oom) */
    bool oom;
} buf_t;

/* Makes room for `extra` more bytes (and the NUL). False, with `oom` set,
 * when that is impossible; false at once when `oom` is already set. */
bool buf_reserve(buf_t *b, size_t extra);

static inline void buf_append(buf_t *b, const void *src, size_t n)
{
    if (!buf_reserve(b, n))
        return;
    if (n)
        memcpy(b->bytes + b->len, src, n);
    b->len += n;
    b->bytes[b->len] = '\0';
}

static inline void buf_u8(buf_t *b, uint8_t v)
{
    buf_append(b, &v, 1);
}

static inline void buf_puts(buf_t *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) void buf_printf(buf_t *b, const char *fmt, ...);
__attribute__((format(printf, 2, 0))) void buf_vprintf(buf_t *b, const char *fmt, va_list ap);

/* Empties the buffer and clears `oom`, keeping its storage. */
static inline void buf_reset(buf_t *b)
{
    b->len = 0;
    b->oom = false;
    if (b->data)
        b->data[0] = '\0';
}

/* Frees the storage; the buffer is zeroed (its `max` kept) and reusable. */
void buf_deinit(buf_t *b);

/* Hands the contents (NUL-terminated, free() it) to the caller and leaves
 * the buffer empty; *len (optional) gets their length. NULL after an
 * allocation failure, and an empty string, not NULL, for nothing written. */
char *buf_take(buf_t *b, size_t *len) __attribute__((warn_unused_result));

#endif
