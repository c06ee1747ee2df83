/* inet_listen.h

   Creation of the server's listening socket, IPv4 or IPv6 by explicit
   choice, and formatting of socket addresses.
*/
#ifndef INET_LISTEN_H
#define INET_LISTEN_H

#include <sys/types.h>
#include <sys/socket.h>

/* Large enough for "[IPv6%zone]:port" */
#define ADDR_STR_LEN 128

/* Create a TCP socket listening on every address of one family: 0.0.0.0
   (IPv4), or [::] with IPV6_V6ONLY set (IPv6 only: the default of that
   option differs between systems, so it is set explicitly). SO_REUSEADDR
   is set. The port bound (useful when 'port' is 0) goes to '*boundPort'.
   Errors are fatal; a bind error names the address. */
int inetListen(int port, int ipv6, int backlog, int *boundPort);

/* Format 'addr' as "1.2.3.4:port" or "[::1]:port" into 'buf'. */
char *formatAddress(const struct sockaddr *addr, socklen_t len, char *buf,
                    size_t size);

#endif
