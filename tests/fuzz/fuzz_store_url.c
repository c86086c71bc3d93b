/* Fuzz target: the Redis store's URL grammar (redis://, redis-sentinel://)
 * and Sentinel's +switch-master message. What parses stays in bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_redis_url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    static rs_url_t u;
    if (rs_url_parse(s, &u) == 0) {
        if (strlen(u.where) >= sizeof(u.where) || u.db < 0 || u.db > 65535)
            abort();
        if (u.mode == RS_URL_SENTINEL) {
            if (u.nsentinels < 1 || u.nsentinels > RS_URL_SENTINELS_MAX || !u.master_name[0] ||
                u.wait_ms < 0 || u.wait_ms > RS_URL_WAIT_MS_MAX)
                abort();
            for (unsigned i = 0; i < u.nsentinels; i++)
                if (!u.sentinels[i].host[0] || u.sentinels[i].port < 1 ||
                    u.sentinels[i].port > 65535)
                    abort();
            /* the log name never carries the sentinels' password */
            if (strlen(u.sentinel_password) >= 4 && strstr(u.where, u.sentinel_password) &&
                !strstr(s + 17, u.sentinel_password))
                abort();
        } else if (!u.host[0] || u.port < 1 || u.port > 65535) {
            abort();
        }
        rs_url_cleanse(&u);
    }
    char host[64];
    int port = 0;
    const char *name = size && data[0] == 'x' ? "x" : "sluice";
    if (rs_switch_parse((const char *)data, size, name, host, sizeof(host), &port) == 0 &&
        (port < 1 || port > 65535 || !host[0] || strlen(host) >= sizeof(host)))
        abort();
    free(s);
    return 0;
}
