/* daemon.h

   Running in the background, and the pid file.
*/
#ifndef DAEMON_H
#define DAEMON_H

/* Detach from the terminal and the session: fork, setsid(), fork again,
   chdir("/"), stdin and stdout to /dev/null (stderr is kept: redirect it
   to keep the server's messages). The original process waits until the
   daemon calls notifyReady() and then exits 0, or exits 1 if the daemon
   ends first (its error message is on stderr). Returns, in the daemon,
   the descriptor to pass to notifyReady(). */
int becomeDaemon(void);

/* Tell the process that started the daemon that the server is ready. */
void notifyReady(int readyFd);

/* Write the calling process's ID and a newline to 'path'. Fatal on error. */
void writePidFile(const char *path);

#endif
