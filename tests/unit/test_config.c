/* Unit tests for config/config.c: defaults, precedence, INI, errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static char err[512];

static void diff_cb(void *opaque, const char *name, unsigned flags);

static int load(config_t *cfg, char **argv, char **envp)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    FILE *out = fopen("/dev/null", "w");
    int rc = config_load(cfg, argc, argv, envp, out, err, sizeof(err));
    fclose(out);
    return rc;
}

static void test_defaults(void **state)
{
    (void)state;
    config_t cfg;
    char *argv[] = {"sluice", NULL};
    char *envp[] = {NULL};
    assert_int_equal(load(&cfg, argv, envp), 0);
    assert_string_equal(cfg.rtmp_listen, "0.0.0.0:1935");
    assert_string_equal(cfg.http_listen, "0.0.0.0:8080");
    assert_int_equal(cfg.max_input_width, 3840);
    assert_int_equal(cfg.max_input_height, 2160);
    assert_int_equal(cfg.max_input_fps, 120);
    assert_string_equal(cfg.store_url, "memory");
    assert_int_equal(cfg.roles, CONFIG_ROLE_INGEST | CONFIG_ROLE_ORIGIN);
    assert_true(cfg.segment_duration == 2.0);
    assert_int_equal(cfg.playlist_segments, 6);
    assert_string_equal(cfg.duplicate_publisher, "takeover");
    assert_int_equal(cfg.nstreams, 0);
    assert_false(cfg.exit_now);
    config_free(&cfg);
}

static void test_precedence(void **state)
{
    (void)state;
    char path[] = "/tmp/sluice-test-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "; comment\n[sluice]\nhttp-listen = 127.0.0.1:1111\nrtmp_listen = 127.0.0.1:2222\n"
               "segment-duration = 4\nstream = a:ka\nstream = b:kb\n[other]\nx = y\n");
    fclose(f);

    config_t cfg;
    char cfgflag[64];
    snprintf(cfgflag, sizeof(cfgflag), "--config=%s", path);
    char *argv[] = {"sluice", cfgflag, "--http-listen", "127.0.0.1:3333", NULL};
    char *envp[] = {"SLUICE_HTTP_LISTEN=127.0.0.1:4444", "SLUICE_RTMP_LISTEN=127.0.0.1:5555",
                    "SLUICE_UNRELATED=1", "PATH=/bin", NULL};
    assert_int_equal(load(&cfg, argv, envp), 0);
    assert_string_equal(cfg.http_listen, "127.0.0.1:3333"); /* flag beats env and file */
    assert_string_equal(cfg.rtmp_listen, "127.0.0.1:5555"); /* env beats file */
    assert_true(cfg.segment_duration == 4.0);                /* file beats default */
    assert_int_equal(cfg.nstreams, 2);
    assert_string_equal(cfg.streams[0].id, "a");
    assert_string_equal(cfg.streams[1].key, "kb");
    config_free(&cfg);

    /* A repeatable option from a higher source replaces the lower list. */
    char *argv2[] = {"sluice", cfgflag, "--stream", "c:kc", "--stream=d:kd", NULL};
    char *envp2[] = {"SLUICE_STREAM=e:ke,f:kf", NULL};
    assert_int_equal(load(&cfg, argv2, envp2), 0);
    assert_int_equal(cfg.nstreams, 2);
    assert_string_equal(cfg.streams[0].id, "c");
    assert_string_equal(cfg.streams[1].id, "d");
    config_free(&cfg);

    char *argv3[] = {"sluice", cfgflag, NULL};
    assert_int_equal(load(&cfg, argv3, envp2), 0);
    assert_int_equal(cfg.nstreams, 2);
    assert_string_equal(cfg.streams[0].id, "e");
    assert_string_equal(cfg.streams[1].key, "kf");
    config_free(&cfg);
    unlink(path);
}

/* Boolean options (--record, --record-mp4): a bare flag is on and never
 * takes the next argument; values on/off, true/false, yes/no, 1/0 from
 * every source; the recording options' defaults. */
