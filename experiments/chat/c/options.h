/* options.h

   Command-line parsing for papaya-chatd.
*/
#ifndef OPTIONS_H
#define OPTIONS_H

#include <stdio.h>

#include "settings.h"

/* Write the usage text to 'stream'. */
void printUsage(FILE *stream);

/* Parse the command line into 'st' (initialised by initSettings()),
   marking in st->fromCommandLine what it set. Bad options: message and
   usage on stderr, exit(2). -h/--help: usage on stdout, exit(0). */
void parseCommandLine(int argc, char *argv[], struct Settings *st);

#endif
