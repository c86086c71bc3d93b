/*
 * Option parsing for flags, SLUICE_* environment variables and the INI file
 * (inih). Each source fills a string slot per option tagged with its rank;
 * a higher-ranked source overwrites a lower one. Only after all sources are
 * read are the strings converted and checked, so an error names the option
 * and the value whatever source it came from. Runs once on the main thread.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "netaddr.h"
#include "store.h"


typedef enum config_type {
    CONFIG_STRING,
    CONFIG_DOUBLE,
    CONFIG_LONG,
    CONFIG_ROLES,
    CONFIG_STREAMS, /* repeatable ID:KEY */
    CONFIG_SIZE,    /* bytes: 1073741824, 512M, 2G (K/M/G/T are powers of 1024) */
    CONFIG_BOOL,    /* a bare --flag is true; values true|false|on|off|yes|no|1|0 */
} config_type_t;

typedef struct config_option {
    const char *name; /* flag name without "--" */
    unsigned flags;   /* CONFIG_RELOAD or CONFIG_RESTART, maybe | CONFIG_DEBUG */
    config_type_t type;
    size_t offset; /* into config_t */
    const char *def;
    const char *choices; /* "a|b" for enumerations, else NULL */
    double min, max;     /* numeric bounds */
    const char *help;
} config_option_t;

/* One row per option. flags says what a SIGHUP does with a changed value
 * (config.h): a CONFIG_RELOAD row is taken over by config_adopt(), and the
 * reload hands the new value to its consumer; any other changed row is
 * named as needing a restart. */
#define OPT(name, flags, type, field, def, choices, min, max, help)                            \
    {name, flags, type, offsetof(config_t, field), def, choices, min, max, help}

