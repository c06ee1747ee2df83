/* options.h

   Command-line parsing for the c-fork server.
*/
#ifndef OPTIONS_H
#define OPTIONS_H

#include <stdio.h>

#define DEFAULT_PORT 50000

/* Write the usage text to 'stream'. */
void printUsage(FILE *stream);

/* Parse the command line and return the TCP port to listen on (0 lets the
   kernel choose). Bad options: message and usage on stderr, exit(2).
   -h/--help: usage on stdout, exit(0). */
int parseOptions(int argc, char *argv[]);

#endif
