/* rdwrn.c

   writen(). See rdwrn.h.
*/
#include <errno.h>
#include <unistd.h>

#include "rdwrn.h"

ssize_t
writen(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    size_t totWritten;
    ssize_t numWritten;

    for (totWritten = 0; totWritten < n; ) {
        numWritten = write(fd, p, n - totWritten);
        if (numWritten <= 0) {
            if (numWritten == -1 && errno == EINTR)
                continue;               /* Interrupted: restart write() */
            return -1;
        }
        totWritten += (size_t) numWritten;
        p += numWritten;
    }
    return (ssize_t) totWritten;
}