static const config_option_t config_options[] = {
    OPT("rtmp-listen", CONFIG_RESTART, CONFIG_STRING, rtmp_listen, "0.0.0.0:1935", NULL, 0, 0,
        "RTMP ingest address HOST:PORT"),
    OPT("rtmps-listen", CONFIG_RESTART, CONFIG_STRING, rtmps_listen, NULL, NULL, 0, 0,
        "RTMPS ingest address HOST:PORT (off by default; needs --tls-cert and --tls-key)"),
    OPT("tls-cert", CONFIG_RESTART, CONFIG_STRING, tls_cert, NULL, NULL, 0, 0,
        "RTMPS certificate, PEM: the server certificate then its chain (reread on SIGHUP)"),
    OPT("tls-key", CONFIG_RESTART, CONFIG_STRING, tls_key, NULL, NULL, 0, 0,
        "RTMPS private key, PEM (reread on SIGHUP)"),
    OPT("srt-listen", CONFIG_RESTART, CONFIG_STRING, srt_listen, CONFIG_SRT_LISTEN_DEFAULT, NULL,
        0, 0,
        "SRT ingest address HOST:PORT (UDP), or off: srt://HOST:PORT?streamid=KEY, MPEG-TS "
        "(the default address, when its port is taken, is a warning, not a failure)"),
    OPT("srt-passphrase", CONFIG_RESTART, CONFIG_STRING, srt_passphrase, NULL, NULL, 0, 0,
        "SRT encryption passphrase (10 to 79 characters); callers must send the same"),
    OPT("srt-latency", CONFIG_RESTART, CONFIG_LONG, srt_latency_ms, "120", NULL, 20, 10000,
        "SRT receiver latency in milliseconds (about 4x the publisher's round trip)"),
    OPT("http-listen", CONFIG_RESTART, CONFIG_STRING, http_listen, "0.0.0.0:8080", NULL, 0, 0,
        "public origin address HOST:PORT (playlists, media, /healthz)"),
    OPT("store", CONFIG_RESTART, CONFIG_STRING, store_url, "memory", NULL, 0, 0,
        "segment store: memory, redis://[:PASSWORD@]HOST:PORT[/DB], or "
        "redis-sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTER[?db=N&...]"),
    OPT("role", CONFIG_RESTART, CONFIG_ROLES, roles, "ingest,origin", NULL, 0, 0,
        "roles this process runs: ingest, origin or both"),
    OPT("stream", CONFIG_RELOAD, CONFIG_STREAMS, streams, NULL, NULL, 0, 0,
        "a predefined stream ID:KEY (repeatable)"),
    OPT("segment-duration", CONFIG_RESTART, CONFIG_DOUBLE, segment_duration, "2", NULL, 0.5, 30,
        "target segment duration in seconds"),
    OPT("playlist-segments", CONFIG_RESTART, CONFIG_LONG, playlist_segments, "6", NULL, 3, 1000,
        "segments in the live media playlist window"),
    OPT("part-duration", CONFIG_RESTART, CONFIG_DOUBLE, part_duration, "0.333", NULL, 0, 5,
        "LL-HLS part target in seconds; 0 turns LL-HLS off"),
    OPT("playback-secret", CONFIG_RESTART, CONFIG_STRING, playback_secret, NULL, NULL, 0, 0,
        "when set, playback needs a token signed with it (HMAC-SHA256); see docs/cdn.md"),
    OPT("cors-origin", CONFIG_RESTART, CONFIG_STRING, cors_origin, "*", NULL, 0, 0,
        "Access-Control-Allow-Origin of the public origin"),
    OPT("playlist-cache", CONFIG_RESTART, CONFIG_STRING, playlist_cache, "auto", "auto|no-cache", 0,
        0, "auto: playlists cacheable for about half a part (or segment); no-cache: never"),
    OPT("duplicate-publisher", CONFIG_RESTART, CONFIG_STRING, duplicate_publisher, "takeover",
        "takeover|reject", 0, 0, "a second publish of a live key: newest wins, or refused"),
    OPT("log-level", CONFIG_RELOAD, CONFIG_STRING, log_level, "info", "error|warn|info|debug", 0, 0,
        "log verbosity"),
    OPT("log-format", CONFIG_RELOAD, CONFIG_STRING, log_format, "text", "text|json", 0, 0,
        "log line format"),
    OPT("rtmp-max-message-size", CONFIG_RELOAD, CONFIG_LONG, max_message_size, "4194304", NULL,
        65536, 67108864, "largest RTMP message a publisher may send, bytes"),
    OPT("rtmp-max-chunk-size", CONFIG_RELOAD, CONFIG_LONG, max_chunk_size, "65536", NULL, 128,
        16777215, "largest RTMP chunk size a publisher may set, bytes"),
    OPT("rtmp-max-chunk-streams", CONFIG_RELOAD, CONFIG_LONG, max_chunk_streams, "64", NULL, 4,
        65599, "distinct RTMP chunk streams per connection"),
    OPT("rtmp-queue-bytes", CONFIG_RELOAD, CONFIG_LONG, queue_bytes, "33554432", NULL, 1048576,
        1073741824, "media a stream may queue ahead of its packager, bytes"),
    OPT("rtmp-handshake-timeout", CONFIG_RELOAD, CONFIG_LONG, handshake_timeout_ms, "10000", NULL,
        100, 600000, "milliseconds a client has to complete the RTMP handshake"),
    OPT("rtmp-idle-timeout", CONFIG_RELOAD, CONFIG_LONG, idle_timeout_ms, "30000", NULL, 100,
        3600000, "milliseconds a connection may wait between handshake and publish"),
    OPT("rtmp-stall-timeout", CONFIG_RELOAD, CONFIG_LONG, stall_timeout_ms, "10000", NULL, 1000,
        3600000, "milliseconds without media after which a publisher is treated as dropped"),
    OPT("reconnect-window", CONFIG_RESTART, CONFIG_DOUBLE, reconnect_window, "30", NULL, 0, 3600,
        "seconds a dropped publisher has to come back and continue the same playlists; 0: off"),
    OPT("dvr-window", CONFIG_RESTART, CONFIG_DOUBLE, dvr_window, "0", NULL, 0, 86400,
        "seconds the live media playlists keep for seeking back (DVR); 0: the live window only"),
    OPT("rtmp-max-connections", CONFIG_RELOAD, CONFIG_LONG, max_connections, "1000", NULL, 1,
        1000000, "open RTMP connections; more are closed at accept"),
    OPT("rtmp-max-connections-per-ip", CONFIG_RELOAD, CONFIG_LONG, max_connections_per_ip, "32",
        NULL, 1, 1000000, "open RTMP connections from one address (IPv6: from one /64)"),
    OPT("rtmp-max-publishers", CONFIG_RELOAD, CONFIG_LONG, max_publishers, "100", NULL, 1, 100000,
        "streams published at the same time"),
    OPT("rtmp-max-key-failures", CONFIG_RELOAD, CONFIG_LONG, max_key_failures, "10", NULL, 1,
        100000, "unknown stream keys from one address (IPv6: one /64) within a minute before it is "
        "locked out"),
    OPT("rtmp-key-lockout", CONFIG_RELOAD, CONFIG_LONG, key_lockout_s, "300", NULL, 1, 86400,
        "seconds an address stays locked out after too many unknown keys"),
    OPT("max-input-resolution", CONFIG_RESTART, CONFIG_STRING, max_input_resolution, "3840x2160",
        NULL, 0, 0,
        "largest picture a publisher may send, WxH, either orientation; larger is refused"),
    OPT("max-input-fps", CONFIG_RESTART, CONFIG_LONG, max_input_fps, "120", NULL, 1, 1000,
        "highest frame rate a publisher may send; faster is refused"),
    OPT("rtmp-max-amf-depth", CONFIG_RELOAD, CONFIG_LONG, max_amf_depth, "16", NULL, 2, 1024,
        "nesting of AMF0 objects and arrays in one command"),
    OPT("rtmp-max-amf-string", CONFIG_RELOAD, CONFIG_LONG, max_amf_string, "65535", NULL, 256,
        16777215, "bytes of one AMF0 string"),
    OPT("http-threads", CONFIG_RESTART, CONFIG_LONG, http_threads, "0", NULL, 0, 256,
        "origin HTTP worker threads; 0: one per CPU"),
    OPT("http-max-connections", CONFIG_RESTART, CONFIG_LONG, http_max_connections, "10000", NULL,
        16, 1000000, "concurrent origin HTTP connections"),
    /* limits of issue 9 (bounded memory, HTTP side); see docs/configuration.md */
    OPT("http-timeout", CONFIG_RESTART, CONFIG_LONG, http_timeout_s, "15", NULL, 1, 3600,
        "seconds an origin HTTP connection may stay silent; a request head must be in within S + 1"),
    OPT("http-max-connections-per-ip", CONFIG_RESTART, CONFIG_LONG, http_max_connections_per_ip,
        "0", NULL, 0, 1000000,
        "concurrent origin HTTP connections from one address; 0: no limit (CDNs)"),
    OPT("http-max-held", CONFIG_RESTART, CONFIG_LONG, http_max_held, "5000", NULL, 1, 1000000,
        "LL-HLS blocking requests held at once; more are answered at once"),
    OPT("http-max-held-per-ip", CONFIG_RESTART, CONFIG_LONG, http_max_held_per_ip, "64", NULL, 1,
        1000000, "LL-HLS requests one client address (IPv6: its /64) may hold once half of "
        "--http-max-held are held"),
    OPT("store-memory-limit", CONFIG_RESTART, CONFIG_SIZE, store_memory_limit, "1G", NULL, 0,
        1125899906842624.0,
        "bytes the memory store may hold (512M, 2G, ...); idle streams are evicted first; 0: "
        "no limit"),
    OPT("state-dir", CONFIG_RESTART, CONFIG_STRING, state_dir, "state", NULL, 0, 0,
        "directory of the memory store's stream registry (relative to the working directory), "
        "so API-made streams and keys survive restarts; none: in memory only"),
    OPT("record", CONFIG_RESTART, CONFIG_BOOL, record, "false", NULL, 0, 0,
        "keep every broadcast as a VOD in --recordings-dir (per stream: the API's \"record\")"),
    OPT("recordings-dir", CONFIG_RESTART, CONFIG_STRING, recordings_dir, "recordings", NULL, 0, 0,
        "directory of the recordings (relative to the working directory); served at /vod/"),
    OPT("record-mp4", CONFIG_RESTART, CONFIG_BOOL, record_mp4, "false", NULL, 0, 0,
        "also assemble one MP4 (top rendition + audio) of each finished recording"),
    OPT("recordings-max-age", CONFIG_RESTART, CONFIG_LONG, recordings_max_age_s, "0", NULL, 0,
        3153600000.0, "seconds a finished recording is kept; 0: forever"),
    OPT("recordings-max-bytes", CONFIG_RESTART, CONFIG_SIZE, recordings_max_bytes, "0", NULL, 0,
        1125899906842624.0, "bytes all recordings may take (512M, 2G, ...); the oldest "
        "finished ones are deleted first; 0: no limit"),
    OPT("clips-max-age", CONFIG_RESTART, CONFIG_LONG, clips_max_age_s, "2592000", NULL, 0,
        3153600000.0, "seconds a clip is kept (from when it was asked for); 0: forever"),
    OPT("ended-ttl", CONFIG_RESTART, CONFIG_LONG, ended_ttl_s, "600", NULL, 1, 31536000,
        "seconds an ended stream's playlists and segments stay available"),
    OPT("ladder", CONFIG_RESTART, CONFIG_STRING, ladder, "1080p,720p,480p,360p", NULL, 0, 0,
        "renditions by name; rungs taller than the source are skipped (the default: a "
        "stream's own \"ladder\" overrides it)"),
    OPT("passthrough", CONFIG_RESTART, CONFIG_STRING, passthrough, "auto", "auto|never", 0, 0,
        "auto: the rung matching an H.264 source is copied, not re-encoded"),
    OPT("preset", CONFIG_RESTART, CONFIG_STRING, preset, "veryfast",
        "ultrafast|superfast|veryfast|faster|fast|medium|slow|slower|veryslow|placebo", 0, 0,
        "x264 preset of transcoded rungs (overload protection may step faster)"),
    OPT("overload-protection", CONFIG_RESTART, CONFIG_STRING, overload_protection, "on", "on|off",
        0, 0, "step the preset and drop rungs when transcoding falls behind real time"),
    OPT("rungs", CONFIG_RESTART, CONFIG_STRING, rungs_mode, "always", "always|on-demand", 0, 0,
        "always: every rung is encoded while live; on-demand: a transcoded rung nobody asked for "
        "during --rung-idle stops encoding and starts again at the next segment when asked for"),
    OPT("rung-idle", CONFIG_RESTART, CONFIG_DOUBLE, rung_idle, "30", NULL, 10, 3600,
        "with --rungs on-demand: seconds without a request after which a transcoded rung stops"),
    OPT("admin-listen", CONFIG_RESTART, CONFIG_STRING, admin_listen, "127.0.0.1:8081", NULL, 0, 0,
        "admin listener HOST:PORT: REST API, /metrics, dashboard"),
    OPT("admin-token", CONFIG_RELOAD, CONFIG_STRING, admin_token, NULL, NULL, 0, 0,
        "bearer token for the admin listener; without one it answers loopback clients only"),
    OPT("admin-allowed-hosts", CONFIG_RESTART, CONFIG_STRING, admin_allowed_hosts, NULL, NULL, 0, 0,
        "names (Host) the admin listener answers besides IP addresses, localhost and its "
        "listen name, comma-separated"),
    OPT("public-http-url", CONFIG_RESTART, CONFIG_STRING, public_http_url, NULL, NULL, 0, 0,
        "base of playback URLs the API hands out (default http://HOSTNAME:HTTP-PORT)"),
    OPT("public-rtmp-url", CONFIG_RESTART, CONFIG_STRING, public_rtmp_url, NULL, NULL, 0, 0,
        "base of RTMP URLs the API hands out (default rtmp://HOSTNAME:RTMP-PORT/live)"),
    OPT("key-rotation", CONFIG_RESTART, CONFIG_STRING, key_rotation, "finish", "finish|cut", 0, 0,
        "a live publisher whose key is rotated: may finish its broadcast, or is cut at once"),
    OPT("trusted-proxies", CONFIG_RESTART, CONFIG_STRING, trusted_proxies, NULL, NULL, 0, 0,
        "comma-separated addresses/CIDRs whose X-Forwarded-For is believed (viewer counting)"),
    OPT("beacons", CONFIG_RESTART, CONFIG_STRING, beacons, "on", "on|off", 0, 0,
        "audience beacons at POST /beacon/ID (players report their sessions); off: 404"),
    OPT("audience-timeout", CONFIG_RESTART, CONFIG_LONG, audience_timeout_s, "30", NULL, 10, 300,
        "seconds after a player's last beacon that its session stops counting as a viewer "
        "(players send one every 10 s: 15 or more keeps a viewer between two beacons)"),
    OPT("audience-per-address", CONFIG_RESTART, CONFIG_LONG, audience_per_address, "50", NULL, 1,
        100000, "live beacon sessions one client address (IPv6: its /64) may hold per stream on "
                "this node; more are refused (429)"),
    OPT("webhook-url", CONFIG_RELOAD, CONFIG_STRING, webhook_url, NULL, NULL, 0, 0,
        "publish authorisation and stream events are POSTed here"),
    OPT("webhook-secret", CONFIG_RELOAD, CONFIG_STRING, webhook_secret, NULL, NULL, 0, 0,
        "HMAC-SHA256 key signing webhook requests (X-Sluice-Signature)"),
    OPT("webhook-timeout", CONFIG_RELOAD, CONFIG_DOUBLE, webhook_timeout, "3", NULL, 0.1, 60,
        "seconds a publish waits for the webhook's answer before it is refused"),
    OPT("debug-slow-encode", CONFIG_RESTART | CONFIG_DEBUG, CONFIG_LONG, debug_slow_encode_ms, "0",
        NULL, 0, 100000, "testing only: simulated extra encode time, ms per 1080p frame"),
    OPT("debug-fail-encode", CONFIG_RESTART | CONFIG_DEBUG, CONFIG_LONG, debug_fail_encode, "0",
        NULL, 0, 100000000,
        "testing only: the Nth frame given to a transcoded rung fails, once (worker restart)"),
    OPT("debug-rung-idle", CONFIG_RESTART | CONFIG_DEBUG, CONFIG_DOUBLE, debug_rung_idle, "0",
        NULL, 0, 3600, "testing only: --rung-idle in seconds below its minimum; 0: off"),
};
#define CONFIG_NOPTIONS (sizeof(config_options) / sizeof(config_options[0]))

