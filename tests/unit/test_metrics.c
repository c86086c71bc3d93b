/* Unit tests for common/metrics.c: the exposition writer's escaping, one
 * header per family, cumulative histograms ending in +Inf, and the /proc
 * reader against what the test process knows about itself. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics.h"

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void test_family_header_once(void **state)
{
    (void)state;
    metrics_buf_t b;
    metrics_buf_init(&b);
    assert_true(metrics_family(&b, "sluice_x_total", "counter", "An x.\nSecond \\ line"));
    metrics_sample_u64(&b, "sluice_x_total", (const char *[]){"stream", "a", NULL}, 1);
    assert_false(metrics_family(&b, "sluice_x_total", "counter", "An x."));
    metrics_sample_u64(&b, "sluice_x_total", (const char *[]){"stream", "b", NULL},
                       18446744073709551615ull);
    assert_true(metrics_family(&b, "sluice_up", "gauge", "Up."));
    metrics_sample(&b, "sluice_up", NULL, 1);
    const metrics_by_t by[] = {{"ok", 3}, {"failed", 0}};
    metrics_samples_by(&b, "sluice_up", "result", by, 2);
    size_t len;
    char *s = metrics_buf_take(&b, &len);
    assert_non_null(s);
    assert_int_equal(strlen(s), len);
    assert_int_equal(count_of(s, "# TYPE sluice_x_total counter\n"), 1);
    assert_int_equal(count_of(s, "# HELP sluice_x_total An x.\\nSecond \\\\ line\n"), 1);
    assert_non_null(strstr(s, "sluice_x_total{stream=\"a\"} 1\n"));
    assert_non_null(strstr(s, "sluice_x_total{stream=\"b\"} 18446744073709551615\n"));
    assert_non_null(strstr(s, "\nsluice_up 1\nsluice_up{result=\"ok\"} 3\nsluice_up{result=\"failed\"} 0\n"));
    free(s);
    metrics_buf_deinit(&b);
}

static void test_label_escaping(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(metrics_escape_label("a\"b\\c\nd", out, sizeof(out)), 10);
    assert_string_equal(out, "a\\\"b\\\\c\\nd");
    assert_int_equal(metrics_escape_label("abcdef", out, 6), -1);
    assert_int_equal(metrics_escape_label("abcde", out, 6), 5);

    metrics_buf_t b;
    metrics_buf_init(&b);
    metrics_family(&b, "sluice_v", "gauge", "V.");
    metrics_sample(&b, "sluice_v", (const char *[]){"kind", "q\"x\\\n", "code", "200", NULL}, 0.25);
    metrics_sample(&b, "sluice_v", (const char *[]){"kind", "nan", NULL}, 0.0 / 0.0);
    size_t len;
    char *s = metrics_buf_take(&b, &len);
    assert_non_null(s);
    assert_non_null(strstr(s, "sluice_v{kind=\"q\\\"x\\\\\\n\",code=\"200\"} 0.25\n"));
    assert_non_null(strstr(s, "sluice_v{kind=\"nan\"} NaN\n"));
    free(s);
}

static void test_histogram_cumulative(void **state)
{
    (void)state;
    metrics_buf_t b;
    metrics_buf_init(&b);
    static const double bounds[] = {0.005, 0.1, 1};
    uint64_t counts[] = {2, 0, 3, 4}; /* 4 above 1 s */
    metrics_family(&b, "sluice_lat_seconds", "histogram", "Latency.");
    metrics_histogram(&b, "sluice_lat_seconds", (const char *[]){"kind", "part", NULL}, bounds,
                      counts, 3, 12.5);
    size_t len;
    char *s = metrics_buf_take(&b, &len);
    assert_non_null(s);
    assert_non_null(strstr(s, "sluice_lat_seconds_bucket{kind=\"part\",le=\"0.005\"} 2\n"));
    assert_non_null(strstr(s, "sluice_lat_seconds_bucket{kind=\"part\",le=\"0.1\"} 2\n"));
    assert_non_null(strstr(s, "sluice_lat_seconds_bucket{kind=\"part\",le=\"1\"} 5\n"));
    assert_non_null(strstr(s, "sluice_lat_seconds_bucket{kind=\"part\",le=\"+Inf\"} 9\n"));
    assert_non_null(strstr(s, "sluice_lat_seconds_sum{kind=\"part\"} 12.5\n"));
    assert_non_null(strstr(s, "sluice_lat_seconds_count{kind=\"part\"} 9\n"));
    /* Buckets come in increasing order, +Inf last, before _sum. */
    assert_true(strstr(s, "le=\"0.005\"") < strstr(s, "le=\"1\""));
    assert_true(strstr(s, "le=\"+Inf\"") < strstr(s, "_sum"));
    free(s);
}

static void test_large_output_grows(void **state)
{
    (void)state;
    metrics_buf_t b;
    metrics_buf_init(&b);
    metrics_family(&b, "sluice_many", "gauge", "Many.");
    char id[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(id, sizeof(id), "stream-%d", i);
        metrics_sample(&b, "sluice_many", (const char *[]){"stream", id, NULL}, i);
    }
    size_t len;
    char *s = metrics_buf_take(&b, &len);
    assert_non_null(s);
    assert_int_equal(count_of(s, "sluice_many{"), 2000);
    assert_non_null(strstr(s, "sluice_many{stream=\"stream-1999\"} 1999\n"));
    free(s);
    /* The buffer is reusable after a take, headers included. */
    assert_true(metrics_family(&b, "sluice_many", "gauge", "Many."));
    metrics_buf_deinit(&b);
}

static void test_process_stats(void **state)
{
    (void)state;
    metrics_process_t a;
    assert_int_equal(metrics_process_read(&a), 0);
    /* Burn some CPU and open two descriptors: both must show. */
    volatile double x = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    do {
        for (int i = 0; i < 100000; i++)
            x += i * 0.5;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    } while ((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec) < 150000000L);
    int fd1 = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int fd2 = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(fd1 >= 0 && fd2 >= 0);
    metrics_process_t b;
    assert_int_equal(metrics_process_read(&b), 0);
    assert_true(b.cpu_seconds >= a.cpu_seconds + 0.1);
    assert_int_equal(b.open_fds, a.open_fds + 2);
    assert_true(b.rss_bytes > 1u << 20);
    assert_true(b.virtual_bytes >= b.rss_bytes);
    double now = (double)time(NULL);
    assert_true(b.start_time_s > now - 3600 && b.start_time_s <= now + 2);
    close(fd1);
    close(fd2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_family_header_once),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_histogram_cumulative),
        cmocka_unit_test(test_large_output_grows),
        cmocka_unit_test(test_process_stats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
