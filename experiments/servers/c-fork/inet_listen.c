/* inet_listen.c

   Creation of the server's IPv4 listening socket.
*/
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <string.h>
#include <unistd.h>

#include "error_functions.h"
#include "inet_listen.h"

int
inetListen(int port, int backlog, int *boundPort)
{
    struct sockaddr_in addr;
    socklen_t addrlen;
    int lfd, optval;

    lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd == -1)
        errExit("socket");

    optval = 1;
    if (setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &optval,
                   sizeof(optval)) == -1)
        errExit("setsockopt SO_REUSEADDR");

    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons((unsigned short) port);

    if (bind(lfd, (struct sockaddr *) &addr, sizeof(addr)) == -1)
        errExit("bind to 0.0.0.0:%d", port);

    if (listen(lfd, backlog) == -1)
        errExit("listen");

    addrlen = sizeof(addr);
    if (getsockname(lfd, (struct sockaddr *) &addr, &addrlen) == -1)
        errExit("getsockname");
    *boundPort = ntohs(addr.sin_port);

    return lfd;
}
