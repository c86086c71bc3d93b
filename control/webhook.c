/*
 * Webhooks over libcurl: publish authorisation requests and stream events
 * POSTed as signed JSON to --webhook-url (docs/webhooks.md).
 *
 * Threads: callers (the ingest loop, the report thread, main on SIGHUP) only
 * build a job, append it to a queue under `lock` and wake the webhook thread
 * with curl_multi_wakeup(); they never touch the network. The webhook thread
 * owns the curl multi handle and every transfer: it starts every waiting
 * authorisation first (a publisher is waiting on each), then events whose
 * time has come, at most WEBHOOK_EVENT_CONCURRENCY at once so that a slow
 * receiver cannot crowd the authorisations out, and runs all of them
 * concurrently.
 *
 * Ownership: a job (its body, headers, response buffer, easy handle) is
 * owned by the queue it is on, then by the thread while in flight. An
 * authorisation's done_cb runs exactly once, on the webhook thread (or in
 * webhook_free, after the thread is joined). An event is retried with
 * exponential backoff and keeps its delivery id; the queue of events
 * (waiting, in flight, waiting to retry) is bounded by max_events.
 */
#include "webhook.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "clock.h"
#include "log.h"
#include "store.h"

#define WEBHOOK_CTX "webhook"
/* Events in flight at once; authorisations are not limited. */
#define WEBHOOK_EVENT_CONCURRENCY 8
/* Bytes of a response body kept (the auth answer is {"id": ...}). */
#define WEBHOOK_RESPONSE_MAX 65536
/* How long webhook_free lets queued events go out. */
#define WEBHOOK_DRAIN_MS 2000
/* Longest the thread sleeps between looks at its queues. */
#define WEBHOOK_POLL_MS 1000
/* One log line per this many ms about dropped events. */
#define WEBHOOK_DROP_LOG_MS 10000

#define WEBHOOK_COUNT(w, field) webhook_stat_add(&(w)->stats.field, 1)
#define WEBHOOK_GAUGE_ADD(w, field, n) webhook_stat_add(&(w)->stats.field, (uint64_t)(n))
#define WEBHOOK_GAUGE_SUB(w, field, n) webhook_stat_add(&(w)->stats.field, -(uint64_t)(n))

/* Out of line: GCC 12 inlines the atomic into a path it believes has a NULL
 * webhook and then warns (-Wstringop-overflow) about a write that cannot
 * happen. */
__attribute__((noinline)) static void webhook_stat_add(uint64_t *p, uint64_t n)
{
    __atomic_fetch_add(p, n, __ATOMIC_RELAXED);
}

typedef enum webhook_kind {
    WEBHOOK_AUTH = 0,
    WEBHOOK_EVENT,
} webhook_kind_t;

typedef struct webhook_job {
    struct webhook_job *next;
    struct webhook_job *fl_next; /* the thread's list of transfers in flight */
    webhook_kind_t kind;
    char event[48];
    char delivery[33]; /* 128 random bits in hex */
    char ctx[160];     /* for log lines: what this is about (never a key) */
    char *body;        /* JSON, NUL-terminated; immutable once queued */
    size_t len;
    /* authorisation */
    uint64_t ticket;
    char registry_id[STORE_ID_MAX]; /* "": the key is not in the registry */
    webhook_auth_done_cb done_cb;
    void *opaque;
    /* event */
    unsigned attempts;
    int64_t due_ms; /* monotonic: not before */
    /* in flight (webhook thread only) */
    CURL *easy;
    struct curl_slist *headers;
    char *resp;
    size_t resp_len;
    double timeout_s;
    char errbuf[CURL_ERROR_SIZE];
} webhook_job_t;

