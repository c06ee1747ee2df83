/* sender.c

   A SEND process's work. See sender.h.
*/
#include <sys/types.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat_log.h"
#include "error_functions.h"
#include "rdwrn.h"
#include "sender.h"
#include "signals.h"

#define SEND_BUF 16384              /* Bytes per read of the log; > MAX_LINE */

/* The length of the whole lines at the start of 'buf'. */
static size_t
wholeLines(const char *buf, size_t len)
{
    while (len > 0 && buf[len - 1] != '\n')
        len--;
    return len;
}

void
sendLog(int cfd, const char *logPath, off_t offset)
{
    char buf[SEND_BUF];
    sigset_t waitMask;
    ssize_t numRead;
    size_t len;
    int logFd;

    installSenderHandlers(&waitMask);

    logFd = openLogForReading(logPath);
    if (logFd == -1)
        errExit("open %s", logPath);

    for (;;) {
        /* Everything up to the end of the log, not just one buffer: one
           wake-up may stand for many lines. (A line appended after the last
           read has sent a SIGUSR1 that is pending now.) */
        for (;;) {
            numRead = readLog(logFd, buf, SEND_BUF, offset);
            if (numRead == -1)
                errExit("read %s", logPath);
            len = wholeLines(buf, (size_t) numRead);
            if (len == 0) {
                if (numRead < SEND_BUF)
                    break;          /* End of the log */
                len = SEND_BUF;     /* No newline at all: not ours; pass on */
            }
            if (writen(cfd, buf, len) == -1) {
                if (errno == EPIPE || errno == ECONNRESET ||
                        errno == ENOTCONN || errno == ETIMEDOUT)
                    _exit(EXIT_SUCCESS);        /* The client has gone */
                errExit("write to client");
            }
            offset += (off_t) len;
            if ((size_t) numRead < SEND_BUF)
                break;              /* A short read: that was the end */
        }

        /* Sleep until SIGUSR1. It is blocked at all other times, so one
           that came while sending is pending and ends this at once. */
        if (sigsuspend(&waitMask) == -1 && errno != EINTR)
            errExit("sigsuspend");
    }
}
