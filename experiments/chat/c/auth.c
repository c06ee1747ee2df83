/* auth.c

   Authentication of a client by the shared key. See auth.h.
*/
#include <errno.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "error_functions.h"

/* Milliseconds on the monotonic clock. */
static long long
nowMs(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
        errExit("clock_gettime");
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Compare in a time that depends only on the length, never on where the
   first difference is, so that timing tells an attacker nothing. */
static int
keysEqual(const char *a, const char *b, size_t len)
{
    volatile unsigned char diff = 0;
    size_t j;

    for (j = 0; j < len; j++)
        diff |= (unsigned char) (a[j] ^ b[j]);
    return diff == 0;
}

int
authenticate(int cfd, const char key[KEY_LENGTH], long timeoutMs,
             const char *peer)
{
    char got[KEY_LENGTH];
    struct pollfd pfd;
    long long deadline, remaining;
    size_t total = 0;
    ssize_t numRead;
    int ready;

    deadline = nowMs() + timeoutMs;
    while (total < KEY_LENGTH) {
        remaining = deadline - nowMs();
        if (remaining <= 0) {
            logMsg("client %s: authentication timed out; connection closed",
                   peer);
            return 0;
        }
        pfd.fd = cfd;
        pfd.events = POLLIN;
        ready = poll(&pfd, 1, (int) remaining);
        if (ready == -1) {
            if (errno == EINTR)
                continue;
            errExit("poll");
        }
        if (ready == 0)
            continue;                   /* Timed out: reported above */

        /* Never more than the key: what follows is the first line. */
        numRead = read(cfd, got + total, KEY_LENGTH - total);
        if (numRead == -1) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            if (errno == ECONNRESET || errno == ENOTCONN ||
                    errno == ETIMEDOUT) {
                logMsg("client %s: connection closed during authentication",
                       peer);
                return 0;
            }
            errExit("read");
        }
        if (numRead == 0) {
            logMsg("client %s: connection closed during authentication",
                   peer);
            return 0;
        }
        total += (size_t) numRead;
    }

    if (!keysEqual(got, key, KEY_LENGTH)) {
        logMsg("client %s: wrong key; connection closed", peer);
        return 0;
    }
    return 1;
}
