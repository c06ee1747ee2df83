/* chat_log.h

   The chat log: one append-only file of lines, the server's only store.

   Every process that uses the log opens it itself, so that it has its
   own open file description: its own offset (reads use pread() at an
   offset the process keeps) and its own flock() lock, which therefore
   excludes the other processes. Writers append whole lines, each with one
   write() to a descriptor opened with O_APPEND, under an exclusive lock;
   readers read under a shared lock. So a reader never sees part of a
   line, and lines never interleave.
*/
#ifndef CHAT_LOG_H
#define CHAT_LOG_H

#include <sys/types.h>

/* Create the log if it does not exist (mode 0600), check that it is a
   regular file, and, if it does not end with a newline (a line cut short
   by a crash or another program), append one so that the next line
   starts on a line of its own. Errors are fatal. */
void prepareLog(const char *path);

/* Open the log for appending (O_APPEND) or for reading. -1 on error. */
int openLogForAppend(const char *path);
int openLogForReading(const char *path);

/* The offset where the last 'lines' lines of the log begin (0 if it has
   fewer), found under a shared lock: everything from there on is what a
   client that has just authenticated is sent. -1 on error. */
off_t historyStart(int fd, long lines);

/* Append the 'len' bytes at 'data', which are whole lines ending in
   '\n', each with one write(), under one exclusive lock. If a write
   fails (disk full, ...), the log is cut back to its last whole line.
   Returns 0, or -1 with errno set. */
int appendLines(int fd, const char *data, size_t len);

/* Read up to 'size' bytes at 'offset' under a shared lock. Returns the
   number of bytes read (0 at the end of the log), or -1. */
ssize_t readLog(int fd, char *buf, size_t size, off_t offset);

#endif
