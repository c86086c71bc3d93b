/*
 * The log sink. Any thread may call log_write(); a line is formatted into a
 * stack buffer and written with one write(2), so lines from different
 * threads never interleave. JSON output escapes the message so that a log
 * shipper can parse every line.
 *
 * Under systemd, when standard error is the journal's stream (JOURNAL_STREAM
 * names its device and inode), each line starts with its syslog priority
 * ("<3>" error .. "<7>" debug), which journald strips and records, so
 * `journalctl -p warning` works; text lines then leave the time stamp to
 * the journal.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

log_level_t log_current_level = LOG_LEVEL_INFO;
static log_format_t log_current_format = LOG_FORMAT_TEXT;
static bool log_to_journal;

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

/* True when stderr is the stream systemd connected to the journal: the
 * variable alone is not enough, since children inherit it while their
 * stderr may go elsewhere (sd_journal_stream_fd(3)). */
static bool log_stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    if (!js || !*js)
        return false;
    unsigned long long dev = 0, ino = 0;
    char tail;
    if (sscanf(js, "%llu:%llu%c", &dev, &ino, &tail) != 2)
        return false;
    struct stat st;
    if (fstat(STDERR_FILENO, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_configure(log_level_t level, log_format_t format)
{
    log_current_level = level;
    log_current_format = format;
    log_to_journal = log_stderr_is_journal();
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

    /* syslog priorities: err, warning, info, debug */
    static const char log_priorities[] = {'3', '4', '6', '7'};
    char line[4096];
    size_t pos = 0;
    if (log_to_journal) {
        line[pos++] = '<';
        line[pos++] = log_priorities[level];
        line[pos++] = '>';
    }
    if (log_current_format == LOG_FORMAT_JSON) {
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos,
                                "{\"ts\":\"%s\",\"level\":\"%s\"", when,
                                log_level_names[level]);
        if (ctx) {
            pos += (size_t)snprintf(line + pos, sizeof(line) - pos, ",\"ctx\":\"");
            log_json_append(line, sizeof(line), &pos, ctx);
            line[pos++] = '"';
        }
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, ",\"msg\":\"");
        log_json_append(line, sizeof(line), &pos, msg);
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "\"}\n");
    } else if (log_to_journal) {
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "%-5s %s%s%s\n",
                                log_level_names[level], ctx ? ctx : "", ctx ? ": " : "", msg);
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

void log_assert_fail(const char *expr, const char *file, int line, const char *func)
{
    log_write(LOG_LEVEL_ERROR, NULL, "assertion failed: %s (%s:%d, %s)", expr, file, line, func);
    abort();
}
