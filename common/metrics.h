/*
 * Prometheus text exposition (format 0.0.4) and the process's own figures.
 *
 * metrics_buf_t is a text buffer (buf.h) that writes metric families the
 * way Prometheus and promtool want them: "# HELP" and "# TYPE" exactly once
 * per family (a family written twice keeps its first header), label values
 * escaped (backslash, double quote, newline), histograms as cumulative
 * _bucket{le="..."} lines ending in le="+Inf", then _sum and _count.
 * An allocation failure sets a sticky flag; metrics_buf_take() then returns
 * NULL, so a writer checks once at the end.
 *
 * metrics_process_read() reads /proc/self (CPU seconds, resident bytes,
 * open descriptors, start time). Any thread; each buffer is used by one
 * thread at a time.
 */
#ifndef SLUICE_COMMON_METRICS_H
#define SLUICE_COMMON_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define METRICS_FAMILIES_MAX 256

typedef struct metrics_buf {
    buf_t out;
    const char *families[METRICS_FAMILIES_MAX]; /* names whose header is out (borrowed) */
    size_t nfamilies;
} metrics_buf_t;

void metrics_buf_init(metrics_buf_t *b);
void metrics_buf_deinit(metrics_buf_t *b);
/* The text written so far, NUL-terminated, handed to the caller (free());
 * NULL after an allocation failure. The buffer is left empty. */
char *metrics_buf_take(metrics_buf_t *b, size_t *len);

/* Starts family `name` (borrowed until the buffer is taken: use string
 * literals). type: "counter", "gauge", "histogram". Returns false when the
 * family was already started (its header is not repeated). */
bool metrics_family(metrics_buf_t *b, const char *name, const char *type, const char *help);

/* One sample line. labels: NULL, or name/value pairs ending with NULL,
 * e.g. (const char *[]){"stream", id, NULL}. Values are escaped. */
void metrics_sample(metrics_buf_t *b, const char *name, const char *const *labels, double value);
void metrics_sample_u64(metrics_buf_t *b, const char *name, const char *const *labels,
                        uint64_t value);

/* A family with one unlabelled sample: metrics_family, then the sample. */
void metrics_single(metrics_buf_t *b, const char *name, const char *type, const char *help,
                    double value);
void metrics_single_u64(metrics_buf_t *b, const char *name, const char *type, const char *help,
                        uint64_t value);

/* One sample per value of one label: name{label="value"} v for each of
 * the n pairs (a counter broken down by result, reason, ...). */
typedef struct metrics_by {
    const char *value;
    uint64_t v;
} metrics_by_t;
void metrics_samples_by(metrics_buf_t *b, const char *name, const char *label,
                        const metrics_by_t *by, size_t n);

/* A histogram's samples (family `name` must be started). bounds: n upper
 * bounds, increasing; counts: n + 1 per-bucket (not cumulative) counts, the
 * last being the observations above bounds[n - 1]. Writes name_bucket with
 * le for each bound and "+Inf" (cumulative), name_sum and name_count. */
void metrics_histogram(metrics_buf_t *b, const char *name, const char *const *labels,
                       const double *bounds, const uint64_t *counts, size_t n, double sum);

/* Writes s escaped as a label value (\\, \", \n) into out; returns the
 * escaped length, or -1 when it does not fit in cap (NUL included). */
int metrics_escape_label(const char *s, char *out, size_t cap);

typedef struct metrics_process {
    double cpu_seconds;      /* user + system */
    uint64_t rss_bytes;      /* resident set */
    uint64_t virtual_bytes;
    uint64_t open_fds;
    uint64_t max_fds;        /* RLIMIT_NOFILE soft limit */
    double start_time_s;     /* unix time the process started */
} metrics_process_t;

/* Reads the figures of the calling process. 0, or a negative errno when
 * /proc could not be read (fields that could be read are filled). */
int metrics_process_read(metrics_process_t *out);

#endif
