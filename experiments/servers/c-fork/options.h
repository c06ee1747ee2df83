/* options.h

   Command-line parsing for the c-fork server.
*/
#ifndef OPTIONS_H
#define OPTIONS_H

#include <stdio.h>

#include <stddef.h>

#define DEFAULT_PORT 50000
#define DEFAULT_BUF_SIZE 4096       /* The original server's read buffer */
#define MAX_BUF_SIZE (1024 * 1024)

/* What a child writes to stdout for each read (an experiment factor). */
enum OutputMode {
    OUTPUT_PAPER,       /* "<n> Bytes received from client." + the bytes, as
                           the original; stdio's default buffering */
    OUTPUT_DISCARD,     /* Nothing: read and drop */
    OUTPUT_SAME         /* The bytes only, through a SAME_BUF_SIZE buffer: the
                           policy the Go server uses in the same mode */
};

#define SAME_BUF_SIZE 4096

struct ServerOptions {
    int port;                   /* 0 lets the kernel choose */
    enum OutputMode output;
    size_t bufSize;             /* Bytes per read() */
};

/* Write the usage text to 'stream'. */
void printUsage(FILE *stream);

/* Parse the command line into 'opts'. Bad options: message and usage on
   stderr, exit(2). -h/--help: usage on stdout, exit(0). */
void parseOptions(int argc, char *argv[], struct ServerOptions *opts);

#endif