static void test_booleans(void **state)
{
    (void)state;
    config_t cfg;
    char *none[] = {NULL};
    assert_int_equal(load(&cfg, (char *[]){"sluice", NULL}, none), 0);
    assert_false(cfg.record);
    assert_false(cfg.record_mp4);
    assert_string_equal(cfg.recordings_dir, "recordings");
    assert_string_equal(cfg.state_dir, "state");
    assert_int_equal(cfg.recordings_max_age_s, 0);
    assert_int_equal(cfg.recordings_max_bytes, 0);
    config_free(&cfg);

    assert_int_equal(load(&cfg, (char *[]){"sluice", "--record", "--recordings-dir", "/srv/rec",
                                           "--recordings-max-bytes", "2G", NULL},
                          none),
                     0);
    assert_true(cfg.record);
    assert_false(cfg.record_mp4);
    assert_string_equal(cfg.recordings_dir, "/srv/rec");
    assert_true(cfg.recordings_max_bytes == 2ULL << 30);
    config_free(&cfg);

    /* The flag beats the environment, in both directions. */
    assert_int_equal(load(&cfg, (char *[]){"sluice", "--record=off", "--record-mp4", NULL},
                          (char *[]){"SLUICE_RECORD=TRUE", "SLUICE_RECORD_MP4=0", NULL}),
                     0);
    assert_false(cfg.record);
    assert_true(cfg.record_mp4);
    config_free(&cfg);
    assert_int_equal(load(&cfg, (char *[]){"sluice", NULL},
                          (char *[]){"SLUICE_RECORD=yes", "SLUICE_RECORDINGS_MAX_AGE=86400",
                                     NULL}),
                     0);
    assert_true(cfg.record);
    assert_int_equal(cfg.recordings_max_age_s, 86400);
    config_free(&cfg);
}

