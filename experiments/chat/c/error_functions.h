/* error_functions.h

   Diagnostic helpers in the style of TLPI's error_functions.h. Every
   message is one line on stderr, prefixed with the program name and
   written with a single write(), so that lines from the server's many
   processes never interleave. None of them uses stdio, so they are safe
   in any process after fork().
*/
#ifndef ERROR_FUNCTIONS_H
#define ERROR_FUNCTIONS_H

#define PROGRAM_NAME "papaya-chatd"

#if defined(__GNUC__) || defined(__clang__)
#define NORETURN __attribute__ ((__noreturn__))
#define PRINTF_LIKE(f, a) __attribute__ ((__format__ (__printf__, f, a)))
#else
#define NORETURN
#define PRINTF_LIKE(f, a)
#endif

/* Print "papaya-chatd: <message>". */
void logMsg(const char *format, ...) PRINTF_LIKE(1, 2);

/* Print "papaya-chatd: <message>: <strerror(errno)>"; errno is preserved. */
void errMsg(const char *format, ...) PRINTF_LIKE(1, 2);

/* As errMsg(), then _exit(EXIT_FAILURE). */
void errExit(const char *format, ...) PRINTF_LIKE(1, 2) NORETURN;

/* As logMsg(), then _exit(EXIT_FAILURE): a start-up error that is not a
   failed system call (bad key file, unknown user, ...). */
void fatal(const char *format, ...) PRINTF_LIKE(1, 2) NORETURN;

/* Print "papaya-chatd: <message>" and the usage text, then exit(2). */
void usageErr(const char *format, ...) PRINTF_LIKE(1, 2) NORETURN;

/* The text for an errno value, with its first letter in upper case (the
   Go server prints the same text for the same error). */
const char *errorText(int errnum);

#endif
