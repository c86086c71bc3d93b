/*
 * The composition root: builds the running parts of a sluice process from
 * its configuration (store -> streams -> webhook -> transcode -> ingest ->
 * origin -> report -> admin), hands them a reloaded configuration on SIGHUP,
 * and tears them down in reverse. main.c keeps the command line, the
 * signals and the wait.
 *
 * Runs on the main thread, except the hooks below that ingest, the
 * transcode workers, the report and the webhook thread call: those only
 * read the app's parts, which stay put between app_open and app_close.
 * The app owns every part; the configuration is main's.
 */
#include "app.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <jansson.h>

#include "admin.h"
#include "hls_names.h"
#include "ingest.h"
#include "log.h"
#include "clip.h"
#include "origin.h"
#include "recorder.h"
#include "retention.h"
#include "report.h"
#include "store.h"
#include "thumbnail.h"
#include "transcode.h"
#include "webhook.h"

struct sluice_app {
    config_t *cfg; /* the running configuration (main's); reloads adopt into it */
    store_t *store;
    webhook_t *webhook; /* NULL: no webhooks */
    transcode_t *transcode;
    ingest_t *ingest;
    origin_t *origin;
    report_t *report;
    admin_t *admin;
    clip_service_t *clips; /* the clip worker (docs/clips.md); NULL: no --recordings-dir */
    /* What late publish authorisation answers go to: ingest once it is
     * open, NULL again before it closes. Under auth_lock, because answers
     * arrive on the webhook thread. */
    pthread_mutex_t auth_lock;
    ingest_t *auth_ingest;
};

/* Ingest's hooks all have the app as their opaque: the transcoder is
 * created before ingest and the webhook before both, so each hook finds
 * the part it calls already there. */
static int app_publish_start_cb(void *opaque, const char *stream_id, media_queue_t *queue)
{
    sluice_app_t *app = opaque;
    return transcode_stream_start(app->transcode, stream_id, queue);
}

/* ---- webhooks (--webhook-url) ---------------------------------------------- */

static int app_webhook_open(sluice_app_t *app, const config_t *cfg)
{
    if (!cfg->webhook_url || !cfg->webhook_url[0])
        return 0;
    webhook_params_t wp = {.url = cfg->webhook_url,
                           .secret = cfg->webhook_secret,
                           .timeout_s = cfg->webhook_timeout};
    int rc = webhook_new(&wp, &app->webhook);
    if (rc < 0)
        log_error(NULL, "--webhook-url: cannot start webhooks (%s)", strerror(-rc));
    return rc;
}

/* An accepted publish's ladder from the webhook's answer (NULL: none, the
 * stream's own applies) for the broadcast about to start. An invalid one
 * is logged and ignored, never a refusal: a platform's mistake must not
 * take a seller off the air. Webhook thread, under auth_lock (transcode
 * is there while ingest is attached). */
static void app_webhook_ladder(sluice_app_t *app, const char *stream_id, const json_t *v)
{
    transcode_ladder_t l;
    bool have = false;
    if (v) {
        size_t n = 0;
        const transcode_rung_spec_t *defined = transcode_defined_rungs(app->transcode, &n);
        char err[256];
        have = transcode_ladder_from_json(v, defined, n, &l, err, sizeof(err)) == 0;
        if (!have)
            log_warn("webhook", "stream %s: the webhook's answer has an invalid ladder (%s); "
                                "the publish goes on with the stream's own or the server's "
                                "ladder", stream_id, err);
    }
    if (transcode_stream_next_ladder(app->transcode, stream_id, have ? &l : NULL) < 0)
        log_warn("webhook", "stream %s: cannot keep the webhook's ladder (out of memory); the "
                            "stream's own or the server's applies", stream_id);
}

/* Runs on the webhook thread. An answer that comes before ingest_open has
 * returned (or once ingest is closing) is dropped: that publisher is refused
 * at its auth timeout. */
