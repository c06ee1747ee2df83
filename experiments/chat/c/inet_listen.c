/* inet_listen.c

   Creation of the server's listening socket. See inet_listen.h.
*/
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "error_functions.h"
#include "inet_listen.h"

int
inetListen(int port, int ipv6, int backlog, int *boundPort)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *sin = (struct sockaddr_in *) &ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;
    socklen_t addrlen;
    const char *any = ipv6 ? "[::]" : "0.0.0.0";
    int lfd, optval;

    lfd = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (lfd == -1)
        errExit("socket");

    optval = 1;
    if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &optval,
                   sizeof(optval)) == -1)
        errExit("setsockopt SO_REUSEADDR");

    memset(&ss, 0, sizeof(ss));
    if (ipv6) {
        optval = 1;
        if (setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &optval,
                       sizeof(optval)) == -1)
            errExit("setsockopt IPV6_V6ONLY");
        sin6->sin6_family = AF_INET6;
        sin6->sin6_addr = in6addr_any;
        sin6->sin6_port = htons((unsigned short) port);
        addrlen = sizeof(*sin6);
    } else {
        sin->sin_family = AF_INET;
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
        sin->sin_port = htons((unsigned short) port);
        addrlen = sizeof(*sin);
    }

    if (bind(lfd, (struct sockaddr *) &ss, addrlen) == -1)
        fatal("bind to %s:%d: %s", any, port, errorText(errno));

    if (listen(lfd, backlog) == -1)
        errExit("listen");

    addrlen = sizeof(ss);
    if (getsockname(lfd, (struct sockaddr *) &ss, &addrlen) == -1)
        errExit("getsockname");
    *boundPort = ntohs(ipv6 ? sin6->sin6_port : sin->sin_port);

    return lfd;
}

char *
formatAddress(const struct sockaddr *addr, socklen_t len, char *buf,
              size_t size)
{
    char host[96], service[16];     /* An IPv6 address and zone; a port */

    if (getnameinfo(addr, len, host, sizeof(host), service, sizeof(service),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        snprintf(buf, size, "?");
    else if (addr->sa_family == AF_INET6)
        snprintf(buf, size, "[%s]:%s", host, service);
    else
        snprintf(buf, size, "%s:%s", host, service);
    return buf;
}
