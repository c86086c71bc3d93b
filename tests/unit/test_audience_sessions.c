/* Unit tests for origin/audience_sessions.c: the per-session and
 * per-address buckets, the per-address session cap (IPv6 by /64), the
 * totals, expiry and `ended`, the records the flush writes (read back with
 * audience_record_parse), and beacons from several threads during flushes.
 * The clock is the tests' own: every call takes now_ms. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "audience_sessions_internal.h"
#include "clock.h"
#include "test_util.h"

typedef struct fixture {
    store_t *store;
    audience_sessions_t *t;
} fixture_t;

static fixture_t *open_table(uint32_t per_address, size_t max_total, size_t max_per_stream)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(store_open("memory", &f->store), 0);
    audience_sessions_params_t p = {.store = f->store, .timeout_ms = 30000,
                                    .per_address = per_address, .max_total = max_total,
                                    .max_per_stream = max_per_stream};
    assert_int_equal(audience_sessions_new(&p, &f->t), 0);
    return f;
}

static void close_table(fixture_t *f)
{
    audience_sessions_free(f->t);
    store_close(f->store);
    free(f);
}

static void addr4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint8_t out[16])
{
    memset(out, 0, 16);
    out[10] = out[11] = 0xff;
    out[12] = a;
    out[13] = b;
    out[14] = c;
    out[15] = d;
}

static void sid(unsigned n, char out[32])
{
    snprintf(out, 32, "session-%08u-xyz", n);
}

static audience_verdict_t beacon(fixture_t *f, const char *stream, const char *session,
                                 const uint8_t addr[16], audience_state_t state, int64_t now,
                                 unsigned int *retry)
{
    audience_session_t s;
    audience_session_init(&s);
    s.state = state;
    snprintf(s.rendition, sizeof(s.rendition), "720p");
    s.watch_ms = now;
    unsigned int r = 0;
    audience_verdict_t v = audience_sessions_beacon(f->t, stream, session, addr, &s, now, &r);
    if (retry)
        *retry = r;
    if (v == AUDIENCE_ACCEPTED)
        assert_int_equal(r, 0);
    else
        assert_true(r >= 1);
    return v;
}

static void test_record_written(void **state)
{
    (void)state;
    fixture_t *f = open_table(50, 0, 0);
    uint8_t a[16];
    addr4(192, 0, 2, 1, a);
    assert_int_equal(beacon(f, "live1", "abcdefghijklmnop", a, AUDIENCE_PLAYING, 1000, NULL),
                     AUDIENCE_ACCEPTED);
    assert_int_equal(audience_sessions_count(f->t), 1);
    assert_int_equal(audience_sessions_flush(f->t, 1100), 1);
    char *v = NULL;
    assert_int_equal(store_meta_get(f->store, "live1", AUDIENCE_FIELD_PREFIX "abcdefghijklmnop",
                                    &v), 0);
    audience_session_t s;
    assert_int_equal(audience_record_parse(v, &s), 0);
    assert_int_equal(s.state, AUDIENCE_PLAYING);
    assert_string_equal(s.rendition, "720p");
    assert_int_equal(s.watch_ms, 1000);
    /* No address in the record, in any form. */
    assert_null(strstr(v, "192"));
    free(v);
    /* Nothing dirty: nothing written again. */
    assert_int_equal(audience_sessions_flush(f->t, 1200), 0);
    close_table(f);
}

/* The goodbye stays: two origins on one store (the CDN sends a player's
 * beacons to either), the session's `ended` written by one, then a beacon
 * it sent earlier reaches the other (and, taken out by then, the first
 * one again) and is flushed after it. The record still says ended, so
 * the aggregator no longer counts the viewer; a new session is written. */
