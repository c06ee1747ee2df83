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

void
handleClient(int cfd, const struct ServerOptions *opts)
{
    char *buf;
    ssize_t numRead;

    buf = malloc(opts->bufSize);
    if (buf == NULL)
        errExit("malloc");

    /* setvbuf() must come before any output on the stream; this child has
       written nothing yet. */
    if (opts->output == OUTPUT_SAME &&
            setvbuf(stdout, NULL, _IOFBF, SAME_BUF_SIZE) != 0)
        errExit("setvbuf");

    for (;;) {
        numRead = read(cfd, buf, opts->bufSize);
        if (numRead == 0)
            break;                  /* End-of-file: client closed */
        if (numRead == -1) {
            if (errno == EINTR)
                continue;
            if (errno == ECONNRESET)
                break;              /* Client aborted: as end-of-file */
            errExit("read");        /* Flushes stdout, then exits */
        }

        if (opts->output == OUTPUT_DISCARD)
            continue;
        if (opts->output == OUTPUT_PAPER &&
                printf("%ld Bytes received from client.", (long) numRead) < 0)
            errExit("printf");
        /* The buffer is not a string: write exactly the bytes read. */
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
