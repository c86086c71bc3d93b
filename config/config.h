/*
 * Process configuration: every option is a command-line flag, an environment
 * variable SLUICE_<NAME> and a key in the INI file named by --config.
 * Precedence: flag > environment > file > default. One table drives all
 * three sources and --help, so they can never drift apart.
 *
 * Single-threaded: parsed once in main() before any thread starts; read-only
 * afterwards.
 */
#ifndef SLUICE_COMMON_CONFIG_H
#define SLUICE_COMMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct config_stream {
    char *id;
    char *key;
} config_stream_t;

/* A [rung.NAME] section of the INI file: per-rung ladder settings
 * (0 / "" where not given). Only the file sets these. */
typedef struct config_rung {
    char name[16];
    long width, height;
    long bitrate_kbps, maxrate_kbps;
    char profile[16];
    char preset[16];
} config_rung_t;

/* What a SIGHUP does with an option (the flags column of the option table).
 * Every option is either CONFIG_RELOAD or CONFIG_RESTART. */
#define CONFIG_RELOAD 0x1  /* applied to the running process by a reload */
#define CONFIG_RESTART 0x2 /* a changed value is named as needing a restart */
#define CONFIG_DEBUG 0x4   /* a test aid: accepted, but left out of --help and --print-config */

/* SRT ingest's default address (docs/ingest.md, "SRT"): taken, it is a warning. */
#define CONFIG_SRT_LISTEN_DEFAULT "0.0.0.0:9000"

#define CONFIG_ROLE_INGEST 0x1
#define CONFIG_ROLE_ORIGIN 0x2

typedef struct config {
    char *rtmp_listen;
    char *rtmps_listen; /* NULL: no RTMPS */
    char *tls_cert;
    char *tls_key;
    char *srt_listen;     /* HOST:PORT (UDP; default CONFIG_SRT_LISTEN_DEFAULT) or "off" */
    char *srt_passphrase; /* NULL: SRT without encryption */
    long srt_latency_ms;
    char *http_listen;
    char *store_url;
    unsigned roles;
    config_stream_t *streams;
    size_t nstreams;
    double segment_duration;
    long playlist_segments;
    double part_duration;       /* LL-HLS part target, s; 0: LL-HLS off */
    char *playback_secret;      /* NULL: playback is open */
    char *cors_origin;          /* Access-Control-Allow-Origin */
    char *playlist_cache;       /* "auto" | "no-cache" */
    char *duplicate_publisher; /* "takeover" | "reject" */
    char *log_level;
    char *log_format;
    /* limits */
    long max_message_size;
    long max_chunk_size;
    long max_chunk_streams;
    long queue_bytes;
    long handshake_timeout_ms;
    long idle_timeout_ms;
    long stall_timeout_ms;
    double reconnect_window; /* seconds; 0: a dropped publisher ends the stream */
    double dvr_window;         /* seconds kept for seeking back; 0: off */
    long max_connections;
    long max_connections_per_ip;
    long max_publishers;
    long max_key_failures;
    long key_lockout_s;
    long max_amf_depth;
    long max_amf_string;
    long http_threads;
    long http_max_connections;
    /* limits of issue 9 (bounded memory, HTTP side) */
    long http_timeout_s;
    long http_max_connections_per_ip; /* 0: no limit */
    long http_max_held;
    char *max_input_resolution;         /* "WxH" */
    /* Parsed from it. Not rows of the table: config_adopt() would not carry
     * them, which is right while max-input-resolution needs a restart. */
    int max_input_width, max_input_height;
    long max_input_fps;
    long http_max_held_per_ip;
    uint64_t store_memory_limit;      /* bytes; 0: no limit */
    char *state_dir;                  /* --state-dir: the memory store's registry; "none": off */
    long ended_ttl_s;
    /* recordings (issue 11) */
    bool record;          /* --record: every broadcast is recorded unless its stream says no */
    char *recordings_dir; /* --recordings-dir */
    /* transcode ladder */
    char *ladder;
    char *passthrough; /* "auto" | "never" */
    char *preset;
    char *overload_protection; /* "on" | "off" */
    char *rungs_mode;          /* --rungs: "always" | "on-demand" (docs/operations.md) */
    double rung_idle;          /* --rung-idle, seconds */
    double debug_rung_idle;    /* test aid: a --rung-idle under its minimum; 0: off */
    long debug_slow_encode_ms;
    long debug_fail_encode; /* test aid: the Nth encoded frame fails, once; 0: off */
    /* control plane */
    char *admin_listen;
    char *admin_token;      /* NULL: loopback clients only */
    char *admin_allowed_hosts; /* NULL: IP literals, localhost and the listen name only */
    char *public_http_url;  /* NULL: http://HOSTNAME:HTTP-PORT */
    char *public_rtmp_url;  /* NULL: rtmp://HOSTNAME:RTMP-PORT/live */
    char *key_rotation;     /* "finish" | "cut" */
    char *trusted_proxies;  /* NULL: none */
    /* audience beacons (issue 22; docs/urls.md) */
    char *beacons;             /* "on" | "off" */
    long audience_timeout_s;   /* --audience-timeout */
    long audience_per_address; /* --audience-per-address */
    char *webhook_url;      /* NULL: no webhooks */
    char *webhook_secret;   /* NULL: requests are not signed */
    double webhook_timeout; /* seconds */
    /* recordings, continued (docs/recording.md) */
    bool record_mp4;
    long recordings_max_age_s;     /* 0: forever */
    uint64_t recordings_max_bytes; /* 0: no limit */
    long clips_max_age_s;          /* 0: forever (docs/clips.md) */
    config_rung_t *rungs;
    size_t nrungs;
    /* set when --help / --version was handled (main exits 0) */
    bool exit_now;
} config_t;

/*
 * Fills *cfg from defaults, then the --config file (if any), then the
 * environment, then argv. Returns 0; or -EINVAL with a one-line reason in err
 * (an unknown flag, a bad value, an unreadable file). --help and --version
 * print to `out` and set cfg->exit_now.
 */
/* A check of values only another module can judge (main registers one
 * before the first config_load): 0, or non-zero with the option and the
 * reason in why. Run on every load, after the built-in checks. */
typedef int (*config_extra_check_fn)(const config_t *cfg, char *why, size_t whylen);
void config_set_extra_check(config_extra_check_fn fn);

int config_load(config_t *cfg, int argc, char **argv, char **envp, FILE *out, char *err,
                size_t errlen) __attribute__((warn_unused_result));

/* Calls cb with the name and the flags (CONFIG_RELOAD, CONFIG_RESTART, ...)
 * of every option whose value differs between a and b, in the order of
 * --help ("stream" for the stream list; "rung", CONFIG_RESTART, for the
 * [rung.NAME] sections): what a reload (SIGHUP) has to act on. */
typedef void (*config_diff_cb)(void *opaque, const char *name, unsigned flags);
void config_diff(const config_t *a, const config_t *b, config_diff_cb cb, void *opaque);

/* A reload: cur, the running configuration, takes the value of every
 * CONFIG_RELOAD option from next, and next gets cur's old ones in exchange
 * (config_free(next) frees them). Every other option keeps its running
 * value, so a later config_diff against a new load names it again. */
void config_adopt(config_t *cur, config_t *next);

/* The option table in --help order, for tests and tools: the name (without
 * "--") of option i, with its flags in *flags; NULL past the last one. */
const char *config_option(size_t i, unsigned *flags);

/* Frees everything config_load allocated. */
void config_free(config_t *cfg);

#endif