static void test_ended_is_final_across_origins(void **state)
{
    (void)state;
    fixture_t *f = open_table(50, 0, 0);
    audience_sessions_params_t p = {.store = f->store, .timeout_ms = 30000, .per_address = 50};
    audience_sessions_t *other = NULL;
    assert_int_equal(audience_sessions_new(&p, &other), 0);
    uint8_t a[16];
    addr4(192, 0, 2, 1, a);
    const char *field = AUDIENCE_FIELD_PREFIX "abcdefghijklmnop";
    assert_int_equal(beacon(f, "live1", "abcdefghijklmnop", a, AUDIENCE_PLAYING, 1000, NULL),
                     AUDIENCE_ACCEPTED);
    assert_int_equal(audience_sessions_flush(f->t, 1100), 1);
    assert_int_equal(beacon(f, "live1", "abcdefghijklmnop", a, AUDIENCE_ENDED, 2000, NULL),
                     AUDIENCE_ACCEPTED);
    assert_int_equal(audience_sessions_flush(f->t, 2100), 1);
    /* The late one, at the other origin and at this one. */
    audience_session_t s;
    audience_session_init(&s);
    s.state = AUDIENCE_PLAYING;
    s.watch_ms = 1900;
    unsigned int r = 0;
    assert_int_equal(audience_sessions_beacon(other, "live1", "abcdefghijklmnop", a, &s, 2050, &r),
                     AUDIENCE_ACCEPTED);
    assert_int_equal(audience_sessions_flush(other, 2200), 1);
    assert_int_equal(beacon(f, "live1", "abcdefghijklmnop", a, AUDIENCE_PLAYING, 2060, NULL),
                     AUDIENCE_ACCEPTED);
    assert_int_equal(audience_sessions_flush(f->t, 2300), 1);
    char *v = NULL;
    assert_int_equal(store_meta_get(f->store, "live1", field, &v), 0);
    assert_int_equal(audience_record_parse(v, &s), 0);
    free(v);
    assert_int_equal(s.state, AUDIENCE_ENDED);
    assert_int_equal(s.watch_ms, 2000);
    /* Another session of the same player (a reload) is its own record. */
    assert_int_equal(beacon(f, "live1", "qrstuvwxyzabcdef", a, AUDIENCE_PLAYING, 2400, NULL),
                     AUDIENCE_ACCEPTED);
    assert_int_equal(audience_sessions_flush(f->t, 2500), 1);
    assert_int_equal(store_meta_get(f->store, "live1", AUDIENCE_FIELD_PREFIX "qrstuvwxyzabcdef",
                                    &v), 0);
    assert_int_equal(audience_record_parse(v, &s), 0);
    free(v);
    assert_int_equal(s.state, AUDIENCE_PLAYING);
    audience_sessions_free(other);
    close_table(f);
}

static void test_session_bucket(void **state)
{
    (void)state;
    fixture_t *f = open_table(50, 0, 0);
    uint8_t a[16];
    addr4(192, 0, 2, 1, a);
    unsigned int retry = 0;
    for (int i = 0; i < AUDIENCE_SESSION_BURST; i++)
        assert_int_equal(beacon(f, "s", "abcdefghijklmnop", a, AUDIENCE_PLAYING, 1000, NULL),
                         AUDIENCE_ACCEPTED);
    assert_int_equal(beacon(f, "s", "abcdefghijklmnop", a, AUDIENCE_PLAYING, 1000, &retry),
                     AUDIENCE_LIMIT_SESSION);
    assert_int_equal(retry, 1);
    /* Another session of the same address is not held back by it. */
    assert_int_equal(beacon(f, "s", "ABCDEFGHIJKLMNOP", a, AUDIENCE_PLAYING, 1000, NULL),
                     AUDIENCE_ACCEPTED);
    /* One more a second. */
    assert_int_equal(beacon(f, "s", "abcdefghijklmnop", a, AUDIENCE_PLAYING, 1999, NULL),
                     AUDIENCE_LIMIT_SESSION);
    assert_int_equal(beacon(f, "s", "abcdefghijklmnop", a, AUDIENCE_PLAYING, 2000, NULL),
                     AUDIENCE_ACCEPTED);
    assert_int_equal(beacon(f, "s", "abcdefghijklmnop", a, AUDIENCE_PLAYING, 2000, NULL),
                     AUDIENCE_LIMIT_SESSION);
    /* The same id in another stream is another session. */
    assert_int_equal(beacon(f, "t", "abcdefghijklmnop", a, AUDIENCE_PLAYING, 2000, NULL),
                     AUDIENCE_ACCEPTED);
    assert_int_equal(audience_sessions_count(f->t), 3);
    close_table(f);
}