enum { RANK_DEFAULT = 0, RANK_FILE = 1, RANK_ENV = 2, RANK_FLAG = 3 };

typedef struct config_slot {
    int rank;
    /* For repeatable options, a '\n'-joined list; otherwise one value. */
    char *value;
    const char *source; /* "--flag", "SLUICE_X" or "file:line" for errors */
    char source_buf[300];
} config_slot_t;

typedef struct config_loader {
    config_slot_t slots[CONFIG_NOPTIONS];
    char *err;
    size_t errlen;
    int failed;
} config_loader_t;

static void config_error(config_loader_t *ld, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void config_error(config_loader_t *ld, const char *fmt, ...)
{
    if (ld->failed)
        return; /* keep the first error: it is the one to fix first */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ld->err, ld->errlen, fmt, ap);
    va_end(ap);
    ld->failed = 1;
}

/* Matches "rtmp-listen" against "rtmp-listen" or "rtmp_listen". */
static const config_option_t *config_find(const char *name, size_t len)
{
    for (size_t i = 0; i < CONFIG_NOPTIONS; i++) {
        const char *o = config_options[i].name;
        if (strlen(o) != len)
            continue;
        size_t j = 0;
        for (; j < len; j++) {
            char c = name[j] == '_' ? '-' : (char)tolower((unsigned char)name[j]);
            if (c != o[j])
                break;
        }
        if (j == len)
            return &config_options[i];
    }
    return NULL;
}

