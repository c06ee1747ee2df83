/* file_lock.h

   Advisory whole-file locks with flock().
*/
#ifndef FILE_LOCK_H
#define FILE_LOCK_H

enum LockKind { LOCK_KIND_SHARED, LOCK_KIND_EXCLUSIVE };

/* Wait for a lock of 'kind' on the open file description of 'fd'.
   Returns 0, or -1 with errno set. EINTR is retried. */
int lockFile(int fd, enum LockKind kind);

/* Release the lock held on the open file description of 'fd'. */
int unlockFile(int fd);

#endif
