/* Fuzz target: what a client (or a proxy) controls of viewer counting: the
 * X-Forwarded-For walk behind a trusted proxy, and the session keys taken
 * from it (sid, User-Agent). The trusted-proxy list parser gets the same
 * bytes. Checks contracts: the client address is always 16 bytes, and a
 * touched session is counted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include "viewers_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static viewers_t *fuzz_viewers;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fuzz_viewers &&
        viewers_new("127.0.0.0/8, 10.0.0.0/8, ::1, fd00::/8", 4000, 4096, 1024, &fuzz_viewers) != 0)
        abort();
    if (size > 4096)
        return 0;
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    viewers_net_t nets[VIEWERS_PROXIES_MAX];
    int n = viewers_parse_proxies(s, nets, VIEWERS_PROXIES_MAX);
    for (int i = 0; i < n; i++)
        if (nets[i].bits < 0 || nets[i].bits > 128)
            abort();

    /* The peer is a trusted proxy, so the header is walked. */
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr = {htonl(0x7f000001)}};
    uint8_t addr[16];
    memset(addr, 0xAA, sizeof(addr));
    viewers_client_addr(fuzz_viewers, (const struct sockaddr *)&peer, s, addr);

    /* The same bytes as a User-Agent of that address, and as a sid. */
    static int64_t now = 1000;
    now += 10;
    viewers_touch(fuzz_viewers, "fuzz", 'a', addr, sizeof(addr), s, strlen(s), now);
    viewers_touch(fuzz_viewers, "fuzz", 's', s, strlen(s), NULL, 0, now);
    if (viewers_count(fuzz_viewers, "fuzz", now) == 0)
        abort();
    free(s);
    return 0;
}