static void config_set(config_loader_t *ld, const config_option_t *opt, const char *value,
                       int rank, const char *source)
{
    config_slot_t *s = &ld->slots[opt - config_options];
    if (rank < s->rank)
        return;
    char *v;
    if (opt->type == CONFIG_STREAMS && s->rank == rank && s->value) {
        /* Repeatable: the same source appends, a higher one replaces. */
        size_t a = strlen(s->value), b = strlen(value);
        v = malloc(a + 1 + b + 1);
        if (v) {
            memcpy(v, s->value, a);
            v[a] = '\n';
            memcpy(v + a + 1, value, b + 1);
        }
    } else {
        v = strdup(value);
    }
    if (!v) {
        config_error(ld, "out of memory");
        return;
    }
    free(s->value);
    s->value = v;
    s->rank = rank;
    snprintf(s->source_buf, sizeof(s->source_buf), "%s", source);
    s->source = s->source_buf;
}

typedef struct config_ini_ctx {
    config_loader_t *ld;
    const char *path;
    config_t *cfg;
    FILE *f;
    int line;      /* line of the text inih is handling now */
    bool line_end; /* the last piece read ended its line */
} config_ini_ctx_t;

/* inih's reader, counting lines so that every error names file:line. */
static char *config_ini_reader(char *str, int num, void *stream)
{
    config_ini_ctx_t *ctx = stream;
    char *r = fgets(str, num, ctx->f);
    if (!r)
        return NULL;
    if (ctx->line_end)
        ctx->line++;
    size_t n = strlen(r);
    ctx->line_end = n > 0 && r[n - 1] == '\n';
    return r;
}

/* One key of a [rung.NAME] section. */
static int config_ini_rung(config_ini_ctx_t *ctx, const char *rung, const char *name,
                           const char *value)
{
    config_t *cfg = ctx->cfg;
    if (!rung[0] || strlen(rung) >= sizeof(cfg->rungs[0].name)) {
        config_error(ctx->ld, "%s:%d: [rung.%s]: a rung name is 1-15 characters", ctx->path,
                     ctx->line, rung);
        return 0;
    }
    config_rung_t *r = NULL;
    for (size_t i = 0; i < cfg->nrungs && !r; i++)
        if (strcmp(cfg->rungs[i].name, rung) == 0)
            r = &cfg->rungs[i];
    if (!r) {
        config_rung_t *nr = realloc(cfg->rungs, (cfg->nrungs + 1) * sizeof(*nr));
        if (!nr) {
            config_error(ctx->ld, "out of memory");
            return 0;
        }
        cfg->rungs = nr;
        r = &nr[cfg->nrungs++];
        memset(r, 0, sizeof(*r));
        snprintf(r->name, sizeof(r->name), "%s", rung);
    }
    long *num = NULL;
    char *str = NULL;
    if (strcmp(name, "width") == 0)
        num = &r->width;
    else if (strcmp(name, "height") == 0)
        num = &r->height;
    else if (strcmp(name, "bitrate") == 0)
        num = &r->bitrate_kbps;
    else if (strcmp(name, "maxrate") == 0)
        num = &r->maxrate_kbps;
    else if (strcmp(name, "profile") == 0)
        str = r->profile;
    else if (strcmp(name, "preset") == 0)
        str = r->preset;
    if (!num && !str) {
        config_error(ctx->ld, "%s:%d: [rung.%s]: unknown key '%s' (width, height, bitrate, "
                     "maxrate, profile, preset)", ctx->path, ctx->line, rung, name);
        return 0;
    }
    if (str) {
        if (!value[0] || strlen(value) >= sizeof(r->profile)) {
            config_error(ctx->ld, "%s:%d: [rung.%s] %s: '%s' is not a valid value", ctx->path,
                         ctx->line, rung, name, value);
            return 0;
        }
        snprintf(str, sizeof(r->profile), "%s", value);
        return 1;
    }
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (end == value || *end || errno || v < 1 || v > 1000000) {
        config_error(ctx->ld, "%s:%d: [rung.%s] %s: '%s' is not a positive whole number",
                     ctx->path, ctx->line, rung, name, value);
        return 0;
    }
    *num = v;
    return 1;
}

static int config_ini_cb(void *user, const char *section, const char *name, const char *value)
{
    config_ini_ctx_t *ctx = user;
    if (strncmp(section, "rung.", 5) == 0)
        return config_ini_rung(ctx, section + 5, name, value);
    if (section[0] && strcmp(section, "sluice") != 0)
        return 1; /* other sections belong to other tools */
    const config_option_t *opt = config_find(name, strlen(name));
    if (!opt) {
        config_error(ctx->ld, "%s:%d: unknown option '%s'", ctx->path, ctx->line, name);
        return 0;
    }
    char src[300];
    snprintf(src, sizeof(src), "%s:%d (%s)", ctx->path, ctx->line, name);
    config_set(ctx->ld, opt, value, RANK_FILE, src);
    return 1;
}

static void config_print_help(FILE *out)
{
    fprintf(out, "usage: sluice [--config FILE] [OPTIONS]\n\n"
                 "A live-video origin: RTMP in, HLS out.\n\n"
                 "Every option is also an environment variable SLUICE_<NAME> and a key in the\n"
                 "INI file; a flag beats the environment, which beats the file.\n\n");
    for (size_t i = 0; i < CONFIG_NOPTIONS; i++) {
        const config_option_t *o = &config_options[i];
        if (o->flags & CONFIG_DEBUG)
            continue;
        fprintf(out, "  --%-24s %s", o->name, o->help);
        if (o->choices)
            fprintf(out, " (%s)", o->choices);
        if (o->def)
            fprintf(out, " [%s]", o->def);
        fputc('\n', out);
    }
    fprintf(out, "  --%-24s %s\n", "config FILE", "read options from an INI file");
    fprintf(out, "  --%-24s %s\n", "check-config",
            "check the configuration as a start would, print the effective one (secrets "
            "masked) and 'configuration OK', and exit (2 on an error)");
    fprintf(out, "  --%-24s %s\n", "print-config",
            "print a commented INI file of every option with its default and exit");
    fprintf(out, "  --%-24s %s\n", "version", "print the version and exit");
    fprintf(out, "  --%-24s %s\n", "help", "print this help and exit");
}

/* --print-config: every option of the table as a commented-out INI key with
 * its help, choices, bounds and default, so that the file installed as
 * /etc/sluice/sluice.conf is generated from the table and never goes stale.
 * Loading the output unchanged gives the defaults. No version in it: the
 * package's conffile changes (and dpkg asks an operator who edited it) only
 * when the options do. */
