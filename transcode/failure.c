/*
 * The per-thread failure note of failure_internal.h: a fixed buffer in
 * thread-local storage, filled by the stage that fails and by the layers it
 * returns through, read and reset by the stream worker (transcode.c).
 */
#include "failure_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char failure_buf[FAILURE_TEXT_MAX];
static _Thread_local size_t failure_len;

void failure_reset(void)
{
    failure_buf[0] = '\0';
    failure_len = 0;
}

void failure_note(const char *fmt, ...)
{
    if (failure_len + 1 >= sizeof(failure_buf))
        return;
    if (failure_len > 0) {
        int n = snprintf(failure_buf + failure_len, sizeof(failure_buf) - failure_len, "; ");
        if (n < 0)
            return;
        failure_len += (size_t)n;
        if (failure_len >= sizeof(failure_buf)) {
            failure_len = sizeof(failure_buf) - 1;
            return;
        }
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(failure_buf + failure_len, sizeof(failure_buf) - failure_len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        failure_buf[failure_len] = '\0';
        return;
    }
    failure_len += (size_t)n;
    if (failure_len >= sizeof(failure_buf))
        failure_len = sizeof(failure_buf) - 1;
}

const char *failure_text(void)
{
    return failure_buf;
}
