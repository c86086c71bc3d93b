/* Unit tests for control/report.c's audience: session records put straight
 * into a memory store (as the origins write them), the audience tick
 * driven by hand (report_internal.h) with the streams "live here", and
 * what follows: the "audience" and "audience.last" records in the store,
 * the status object (live, idle, the request-count fallback), /metrics
 * (families, labels stream and rendition only) and the stats; and a Redis
 * store that goes away mid-broadcast (the last figures stay, no crash). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "audience.h"
#include "report_internal.h"
#include "store.h"
#include "test_util.h"

#define WALL_MS 1796640000000LL /* 2026-12-07T10:40:00Z */

static void put_session(store_t *st, const char *stream, const char *sid, audience_state_t state,
                        const char *rend, int64_t watch_ms, int64_t stall_ms)
{
    audience_session_t s;
    audience_session_init(&s);
    s.state = state;
    if (rend)
        snprintf(s.rendition, sizeof(s.rendition), "%s", rend);
    s.watch_ms = watch_ms;
    s.stall_ms = stall_ms;
    s.startup_ms = 900;
    s.latency_ms = 5000;
    char rec[AUDIENCE_RECORD_MAX], field[100];
    assert_true(audience_record_format(&s, rec, sizeof(rec)) > 0);
    snprintf(field, sizeof(field), "%s%s", AUDIENCE_FIELD_PREFIX, sid);
    assert_int_equal(store_meta_put(st, stream, field, rec, 30000), 0);
}

static report_t *report_on(store_t *st)
{
    report_params_t p = {.store = st, .segment_duration = 2};
    report_t *r = NULL;
    assert_int_equal(report_new_unstarted(&p, &r), 0);
    return r;
}

static void tick(report_t *r, const char *stream, int64_t wall_ms)
{
    const char *live[] = {stream};
    report_audience_tick(r, live, stream ? 1 : 0, wall_ms);
}

static json_t *meta_json(store_t *st, const char *stream, const char *field)
{
    char *text = NULL;
    if (store_meta_get(st, stream, field, &text) < 0)
        return NULL;
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    return j;
}

static json_t *status(report_t *r, const char *stream)
{
    json_t *o = json_object();
    report_stream_status(r, stream, o);
    return o;
}

