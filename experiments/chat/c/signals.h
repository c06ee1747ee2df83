/* signals.h

   Signal handling for every process of papaya-chatd. All dispositions are
   set with sigaction() and explicit flags; every handler that can
   interrupt a system call is installed with SA_RESTART.

   The processes, all in one process group led by the server:

     server    accepts connections; reaps clients (SIGCHLD) and counts
               them; on SIGTERM, SIGINT or SIGHUP signals the whole group
               with SIGTERM, waits for every client and exits 0.
     RECV      one per client (it first authenticates the client): reads
               the client's lines and appends them to the log, then wakes
               the SEND processes with SIGUSR1 to the group. On SIGTERM it
               ends its SEND and exits; when its SEND ends, it shuts the
               connection down.
     SEND      one per client, child of its RECV: sleeps in sigsuspend()
               with SIGUSR1 blocked at all other times, so that no wake-up
               is lost, and sends the client what the log has gained.

   SIGPIPE is ignored everywhere (a write to a vanished client fails with
   EPIPE instead of killing the process); SIGUSR1 is ignored everywhere
   except in SEND processes.
*/
#ifndef SIGNALS_H
#define SIGNALS_H

#include <sys/types.h>
#include <signal.h>

#include "error_functions.h"   /* NORETURN */

/* Make the calling process the leader of a new process group (unless it
   already leads one), so that signals to the group reach the server's
   processes only, never the process that started it. */
void becomeProcessGroupLeader(void);

/* In the server: the dispositions above. 'pidFile' (or NULL) is removed
   when the server terminates. */
void installServerHandlers(const char *pidFile);

/* Block the signals whose handlers change the server's or a RECV's state
   (SIGCHLD, SIGTERM, SIGINT, SIGHUP), saving the previous mask. Used
   around fork() and around the client count. */
void blockHandledSignals(sigset_t *prevMask);

/* Restore a mask saved by blockHandledSignals(). */
void restoreSignalMask(const sigset_t *prevMask);

/* The number of clients (children of the server) alive, and a new one.
   Call with blockHandledSignals() in force. */
long liveClients(void);
void addClient(void);

/* Signal the group with SIGTERM, wait for every client, remove the pid
   file and _exit(status). Async-signal-safe. */
void terminateServer(int status) NORETURN;

/* In a new client process: default dispositions for SIGCHLD, SIGTERM,
   SIGINT and SIGHUP (SIGPIPE and SIGUSR1 stay ignored), then the mask
   saved by blockHandledSignals(). */
void resetClientSignals(const sigset_t *prevMask);

/* In a RECV process whose SEND is 'sendPid' and client socket 'cfd': on
   SIGTERM, SIGINT or SIGHUP, end the SEND and exit; on the SEND's end,
   shut 'cfd' down so that the RECV sees end-of-file. */
void installReceiverHandlers(pid_t sendPid, int cfd);

/* In a RECV: end its SEND (if still running) and wait for it. Call with
   blockHandledSignals() in force. */
void stopSender(void);

/* In a RECV: the signal that killed its SEND before the RECV ended it, or
   0. SEND processes catch or ignore every signal they can receive in
   normal operation, so this is a bug worth reporting. */
int senderKilledBy(void);

/* In a SEND process: block SIGUSR1 and catch it (SA_RESTART), with
   default dispositions for the rest. '*waitMask' receives the mask to
   pass to sigsuspend(): the current one without SIGUSR1. */
void installSenderHandlers(sigset_t *waitMask);

/* Wake every SEND process of the server: SIGUSR1 to the process group. */
void wakeSenders(void);

#endif
