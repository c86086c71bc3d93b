/*
 * sluice: reads the configuration, builds the store, seeds the predefined
 * streams and starts the roles that were asked for (ingest with its
 * transcode workers, and the origin). The main thread then only waits for
 * SIGINT/SIGTERM and shuts down in dependency order: ingest first (every live
 * stream gets end-of-stream), then the workers (final segments and ENDLIST
 * playlists are written), then the origin, then the store.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "admin.h"
#include "config.h"
#include "ingest.h"
#include "log.h"
#include "origin.h"
#include "recorder.h"
#include "retention.h"
#include "report.h"
#include "store.h"
#include "thumbnail.h"
#include "transcode.h"
#include "webhook.h"

extern char **environ;

static int main_publish_start_cb(void *opaque, const char *stream_id, media_queue_t *queue)
{
    return transcode_stream_start(opaque, stream_id, queue);
}

/* ---- webhooks (--webhook-url) ----------------------------------------------
 * One process-wide instance, so that ingest's hooks keep the transcoder as
 * their opaque. `ingest` is what late authorisation answers go to: set once
 * ingest is open and cleared before it closes, under `lock`, because answers
 * arrive on the webhook thread. */
static struct {
    webhook_t *webhook; /* NULL: no webhooks */
    pthread_mutex_t lock;
    ingest_t *ingest;
} main_webhook = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int main_webhook_open(const config_t *cfg)
{
    if (!cfg->webhook_url || !cfg->webhook_url[0])
        return 0;
    webhook_params_t wp = {.url = cfg->webhook_url,
                           .secret = cfg->webhook_secret,
                           .timeout_s = cfg->webhook_timeout};
    int rc = webhook_new(&wp, &main_webhook.webhook);
    if (rc < 0)
        log_error(NULL, "--webhook-url: cannot start webhooks (%s)", strerror(-rc));
    return rc;
}

/* Runs on the webhook thread. An answer that comes before ingest_open has
 * returned (or once ingest is closing) is dropped: that publisher is refused
 * at its auth timeout. */
static void main_webhook_auth_done(void *opaque, uint64_t ticket,
                                   ingest_auth_verdict_t verdict, const char *stream_id)
{
    (void)opaque;
    pthread_mutex_lock(&main_webhook.lock);
    if (main_webhook.ingest)
        ingest_auth_done(main_webhook.ingest, ticket, verdict, stream_id);
    pthread_mutex_unlock(&main_webhook.lock);
}

static int main_webhook_auth_cb(void *opaque, const ingest_auth_request_t *req)
{
    (void)opaque;
    return webhook_authorize(main_webhook.webhook, req, main_webhook_auth_done, NULL);
}

static void main_webhook_live_cb(void *opaque, const char *stream_id, const char *client_ip)
{
    (void)opaque;
    json_t *data = json_pack("{s:s, s:s}", "client_ip", client_ip, "app", "live");
    webhook_event(main_webhook.webhook, "stream.live", stream_id, data);
    json_decref(data);
}

/* data.reason says whether the publisher ended its publish or dropped
 * (then the playlists wait for it within the reconnect window), or that
 * sluice refused its input (data.detail says why). */
static void main_webhook_end_cb(void *opaque, const char *stream_id, bool dropped,
                                const char *refusal)
{
    (void)opaque;
    json_t *data = refusal ? json_pack("{s:s, s:s}", "reason", "refused", "detail", refusal)
                           : json_pack("{s:s}", "reason", dropped ? "dropped" : "ended");
    webhook_event(main_webhook.webhook, "stream.idle", stream_id, data);
    json_decref(data);
}

/* recording.ready: a recording was finalized (on its stream's transcode
 * worker) or recovered at start-up. The URL is the public origin's. */
static void main_webhook_recording_ready(void *opaque, const char *rid, const char *stream_id,
                                         double duration_s)
{
    (void)opaque;
    char url[RECORD_ID_MAX + 32];
    snprintf(url, sizeof(url), "/vod/%s/master.m3u8", rid);
    json_t *data = json_pack("{s:s, s:s, s:f, s:s}", "recording_id", rid, "stream_id", stream_id,
                             "duration_s", round(duration_s * 1000) / 1000, "url", url);
    webhook_event(main_webhook.webhook, "recording.ready", stream_id, data);
    json_decref(data);
}

