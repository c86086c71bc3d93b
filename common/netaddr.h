/* "HOST:PORT" listen addresses: IPv4, [IPv6] or a host name. Any thread. */
#ifndef SLUICE_COMMON_NETADDR_H
#define SLUICE_COMMON_NETADDR_H

#include <sys/socket.h>

/* Resolves spec into *ss. Returns 0, or -EINVAL with a reason in err. */
int netaddr_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *len, char *err,
                  size_t errlen);

/* A non-blocking, close-on-exec TCP socket bound to *ss (SO_REUSEADDR) and
 * listening. Returns the descriptor or -errno. */
int netaddr_listen(const struct sockaddr_storage *ss, socklen_t len);

/* Why a listener could not be opened, for the error line after strerror:
 * what to do about -EACCES on a port under 1024, -EADDRINUSE and
 * -EADDRNOTAVAIL; "" otherwise. Static text. */
const char *netaddr_listen_hint(int err, const struct sockaddr_storage *ss);

/* Logs (under ctx) why a listener someone else opens (libmicrohttpd) on
 * `spec` failed: tries the same bind itself and names its error and hint.
 * Returns that -errno, or -EIO when the bind works (the failure was
 * elsewhere, in lines logged before). */
int netaddr_report_listen_failure(const char *ctx, const char *spec,
                                  const struct sockaddr_storage *ss, socklen_t len);

/* Port of a bound socket, or -1. */
int netaddr_bound_port(int fd);

/* What per-address limits count as one client (RTMP connections and the
 * bad-key lockout, held LL-HLS requests): in a 16-byte address (IPv4 as
 * IPv4-mapped IPv6), an IPv6 address is cut to its /64, the rest zeroed,
 * because one subscriber or host gets a whole /64 and picks interface ids
 * at will (2^64 identities otherwise); an IPv4(-mapped) one stays whole. */
#define NETADDR_V6_PREFIX 64
void netaddr_client_group(unsigned char addr[16]);

#endif