static void expect_error(char **argv, char **envp, const char *needle)
{
    config_t cfg;
    assert_int_equal(load(&cfg, argv, envp), -EINVAL);
    if (!strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
    assert_null(cfg.rtmp_listen); /* nothing left allocated */
}

static void test_errors(void **state)
{
    (void)state;
    char *none[] = {NULL};
    expect_error((char *[]){"sluice", "--bogus", NULL}, none, "unknown option '--bogus'");
    expect_error((char *[]){"sluice", "--segment-duration", "fast", NULL}, none, "not a number");
    expect_error((char *[]){"sluice", "--segment-duration", "0.1", NULL}, none, "out of range");
    expect_error((char *[]){"sluice", "--playlist-segments", "2.5", NULL}, none, "whole number");
    expect_error((char *[]){"sluice", "--http-listen", NULL}, none, "needs a value");
    expect_error((char *[]){"sluice", "--role", "ingest,cdn", NULL}, none, "unknown role 'cdn'");
    expect_error((char *[]){"sluice", "--duplicate-publisher", "maybe", NULL}, none,
                 "takeover|reject");
    expect_error((char *[]){"sluice", "--log-level", "loud", NULL}, none, "error|warn");
    expect_error((char *[]){"sluice", "positional", NULL}, none, "unexpected argument");
    expect_error((char *[]){"sluice", "--config", "/nonexistent/x.ini", NULL}, none,
                 "cannot read config file");
    expect_error((char *[]){"sluice", "--stream", "a:1", "--stream", "a:2", NULL}, none,
                 "defined twice");
    expect_error((char *[]){"sluice", NULL}, (char *[]){"SLUICE_PLAYLIST_SEGMENTS=x", NULL},
                 "SLUICE_PLAYLIST_SEGMENTS");
    expect_error((char *[]){"sluice", "--admin-token", "short", NULL}, none,
                 "--admin-token: use at least 16");
    expect_error((char *[]){"sluice", "--webhook-url", "ftp://x", NULL}, none, "--webhook-url");
    expect_error((char *[]){"sluice", "--max-input-resolution", "4k", NULL}, none,
                 "--max-input-resolution: '4k' is not WIDTHxHEIGHT");
    expect_error((char *[]){"sluice", "--max-input-resolution", "8x8", NULL}, none,
                 "16 to 16384");
    expect_error((char *[]){"sluice", "--max-input-fps", "0", NULL}, none, "out of range");
    expect_error((char *[]){"sluice", "--record=maybe", NULL}, none, "not true or false");
    expect_error((char *[]){"sluice", "--rungs", "lazy", NULL}, none, "always|on-demand");
    expect_error((char *[]){"sluice", "--rung-idle", "3", NULL}, none, "out of range");
    expect_error((char *[]){"sluice", "--rung-idle", "7200", NULL}, none, "out of range");
    expect_error((char *[]){"sluice", NULL}, (char *[]){"SLUICE_RECORD_MP4=2", NULL},
                 "SLUICE_RECORD_MP4");
    /* --check-config: a recordings directory that cannot be written or made. */
    expect_error((char *[]){"sluice", "--check-config", "--record", "--recordings-dir",
                            "/nonexistent-sluice-dir/recordings", NULL},
                 none, "--recordings-dir: '/nonexistent-sluice-dir/recordings' is not writable");
    /* --check-config: a state directory that cannot be made, or a file. */
    expect_error((char *[]){"sluice", "--check-config", "--state-dir",
                            "/nonexistent-sluice-dir/state", NULL},
                 none, "--state-dir: '/nonexistent-sluice-dir/state' is not writable");
    expect_error((char *[]){"sluice", "--check-config", "--state-dir", "/etc/hostname", NULL},
                 none, "--state-dir: '/etc/hostname' is not a directory");
    /* A bare boolean flag does not swallow what follows. */
    expect_error((char *[]){"sluice", "--record", "recordings", NULL}, none,
                 "unexpected argument 'recordings'");
    /* The key part of a malformed stream is never echoed. */
    expect_error((char *[]){"sluice", "--stream", ":supersecret", NULL}, none, "ID:KEY");
    assert_null(strstr(err, "supersecret"));
}

static void test_help_and_version(void **state)
{
    (void)state;
    config_t cfg;
    char *none[] = {NULL};
    assert_int_equal(load(&cfg, (char *[]){"sluice", "--version", NULL}, none), 0);
    assert_true(cfg.exit_now);
    config_free(&cfg);

    char buf[8192] = {0};
    FILE *out = fmemopen(buf, sizeof(buf) - 1, "w");
    char *argv[] = {"sluice", "--help", NULL};
    assert_int_equal(config_load(&cfg, 2, argv, none, out, err, sizeof(err)), 0);
    fclose(out);
    assert_true(cfg.exit_now);
    assert_non_null(strstr(buf, "--rtmp-listen"));
    assert_non_null(strstr(buf, "SLUICE_<NAME>"));
    config_free(&cfg);
}

/* --check-config prints what every source gave, with secrets masked, and
 * refuses what would fail later (an unreadable certificate). */
static void test_check_config(void **state)
{
    (void)state;
    config_t cfg;
    char buf[16384] = {0};
    FILE *out = fmemopen(buf, sizeof(buf) - 1, "w");
    char *argv[] = {"sluice", "--check-config", "--stream", "shop:k3y-in-clear",
                    "--store", "redis://:hunter2@10.0.0.2:6379/1",
                    "--playback-secret", "0123456789abcdef-secret", "--ladder", "720p", NULL};
    char *envp[] = {"SLUICE_SEGMENT_DURATION=4", NULL};
    assert_int_equal(config_load(&cfg, 10, argv, envp, out, err, sizeof(err)), 0);
    fclose(out);
    assert_true(cfg.exit_now);
    assert_non_null(strstr(buf, "[sluice]\n"));
    assert_non_null(strstr(buf, "stream = shop:********  ; --stream\n"));
    assert_non_null(strstr(buf, "store = redis://:********@10.0.0.2:6379/1  ; --store\n"));
    assert_non_null(strstr(buf, "playback-secret = ********  ; --playback-secret\n"));
    assert_non_null(strstr(buf, "segment-duration = 4  ; SLUICE_SEGMENT_DURATION\n"));
    assert_non_null(strstr(buf, "ladder = 720p  ; --ladder\n"));
    assert_non_null(strstr(buf, "part-duration = 0.333  ; default\n"));
    assert_null(strstr(buf, "k3y-in-clear"));
    assert_null(strstr(buf, "hunter2"));
    assert_null(strstr(buf, "0123456789abcdef-secret"));
    /* The last line says it all, for scripts and operators (like nginx -t). */
    size_t blen = strlen(buf);
    assert_true(blen > 17);
    assert_string_equal(buf + blen - 17, "configuration OK\n");
    config_free(&cfg);

    /* Sentinel URLs: the data password (userinfo, split at the authority's
     * last '@') and every sentinel-password= value are masked; a literal
     * '@' in a query value does not move the split. redis:// splits at its
     * last '@', as its parser does. */
    static const struct {
        const char *url, *want;
    } masked[] = {
        {"redis-sentinel://sluice:dpw@10.0.0.5,10.0.0.6:26380/sluice?db=2&sentinel-user=w"
         "&sentinel-password=s%40pw&wait-ms=50",
         "store = redis-sentinel://sluice:********@10.0.0.5,10.0.0.6:26380/sluice?db=2"
         "&sentinel-user=w&sentinel-password=********&wait-ms=50  ; --store\n"},
        {"redis-sentinel://h:26379/m?sentinel-password=spw@x",
         "store = redis-sentinel://h:26379/m?sentinel-password=********  ; --store\n"},
        {"redis://:dpw@x@h:6379", "store = redis://:********@h:6379  ; --store\n"},
    };
    for (size_t i = 0; i < sizeof(masked) / sizeof(masked[0]); i++) {
        char mb[16384] = {0};
        FILE *mo = fmemopen(mb, sizeof(mb) - 1, "w");
        char *margv[] = {"sluice", "--check-config", "--store", (char *)masked[i].url, NULL};
        char *menv[] = {NULL};
        assert_int_equal(config_load(&cfg, 4, margv, menv, mo, err, sizeof(err)), 0);
        fclose(mo);
        if (!strstr(mb, masked[i].want))
            fail_msg("no '%s' in:\n%s", masked[i].want, mb);
        assert_null(strstr(mb, "dpw"));
        assert_null(strstr(mb, "spw"));
        config_free(&cfg);
    }

    /* What a start would refuse after parsing is refused here too, without
     * opening anything. */
    char *none0[] = {NULL};
    struct {
        char *argv[6];
        const char *want;
    } refused[] = {
        {{"sluice", "--check-config", "--stream", "bad/id:k3y", NULL}, "--stream: id 'bad/id'"},
        {{"sluice", "--check-config", "--http-listen", "127.0.0.1:99999", NULL},
         "--http-listen: '127.0.0.1:99999' has no valid port"},
        {{"sluice", "--check-config", "--admin-listen", "no-port", NULL}, "--admin-listen"},
        {{"sluice", "--check-config", "--store", "postgres://x", NULL}, "--store: not a store"},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        FILE *o = fopen("/dev/null", "w");
        int argc = 0;
        while (refused[i].argv[argc])
            argc++;
        assert_int_equal(config_load(&cfg, argc, refused[i].argv, none0, o, err, sizeof(err)),
                         -EINVAL);
        fclose(o);
        if (!strstr(err, refused[i].want))
            fail_msg("error '%s' does not mention '%s'", err, refused[i].want);
        assert_null(strstr(err, "k3y"));
    }
    /* A listener of a role not run is not checked (nor opened). */
    char *origin_only[] = {"sluice", "--check-config", "--role", "origin", "--store",
                           "redis://127.0.0.1:1", "--rtmp-listen", "nonsense", NULL};
    FILE *o2 = fopen("/dev/null", "w");
    assert_int_equal(config_load(&cfg, 8, origin_only, none0, o2, err, sizeof(err)), 0);
    fclose(o2);
    config_free(&cfg);

    char *bad[] = {"sluice", "--check-config", "--rtmps-listen", "127.0.0.1:1936", "--tls-cert",
                   "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem", NULL};
    char *none[] = {NULL};
    assert_int_equal(config_load(&cfg, 8, bad, none, stdout, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "--tls-cert: cannot read '/nonexistent/cert.pem'"));
}

/* What `sluice FLAG` (--help, --print-config) prints, into buf. */
static void printed(const char *flag, char *buf, size_t size)
{
    config_t cfg;
    char *none[] = {NULL};
    FILE *out = fmemopen(buf, size - 1, "w");
    assert_int_equal(config_load(&cfg, 2, (char *[]){"sluice", (char *)flag, NULL}, none, out,
                                 err, sizeof(err)), 0);
    fclose(out);
    assert_true(cfg.exit_now);
    config_free(&cfg);
}

/* --print-config: every option --help lists is in the template, commented
 * out with its default, and the template loads back as the defaults. */
static void test_print_config(void **state)
{
    (void)state;
    config_t cfg, def;
    char *none[] = {NULL};
    static char help[16384], tmpl[65536];
    printed("--help", help, sizeof(help));
    printed("--print-config", tmpl, sizeof(tmpl));
    assert_true(strlen(tmpl) < sizeof(tmpl) - 2); /* not truncated */
    assert_non_null(strstr(tmpl, "\n[sluice]\n"));
    assert_non_null(strstr(tmpl, "\n#rtmp-listen = 0.0.0.0:1935\n"));
    assert_non_null(strstr(tmpl, "\n# one of: takeover|reject\n#duplicate-publisher = takeover\n"));
    assert_non_null(strstr(tmpl, "\n# range: 0.5 to 30\n#segment-duration = 2\n"));
    assert_non_null(strstr(tmpl, "\n#stream = ID:KEY\n"));
    assert_non_null(strstr(tmpl, "\n#[rung.540p]\n"));
    int checked = 0;
    for (const char *p = strstr(help, "\n  --"); p; p = strstr(p + 1, "\n  --")) {
        char name[64];
        if (sscanf(p + 5, "%63[a-z0-9-]", name) != 1)
            continue;
        if (!strcmp(name, "config") || !strcmp(name, "check-config") ||
            !strcmp(name, "print-config") || !strcmp(name, "version") || !strcmp(name, "help"))
            continue;
        char want[80];
        snprintf(want, sizeof(want), "\n#%s =", name);
        if (!strstr(tmpl, want))
            fail_msg("--print-config has no '%s'", want + 1);
        checked++;
    }
    assert_true(checked > 50);

    /* Loaded as a file, it is the defaults. */
    char path[] = "/tmp/sluice-test-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, tmpl, strlen(tmpl)), (ssize_t)strlen(tmpl));
    close(fd);
    char flag[80];
    snprintf(flag, sizeof(flag), "--config=%s", path);
    assert_int_equal(config_load(&cfg, 2, (char *[]){"sluice", flag, NULL}, none, stdout, err,
                                 sizeof(err)), 0);
    assert_int_equal(config_load(&def, 1, (char *[]){"sluice", NULL}, none, stdout, err,
                                 sizeof(err)), 0);
    char diff[256] = "";
    config_diff(&cfg, &def, diff_cb, diff);
    assert_string_equal(diff, "");
    assert_int_equal(cfg.nrungs, 0);
    config_free(&cfg);
    config_free(&def);
    unlink(path);
}

/* --record is a switch: alone it is true, and it also takes a value
 * (flag, environment, file); --recordings-dir has its default. */
static void test_record_switch(void **state)
{
    (void)state;
    config_t cfg;
    char *none[] = {NULL};
    assert_int_equal(load(&cfg, (char *[]){"sluice", NULL}, none), 0);
    assert_false(cfg.record);
    assert_string_equal(cfg.recordings_dir, "recordings");
    config_free(&cfg);
    assert_int_equal(load(&cfg, (char *[]){"sluice", "--record", "--recordings-dir", "/srv/r",
                                           NULL}, none), 0);
    assert_true(cfg.record);
    assert_string_equal(cfg.recordings_dir, "/srv/r");
    config_free(&cfg);
    assert_int_equal(load(&cfg, (char *[]){"sluice", "--record=off", NULL},
                          (char *[]){"SLUICE_RECORD=true", NULL}), 0);
    assert_false(cfg.record); /* the flag beats the environment */
    config_free(&cfg);
    assert_int_equal(load(&cfg, (char *[]){"sluice", NULL}, (char *[]){"SLUICE_RECORD=Yes", NULL}),
                     0);
    assert_true(cfg.record);
    config_free(&cfg);
    assert_int_equal(load(&cfg, (char *[]){"sluice", "--record=maybe", NULL}, none), -EINVAL);
    assert_non_null(strstr(err, "maybe")); /* the value is named */
}

/* Every error in the file names file:line, whether the key is unknown or
 * its value is bad. */
static void test_file_lines(void **state)
{
    (void)state;
    char path[] = "/tmp/sluice-test-config-XXXXXX";
    const char *texts[] = {
        "[sluice]\n; comment\nhttp-listen = 127.0.0.1:1\nbogus-key = 1\n",
        "[sluice]\n\n\nsegment-duration = 0.01\n",
        "[sluice]\nlog-level = info\n[rung.720p]\nwidth = 1280\nheight = tall\n",
    };
    const char *want[] = {":4: unknown option 'bogus-key'", ":4 (segment-duration): 0.01 is out",
                          ":5: [rung.720p] height"};
    for (size_t i = 0; i < 3; i++) {
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        FILE *f = fdopen(fd, "w");
        fputs(texts[i], f);
        fclose(f);
        char flag[80];
        snprintf(flag, sizeof(flag), "--config=%s", path);
        config_t cfg;
        char *argv[] = {"sluice", flag, NULL};
        char *envp[] = {NULL};
        assert_int_equal(load(&cfg, argv, envp), -EINVAL);
        if (!strstr(err, want[i]) || !strstr(err, path))
            fail_msg("error '%s' does not name '%s' in %s", err, want[i], path);
        unlink(path);
        memcpy(path + strlen(path) - 6, "XXXXXX", 6);
    }
}

static void diff_cb(void *opaque, const char *name, unsigned flags)
{
    (void)flags;
    char *buf = opaque;
    strcat(buf, name);
    strcat(buf, " ");
}

/* config_diff names what changed, and only that (SIGHUP acts on it). */
static void test_diff(void **state)
{
    (void)state;
    config_t a, b;
    char *envp[] = {NULL};
    assert_int_equal(load(&a, (char *[]){"sluice", "--stream", "x:k1", "--log-level", "warn",
                                         NULL}, envp), 0);
    assert_int_equal(load(&b, (char *[]){"sluice", "--stream", "x:k2", "--log-level", "warn",
                                         "--admin-token", "t0123456789abcdef", NULL}, envp), 0);
    char buf[256] = "";
    config_diff(&a, &b, diff_cb, buf);
    assert_string_equal(buf, "stream admin-token ");
    buf[0] = '\0';
    config_diff(&a, &a, diff_cb, buf);
    assert_string_equal(buf, "");
    config_free(&a);
    config_free(&b);
}

/* config_diff also says each changed option's flags. */
static void flags_cb(void *opaque, const char *name, unsigned flags)
{
    char *buf = opaque;
    size_t n = strlen(buf);
    snprintf(buf + n, 256 - n, "%s:%s ", name, (flags & CONFIG_RELOAD) ? "reload" : "restart");
}

static void test_diff_flags(void **state)
{
    (void)state;
    config_t a, b;
    char *envp[] = {NULL};
    assert_int_equal(load(&a, (char *[]){"sluice", NULL}, envp), 0);
    assert_int_equal(load(&b, (char *[]){"sluice", "--segment-duration", "4", "--log-level",
                                         "warn", "--rtmp-stall-timeout", "5000", NULL}, envp), 0);
    char buf[256] = "";
    config_diff(&a, &b, flags_cb, buf);
    assert_string_equal(buf, "segment-duration:restart log-level:reload "
                             "rtmp-stall-timeout:reload ");
    config_free(&a);
    config_free(&b);
}

/* A value of option `name` that loads and differs from its default: the
 * first of a few candidates that does (each option's type, bounds and
 * choices pick one). 0, or -1 when none does: add one here. */
static int nondefault(const char *name, config_t *out)
{
    static const char *const candidates[] = {
        "7", "100000", "2000000", "0.5", "true", "2G", "x:key-of-x-0001", "origin", "640x480", "debug",
        "json", "no-cache", "reject", "never", "fast", "off", "cut",
        "http://127.0.0.1:9/hook", "redis://127.0.0.1:6379", "0123456789abcdef-candidate", "60",
        "on-demand",
    };
    char *envp[] = {NULL};
    config_t def;
    assert_int_equal(load(&def, (char *[]){"sluice", NULL}, envp), 0);
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        char flag[128];
        snprintf(flag, sizeof(flag), "--%s=%s", name, candidates[i]);
        if (load(out, (char *[]){"sluice", flag, NULL}, envp) != 0)
            continue;
        char buf[256] = "";
        config_diff(&def, out, diff_cb, buf);
        char want[80];
        snprintf(want, sizeof(want), "%s ", name);
        if (strcmp(buf, want) == 0) {
            config_free(&def);
            return 0;
        }
        config_free(out);
    }
    config_free(&def);
    return -1;
}