static void app_webhook_auth_done(void *opaque, uint64_t ticket, ingest_auth_verdict_t verdict,
                                  const webhook_auth_answer_t *ans)
{
    sluice_app_t *app = opaque;
    pthread_mutex_lock(&app->auth_lock);
    if (app->auth_ingest && verdict == INGEST_AUTH_ACCEPTED && ans->publish_id)
        app_webhook_ladder(app, ans->publish_id, ans->ladder);
    if (app->auth_ingest)
        ingest_auth_done(app->auth_ingest, ticket, verdict, ans->stream_id);
    pthread_mutex_unlock(&app->auth_lock);
}

static int app_webhook_auth_cb(void *opaque, const ingest_auth_request_t *req)
{
    sluice_app_t *app = opaque;
    return webhook_authorize(app->webhook, req, app_webhook_auth_done, app);
}

static void app_webhook_live_cb(void *opaque, const char *stream_id, const char *client_ip)
{
    sluice_app_t *app = opaque;
    json_t *data = json_pack("{s:s, s:s}", "client_ip", client_ip, "app", "live");
    webhook_event(app->webhook, "stream.live", stream_id, data);
    json_decref(data);
}

/* data.reason says whether the publisher ended its publish or dropped
 * (then the playlists wait for it within the reconnect window), or that
 * sluice refused its input (data.detail says why). */
static void app_webhook_end_cb(void *opaque, const char *stream_id, bool dropped,
                               const char *refusal)
{
    sluice_app_t *app = opaque;
    json_t *data = refusal ? json_pack("{s:s, s:s}", "reason", "refused", "detail", refusal)
                           : json_pack("{s:s}", "reason", dropped ? "dropped" : "ended");
    webhook_event(app->webhook, "stream.idle", stream_id, data);
    json_decref(data);
}

/* recording.ready: a recording was finalized (on its stream's transcode
 * worker) or recovered at start-up. The URL is the public origin's. */
static void app_webhook_recording_ready(void *opaque, const char *rid, const char *stream_id,
                                        double duration_s)
{
    sluice_app_t *app = opaque;
    char url[RECORD_ID_MAX + 32];
    snprintf(url, sizeof(url), "/vod/%s/" HLS_NAME_MASTER, rid);
    json_t *data = json_pack("{s:s, s:s, s:f, s:s}", "recording_id", rid, "stream_id", stream_id,
                             "duration_s", round(duration_s * 1000) / 1000, "url", url);
    webhook_event(app->webhook, "recording.ready", stream_id, data);
    json_decref(data);
}

/* clip.ready: a clip was made (on the clip worker). The URL is the public
 * origin's. */
static void app_webhook_clip_ready(void *opaque, const char *cid, const json_t *clip)
{
    sluice_app_t *app = opaque;
    const char *sid = json_string_value(json_object_get(clip, "stream_id"));
    char url[RECORD_ID_MAX + 32];
    snprintf(url, sizeof(url), "/vod/%s/" CLIP_MP4, cid);
    json_t *data = json_pack("{s:s, s:s, s:O?, s:s}", "clip_id", cid, "stream_id", sid ? sid : "",
                             "duration_s", json_object_get(clip, "duration_s"), "url", url);
    webhook_event(app->webhook, "clip.ready", sid ? sid : "", data);
    json_decref(data);
}

/* transcode_params_t.output_event_cb: "output.live" / "output.failed" of
 * a simulcast output (docs/simulcast.md), on the output's thread. The URL
 * is the masked one; the transcode manager (and with it every output) is
 * freed before the webhook. */
static void app_webhook_output_event(void *opaque, const char *stream_id, const char *output_id,
                                     const char *event, const char *masked_url,
                                     const char *error)
{
    sluice_app_t *app = opaque;
    json_t *data = json_pack("{s:s, s:s, s:o}", "output", output_id, "url", masked_url,
                             "error", error ? json_string(error) : json_null());
    webhook_event(app->webhook, event, stream_id, data);
    json_decref(data);
}

/* report_params_t.event_cb ("stream.health_changed"), on the report
 * thread. The report is freed before the webhook. */
static void app_webhook_report_event(void *opaque, const char *event, const char *stream_id,
                                     json_t *data)
{
    sluice_app_t *app = opaque;
    webhook_event(app->webhook, event, stream_id, data);
}