struct webhook {
    pthread_mutex_t lock;
    /* under lock */
    char *url;
    char *secret;
    double timeout_s;
    webhook_job_t *auth_head, *auth_tail; /* authorisations not started yet */
    webhook_job_t *ev_head, *ev_tail;     /* events not in flight (new or waiting to retry) */
    size_t nevents;                       /* events queued + in flight */
    bool stop;
    int64_t drop_log_ms;
    uint64_t drop_unlogged;
    /* fixed after webhook_new */
    size_t max_events;
    unsigned max_attempts;
    uint32_t retry_base_ms, retry_max_ms;
    CURLM *multi;
    pthread_t thread;
    bool curl_inited;
    /* webhook thread only */
    unsigned events_in_flight;
    webhook_job_t *inflight; /* every job whose easy handle is in the multi */
    int64_t requeued_due_ms;  /* earliest retry queued since the last wait (0: none) */
    webhook_stats_t stats; /* WEBHOOK_COUNT / WEBHOOK_GAUGE_* */
};

/* ---- small helpers ------------------------------------------------------- */

static void webhook_hex(char *out, const uint8_t *b, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static void webhook_delivery_id(char out[33])
{
    uint8_t b[16];
    if (RAND_bytes(b, sizeof(b)) != 1) {
        /* Practically never; still unique within this process. */
        static uint64_t seq;
        uint64_t n = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
        int64_t t = clock_wall_ms();
        memcpy(b, &t, 8);
        memcpy(b + 8, &n, 8);
    }
    webhook_hex(out, b, sizeof(b));
}

int webhook_sign(const char *secret, const char *timestamp, const char *body, size_t len,
                 char out[WEBHOOK_SIGNATURE_MAX])
{
    if (!secret || !timestamp || (!body && len))
        return -EINVAL;
    size_t tlen = strlen(timestamp);
    if (len > SIZE_MAX - tlen - 2)
        return -EINVAL;
    char *msg = malloc(tlen + 1 + len + 1);
    if (!msg)
        return -ENOMEM;
    memcpy(msg, timestamp, tlen);
    msg[tlen] = '.';
    if (len)
        memcpy(msg + tlen + 1, body, len);
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    const uint8_t *ok = HMAC(EVP_sha256(), secret, (int)strlen(secret), (const uint8_t *)msg,
                             tlen + 1 + len, md, &mdlen);
    free(msg);
    if (!ok || mdlen != 32)
        return -EINVAL;
    memcpy(out, "sha256=", 7);
    webhook_hex(out + 7, md, 32);
    return 0;
}

static void webhook_job_free(webhook_job_t *j)
{
    if (!j)
        return;
    free(j->body);
    free(j->resp);
    curl_slist_free_all(j->headers);
    if (j->easy)
        curl_easy_cleanup(j->easy);
    free(j);
}

static void webhook_append(webhook_job_t **head, webhook_job_t **tail, webhook_job_t *j)
{
    j->next = NULL;
    if (*tail)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
}

/* Serialises obj (consumed) into the job's body. */
static int webhook_job_body(webhook_job_t *j, json_t *obj)
{
    if (!obj)
        return -ENOMEM;
    j->body = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!j->body)
        return -ENOMEM;
    j->len = strlen(j->body);
    return 0;
}

/* ---- public: queueing -------------------------------------------------- */