/* Table-driven over every option: config_adopt takes exactly the
 * CONFIG_RELOAD ones (a reload applies what it adopts, and a value it
 * did not adopt is named again by the next reload); every option is
 * either reloadable or restart-only. */
static void test_adopt(void **state)
{
    (void)state;
    char *envp[] = {NULL};
    unsigned flags;
    const char *name;
    size_t nreload = 0, nrestart = 0;
    for (size_t i = 0; (name = config_option(i, &flags)) != NULL; i++) {
        if (!(flags & CONFIG_RELOAD) == !(flags & CONFIG_RESTART))
            fail_msg("--%s is not exactly one of CONFIG_RELOAD and CONFIG_RESTART", name);
        config_t cur, next, want, def;
        if (nondefault(name, &next) != 0)
            fail_msg("no candidate value for --%s: add one to nondefault()", name);
        assert_int_equal(nondefault(name, &want), 0);
        assert_int_equal(load(&cur, (char *[]){"sluice", NULL}, envp), 0);
        assert_int_equal(load(&def, (char *[]){"sluice", NULL}, envp), 0);
        config_adopt(&cur, &next);
        char buf[256] = "", back[256] = "";
        if (flags & CONFIG_RELOAD) {
            config_diff(&cur, &want, diff_cb, buf); /* cur has the new value */
            config_diff(&next, &def, diff_cb, back); /* next has the old one, to free */
            nreload++;
        } else {
            config_diff(&cur, &def, diff_cb, buf); /* cur kept its value */
            config_diff(&next, &want, diff_cb, back);
            nrestart++;
        }
        if (buf[0] || back[0])
            fail_msg("--%s: config_adopt left a difference: '%s' '%s'", name, buf, back);
        config_free(&cur);
        config_free(&next);
        config_free(&want);
        config_free(&def);
    }
    assert_true(nreload >= 21); /* stream, admin-token, log-*, webhook-*, rtmp-* */
    assert_true(nrestart > 30);
}

