/* client.h

   The life of one client connection, in the process the server forked
   for it.
*/
#ifndef CLIENT_H
#define CLIENT_H

#include "error_functions.h"        /* NORETURN */
#include "settings.h"

/* Authenticate the client on 'cfd' (named 'peer' in messages); if the
   key is right, work out where its history begins, fork its SEND process
   and become its RECV process; when the client leaves, end the SEND and
   _exit(). */
void serveClient(int cfd, const char *peer, const struct Settings *st,
                 const char key[KEY_LENGTH]) NORETURN;

#endif