static void test_address_bucket(void **state)
{
    (void)state;
    fixture_t *f = open_table(100000, 0, 0);
    uint8_t a[16], b[16];
    addr4(198, 51, 100, 7, a);
    addr4(198, 51, 100, 8, b);
    char s[32];
    unsigned int retry = 0;
    for (unsigned i = 0; i < AUDIENCE_ADDR_BURST; i++) {
        sid(i, s);
        assert_int_equal(beacon(f, "s", s, a, AUDIENCE_PLAYING, 5000, NULL), AUDIENCE_ACCEPTED);
    }
    sid(1000, s);
    assert_int_equal(beacon(f, "s", s, a, AUDIENCE_PLAYING, 5000, &retry), AUDIENCE_LIMIT_ADDRESS);
    assert_int_equal(retry, 1);
    /* The neighbour address is its own. */
    assert_int_equal(beacon(f, "s", s, b, AUDIENCE_PLAYING, 5000, NULL), AUDIENCE_ACCEPTED);
    /* 20 a second: one more every 50 ms. */
    sid(1001, s);
    assert_int_equal(beacon(f, "s", s, a, AUDIENCE_PLAYING, 5049, NULL), AUDIENCE_LIMIT_ADDRESS);
    assert_int_equal(beacon(f, "s", s, a, AUDIENCE_PLAYING, 5050, NULL), AUDIENCE_ACCEPTED);
    assert_int_equal(audience_sessions_count(f->t), AUDIENCE_ADDR_BURST + 2);
    close_table(f);
}

static void test_per_address_cap(void **state)
{
    (void)state;
    fixture_t *f = open_table(3, 0, 0);
    uint8_t a[16], b[16];
    addr4(203, 0, 113, 9, a);
    addr4(203, 0, 113, 10, b);
    char s[32];
    for (unsigned i = 0; i < 3; i++) {
        sid(i, s);
        assert_int_equal(beacon(f, "s", s, a, AUDIENCE_PLAYING, 1000 + i, NULL), AUDIENCE_ACCEPTED);
    }
    sid(3, s);
    unsigned int retry = 0;
    assert_int_equal(beacon(f, "s", s, a, AUDIENCE_PLAYING, 1010, &retry),
                     AUDIENCE_LIMIT_PER_ADDRESS);
    assert_int_equal(audience_sessions_count(f->t), 3); /* not counted */
    /* The known sessions go on; another stream and another address too. */
    sid(0, s);
    assert_int_equal(beacon(f, "s", s, a, AUDIENCE_PAUSED, 1020, NULL), AUDIENCE_ACCEPTED);
    sid(3, s);
    assert_int_equal(beacon(f, "other", s, a, AUDIENCE_PLAYING, 1030, NULL), AUDIENCE_ACCEPTED);
    assert_int_equal(beacon(f, "s", s, b, AUDIENCE_PLAYING, 1040, NULL), AUDIENCE_ACCEPTED);
    /* One ends: its place is free after the flush takes it out. */
    sid(1, s);
    assert_int_equal(beacon(f, "s", s, a, AUDIENCE_ENDED, 2000, NULL), AUDIENCE_ACCEPTED);
    assert_int_equal(audience_sessions_count(f->t), 5);
    assert_int_equal(audience_sessions_flush(f->t, 2100), 5);
    assert_int_equal(audience_sessions_count(f->t), 4);
    char *v = NULL;
    assert_int_equal(store_meta_get(f->store, "s", AUDIENCE_FIELD_PREFIX "session-00000001-xyz",
                                    &v), 0);
    audience_session_t rec;
    assert_int_equal(audience_record_parse(v, &rec), 0);
    assert_int_equal(rec.state, AUDIENCE_ENDED);
    free(v);
    sid(4, s);
    assert_int_equal(beacon(f, "s", s, a, AUDIENCE_PLAYING, 2200, NULL), AUDIENCE_ACCEPTED);
    sid(5, s);
    assert_int_equal(beacon(f, "s", s, a, AUDIENCE_PLAYING, 2200, NULL),
                     AUDIENCE_LIMIT_PER_ADDRESS);
    close_table(f);
}

