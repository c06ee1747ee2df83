/* options.c

   Command-line parsing for papaya-chatd. Every option is long, and one
   that takes a value accepts both "--name VALUE" and "--name=VALUE":

       --port N  --key-file PATH  --log PATH  --history N  --max-clients N
       --auth-timeout SECONDS  --user NAME  --config PATH  --pid-file PATH
       --ipv6  --foreground  --daemon  -h  --help  --

   getopt() is not used because POSIX getopt() has no long options. When
   an option is repeated, the last one wins.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error_functions.h"
#include "options.h"

void
printUsage(FILE *stream)
{
    fprintf(stream,
"Usage: %s [OPTION]...\n"
"A chat room server: each client sends the shared 128-byte key, then lines;\n"
"every line is appended to the chat log and sent to every client.\n"
"\n"
"  --port N              TCP port to listen on (default 7000; 0 = any)\n"
"  --key-file PATH       the shared key: 128 printable ASCII characters, mode\n"
"                        0600 or stricter (default /etc/papaya/chat.key)\n"
"  --log PATH            the chat log, created if missing\n"
"                        (default /var/lib/papaya/chat.log)\n"
"  --history N           log lines sent to a client on connecting (default 7)\n"
"  --max-clients N       clients at once; more are refused (default 512)\n"
"  --auth-timeout SECS   time a client has to send the key (default 1)\n"
"  --user NAME           user to run as when started as root (default papaya)\n"
"  --ipv6                listen on [::] (IPv6 only) instead of 0.0.0.0\n"
"  --config PATH         read KEY=value settings; the command line wins\n"
"                        (keys: PORT KEY_FILE LOG HISTORY MAX_CLIENTS\n"
"                        AUTH_TIMEOUT USER)\n"
"  --foreground          stay in the foreground (the default)\n"
"  --daemon              run in the background once listening\n"
"  --pid-file PATH       write the server's process ID to PATH\n"
"  -h, --help            show this help and exit\n",
            PROGRAM_NAME);
}

/* The options that take a value but are not settings of the config file. */
enum { OPT_CONFIG = NUM_SETTINGS, OPT_PID_FILE, NUM_VALUE_OPTIONS };

static const char *
optionName(int opt)
{
    if (opt == OPT_CONFIG)
        return "--config";
    if (opt == OPT_PID_FILE)
        return "--pid-file";
    return settingOption((enum Setting) opt);
}

/* The index of the value option 'name' (its first 'len' characters), or
   -1 if there is none. */
static int
valueOption(const char *name, size_t len)
{
    int j;
    const char *optName;

    for (j = 0; j < NUM_VALUE_OPTIONS; j++) {
        optName = optionName(j);
        if (strlen(optName) == len && strncmp(name, optName, len) == 0)
            return j;
    }
    return -1;
}

/* Is 'name' (its first 'len' characters) the flag 'flag'? */
static int
isFlag(const char *name, size_t len, const char *flag)
{
    return strlen(flag) == len && strncmp(name, flag, len) == 0;
}

static void
setValue(struct Settings *st, int opt, const char *name, char *value)
{
    const char *expected;

    if (opt == OPT_CONFIG || opt == OPT_PID_FILE) {
        if (value[0] == '\0')
            usageErr("invalid value '' for %s: expected a path", name);
        if (opt == OPT_CONFIG)
            st->configPath = value;
        else
            st->pidFile = value;
        return;
    }
    expected = applySetting(st, (enum Setting) opt, value);
    if (expected != NULL)
        usageErr("invalid value '%s' for %s: expected %s", value, name,
                 expected);
    st->fromCommandLine[opt] = 1;
}

void
parseCommandLine(int argc, char *argv[], struct Settings *st)
{
    int j, opt;
    char *arg, *eq;
    size_t nameLen;

    for (j = 1; j < argc; j++) {
        arg = argv[j];

        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            printUsage(stdout);
            if (fflush(stdout) == EOF)
                exit(EXIT_FAILURE);
            exit(EXIT_SUCCESS);
        }
        if (strcmp(arg, "--") == 0) {
            if (j + 1 < argc)
                usageErr("unexpected argument '%s'", argv[j + 1]);
            break;
        }
        if (arg[0] != '-')
            usageErr("unexpected argument '%s'", arg);

        eq = strchr(arg, '=');
        nameLen = (eq != NULL) ? (size_t) (eq - arg) : strlen(arg);

        if (isFlag(arg, nameLen, "--ipv6")) {
            opt = -2;
        } else if (isFlag(arg, nameLen, "--daemon")) {
            opt = -3;
        } else if (isFlag(arg, nameLen, "--foreground")) {
            opt = -4;
        } else {
            opt = valueOption(arg, nameLen);
            if (opt == -1)
                usageErr("unknown option '%.*s'", (int) nameLen, arg);
        }

        if (opt < -1) {                     /* A flag */
            if (eq != NULL)
                usageErr("option '%.*s' takes no value", (int) nameLen, arg);
            if (opt == -2)
                st->ipv6 = 1;
            else
                st->daemon = (opt == -3);
            continue;
        }

        if (eq != NULL) {
            setValue(st, opt, optionName(opt), eq + 1);
        } else {
            if (j + 1 >= argc)
                usageErr("option '%s' requires a value", arg);
            setValue(st, opt, optionName(opt), argv[++j]);
        }
    }
}
