/* client.c

   The work a child does for one connected client. See client.h.

   stdout keeps stdio's default buffering: it is block-buffered when it
   refers to a file or /dev/null, as in the original server.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "client.h"
#include "error_functions.h"

#define BUF_SIZE 4096

void
handleClient(int cfd)
{
    char buf[BUF_SIZE];
    ssize_t numRead;

    for (;;) {
        numRead = read(cfd, buf, BUF_SIZE);
        if (numRead == 0)
            break;                  /* End-of-file: client closed */
        if (numRead == -1) {
            if (errno == EINTR)
                continue;
            if (errno == ECONNRESET)
                break;              /* Client aborted: as end-of-file */
            errExit("read");        /* Flushes stdout, then exits */
        }

        /* The buffer is not a string: write exactly the bytes read. */
        if (printf("%ld Bytes received from client.", (long) numRead) < 0)
            errExit("printf");
        if (fwrite(buf, 1, (size_t) numRead, stdout) != (size_t) numRead)
            errExit("fwrite");
    }

    /* Flush before closing, so that once the client sees the connection
       closed, everything it sent has been written out. */
    if (fflush(stdout) == EOF)
        errExit("fflush");
    if (close(cfd) == -1)
        errExit("close");

    /* _exit(), not exit(): a child created by fork() must not run the
       parent's exit handlers; stdout has been flushed explicitly above. */
    _exit(EXIT_SUCCESS);
}