int webhook_authorize(webhook_t *w, const ingest_auth_request_t *req, webhook_auth_done_cb done_cb,
                      void *opaque)
{
    if (!w || !req || !done_cb)
        return -EINVAL;
    webhook_job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->kind = WEBHOOK_AUTH;
    snprintf(j->event, sizeof(j->event), "publish");
    webhook_delivery_id(j->delivery);
    j->ticket = req->ticket;
    if (req->registry_id && store_id_valid(req->registry_id))
        snprintf(j->registry_id, sizeof(j->registry_id), "%s", req->registry_id);
    j->done_cb = done_cb;
    j->opaque = opaque;
    char hash[65];
    webhook_hex(hash, req->key_hash, sizeof(req->key_hash));
    snprintf(j->ctx, sizeof(j->ctx), "publish #%llu from %s%s%s", (unsigned long long)req->ticket,
             req->client_ip ? req->client_ip : "?",
             req->registry_id ? " stream=" : " (key not in the registry)",
             req->registry_id ? req->registry_id : "");
    json_t *o = json_object();
    if (o) {
        json_object_set_new(o, "event", json_string("publish"));
        json_object_set_new(o, "stream_key_hash", json_string(hash));
        json_object_set_new(o, "app", req->app ? json_string(req->app) : json_null());
        json_object_set_new(o, "client_ip", req->client_ip ? json_string(req->client_ip)
                                                           : json_null());
        json_object_set_new(o, "stream_id", req->registry_id ? json_string(req->registry_id)
                                                             : json_null());
        json_object_set_new(o, "timestamp", json_integer(clock_wall_ms()));
        json_object_set_new(o, "delivery", json_string(j->delivery));
    }
    int ret = webhook_job_body(j, o);
    if (ret < 0) {
        webhook_job_free(j);
        return ret;
    }
    pthread_mutex_lock(&w->lock);
    if (w->stop) {
        pthread_mutex_unlock(&w->lock);
        webhook_job_free(j);
        return -ESHUTDOWN;
    }
    webhook_append(&w->auth_head, &w->auth_tail, j);
    pthread_mutex_unlock(&w->lock);
    curl_multi_wakeup(w->multi);
    return 0;
}

void webhook_event(webhook_t *w, const char *event, const char *stream_id, json_t *data)
{
    if (!w || !event)
        return;
    webhook_job_t *j = calloc(1, sizeof(*j));
    if (!j) {
        WEBHOOK_COUNT(w, events_dropped);
        log_error(WEBHOOK_CTX, "event %s dropped: out of memory", event);
        return;
    }
    j->kind = WEBHOOK_EVENT;
    snprintf(j->event, sizeof(j->event), "%s", event);
    webhook_delivery_id(j->delivery);
    snprintf(j->ctx, sizeof(j->ctx), "event %s stream=%s delivery=%s", j->event,
             stream_id ? stream_id : "-", j->delivery);
    json_t *o = json_object();
    if (o) {
        json_object_set_new(o, "event", json_string(event));
        json_object_set_new(o, "stream_id", stream_id ? json_string(stream_id) : json_null());
        json_object_set_new(o, "timestamp", json_integer(clock_wall_ms()));
        json_object_set_new(o, "delivery", json_string(j->delivery));
        json_object_set_new(o, "data", data ? json_deep_copy(data) : json_object());
    }
    if (webhook_job_body(j, o) < 0) {
        webhook_job_free(j);
        WEBHOOK_COUNT(w, events_dropped);
        log_error(WEBHOOK_CTX, "event %s dropped: out of memory", event);
        return;
    }
    j->due_ms = clock_mono_ms();

    pthread_mutex_lock(&w->lock);
    if (w->stop || w->nevents >= w->max_events) {
        bool stopping = w->stop;
        int64_t now = clock_mono_ms();
        bool log_now = now - w->drop_log_ms >= WEBHOOK_DROP_LOG_MS || w->drop_log_ms == 0;
        uint64_t held = w->drop_unlogged;
        if (log_now) {
            w->drop_log_ms = now;
            w->drop_unlogged = 0;
        } else {
            w->drop_unlogged++;
        }
        pthread_mutex_unlock(&w->lock);
        WEBHOOK_COUNT(w, events_dropped);
        if (log_now && held)
            log_warn(WEBHOOK_CTX, "%s dropped: %s (and %" PRIu64 " more since the last line)",
                     j->ctx, stopping ? "shutting down" : "queue full", held);
        else if (log_now)
            log_warn(WEBHOOK_CTX, "%s dropped: %s (at most one line per %d s)", j->ctx,
                     stopping ? "shutting down" : "queue full", WEBHOOK_DROP_LOG_MS / 1000);
        webhook_job_free(j);
        return;
    }
    webhook_append(&w->ev_head, &w->ev_tail, j);
    w->nevents++;
    pthread_mutex_unlock(&w->lock);
    WEBHOOK_GAUGE_ADD(w, events_queued, 1);
    curl_multi_wakeup(w->multi);
}

