/* signals.c

   Signal handling for the c-fork server. See signals.h.
*/
#include <sys/types.h>
#include <sys/wait.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error_functions.h"
#include "signals.h"

/* Write a fixed message to stderr from a context where stdio must not be
   used (signal handlers). */
static void
safeMessage(const char *msg)
{
    ssize_t ignored;

    ignored = write(STDERR_FILENO, msg, strlen(msg));
    (void) ignored;                 /* Nothing more can be done */
}

/* SIGCHLD handler: reap every terminated child without blocking. */
static void
reapChildren(int sig)
{
    int savedErrno;                 /* waitpid() might change 'errno' */

    (void) sig;
    savedErrno = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        continue;
    errno = savedErrno;
}

/* SIGTERM and SIGINT handler (parent only). */
static void
terminateOnSignal(int sig)
{
    (void) sig;
    terminateServer(EXIT_SUCCESS);
}

static void
termSignals(sigset_t *set)
{
    if (sigemptyset(set) == -1 || sigaddset(set, SIGTERM) == -1 ||
            sigaddset(set, SIGINT) == -1)
        errExit("sigemptyset/sigaddset");
}

static void
setDisposition(int sig, void (*handler)(int), int flags,
               const sigset_t *mask)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = handler;
    sa.sa_flags = flags;
    sa.sa_mask = *mask;
    if (sigaction(sig, &sa, NULL) == -1)
        errExit("sigaction(%d)", sig);
}

void
becomeProcessGroupLeader(void)
{
    if (getpgrp() == getpid())      /* Already a group (or session) leader */
        return;
    if (setpgid(0, 0) == -1)
        errExit("setpgid");
}

void
installServerHandlers(void)
{
    sigset_t mask;

    if (sigemptyset(&mask) == -1)
        errExit("sigemptyset");
    setDisposition(SIGCHLD, reapChildren, SA_RESTART | SA_NOCLDSTOP, &mask);

    /* While terminating, block further termination signals and SIGCHLD;
       the handler never returns, so SA_RESTART is irrelevant. */
    termSignals(&mask);
    if (sigaddset(&mask, SIGCHLD) == -1)
        errExit("sigaddset");
    setDisposition(SIGTERM, terminateOnSignal, 0, &mask);
    setDisposition(SIGINT, terminateOnSignal, 0, &mask);
}

void
blockTermination(sigset_t *prevMask)
{
    sigset_t mask;

    termSignals(&mask);
    if (sigprocmask(SIG_BLOCK, &mask, prevMask) == -1)
        errExit("sigprocmask");
}

void
restoreSignalMask(const sigset_t *prevMask)
{
    if (sigprocmask(SIG_SETMASK, prevMask, NULL) == -1)
        errExit("sigprocmask");
}

void
resetChildSignals(const sigset_t *prevMask)
{
    sigset_t empty;

    if (sigemptyset(&empty) == -1)
        errExit("sigemptyset");
    setDisposition(SIGCHLD, SIG_DFL, 0, &empty);
    setDisposition(SIGTERM, SIG_DFL, 0, &empty);
    setDisposition(SIGINT, SIG_DFL, 0, &empty);
    restoreSignalMask(prevMask);
}

void
terminateServer(int status)
{
    struct sigaction sa;
    sigset_t mask;

    /* Only async-signal-safe functions from here on. */

    /* No further termination requests; then ignore SIGTERM in this
       process, so that the group-wide SIGTERM below spares it. */
    if (sigemptyset(&mask) == -1 || sigaddset(&mask, SIGTERM) == -1 ||
            sigaddset(&mask, SIGINT) == -1 ||
            sigprocmask(SIG_BLOCK, &mask, NULL) == -1)
        safeMessage(PROGRAM_NAME ": terminateServer: sigprocmask failed\n");

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    if (sigemptyset(&sa.sa_mask) == -1 || sigaction(SIGTERM, &sa, NULL) == -1)
        safeMessage(PROGRAM_NAME ": terminateServer: sigaction failed\n");

    /* Children have the default SIGTERM disposition: they die. SIGCONT
       makes a stopped child act on it too. */
    if (kill(0, SIGTERM) == -1 || kill(0, SIGCONT) == -1)
        safeMessage(PROGRAM_NAME ": terminateServer: kill failed\n");

    /* Wait until every child has gone, so none outlives the server. */
    for (;;) {
        if (waitpid(-1, NULL, 0) == -1) {
            if (errno == EINTR)
                continue;
            break;                  /* ECHILD: no children left */
        }
    }

    _exit(status);
}
