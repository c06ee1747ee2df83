/* error_functions.c

   Implementation of the diagnostic helpers declared in error_functions.h.
*/
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error_functions.h"
#include "options.h"

#define MSG_SIZE 512

static void outputError(int useErr, int savedErrno, const char *format,
                        va_list ap) PRINTF_LIKE(3, 0);

/* Format the caller's message, optionally followed by the text for
   'savedErrno', and write it to stderr as a single line with one call. */
static void
outputError(int useErr, int savedErrno, const char *format, va_list ap)
{
    char userMsg[MSG_SIZE];

    vsnprintf(userMsg, sizeof(userMsg), format, ap);
    if (useErr)
        fprintf(stderr, "%s: %s: %s\n", PROGRAM_NAME, userMsg,
                strerror(savedErrno));
    else
        fprintf(stderr, "%s: %s\n", PROGRAM_NAME, userMsg);
}

void
errMsg(const char *format, ...)
{
    va_list argList;
    int savedErrno = errno;

    va_start(argList, format);
    outputError(1, savedErrno, format, argList);
    va_end(argList);

    errno = savedErrno;
}

void
errExit(const char *format, ...)
{
    va_list argList;
    int savedErrno = errno;

    va_start(argList, format);
    outputError(1, savedErrno, format, argList);
    va_end(argList);

    exit(EXIT_FAILURE);             /* exit() flushes stdio buffers */
}

void
usageErr(const char *format, ...)
{
    va_list argList;

    va_start(argList, format);
    outputError(0, 0, format, argList);
    va_end(argList);

    printUsage(stderr);
    exit(2);
}
