/* Unit tests for origin/llhls.c: LL-HLS delivery directives, the position of
 * a stored playlist, the answer/wait/400 decisions of RFC 8216bis 6.2.5.2
 * and 6.2.6, and the hub that holds requests (with the memory store and
 * plain threads standing in for libmicrohttpd's suspend/resume). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "clock.h"
#include "llhls_internal.h"

/* ---- directives ----------------------------------------------------------- */

static int q(const char *msn, const char *part, const char *skip, llhls_query_t *out)
{
    return llhls_query_parse(msn, msn ? strlen(msn) : 0, part, part ? strlen(part) : 0, skip,
                             skip ? strlen(skip) : 0, out);
}

static void test_query(void **state)
{
    (void)state;
    llhls_query_t x;
    assert_int_equal(q(NULL, NULL, NULL, &x), 0);
    assert_false(x.has_msn);
    assert_false(llhls_query_blocking(&x));
    assert_int_equal(x.skip, LLHLS_SKIP_NONE);

    assert_int_equal(q("12", NULL, NULL, &x), 0);
    assert_true(x.has_msn);
    assert_false(x.has_part);
    assert_int_equal(x.msn, 12);
    assert_true(llhls_query_blocking(&x));

    assert_int_equal(q("12", "3", "YES", &x), 0);
    assert_int_equal(x.msn, 12);
    assert_true(x.has_part);
    assert_int_equal(x.part, 3);
    assert_int_equal(x.skip, LLHLS_SKIP_YES);

    assert_int_equal(q(NULL, NULL, "v2", &x), 0);
    assert_int_equal(x.skip, LLHLS_SKIP_V2);
    /* Unknown skip values ask for nothing: the full playlist. */
    assert_int_equal(q(NULL, NULL, "yes", &x), 0);
    assert_int_equal(x.skip, LLHLS_SKIP_NONE);
    assert_int_equal(q(NULL, NULL, "", &x), 0);
    assert_int_equal(x.skip, LLHLS_SKIP_NONE);

    assert_int_equal(q("0", "0", NULL, &x), 0);
    assert_int_equal(q("9223372036854775807", NULL, NULL, &x), 0);
    assert_int_equal(x.msn, INT64_MAX);

    /* RFC 8216bis 6.2.5.2: _HLS_part without _HLS_msn is a 400. */
    assert_int_equal(q(NULL, "1", NULL, &x), -EINVAL);
    /* Not decimal-integers: 400. */
    static const char *const bad[] = {"", "-1", "+1", " 1", "1 ", "1x", "0x10", "1.5",
                                      "9223372036854775808", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(q(bad[i], NULL, NULL, &x), -EINVAL);
        assert_int_equal(q("5", bad[i], NULL, &x), -EINVAL);
    }
}

