/*
 * Prometheus text exposition writer and /proc/self reader (metrics.h).
 *
 * Pure string building over a caller-owned buffer; no shared state, so any
 * thread may use its own buffer. The family table makes "HELP/TYPE once per
 * family" a property of the writer rather than of every caller: the report
 * module writes per-stream samples in loops and may start a family in each.
 */
#include "metrics.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

void metrics_buf_init(metrics_buf_t *b)
{
    memset(b, 0, sizeof(*b));
}

void metrics_buf_deinit(metrics_buf_t *b)
{
    buf_deinit(&b->out);
    memset(b, 0, sizeof(*b));
}

static void metrics_put(metrics_buf_t *b, const char *s, size_t n)
{
    buf_append(&b->out, s, n);
}

static void metrics_puts(metrics_buf_t *b, const char *s)
{
    buf_puts(&b->out, s);
}

__attribute__((format(printf, 2, 3))) static void metrics_printf(metrics_buf_t *b,
                                                                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b->out, fmt, ap);
    va_end(ap);
}

char *metrics_buf_take(metrics_buf_t *b, size_t *len)
{
    b->nfamilies = 0;
    return buf_take(&b->out, len);
}

/* HELP text escaping: backslash and newline (exposition format 0.0.4). */
static void metrics_put_help(metrics_buf_t *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            metrics_put(b, "\\\\", 2);
        else if (*s == '\n')
            metrics_put(b, "\\n", 2);
        else
            metrics_put(b, s, 1);
    }
}

bool metrics_family(metrics_buf_t *b, const char *name, const char *type, const char *help)
{
    for (size_t i = 0; i < b->nfamilies; i++)
        if (strcmp(b->families[i], name) == 0)
            return false;
    if (b->nfamilies < METRICS_FAMILIES_MAX)
        b->families[b->nfamilies++] = name;
    metrics_puts(b, "# HELP ");
    metrics_puts(b, name);
    metrics_puts(b, " ");
    metrics_put_help(b, help);
    metrics_puts(b, "\n# TYPE ");
    metrics_puts(b, name);
    metrics_puts(b, " ");
    metrics_puts(b, type);
    metrics_puts(b, "\n");
    return true;
}

int metrics_escape_label(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; *s; s++) {
        const char *rep = NULL;
        if (*s == '\\')
            rep = "\\\\";
        else if (*s == '"')
            rep = "\\\"";
        else if (*s == '\n')
            rep = "\\n";
        size_t k = rep ? 2 : 1;
        if (n + k + 1 > cap)
            return -1;
        if (rep)
            memcpy(out + n, rep, 2);
        else
            out[n] = *s;
        n += k;
    }
    if (n + 1 > cap)
        return -1;
    out[n] = '\0';
    return (int)n;
}

static void metrics_put_label_value(metrics_buf_t *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            metrics_put(b, "\\\\", 2);
        else if (*v == '"')
            metrics_put(b, "\\\"", 2);
        else if (*v == '\n')
            metrics_put(b, "\\n", 2);
        else
            metrics_put(b, v, 1);
    }
}

/* name{k="v",...,extra_k="extra_v"} */
static void metrics_put_name_labels(metrics_buf_t *b, const char *name, const char *suffix,
                                    const char *const *labels, const char *extra_k,
                                    const char *extra_v)
{
    metrics_puts(b, name);
    if (suffix)
        metrics_puts(b, suffix);
    bool any = (labels && labels[0]) || extra_k;
    if (!any)
        return;
    metrics_puts(b, "{");
    bool first = true;
    for (size_t i = 0; labels && labels[i] && labels[i + 1]; i += 2) {
        if (!first)
            metrics_puts(b, ",");
        first = false;
        metrics_puts(b, labels[i]);
        metrics_puts(b, "=\"");
        metrics_put_label_value(b, labels[i + 1]);
        metrics_puts(b, "\"");
    }
    if (extra_k) {
        if (!first)
            metrics_puts(b, ",");
        metrics_puts(b, extra_k);
        metrics_puts(b, "=\"");
        metrics_put_label_value(b, extra_v);
        metrics_puts(b, "\"");
    }
    metrics_puts(b, "}");
}

static void metrics_put_double(metrics_buf_t *b, double v)
{
    if (isnan(v))
        metrics_puts(b, "NaN");
    else if (isinf(v))
        metrics_puts(b, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15)
        metrics_printf(b, "%.0f", v);
    else
        metrics_printf(b, "%.9g", v);
}