/* transcode_params_t.record_cb: asked once per broadcast, on its worker. */
static bool main_record_cb(void *opaque, const char *stream_id, bool dflt)
{
    return store_stream_record(opaque, stream_id, dflt);
}

/* Start-up, ingest role (whether recording is on or not): recordings an
 * earlier run left "recording" (it died mid-broadcast) are finalized from
 * their journals, then retention runs once. Nothing is live yet. */
static void main_recordings_startup(const config_t *cfg)
{
    int n = recorder_recover(cfg->recordings_dir, cfg->record_mp4, main_webhook_recording_ready,
                             NULL);
    if (n < 0)
        log_warn(NULL, "--recordings-dir %s: %s; unfinished recordings not recovered",
                 cfg->recordings_dir, strerror(-n));
    else if (n > 0)
        log_info(NULL, "%d unfinished recording(s) finalized", n);
    n = record_retention(cfg->recordings_dir, cfg->recordings_max_age_s,
                         cfg->recordings_max_bytes);
    if (n < 0)
        log_warn(NULL, "--recordings-dir %s: retention: %s", cfg->recordings_dir, strerror(-n));
}

/* report_params_t.event_cb ("stream.health_changed"); event_opaque unused.
 * The report is created by the admin wiring; free it before
 * main_webhook_close(). */
static void main_webhook_report_event(void *opaque, const char *event,
                                                              const char *stream_id, json_t *data)
{
    (void)opaque;
    webhook_event(main_webhook.webhook, event, stream_id, data);
}

/* Adds the webhook hooks to ingest's. */
static void main_webhook_ingest_params(ingest_params_t *ip)
{
    if (!main_webhook.webhook)
        return;
    ip->hooks.publish_auth_cb = main_webhook_auth_cb;
    ip->hooks.publish_live_cb = main_webhook_live_cb;
    ip->hooks.publish_end_cb = main_webhook_end_cb;
}

/* ingest: the open ingest, or NULL before it closes. */
static void main_webhook_attach(ingest_t *ingest)
{
    pthread_mutex_lock(&main_webhook.lock);
    main_webhook.ingest = ingest;
    pthread_mutex_unlock(&main_webhook.lock);
}

/* SIGHUP with a re-read configuration: the URL, secret and timeout of new
 * requests (ingest's safety timeout follows with the RTMP limits). Turning
 * webhooks on or off needs a restart (said so). */
static void main_webhook_reload(const config_t *cfg)
{
    bool want = cfg->webhook_url && cfg->webhook_url[0];
    if (!main_webhook.webhook) {
        if (want)
            log_warn(NULL, "SIGHUP: --webhook-url needs a restart to take effect");
        return;
    }
    if (!want) {
        log_warn(NULL, "SIGHUP: turning webhooks off needs a restart; they stay on");
        return;
    }
    if (webhook_reconfigure(main_webhook.webhook, cfg->webhook_url, cfg->webhook_secret,
                            cfg->webhook_timeout) < 0)
        log_error(NULL, "SIGHUP: webhook settings not changed");
}

/* After ingest has closed (its last stream.idle events are queued) and the
 * report is freed: sends what is queued (briefly) and stops. */
static void main_webhook_close(void)
{
    main_webhook_attach(NULL);
    webhook_free(main_webhook.webhook);
    main_webhook.webhook = NULL;
}

static int main_seed_streams(store_t *store, const config_t *cfg)
{
    for (size_t i = 0; i < cfg->nstreams; i++) {
        const config_stream_t *s = &cfg->streams[i];
        if (!store_id_valid(s->id)) {
            log_error(NULL, "--stream: id '%s' must be 1-63 characters of A-Z a-z 0-9 _ -", s->id);
            return -EINVAL;
        }
        /* Seeded, not just added: a shared store that loses its registry
         * (Redis restarted empty) gets it back, and a node that finds it
         * there already (added by another node) is fine. */
        int rc = store_stream_seed(store, s->id, s->key);
        if (rc == -EEXIST) {
            log_error(NULL, "--stream %s: that key is already used by another stream", s->id);
            return rc;
        }
        if (rc < 0) {
            log_error(NULL, "--stream %s: %s", s->id, strerror(-rc));
            return rc;
        }
        log_info(NULL, "stream '%s' defined", s->id);
    }
    return 0;
}

