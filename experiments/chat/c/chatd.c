/* chatd.c

   papaya-chatd: a chat room server that forks for every client.

   Clients authenticate with a shared key; each line a client sends is
   appended to one chat log, and every client is sent the log's last lines
   on connecting and every line appended after. The protocol is in
   ../PROTOCOL.md, the options in ../README.md (or papaya-chatd --help).

   Processes (see signals.h): this one accepts connections and forks one
   process per client, which authenticates it and then forks a SEND
   process and becomes the client's RECV process.
*/
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "chat_log.h"
#include "client.h"
#include "config_file.h"
#include "daemon.h"
#include "error_functions.h"
#include "inet_listen.h"
#include "key_file.h"
#include "options.h"
#include "privileges.h"
#include "settings.h"
#include "signals.h"

static char key[KEY_LENGTH];        /* Read once, before any fork() */

/* Socket options for a client: no Nagle delay for short lines, and
   keep-alive probes so that a vanished client is noticed. */
static void
setClientOptions(int cfd)
{
    int on = 1;

    if (setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == -1)
        errMsg("setsockopt TCP_NODELAY");
    if (setsockopt(cfd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) == -1)
        errMsg("setsockopt SO_KEEPALIVE");
}

/* Out of descriptors or memory: wait a moment rather than spin. */
static void
pause100ms(void)
{
    struct timespec ts = { 0, 100000000L };

    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        continue;
}

static void
acceptClients(int lfd, const struct Settings *st)
{
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char peer[ADDR_STR_LEN];
    sigset_t prevMask;
    pid_t pid;
    int cfd;

    for (;;) {
        addrlen = sizeof(addr);
        cfd = accept(lfd, (struct sockaddr *) &addr, &addrlen);
        if (cfd == -1) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;           /* Interrupted, or client gave up */
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                    errno == ENOMEM) {
                errMsg("accept");
                pause100ms();
                continue;
            }
            errMsg("accept");
            terminateServer(EXIT_FAILURE);
        }
        formatAddress((struct sockaddr *) &addr, addrlen, peer, sizeof(peer));

        /* SIGCHLD (which updates the count) and termination blocked
           while counting and forking. */
        blockHandledSignals(&prevMask);

        if (liveClients() >= st->maxClients) {
            logMsg("client %s: too many clients (limit %ld); connection "
                   "closed", peer, st->maxClients);
            if (close(cfd) == -1)
                errMsg("close");
            restoreSignalMask(&prevMask);
            continue;
        }

        pid = fork();
        if (pid == -1) {            /* Drop this client, keep serving */
            errMsg("client %s: fork; connection closed", peer);
        } else if (pid == 0) {      /* Child: the client's process */
            resetClientSignals(&prevMask);
            if (close(lfd) == -1)
                errExit("close");
            setClientOptions(cfd);
            serveClient(cfd, peer, st, key);    /* Does not return */
        } else {
            addClient();
        }
        if (close(cfd) == -1) {     /* The child has its own copy */
            errMsg("close");
            terminateServer(EXIT_FAILURE);
        }

        restoreSignalMask(&prevMask);
    }
}

int
main(int argc, char *argv[])
{
    struct Settings st;
    struct RunAs runAs;
    int lfd, boundPort, readyFd = -1;

    initSettings(&st);
    parseCommandLine(argc, argv, &st);
    if (st.configPath != NULL)
        readConfigFile(&st);
    finishSettings(&st);

    loadKey(st.keyFile, key);
    resolveUser(st.user, &runAs);

    lfd = inetListen((int) st.port, st.ipv6, SOMAXCONN, &boundPort);

    if (st.daemon)
        readyFd = becomeDaemon();
    becomeProcessGroupLeader();
    if (st.pidFile != NULL)
        writePidFile(st.pidFile);   /* Before dropping privileges */

    dropPrivileges(&runAs);
    prepareLog(st.logPath);         /* As the user that will write it */

    installServerHandlers(st.pidFile);
    logMsg("listening on %s:%d", st.ipv6 ? "[::]" : "0.0.0.0", boundPort);
    if (readyFd != -1)
        notifyReady(readyFd);

    acceptClients(lfd, &st);
    return EXIT_FAILURE;            /* Not reached */
}
