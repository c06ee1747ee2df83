/* error_functions.h

   Diagnostic helpers in the style of TLPI's error_functions.h. Every
   message is one line on stderr, prefixed with the program name, so that
   lines from concurrently running children do not interleave.
*/
#ifndef ERROR_FUNCTIONS_H
#define ERROR_FUNCTIONS_H

#define PROGRAM_NAME "c-fork"

#if defined(__GNUC__) || defined(__clang__)
#define NORETURN __attribute__ ((__noreturn__))
#define PRINTF_LIKE(f, a) __attribute__ ((__format__ (__printf__, f, a)))
#else
#define NORETURN
#define PRINTF_LIKE(f, a)
#endif

/* Print "c-fork: <message>: <strerror(errno)>"; errno is preserved. */
void errMsg(const char *format, ...) PRINTF_LIKE(1, 2);

/* As errMsg(), then flush stdio and exit(EXIT_FAILURE). */
void errExit(const char *format, ...) PRINTF_LIKE(1, 2) NORETURN;

/* Print "c-fork: <message>" plus the usage text, then exit(2). */
void usageErr(const char *format, ...) PRINTF_LIKE(1, 2) NORETURN;

#endif
