/* auth.h

   Authentication of a client by the shared key.
*/
#ifndef AUTH_H
#define AUTH_H

#include "settings.h"

/* Read exactly KEY_LENGTH bytes from 'cfd' (looping over short reads)
   within 'timeoutMs' milliseconds in all, and compare them with 'key' in
   constant time. Returns 1 if they match. Otherwise logs why, naming the
   client 'peer', and returns 0; the caller then closes the connection
   without sending anything. Nothing beyond the key is read. */
int authenticate(int cfd, const char key[KEY_LENGTH], long timeoutMs,
                 const char *peer);

#endif