/* The memory store's registry on disk (--state-dir), loaded before the
 * seeds go on top of it. *loaded = the streams found there. */
static int main_state_open(store_t *store, const config_t *cfg, size_t *loaded)
{
    *loaded = 0;
    if (strcmp(cfg->state_dir, "none") == 0) {
        log_warn(NULL, "--state-dir none: the stream registry is kept in memory only; streams "
                       "created through the admin API, and keys rotated there, are lost at "
                       "restart");
        return 0;
    }
    char why[1024];
    int rc = store_set_state_dir(store, cfg->state_dir, loaded, why, sizeof(why));
    if (rc < 0)
        log_error(NULL, "--state-dir %s: %s", cfg->state_dir, why);
    return rc;
}

/* The config file's [rung.NAME] sections as transcode overrides (caller
 * frees; NULL when there are none or on OOM). */
static transcode_rung_spec_t *main_rung_overrides(const config_t *cfg)
{
    if (cfg->nrungs == 0)
        return NULL;
    transcode_rung_spec_t *o = calloc(cfg->nrungs, sizeof(*o));
    if (!o)
        return NULL;
    for (size_t i = 0; i < cfg->nrungs; i++) {
        const config_rung_t *r = &cfg->rungs[i];
        snprintf(o[i].name, sizeof(o[i].name), "%s", r->name);
        o[i].width = (int)r->width;
        o[i].height = (int)r->height;
        o[i].bitrate_kbps = (int)r->bitrate_kbps;
        o[i].maxrate_kbps = (int)r->maxrate_kbps;
        snprintf(o[i].profile, sizeof(o[i].profile), "%s", r->profile);
        snprintf(o[i].preset, sizeof(o[i].preset), "%s", r->preset);
    }
    return o;
}

/* The public base URL of a listener when the configuration gives none:
 * the host it listens on, or this machine's name when that is a wildcard. */
static void main_public_url(const char *scheme, const char *listen, int port, const char *suffix,
                            char *out, size_t outlen)
{
    char host[256] = "";
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    if (colon && colon != listen) {
        snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
    }
    if (!host[0] || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "[::]") == 0 ||
        strcmp(host, "::") == 0) {
        if (gethostname(host, sizeof(host)) != 0 || !host[0])
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
    }
    snprintf(out, outlen, "%s://%s:%d%s", scheme, host, port, suffix);
}

/* A shared store and a reconnect window: streams live at shutdown are
 * handed over (their playlists stay live for the window, for a publisher
 * coming back through another node) rather than ended. */
static bool main_handover(const config_t *cfg)
{
    return cfg->reconnect_window > 0 && strncmp(cfg->store_url, "redis", 5) == 0;
}

/* The RTMP limits of a configuration; with webhooks, the ingest-side
 * safety timeout of a publish waiting for its authorisation: a little over
 * the webhook's own, so the webhook's answer (a refusal at its timeout)
 * normally comes first. Zeroed first: a reload compares two of these with
 * memcmp. */
static void main_ingest_limits(const config_t *cfg, bool webhooks, ingest_limits_t *lim)
{
    memset(lim, 0, sizeof(*lim));
    ingest_limits_default(lim);
    if (webhooks)
        lim->auth_timeout_ms = (uint32_t)(cfg->webhook_timeout * 1000.0) + 2000;
    lim->max_message_size = (uint32_t)cfg->max_message_size;
    lim->max_chunk_size = (uint32_t)cfg->max_chunk_size;
    lim->max_chunk_streams = (uint32_t)cfg->max_chunk_streams;
    lim->queue_bytes = (size_t)cfg->queue_bytes;
    lim->handshake_timeout_ms = (uint32_t)cfg->handshake_timeout_ms;
    lim->idle_timeout_ms = (uint32_t)cfg->idle_timeout_ms;
    lim->stall_timeout_ms = (uint32_t)cfg->stall_timeout_ms;
    lim->max_connections = (uint32_t)cfg->max_connections;
    lim->max_connections_per_ip = (uint32_t)cfg->max_connections_per_ip;
    lim->max_publishers = (uint32_t)cfg->max_publishers;
    lim->max_key_failures = (uint32_t)cfg->max_key_failures;
    lim->key_lockout_s = (uint32_t)cfg->key_lockout_s;
    lim->max_amf_depth = (uint32_t)cfg->max_amf_depth;
    lim->max_amf_string = (uint32_t)cfg->max_amf_string;
    lim->max_input_width = (uint32_t)cfg->max_input_width;
    lim->max_input_height = (uint32_t)cfg->max_input_height;
    lim->max_input_fps = (uint32_t)cfg->max_input_fps;
}