/* Adds the webhook hooks to ingest's. */
static void app_webhook_ingest_params(const sluice_app_t *app, ingest_params_t *ip)
{
    if (!app->webhook)
        return;
    ip->hooks.publish_auth_cb = app_webhook_auth_cb;
    ip->hooks.publish_live_cb = app_webhook_live_cb;
    ip->hooks.publish_end_cb = app_webhook_end_cb;
}

/* ingest: the open ingest, or NULL before it closes. */
static void app_webhook_attach(sluice_app_t *app, ingest_t *ingest)
{
    pthread_mutex_lock(&app->auth_lock);
    app->auth_ingest = ingest;
    pthread_mutex_unlock(&app->auth_lock);
}

/* SIGHUP with a re-read configuration: the URL, secret and timeout of new
 * requests (ingest's safety timeout follows with the RTMP limits). Turning
 * webhooks on or off needs a restart (said so). */
static void app_webhook_reload(sluice_app_t *app, const config_t *cfg)
{
    bool want = cfg->webhook_url && cfg->webhook_url[0];
    if (!app->webhook) {
        if (want)
            log_warn(NULL, "SIGHUP: --webhook-url needs a restart to take effect");
        return;
    }
    if (!want) {
        log_warn(NULL, "SIGHUP: turning webhooks off needs a restart; they stay on");
        return;
    }
    if (webhook_reconfigure(app->webhook, cfg->webhook_url, cfg->webhook_secret,
                            cfg->webhook_timeout) < 0)
        log_error(NULL, "SIGHUP: webhook settings not changed");
}

/* ---- building the parts -------------------------------------------------- */

/* transcode_params_t.record_cb: asked once per broadcast, on its worker. */
static bool app_record_cb(void *opaque, const char *stream_id, bool dflt)
{
    return store_stream_record(opaque, stream_id, dflt);
}

/* Start-up, ingest role (whether recording is on or not): recordings an
 * earlier run left "recording" (it died mid-broadcast) are finalized from
 * their journals, then retention runs once. Nothing is live yet. */