static void config_print_template(FILE *out)
{
    fprintf(out,
            "# sluice configuration (generated by `sluice --print-config`).\n"
            "#\n"
            "# Every option below is commented out and shows its default. Remove the '#'\n"
            "# in front of a key to set it. Each key is also a flag (--NAME) and an\n"
            "# environment variable (SLUICE_NAME, upper case, '-' as '_'): a flag beats\n"
            "# the environment, which beats this file, which beats the default.\n"
            "# Check a change with `sluice --check-config --config FILE`; apply it with\n"
            "# `systemctl reload sluice` (SIGHUP) where the option says \"applied on\n"
            "# reload\", else with a restart.\n"
            "\n[sluice]\n");
    for (size_t i = 0; i < CONFIG_NOPTIONS; i++) {
        const config_option_t *o = &config_options[i];
        if (o->flags & CONFIG_DEBUG)
            continue;
        fprintf(out, "\n# %s\n", o->help);
        if (o->flags & CONFIG_RELOAD)
            fprintf(out, "# applied on reload (SIGHUP)\n");
        if (o->choices)
            fprintf(out, "# one of: %s\n", o->choices);
        if (o->type == CONFIG_DOUBLE)
            fprintf(out, "# range: %g to %g\n", o->min, o->max);
        else if (o->type == CONFIG_BOOL)
            fprintf(out, "# true or false\n");
        else if (o->type == CONFIG_LONG || o->type == CONFIG_SIZE)
            fprintf(out, "# range: %.0f to %.0f%s\n", o->min, o->max,
                    o->type == CONFIG_SIZE ? " bytes (or with K, M, G, T)" : "");
        if (o->type == CONFIG_STREAMS)
            fprintf(out, "# repeat the key for more streams; no stream by default\n"
                         "#%s = ID:KEY\n", o->name);
        else if (o->def)
            fprintf(out, "#%s = %s\n", o->name, o->def);
        else
            fprintf(out, "# not set by default\n#%s =\n", o->name);
    }
    fprintf(out,
            "\n# A [rung.NAME] section changes a built-in rung (1080p, 720p, 480p, 360p) or\n"
            "# defines a new one (width, height and bitrate needed); --ladder picks which\n"
            "# rungs run. Keys: width, height, bitrate and maxrate (kb/s), profile\n"
            "# (baseline|main|high), preset (this rung only). Only the file sets these.\n"
            "#[rung.540p]\n"
            "#width = 960\n"
            "#height = 540\n"
            "#bitrate = 2000\n");
}

/* Options whose values are secrets: printed masked by --check-config. */
static bool config_is_secret(const config_option_t *o)
{
    return strstr(o->name, "secret") || strstr(o->name, "token") || strstr(o->name, "password") ||
           strstr(o->name, "passphrase");
}

/* A store URL with its passwords masked: the userinfo's
 * (redis://[USER]:PASSWORD@HOST, split where the store's parser splits it:
 * redis:// at the URL's last '@', redis-sentinel:// at the authority's last
 * '@') and every sentinel-password= value. */
static void config_print_url(FILE *out, const char *url)
{
    const char *scheme = strstr(url, "://");
    if (!scheme) {
        fputs(url, out);
        return;
    }
    const char *p = scheme + 3;
    const char *at = NULL;
    if (strncmp(url, "redis-sentinel://", 17) == 0) {
        for (size_t i = strcspn(p, "/?"); i > 0 && !at; i--)
            if (p[i - 1] == '@')
                at = p + i - 1;
    } else {
        at = strrchr(p, '@');
    }
    const char *colon = at ? memchr(p, ':', (size_t)(at - p)) : NULL;
    const char *rest = url;
    if (colon) {
        fprintf(out, "%.*s:********", (int)(colon - url), url);
        rest = at;
    }
    static const char sp_key[] = "sentinel-password=";
    for (const char *sp; (sp = strstr(rest, sp_key));) {
        sp += sizeof(sp_key) - 1;
        fprintf(out, "%.*s********", (int)(sp - rest), rest);
        rest = sp + strcspn(sp, "&");
    }
    fputs(rest, out);
}

/* --check-config: the configuration every source gave, as an INI file that
 * would give it again, each value with where it came from. Stream keys and
 * secrets are masked. */
static void config_print_effective(const config_loader_t *ld, const config_t *cfg, FILE *out)
{
    fprintf(out, "# sluice %s: effective configuration (secrets masked)\n[sluice]\n",
            SLUICE_VERSION);
    for (size_t i = 0; i < CONFIG_NOPTIONS; i++) {
        const config_option_t *o = &config_options[i];
        const config_slot_t *sl = &ld->slots[i];
        const char *src = sl->source ? sl->source : "default";
        if ((o->flags & CONFIG_DEBUG) && sl->rank == RANK_DEFAULT)
            continue; /* a test aid is shown only when something set it */
        if (o->type == CONFIG_STREAMS) {
            for (size_t k = 0; k < cfg->nstreams; k++)
                fprintf(out, "%s = %s:********  ; %s\n", o->name, cfg->streams[k].id, src);
            if (cfg->nstreams == 0)
                fprintf(out, "; %s: none\n", o->name);
            continue;
        }
        if (!sl->value) {
            fprintf(out, "; %s: not set\n", o->name);
            continue;
        }
        fprintf(out, "%s = ", o->name);
        if (config_is_secret(o))
            fputs("********", out);
        else if (strcmp(o->name, "store") == 0)
            config_print_url(out, sl->value);
        else
            fputs(sl->value, out);
        fprintf(out, "  ; %s\n", src);
    }
    for (size_t i = 0; i < cfg->nrungs; i++) {
        const config_rung_t *r = &cfg->rungs[i];
        fprintf(out, "\n[rung.%s]\n", r->name);
        if (r->width)
            fprintf(out, "width = %ld\n", r->width);
        if (r->height)
            fprintf(out, "height = %ld\n", r->height);
        if (r->bitrate_kbps)
            fprintf(out, "bitrate = %ld\n", r->bitrate_kbps);
        if (r->maxrate_kbps)
            fprintf(out, "maxrate = %ld\n", r->maxrate_kbps);
        if (r->profile[0])
            fprintf(out, "profile = %s\n", r->profile);
        if (r->preset[0])
            fprintf(out, "preset = %s\n", r->preset);
    }
}

/* Files the configuration names must be readable now, not when a publisher
 * first connects. */

/* A directory this process can write in, or one it can make (its parent is
 * writable); else a configuration error naming the option. */