static void test_ipv6_by_64(void **state)
{
    (void)state;
    fixture_t *f = open_table(2, 0, 0);
    uint8_t a[16], b[16], c[16];
    assert_int_equal(inet_pton(AF_INET6, "2001:db8:1:2::1", a), 1);
    assert_int_equal(inet_pton(AF_INET6, "2001:db8:1:2:ffff::9", b), 1);
    assert_int_equal(inet_pton(AF_INET6, "2001:db8:1:3::1", c), 1);
    char s[32];
    sid(0, s);
    assert_int_equal(beacon(f, "s", s, a, AUDIENCE_PLAYING, 1000, NULL), AUDIENCE_ACCEPTED);
    sid(1, s);
    assert_int_equal(beacon(f, "s", s, b, AUDIENCE_PLAYING, 1000, NULL), AUDIENCE_ACCEPTED);
    sid(2, s);
    assert_int_equal(beacon(f, "s", s, b, AUDIENCE_PLAYING, 1000, NULL),
                     AUDIENCE_LIMIT_PER_ADDRESS); /* the same /64 */
    assert_int_equal(beacon(f, "s", s, c, AUDIENCE_PLAYING, 1000, NULL), AUDIENCE_ACCEPTED);
    close_table(f);
}

static void test_totals(void **state)
{
    (void)state;
    fixture_t *f = open_table(1000, 4, 2);
    uint8_t a[16];
    char s[32];
    unsigned n = 0;
    for (unsigned i = 0; i < 2; i++) {
        addr4(10, 0, 0, (uint8_t)(n + 1), a);
        sid(n++, s);
        assert_int_equal(beacon(f, "one", s, a, AUDIENCE_PLAYING, 1000, NULL), AUDIENCE_ACCEPTED);
    }
    addr4(10, 0, 0, (uint8_t)(n + 1), a);
    sid(n++, s);
    assert_int_equal(beacon(f, "one", s, a, AUDIENCE_PLAYING, 1000, NULL), AUDIENCE_LIMIT_FULL);
    for (unsigned i = 0; i < 2; i++) {
        addr4(10, 0, 0, (uint8_t)(n + 1), a);
        sid(n++, s);
        assert_int_equal(beacon(f, "two", s, a, AUDIENCE_PLAYING, 1000, NULL), AUDIENCE_ACCEPTED);
    }
    addr4(10, 0, 0, (uint8_t)(n + 1), a);
    sid(n++, s);
    assert_int_equal(beacon(f, "three", s, a, AUDIENCE_PLAYING, 1000, NULL), AUDIENCE_LIMIT_FULL);
    assert_int_equal(audience_sessions_count(f->t), 4);
    /* Expired but not written yet: kept until the flush has written them. */
    assert_int_equal(beacon(f, "three", s, a, AUDIENCE_PLAYING, 1000 + 30001, NULL),
                     AUDIENCE_LIMIT_FULL);
    audience_sessions_flush(f->t, 1000 + 30001);
    assert_int_equal(audience_sessions_count(f->t), 0);
    assert_int_equal(beacon(f, "three", s, a, AUDIENCE_PLAYING, 31002, NULL), AUDIENCE_ACCEPTED);
    close_table(f);
}

static void test_expiry(void **state)
{
    (void)state;
    fixture_t *f = open_table(50, 0, 0);
    uint8_t a[16];
    addr4(192, 0, 2, 1, a);
    assert_int_equal(beacon(f, "s", "abcdefghijklmnop", a, AUDIENCE_PLAYING, 1000, NULL),
                     AUDIENCE_ACCEPTED);
    assert_int_equal(beacon(f, "s", "bbcdefghijklmnop", a, AUDIENCE_PLAYING, 1000, NULL),
                     AUDIENCE_ACCEPTED);
    audience_sessions_flush(f->t, 1000);
    /* One keeps talking every 10 s, the other falls silent. */
    for (int64_t t = 11000; t <= 41000; t += 10000) {
        assert_int_equal(beacon(f, "s", "abcdefghijklmnop", a, AUDIENCE_PLAYING, t, NULL),
                         AUDIENCE_ACCEPTED);
        audience_sessions_flush(f->t, t);
    }
    assert_int_equal(audience_sessions_count(f->t), 1);
    /* A session that comes back after its timeout starts again (no flush
     * in between: the stale entry is replaced on the spot). */
    assert_int_equal(beacon(f, "s", "abcdefghijklmnop", a, AUDIENCE_PLAYING, 80000, NULL),
                     AUDIENCE_ACCEPTED);
    assert_int_equal(audience_sessions_count(f->t), 1);
    audience_sessions_flush(f->t, 200000);
    assert_int_equal(audience_sessions_count(f->t), 0);
    close_table(f);
}

