/* options.c

   Command-line parsing for the c-fork server. Accepted forms:

       -p N   -pN   --port N   --port=N   --output MODE   --output=MODE
       --buffer-size N   --buffer-size=N   -h   --help   --

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
    fprintf(stream, "Usage: %s [--port N | -p N] [--output MODE] "
            "[--buffer-size N]\n"
            "  -p, --port N         TCP port to listen on (default %d; 0 = any)\n"
            "      --output MODE    paper (default: the original's record per "
            "read),\n"
            "                       discard (no output), same (the bytes only, "
            "%d-byte buffer)\n"
            "      --buffer-size N  bytes per read() (default %d)\n"
            "  -h, --help           show this help and exit\n",
            PROGRAM_NAME, DEFAULT_PORT, SAME_BUF_SIZE, DEFAULT_BUF_SIZE);
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

static enum OutputMode
parseOutput(const char *str)
{
    if (strcmp(str, "paper") == 0)
        return OUTPUT_PAPER;
    if (strcmp(str, "discard") == 0)
        return OUTPUT_DISCARD;
    if (strcmp(str, "same") == 0)
        return OUTPUT_SAME;
    usageErr("invalid output mode '%s' (paper, discard or same)", str);
}

static size_t
parseBufSize(const char *str)
{
    char *endptr;
    long val;

    if (*str < '0' || *str > '9')
        usageErr("invalid buffer size '%s'", str);

    errno = 0;
    val = strtol(str, &endptr, 10);
    if (errno != 0 || *endptr != '\0' || val < 1 || val > MAX_BUF_SIZE)
        usageErr("invalid buffer size '%s' (1 to %d)", str, MAX_BUF_SIZE);

    return (size_t) val;
}

void
parseOptions(int argc, char *argv[], struct ServerOptions *opts)
{
    int j;

    opts->port = DEFAULT_PORT;
    opts->output = OUTPUT_PAPER;
    opts->bufSize = DEFAULT_BUF_SIZE;

    for (j = 1; j < argc; j++) {
        const char *arg = argv[j];

        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            printUsage(stdout);
            exit(EXIT_SUCCESS);
        } else if (strcmp(arg, "-p") == 0 || strcmp(arg, "--port") == 0) {
            if (j + 1 >= argc)
                usageErr("option '%s' requires an argument", arg);
            opts->port = parsePort(argv[++j]);
        } else if (strncmp(arg, "--port=", 7) == 0) {
            opts->port = parsePort(arg + 7);
        } else if (strncmp(arg, "-p", 2) == 0 && arg[2] >= '0' &&
                   arg[2] <= '9') {
            opts->port = parsePort(arg + 2);
        } else if (strcmp(arg, "--output") == 0) {
            if (j + 1 >= argc)
                usageErr("option '%s' requires an argument", arg);
            opts->output = parseOutput(argv[++j]);
        } else if (strncmp(arg, "--output=", 9) == 0) {
            opts->output = parseOutput(arg + 9);
        } else if (strcmp(arg, "--buffer-size") == 0) {
            if (j + 1 >= argc)
                usageErr("option '%s' requires an argument", arg);
            opts->bufSize = parseBufSize(argv[++j]);
        } else if (strncmp(arg, "--buffer-size=", 14) == 0) {
            opts->bufSize = parseBufSize(arg + 14);
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
}
