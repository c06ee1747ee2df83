/* c_fork.c

   A TCP server that forks one child process per accepted client. Each
   child reads from its client until end-of-file and reports every read on
   stdout (see client.c).

   Usage: c-fork [--port N | -p N] [--output MODE] [--buffer-size N]

   SIGTERM (or SIGINT) terminates the server and all of its children.
*/
#include <sys/types.h>
#include <sys/socket.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "client.h"
#include "error_functions.h"
#include "inet_listen.h"
#include "options.h"
#include "signals.h"

int
main(int argc, char *argv[])
{
    int lfd, cfd, boundPort;
    struct ServerOptions opts;
    sigset_t prevMask;
    pid_t pid;

    parseOptions(argc, argv, &opts);

    becomeProcessGroupLeader();
    lfd = inetListen(opts.port, SOMAXCONN, &boundPort);
    installServerHandlers();

    /* stderr is unbuffered; nothing is ever written to stdout by the
       parent, so children do not inherit pending stdio output. */
    fprintf(stderr, "%s: listening on 0.0.0.0:%d\n", PROGRAM_NAME, boundPort);

    for (;;) {
        cfd = accept(lfd, NULL, NULL);
        if (cfd == -1) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;           /* Interrupted, or client gave up */
            errMsg("accept");
            terminateServer(EXIT_FAILURE);
        }

        blockTermination(&prevMask);

        pid = fork();
        if (pid == -1) {            /* Drop this client, keep serving */
            errMsg("fork; dropping client");
            if (close(cfd) == -1) {
                errMsg("close");
                terminateServer(EXIT_FAILURE);
            }
        } else if (pid == 0) {      /* Child */
            resetChildSignals(&prevMask);
            if (close(lfd) == -1)   /* Not needed in the child */
                errExit("close");
            handleClient(cfd, &opts);   /* Does not return */
        } else {                    /* Parent */
            if (close(cfd) == -1) { /* The child has its own copy */
                errMsg("close");
                terminateServer(EXIT_FAILURE);
            }
        }

        restoreSignalMask(&prevMask);
    }
}
