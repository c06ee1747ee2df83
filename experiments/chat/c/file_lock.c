/* file_lock.c

   Advisory whole-file locks with flock(). See file_lock.h.

   flock() is not in POSIX.1, but Linux and every BSD have it, and the Go
   server (and any tool that reads the chat log safely) uses it too. It
   locks an open file description, not a process: every process that
   takes part must have opened the log itself, or the lock excludes
   nothing. This file alone asks for the system's full interface.
*/
#undef _POSIX_C_SOURCE
#define _DEFAULT_SOURCE                 /* glibc, musl; FreeBSD needs nothing */

#include <sys/file.h>
#include <errno.h>

#include "file_lock.h"

static int
flockRetrying(int fd, int operation)
{
    for (;;) {
        if (flock(fd, operation) == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

int
lockFile(int fd, enum LockKind kind)
{
    return flockRetrying(fd, kind == LOCK_KIND_SHARED ? LOCK_SH : LOCK_EX);
}

int
unlockFile(int fd)
{
    return flockRetrying(fd, LOCK_UN);
}