/* What a SIGHUP can change in a running process. */
typedef struct main_reload {
    config_t *cfg; /* the running configuration; replaced by the new one */
    store_t *store;
    ingest_t *ingest;
    admin_t *admin;
    char applied[512];
    char restart[512];
} main_reload_t;

static void main_reload_note(char *list, size_t size, const char *name)
{
    size_t n = strlen(list);
    snprintf(list + n, size - n, "%s%s", n ? ", " : "", name);
}

/* --stream entries that changed: removed ones leave the registry (and a
 * live publisher is cut), new ones are seeded, a new key for an id rotates. */
static void main_reload_streams(main_reload_t *rl, const config_t *old, const config_t *cfg)
{
    for (size_t i = 0; i < old->nstreams; i++) {
        const config_stream_t *o = &old->streams[i];
        const config_stream_t *n = NULL;
        for (size_t j = 0; j < cfg->nstreams && !n; j++)
            if (strcmp(cfg->streams[j].id, o->id) == 0)
                n = &cfg->streams[j];
        if (!n) {
            int rc = store_stream_remove(rl->store, o->id);
            if ((rc == 0 || rc == -ENOENT) && store_lease_revoke(rl->store, o->id) < 0)
                log_warn(NULL, "reload: a live publisher of '%s' could not be cut", o->id);
            log_info(NULL, "reload: stream '%s' removed%s", o->id,
                     rc == 0 || rc == -ENOENT ? "" : " (failed: store unavailable)");
        } else if (strcmp(n->key, o->key) != 0) {
            int rc = store_stream_rotate(rl->store, o->id, n->key);
            log_info(NULL, "reload: stream '%s' has a new key%s", o->id,
                     rc == 0 ? "" : rc == -EEXIST ? " (refused: another stream has it)"
                                                  : " (failed)");
        }
    }
    for (size_t j = 0; j < cfg->nstreams; j++) {
        bool known = false;
        for (size_t i = 0; i < old->nstreams && !known; i++)
            known = strcmp(old->streams[i].id, cfg->streams[j].id) == 0;
        if (known)
            continue;
        if (!store_id_valid(cfg->streams[j].id)) {
            log_error(NULL, "reload: stream id '%s' is not valid; skipped", cfg->streams[j].id);
            continue;
        }
        int rc = store_stream_seed(rl->store, cfg->streams[j].id, cfg->streams[j].key);
        log_info(NULL, "reload: stream '%s' added%s", cfg->streams[j].id,
                 rc == 0 ? "" : rc == -EEXIST ? " (refused: another stream has that key)"
                                              : " (failed)");
    }
}

/* Each changed option goes to the list its row of the option table says. */
static void main_reload_diff_cb(void *opaque, const char *name, unsigned flags)
{
    main_reload_t *rl = opaque;
    if (flags & CONFIG_RELOAD)
        main_reload_note(rl->applied, sizeof(rl->applied), name);
    else
        main_reload_note(rl->restart, sizeof(rl->restart), name);
}

/* SIGHUP: reads the configuration again from the same flags, environment
 * and file; applies what can change in a running process and names what
 * needs a restart. A configuration that does not load changes nothing. */
