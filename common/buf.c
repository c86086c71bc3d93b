/* See buf.h. */
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>

bool buf_reserve(buf_t *b, size_t extra)
{
    if (b->oom)
        return false;
    if (extra > SIZE_MAX / 2 - b->len || (b->max && b->len + extra > b->max)) {
        b->oom = true;
        return false;
    }
    size_t need = b->len + extra + 1; /* the NUL */
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void buf_vprintf(buf_t *b, const char *fmt, va_list ap)
{
    if (b->oom)
        return;
    va_list again;
    va_copy(again, ap);
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
    if (n < 0) {
        b->oom = true;
    } else if ((size_t)n < room) {
        b->len += (size_t)n;
    } else if (buf_reserve(b, (size_t)n)) {
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
        b->len += (size_t)n;
    }
    va_end(again);
}

void buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void buf_deinit(buf_t *b)
{
    size_t max = b->max;
    free(b->data);
    memset(b, 0, sizeof(*b));
    b->max = max;
}

char *buf_take(buf_t *b, size_t *len)
{
    if (len)
        *len = 0;
    if (!buf_reserve(b, 0)) {
        buf_deinit(b);
        return NULL;
    }
    char *s = b->data;
    s[b->len] = '\0';
    if (len)
        *len = b->len;
    size_t max = b->max;
    memset(b, 0, sizeof(*b));
    b->max = max;
    return s;
}