/* A second reload of the same configuration finds nothing changed: what
 * the first applied stays adopted (it used to report
 * rtmp-stall-timeout again, forever). */
static void test_adopt_twice(void **state)
{
    (void)state;
    char *envp[] = {NULL};
    char *argv[] = {"sluice", "--rtmp-stall-timeout", "5000", "--rtmp-max-publishers", "3",
                    "--stream", "a:key-of-a-0001", "--segment-duration", "4", NULL};
    config_t cur, next;
    assert_int_equal(load(&cur, (char *[]){"sluice", NULL}, envp), 0);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(load(&next, argv, envp), 0);
        char buf[256] = "";
        config_diff(&cur, &next, flags_cb, buf);
        assert_string_equal(buf, round == 0 ? "stream:reload segment-duration:restart "
                                              "rtmp-stall-timeout:reload "
                                              "rtmp-max-publishers:reload "
                                            : "segment-duration:restart ");
        config_adopt(&cur, &next);
        config_free(&next);
    }
    assert_int_equal(cur.stall_timeout_ms, 5000);
    assert_true(cur.segment_duration == 2.0);
    config_free(&cur);
}

/* Test aids (CONFIG_DEBUG) are accepted everywhere but left out of --help
 * and --print-config (the installed configuration file). */
static void test_debug_options(void **state)
{
    (void)state;
    char *none[] = {NULL};
    static char help[16384], tmpl[65536];
    config_t cfg;
    printed("--help", help, sizeof(help));
    printed("--print-config", tmpl, sizeof(tmpl));
    unsigned flags;
    const char *name;
    int ndebug = 0;
    for (size_t i = 0; (name = config_option(i, &flags)) != NULL; i++) {
        char flag[80], key[80];
        snprintf(flag, sizeof(flag), "--%s ", name);
        snprintf(key, sizeof(key), "\n#%s =", name);
        bool shown = strstr(help, flag) && strstr(tmpl, key);
        if (!(flags & CONFIG_DEBUG)) {
            if (!shown)
                fail_msg("--%s is missing from --help or --print-config", name);
            continue;
        }
        ndebug++;
        if (strstr(help, flag) || strstr(tmpl, key) || strstr(tmpl, name))
            fail_msg("the test aid --%s is in --help or --print-config", name);
    }
    assert_int_equal(ndebug, 3);
    assert_null(strstr(help, "testing only"));
    assert_null(strstr(tmpl, "testing only"));
    /* still accepted, from every source */
    assert_int_equal(load(&cfg, (char *[]){"sluice", "--debug-slow-encode", "150",
                                           "--debug-fail-encode=120", NULL}, none), 0);
    assert_int_equal(cfg.debug_slow_encode_ms, 150);
    assert_int_equal(cfg.debug_fail_encode, 120);
    config_free(&cfg);
    assert_int_equal(load(&cfg, (char *[]){"sluice", NULL},
                          (char *[]){"SLUICE_DEBUG_SLOW_ENCODE=20", NULL}), 0);
    assert_int_equal(cfg.debug_slow_encode_ms, 20);
    config_free(&cfg);
}