static json_int_t jint(json_t *o, const char *path1, const char *path2)
{
    json_t *v = json_object_get(o, path1);
    if (path2)
        v = json_object_get(v, path2);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* The value of the first sample line that starts with `prefix`; -1 none. */
static double metric(const char *text, const char *prefix)
{
    const char *p = text;
    size_t n = strlen(prefix);
    while (p && *p) {
        if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -1;
}

/* Every sluice_audience_ sample carries only stream (and rendition). */
static void check_audience_labels(const char *text)
{
    const char *p = text;
    while (p && *p) {
        if (strncmp(p, "sluice_audience_", 16) == 0) {
            const char *brace = strchr(p, '{');
            const char *eol = strchr(p, '\n');
            assert_non_null(brace);
            assert_true(!eol || brace < eol);
            const char *q = brace + 1;
            while (*q != '}') {
                bool ok = strncmp(q, "stream=\"", 8) == 0 || strncmp(q, "rendition=\"", 11) == 0;
                if (!ok)
                    fail_msg("unexpected label in: %.120s", p);
                q = strchr(q, '"');
                q = strchr(q + 1, '"') + 1;
                if (*q == ',')
                    q++;
            }
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
}

static void test_live_audience(void **state)
{
    (void)state;
    store_t *st;
    assert_int_equal(store_open("memory", &st), 0);
    report_t *r = report_on(st);
    /* Another node writes the stream's status (the ingest node's report
     * thread); the audience comes from this report's own aggregation. */
    assert_int_equal(store_meta_put(st, "s1", "status", "{\"state\":\"live\"}", 60000), 0);
    put_session(st, "s1", "aaaaaaaaaaaaaaaa1", AUDIENCE_PLAYING, "720p", 10000, 0);
    put_session(st, "s1", "aaaaaaaaaaaaaaaa2", AUDIENCE_PLAYING, "360p", 20000, 0);
    put_session(st, "s1", "aaaaaaaaaaaaaaaa3", AUDIENCE_STALLED, "360p", 6000, 4000);
    assert_int_equal(store_meta_put(st, "s1", "aud.garbage", "nonsense", 30000), 0);
    /* Another stream's sessions are not this one's. */
    put_session(st, "s2", "bbbbbbbbbbbbbbbb1", AUDIENCE_PLAYING, "720p", 1000, 0);
    tick(r, "s1", WALL_MS);

    /* The store record the origins' viewers.json reads. */
    json_t *a = meta_json(st, "s1", "audience");
    assert_non_null(a);
    assert_int_equal(jint(a, "viewers", NULL), 3);
    assert_string_equal(json_string_value(json_object_get(a, "source")), "beacons");
    assert_int_equal(jint(a, "renditions", "720p"), 1);
    assert_int_equal(jint(a, "renditions", "360p"), 2);
    assert_int_equal(jint(a, "states", "stalled"), 1);
    assert_true(json_real_value(json_object_get(a, "rebuffer_ratio")) == 0.1);
    assert_int_equal(jint(a, "startup_ms", "p50"), 900);
    assert_string_equal(json_string_value(json_object_get(a, "updated")), "2026-12-07T10:40:00Z");
    json_decref(a);

    /* The status: viewers from the audience. */
    json_t *s = status(r, "s1");
    assert_string_equal(json_string_value(json_object_get(s, "state")), "live");
    assert_int_equal(jint(s, "viewers", NULL), 3);
    assert_int_equal(jint(s, "audience", "viewers"), 3);
    assert_int_equal(jint(s, "audience", "beacon_viewers"), 3);
    assert_int_equal(jint(s, "audience", "request_viewers"), 0);
    assert_int_equal(jint(s, "audience", "peak"), 3);
    assert_int_equal(jint(s, "audience", "sessions_total"), 3);
    assert_true(json_real_value(json_object_get(json_object_get(s, "audience"), "watch_time_s")) ==
                36.0);
    json_decref(s);

    /* /metrics and the stats. */
    size_t len = 0;
    char *m = report_metrics(r, &len);
    assert_non_null(m);
    assert_non_null(strstr(m, "# TYPE sluice_audience_viewers gauge"));
    assert_non_null(strstr(m, "# HELP sluice_audience_rendition_viewers "));
    assert_non_null(strstr(m, "# TYPE sluice_audience_sessions_total counter"));
    assert_true(metric(m, "sluice_audience_viewers{stream=\"s1\"}") == 3);
    assert_true(metric(m, "sluice_audience_rendition_viewers{stream=\"s1\",rendition=\"360p\"}") ==
                2);
    assert_true(metric(m, "sluice_audience_stalled{stream=\"s1\"}") == 1);
    assert_true(metric(m, "sluice_audience_watch_seconds_total{stream=\"s1\"}") == 36);
    assert_true(metric(m, "sluice_audience_startup_seconds_p90{stream=\"s1\"}") == 0.9);
    assert_true(metric(m, "sluice_audience_latency_seconds_p50{stream=\"s1\"}") == 5);
    assert_true(metric(m, "sluice_audience_rebuffer_ratio{stream=\"s1\"}") == 0.1);
    assert_true(metric(m, "sluice_audience_viewers{stream=\"s2\"}") == -1);
    check_audience_labels(m);
    free(m);
    json_t *stats = report_stats(r);
    assert_int_equal(jint(stats, "audience", "viewers"), 3);
    assert_int_equal(jint(stats, "audience", "streams"), 1);
    json_decref(stats);

    /* One ends (the origin writes it at once, TTL 5 s): the count drops at
     * the next scan; a fourth starts; the first plays on. Peak stays 3. */
    put_session(st, "s1", "aaaaaaaaaaaaaaaa2", AUDIENCE_ENDED, "360p", 22000, 0);
    put_session(st, "s1", "aaaaaaaaaaaaaaaa4", AUDIENCE_STARTING, NULL, 0, 0);
    put_session(st, "s1", "aaaaaaaaaaaaaaaa1", AUDIENCE_PLAYING, "720p", 12000, 0);
    tick(r, "s1", WALL_MS + 2000);
    s = status(r, "s1");
    assert_int_equal(jint(s, "viewers", NULL), 3);
    assert_int_equal(jint(s, "audience", "beacon_viewers"), 3);
    json_decref(s);
    a = meta_json(st, "s1", "audience");
    assert_int_equal(jint(a, "viewers", NULL), 3);
    assert_int_equal(jint(a, "states", "starting"), 1);
    assert_int_equal(jint(a, "peak", NULL), 3);
    assert_int_equal(jint(a, "sessions_total", NULL), 4);
    assert_true(json_real_value(json_object_get(a, "watch_time_s")) == 40.0);
    json_decref(a);

    /* The broadcast ends (the stream leaves the local set): the totals stay
     * as "audience.last", the live record is withdrawn, the idle status
     * shows them, /metrics forgets the stream. */
    tick(r, NULL, WALL_MS + 4000);
    json_t *last = meta_json(st, "s1", "audience.last");
    assert_non_null(last);
    assert_int_equal(jint(last, "peak", NULL), 3);
    assert_int_equal(jint(last, "sessions_total", NULL), 4);
    assert_true(json_real_value(json_object_get(last, "watch_time_s")) == 40.0);
    assert_string_equal(json_string_value(json_object_get(last, "ended_at")),
                        "2026-12-07T10:40:04Z");
    json_decref(last);
    sleep_ms(5);
    assert_null(meta_json(st, "s1", "audience"));
    assert_int_equal(store_meta_put(st, "s1", "status", "{\"state\":\"idle\"}", 60000), 0);
    s = status(r, "s1");
    assert_string_equal(json_string_value(json_object_get(s, "state")), "idle");
    assert_int_equal(jint(s, "viewers", NULL), 0);
    assert_int_equal(jint(s, "audience", "viewers"), 0);
    json_t *sl = json_object_get(json_object_get(s, "audience"), "last");
    assert_int_equal(jint(sl, "peak", NULL), 3);
    assert_int_equal(jint(sl, "sessions_total", NULL), 4);
    json_decref(s);
    m = report_metrics(r, &len);
    assert_non_null(strstr(m, "# TYPE sluice_audience_viewers gauge"));
    assert_true(metric(m, "sluice_audience_viewers{stream=\"s1\"}") == -1);
    free(m);

    /* A stream never live: no "last". */
    s = status(r, "s3");
    assert_int_equal(jint(s, "audience", "viewers"), 0);
    assert_null(json_object_get(json_object_get(s, "audience"), "last"));
    json_decref(s);

    report_free(r);
    report_free(NULL);
    store_close(st);
}

/* Without beacon records the request-based count (every origin's
 * "viewers.<node>" record) is the headline, as of the status call. */
static void test_requests_fallback(void **state)
{
    (void)state;
    store_t *st;
    assert_int_equal(store_open("memory", &st), 0);
    report_t *r = report_on(st);
    assert_int_equal(store_meta_put(st, "s1", "status", "{\"state\":\"live\"}", 60000), 0);
    assert_int_equal(store_meta_put(st, "s1", "viewers.nodeA", "4", 60000), 0);

    /* Before the first scan: requests, no aggregate yet. */
    json_t *s = status(r, "s1");
    assert_int_equal(jint(s, "viewers", NULL), 4);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(s, "audience"), "source")), "requests");
    json_decref(s);

    tick(r, "s1", WALL_MS);
    json_t *a = meta_json(st, "s1", "audience");
    assert_int_equal(jint(a, "viewers", NULL), 4);
    assert_int_equal(jint(a, "request_viewers", NULL), 4);
    assert_int_equal(jint(a, "beacon_viewers", NULL), 0);
    assert_string_equal(json_string_value(json_object_get(a, "source")), "requests");
    assert_true(json_is_null(json_object_get(a, "latency_ms")));
    json_decref(a);

    /* The request count moves between scans: the status follows at once. */
    assert_int_equal(store_meta_put(st, "s1", "viewers.nodeA", "6", 60000), 0);
    s = status(r, "s1");
    assert_int_equal(jint(s, "viewers", NULL), 6);
    assert_int_equal(jint(s, "audience", "viewers"), 6);
    assert_int_equal(jint(s, "audience", "request_viewers"), 6);
    json_decref(s);

    /* A beacon arrives: beacons are the source from the next scan. */
    put_session(st, "s1", "cccccccccccccccc1", AUDIENCE_PLAYING, "720p", 1000, 0);
    tick(r, "s1", WALL_MS + 2000);
    s = status(r, "s1");
    assert_int_equal(jint(s, "viewers", NULL), 1);
    assert_int_equal(jint(s, "audience", "request_viewers"), 6);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(s, "audience"), "source")), "beacons");
    json_decref(s);

    /* A status written by a node without the audience (an older one):
     * requests again, for a stream not aggregated here. */
    assert_int_equal(store_meta_put(st, "s4", "status", "{\"state\":\"live\"}", 60000), 0);
    assert_int_equal(store_meta_put(st, "s4", "viewers.nodeA", "2", 60000), 0);
    s = status(r, "s4");
    assert_int_equal(jint(s, "viewers", NULL), 2);
    json_decref(s);
    /* And one with it (the ingest node's audience, read from its status). */
    assert_int_equal(store_meta_put(st, "s5", "status",
                                    "{\"state\":\"live\",\"viewers\":7,\"audience\":{\"viewers\":7,"
                                    "\"source\":\"beacons\",\"beacon_viewers\":7,\"peak\":9}}",
                                    60000),
                     0);
    s = status(r, "s5");
    assert_int_equal(jint(s, "viewers", NULL), 7);
    assert_int_equal(jint(s, "audience", "peak"), 9);
    assert_int_equal(jint(s, "audience", "request_viewers"), 0);
    json_decref(s);
    report_free(r);
    store_close(st);
}

