/* receiver.c

   A RECV process's work. See receiver.h.
*/
#include <sys/types.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "chat_log.h"
#include "error_functions.h"
#include "receiver.h"
#include "settings.h"
#include "signals.h"

#define RECV_BUF 16384              /* Bytes per read(); > MAX_LINE */

/* Append the whole lines at 'data' to the log and wake the senders.
   Returns 0, or -1 (logged) if the log could not be written. */
static int
appendAndWake(int logFd, const char *data, size_t len, const char *peer)
{
    if (len == 0)
        return 0;
    if (appendLines(logFd, data, len) == -1) {
        errMsg("client %s: cannot append to the log; connection closed",
               peer);
        return -1;
    }
    wakeSenders();
    return 0;
}

void
receiveLines(int cfd, const char *logPath, const char *peer)
{
    char buf[RECV_BUF];
    size_t used = 0;                /* Bytes in buf: an unfinished line */
    size_t start, scan, lineLen;
    ssize_t numRead;
    const char *nl;
    int logFd;

    logFd = openLogForAppend(logPath);
    if (logFd == -1) {
        errMsg("client %s: cannot open log %s; connection closed", peer,
               logPath);
        return;
    }

    for (;;) {
        numRead = read(cfd, buf + used, RECV_BUF - used);
        if (numRead == -1) {
            if (errno == EINTR)
                continue;
            if (errno != ECONNRESET && errno != ENOTCONN &&
                    errno != ETIMEDOUT)
                errMsg("client %s: read", peer);
            numRead = 0;            /* As end-of-file */
        }
        if (numRead == 0) {
            if (used > 0)
                logMsg("client %s: disconnected; dropped an unfinished line "
                       "of %lu bytes", peer, (unsigned long) used);
            else
                logMsg("client %s: disconnected", peer);
            break;
        }

        /* Find the complete lines among the bytes read. */
        scan = used;
        used += (size_t) numRead;
        start = 0;
        while ((nl = memchr(buf + scan, '\n', used - scan)) != NULL) {
            lineLen = (size_t) (nl - (buf + start)) + 1;
            if (lineLen > MAX_LINE ||
                    memchr(buf + start, '\0', lineLen) != NULL) {
                (void) appendAndWake(logFd, buf, start, peer);
                if (lineLen > MAX_LINE)
                    logMsg("client %s: line longer than %d bytes; "
                           "connection closed", peer, MAX_LINE);
                else
                    logMsg("client %s: line contains a NUL byte; "
                           "connection closed", peer);
                goto out;
            }
            start += lineLen;
            scan = start;
        }
        if (appendAndWake(logFd, buf, start, peer) == -1)
            goto out;

        /* Keep the unfinished line; it may not reach MAX_LINE bytes
           without its newline. */
        used -= start;
        memmove(buf, buf + start, used);
        if (used >= MAX_LINE) {
            logMsg("client %s: line longer than %d bytes; connection closed",
                   peer, MAX_LINE);
            goto out;
        }
    }

out:
    if (close(logFd) == -1)
        errMsg("close %s", logPath);
}