/* Beacons from four threads (each its own addresses) while a fifth
 * flushes: every accepted session is counted once, nothing leaks. */
typedef struct worker {
    fixture_t *f;
    unsigned base;
    unsigned accepted;
} worker_t;

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    uint8_t a[16];
    char s[32];
    int64_t t0 = clock_mono_ms(); /* the flush thread runs on the real clock */
    for (unsigned i = 0; i < 2000; i++) {
        addr4(10, (uint8_t)w->base, (uint8_t)(i / 40), 1, a);
        sid(w->base * 100000 + i, s);
        audience_session_t st;
        audience_session_init(&st);
        unsigned int r;
        if (audience_sessions_beacon(w->f->t, i % 2 ? "odd" : "even", s, a, &st, t0 + i / 100,
                                     &r) == AUDIENCE_ACCEPTED)
            w->accepted++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    fixture_t *f = open_table(50, 0, 0);
    assert_int_equal(audience_sessions_start(f->t), 0);
    worker_t w[4];
    pthread_t th[4];
    for (unsigned i = 0; i < 4; i++) {
        w[i] = (worker_t){.f = f, .base = i + 1};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (unsigned i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    unsigned total = 0;
    for (unsigned i = 0; i < 4; i++) {
        total += w[i].accepted;
        assert_int_equal(w[i].accepted, 2000);
    }
    assert_int_equal(audience_sessions_count(f->t), total);
    close_table(f); /* joins the flush thread after one last flush */
}

/* A store that cannot be written (Redis nowhere): the flush counts the
 * failures and goes on; beacons are answered as before. */
static void test_store_errors(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", ntohs(sa.sin_port));
    fixture_t f = {0};
    assert_int_equal(store_open(url, &f.store), 0); /* opens, and keeps trying */
    audience_sessions_params_t p = {.store = f.store, .timeout_ms = 30000};
    assert_int_equal(audience_sessions_new(&p, &f.t), 0);
    uint8_t a[16];
    addr4(192, 0, 2, 1, a);
    assert_int_equal(beacon(&f, "s", "abcdefghijklmnop", a, AUDIENCE_PLAYING, 1000, NULL),
                     AUDIENCE_ACCEPTED);
    assert_int_equal(beacon(&f, "s", "bbcdefghijklmnop", a, AUDIENCE_ENDED, 1000, NULL),
                     AUDIENCE_ACCEPTED);
    assert_int_equal(audience_sessions_flush(f.t, 1100), 0);
    assert_int_equal(audience_sessions_store_errors(f.t), 2);
    assert_int_equal(audience_sessions_count(f.t), 1); /* the ended one left all the same */
    assert_int_equal(beacon(&f, "s", "abcdefghijklmnop", a, AUDIENCE_PAUSED, 2000, NULL),
                     AUDIENCE_ACCEPTED);
    assert_int_equal(audience_sessions_flush(f.t, 2100), 0);
    assert_int_equal(audience_sessions_store_errors(f.t), 3);
    audience_sessions_free(f.t);
    store_close(f.store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_written),
        cmocka_unit_test(test_ended_is_final_across_origins),
        cmocka_unit_test(test_session_bucket),
        cmocka_unit_test(test_address_bucket),  cmocka_unit_test(test_per_address_cap),
        cmocka_unit_test(test_ipv6_by_64),      cmocka_unit_test(test_totals),
        cmocka_unit_test(test_expiry),          cmocka_unit_test(test_threads),
        cmocka_unit_test(test_store_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
