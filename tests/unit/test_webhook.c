/* Unit tests for control/webhook.c: the request signature (HMAC-SHA256 over
 * TIMESTAMP "." BODY, checked against values computed independently with
 * Python's hmac module; docs/webhooks.md shows the receiver's side), and the
 * bounded event queue and the exactly-once authorisation answer against a
 * loopback port that refuses connections. The HTTP behaviour itself is
 * tested end to end in tests/integration/test_webhook.py. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "clock.h"
#include "webhook.h"

static void test_signature_matches_python_hmac(void **state)
{
    (void)state;
    char sig[WEBHOOK_SIGNATURE_MAX];
    const char *body = "{\"event\":\"stream.live\"}";
    assert_int_equal(webhook_sign("whsec_test", "1795000000", body, strlen(body), sig), 0);
    assert_string_equal(sig, "sha256=f940d27cf5ab1f3b178dcf20385fe411e0714810e8e22f3060036828ae75e5c1");
}

static void test_signature_empty_body(void **state)
{
    (void)state;
    char sig[WEBHOOK_SIGNATURE_MAX];
    assert_int_equal(webhook_sign("k", "0", "", 0, sig), 0);
    assert_string_equal(sig, "sha256=6b4a4b8b3c40f1e8f53a3d36682e5f99f7ad2ac1df1c93dfe336f329167641e7");
}

static void test_signature_depends_on_every_part(void **state)
{
    (void)state;
    char a[WEBHOOK_SIGNATURE_MAX], b[WEBHOOK_SIGNATURE_MAX];
    assert_int_equal(webhook_sign("s", "1", "{}", 2, a), 0);
    assert_int_equal(webhook_sign("s", "2", "{}", 2, b), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(webhook_sign("t", "1", "{}", 2, b), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(webhook_sign("s", "1", "{ }", 3, b), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(webhook_sign(NULL, "1", "{}", 2, b), -EINVAL);
}

/* A loopback port bound but not listening: connections to it are refused.
 * Returns the socket (kept open so nobody else takes the port). */
static int refusing_port(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

typedef struct answers {
    pthread_mutex_t lock;
    int calls;
    uint64_t ticket;
    ingest_auth_verdict_t verdict;
} answers_t;

static void on_answer(void *opaque, uint64_t ticket, ingest_auth_verdict_t verdict,
                      const webhook_auth_answer_t *ans)
{
    answers_t *a = opaque;
    /* A refusal says nothing more. */
    assert_non_null(ans);
    assert_null(ans->stream_id);
    assert_null(ans->publish_id);
    assert_null(ans->ladder);
    pthread_mutex_lock(&a->lock);
    a->calls++;
    a->ticket = ticket;
    a->verdict = verdict;
    pthread_mutex_unlock(&a->lock);
}

static void test_unreachable_refuses_once_and_queue_is_bounded(void **state)
{
    (void)state;
    int port;
    int fd = refusing_port(&port);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", port);
    webhook_params_t p = {.url = url, .secret = "0123456789abcdef", .timeout_s = 2,
                          .max_events = 2, .retry_base_ms = 60000};
    webhook_t *w = NULL;
    assert_int_equal(webhook_new(&p, &w), 0);

    answers_t a = {.lock = PTHREAD_MUTEX_INITIALIZER};
    ingest_auth_request_t req = {.ticket = 42, .app = "live", .client_ip = "127.0.0.1"};
    assert_int_equal(webhook_authorize(w, &req, on_answer, &a), 0);
    for (int i = 0; i < 5; i++)
        webhook_event(w, "stream.live", "demo", NULL);

    /* The authorisation fails fast (connection refused) and both queued
     * events fail their first attempt and wait 60 s for a retry. */
    webhook_stats_t st;
    for (int i = 0; i < 400; i++) {
        webhook_get_stats(w, &st);
        pthread_mutex_lock(&a.lock);
        int calls = a.calls;
        pthread_mutex_unlock(&a.lock);
        if (calls == 1 && st.events_retried == 2)
            break;
        usleep(10000);
    }
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.ticket, 42);
    assert_int_equal(a.verdict, INGEST_AUTH_NO_ANSWER);
    assert_int_equal(st.auth_failed, 1);
    assert_int_equal(st.auth_accepted + st.auth_rejected, 0);
    assert_int_equal(st.events_dropped, 3); /* the queue holds 2 */
    assert_int_equal(st.events_retried, 2);
    assert_int_equal(st.events_queued, 2);
    assert_int_equal(st.events_delivered, 0);

    webhook_free(w); /* the two waiting for their retry are dropped */
    assert_int_equal(a.calls, 1);
    close(fd);
}

static void test_event_given_up_after_max_attempts(void **state)
{
    (void)state;
    int port;
    int fd = refusing_port(&port);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", port);
    webhook_params_t p = {.url = url, .timeout_s = 2, .max_attempts = 3, .retry_base_ms = 20,
                          .retry_max_ms = 30};
    webhook_t *w = NULL;
    assert_int_equal(webhook_new(&p, &w), 0);
    json_t *data = json_pack("{s:s}", "health", "poor");
    int64_t t0 = clock_mono_ms();
    webhook_event(w, "stream.health_changed", "demo", data);
    json_decref(data);
    webhook_stats_t st;
    for (int i = 0; i < 400; i++) {
        webhook_get_stats(w, &st);
        if (st.events_failed == 1)
            break;
        usleep(10000);
    }
    assert_int_equal(st.events_failed, 1);
    /* Retries come when due (20 ms, then 30 ms), not at the next 1 s poll. */
    assert_true(clock_mono_ms() - t0 < 800);
    assert_int_equal(st.events_retried, 2); /* attempts 2 and 3 */
    assert_int_equal(st.events_queued, 0);
    assert_int_equal(st.events_dropped, 0);
    webhook_free(w);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_matches_python_hmac),
        cmocka_unit_test(test_signature_empty_body),
        cmocka_unit_test(test_signature_depends_on_every_part),
        cmocka_unit_test(test_unreachable_refuses_once_and_queue_is_bounded),
        cmocka_unit_test(test_event_given_up_after_max_attempts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
