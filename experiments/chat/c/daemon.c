/* daemon.c

   Running in the background, and the pid file. See daemon.h.
*/
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemon.h"
#include "error_functions.h"
#include "rdwrn.h"

/* In the original process: wait for the daemon's "ready" byte. */
static void
waitUntilReady(int readFd, pid_t child)
{
    char c;
    ssize_t numRead;

    /* The first child exits at once, after its own fork(). */
    while (waitpid(child, NULL, 0) == -1 && errno == EINTR)
        continue;
    do
        numRead = read(readFd, &c, 1);
    while (numRead == -1 && errno == EINTR);
    _exit(numRead == 1 ? EXIT_SUCCESS : EXIT_FAILURE);
}

int
becomeDaemon(void)
{
    int pfd[2], fd;
    pid_t pid;

    if (pipe(pfd) == -1)
        errExit("pipe");

    pid = fork();
    if (pid == -1)
        errExit("fork");
    if (pid != 0) {                 /* Original process */
        if (close(pfd[1]) == -1)
            errExit("close");
        waitUntilReady(pfd[0], pid);
    }

    if (close(pfd[0]) == -1)
        errExit("close");
    if (setsid() == -1)             /* Leave the terminal's session */
        errExit("setsid");

    switch (fork()) {               /* Not a session leader: can never */
    case -1:                        /* acquire a controlling terminal */
        errExit("fork");
    case 0:
        break;
    default:
        _exit(EXIT_SUCCESS);
    }

    if (chdir("/") == -1)
        errExit("chdir /");
    fd = open("/dev/null", O_RDWR);
    if (fd == -1)
        errExit("open /dev/null");
    if (dup2(fd, STDIN_FILENO) == -1 || dup2(fd, STDOUT_FILENO) == -1)
        errExit("dup2");
    if (fd > STDERR_FILENO && close(fd) == -1)
        errExit("close");

    return pfd[1];
}

void
notifyReady(int readyFd)
{
    if (writen(readyFd, "r", 1) != 1)
        errMsg("cannot tell the starting process that the server is ready");
    if (close(readyFd) == -1)
        errExit("close");
}

void
writePidFile(const char *path)
{
    char text[32];
    int fd, len;

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOCTTY,
              S_IRUSR | S_IWUSR | S_IRGRP | S_IROTH);
    if (fd == -1)
        fatal("cannot write pid file %s: %s", path, errorText(errno));
    len = snprintf(text, sizeof(text), "%ld\n", (long) getpid());
    if (writen(fd, text, (size_t) len) != len || close(fd) == -1)
        fatal("cannot write pid file %s: %s", path, errorText(errno));
}
