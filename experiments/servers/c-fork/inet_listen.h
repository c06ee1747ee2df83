/* inet_listen.h

   Creation of the server's IPv4 listening socket.
*/
#ifndef INET_LISTEN_H
#define INET_LISTEN_H

/* Create a TCP socket with SO_REUSEADDR, bind it to 0.0.0.0:'port', and
   listen with the given backlog. The port actually bound (useful when
   'port' is 0) is stored in '*boundPort'. Errors are fatal. */
int inetListen(int port, int backlog, int *boundPort);

#endif