static void test_media_name(void **state)
{
    (void)state;
    int64_t m, p;
    assert_int_equal(llhls_media_name_parse("12.3.m4s", 8, &m, &p), 0);
    assert_int_equal(m, 12);
    assert_int_equal(p, 3);
    assert_int_equal(llhls_media_name_parse("720p/7.m4s", 10, &m, &p), 0);
    assert_int_equal(m, 7);
    assert_int_equal(p, -1);
    const char *withq = "../x/5.0.m4s?token=abc";
    assert_int_equal(llhls_media_name_parse(withq, strlen(withq), &m, &p), 0);
    assert_int_equal(m, 5);
    assert_int_equal(p, 0);
    static const char *const bad[] = {"", ".m4s", "a.m4s", "1.2.3.m4s", "1..m4s", "1.m4",
                                      "init.mp4", "1.-2.m4s", "1.2.m4sx"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(llhls_media_name_parse(bad[i], strlen(bad[i]), &m, &p), -EINVAL);
}

/* ---- position ------------------------------------------------------------- */

/* Segments 10..12 complete (12 with 6 parts), parts 0..1 of 13, hint 13.2. */
static const char live_pl[] =
    "#EXTM3U\n"
    "#EXT-X-VERSION:9\n"
    "#EXT-X-TARGETDURATION:2\n"
    "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0,CAN-SKIP-UNTIL=12.0\n"
    "#EXT-X-PART-INF:PART-TARGET=0.333\n"
    "#EXT-X-MEDIA-SEQUENCE:10\n"
    "#EXT-X-MAP:URI=\"init.mp4\"\n"
    "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z\n"
    "#EXTINF:2.000,\n"
    "10.m4s\n"
    "#EXTINF:2.000,\n"
    "11.m4s\n"
    "#EXT-X-PART:DURATION=0.333,URI=\"12.0.m4s\",INDEPENDENT=YES\n"
    "#EXT-X-PART:DURATION=0.333,URI=\"12.1.m4s\"\n"
    "#EXT-X-PART:DURATION=0.333,URI=\"12.2.m4s\"\n"
    "#EXT-X-PART:DURATION=0.333,URI=\"12.3.m4s\"\n"
    "#EXT-X-PART:DURATION=0.333,URI=\"12.4.m4s\"\n"
    "#EXT-X-PART:DURATION=0.335,URI=\"12.5.m4s\"\n"
    "#EXTINF:2.000,\n"
    "12.m4s\n"
    "#EXT-X-PART:DURATION=0.333,URI=\"13.0.m4s\",INDEPENDENT=YES\n"
    "#EXT-X-PART:DURATION=0.333,URI=\"13.1.m4s\"\n"
    "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"13.2.m4s\"\n"
    "#EXT-X-RENDITION-REPORT:URI=\"../audio/index.m3u8\",LAST-MSN=13,LAST-PART=1\n";

static llhls_position_t pos_of(const char *text)
{
    llhls_position_t p;
    assert_int_equal(llhls_position_parse(text, strlen(text), &p), 0);
    return p;
}

static void test_position_live(void **state)
{
    (void)state;
    llhls_position_t p = pos_of(live_pl);
    assert_int_equal(p.media_sequence, 10);
    assert_int_equal(p.segments, 3);
    assert_int_equal(p.next_msn, 13);
    assert_int_equal(p.next_part, 2);
    assert_int_equal(p.last_segment_parts, 6);
    assert_int_equal(p.target_duration_s, 2);
    assert_int_equal(p.part_target_ms, 333);
    assert_true(p.has_hint);
    assert_true(p.can_block_reload);
    assert_true(p.can_skip);
    assert_false(p.ended);
    assert_int_equal(llhls_advance_part_limit(&p), 9); /* 3 / 0.333 */
    assert_int_equal(llhls_hold_limit_ms(&p, 6), 6000); /* 3 target durations */

    /* CRLF line ends read the same. */
    char crlf[sizeof(live_pl) * 2];
    size_t n = 0;
    for (const char *s = live_pl; *s; s++) {
        if (*s == '\n')
            crlf[n++] = '\r';
        crlf[n++] = *s;
    }
    crlf[n] = '\0';
    llhls_position_t p2 = pos_of(crlf);
    assert_int_equal(p2.next_msn, 13);
    assert_int_equal(p2.next_part, 2);
    assert_int_equal(p2.part_target_ms, 333);
}

static void test_position_variants(void **state)
{
    (void)state;
    /* LL off: next = media sequence + segments, part 0. */
    llhls_position_t p = pos_of("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:5\n"
                                "#EXTINF:4.0,\n5.m4s\n#EXTINF:4.0,\n6.m4s\n");
    assert_int_equal(p.next_msn, 7);
    assert_int_equal(p.next_part, 0);
    assert_int_equal(p.part_target_ms, 0);
    assert_false(p.has_hint);
    assert_int_equal(llhls_advance_part_limit(&p), 3);
    assert_int_equal(llhls_hold_limit_ms(&p, 2), 12000);

    /* No hint: parts after the last segment give the position. */
    p = pos_of("#EXTM3U\n#EXT-X-PART-INF:PART-TARGET=1.5\n#EXTINF:4,\n0.m4s\n"
               "#EXT-X-PART:DURATION=1.5,URI=\"1.0.m4s\"\n");
    assert_int_equal(p.next_msn, 1);
    assert_int_equal(p.next_part, 1);
    assert_int_equal(p.part_target_ms, 1500);
    assert_int_equal(llhls_advance_part_limit(&p), 3);
    assert_int_equal(llhls_hold_limit_ms(&p, 2.5), 7500); /* no TARGETDURATION: fallback */

    /* Ended. */
    p = pos_of("#EXTM3U\n#EXTINF:2,\n0.m4s\n#EXT-X-ENDLIST\n");
    assert_true(p.ended);
    assert_int_equal(p.next_msn, 1);

    /* A delta update counts the skipped segments. */
    p = pos_of("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:100\n#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n"
               "#EXTINF:2,\n104.m4s\n");
    assert_int_equal(p.next_msn, 105);

    /* A MAP hint is not a part; a hint with a token query still reads. */
    p = pos_of("#EXTM3U\n#EXTINF:2,\n0.m4s\n#EXT-X-PRELOAD-HINT:TYPE=MAP,URI=\"init.mp4\"\n");
    assert_false(p.has_hint);
    p = pos_of("#EXTM3U\n#EXT-X-PRELOAD-HINT:URI=\"4.1.m4s?t=a,b\",TYPE=PART\n");
    assert_true(p.has_hint);
    assert_int_equal(p.next_msn, 4);
    assert_int_equal(p.next_part, 1);

    /* An EXTINF without its URI (cut short) is not a segment. */
    p = pos_of("#EXTM3U\n#EXTINF:2,\n0.m4s\n#EXTINF:2,\n");
    assert_int_equal(p.next_msn, 1);

    /* Nonsense values are ignored, not trusted. */
    p = pos_of("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:-4\n#EXT-X-TARGETDURATION:99999999999\n"
               "#EXT-X-PART-INF:PART-TARGET=abc\n");
    assert_int_equal(p.media_sequence, 0);
    assert_int_equal(p.target_duration_s, 0);
    assert_int_equal(p.part_target_ms, 0);

    /* Not a playlist. */
    llhls_position_t x;
    assert_int_equal(llhls_position_parse("", 0, &x), -EPROTO);
    assert_int_equal(llhls_position_parse("hello\n", 6, &x), -EPROTO);
    assert_int_equal(llhls_position_parse("#EXTM3", 6, &x), -EPROTO);
}

/* ---- decisions ------------------------------------------------------------ */

static llhls_decision_t dp(const llhls_position_t *p, int64_t msn, int64_t part)
{
    llhls_query_t x = {.has_msn = true, .msn = msn, .has_part = part >= 0, .part = part};
    return llhls_decide_playlist(p, &x);
}

static void test_decide_playlist(void **state)
{
    (void)state;
    llhls_position_t p = pos_of(live_pl); /* next part: 13.2; last segment 12 */

    llhls_query_t none = {0};
    assert_int_equal(llhls_decide_playlist(&p, &none), LLHLS_ANSWER);

    /* _HLS_msn alone: segment M complete (6.2.5.2). */
    assert_int_equal(dp(&p, 5, -1), LLHLS_ANSWER); /* gone from the playlist: still answered */
    assert_int_equal(dp(&p, 12, -1), LLHLS_ANSWER);
    assert_int_equal(dp(&p, 13, -1), LLHLS_WAIT);
    assert_int_equal(dp(&p, 14, -1), LLHLS_WAIT);        /* last + 2 */
    assert_int_equal(dp(&p, 15, -1), LLHLS_BAD_REQUEST); /* more than last + 2 */

    /* _HLS_part: parts 13.0 and 13.1 exist, 13.2 is hinted. */
    assert_int_equal(dp(&p, 13, 0), LLHLS_ANSWER);
    assert_int_equal(dp(&p, 13, 1), LLHLS_ANSWER);
    assert_int_equal(dp(&p, 13, 2), LLHLS_WAIT);
    assert_int_equal(dp(&p, 12, 5), LLHLS_ANSWER);
    /* Past segment 12's final part: part 0 of 13, which exists (6.2.5.2). */
    assert_int_equal(dp(&p, 12, 6), LLHLS_ANSWER);
    assert_int_equal(dp(&p, 12, 600), LLHLS_ANSWER);
    assert_int_equal(dp(&p, 11, 99), LLHLS_ANSWER);

    /* Advance Part Limit 9: last part listed is 13.1; 13.10 is 9 ahead. */
    assert_int_equal(dp(&p, 13, 10), LLHLS_WAIT);
    assert_int_equal(dp(&p, 13, 11), LLHLS_BAD_REQUEST);
    /* 14.0 is 6 - 2 + 1 = 5 parts ahead (6 parts a segment); 14.4 is 9. */
    assert_int_equal(dp(&p, 14, 0), LLHLS_WAIT);
    assert_int_equal(dp(&p, 14, 4), LLHLS_WAIT);
    assert_int_equal(dp(&p, 14, 5), LLHLS_BAD_REQUEST);
    /* A part two segments ahead: 400 on _HLS_msn alone. */
    assert_int_equal(dp(&p, 15, 0), LLHLS_BAD_REQUEST);
    assert_int_equal(dp(&p, INT64_MAX, INT64_MAX), LLHLS_BAD_REQUEST);
    assert_int_equal(dp(&p, 13, INT64_MAX), LLHLS_BAD_REQUEST);

    /* Right after a segment completed: 13 complete with 6 parts, hint 14.0. */
    llhls_position_t q2 = pos_of(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART-INF:PART-TARGET=0.333\n"
        "#EXT-X-MEDIA-SEQUENCE:13\n"
        "#EXT-X-PART:DURATION=0.3,URI=\"13.0.m4s\"\n#EXT-X-PART:DURATION=0.3,URI=\"13.1.m4s\"\n"
        "#EXT-X-PART:DURATION=0.3,URI=\"13.2.m4s\"\n#EXT-X-PART:DURATION=0.3,URI=\"13.3.m4s\"\n"
        "#EXT-X-PART:DURATION=0.3,URI=\"13.4.m4s\"\n#EXT-X-PART:DURATION=0.3,URI=\"13.5.m4s\"\n"
        "#EXTINF:2,\n13.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"14.0.m4s\"\n");
    assert_int_equal(q2.next_msn, 14);
    assert_int_equal(q2.next_part, 0);
    assert_int_equal(dp(&q2, 13, 5), LLHLS_ANSWER);
    assert_int_equal(dp(&q2, 13, 6), LLHLS_WAIT); /* = 14.0, not there yet */
    assert_int_equal(dp(&q2, 14, 0), LLHLS_WAIT);
    assert_int_equal(dp(&q2, 13, -1), LLHLS_ANSWER);
    assert_int_equal(dp(&q2, 14, -1), LLHLS_WAIT);

    /* Ended: directives ignored, answered at once (6.2.5.2). */
    llhls_position_t e = pos_of("#EXTM3U\n#EXT-X-PART-INF:PART-TARGET=0.5\n#EXTINF:2,\n0.m4s\n"
                                "#EXT-X-ENDLIST\n");
    assert_int_equal(dp(&e, 1000, 3), LLHLS_ANSWER);
    assert_int_equal(dp(&e, 1, 0), LLHLS_ANSWER);

    /* No parts in the playlist (LL off): _HLS_part waits for the segment. */
    llhls_position_t n = pos_of("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n0.m4s\n");
    assert_int_equal(dp(&n, 0, 3), LLHLS_ANSWER);
    assert_int_equal(dp(&n, 1, 0), LLHLS_WAIT);
    assert_int_equal(dp(&n, 2, 0), LLHLS_WAIT);
    assert_int_equal(dp(&n, 3, 0), LLHLS_BAD_REQUEST);
}

static void test_decide_object(void **state)
{
    (void)state;
    llhls_position_t p = pos_of(live_pl); /* next part: 13.2 */
    assert_int_equal(llhls_decide_object(&p, 13, 2), LLHLS_WAIT);       /* the hinted part */
    assert_int_equal(llhls_decide_object(&p, 13, 11), LLHLS_WAIT);      /* APL: 9 past it */
    assert_int_equal(llhls_decide_object(&p, 13, 12), LLHLS_NOT_FOUND);
    assert_int_equal(llhls_decide_object(&p, 14, 0), LLHLS_WAIT);
    assert_int_equal(llhls_decide_object(&p, 15, 0), LLHLS_NOT_FOUND);
    assert_int_equal(llhls_decide_object(&p, 13, 1), LLHLS_NOT_FOUND);  /* behind: lost */
    /* 12.6 is what the hint named before a keyframe ended segment 12 after
     * six parts: 13.0 took its place. Past that, nothing was ever hinted. */
    assert_int_equal(llhls_decide_object(&p, 12, 6), LLHLS_NEXT_SEGMENT);
    assert_int_equal(llhls_decide_object(&p, 12, 7), LLHLS_NOT_FOUND);
    assert_int_equal(llhls_decide_object(&p, 11, 6), LLHLS_NOT_FOUND);  /* older: not hinted now */
    assert_int_equal(llhls_decide_object(&p, 13, -1), LLHLS_WAIT);      /* segment in progress */
    assert_int_equal(llhls_decide_object(&p, 14, -1), LLHLS_NOT_FOUND);
    assert_int_equal(llhls_decide_object(&p, 12, -1), LLHLS_NOT_FOUND);
    assert_int_equal(llhls_decide_object(&p, 13, INT64_MAX), LLHLS_NOT_FOUND);

    /* Right after the cut: segment 13 complete with six parts, 14.0 hinted. */
    llhls_position_t c = pos_of(
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART-INF:PART-TARGET=0.333\n"
        "#EXT-X-MEDIA-SEQUENCE:13\n"
        "#EXT-X-PART:DURATION=0.3,URI=\"13.0.m4s\"\n#EXT-X-PART:DURATION=0.3,URI=\"13.1.m4s\"\n"
        "#EXT-X-PART:DURATION=0.3,URI=\"13.2.m4s\"\n#EXT-X-PART:DURATION=0.3,URI=\"13.3.m4s\"\n"
        "#EXT-X-PART:DURATION=0.3,URI=\"13.4.m4s\"\n#EXT-X-PART:DURATION=0.3,URI=\"13.5.m4s\"\n"
        "#EXTINF:2,\n13.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"14.0.m4s\"\n");
    assert_int_equal(llhls_decide_object(&c, 13, 6), LLHLS_NEXT_SEGMENT);
    assert_int_equal(llhls_decide_object(&c, 14, 0), LLHLS_WAIT);
    assert_int_equal(llhls_decide_object(&c, 13, 7), LLHLS_NOT_FOUND);

    /* A long segment whose oldest parts are no longer listed (6.2.2): its
     * part count comes from its last part's index, not the lines left. */
    llhls_position_t l = pos_of(
        "#EXTM3U\n#EXT-X-TARGETDURATION:9\n#EXT-X-PART-INF:PART-TARGET=0.336\n"
        "#EXT-X-MEDIA-SEQUENCE:13\n"
        "#EXT-X-PART:DURATION=0.3,URI=\"13.23.m4s\"\n#EXT-X-PART:DURATION=0.3,URI=\"13.24.m4s\"\n"
        "#EXTINF:8.3,\n13.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"14.0.m4s\"\n");
    assert_int_equal(l.last_segment_parts, 25);
    assert_int_equal(llhls_decide_object(&l, 13, 25), LLHLS_NEXT_SEGMENT);
    assert_int_equal(llhls_decide_object(&l, 13, 2), LLHLS_NOT_FOUND);

    llhls_position_t e = pos_of("#EXTM3U\n#EXT-X-PART-INF:PART-TARGET=0.5\n#EXTINF:2,\n0.m4s\n"
                                "#EXT-X-ENDLIST\n");
    assert_int_equal(llhls_decide_object(&e, 1, 0), LLHLS_NOT_FOUND);
    assert_int_equal(llhls_decide_object(&e, 0, 0), LLHLS_NOT_FOUND); /* ended: nothing follows */
    assert_int_equal(llhls_decide_object(&e, 1, -1), LLHLS_NOT_FOUND);
    llhls_position_t n = pos_of("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n0.m4s\n");
    assert_int_equal(llhls_decide_object(&n, 1, 0), LLHLS_NOT_FOUND); /* no parts at all */
    assert_int_equal(llhls_decide_object(&n, 1, -1), LLHLS_WAIT);
}

/* ---- the hub -------------------------------------------------------------- */

/* A fake connection: counts suspends and resumes. */
typedef struct fake_conn {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int suspends, resumes;
} fake_conn_t;

static void fake_init(fake_conn_t *c)
{
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->suspends = c->resumes = 0;
}

static void fake_deinit(fake_conn_t *c)
{
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
}

static void fake_suspend(void *conn)
{
    fake_conn_t *c = conn;
    pthread_mutex_lock(&c->lock);
    c->suspends++;
    pthread_mutex_unlock(&c->lock);
}

static void fake_resume(void *conn)
{
    fake_conn_t *c = conn;
    pthread_mutex_lock(&c->lock);
    c->resumes++;
    /* Every resume undoes a suspend: never one without it (abort: this
     * runs on the store's or the timer's thread, not cmocka's). */
    if (c->resumes > c->suspends)
        abort();
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

/* Waits up to ms for c->resumes >= n; returns the count. */
static int fake_wait(fake_conn_t *c, int n, int ms)
{
    int64_t until = clock_mono_ms() + ms;
    pthread_mutex_lock(&c->lock);
    while (c->resumes < n && clock_mono_ms() < until) {
        pthread_mutex_unlock(&c->lock);
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&c->lock);
    }
    int r = c->resumes;
    pthread_mutex_unlock(&c->lock);
    return r;
}

static void commit(store_t *st, const char *id, const char *name)
{
    blob_t *b = blob_new("x", 1);
    assert_non_null(b);
    store_op_t op = {.kind = STORE_OP_PUT, .name = name, .blob = b};
    assert_int_equal(store_commit(st, id, &op, 1), 0);
    blob_unref(b);
}

typedef struct hub_fixture {
    store_t *st;
    llhls_hub_t *hub;
} hub_fixture_t;

static int hub_setup(void **state)
{
    hub_fixture_t *f = calloc(1, sizeof(*f));
    assert_int_equal(store_open("memory", &f->st), 0);
    assert_int_equal(llhls_hub_new(f->st, fake_suspend, fake_resume, &f->hub), 0);
    *state = f;
    return 0;
}

static int hub_teardown(void **state)
{
    hub_fixture_t *f = *state;
    assert_int_equal(llhls_hub_count(f->hub), 0);
    llhls_hub_free(f->hub);
    store_close(f->st);
    free(f);
    return 0;
}

static void test_hub_change_resumes(void **state)
{
    hub_fixture_t *f = *state;
    fake_conn_t c;
    fake_init(&c);
    llhls_hold_t h;
    memset(&h, 0, sizeof(h));
    int64_t deadline = clock_mono_ms() + 10000;
    assert_int_equal(llhls_hold_arm(f->hub, &h, "s1", &c, deadline), 0);
    assert_int_equal(llhls_hub_count(f->hub), 1);
    assert_false(llhls_hold_expired(&h));
    assert_true(llhls_hold_suspend(&h));
    assert_int_equal(c.suspends, 1);
    /* Another stream's commit does not wake it. */
    commit(f->st, "s2", "a");
    assert_int_equal(fake_wait(&c, 1, 50), 0);
    commit(f->st, "s1", "a");
    assert_int_equal(fake_wait(&c, 1, 2000), 1);
    /* Resumed: re-arm (a fresh watch), nothing new, suspend again. */
    assert_int_equal(llhls_hold_arm(f->hub, &h, "s1", &c, deadline), 0);
    assert_true(llhls_hold_suspend(&h));
    commit(f->st, "s1", "b");
    assert_int_equal(fake_wait(&c, 2, 2000), 2);
    assert_int_equal(llhls_hold_arm(f->hub, &h, "s1", &c, deadline), 0);
    llhls_hold_leave(&h);
    llhls_hold_leave(&h); /* idempotent */
    assert_int_equal(llhls_hub_count(f->hub), 0);
    fake_deinit(&c);
}

static void test_hub_change_while_reading(void **state)
{
    hub_fixture_t *f = *state;
    fake_conn_t c;
    fake_init(&c);
    llhls_hold_t h;
    memset(&h, 0, sizeof(h));
    assert_int_equal(llhls_hold_arm(f->hub, &h, "s1", &c, clock_mono_ms() + 10000), 0);
    /* A commit between the arm and the suspend: the suspend is refused
     * (the caller reads again), never a lost wake-up. */
    commit(f->st, "s1", "a");
    assert_false(llhls_hold_suspend(&h));
    assert_int_equal(c.suspends, 0);
    assert_int_equal(llhls_hold_arm(f->hub, &h, "s1", &c, clock_mono_ms() + 10000), 0);
    assert_true(llhls_hold_suspend(&h));
    commit(f->st, "s1", "b");
    assert_int_equal(fake_wait(&c, 1, 2000), 1);
    llhls_hold_leave(&h);
    fake_deinit(&c);
}

static void test_hub_deadline(void **state)
{
    hub_fixture_t *f = *state;
    fake_conn_t c1, c2;
    fake_init(&c1);
    fake_init(&c2);
    llhls_hold_t h1, h2;
    memset(&h1, 0, sizeof(h1));
    memset(&h2, 0, sizeof(h2));
    int64_t t0 = clock_mono_ms();
    /* The later deadline first: the timer must still wake for the earlier. */
    assert_int_equal(llhls_hold_arm(f->hub, &h2, "s1", &c2, t0 + 400), 0);
    assert_true(llhls_hold_suspend(&h2));
    assert_int_equal(llhls_hold_arm(f->hub, &h1, "s1", &c1, t0 + 150), 0);
    assert_true(llhls_hold_suspend(&h1));
    assert_int_equal(fake_wait(&c1, 1, 3000), 1);
    int64_t t1 = clock_mono_ms() - t0;
    assert_true(t1 >= 150 && t1 < 1500);
    assert_true(llhls_hold_expired(&h1));
    assert_int_equal(c2.resumes, 0);
    assert_false(llhls_hold_expired(&h2));
    assert_int_equal(fake_wait(&c2, 1, 3000), 1);
    assert_true(clock_mono_ms() - t0 >= 400);
    assert_true(llhls_hold_expired(&h2));
    /* An expired hold does not suspend again. */
    assert_int_equal(llhls_hold_arm(f->hub, &h1, "s1", &c1, t0 + 150), 0);
    assert_false(llhls_hold_suspend(&h1));
    llhls_hold_leave(&h1);
    llhls_hold_leave(&h2);
    fake_deinit(&c1);
    fake_deinit(&c2);
}

/* Many holds on one stream: one commit resumes them all. */
#define MANY 2000
static void test_hub_many(void **state)
{
    hub_fixture_t *f = *state;
    fake_conn_t *c = calloc(MANY, sizeof(*c));
    llhls_hold_t *h = calloc(MANY, sizeof(*h));
    assert_non_null(c);
    assert_non_null(h);
    int64_t deadline = clock_mono_ms() + 20000;
    for (int i = 0; i < MANY; i++) {
        fake_init(&c[i]);
        assert_int_equal(llhls_hold_arm(f->hub, &h[i], i % 2 ? "odd" : "even", &c[i], deadline),
                         0);
        assert_true(llhls_hold_suspend(&h[i]));
    }
    assert_int_equal(llhls_hub_count(f->hub), MANY);
    int64_t t0 = clock_mono_us();
    commit(f->st, "even", "a");
    /* The hub's thread resumes them (never the committing thread). */
    for (int i = 0; i < MANY; i += 2)
        assert_int_equal(fake_wait(&c[i], 1, 2000), 1);
    int64_t took = clock_mono_us() - t0;
    for (int i = 1; i < MANY; i += 2)
        assert_int_equal(fake_wait(&c[i], 0, 0), 0);
    print_message("one commit resumed %d held requests in %lld us\n", MANY / 2, (long long)took);
    for (int i = 0; i < MANY; i += 2) {
        assert_int_equal(llhls_hold_arm(f->hub, &h[i], "even", &c[i], deadline), 0);
        llhls_hold_leave(&h[i]);
    }
    commit(f->st, "odd", "a");
    for (int i = 1; i < MANY; i += 2) {
        assert_int_equal(fake_wait(&c[i], 1, 2000), 1);
        llhls_hold_leave(&h[i]);
    }
    for (int i = 0; i < MANY; i++)
        fake_deinit(&c[i]);
    free(c);
    free(h);
}

/* Shutdown: every held request is resumed, sees "expired", leaves. */
typedef struct handler_arg {
    llhls_hub_t *hub;
    llhls_hold_t *hold;
    fake_conn_t *conn;
    int arm_rc;
} handler_arg_t;

static void *handler_main(void *p)
{
    handler_arg_t *a = p;
    fake_wait(a->conn, 1, 5000);
    a->arm_rc = llhls_hold_arm(a->hub, a->hold, "s1", a->conn, clock_mono_ms() + 10000);
    if (llhls_hold_expired(a->hold))
        llhls_hold_leave(a->hold);
    return NULL;
}

static void test_hub_shutdown(void **state)
{
    hub_fixture_t *f = *state;
    fake_conn_t c;
    fake_init(&c);
    llhls_hold_t h;
    memset(&h, 0, sizeof(h));
    assert_int_equal(llhls_hold_arm(f->hub, &h, "s1", &c, clock_mono_ms() + 60000), 0);
    assert_true(llhls_hold_suspend(&h));
    handler_arg_t a = {f->hub, &h, &c, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, handler_main, &a), 0);
    int64_t t0 = clock_mono_ms();
    assert_int_equal(llhls_hub_shutdown(f->hub, 3000), 0);
    assert_true(clock_mono_ms() - t0 < 1000);
    pthread_join(t, NULL);
    assert_int_equal(a.arm_rc, -ESHUTDOWN);
    /* New holds are refused. */
    llhls_hold_t h2;
    memset(&h2, 0, sizeof(h2));
    assert_int_equal(llhls_hold_arm(f->hub, &h2, "s1", &c, clock_mono_ms() + 1000), -ESHUTDOWN);
    assert_true(llhls_hold_expired(&h2));
    llhls_hold_leave(&h2);
    fake_deinit(&c);
}

