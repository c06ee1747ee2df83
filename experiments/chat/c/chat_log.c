/* chat_log.c

   The chat log. See chat_log.h.
*/
#include <sys/types.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "chat_log.h"
#include "error_functions.h"
#include "file_lock.h"
#include "rdwrn.h"

#define SCAN_BUF 4096

int
openLogForAppend(const char *path)
{
    int fd;

    do
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOCTTY,
                  S_IRUSR | S_IWUSR);
    while (fd == -1 && errno == EINTR);
    return fd;
}

int
openLogForReading(const char *path)
{
    int fd;

    do
        fd = open(path, O_RDONLY | O_NOCTTY);
    while (fd == -1 && errno == EINTR);
    return fd;
}

/* pread() looping over EINTR and short reads, until 'size' bytes or the
   end of the file. */
static ssize_t
preadFully(int fd, char *buf, size_t size, off_t offset)
{
    size_t total = 0;
    ssize_t numRead;

    while (total < size) {
        numRead = pread(fd, buf + total, size - total,
                        offset + (off_t) total);
        if (numRead == -1) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (numRead == 0)
            break;
        total += (size_t) numRead;
    }
    return (ssize_t) total;
}

void
prepareLog(const char *path)
{
    struct stat sb;
    char last;
    int fd;

    fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_NOCTTY,
              S_IRUSR | S_IWUSR);
    if (fd == -1)
        fatal("cannot open log %s: %s", path, errorText(errno));
    if (fstat(fd, &sb) == -1)
        errExit("fstat %s", path);
    if (!S_ISREG(sb.st_mode))
        fatal("log %s is not a regular file", path);

    if (lockFile(fd, LOCK_KIND_EXCLUSIVE) == -1)
        errExit("flock %s", path);
    if (fstat(fd, &sb) == -1)               /* The size under the lock */
        errExit("fstat %s", path);
    if (sb.st_size > 0) {
        if (preadFully(fd, &last, 1, sb.st_size - 1) != 1)
            errExit("read %s", path);
        if (last != '\n') {
            if (writen(fd, "\n", 1) != 1)
                errExit("write %s", path);
            logMsg("log %s did not end with a newline; appended one", path);
        }
    }
    if (unlockFile(fd) == -1)
        errExit("flock %s", path);
    if (close(fd) == -1)
        errExit("close %s", path);
}

off_t
historyStart(int fd, long lines)
{
    char buf[SCAN_BUF];
    struct stat sb;
    off_t pos, start = 0;
    ssize_t numRead;
    long newlines = 0;
    size_t chunk;
    int savedErrno;

    if (lockFile(fd, LOCK_KIND_SHARED) == -1)
        return -1;
    if (fstat(fd, &sb) == -1)
        goto fail;

    /* The log ends with a newline; the last 'lines' lines begin just after
       the (lines + 1)th newline from the end. */
    pos = sb.st_size;
    if (lines == 0)
        start = pos;
    while (lines > 0 && pos > 0) {
        chunk = (pos < SCAN_BUF) ? (size_t) pos : SCAN_BUF;
        pos -= (off_t) chunk;
        numRead = preadFully(fd, buf, chunk, pos);
        if (numRead == -1)
            goto fail;
        while (numRead > 0) {
            numRead--;
            if (buf[numRead] == '\n' && ++newlines == lines + 1) {
                start = pos + numRead + 1;
                goto done;
            }
        }
    }
done:
    if (unlockFile(fd) == -1)
        return -1;
    return start;

fail:
    savedErrno = errno;
    (void) unlockFile(fd);
    errno = savedErrno;
    return -1;
}

int
appendLines(int fd, const char *data, size_t len)
{
    const char *line = data, *end = data + len, *nl;
    struct stat sb;
    size_t lineLen;
    ssize_t numWritten;
    int savedErrno;

    if (lockFile(fd, LOCK_KIND_EXCLUSIVE) == -1)
        return -1;

    while (line < end) {
        nl = memchr(line, '\n', (size_t) (end - line));
        lineLen = (nl != NULL) ? (size_t) (nl - line) + 1
                               : (size_t) (end - line);
        do
            numWritten = write(fd, line, lineLen);
        while (numWritten == -1 && errno == EINTR);

        if (numWritten != (ssize_t) lineLen) {
            /* Nothing (-1) or part of the line was written: cut the part
               off, so that the log holds whole lines only. */
            savedErrno = (numWritten == -1) ? errno : ENOSPC;
            if (numWritten > 0 && (fstat(fd, &sb) == -1 ||
                    ftruncate(fd, sb.st_size - numWritten) == -1))
                errMsg("cannot cut a partly written line off the log");
            (void) unlockFile(fd);
            errno = savedErrno;
            return -1;
        }
        line += lineLen;
    }

    return unlockFile(fd);
}

ssize_t
readLog(int fd, char *buf, size_t size, off_t offset)
{
    ssize_t numRead;
    int savedErrno;

    if (lockFile(fd, LOCK_KIND_SHARED) == -1)
        return -1;
    numRead = preadFully(fd, buf, size, offset);
    savedErrno = errno;
    if (unlockFile(fd) == -1)
        return -1;
    errno = savedErrno;
    return numRead;
}