/* ---- the webhook thread ---------------------------------------------------- */

static size_t webhook_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    webhook_job_t *j = arg;
    size_t n = size * nmemb;
    if (n > WEBHOOK_RESPONSE_MAX - j->resp_len)
        return 0; /* over the cap: the transfer fails */
    char *p = realloc(j->resp, j->resp_len + n + 1);
    if (!p)
        return 0;
    memcpy(p + j->resp_len, data, n);
    j->resp = p;
    j->resp_len += n;
    p[j->resp_len] = '\0';
    return n;
}

static int webhook_add_header(webhook_job_t *j, const char *name, const char *value)
{
    char line[256];
    snprintf(line, sizeof(line), "%s: %s", name, value);
    struct curl_slist *h = curl_slist_append(j->headers, line);
    if (!h)
        return -ENOMEM;
    j->headers = h;
    return 0;
}

/* Builds the transfer (signing it now: the timestamp is the send time) and
 * adds it to the multi handle. */
static int webhook_start(webhook_t *w, webhook_job_t *j, const char *url, const char *secret,
                         double timeout_s)
{
    j->resp_len = 0;
    curl_slist_free_all(j->headers);
    j->headers = NULL;
    if (!j->easy)
        j->easy = curl_easy_init();
    else
        curl_easy_reset(j->easy);
    if (!j->easy)
        return -ENOMEM;
    j->timeout_s = timeout_s;
    char ts[24];
    snprintf(ts, sizeof(ts), "%" PRId64, clock_wall_ms() / 1000);
    int ret = webhook_add_header(j, "Content-Type", "application/json");
    if (ret == 0)
        ret = webhook_add_header(j, "User-Agent", "sluice/" SLUICE_VERSION);
    if (ret == 0)
        ret = webhook_add_header(j, "X-Sluice-Event", j->event);
    if (ret == 0)
        ret = webhook_add_header(j, "X-Sluice-Delivery", j->delivery);
    if (ret == 0)
        ret = webhook_add_header(j, "X-Sluice-Timestamp", ts);
    if (ret == 0 && secret && secret[0]) {
        char sig[WEBHOOK_SIGNATURE_MAX];
        ret = webhook_sign(secret, ts, j->body, j->len, sig);
        if (ret == 0)
            ret = webhook_add_header(j, "X-Sluice-Signature", sig);
    }
    if (ret < 0)
        return ret;
    long ms = (long)(timeout_s * 1000.0);
    if (ms < 1)
        ms = 1;
    j->errbuf[0] = '\0';
    CURL *e = j->easy;
    if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->len) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->headers) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, webhook_write_cb) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEDATA, j) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ms) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->errbuf) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PRIVATE, j) != CURLE_OK)
        return -EINVAL;
    if (curl_multi_add_handle(w->multi, e) != CURLM_OK)
        return -ENOMEM;
    j->fl_next = w->inflight;
    w->inflight = j;
    return 0;
}

static const char *webhook_curl_error(webhook_job_t *j, CURLcode rc)
{
    return j->errbuf[0] ? j->errbuf : curl_easy_strerror(rc);
}

