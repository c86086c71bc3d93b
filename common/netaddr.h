/* "HOST:PORT" listen addresses: IPv4, [IPv6] or a host name. Any thread. */
#ifndef SLUICE_COMMON_NETADDR_H
#define SLUICE_COMMON_NETADDR_H

#include <sys/socket.h>

/* Resolves spec into *ss. Returns 0, or -EINVAL with a reason in err. */
int netaddr_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *len, char *err,
                  size_t errlen);

/* Port of a bound socket, or -1. */
int netaddr_bound_port(int fd);

#endif