static void config_check_writable_dir(config_loader_t *ld, const char *opt, const char *d)
{
    if (access(d, W_OK | X_OK) == 0)
        return;
    int err = errno;
    char parent[4096];
    snprintf(parent, sizeof(parent), "%s", d);
    char *slash = strrchr(parent, '/');
    if (slash == parent)
        parent[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(parent, sizeof(parent), ".");
    if (err != ENOENT || access(parent, W_OK | X_OK) != 0)
        config_error(ld, "%s: '%s' is not writable: %s", opt, d,
                     strerror(err == ENOENT ? errno : err));
}

static void config_check_files(config_loader_t *ld, const config_t *cfg)
{
    const char *files[][2] = {{"--tls-cert", cfg->tls_cert}, {"--tls-key", cfg->tls_key}};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]) && !ld->failed; i++) {
        FILE *f = files[i][1] ? fopen(files[i][1], "r") : NULL;
        if (files[i][1] && !f)
            config_error(ld, "%s: cannot read '%s': %s", files[i][0], files[i][1],
                         strerror(errno));
        if (f)
            fclose(f);
    }
    if (!ld->failed && cfg->rtmps_listen && (!cfg->tls_cert || !cfg->tls_key))
        config_error(ld, "--rtmps-listen needs --tls-cert and --tls-key");
    /* Recording: the directory is writable, or can be made (its parent is). */
    if (!ld->failed && cfg->record && (cfg->roles & CONFIG_ROLE_INGEST)) {
        config_check_writable_dir(ld, "--recordings-dir", cfg->recordings_dir);
    }
}

/* --state-dir with the memory store: a directory this process can write,
 * or one it can make (its parent is writable). Checked without opening the
 * registry: a running sluice holds it (ExecReload runs --check-config). */
static void config_check_state_dir(config_loader_t *ld, const config_t *cfg)
{
    const char *d = cfg->state_dir;
    if (strncmp(cfg->store_url, "memory", 6) != 0 || strcmp(d, "none") == 0)
        return;
    struct stat sb;
    if (stat(d, &sb) == 0 && !S_ISDIR(sb.st_mode)) {
        config_error(ld, "--state-dir: '%s' is not a directory", d);
        return;
    }
    config_check_writable_dir(ld, "--state-dir", d);
}

/* --check-config: what a start would refuse after config_load, without
 * opening a listener or the store: listen addresses that do not resolve,
 * stream ids a store would refuse, a store URL of no known kind, a state
 * directory that cannot be used. */
static void config_check_start(config_loader_t *ld, const config_t *cfg)
{
    const char *addrs[][2] = {
        {"--rtmp-listen", (cfg->roles & CONFIG_ROLE_INGEST) ? cfg->rtmp_listen : NULL},
        {"--rtmps-listen", (cfg->roles & CONFIG_ROLE_INGEST) ? cfg->rtmps_listen : NULL},
        {"--srt-listen", (cfg->roles & CONFIG_ROLE_INGEST) && cfg->srt_listen &&
                                 strcmp(cfg->srt_listen, "off") != 0 ? cfg->srt_listen : NULL},
        {"--http-listen", (cfg->roles & CONFIG_ROLE_ORIGIN) ? cfg->http_listen : NULL},
        {"--admin-listen", cfg->admin_listen},
    };
    for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]) && !ld->failed; i++) {
        if (!addrs[i][1])
            continue;
        struct sockaddr_storage ss;
        socklen_t len;
        char why[300];
        if (netaddr_parse(addrs[i][1], &ss, &len, why, sizeof(why)) != 0)
            config_error(ld, "%s: %s", addrs[i][0], why);
    }
    for (size_t i = 0; i < cfg->nstreams && !ld->failed; i++)
        if (!store_id_valid(cfg->streams[i].id))
            config_error(ld, "--stream: id '%s' must be 1-63 characters of A-Z a-z 0-9 _ -",
                         cfg->streams[i].id);
    if (!ld->failed)
        config_check_state_dir(ld, cfg);
}

static config_extra_check_fn config_extra_check;

void config_set_extra_check(config_extra_check_fn fn)
{
    config_extra_check = fn;
}

static int config_parse_number(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v))
        return -EINVAL;
    *out = v;
    return 0;
}

/* "1073741824", "512M", "2G", "64k", "1.5G", optionally with "B" or "iB"
 * after the unit: 0 and the byte count, or -EINVAL. */
static int config_parse_size(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || v < 0 || !isdigit((unsigned char)s[0]))
        return -EINVAL;
    double mul = 1;
    if (*end) {
        switch (toupper((unsigned char)*end)) {
        case 'K': mul = 1024.0; break;
        case 'M': mul = 1024.0 * 1024; break;
        case 'G': mul = 1024.0 * 1024 * 1024; break;
        case 'T': mul = 1024.0 * 1024 * 1024 * 1024; break;
        case 'B': mul = 1; end--; break; /* "100B" */
        default: return -EINVAL;
        }
        end++;
        if (*end == 'i' && mul > 1)
            end++;
        if (*end == 'B' || *end == 'b')
            end++;
        if (*end)
            return -EINVAL;
    }
    *out = floor(v * mul);
    return 0;
}

