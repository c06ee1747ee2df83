/* error_functions.c

   Implementation of the diagnostic helpers declared in error_functions.h.
*/
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error_functions.h"
#include "options.h"

#define MSG_SIZE 1024

static void outputLine(int useErr, int savedErrno, const char *format,
                       va_list ap) PRINTF_LIKE(3, 0);

const char *
errorText(int errnum)
{
    static char text[256];

    snprintf(text, sizeof(text), "%s", strerror(errnum));
    if (text[0] >= 'a' && text[0] <= 'z')
        text[0] = (char) (text[0] - 'a' + 'A');
    return text;
}

/* Format the caller's message, optionally followed by the text for
   'savedErrno', and write it to stderr as one line with one write(). */
static void
outputLine(int useErr, int savedErrno, const char *format, va_list ap)
{
    char msg[MSG_SIZE];
    size_t len;
    ssize_t numWritten;
    int n;

    n = snprintf(msg, sizeof(msg), "%s: ", PROGRAM_NAME);
    len = (n > 0) ? (size_t) n : 0;
    n = vsnprintf(msg + len, sizeof(msg) - len, format, ap);
    if (n > 0)
        len += (size_t) n;
    if (len > sizeof(msg) - 2)              /* Truncated: keep the newline */
        len = sizeof(msg) - 2;
    if (useErr) {
        n = snprintf(msg + len, sizeof(msg) - len, ": %s",
                     errorText(savedErrno));
        if (n > 0)
            len += (size_t) n;
        if (len > sizeof(msg) - 2)
            len = sizeof(msg) - 2;
    }
    msg[len++] = '\n';

    /* stderr may be a pipe shared by every process of the server; a
       single write() of a short line is not split. Nothing more can be
       done if it fails. */
    for (;;) {
        numWritten = write(STDERR_FILENO, msg, len);
        if (numWritten == -1 && errno == EINTR)
            continue;
        break;
    }
}

void
logMsg(const char *format, ...)
{
    va_list argList;
    int savedErrno = errno;

    va_start(argList, format);
    outputLine(0, 0, format, argList);
    va_end(argList);

    errno = savedErrno;
}

void
errMsg(const char *format, ...)
{
    va_list argList;
    int savedErrno = errno;

    va_start(argList, format);
    outputLine(1, savedErrno, format, argList);
    va_end(argList);

    errno = savedErrno;
}

void
errExit(const char *format, ...)
{
    va_list argList;
    int savedErrno = errno;

    va_start(argList, format);
    outputLine(1, savedErrno, format, argList);
    va_end(argList);

    _exit(EXIT_FAILURE);
}

void
fatal(const char *format, ...)
{
    va_list argList;

    va_start(argList, format);
    outputLine(0, 0, format, argList);
    va_end(argList);

    _exit(EXIT_FAILURE);
}

void
usageErr(const char *format, ...)
{
    va_list argList;

    va_start(argList, format);
    outputLine(0, 0, format, argList);
    va_end(argList);

    printUsage(stderr);
    exit(2);
}