/* The answer to an authorisation: calls done_cb and frees the job. */
static void webhook_auth_finish(webhook_t *w, webhook_job_t *j, CURLcode rc, long status)
{
    ingest_auth_verdict_t verdict = INGEST_AUTH_NO_ANSWER;
    const char *id = NULL;
    json_t *answer = NULL;
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        WEBHOOK_COUNT(w, auth_failed);
        log_warn(WEBHOOK_CTX, "%s refused: the webhook did not answer within %.1f s", j->ctx,
                 j->timeout_s);
    } else if (rc != CURLE_OK) {
        WEBHOOK_COUNT(w, auth_failed);
        log_warn(WEBHOOK_CTX, "%s refused: webhook request failed: %s", j->ctx,
                 webhook_curl_error(j, rc));
    } else if (status < 200 || status > 299) {
        WEBHOOK_COUNT(w, auth_rejected);
        verdict = INGEST_AUTH_REFUSED;
        log_info(WEBHOOK_CTX, "%s refused by the webhook (HTTP %ld)", j->ctx, status);
    } else {
        verdict = INGEST_AUTH_ACCEPTED;
        if (j->resp_len)
            answer = json_loadb(j->resp, j->resp_len, 0, NULL);
        json_t *jid = json_is_object(answer) ? json_object_get(answer, "id") : NULL;
        if (jid && !json_is_null(jid)) {
            id = json_string_value(jid);
            if (!id || !store_id_valid(id)) {
                char esc[80];
                const char *s = id ? id : "(not a string)";
                log_escape(esc, sizeof(esc), s, strlen(s));
                log_warn(WEBHOOK_CTX, "%s refused: the webhook answered an invalid id '%s' "
                                      "(1-63 of A-Z a-z 0-9 _ -)", j->ctx, esc);
                verdict = INGEST_AUTH_REFUSED;
                id = NULL;
            }
        }
        if (verdict == INGEST_AUTH_ACCEPTED) {
            WEBHOOK_COUNT(w, auth_accepted);
            log_info(WEBHOOK_CTX, "%s accepted by the webhook%s%s", j->ctx, id ? " as " : "",
                     id ? id : "");
        } else {
            WEBHOOK_COUNT(w, auth_rejected);
        }
    }
    webhook_auth_answer_t ans = {0};
    if (verdict == INGEST_AUTH_ACCEPTED) {
        ans.stream_id = id;
        ans.publish_id = id ? id : j->registry_id[0] ? j->registry_id : NULL;
        json_t *jl = json_is_object(answer) ? json_object_get(answer, "ladder") : NULL;
        ans.ladder = jl && !json_is_null(jl) ? jl : NULL;
    }
    j->done_cb(j->opaque, j->ticket, verdict, &ans);
    json_decref(answer);
    webhook_job_free(j);
}

/* The job leaves the queue for good. The gauge drops before the outcome is
 * counted, so a reader who sees the outcome never sees the job still queued. */
static void webhook_event_retire(webhook_t *w)
{
    pthread_mutex_lock(&w->lock);
    w->nevents--;
    pthread_mutex_unlock(&w->lock);
    WEBHOOK_GAUGE_SUB(w, events_queued, 1);
}

/* An event attempt ended: delivered, retried later, or given up. */
static void webhook_event_finish(webhook_t *w, webhook_job_t *j, CURLcode rc, long status)
{
    if (rc == CURLE_OK && status >= 200 && status <= 299) {
        webhook_event_retire(w);
        WEBHOOK_COUNT(w, events_delivered);
        log_debug(WEBHOOK_CTX, "%s delivered (HTTP %ld, attempt %u)", j->ctx, status,
                  j->attempts + 1);
        webhook_job_free(j);
        return;
    }
    char why[CURL_ERROR_SIZE + 32];
    if (rc != CURLE_OK)
        snprintf(why, sizeof(why), "%s", webhook_curl_error(j, rc));
    else
        snprintf(why, sizeof(why), "HTTP %ld", status);
    j->attempts++;
    pthread_mutex_lock(&w->lock);
    bool stop = w->stop;
    if (!stop && j->attempts < w->max_attempts) {
        uint64_t delay = w->retry_base_ms;
        for (unsigned i = 1; i < j->attempts && delay < w->retry_max_ms; i++)
            delay *= 2;
        if (delay > w->retry_max_ms)
            delay = w->retry_max_ms;
        j->due_ms = clock_mono_ms() + (int64_t)delay;
        webhook_append(&w->ev_head, &w->ev_tail, j);
        if (!w->requeued_due_ms || j->due_ms < w->requeued_due_ms)
            w->requeued_due_ms = j->due_ms;
        pthread_mutex_unlock(&w->lock);
        WEBHOOK_COUNT(w, events_retried);
        log_warn(WEBHOOK_CTX, "%s not delivered (%s); retry %u in %.1f s", j->ctx, why,
                 j->attempts, (double)delay / 1000.0);
        return;
    }
    pthread_mutex_unlock(&w->lock);
    webhook_event_retire(w);
    if (stop) {
        WEBHOOK_COUNT(w, events_dropped);
        log_warn(WEBHOOK_CTX, "%s not delivered (%s); dropped at shutdown", j->ctx, why);
    } else {
        WEBHOOK_COUNT(w, events_failed);
        log_warn(WEBHOOK_CTX, "%s not delivered (%s); given up after %u attempts", j->ctx, why,
                 j->attempts);
    }
    webhook_job_free(j);
}