static void main_reload(main_reload_t *rl, int argc, char **argv)
{
    config_t next;
    char err[512];
    log_info(NULL, "SIGHUP received, reloading the configuration");
    if (config_load(&next, argc, argv, environ, stdout, err, sizeof(err)) != 0) {
        log_error(NULL, "reload refused, nothing changed: %s", err);
        return;
    }
    config_t *cur = rl->cfg;
    config_diff(cur, &next, main_reload_diff_cb, rl);
    main_reload_streams(rl, cur, &next);
    /* The running configuration takes the values the option table marks
     * CONFIG_RELOAD and the consumers read them from it; the others keep
     * running as they are, so a later reload names them again. */
    bool webhooks = main_webhook.webhook != NULL;
    ingest_limits_t before, after;
    main_ingest_limits(cur, webhooks, &before);
    config_adopt(cur, &next);
    main_webhook_reload(cur);
    main_ingest_limits(cur, webhooks, &after);
    if (rl->ingest && memcmp(&before, &after, sizeof(before)) != 0)
        (void)ingest_set_limits(rl->ingest, &after);
    if (admin_set_token(rl->admin, cur->admin_token) != 0)
        log_error(NULL, "reload: the admin token could not be changed");
    log_level_t level = LOG_LEVEL_INFO;
    log_format_t format = LOG_FORMAT_TEXT;
    (void)log_level_parse(cur->log_level, &level);
    (void)log_format_parse(cur->log_format, &format);
    log_configure(level, format);
    /* The certificate files are read again even when their names did not
     * change: renewing a certificate in place is the usual reason for a
     * SIGHUP. A failure is logged and the old certificate stays. */
    (void)ingest_reload_tls(rl->ingest);
    log_info(NULL, "reload done; changed and applied: %s; changed but needing a restart: %s",
             rl->applied[0] ? rl->applied : "nothing", rl->restart[0] ? rl->restart : "nothing");
    config_free(&next);
}

/* During an orderly shutdown (final segments written, playlists ended) a
 * second SIGINT/SIGTERM means the operator will not wait: exit at once. */
static void *main_second_signal_thread(void *arg)
{
    const sigset_t *sigs = arg;
    int sig = 0;
    do {
        if (sigwait(sigs, &sig) != 0)
            return NULL;
    } while (sig == SIGHUP);
    log_warn(NULL, "second %s: exiting now, without finishing the shutdown",
             sig == SIGINT ? "SIGINT" : "SIGTERM");
    _exit(1);
}

static void main_watch_second_signal(const sigset_t *sigs)
{
    static sigset_t watched;
    watched = *sigs;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, main_second_signal_thread, &watched) != 0)
        log_warn(NULL, "cannot watch for a second signal; shutting down regardless");
    pthread_attr_destroy(&attr);
}

