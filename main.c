/*
 * sluice: reads the configuration and hands it to the app (app.c), which
 * builds the store, seeds the predefined streams and starts the roles that
 * were asked for (ingest with its transcode workers, the origin) and the
 * admin listener. `sluice streams ...` runs the admin CLI instead.
 *
 * The main thread then waits for signals: SIGHUP reads the configuration
 * again from the same flags, environment and file and has the app apply
 * what may change live (app_reload); SIGINT/SIGTERM shut down in dependency
 * order (app_close), and a second one during that exits at once.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <unistd.h>

#include <curl/curl.h>

#include "admin.h"
#include "app.h"
#include "config.h"
#include "log.h"
#include "origin.h"
#include "transcode.h"

extern char **environ;

/* SIGHUP: reads the configuration again from the same flags, environment
 * and file. A configuration that does not load changes nothing. */
static void main_reload(sluice_app_t *app, int argc, char **argv)
{
    config_t next;
    char err[512];
    log_info(NULL, "SIGHUP received, reloading the configuration");
    if (config_load(&next, argc, argv, environ, stdout, err, sizeof(err)) != 0) {
        log_error(NULL, "reload refused, nothing changed: %s", err);
        return;
    }
    app_reload(app, &next);
}

/* During an orderly shutdown (final segments written, playlists ended) a
 * second SIGINT/SIGTERM means the operator will not wait: exit at once. */
static void *main_second_signal_thread(void *arg)
{
    const sigset_t *sigs = arg;
    int sig = 0;
    pthread_setname_np(pthread_self(), "second-signal"); /* detached: named from inside */
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
    sigaddset(&sigs, SIGHUP); /* reloads the configuration (main_reload) */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int exit_code = 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    sluice_app_t *app = NULL;
    if (app_open(&cfg, &app) == 0) {
        int sig = 0;
        for (;;) {
            sigwait(&sigs, &sig);
            if (sig != SIGHUP)
                break;
            main_reload(app, argc, argv);
        }
        log_info(NULL, "%s received, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
        main_watch_second_signal(&sigs);
        app_close(app);
        exit_code = 0;
    }
    curl_global_cleanup();
    config_free(&cfg);
    if (exit_code == 0)
        log_info(NULL, "stopped");
    return exit_code;
}