static void webhook_finish(webhook_t *w, CURL *easy, CURLcode rc)
{
    webhook_job_t *j = NULL;
    long status = 0;
    (void)curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&j);
    (void)curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(w->multi, easy);
    if (!j)
        return;
    for (webhook_job_t **p = &w->inflight; *p; p = &(*p)->fl_next) {
        if (*p == j) {
            *p = j->fl_next;
            break;
        }
    }
    if (j->kind == WEBHOOK_AUTH) {
        webhook_auth_finish(w, j, rc, status);
    } else {
        w->events_in_flight--;
        webhook_event_finish(w, j, rc, status);
    }
}

/* Takes what is ready to start off the queues (under the lock) and starts
 * it. Returns the ms until the next retry is due (or WEBHOOK_POLL_MS). */
static int64_t webhook_take(webhook_t *w, bool *stopping)
{
    webhook_job_t *auth, *ev = NULL, **evtail = &ev;
    int64_t now = clock_mono_ms();
    int64_t wait = WEBHOOK_POLL_MS;
    pthread_mutex_lock(&w->lock);
    *stopping = w->stop;
    auth = w->auth_head;
    w->auth_head = w->auth_tail = NULL;
    /* Events in order of arrival, as many as may be in flight. */
    webhook_job_t *prev = NULL, *j = w->ev_head;
    unsigned room = WEBHOOK_EVENT_CONCURRENCY - w->events_in_flight;
    while (j) {
        webhook_job_t *next = j->next;
        bool eligible = !*stopping || j->attempts == 0;
        if (room > 0 && eligible && j->due_ms <= now) {
            if (prev)
                prev->next = next;
            else
                w->ev_head = next;
            if (w->ev_tail == j)
                w->ev_tail = prev;
            j->next = NULL;
            *evtail = j;
            evtail = &j->next;
            room--;
        } else {
            if (eligible && j->due_ms > now && j->due_ms - now < wait)
                wait = j->due_ms - now;
            prev = j;
        }
        j = next;
    }
    char *url = strdup(w->url);
    char *secret = w->secret ? strdup(w->secret) : NULL;
    double timeout_s = w->timeout_s;
    pthread_mutex_unlock(&w->lock);

    /* Authorisations first: a publisher waits on each. */
    for (j = auth; j;) {
        webhook_job_t *next = j->next;
        j->next = NULL;
        int ret = url ? webhook_start(w, j, url, secret, timeout_s) : -ENOMEM;
        if (ret < 0) {
            snprintf(j->errbuf, sizeof(j->errbuf), "cannot start the request: %s",
                     strerror(-ret));
            webhook_auth_finish(w, j, CURLE_FAILED_INIT, 0);
        }
        j = next;
    }
    for (j = ev; j;) {
        webhook_job_t *next = j->next;
        j->next = NULL;
        int ret = url ? webhook_start(w, j, url, secret, timeout_s) : -ENOMEM;
        if (ret < 0) {
            snprintf(j->errbuf, sizeof(j->errbuf), "cannot start the request: %s",
                     strerror(-ret));
            w->events_in_flight++;
            webhook_event_finish(w, j, CURLE_FAILED_INIT, 0);
            w->events_in_flight--;
        } else {
            w->events_in_flight++;
        }
        j = next;
    }
    free(url);
    if (secret) {
        explicit_bzero(secret, strlen(secret));
        free(secret);
    }
    return wait;
}

