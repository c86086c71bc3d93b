/*
 * The log sink. Any thread may call log_write(); a line is formatted into a
 * stack buffer and written with one write(2), so lines from different
 * threads never interleave. JSON output escapes the message so that a log
 * shipper can parse every line.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/log.h>

log_level_t log_current_level = LOG_LEVEL_INFO;
static log_format_t log_current_format = LOG_FORMAT_TEXT;

static const char *const log_level_names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *name, log_level_t *out)
{
    for (size_t i = 0; i < sizeof(log_level_names) / sizeof(log_level_names[0]); i++) {
        if (strcmp(name, log_level_names[i]) == 0) {
            *out = (log_level_t)i;
            return 0;
        }
    }
    return -EINVAL;
}

int log_format_parse(const char *name, log_format_t *out)
{
    if (strcmp(name, "text") == 0)
        *out = LOG_FORMAT_TEXT;
    else if (strcmp(name, "json") == 0)
        *out = LOG_FORMAT_JSON;
    else
        return -EINVAL;
    return 0;
}

void log_configure(log_level_t level, log_format_t format)
{
    log_current_level = level;
    log_current_format = format;
}

/* Appends `s` JSON-escaped to buf[*pos..cap). */
static void log_json_append(char *buf, size_t cap, size_t *pos, const char *s)
{
    for (; *s && *pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[(*pos)++] = '\\';
            buf[(*pos)++] = (char)c;
        } else if (c < 0x20) {
            *pos += (size_t)snprintf(buf + *pos, cap - *pos, "\\u%04x", c);
        } else {
            buf[(*pos)++] = (char)c;
        }
    }
}

void log_write(log_level_t level, const char *ctx, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    /* A message never spans lines: a line per event keeps logs greppable. */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

    char line[4096];
    size_t pos = 0;
    if (log_current_format == LOG_FORMAT_JSON) {
        pos = (size_t)snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\"", when,
                               log_level_names[level]);
        if (ctx) {
            pos += (size_t)snprintf(line + pos, sizeof(line) - pos, ",\"ctx\":\"");
            log_json_append(line, sizeof(line), &pos, ctx);
            line[pos++] = '"';
        }
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, ",\"msg\":\"");
        log_json_append(line, sizeof(line), &pos, msg);
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "\"}\n");
    } else {
        pos = (size_t)snprintf(line, sizeof(line), "%s %-5s %s%s%s\n", when,
                               log_level_names[level], ctx ? ctx : "", ctx ? ": " : "", msg);
    }
    if (pos >= sizeof(line)) {
        pos = sizeof(line) - 1;
        line[pos - 1] = '\n';
    }
    ssize_t w = write(STDERR_FILENO, line, pos);
    (void)w;
}

char *log_escape(char *dst, size_t dstlen, const void *src, size_t len)
{
    const unsigned char *s = src;
    size_t o = 0;
    if (dstlen == 0)
        return dst;
    for (size_t i = 0; i < len; i++) {
        /* Reserve room for the worst case escape plus "..." and NUL. */
        if (o + 4 + 4 > dstlen) {
            if (o + 4 <= dstlen) {
                memcpy(dst + o, "...", 3);
                o += 3;
            }
            break;
        }
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\') {
            dst[o++] = (char)s[i];
        } else {
            o += (size_t)snprintf(dst + o, dstlen - o, "\\x%02x", s[i]);
        }
    }
    dst[o < dstlen ? o : dstlen - 1] = '\0';
    return dst;
}

static void log_libav_cb(void *avcl, int level, const char *fmt, va_list vl)
{
    log_level_t ours;
    if (level <= AV_LOG_ERROR)
        ours = LOG_LEVEL_ERROR;
    else if (level <= AV_LOG_WARNING)
        ours = LOG_LEVEL_WARN;
    else if (level <= AV_LOG_INFO)
        ours = LOG_LEVEL_DEBUG; /* libav's info chatter is debug for us */
    else
        return;
    if (ours > log_current_level)
        return;
    char msg[1024];
    int print_prefix = 1;
    av_log_format_line2(avcl, level, fmt, vl, msg, sizeof(msg), &print_prefix);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if (n > 0)
        log_write(ours, "libav", "%s", msg);
}

void log_route_libav(void)
{
    av_log_set_callback(log_libav_cb);
}