/* A stream whose audience another aggregator was writing moments ago (a
 * node that took it over, a restart): the totals go on, the sessions
 * already counted are not counted again. */
static void test_takeover_continues_totals(void **state)
{
    (void)state;
    store_t *st;
    assert_int_equal(store_open("memory", &st), 0);
    report_t *r = report_on(st);
    assert_int_equal(store_meta_put(st, "s1", "audience",
                                    "{\"viewers\":2,\"source\":\"beacons\",\"peak\":9,"
                                    "\"sessions_total\":20,\"watch_time_s\":100.5}",
                                    5000),
                     0);
    put_session(st, "s1", "eeeeeeeeeeeeeeee1", AUDIENCE_PLAYING, "720p", 50000, 0);
    put_session(st, "s1", "eeeeeeeeeeeeeeee2", AUDIENCE_PLAYING, "720p", 50000, 0);
    tick(r, "s1", WALL_MS);
    json_t *a = meta_json(st, "s1", "audience");
    assert_int_equal(jint(a, "viewers", NULL), 2);
    assert_int_equal(jint(a, "peak", NULL), 9);
    assert_int_equal(jint(a, "sessions_total", NULL), 20);
    assert_true(json_real_value(json_object_get(a, "watch_time_s")) == 100.5);
    json_decref(a);
    put_session(st, "s1", "eeeeeeeeeeeeeeee1", AUDIENCE_PLAYING, "720p", 52000, 0);
    put_session(st, "s1", "eeeeeeeeeeeeeeee3", AUDIENCE_PLAYING, "720p", 1000, 0);
    tick(r, "s1", WALL_MS + 2000);
    a = meta_json(st, "s1", "audience");
    assert_int_equal(jint(a, "sessions_total", NULL), 21);
    assert_true(json_real_value(json_object_get(a, "watch_time_s")) == 103.5);
    json_decref(a);

    /* Its end withdraws the record: a broadcast starting right after on
     * this (or another) node starts from 0. */
    tick(r, NULL, WALL_MS + 4000);
    sleep_ms(5);
    tick(r, "s1", WALL_MS + 6000);
    a = meta_json(st, "s1", "audience");
    assert_int_equal(jint(a, "sessions_total", NULL), 3);
    assert_int_equal(jint(a, "peak", NULL), 3);
    json_decref(a);
    report_free(r);
    store_close(st);
}