/* config_load's check of the values the origin parses itself. */
static int main_config_check(const config_t *cfg, char *why, size_t whylen)
{
    if ((cfg->roles & CONFIG_ROLE_ORIGIN) && cfg->trusted_proxies &&
        origin_check_trusted_proxies(cfg->trusted_proxies, why, whylen) != 0)
        return -EINVAL;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "streams") == 0) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        int code = admin_cli_main(argc - 1, argv + 1, environ);
        curl_global_cleanup();
        return code;
    }
    config_t cfg;
    char err[512];
    config_set_extra_check(main_config_check);
    if (config_load(&cfg, argc, argv, environ, stdout, err, sizeof(err)) != 0) {
        fprintf(stderr, "sluice: %s\n", err);
        return 2;
    }
    if (cfg.exit_now) {
        config_free(&cfg);
        return 0;
    }

    log_level_t level = LOG_LEVEL_INFO;
    log_format_t format = LOG_FORMAT_TEXT;
    (void)log_level_parse(cfg.log_level, &level);   /* validated by config_load */
    (void)log_format_parse(cfg.log_format, &format);
    log_configure(level, format);
    transcode_log_route_libav();

    /* Signals are taken by sigwait() on this thread only: block them before
     * any other thread exists so that every thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP); /* reloads the RTMPS certificate */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int exit_code = 1;
    store_t *store = NULL;
    transcode_t *transcode = NULL;
    ingest_t *ingest = NULL;
    origin_t *origin = NULL;
    report_t *report = NULL;
    admin_t *admin = NULL;
    curl_global_init(CURL_GLOBAL_DEFAULT);

    int rc = store_open(cfg.store_url, &store);
    if (rc == -EPROTONOSUPPORT) {
        log_error(NULL, "--store %s: this build has only the memory store", cfg.store_url);
        goto fail;
    } else if (rc < 0) {
        log_error(NULL, "--store: not a store URL (memory, or redis://[:PASSWORD@]HOST:PORT[/DB])");
        goto fail;
    }
    /* A stream is idle (evicted first) after 3 segment durations without a
     * commit, 10 s at least. Only the memory store uses it. */
    double idle_s = 3 * cfg.segment_duration > 10 ? 3 * cfg.segment_duration : 10;
    if (store_set_memory_limit(store, cfg.store_memory_limit, (int64_t)(idle_s * 1000)) != 0)
        goto fail;
    size_t loaded = 0;
    if (strcmp(store_backend_name(store), "memory") == 0 &&
        main_state_open(store, &cfg, &loaded) != 0)
        goto fail;
    if (main_seed_streams(store, &cfg) != 0)
        goto fail;
    size_t dropped = 0;
    if (store_stream_seed_done(store, &dropped) != 0) {
        log_error(NULL, "--state-dir: cannot remove the streams the configuration dropped");
        goto fail;
    }
    if (cfg.nstreams == 0 && loaded == dropped && (cfg.roles & CONFIG_ROLE_INGEST))
        log_warn(NULL, "no stream defined: every publish will be refused (add --stream ID:KEY)");

    if ((cfg.roles & CONFIG_ROLE_INGEST) && main_webhook_open(&cfg) != 0)
        goto fail;
    if (cfg.roles & CONFIG_ROLE_INGEST) {
        transcode_params_t tp;
        transcode_params_default(&tp);
        tp.store = store;
        tp.segment_duration = cfg.segment_duration;
        tp.part_duration = cfg.part_duration;
        tp.playlist_segments = (int)cfg.playlist_segments;
        tp.dvr_window = cfg.dvr_window;
        tp.ended_ttl_ms = (int64_t)cfg.ended_ttl_s * 1000;
        tp.ladder = cfg.ladder;
        tp.passthrough = strcmp(cfg.passthrough, "never") == 0 ? TRANSCODE_PASSTHROUGH_NEVER
                                                               : TRANSCODE_PASSTHROUGH_AUTO;
        tp.preset = cfg.preset;
        tp.debug_slow_encode_ms = (int)cfg.debug_slow_encode_ms;
        tp.debug_fail_encode = (int)cfg.debug_fail_encode;
        tp.reconnect_window_ms = (int64_t)(cfg.reconnect_window * 1000.0 + 0.5);
        tp.handover = main_handover(&cfg);
        tp.no_overload_protection = strcmp(cfg.overload_protection, "off") == 0;
        tp.record = cfg.record;
        tp.record_cb = main_record_cb; /* the stream's own `record` (API), else --record */
        tp.record_opaque = store;
        tp.recordings_dir = cfg.recordings_dir;
        tp.record_mp4 = cfg.record_mp4;
        tp.recording_ready_cb = main_webhook_recording_ready;
        tp.recordings_max_age_s = cfg.recordings_max_age_s;
        tp.recordings_max_bytes = cfg.recordings_max_bytes;
        main_recordings_startup(&cfg);
        transcode_rung_spec_t *overrides = main_rung_overrides(&cfg);
        if (cfg.nrungs > 0 && !overrides)
            goto fail;
        tp.overrides = overrides;
        tp.noverrides = cfg.nrungs;
        rc = transcode_new(&tp, &transcode);
        free(overrides);
        if (rc != 0) {
            log_error(NULL, "cannot start the transcoder");
            goto fail;
        }
        ingest_params_t ip = {
            .rtmp_listen = cfg.rtmp_listen,
            .rtmps_listen = cfg.rtmps_listen,
            .tls_cert = cfg.tls_cert,
            .tls_key = cfg.tls_key,
            .store = store,
            .hooks = {.opaque = transcode, .publish_start_cb = main_publish_start_cb},
            .duplicate = strcmp(cfg.duplicate_publisher, "reject") == 0
                             ? INGEST_DUPLICATE_REJECT
                             : INGEST_DUPLICATE_TAKEOVER,
            .drop_on_close = main_handover(&cfg),
        };
        main_ingest_limits(&cfg, main_webhook.webhook != NULL, &ip.limits);
        main_webhook_ingest_params(&ip);
        rc = ingest_open(&ip, &ingest);
        if (rc != 0) {
            log_error(NULL, "cannot start RTMP ingest on %s: %s", cfg.rtmp_listen, strerror(-rc));
            goto fail;
        }
        main_webhook_attach(ingest);
    }
    if (cfg.roles & CONFIG_ROLE_ORIGIN) {
        origin_params_t op = {
            .http_listen = cfg.http_listen,
            .store = store,
            .threads = (unsigned)cfg.http_threads,
            .max_connections = (unsigned)cfg.http_max_connections,
            .timeout_s = (unsigned)cfg.http_timeout_s,
            .max_connections_per_ip = (unsigned)cfg.http_max_connections_per_ip,
            .max_held = (unsigned)cfg.http_max_held,
            .max_held_per_ip = (unsigned)cfg.http_max_held_per_ip,
            .segment_duration = cfg.segment_duration,
            .part_duration = cfg.part_duration,
            .playlist_no_cache = strcmp(cfg.playlist_cache, "no-cache") == 0,
            .cors_origin = cfg.cors_origin,
            .playback_secret = cfg.playback_secret,
            .trusted_proxies = cfg.trusted_proxies,
            .recordings_dir = cfg.recordings_dir,
            .thumbnail_scale = thumbnail_scale,
        };
        if (origin_open(&op, &origin) != 0)
            goto fail;
    }
    report_params_t rp = {
        .store = store,
        .ingest = ingest,
        .transcode = transcode,
        .origin = origin,
        .segment_duration = cfg.segment_duration,
        .webhook = main_webhook.webhook,
        .event_cb = main_webhook.webhook ? main_webhook_report_event : NULL,
    };
    if (report_new(&rp, &report) != 0)
        goto fail;
    char http_base[512], rtmp_base[512];
    main_public_url("http", cfg.http_listen, origin ? origin_port(origin) : 8080, "", http_base,
                    sizeof(http_base));
    main_public_url("rtmp", cfg.rtmp_listen, ingest ? ingest_port(ingest) : 1935, "/live",
                    rtmp_base, sizeof(rtmp_base));
    admin_params_t ap = {
        .listen = cfg.admin_listen,
        .token = cfg.admin_token,
        .store = store,
        .report = report,
        .public_http_url = cfg.public_http_url ? cfg.public_http_url : http_base,
        .public_rtmp_url = cfg.public_rtmp_url ? cfg.public_rtmp_url : rtmp_base,
        .rotate_cuts = strcmp(cfg.key_rotation, "cut") == 0,
        .recordings_dir = cfg.recordings_dir,
        .record = cfg.record,
        .allowed_hosts = cfg.admin_allowed_hosts,
    };
    if (admin_open(&ap, &admin) != 0)
        goto fail;
    log_info(NULL, "sluice %s ready (store: %s, rtmp port %d, http port %d, admin port %d)",
             SLUICE_VERSION, store_backend_name(store), ingest ? ingest_port(ingest) : 0,
             origin ? origin_port(origin) : 0, admin_port(admin));

    int sig = 0;
    for (;;) {
        sigwait(&sigs, &sig);
        if (sig != SIGHUP)
            break;
        main_reload_t rl = {.cfg = &cfg, .store = store, .ingest = ingest, .admin = admin};
        main_reload(&rl, argc, argv);
    }
    log_info(NULL, "%s received, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    main_watch_second_signal(&sigs);
    exit_code = 0;

fail:
    admin_close(admin);
    main_webhook_attach(NULL); /* late authorisation answers go nowhere now */
    /* Before ingest: its thread reads ingest, transcode and origin, and
     * its events go to the webhook, which stays until ingest has said
     * stream.idle for every live stream. */
    report_free(report);
    ingest_close(ingest);
    transcode_free(transcode);
    origin_close(origin);
    main_webhook_close();
    store_close(store);
    curl_global_cleanup();
    config_free(&cfg);
    if (exit_code == 0)
        log_info(NULL, "stopped");
    return exit_code;
}
