/* sender.h

   A SEND process's work: the log, from where its client is, to the
   client.
*/
#ifndef SENDER_H
#define SENDER_H

#include <sys/types.h>

#include "error_functions.h"        /* NORETURN */

/* Send the client on 'cfd' the log at 'logPath' (opened here) from
   'offset' to its end, then, each time SIGUSR1 arrives, everything
   appended since, until the client cannot be written to. Never returns;
   _exit(0) when the client has gone, _exit(1) on an error. */
void sendLog(int cfd, const char *logPath, off_t offset) NORETURN;

#endif