/* Issue 22's options: defaults, bounds, and the environment's spelling. */
static void test_audience_options(void **state)
{
    (void)state;
    char *envp[] = {NULL};
    config_t c;
    assert_int_equal(load(&c, (char *[]){"sluice", NULL}, envp), 0);
    assert_string_equal(c.beacons, "on");
    assert_int_equal(c.audience_timeout_s, 30);
    assert_int_equal(c.audience_per_address, 50);
    config_free(&c);
    char *env2[] = {"SLUICE_BEACONS=off", "SLUICE_AUDIENCE_TIMEOUT=300", NULL};
    assert_int_equal(load(&c, (char *[]){"sluice", "--audience-per-address", "1", NULL}, env2), 0);
    assert_string_equal(c.beacons, "off");
    assert_int_equal(c.audience_timeout_s, 300);
    assert_int_equal(c.audience_per_address, 1);
    config_free(&c);
    static const char *const bad[] = {"--audience-timeout=9", "--audience-timeout=301",
                                      "--audience-per-address=0",
                                      "--audience-per-address=100001", "--beacons=maybe"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (load(&c, (char *[]){"sluice", (char *)bad[i], NULL}, envp) != -EINVAL)
            fail_msg("accepted %s", bad[i]);
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(bad[i], "="), bad[i]);
        if (!strstr(err, name + 2))
            fail_msg("the error for %s does not name it: %s", bad[i], err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_booleans),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_check_config),
        cmocka_unit_test(test_print_config),
        cmocka_unit_test(test_file_lines),
        cmocka_unit_test(test_diff),
        cmocka_unit_test(test_diff_flags),
        cmocka_unit_test(test_adopt),
        cmocka_unit_test(test_adopt_twice),
        cmocka_unit_test(test_debug_options),
        cmocka_unit_test(test_record_switch),
        cmocka_unit_test(test_audience_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
