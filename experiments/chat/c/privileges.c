/* privileges.c

   The user the server runs as. See privileges.h.

   initgroups() is not in POSIX.1 but every Unix has it (4.2BSD): this file
   alone asks for the system's full interface.
*/
#undef _POSIX_C_SOURCE
#define _DEFAULT_SOURCE                 /* glibc, musl; FreeBSD needs nothing */

#include <sys/types.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "error_functions.h"
#include "privileges.h"
#include "settings.h"

/* getpwnam(), telling "no such user" from a failed lookup. */
static struct passwd *
lookUpUser(const char *name)
{
    struct passwd *pw;

    errno = 0;
    pw = getpwnam(name);
    if (pw == NULL && errno != 0 && errno != ENOENT && errno != ESRCH &&
            errno != EBADF && errno != EPERM)
        fatal("cannot look up user '%s': %s", name, errorText(errno));
    return pw;
}

void
resolveUser(const char *user, struct RunAs *runAs)
{
    struct passwd *pw;

    runAs->change = 0;
    if (geteuid() != 0) {
        if (user == NULL)
            return;                 /* Run as whoever started the server */
        pw = lookUpUser(user);
        if (pw == NULL)
            fatal("unknown user '%s'", user);
        if (pw->pw_uid != geteuid())
            fatal("cannot run as user '%s': only root can change user",
                  user);
        return;
    }

    pw = lookUpUser(user != NULL ? user : DEFAULT_USER);
    if (pw == NULL) {
        if (user != NULL)
            fatal("unknown user '%s'", user);
        fatal("started as root, and the default user '%s' does not exist: "
              "create it, or name the user to run as with --user NAME "
              "(USER= in the config file)", DEFAULT_USER);
    }
    if (pw->pw_uid == 0)
        fatal("refusing to serve clients as root: user '%s' has user ID 0; "
              "name an unprivileged user with --user NAME", pw->pw_name);
    if (strlen(pw->pw_name) >= sizeof(runAs->name))
        fatal("user name '%s' is too long", pw->pw_name);

    runAs->change = 1;
    runAs->uid = pw->pw_uid;
    runAs->gid = pw->pw_gid;
    strcpy(runAs->name, pw->pw_name);
}

void
dropPrivileges(const struct RunAs *runAs)
{
    if (!runAs->change)
        return;

    /* Groups first: once the user ID has changed, they cannot be. */
    if (initgroups(runAs->name, runAs->gid) == -1)
        errExit("initgroups %s", runAs->name);
    if (setgid(runAs->gid) == -1)
        errExit("setgid %ld", (long) runAs->gid);
    if (setuid(runAs->uid) == -1)
        errExit("setuid %ld", (long) runAs->uid);

    if (setuid(0) != -1 || geteuid() == 0 || getuid() == 0)
        fatal("could not drop root privileges");
}