/* A handler that never comes back: shutdown gives up after its timeout
 * and says so; the hub is still freed cleanly (no leak, no dangling hold). */
static void test_hub_shutdown_timeout(void **state)
{
    (void)state;
    store_t *st;
    llhls_hub_t *hub;
    assert_int_equal(store_open("memory", &st), 0);
    assert_int_equal(llhls_hub_new(st, fake_suspend, fake_resume, &hub), 0);
    fake_conn_t c;
    fake_init(&c);
    llhls_hold_t h;
    memset(&h, 0, sizeof(h));
    assert_int_equal(llhls_hold_arm(hub, &h, "s1", &c, clock_mono_ms() + 60000), 0);
    assert_true(llhls_hold_suspend(&h));
    int64_t t0 = clock_mono_ms();
    assert_int_equal(llhls_hub_shutdown(hub, 200), 1);
    int64_t took = clock_mono_ms() - t0;
    assert_true(took >= 190 && took < 2000);
    assert_int_equal(c.resumes, 1); /* it was told */
    llhls_hub_free(hub);
    llhls_hold_leave(&h); /* after the hub: does nothing */
    assert_true(llhls_hold_expired(&h));
    commit(st, "s1", "a"); /* no watch of the freed hub is left to fire */
    store_close(st);
    fake_deinit(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_media_name),
        cmocka_unit_test(test_position_live),
        cmocka_unit_test(test_position_variants),
        cmocka_unit_test(test_decide_playlist),
        cmocka_unit_test(test_decide_object),
        cmocka_unit_test_setup_teardown(test_hub_change_resumes, hub_setup, hub_teardown),
        cmocka_unit_test_setup_teardown(test_hub_change_while_reading, hub_setup, hub_teardown),
        cmocka_unit_test_setup_teardown(test_hub_deadline, hub_setup, hub_teardown),
        cmocka_unit_test_setup_teardown(test_hub_many, hub_setup, hub_teardown),
        cmocka_unit_test_setup_teardown(test_hub_shutdown, hub_setup, hub_teardown),
        cmocka_unit_test(test_hub_shutdown_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
