/*
 * Logging: one macro family for the whole process.
 *
 * log_error/log_warn/log_info/log_debug(ctx, fmt, ...) check the level before
 * the arguments are evaluated (as Redis's serverLog does), so a disabled debug
 * line costs one comparison. `ctx` is a short, already-formatted tag naming the
 * session, peer and stream ("rtmp#4 127.0.0.1:50432 stream=demo"); it may be
 * NULL. Never put a stream key in a context or a message.
 *
 * Thread-safe: every line is written with one write(2) call to stderr.
 */
#ifndef SLUICE_COMMON_LOG_H
#define SLUICE_COMMON_LOG_H

#include <stddef.h>

typedef enum log_level {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN = 1,
    LOG_LEVEL_INFO = 2,
    LOG_LEVEL_DEBUG = 3,
} log_level_t;

typedef enum log_format {
    LOG_FORMAT_TEXT = 0,
    LOG_FORMAT_JSON = 1,
} log_format_t;

extern log_level_t log_current_level;

/* Parses "error", "warn", "info", "debug". Returns 0 or -EINVAL. */
int log_level_parse(const char *name, log_level_t *out);
int log_format_parse(const char *name, log_format_t *out);
void log_configure(log_level_t level, log_format_t format);

void log_write(log_level_t level, const char *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies at most `max` bytes of untrusted `src` (length `len`) into `dst`
 * (size `dstlen`), escaping non-printable bytes as \xNN and marking
 * truncation with "...". Always NUL-terminates. Returns dst. */
char *log_escape(char *dst, size_t dstlen, const void *src, size_t len);

#define SLUICE_LOG_AT(level, ctx, ...)                                        \
    do {                                                                      \
        if ((level) <= log_current_level)                                     \
            log_write((level), (ctx), __VA_ARGS__);                           \
    } while (0)

#define log_error(ctx, ...) SLUICE_LOG_AT(LOG_LEVEL_ERROR, ctx, __VA_ARGS__)
#define log_warn(ctx, ...) SLUICE_LOG_AT(LOG_LEVEL_WARN, ctx, __VA_ARGS__)
#define log_info(ctx, ...) SLUICE_LOG_AT(LOG_LEVEL_INFO, ctx, __VA_ARGS__)
#define log_debug(ctx, ...) SLUICE_LOG_AT(LOG_LEVEL_DEBUG, ctx, __VA_ARGS__)

/* Logs a broken invariant (the expression, file:line, function) as an
 * error line and aborts. Called by SLUICE_ASSERT only. */
void log_assert_fail(const char *expr, const char *file, int line, const char *func)
    __attribute__((noreturn));

/* An invariant whose breaking would otherwise corrupt output silently.
 * Always on (no NDEBUG), like Redis's serverAssert: a crash with the
 * expression in the log beats wrong segments in the store. The expression
 * is evaluated once; keep it free of side effects. */
#define SLUICE_ASSERT(e) \
    ((e) ? (void)0 : log_assert_fail(#e, __FILE__, __LINE__, __func__))

#endif
