/*
 * The Redis store's URL grammar and the Sentinel "+switch-master" message:
 * pure parsers, no I/O, so they are unit-tested and fuzzed without a server.
 * store_redis.c is their only caller. Any thread; no state.
 *
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?cache-mb=N]
 *   redis-sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTER
 *                    [?PARAM=VALUE[&PARAM=VALUE...]]
 *     params (each at most once): db=N, cache-mb=N, sentinel-user=U,
 *     sentinel-password=P, wait-ms=N
 *
 * The sentinel form percent-decodes its userinfo and the sentinel-user /
 * sentinel-password values; the redis:// form is parsed as it always was.
 */
#ifndef SLUICE_STORE_REDIS_URL_H
#define SLUICE_STORE_REDIS_URL_H

#include <stddef.h>

#define RS_URL_SENTINELS_MAX 16
#define RS_URL_SENTINEL_PORT 26379
#define RS_URL_MASTER_NAME_MAX 63
#define RS_URL_WAIT_MS_DEFAULT 100
#define RS_URL_WAIT_MS_MAX 1000
#define RS_URL_CACHE_BYTES_DEFAULT ((size_t)64 << 20)

typedef enum rs_url_mode {
    RS_URL_DIRECT,   /* redis:// */
    RS_URL_SENTINEL, /* redis-sentinel:// */
} rs_url_mode_t;

typedef struct rs_url_host {
    char host[256];
    int port;
} rs_url_host_t;

typedef struct rs_url {
    rs_url_mode_t mode;
    char host[256]; /* redis:// only */
    int port;
    rs_url_host_t sentinels[RS_URL_SENTINELS_MAX]; /* redis-sentinel:// only */
    unsigned nsentinels;
    char master_name[RS_URL_MASTER_NAME_MAX + 1];
    char user[128];     /* the data nodes' credentials */
    char password[256];
    char sentinel_user[128]; /* the sentinels' ("": none) */
    char sentinel_password[256];
    int db;
    size_t cache_bytes;
    int wait_ms; /* sentinel mode: WAIT after registry and lease changes (0: off) */
    /* For logs: "redis://HOST:PORT/DB" or "redis-sentinel://S1:P1,S2:P2/NAME db N",
     * never a secret (a long sentinel list is cut short with "..."). */
    char where[320];
} rs_url_t;

/* Parses either form into *out (zeroed first). 0, or -EINVAL for anything
 * outside the grammar. Callers cleanse the secrets with rs_url_cleanse. */
int rs_url_parse(const char *url, rs_url_t *out);
/* Wipes the passwords in u. */
void rs_url_cleanse(rs_url_t *u);

/* Parses a "+switch-master" payload "NAME OLDIP OLDPORT NEWIP NEWPORT" of
 * len bytes (not NUL-terminated). 0 with the new address when NAME is
 * want_name, -ENOENT for another master, -EINVAL when malformed. */
int rs_switch_parse(const char *msg, size_t len, const char *want_name, char *host,
                    size_t hostlen, int *port);

#endif
