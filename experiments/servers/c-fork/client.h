/* client.h

   The work a child does for one connected client.
*/
#ifndef CLIENT_H
#define CLIENT_H

#include "error_functions.h"        /* NORETURN */

/* Read from 'cfd' until end-of-file. For every read(), write through
   stdio to stdout the text "<n> Bytes received from client." followed by
   the n bytes received. At end-of-file, flush stdout and _exit(). */
void handleClient(int cfd) NORETURN;

#endif
