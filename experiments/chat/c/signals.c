/* signals.c

   Signal handling for every process of papaya-chatd. See signals.h.
*/
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error_functions.h"
#include "signals.h"

static volatile sig_atomic_t numClients = 0;   /* Server: live clients */
static const char *pidFilePath = NULL;         /* Server: set once */

static pid_t senderPid = -1;                   /* RECV: its SEND */
static volatile sig_atomic_t senderReaped = 0; /* RECV: SEND has ended */
static volatile sig_atomic_t senderSignal = 0; /* RECV: ...killed by this */
static int clientFd = -1;                      /* RECV: the client socket */

/* Write a fixed message to stderr from a signal handler. */
static void
safeMessage(const char *msg)
{
    ssize_t ignored;

    ignored = write(STDERR_FILENO, msg, strlen(msg));
    (void) ignored;                 /* Nothing more can be done */
}

static void
setDisposition(int sig, void (*handler)(int), int flags)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = handler;
    sa.sa_flags = flags;
    if (sigfillset(&sa.sa_mask) == -1)  /* Handlers never nest */
        errExit("sigfillset");
    if (sigaction(sig, &sa, NULL) == -1)
        errExit("sigaction(%d)", sig);
}

static void
handledSignals(sigset_t *set)
{
    if (sigemptyset(set) == -1 || sigaddset(set, SIGCHLD) == -1 ||
            sigaddset(set, SIGTERM) == -1 || sigaddset(set, SIGINT) == -1 ||
            sigaddset(set, SIGHUP) == -1)
        errExit("sigemptyset/sigaddset");
}

void
becomeProcessGroupLeader(void)
{
    if (getpgrp() == getpid())      /* Already a group (or session) leader */
        return;
    if (setpgid(0, 0) == -1)
        errExit("setpgid");
}

/* ------------------------------------------------------------ server */

/* SIGCHLD in the server: reap every ended client without blocking. */
static void
reapClients(int sig)
{
    int savedErrno = errno;         /* waitpid() might change 'errno' */

    (void) sig;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        numClients--;
    errno = savedErrno;
}

static void
terminateOnSignal(int sig)
{
    (void) sig;
    terminateServer(EXIT_SUCCESS);
}

void
installServerHandlers(const char *pidFile)
{
    pidFilePath = pidFile;
    setDisposition(SIGPIPE, SIG_IGN, 0);
    setDisposition(SIGUSR1, SIG_IGN, 0);
    setDisposition(SIGCHLD, reapClients, SA_RESTART | SA_NOCLDSTOP);
    /* The termination handler never returns; SA_RESTART all the same. */
    setDisposition(SIGTERM, terminateOnSignal, SA_RESTART);
    setDisposition(SIGINT, terminateOnSignal, SA_RESTART);
    setDisposition(SIGHUP, terminateOnSignal, SA_RESTART);
}

void
blockHandledSignals(sigset_t *prevMask)
{
    sigset_t mask;

    handledSignals(&mask);
    if (sigprocmask(SIG_BLOCK, &mask, prevMask) == -1)
        errExit("sigprocmask");
}

void
restoreSignalMask(const sigset_t *prevMask)
{
    if (sigprocmask(SIG_SETMASK, prevMask, NULL) == -1)
        errExit("sigprocmask");
}

long
liveClients(void)
{
    return (long) numClients;
}

void
addClient(void)
{
    numClients++;
}

void
terminateServer(int status)
{
    struct sigaction sa;
    sigset_t mask;

    /* Only async-signal-safe functions from here on. No further
       termination requests; then ignore SIGTERM here, so that the
       group-wide SIGTERM below spares this process. */
    if (sigfillset(&mask) == -1 || sigprocmask(SIG_BLOCK, &mask, NULL) == -1)
        safeMessage(PROGRAM_NAME ": terminateServer: sigprocmask failed\n");
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    if (sigemptyset(&sa.sa_mask) == -1 || sigaction(SIGTERM, &sa, NULL) == -1)
        safeMessage(PROGRAM_NAME ": terminateServer: sigaction failed\n");

    /* Clients end their SEND before they exit (installReceiverHandlers);
       SIGCONT makes a stopped process act on SIGTERM too. */
    if (kill(0, SIGTERM) == -1 || kill(0, SIGCONT) == -1)
        safeMessage(PROGRAM_NAME ": terminateServer: kill failed\n");

    /* Wait until every client has gone, so none outlives the server. */
    for (;;) {
        if (waitpid(-1, NULL, 0) == -1) {
            if (errno == EINTR)
                continue;
            break;                  /* ECHILD: no children left */
        }
    }

    /* Best effort: after dropping privileges the server may not be
       allowed to remove a pid file that root created. */
    if (pidFilePath != NULL)
        (void) unlink(pidFilePath);

    _exit(status);
}

