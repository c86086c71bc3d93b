/*
 * The admin listener (--admin-listen): the REST API for streams and stats,
 * /metrics and the dashboard, on a libmicrohttpd daemon of its own, apart
 * from the public origin. Requests need "Authorization: Bearer TOKEN" when
 * --admin-token is set; without one only loopback clients are answered.
 *
 * Threads: MHD's own thread; handlers call the store and the report module,
 * both thread-safe.
 */
#ifndef SLUICE_CONTROL_ADMIN_H
#define SLUICE_CONTROL_ADMIN_H

#include <stdbool.h>

#include "report.h"
#include "store.h"

typedef struct admin admin_t;

typedef struct admin_params {
    const char *listen;          /* "HOST:PORT" */
    const char *token;           /* NULL: loopback clients only */
    store_t *store;
    report_t *report;            /* live status, stats, metrics */
    const char *public_http_url; /* base of playback URLs, no trailing slash */
    const char *public_rtmp_url; /* base of RTMP URLs ("rtmp://host:1935/live") */
    bool rotate_cuts;            /* --key-rotation cut */
} admin_params_t;

int admin_open(const admin_params_t *params, admin_t **out) __attribute__((warn_unused_result));
int admin_port(const admin_t *a);
void admin_close(admin_t *a);

#endif
