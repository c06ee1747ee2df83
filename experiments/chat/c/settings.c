/* settings.c

   Defaults, limits and checks of the server's settings. See settings.h.

   Numbers are plain decimal digits, with no sign or spaces, so that the C
   and Go servers accept exactly the same texts.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error_functions.h"
#include "settings.h"

static const char *const optionNames[NUM_SETTINGS] = {
    "--port", "--key-file", "--log", "--history", "--max-clients",
    "--auth-timeout", "--user"
};

static const char *const keyNames[NUM_SETTINGS] = {
    "PORT", "KEY_FILE", "LOG", "HISTORY", "MAX_CLIENTS", "AUTH_TIMEOUT",
    "USER"
};

const char *
settingOption(enum Setting s)
{
    return optionNames[s];
}

const char *
settingKey(enum Setting s)
{
    return keyNames[s];
}

void
initSettings(struct Settings *st)
{
    int j;

    st->port = DEFAULT_PORT;
    st->keyFile = (char *) DEFAULT_KEY_FILE;
    st->logPath = (char *) DEFAULT_LOG;
    st->history = DEFAULT_HISTORY;
    st->maxClients = DEFAULT_MAX_CLIENTS;
    st->authTimeoutMs = DEFAULT_AUTH_TIMEOUT_MS;
    st->user = NULL;
    st->configPath = NULL;
    st->pidFile = NULL;
    st->daemon = 0;
    st->ipv6 = 0;
    for (j = 0; j < NUM_SETTINGS; j++)
        st->fromCommandLine[j] = 0;
}

/* Parse 'str', one to nine decimal digits, into '*val'; -1 if not. */
static int
parseDigits(const char *str, size_t maxDigits, long *val)
{
    size_t j;
    long v = 0;

    if (str[0] == '\0')
        return -1;
    for (j = 0; str[j] != '\0'; j++) {
        if (str[j] < '0' || str[j] > '9' || j >= maxDigits)
            return -1;
        v = v * 10 + (str[j] - '0');
    }
    *val = v;
    return 0;
}

/* An integer in [min, max], as decimal digits only. */
static int
parseInteger(const char *str, long min, long max, long *val)
{
    long v;

    if (parseDigits(str, 9, &v) == -1 || v < min || v > max)
        return -1;
    *val = v;
    return 0;
}

/* Seconds as "S" or "S.F" with one to three decimals, in milliseconds,
   within [1, MAX_AUTH_TIMEOUT_MS]. */
static int
parseSeconds(const char *str, long *ms)
{
    const char *dot;
    char whole[16];
    long secs, frac = 0;
    size_t fracLen = 0, j;

    dot = strchr(str, '.');
    if (dot == NULL) {
        if (parseDigits(str, 9, &secs) == -1)
            return -1;
    } else {
        if ((size_t) (dot - str) >= sizeof(whole))
            return -1;
        memcpy(whole, str, (size_t) (dot - str));
        whole[dot - str] = '\0';
        if (parseDigits(whole, 9, &secs) == -1 ||
                parseDigits(dot + 1, 3, &frac) == -1)
            return -1;
        fracLen = strlen(dot + 1);
        for (j = fracLen; j < 3; j++)
            frac *= 10;
    }
    if (secs > MAX_AUTH_TIMEOUT_MS / 1000)
        return -1;
    *ms = secs * 1000 + frac;
    if (*ms < 1 || *ms > MAX_AUTH_TIMEOUT_MS)
        return -1;
    return 0;
}

const char *
applySetting(struct Settings *st, enum Setting which, char *value)
{
    switch (which) {
    case SET_PORT:
        if (parseInteger(value, 0, 65535, &st->port) == -1)
            return "an integer from 0 to 65535";
        break;
    case SET_HISTORY:
        if (parseInteger(value, 0, MAX_HISTORY, &st->history) == -1)
            return "an integer from 0 to 1000000";
        break;
    case SET_MAX_CLIENTS:
        if (parseInteger(value, 1, MAX_MAX_CLIENTS, &st->maxClients) == -1)
            return "an integer from 1 to 100000";
        break;
    case SET_AUTH_TIMEOUT:
        if (parseSeconds(value, &st->authTimeoutMs) == -1)
            return "a number of seconds from 0.001 to 3600, "
                   "with at most 3 decimals";
        break;
    case SET_KEY_FILE:
    case SET_LOG:
        if (value[0] == '\0')
            return "a path";
        if (which == SET_KEY_FILE)
            st->keyFile = value;
        else
            st->logPath = value;
        break;
    case SET_USER:
        if (value[0] == '\0')
            return "a user name";
        st->user = value;
        break;
    case NUM_SETTINGS:
        break;
    }
    return NULL;
}

char *
copyString(const char *str)
{
    size_t len = strlen(str) + 1;
    char *copy = malloc(len);

    if (copy == NULL)
        errExit("malloc");
    memcpy(copy, str, len);
    return copy;
}

char *
joinPath(const char *dir, const char *path)
{
    size_t dirLen, pathLen;
    char *joined;
    int slash;

    if (path[0] == '/')
        return copyString(path);
    dirLen = strlen(dir);
    pathLen = strlen(path);
    slash = (dirLen == 0 || dir[dirLen - 1] != '/');
    joined = malloc(dirLen + (size_t) slash + pathLen + 1);
    if (joined == NULL)
        errExit("malloc");
    memcpy(joined, dir, dirLen);
    if (slash)
        joined[dirLen] = '/';
    memcpy(joined + dirLen + slash, path, pathLen + 1);
    return joined;
}

char *
absolutePath(const char *path)
{
    size_t size = 256;
    char *cwd, *joined;

    if (path[0] == '/')
        return copyString(path);
    for (;;) {                      /* getcwd() with a growing buffer */
        cwd = malloc(size);
        if (cwd == NULL)
            errExit("malloc");
        if (getcwd(cwd, size) != NULL)
            break;
        if (errno != ERANGE)
            errExit("getcwd");
        free(cwd);
        size *= 2;
    }
    joined = joinPath(cwd, path);
    free(cwd);
    return joined;
}

void
finishSettings(struct Settings *st)
{
    st->keyFile = absolutePath(st->keyFile);
    st->logPath = absolutePath(st->logPath);
    if (st->pidFile != NULL)
        st->pidFile = absolutePath(st->pidFile);
}