/* ------------------------------------------------------------ clients */

void
resetClientSignals(const sigset_t *prevMask)
{
    setDisposition(SIGCHLD, SIG_DFL, 0);
    setDisposition(SIGTERM, SIG_DFL, 0);
    setDisposition(SIGINT, SIG_DFL, 0);
    setDisposition(SIGHUP, SIG_DFL, 0);
    restoreSignalMask(prevMask);
}

/* SIGCHLD in a RECV: its SEND has ended (the client has gone, or SEND
   failed). Shut the connection down, so that the RECV's read() returns
   end-of-file and it ends too. */
static void
senderEnded(int sig)
{
    int savedErrno = errno;
    int status;

    (void) sig;
    if (!senderReaped && waitpid(senderPid, &status, WNOHANG) == senderPid) {
        senderReaped = 1;
        if (WIFSIGNALED(status))
            senderSignal = WTERMSIG(status);
        (void) shutdown(clientFd, SHUT_RDWR);   /* Async-signal-safe */
    }
    errno = savedErrno;
}

void
stopSender(void)
{
    int status;

    if (senderReaped)
        return;
    if (kill(senderPid, SIGTERM) == -1 && errno != ESRCH)
        safeMessage(PROGRAM_NAME ": stopSender: kill failed\n");
    while (waitpid(senderPid, &status, 0) == -1) {
        if (errno != EINTR)
            return;
    }
    senderReaped = 1;
    if (WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM)
        senderSignal = WTERMSIG(status);   /* It died before our SIGTERM */
}

int
senderKilledBy(void)
{
    return (int) senderSignal;
}

static void
receiverTerminate(int sig)
{
    (void) sig;
    stopSender();                   /* Async-signal-safe */
    _exit(EXIT_SUCCESS);
}

void
installReceiverHandlers(pid_t sendPid, int cfd)
{
    senderPid = sendPid;
    senderReaped = 0;
    clientFd = cfd;
    setDisposition(SIGCHLD, senderEnded, SA_RESTART | SA_NOCLDSTOP);
    setDisposition(SIGTERM, receiverTerminate, SA_RESTART);
    setDisposition(SIGINT, receiverTerminate, SA_RESTART);
    setDisposition(SIGHUP, receiverTerminate, SA_RESTART);
}

/* ------------------------------------------------------------ senders */

/* SIGUSR1 in a SEND: nothing to do; its arrival ends sigsuspend(). */
static void
wakeUp(int sig)
{
    (void) sig;
}

void
installSenderHandlers(sigset_t *waitMask)
{
    sigset_t usr1;

    /* Block first, then catch: from here on a wake-up is either pending
       or has been delivered, never lost. */
    if (sigemptyset(&usr1) == -1 || sigaddset(&usr1, SIGUSR1) == -1)
        errExit("sigemptyset/sigaddset");
    if (sigprocmask(SIG_BLOCK, &usr1, NULL) == -1)
        errExit("sigprocmask");
    setDisposition(SIGUSR1, wakeUp, SA_RESTART);
    setDisposition(SIGCHLD, SIG_DFL, 0);
    setDisposition(SIGTERM, SIG_DFL, 0);
    setDisposition(SIGINT, SIG_DFL, 0);
    setDisposition(SIGHUP, SIG_DFL, 0);

    /* Run with only SIGUSR1 blocked; wait with nothing blocked. */
    if (sigprocmask(SIG_SETMASK, &usr1, NULL) == -1)
        errExit("sigprocmask");
    if (sigemptyset(waitMask) == -1)
        errExit("sigemptyset");
}

void
wakeSenders(void)
{
    if (kill(0, SIGUSR1) == -1)
        errMsg("kill(0, SIGUSR1)");
}