static void app_recordings_startup(sluice_app_t *app, const config_t *cfg)
{
    int n = recorder_recover(cfg->recordings_dir, cfg->record_mp4, app_webhook_recording_ready,
                             app);
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

static int app_seed_streams(store_t *store, const config_t *cfg)
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
static int app_state_open(store_t *store, const config_t *cfg, size_t *loaded)
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
static transcode_rung_spec_t *app_rung_overrides(const config_t *cfg)
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

/* The store, its registry on disk and the predefined streams. */
static int app_open_store(sluice_app_t *app, const config_t *cfg)
{
    int rc = store_open(cfg->store_url, &app->store);
    if (rc == -EPROTONOSUPPORT) {
        log_error(NULL, "--store %s: this build has only the memory store", cfg->store_url);
        return -1;
    } else if (rc < 0) {
        log_error(NULL, "--store: not a store URL (memory, redis://[:PASSWORD@]HOST:PORT[/DB], or "
                        "redis-sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTER"
                        "[?db=N&...]; see docs/configuration.md)");
        return -1;
    }
    /* A stream is idle (evicted first) after 3 segment durations without a
     * commit, 10 s at least. Only the memory store uses it. */
    double idle_s = 3 * cfg->segment_duration > 10 ? 3 * cfg->segment_duration : 10;
    if (store_set_memory_limit(app->store, cfg->store_memory_limit, (int64_t)(idle_s * 1000)) != 0)
        return -1;
    size_t loaded = 0;
    if (strcmp(store_backend_name(app->store), "memory") == 0 &&
        app_state_open(app->store, cfg, &loaded) != 0)
        return -1;
    if (app_seed_streams(app->store, cfg) != 0)
        return -1;
    size_t dropped = 0;
    if (store_stream_seed_done(app->store, &dropped) != 0) {
        log_error(NULL, "--state-dir: cannot remove the streams the configuration dropped");
        return -1;
    }
    if (cfg->nstreams == 0 && loaded == dropped && (cfg->roles & CONFIG_ROLE_INGEST))
        log_warn(NULL, "no stream defined: every publish will be refused (add --stream ID:KEY)");
    return 0;
}

/* A shared store and a reconnect window: streams live at shutdown are
 * handed over (their playlists stay live for the window, for a publisher
 * coming back through another node) rather than ended. */
static bool app_handover(const config_t *cfg)
{
    return cfg->reconnect_window > 0 && strncmp(cfg->store_url, "redis", 5) == 0;
}

/* The RTMP limits of a configuration; with webhooks, the ingest-side
 * safety timeout of a publish waiting for its authorisation: a little over
 * the webhook's own, so the webhook's answer (a refusal at its timeout)
 * normally comes first. Zeroed first: a reload compares two of these with
 * memcmp. */
static void app_ingest_limits(const config_t *cfg, bool webhooks, ingest_limits_t *lim)
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

/* --rungs on-demand: how long a rung nobody asks for keeps encoding (the
 * test aid --debug-rung-idle may go under --rung-idle's minimum); 0 with
 * --rungs always. */
static int64_t app_rung_idle_ms(const config_t *cfg)
{
    if (!cfg->rungs_mode || strcmp(cfg->rungs_mode, "on-demand") != 0)
        return 0;
    double s = cfg->debug_rung_idle > 0 ? cfg->debug_rung_idle : cfg->rung_idle;
    return (int64_t)(s * 1000.0 + 0.5);
}

/* The ingest role: webhooks, the transcoder, then RTMP ingest. */
static int app_open_ingest(sluice_app_t *app, const config_t *cfg)
{
    if (app_webhook_open(app, cfg) != 0)
        return -1;
    transcode_params_t tp;
    transcode_params_default(&tp);
    tp.store = app->store;
    tp.segment_duration = cfg->segment_duration;
    tp.part_duration = cfg->part_duration;
    tp.playlist_segments = (int)cfg->playlist_segments;
    tp.dvr_window = cfg->dvr_window;
    tp.ended_ttl_ms = (int64_t)cfg->ended_ttl_s * 1000;
    tp.ladder = cfg->ladder;
    tp.passthrough = strcmp(cfg->passthrough, "never") == 0 ? TRANSCODE_PASSTHROUGH_NEVER
                                                            : TRANSCODE_PASSTHROUGH_AUTO;
    tp.preset = cfg->preset;
    tp.debug_slow_encode_ms = (int)cfg->debug_slow_encode_ms;
    tp.debug_fail_encode = (int)cfg->debug_fail_encode;
    tp.reconnect_window_ms = (int64_t)(cfg->reconnect_window * 1000.0 + 0.5);
    tp.handover = app_handover(cfg);
    tp.no_overload_protection = strcmp(cfg->overload_protection, "off") == 0;
    tp.rung_idle_ms = app_rung_idle_ms(cfg);
    tp.record = cfg->record;
    tp.record_cb = app_record_cb; /* the stream's own `record` (API), else --record */
    tp.record_opaque = app->store;
    tp.recordings_dir = cfg->recordings_dir;
    tp.record_mp4 = cfg->record_mp4;
    tp.recording_ready_cb = app_webhook_recording_ready;
    tp.recording_ready_opaque = app;
    tp.output_event_cb = app_webhook_output_event;
    tp.output_event_opaque = app;
    tp.recordings_max_age_s = cfg->recordings_max_age_s;
    tp.recordings_max_bytes = cfg->recordings_max_bytes;
    app_recordings_startup(app, cfg);
    transcode_rung_spec_t *overrides = app_rung_overrides(cfg);
    if (cfg->nrungs > 0 && !overrides)
        return -1;
    tp.overrides = overrides;
    tp.noverrides = cfg->nrungs;
    int rc = transcode_new(&tp, &app->transcode);
    free(overrides);
    if (rc != 0) {
        log_error(NULL, "cannot start the transcoder");
        return -1;
    }
    ingest_params_t ip = {
        .rtmp_listen = cfg->rtmp_listen,
        .rtmps_listen = cfg->rtmps_listen,
        .tls_cert = cfg->tls_cert,
        .tls_key = cfg->tls_key,
        .store = app->store,
        .hooks = {.opaque = app, .publish_start_cb = app_publish_start_cb},
        .duplicate = strcmp(cfg->duplicate_publisher, "reject") == 0 ? INGEST_DUPLICATE_REJECT
                                                                     : INGEST_DUPLICATE_TAKEOVER,
        .drop_on_close = app_handover(cfg),
        .srt_listen = cfg->srt_listen,
        .srt_listen_optional = strcmp(cfg->srt_listen, CONFIG_SRT_LISTEN_DEFAULT) == 0,
        .srt_passphrase = cfg->srt_passphrase,
        .srt_latency_ms = (uint32_t)cfg->srt_latency_ms,
    };
    app_ingest_limits(cfg, app->webhook != NULL, &ip.limits);
    app_webhook_ingest_params(app, &ip);
    rc = ingest_open(&ip, &app->ingest);
    if (rc != 0) {
        log_error(NULL, "cannot start RTMP ingest on %s: %s", cfg->rtmp_listen, strerror(-rc));
        return -1;
    }
    app_webhook_attach(app, app->ingest);
    return 0;
}

/* The origin role: the public HTTP origin. */
static int app_open_origin(sluice_app_t *app, const config_t *cfg)
{
    origin_params_t op = {
        .http_listen = cfg->http_listen,
        .store = app->store,
        .threads = (unsigned)cfg->http_threads,
        .max_connections = (unsigned)cfg->http_max_connections,
        .timeout_s = (unsigned)cfg->http_timeout_s,
        .max_connections_per_ip = (unsigned)cfg->http_max_connections_per_ip,
        .max_held = (unsigned)cfg->http_max_held,
        .max_held_per_ip = (unsigned)cfg->http_max_held_per_ip,
        .segment_duration = cfg->segment_duration,
        .part_duration = cfg->part_duration,
        .playlist_no_cache = strcmp(cfg->playlist_cache, "no-cache") == 0,
        .cors_origin = cfg->cors_origin,
        .playback_secret = cfg->playback_secret,
        .trusted_proxies = cfg->trusted_proxies,
        .recordings_dir = cfg->recordings_dir,
        .beacons_off = cfg->beacons && strcmp(cfg->beacons, "off") == 0,
        .audience_timeout_s = (unsigned)cfg->audience_timeout_s,
        .audience_per_address = (unsigned)cfg->audience_per_address,
        .thumbnail_scale = thumbnail_scale,
        .rungs_on_demand = app_rung_idle_ms(cfg) > 0,
    };
    return origin_open(&op, &app->origin) != 0 ? -1 : 0;
}

/* The public base URL of a listener when the configuration gives none:
 * the host it listens on, or this machine's name when that is a wildcard. */
static void app_public_url(const char *scheme, const char *listen, int port, const char *suffix,
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

/* ingest_clock_cb_t: the packager's clock as its worker publishes it, so
 * that the API answers with the very program date-time the DATERANGE will
 * carry. Runs on the admin thread under ingest's metadata lock. */
static int app_metadata_clock(void *opaque, const char *stream_id, int64_t dts_ms,
                              int64_t *media_ms, int64_t *pdt_ms)
{
    sluice_app_t *app = opaque;
    int rc = transcode_stream_clock(app->transcode, stream_id, dts_ms, media_ms, pdt_ms);
    return rc == -ENOENT ? -EAGAIN : rc; /* live in ingest, its worker about to start */
}

/* admin_params_t.metadata_cb: POST /api/v1/streams/ID/metadata. */
static int app_metadata_cb(void *opaque, const char *stream_id, const uint8_t *payload,
                           size_t len, ingest_metadata_stamp_t *out)
{
    sluice_app_t *app = opaque;
    return ingest_metadata_push(app->ingest, stream_id, payload, len, app_metadata_clock, app,
                                out);
}

/* Every role: the report (stats, health events) and the admin listener. */
static int app_open_control(sluice_app_t *app, const config_t *cfg)
{
    report_params_t rp = {
        .store = app->store,
        .ingest = app->ingest,
        .transcode = app->transcode,
        .origin = app->origin,
        .segment_duration = cfg->segment_duration,
        .webhook = app->webhook,
        .event_cb = app->webhook ? app_webhook_report_event : NULL,
        .event_opaque = app,
    };
    if (report_new(&rp, &app->report) != 0)
        return -1;
    char http_base[512], rtmp_base[512];
    app_public_url("http", cfg->http_listen, app->origin ? origin_port(app->origin) : 8080, "",
                   http_base, sizeof(http_base));
    app_public_url("rtmp", cfg->rtmp_listen, app->ingest ? ingest_port(app->ingest) : 1935,
                   "/live", rtmp_base, sizeof(rtmp_base));
    admin_params_t ap = {
        .listen = cfg->admin_listen,
        .token = cfg->admin_token,
        .store = app->store,
        .report = app->report,
        .public_http_url = cfg->public_http_url ? cfg->public_http_url : http_base,
        .public_rtmp_url = cfg->public_rtmp_url ? cfg->public_rtmp_url : rtmp_base,
        .rotate_cuts = strcmp(cfg->key_rotation, "cut") == 0,
        .recordings_dir = cfg->recordings_dir,
        .record = cfg->record,
        .allowed_hosts = cfg->admin_allowed_hosts,
        .metadata_cb = app->ingest ? app_metadata_cb : NULL,
        .metadata_opaque = app,
        .nrungs = cfg->nrungs,
    };
    if (cfg->recordings_dir && cfg->recordings_dir[0]) {
        clip_service_params_t cp = {.recordings_dir = cfg->recordings_dir,
                                    .max_age_s = cfg->clips_max_age_s,
                                    .ready_cb = app_webhook_clip_ready,
                                    .opaque = app};
        if (clip_service_new(&cp, &app->clips) != 0)
            return -1;
        ap.clips = app->clips;
    }
    transcode_rung_spec_t *rungs = app_rung_overrides(cfg);
    if (cfg->nrungs > 0 && !rungs)
        return -1;
    ap.rungs = rungs;
    int rc = admin_open(&ap, &app->admin);
    free(rungs);
    return rc != 0 ? -1 : 0;
}

int app_open(config_t *cfg, sluice_app_t **out)
{
    *out = NULL;
    sluice_app_t *app = calloc(1, sizeof(*app));
    if (!app) {
        log_error(NULL, "out of memory");
        return -1;
    }
    app->cfg = cfg;
    pthread_mutex_init(&app->auth_lock, NULL);
    if (app_open_store(app, cfg) != 0 ||
        ((cfg->roles & CONFIG_ROLE_INGEST) && app_open_ingest(app, cfg) != 0) ||
        ((cfg->roles & CONFIG_ROLE_ORIGIN) && app_open_origin(app, cfg) != 0) ||
        app_open_control(app, cfg) != 0) {
        app_close(app);
        return -1;
    }
    log_info(NULL, "sluice %s ready (store: %s, rtmp port %d, http port %d, admin port %d)",
             SLUICE_VERSION, store_backend_name(app->store),
             app->ingest ? ingest_port(app->ingest) : 0,
             app->origin ? origin_port(app->origin) : 0, admin_port(app->admin));
    *out = app;
    return 0;
}

/* ---- reload (SIGHUP) ----------------------------------------------------- */

/* The names of the changed options, by what the reload does with them. */
typedef struct app_reload_lists {
    char applied[512];
    char restart[512];
} app_reload_lists_t;

static void app_reload_note(char *list, size_t size, const char *name)
{
    size_t n = strlen(list);
    snprintf(list + n, size - n, "%s%s", n ? ", " : "", name);
}

/* Each changed option goes to the list its row of the option table says. */
static void app_reload_diff_cb(void *opaque, const char *name, unsigned flags)
{
    app_reload_lists_t *l = opaque;
    if (flags & CONFIG_RELOAD)
        app_reload_note(l->applied, sizeof(l->applied), name);
    else
        app_reload_note(l->restart, sizeof(l->restart), name);
}

/* --stream entries that changed: removed ones leave the registry (and a
 * live publisher is cut), new ones are seeded, a new key for an id rotates. */
static void app_reload_streams(store_t *store, const config_t *old, const config_t *cfg)
{
    for (size_t i = 0; i < old->nstreams; i++) {
        const config_stream_t *o = &old->streams[i];
        const config_stream_t *n = NULL;
        for (size_t j = 0; j < cfg->nstreams && !n; j++)
            if (strcmp(cfg->streams[j].id, o->id) == 0)
                n = &cfg->streams[j];
        if (!n) {
            int rc = store_stream_remove(store, o->id);
            if ((rc == 0 || rc == -ENOENT) && store_lease_revoke(store, o->id) < 0)
                log_warn(NULL, "reload: a live publisher of '%s' could not be cut", o->id);
            log_info(NULL, "reload: stream '%s' removed%s", o->id,
                     rc == 0 || rc == -ENOENT ? "" : " (failed: store unavailable)");
        } else if (strcmp(n->key, o->key) != 0) {
            int rc = store_stream_rotate(store, o->id, n->key);
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
        int rc = store_stream_seed(store, cfg->streams[j].id, cfg->streams[j].key);
        log_info(NULL, "reload: stream '%s' added%s", cfg->streams[j].id,
                 rc == 0 ? "" : rc == -EEXIST ? " (refused: another stream has that key)"
                                              : " (failed)");
    }
}

void app_reload(sluice_app_t *app, config_t *next)
{
    config_t *cur = app->cfg;
    app_reload_lists_t l = {.applied = "", .restart = ""};
    config_diff(cur, next, app_reload_diff_cb, &l);
    app_reload_streams(app->store, cur, next);
    /* The running configuration takes the values the option table marks
     * CONFIG_RELOAD and the parts are given them from it; the others keep
     * running as they are, so a later reload names them again. */
    bool webhooks = app->webhook != NULL;
    ingest_limits_t before, after;
    app_ingest_limits(cur, webhooks, &before);
    config_adopt(cur, next);
    app_webhook_reload(app, cur);
    app_ingest_limits(cur, webhooks, &after);
    if (app->ingest && memcmp(&before, &after, sizeof(before)) != 0)
        (void)ingest_set_limits(app->ingest, &after);
    if (admin_set_token(app->admin, cur->admin_token) != 0)
        log_error(NULL, "reload: the admin token could not be changed");
    log_level_t level = LOG_LEVEL_INFO;
    log_format_t format = LOG_FORMAT_TEXT;
    (void)log_level_parse(cur->log_level, &level);
    (void)log_format_parse(cur->log_format, &format);
    log_configure(level, format);
    /* The certificate files are read again even when their names did not
     * change: renewing a certificate in place is the usual reason for a
     * SIGHUP. A failure is logged and the old certificate stays. */
    (void)ingest_reload_tls(app->ingest);
    log_info(NULL, "reload done; changed and applied: %s; changed but needing a restart: %s",
             l.applied[0] ? l.applied : "nothing", l.restart[0] ? l.restart : "nothing");
    config_free(next);
}

/* ---- shutdown ------------------------------------------------------------ */

void app_close(sluice_app_t *app)
{
    if (!app)
        return;
    admin_close(app->admin);
    clip_service_free(app->clips); /* after the API that feeds it, before the webhook */
    app_webhook_attach(app, NULL); /* late authorisation answers go nowhere now */
    /* Before ingest: its thread reads ingest, transcode and origin, and
     * its events go to the webhook, which stays until ingest has said
     * stream.idle for every live stream. */
    report_free(app->report);
    ingest_close(app->ingest);
    transcode_free(app->transcode);
    origin_close(app->origin);
    /* After ingest has closed (its last stream.idle events are queued) and
     * the report is freed: sends what is queued (briefly) and stops. */
    webhook_free(app->webhook);
    store_close(app->store);
    pthread_mutex_destroy(&app->auth_lock);
    free(app);
}
