/* config_file.c

   Reading of the config file. See config_file.h.
*/
#include <sys/types.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_file.h"
#include "error_functions.h"

static int
isBlank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* Strip blanks from both ends of 'str', in place; return its new start. */
static char *
trim(char *str)
{
    size_t len;

    while (isBlank(*str))
        str++;
    len = strlen(str);
    while (len > 0 && isBlank(str[len - 1]))
        str[--len] = '\0';
    return str;
}

/* The folder of 'path' (absolute), as a new string. */
static char *
folderOf(const char *path)
{
    char *abs = absolutePath(path);
    char *slash = strrchr(abs, '/');

    if (slash == abs)               /* "/file": the root */
        slash[1] = '\0';
    else
        *slash = '\0';
    return abs;
}

/* Apply one line that is neither empty nor a comment. */
static void
applyLine(struct Settings *st, const char *path, long lineNum, char *line,
          const char *folder)
{
    struct Settings scratch;
    char *eq, *key, *value;
    const char *expected;
    int j, which = -1;

    eq = strchr(line, '=');
    if (eq == NULL)
        fatal("%s line %ld: expected KEY=value", path, lineNum);
    *eq = '\0';
    key = trim(line);
    value = trim(eq + 1);

    for (j = 0; j < NUM_SETTINGS; j++)
        if (strcmp(key, settingKey((enum Setting) j)) == 0)
            which = j;
    if (which == -1)
        fatal("%s line %ld: unknown key '%s' (known keys: PORT KEY_FILE LOG "
              "HISTORY MAX_CLIENTS AUTH_TIMEOUT USER)", path, lineNum, key);

    /* 'line' is reused for the next line: keep a copy of the value. A
       relative path is relative to the config file's folder. */
    if ((which == SET_KEY_FILE || which == SET_LOG) && value[0] != '\0')
        value = joinPath(folder, value);
    else
        value = copyString(value);

    /* Every value is checked, even one that the command line overrides. */
    scratch = *st;
    expected = applySetting(&scratch, (enum Setting) which, value);
    if (expected != NULL)
        fatal("%s line %ld: invalid value '%s' for %s: expected %s", path,
              lineNum, value, key, expected);
    if (!st->fromCommandLine[which])
        *st = scratch;
}

void
readConfigFile(struct Settings *st)
{
    const char *path = st->configPath;
    FILE *fp;
    char *line = NULL, *text, *folder;
    size_t size = 0;
    ssize_t len;
    long lineNum = 0;

    fp = fopen(path, "r");
    if (fp == NULL)
        fatal("cannot read config file %s: %s", path, errorText(errno));
    folder = folderOf(path);

    for (;;) {
        len = getline(&line, &size, fp);
        if (len == -1) {
            if (ferror(fp))
                fatal("cannot read config file %s: %s", path,
                      errorText(errno));
            break;                  /* End of file */
        }
        lineNum++;
        if (memchr(line, '\0', (size_t) len) != NULL)
            fatal("%s line %ld: contains a NUL byte", path, lineNum);
        if (len > 0 && line[len - 1] == '\n')
            line[len - 1] = '\0';
        text = trim(line);
        if (text[0] == '\0' || text[0] == '#')
            continue;
        applyLine(st, path, lineNum, text, folder);
    }

    free(line);
    free(folder);
    if (fclose(fp) == EOF)
        fatal("cannot read config file %s: %s", path, errorText(errno));
}