/* True when no event may still go out during the drain (authorisations in
 * flight do not wait for it: webhook_free refuses them). */
static bool webhook_drained(webhook_t *w)
{
    if (w->events_in_flight > 0)
        return false;
    pthread_mutex_lock(&w->lock);
    bool left = false;
    for (webhook_job_t *j = w->ev_head; j && !left; j = j->next)
        left = j->attempts == 0;
    pthread_mutex_unlock(&w->lock);
    return !left;
}

static void *webhook_thread_main(void *arg)
{
    webhook_t *w = arg;
    int64_t drain_until = 0;
    for (;;) {
        bool stopping = false;
        w->requeued_due_ms = 0;
        int64_t wait = webhook_take(w, &stopping);
        int running = 0;
        curl_multi_perform(w->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(w->multi, &left)))
            if (msg->msg == CURLMSG_DONE)
                webhook_finish(w, msg->easy_handle, msg->data.result);
        /* A retry queued just now was not seen by webhook_take's wait. */
        if (w->requeued_due_ms) {
            int64_t until = w->requeued_due_ms - clock_mono_ms();
            if (until < wait)
                wait = until > 0 ? until : 0;
        }
        if (stopping) {
            if (!drain_until)
                drain_until = clock_mono_ms() + WEBHOOK_DRAIN_MS;
            if (webhook_drained(w) || clock_mono_ms() >= drain_until)
                break;
            if (wait > 50)
                wait = 50;
        }
        curl_multi_poll(w->multi, NULL, 0, (int)wait, NULL);
    }
    return NULL;
}

/* ---- lifetime ------------------------------------------------------------- */

static void webhook_release(webhook_t *w)
{
    if (w->multi)
        curl_multi_cleanup(w->multi);
    if (w->secret) {
        explicit_bzero(w->secret, strlen(w->secret));
        free(w->secret);
    }
    free(w->url);
    pthread_mutex_destroy(&w->lock);
    if (w->curl_inited)
        curl_global_cleanup();
    free(w);
}

int webhook_new(const webhook_params_t *params, webhook_t **out)
{
    *out = NULL;
    if (!params || !params->url || !params->url[0])
        return -EINVAL;
    webhook_t *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    pthread_mutex_init(&w->lock, NULL);
    int ret = -ENOMEM;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        goto fail;
    w->curl_inited = true;
    w->url = strdup(params->url);
    w->secret = params->secret && params->secret[0] ? strdup(params->secret) : NULL;
    if (!w->url || (params->secret && params->secret[0] && !w->secret))
        goto fail;
    w->timeout_s = params->timeout_s > 0 ? params->timeout_s : 3.0;
    w->max_events = params->max_events ? params->max_events : 1000;
    w->max_attempts = params->max_attempts ? params->max_attempts : 8;
    w->retry_base_ms = params->retry_base_ms ? params->retry_base_ms : 1000;
    w->retry_max_ms = params->retry_max_ms ? params->retry_max_ms : 60000;
    w->multi = curl_multi_init();
    if (!w->multi)
        goto fail;
    ret = pthread_create(&w->thread, NULL, webhook_thread_main, w);
    if (ret != 0) {
        ret = -ret;
        goto fail;
    }
    pthread_setname_np(w->thread, "webhook");
    log_info(WEBHOOK_CTX, "webhooks on (timeout %.1f s, %s)", w->timeout_s,
             w->secret ? "signed" : "NOT signed: no --webhook-secret");
    *out = w;
    return 0;

fail:
    webhook_release(w);
    return ret;
}

