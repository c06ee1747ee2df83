/* key_file.h

   Loading of the shared key.
*/
#ifndef KEY_FILE_H
#define KEY_FILE_H

#include "settings.h"

/* Read the key in 'path' into 'key'. The file must be a regular file that
   neither group nor others may access in any way (mode 0600 or stricter,
   as ssh demands of private keys), holding exactly KEY_LENGTH printable
   ASCII characters, optionally followed by one newline. Anything else is
   fatal, with a message saying what to do. */
void loadKey(const char *path, char key[KEY_LENGTH]);

#endif