static void config_convert(config_loader_t *ld, config_t *cfg, const config_option_t *opt)
{
    config_slot_t *s = &ld->slots[opt - config_options];
    const char *v = s->value;
    const char *src = s->source ? s->source : "default";
    void *field = (char *)cfg + opt->offset;
    if (!v && opt->type != CONFIG_STREAMS)
        return;

    if (opt->choices) {
        int ok = 0;
        size_t vl = strlen(v);
        for (const char *c = opt->choices; *c;) {
            const char *bar = strchr(c, '|');
            size_t cl = bar ? (size_t)(bar - c) : strlen(c);
            if (cl == vl && strncmp(c, v, cl) == 0)
                ok = 1;
            c += cl + (bar ? 1 : 0);
        }
        if (!ok) {
            config_error(ld, "%s: '%s' is not one of %s", src, v, opt->choices);
            return;
        }
    }

    switch (opt->type) {
    case CONFIG_STRING:
        if (!*v) {
            config_error(ld, "%s: empty value", src);
            return;
        }
        *(char **)field = strdup(v);
        break;
    case CONFIG_DOUBLE:
    case CONFIG_LONG: {
        double d;
        if (config_parse_number(v, &d) != 0) {
            config_error(ld, "%s: '%s' is not a number", src, v);
            return;
        }
        if (opt->type == CONFIG_LONG && d != floor(d)) {
            config_error(ld, "%s: '%s' is not a whole number", src, v);
            return;
        }
        if (d < opt->min || d > opt->max) {
            config_error(ld, "%s: %s is out of range (%g to %g)", src, v, opt->min, opt->max);
            return;
        }
        if (opt->type == CONFIG_DOUBLE)
            *(double *)field = d;
        else
            *(long *)field = (long)d;
        break;
    }
    case CONFIG_SIZE: {
        double d;
        if (config_parse_size(v, &d) != 0) {
            config_error(ld, "%s: '%s' is not a size (bytes, or a number with K, M, G or T)",
                         src, v);
            return;
        }
        if (d < opt->min || d > opt->max) {
            config_error(ld, "%s: %s is out of range (%g to %g bytes)", src, v, opt->min,
                         opt->max);
            return;
        }
        *(uint64_t *)field = (uint64_t)d;
        break;
    }
    case CONFIG_BOOL: {
        static const char *const yes[] = {"true", "on", "yes", "1"};
        static const char *const no[] = {"false", "off", "no", "0"};
        int b = -1;
        for (size_t i = 0; i < 4; i++) {
            if (strcasecmp(v, yes[i]) == 0)
                b = 1;
            if (strcasecmp(v, no[i]) == 0)
                b = 0;
        }
        if (b < 0) {
            config_error(ld, "%s: '%s' is not true or false", src, v);
            return;
        }
        *(bool *)field = b == 1;
        break;
    }
    case CONFIG_ROLES: {
        unsigned roles = 0;
        char *copy = strdup(v);
        char *save = NULL;
        for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t;
             t = strtok_r(NULL, ",", &save)) {
            if (strcmp(t, "ingest") == 0)
                roles |= CONFIG_ROLE_INGEST;
            else if (strcmp(t, "origin") == 0)
                roles |= CONFIG_ROLE_ORIGIN;
            else
                config_error(ld, "%s: unknown role '%s' (ingest, origin)", src, t);
        }
        free(copy);
        if (!roles)
            config_error(ld, "%s: no role given (ingest, origin)", src);
        *(unsigned *)field = roles;
        break;
    }
    case CONFIG_STREAMS: {
        if (!v)
            return;
        /* Entries are separated by newlines (repeats) or commas (env). */
        char *copy = strdup(v);
        char *save = NULL;
        for (char *t = copy ? strtok_r(copy, "\n,", &save) : NULL; t;
             t = strtok_r(NULL, "\n,", &save)) {
            char *colon = strchr(t, ':');
            if (!colon || colon == t || !colon[1]) {
                /* Do not echo the value: it holds a stream key. */
                config_error(ld, "%s: a stream is ID:KEY with both parts non-empty", src);
                break;
            }
            config_stream_t *ns = realloc(cfg->streams, (cfg->nstreams + 1) * sizeof(*ns));
            if (!ns) {
                config_error(ld, "out of memory");
                break;
            }
            cfg->streams = ns;
            *colon = '\0';
            ns[cfg->nstreams].id = strdup(t);
            ns[cfg->nstreams].key = strdup(colon + 1);
            cfg->nstreams++;
        }
        free(copy);
        break;
    }
    }
}

int config_load(config_t *cfg, int argc, char **argv, char **envp, FILE *out, char *err,
                size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    config_loader_t ld = {.err = err, .errlen = errlen};
    const char *config_file = NULL;
    err[0] = '\0';

    for (size_t i = 0; i < CONFIG_NOPTIONS; i++)
        if (config_options[i].def)
            config_set(&ld, &config_options[i], config_options[i].def, RANK_DEFAULT, "default");

    /* Flags first into a scratch pass: --help/--version/--config are needed
     * before the other sources are read. */
    bool check = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--check-config") == 0) {
            check = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            config_print_help(out);
            cfg->exit_now = true;
            goto done;
        }
        if (strcmp(a, "--print-config") == 0) {
            config_print_template(out);
            cfg->exit_now = true;
            goto done;
        }
        if (strcmp(a, "--version") == 0) {
            fprintf(out, "sluice %s\n", SLUICE_VERSION);
            cfg->exit_now = true;
            goto done;
        }
        if (strncmp(a, "--config", 8) == 0 && (a[8] == '\0' || a[8] == '=')) {
            if (a[8] == '=')
                config_file = a + 9;
            else if (i + 1 < argc)
                config_file = argv[++i];
            else
                config_error(&ld, "--config needs a FILE");
        }
    }
    if (!config_file && envp) {
        for (char **e = envp; *e; e++)
            if (strncmp(*e, "SLUICE_CONFIG=", 14) == 0)
                config_file = *e + 14;
    }
    if (config_file && !ld.failed) {
        config_ini_ctx_t ctx = {&ld, config_file, cfg, fopen(config_file, "r"), 0, true};
        int rc = ctx.f ? ini_parse_stream(config_ini_reader, &ctx, config_ini_cb, &ctx) : -1;
        if (ctx.f)
            fclose(ctx.f);
        if (rc < 0)
            config_error(&ld, "cannot read config file '%s': %s", config_file,
                         rc == -1 ? strerror(errno) : "out of memory");
        else if (rc > 0)
            config_error(&ld, "%s:%d: not a valid INI line", config_file, rc);
    }

    for (char **e = envp; e && *e && !ld.failed; e++) {
        if (strncmp(*e, "SLUICE_", 7) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        const char *name = *e + 7;
        if ((size_t)(eq - name) == 6 && strncmp(name, "CONFIG", 6) == 0)
            continue;
        const config_option_t *opt = config_find(name, (size_t)(eq - name));
        if (!opt)
            continue; /* the environment is shared; unknown names are not ours */
        char src[300];
        snprintf(src, sizeof(src), "%.*s", (int)(eq - *e), *e);
        config_set(&ld, opt, eq + 1, RANK_ENV, src);
    }

    for (int i = 1; i < argc && !ld.failed; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--check-config") == 0)
            continue;
        if (strncmp(a, "--config", 8) == 0 && (a[8] == '\0' || a[8] == '=')) {
            if (a[8] == '\0')
                i++;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            config_error(&ld, "unexpected argument '%s' (see --help)", a);
            break;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        const config_option_t *opt = config_find(name, nl);
        if (!opt) {
            config_error(&ld, "unknown option '--%.*s' (see --help)", (int)nl, name);
            break;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value && opt->type == CONFIG_BOOL)
            value = "true"; /* "--record" alone */
        if (!value) {
            if (i + 1 >= argc) {
                config_error(&ld, "--%s needs a value", opt->name);
                break;
            }
            value = argv[++i];
        }
        char src[300];
        snprintf(src, sizeof(src), "--%s", opt->name);
        config_set(&ld, opt, value, RANK_FLAG, src);
    }

    for (size_t i = 0; i < CONFIG_NOPTIONS && !ld.failed; i++)
        config_convert(&ld, cfg, &config_options[i]);

    for (size_t i = 0; i < cfg->nstreams && !ld.failed; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->streams[i].id, cfg->streams[j].id) == 0)
                config_error(&ld, "stream id '%s' is defined twice", cfg->streams[i].id);
    if (!ld.failed && cfg->part_duration > 0 &&
        (cfg->part_duration < 0.1 || cfg->part_duration > cfg->segment_duration / 2))
        config_error(&ld, "--part-duration: %g is out of range (0 for off, or 0.1 up to half "
                     "of --segment-duration, %g)", cfg->part_duration,
                     cfg->segment_duration / 2);
    if (!ld.failed && cfg->playback_secret && strlen(cfg->playback_secret) < 16)
        config_error(&ld, "--playback-secret: use at least 16 characters");
    if (!ld.failed && cfg->srt_passphrase &&
        (strlen(cfg->srt_passphrase) < 10 || strlen(cfg->srt_passphrase) > 79))
        config_error(&ld, "--srt-passphrase: use 10 to 79 characters (libsrt's limits)");
    if (!ld.failed && cfg->admin_token && strlen(cfg->admin_token) < 16)
        config_error(&ld, "--admin-token: use at least 16 characters");
    if (!ld.failed) {
        char tail;
        if (sscanf(cfg->max_input_resolution, "%dx%d%c", &cfg->max_input_width,
                   &cfg->max_input_height, &tail) != 2 ||
            cfg->max_input_width < 16 || cfg->max_input_height < 16 ||
            cfg->max_input_width > 16384 || cfg->max_input_height > 16384)
            config_error(&ld, "--max-input-resolution: '%s' is not WIDTHxHEIGHT (16 to 16384 each)",
                         cfg->max_input_resolution);
    }
    if (!ld.failed && cfg->webhook_secret && strlen(cfg->webhook_secret) < 16)
        config_error(&ld, "--webhook-secret: use at least 16 characters");
    if (!ld.failed && cfg->webhook_url && strncmp(cfg->webhook_url, "http://", 7) != 0 &&
        strncmp(cfg->webhook_url, "https://", 8) != 0)
        config_error(&ld, "--webhook-url: '%s' is not an http:// or https:// URL",
                     cfg->webhook_url);
    /* Values whose form only another module knows: checked on every load,
     * so a start refuses them as a configuration error (exit 2), as
     * --check-config does, instead of failing later as a start-up error. */
    if (!ld.failed && store_url_check(cfg->store_url) != 0)
        config_error(&ld, "--store: not a store URL (memory, or "
                          "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?cache-mb=N], or "
                          "redis-sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTER"
                          "[?db=N&cache-mb=N&sentinel-user=U&sentinel-password=P&wait-ms=N])");
    if (!ld.failed && config_extra_check) {
        char why[300] = "";
        if (config_extra_check(cfg, why, sizeof(why)) != 0)
            config_error(&ld, "%s", why);
    }
    if (!ld.failed && check) {
        config_check_files(&ld, cfg);
        config_check_start(&ld, cfg);
        if (!ld.failed) {
            config_print_effective(&ld, cfg, out);
            fputs("configuration OK\n", out);
            cfg->exit_now = true;
        }
    }

done:
    for (size_t i = 0; i < CONFIG_NOPTIONS; i++)
        free(ld.slots[i].value);
    if (ld.failed) {
        config_free(cfg);
        return -EINVAL;
    }
    return 0;
}

