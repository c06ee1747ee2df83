/* signals.h

   Signal handling for the c-fork server: reaping of terminated children,
   and termination of the whole server (parent and children) on SIGTERM or
   SIGINT.
*/
#ifndef SIGNALS_H
#define SIGNALS_H

#include <signal.h>

#include "error_functions.h"   /* NORETURN */

/* Make the calling process the leader of a new process group (unless it
   already leads one), so that terminateServer() signals only the server
   and its children, never the process that started it. */
void becomeProcessGroupLeader(void);

/* In the parent: reap children on SIGCHLD; terminate the server on
   SIGTERM and SIGINT. */
void installServerHandlers(void);

/* Block SIGTERM and SIGINT, saving the previous mask in '*prevMask'.
   Used around fork(), so that a termination request cannot slip between
   fork() and the child's resetChildSignals(), and so that every child
   that fork() creates is in the process group when it is signalled. */
void blockTermination(sigset_t *prevMask);

/* Restore the signal mask saved by blockTermination(). */
void restoreSignalMask(const sigset_t *prevMask);

/* In a new child: restore default dispositions for SIGCHLD, SIGTERM and
   SIGINT, then restore the mask saved by blockTermination(). */
void resetChildSignals(const sigset_t *prevMask);

/* Send SIGTERM to every other process of the server's process group,
   wait for all children, and _exit(status). Async-signal-safe. */
void terminateServer(int status) NORETURN;

#endif