/* 10,000 concurrent sessions through the store, a tenth replaced at each
 * tick: figures right, nothing kept past the broadcast. */
static void test_many_sessions(void **state)
{
    (void)state;
    store_t *st;
    assert_int_equal(store_open("memory", &st), 0);
    report_t *r = report_on(st);
    char sid[40];
    for (int i = 0; i < 10000; i++) {
        snprintf(sid, sizeof(sid), "many-%011d", i);
        put_session(st, "s1", sid, AUDIENCE_PLAYING, i % 3 ? "720p" : "360p", 1000, 0);
    }
    tick(r, "s1", WALL_MS);
    for (int t = 1; t <= 3; t++) {
        for (int i = (t - 1) * 1000; i < t * 1000; i++) {
            snprintf(sid, sizeof(sid), "many-%011d", i);
            put_session(st, "s1", sid, AUDIENCE_ENDED, "720p", 1000, 0);
            snprintf(sid, sizeof(sid), "many-%011d", i + 10000);
            put_session(st, "s1", sid, AUDIENCE_PLAYING, "720p", 1000, 0);
        }
        tick(r, "s1", WALL_MS + t * 2000);
    }
    json_t *a = meta_json(st, "s1", "audience");
    assert_int_equal(jint(a, "viewers", NULL), 10000);
    assert_int_equal(jint(a, "sessions_total", NULL), 13000);
    assert_int_equal(jint(a, "peak", NULL), 10000);
    json_decref(a);
    tick(r, NULL, WALL_MS + 8000);
    json_t *last = meta_json(st, "s1", "audience.last");
    assert_int_equal(jint(last, "sessions_total", NULL), 13000);
    json_decref(last);
    report_free(r);
    store_close(st);
}

