/* privileges.h

   The user the server runs as.
*/
#ifndef PRIVILEGES_H
#define PRIVILEGES_H

#include <sys/types.h>

struct RunAs {
    int change;                 /* Started as root: switch to this user */
    uid_t uid;
    gid_t gid;
    char name[64];
};

/* Decide whom to run as. As root: the user 'user' names, or "papaya" when
   'user' is NULL; a missing user, or one with user ID 0, is fatal (the
   server never serves clients as root). Not as root: 'user', if given,
   must be the current user (only root can change user). */
void resolveUser(const char *user, struct RunAs *runAs);

/* Switch to runAs's user and its groups, if runAs->change, and check
   that root privileges cannot be regained. Fatal on error. */
void dropPrivileges(const struct RunAs *runAs);

#endif
