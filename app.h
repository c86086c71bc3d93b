/*
 * The running parts of one sluice process and their wiring: the store with
 * its predefined streams, webhooks, the transcoder, RTMP ingest, the public
 * origin, the report and the admin listener, built in that order from a
 * configuration and torn down in reverse. A reload hands the parts the
 * options that the option table (config/config.c) marks CONFIG_RELOAD.
 *
 * Main thread only. Signals must be blocked before app_open (the parts
 * start threads, which inherit the mask).
 */
#ifndef SLUICE_APP_H
#define SLUICE_APP_H

#include "config.h"

typedef struct sluice_app sluice_app_t;

/* Builds every part that cfg's roles ask for and logs "ready". cfg stays
 * the caller's and must outlive the app: app_reload updates it in place.
 * 0; or -1 after logging why, with nothing left running. */
int app_open(config_t *cfg, sluice_app_t **out) __attribute__((warn_unused_result));

/* SIGHUP, with the configuration loaded again: applies what changed in the
 * CONFIG_RELOAD options (streams, admin token, log, webhooks, RTMP limits),
 * reads the RTMPS certificate files again, and logs which changes were
 * applied and which need a restart. Takes next: it is freed on return. */
void app_reload(sluice_app_t *app, config_t *next);

/* Orderly shutdown: ingest first (every live stream gets end-of-stream),
 * then the workers (final segments, ENDLIST playlists), the origin, the
 * webhooks and the store. NULL does nothing. */
void app_close(sluice_app_t *app);

#endif