void webhook_free(webhook_t *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_mutex_unlock(&w->lock);
    curl_multi_wakeup(w->multi);
    pthread_join(w->thread, NULL);

    /* The thread is gone: what is left is ours. Transfers still running are
     * cut; a waiting publisher hears "refused". */
    for (webhook_job_t *j = w->inflight; j;) {
        webhook_job_t *next = j->fl_next;
        curl_multi_remove_handle(w->multi, j->easy);
        if (j->kind == WEBHOOK_AUTH) {
            snprintf(j->errbuf, sizeof(j->errbuf), "shutting down");
            webhook_auth_finish(w, j, CURLE_ABORTED_BY_CALLBACK, 0);
        } else {
            WEBHOOK_COUNT(w, events_dropped);
            WEBHOOK_GAUGE_SUB(w, events_queued, 1);
            log_warn(WEBHOOK_CTX, "%s dropped at shutdown (still in flight)", j->ctx);
            webhook_job_free(j);
        }
        j = next;
    }
    w->inflight = NULL;
    for (webhook_job_t *j = w->auth_head; j;) {
        webhook_job_t *next = j->next;
        snprintf(j->errbuf, sizeof(j->errbuf), "shutting down");
        webhook_auth_finish(w, j, CURLE_ABORTED_BY_CALLBACK, 0);
        j = next;
    }
    size_t dropped = 0;
    for (webhook_job_t *j = w->ev_head; j;) {
        webhook_job_t *next = j->next;
        webhook_job_free(j);
        dropped++;
        j = next;
    }
    if (dropped) {
        WEBHOOK_GAUGE_ADD(w, events_dropped, dropped);
        WEBHOOK_GAUGE_SUB(w, events_queued, dropped);
        log_warn(WEBHOOK_CTX, "%zu undelivered events dropped at shutdown", dropped);
    }
    webhook_stats_t st;
    webhook_get_stats(w, &st);
    log_info(WEBHOOK_CTX,
             "stopped; totals: publish %" PRIu64 " accepted %" PRIu64 " rejected %" PRIu64
             " failed; events %" PRIu64 " delivered %" PRIu64 " retried %" PRIu64
             " dropped %" PRIu64 " failed",
             st.auth_accepted, st.auth_rejected, st.auth_failed, st.events_delivered,
             st.events_retried, st.events_dropped, st.events_failed);
    webhook_release(w);
}

int webhook_reconfigure(webhook_t *w, const char *url, const char *secret, double timeout_s)
{
    if (!w || !url || !url[0])
        return -EINVAL;
    char *u = strdup(url);
    char *s = secret && secret[0] ? strdup(secret) : NULL;
    if (!u || (secret && secret[0] && !s)) {
        free(u);
        free(s);
        return -ENOMEM;
    }
    pthread_mutex_lock(&w->lock);
    char *old_u = w->url, *old_s = w->secret;
    w->url = u;
    w->secret = s;
    if (timeout_s > 0)
        w->timeout_s = timeout_s;
    pthread_mutex_unlock(&w->lock);
    free(old_u);
    if (old_s) {
        explicit_bzero(old_s, strlen(old_s));
        free(old_s);
    }
    log_info(WEBHOOK_CTX, "reconfigured (timeout %.1f s, %s)", timeout_s,
             s ? "signed" : "NOT signed");
    return 0;
}

void webhook_get_stats(const webhook_t *w, webhook_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!w)
        return;
    out->auth_accepted = __atomic_load_n(&w->stats.auth_accepted, __ATOMIC_RELAXED);
    out->auth_rejected = __atomic_load_n(&w->stats.auth_rejected, __ATOMIC_RELAXED);
    out->auth_failed = __atomic_load_n(&w->stats.auth_failed, __ATOMIC_RELAXED);
    out->events_delivered = __atomic_load_n(&w->stats.events_delivered, __ATOMIC_RELAXED);
    out->events_retried = __atomic_load_n(&w->stats.events_retried, __ATOMIC_RELAXED);
    out->events_dropped = __atomic_load_n(&w->stats.events_dropped, __ATOMIC_RELAXED);
    out->events_failed = __atomic_load_n(&w->stats.events_failed, __ATOMIC_RELAXED);
    out->events_queued = __atomic_load_n(&w->stats.events_queued, __ATOMIC_RELAXED);
}
