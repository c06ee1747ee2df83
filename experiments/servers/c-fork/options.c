/* options.c

   Command-line parsing for the c-fork server. Accepted forms:

       -p N   -pN   --port N   --port=N   -h   --help   --

   getopt() is not used because POSIX getopt() has no long options.
*/
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error_functions.h"
#include "options.h"

void
printUsage(FILE *stream)
{
    fprintf(stream, "Usage: %s [--port N | -p N]\n"
            "  -p, --port N   TCP port to listen on (default %d; 0 = any)\n"
            "  -h, --help     show this help and exit\n",
            PROGRAM_NAME, DEFAULT_PORT);
}

/* Convert 'str' to a port number; any trailing garbage, sign or value
   outside 0..65535 is a usage error. */
static int
parsePort(const char *str)
{
    char *endptr;
    long val;

    if (*str < '0' || *str > '9')
        usageErr("invalid port '%s'", str);

    errno = 0;
    val = strtol(str, &endptr, 10);
    if (errno != 0 || *endptr != '\0' || val < 0 || val > 65535)
        usageErr("invalid port '%s'", str);

    return (int) val;
}

int
parseOptions(int argc, char *argv[])
{
    int port = DEFAULT_PORT;
    int j;

    for (j = 1; j < argc; j++) {
        const char *arg = argv[j];

        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            printUsage(stdout);
            exit(EXIT_SUCCESS);
        } else if (strcmp(arg, "-p") == 0 || strcmp(arg, "--port") == 0) {
            if (j + 1 >= argc)
                usageErr("option '%s' requires an argument", arg);
            port = parsePort(argv[++j]);
        } else if (strncmp(arg, "--port=", 7) == 0) {
            port = parsePort(arg + 7);
        } else if (strncmp(arg, "-p", 2) == 0 && arg[2] >= '0' &&
                   arg[2] <= '9') {
            port = parsePort(arg + 2);
        } else if (strcmp(arg, "--") == 0) {
            if (j + 1 < argc)
                usageErr("unexpected argument '%s'", argv[j + 1]);
            break;
        } else if (arg[0] == '-') {
            usageErr("unknown option '%s'", arg);
        } else {
            usageErr("unexpected argument '%s'", arg);
        }
    }

    return port;
}