/* ---- a store that goes away ---------------------------------------------- */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = sockaddr_v4("127.0.0.1");
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t len = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static pid_t redis_start(int port, char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/sluice-unit-report-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char p[16];
    snprintf(p, sizeof(p), "%d", port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) {
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", dir, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void test_store_outage(void **state)
{
    (void)state;
    int port = free_port();
    char dir[64], url[64];
    pid_t pid = redis_start(port, dir, sizeof(dir));
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/9", port);
    store_t *st;
    assert_int_equal(store_open(url, &st), 0);
    int i;
    for (i = 0; i < 200 && store_ping(st) < 0; i++)
        sleep_ms(25);
    if (i == 200) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        store_close(st);
        rmdir(dir);
        skip(); /* no redis-server here */
    }
    report_t *r = report_on(st);
    put_session(st, "s1", "dddddddddddddddd1", AUDIENCE_PLAYING, "720p", 4000, 0);
    put_session(st, "s1", "dddddddddddddddd2", AUDIENCE_PAUSED, "720p", 2000, 0);
    tick(r, "s1", WALL_MS);
    size_t len;
    char *m = report_metrics(r, &len);
    assert_true(metric(m, "sluice_audience_viewers{stream=\"s1\"}") == 2);
    free(m);

    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    /* Scans fail: the figures stay, the totals do not move, no crash; the
     * broadcast's end cannot be written and is retried. */
    for (int t = 1; t <= 5; t++)
        tick(r, "s1", WALL_MS + t * 2000);
    m = report_metrics(r, &len);
    assert_true(metric(m, "sluice_audience_viewers{stream=\"s1\"}") == 2);
    assert_true(metric(m, "sluice_audience_sessions_total{stream=\"s1\"}") == 2);
    free(m);
    for (int t = 6; t <= 8; t++)
        tick(r, NULL, WALL_MS + t * 2000);
    /* Its totals wait for the store ("audience.last" is retried), but it is
     * no longer shown as live. */
    json_t *stats = report_stats(r);
    assert_int_equal(jint(stats, "audience", "streams"), 0);
    json_decref(stats);
    /* The status of a stream the store cannot say anything of: idle. */
    json_t *s = status(r, "s9");
    assert_int_equal(jint(s, "viewers", NULL), 0);
    json_decref(s);
    report_free(r);
    store_close(st);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_audience),
        cmocka_unit_test(test_requests_fallback),
        cmocka_unit_test(test_takeover_continues_totals),
        cmocka_unit_test(test_many_sessions),
        cmocka_unit_test(test_store_outage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
