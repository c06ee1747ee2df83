/* client.h

   The work a child does for one connected client.
*/
#ifndef CLIENT_H
#define CLIENT_H

#include "error_functions.h"        /* NORETURN */
#include "options.h"

/* Read from 'cfd' until end-of-file, 'opts->bufSize' bytes at a time. For
   every read(), write to stdout what 'opts->output' says (OUTPUT_PAPER: the
   text "<n> Bytes received from client." followed by the n bytes received,
   through stdio). At end-of-file, flush stdout and _exit(). */
void handleClient(int cfd, const struct ServerOptions *opts) NORETURN;

#endif
