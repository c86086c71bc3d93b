/* Listen addresses: parsing with getaddrinfo, opening, and the hint an
 * operator needs when opening fails. Any thread. */
#include "netaddr.h"

#include "log.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int netaddr_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return -1;
}

int netaddr_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *len, char *err,
                  size_t errlen)
{
    char host[256];
    const char *port;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof(host)) {
            snprintf(err, errlen, "'%s' is not [IPV6]:PORT", spec);
            return -EINVAL;
        }
        memcpy(host, spec + 1, (size_t)(close - spec - 1));
        host[close - spec - 1] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(spec, ':');
        if (!colon || (size_t)(colon - spec) >= sizeof(host)) {
            snprintf(err, errlen, "'%s' is not HOST:PORT", spec);
            return -EINVAL;
        }
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
        port = colon + 1;
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 0 || p > 65535) {
        snprintf(err, errlen, "'%s' has no valid port (0-65535)", spec);
        return -EINVAL;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(rc));
        return -EINVAL;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

void netaddr_client_group(unsigned char addr[16])
{
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(addr, v4mapped, sizeof(v4mapped)) != 0)
        memset(addr + NETADDR_V6_PREFIX / 8, 0, 16 - NETADDR_V6_PREFIX / 8);
}

int netaddr_bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    return netaddr_port(&ss);
}

int netaddr_listen(const struct sockaddr_storage *ss, socklen_t len)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, 128) != 0) {
        int ret = -errno;
        close(fd);
        return ret;
    }
    return fd;
}

int netaddr_report_listen_failure(const char *ctx, const char *spec,
                                  const struct sockaddr_storage *ss, socklen_t len)
{
    int fd = netaddr_listen(ss, len);
    if (fd < 0) {
        log_error(ctx, "cannot listen on %s: %s%s", spec, strerror(-fd),
                  netaddr_listen_hint(fd, ss));
        return fd;
    }
    close(fd);
    log_error(ctx, "cannot start the HTTP server on %s (see the lines above)", spec);
    return -EIO;
}

const char *netaddr_listen_hint(int err, const struct sockaddr_storage *ss)
{
    int port = netaddr_port(ss);
    if (err == -EACCES && port >= 0 && port < 1024)
        return " (ports under 1024 need root or CAP_NET_BIND_SERVICE: under systemd add the "
               "low-ports drop-in, see docs/deploy.md; or use a port from 1024 up)";
    if (err == -EADDRINUSE)
        return " (another process is listening there)";
    if (err == -EADDRNOTAVAIL)
        return " (not an address of this host)";
    return "";
}