void metrics_sample(metrics_buf_t *b, const char *name, const char *const *labels, double value)
{
    metrics_put_name_labels(b, name, NULL, labels, NULL, NULL);
    metrics_puts(b, " ");
    metrics_put_double(b, value);
    metrics_puts(b, "\n");
}

void metrics_sample_u64(metrics_buf_t *b, const char *name, const char *const *labels,
                        uint64_t value)
{
    metrics_put_name_labels(b, name, NULL, labels, NULL, NULL);
    metrics_printf(b, " %" PRIu64 "\n", value);
}

void metrics_single(metrics_buf_t *b, const char *name, const char *type, const char *help,
                    double value)
{
    metrics_family(b, name, type, help);
    metrics_sample(b, name, NULL, value);
}

void metrics_single_u64(metrics_buf_t *b, const char *name, const char *type, const char *help,
                        uint64_t value)
{
    metrics_family(b, name, type, help);
    metrics_sample_u64(b, name, NULL, value);
}

void metrics_samples_by(metrics_buf_t *b, const char *name, const char *label,
                        const metrics_by_t *by, size_t n)
{
    for (size_t i = 0; i < n; i++)
        metrics_sample_u64(b, name, (const char *[]){label, by[i].value, NULL}, by[i].v);
}

void metrics_histogram(metrics_buf_t *b, const char *name, const char *const *labels,
                       const double *bounds, const uint64_t *counts, size_t n, double sum)
{
    uint64_t cum = 0;
    char le[32];
    for (size_t i = 0; i <= n; i++) {
        cum += counts[i];
        if (i < n)
            snprintf(le, sizeof(le), "%.9g", bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        metrics_put_name_labels(b, name, "_bucket", labels, "le", le);
        metrics_printf(b, " %" PRIu64 "\n", cum);
    }
    metrics_put_name_labels(b, name, "_sum", labels, NULL, NULL);
    metrics_puts(b, " ");
    metrics_put_double(b, sum);
    metrics_puts(b, "\n");
    metrics_put_name_labels(b, name, "_count", labels, NULL, NULL);
    metrics_printf(b, " %" PRIu64 "\n", cum);
}

/* ---- /proc/self ----------------------------------------------------------- */

static int metrics_read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (int)n;
}

/* Boot time (unix seconds) from /proc/stat's btime line. */
static int64_t metrics_boot_time(void)
{
    /* fgets splits the long intr line; no piece of it starts with "btime". */
    char buf[512];
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return -1;
    int64_t bt = -1;
    while (fgets(buf, sizeof(buf), f)) {
        long long v;
        if (sscanf(buf, "btime %lld", &v) == 1) {
            bt = v;
            break;
        }
    }
    fclose(f);
    return bt;
}

int metrics_process_read(metrics_process_t *out)
{
    memset(out, 0, sizeof(*out));
    int ret = 0;
    long ticks = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    if (ticks <= 0)
        ticks = 100;
    if (page <= 0)
        page = 4096;

    char buf[1024];
    int n = metrics_read_file("/proc/self/stat", buf, sizeof(buf));
    if (n > 0) {
        /* The command name is in parentheses and may hold spaces or ')':
         * the fields start after the last ')'. Field 3 is the state. */
        char *p = strrchr(buf, ')');
        unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
        long long rss = 0;
        if (p && sscanf(p + 2,
                        "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
                        "%*d %*d %llu %llu %lld",
                        &utime, &stime, &start, &vsize, &rss) == 5) {
            out->cpu_seconds = (double)(utime + stime) / (double)ticks;
            out->virtual_bytes = vsize;
            out->rss_bytes = rss > 0 ? (uint64_t)rss * (uint64_t)page : 0;
            int64_t bt = metrics_boot_time();
            if (bt > 0)
                out->start_time_s = (double)bt + (double)start / (double)ticks;
        } else {
            ret = -EPROTO;
        }
    } else {
        ret = n < 0 ? n : -EIO;
    }

    DIR *d = opendir("/proc/self/fd");
    if (d) {
        uint64_t fds = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.')
                fds++;
        closedir(d);
        out->open_fds = fds > 0 ? fds - 1 : 0; /* not the one opendir holds */
    } else if (ret == 0) {
        ret = -errno;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        out->max_fds = rl.rlim_cur == RLIM_INFINITY ? 0 : (uint64_t)rl.rlim_cur;
    return ret;
}