void config_free(config_t *cfg)
{
    for (size_t i = 0; i < CONFIG_NOPTIONS; i++) {
        if (config_options[i].type == CONFIG_STRING) {
            char **p = (char **)((char *)cfg + config_options[i].offset);
            free(*p);
            *p = NULL;
        }
    }
    for (size_t i = 0; i < cfg->nstreams; i++) {
        free(cfg->streams[i].id);
        free(cfg->streams[i].key);
    }
    free(cfg->streams);
    cfg->streams = NULL;
    cfg->nstreams = 0;
    free(cfg->rungs);
    cfg->rungs = NULL;
    cfg->nrungs = 0;
}

void config_diff(const config_t *a, const config_t *b, config_diff_cb cb, void *opaque)
{
    for (size_t i = 0; i < CONFIG_NOPTIONS; i++) {
        const config_option_t *o = &config_options[i];
        const void *fa = (const char *)a + o->offset, *fb = (const char *)b + o->offset;
        bool same = true;
        switch (o->type) {
        case CONFIG_STRING: {
            const char *sa = *(char *const *)fa, *sb = *(char *const *)fb;
            same = (!sa && !sb) || (sa && sb && strcmp(sa, sb) == 0);
            break;
        }
        case CONFIG_DOUBLE:
            same = *(const double *)fa == *(const double *)fb;
            break;
        case CONFIG_LONG:
            same = *(const long *)fa == *(const long *)fb;
            break;
        case CONFIG_ROLES:
            same = *(const unsigned *)fa == *(const unsigned *)fb;
            break;
        case CONFIG_SIZE:
            same = *(const uint64_t *)fa == *(const uint64_t *)fb;
            break;
        case CONFIG_BOOL:
            same = *(const bool *)fa == *(const bool *)fb;
            break;
        case CONFIG_STREAMS:
            same = a->nstreams == b->nstreams;
            for (size_t k = 0; same && k < a->nstreams; k++)
                same = strcmp(a->streams[k].id, b->streams[k].id) == 0 &&
                       strcmp(a->streams[k].key, b->streams[k].key) == 0;
            break;
        }
        if (!same)
            cb(opaque, o->name, o->flags);
    }
    if (a->nrungs != b->nrungs ||
        (a->nrungs && memcmp(a->rungs, b->rungs, a->nrungs * sizeof(*a->rungs)) != 0))
        cb(opaque, "rung", CONFIG_RESTART);
}

/* The bytes a row's field takes in config_t (CONFIG_STREAMS: the pointer;
 * its count is swapped with it). */
static size_t config_field_size(config_type_t type)
{
    switch (type) {
    case CONFIG_STRING: return sizeof(char *);
    case CONFIG_DOUBLE: return sizeof(double);
    case CONFIG_LONG: return sizeof(long);
    case CONFIG_ROLES: return sizeof(unsigned);
    case CONFIG_STREAMS: return sizeof(config_stream_t *);
    case CONFIG_SIZE: return sizeof(uint64_t);
    case CONFIG_BOOL: return sizeof(bool);
    }
    return 0;
}

void config_adopt(config_t *cur, config_t *next)
{
    for (size_t i = 0; i < CONFIG_NOPTIONS; i++) {
        const config_option_t *o = &config_options[i];
        if (!(o->flags & CONFIG_RELOAD))
            continue;
        union { char *s; double d; long l; unsigned u; uint64_t z; bool b; void *p; } tmp;
        size_t n = config_field_size(o->type);
        char *fc = (char *)cur + o->offset, *fn = (char *)next + o->offset;
        memcpy(&tmp, fc, n);
        memcpy(fc, fn, n);
        memcpy(fn, &tmp, n);
        if (o->type == CONFIG_STREAMS) {
            size_t k = cur->nstreams;
            cur->nstreams = next->nstreams;
            next->nstreams = k;
        }
    }
}

const char *config_option(size_t i, unsigned *flags)
{
    if (i >= CONFIG_NOPTIONS)
        return NULL;
    if (flags)
        *flags = config_options[i].flags;
    return config_options[i].name;
}
