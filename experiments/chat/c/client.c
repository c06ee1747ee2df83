/* client.c

   The life of one client connection. See client.h.
*/
#include <sys/types.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "auth.h"
#include "chat_log.h"
#include "client.h"
#include "error_functions.h"
#include "receiver.h"
#include "sender.h"
#include "signals.h"

/* Where the client's stream starts: the last 'history' lines of the log
   as it is now. Lines appended from now on come after this offset, so
   none can be missed, whenever the SEND process starts. */
static off_t
streamStart(const char *logPath, long history, const char *peer)
{
    off_t start;
    int fd;

    fd = openLogForReading(logPath);
    if (fd == -1) {
        errMsg("client %s: cannot open log %s; connection closed", peer,
               logPath);
        _exit(EXIT_FAILURE);
    }
    start = historyStart(fd, history);
    if (start == -1) {
        errMsg("client %s: cannot read log %s; connection closed", peer,
               logPath);
        _exit(EXIT_FAILURE);
    }
    if (close(fd) == -1)
        errExit("close %s", logPath);
    return start;
}

void
serveClient(int cfd, const char *peer, const struct Settings *st,
            const char key[KEY_LENGTH])
{
    sigset_t prevMask;
    off_t start;
    pid_t sendPid;

    if (!authenticate(cfd, key, st->authTimeoutMs, peer)) {
        if (close(cfd) == -1)
            errExit("close");
        _exit(EXIT_SUCCESS);
    }
    logMsg("client %s: authenticated", peer);

    start = streamStart(st->logPath, st->history, peer);

    /* No termination between fork() and the RECV's handlers, which end
       the SEND before the RECV exits. */
    blockHandledSignals(&prevMask);
    sendPid = fork();
    if (sendPid == -1) {
        errMsg("client %s: fork; connection closed", peer);
        _exit(EXIT_FAILURE);
    }
    if (sendPid == 0) {             /* SEND */
        sendLog(cfd, st->logPath, start);       /* Does not return */
    }

    /* RECV */
    installReceiverHandlers(sendPid, cfd);
    restoreSignalMask(&prevMask);

    receiveLines(cfd, st->logPath, peer);

    blockHandledSignals(&prevMask);
    stopSender();
    if (senderKilledBy() != 0)
        logMsg("client %s: its SEND process was killed by signal %d", peer,
               senderKilledBy());
    if (close(cfd) == -1)
        errExit("close");
    _exit(EXIT_SUCCESS);
}
