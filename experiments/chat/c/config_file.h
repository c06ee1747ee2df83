/* config_file.h

   The server's config file: "KEY=value" lines.
*/
#ifndef CONFIG_FILE_H
#define CONFIG_FILE_H

#include "settings.h"

/* Read st->configPath and apply every setting that the command line did
   not set. The format: one KEY=value per line; spaces and tabs around
   the key and the value are ignored, as are empty lines and lines
   starting with '#'. Keys: PORT KEY_FILE LOG HISTORY MAX_CLIENTS
   AUTH_TIMEOUT USER. A relative KEY_FILE or LOG is relative to the config
   file's folder. Any error is fatal, with a message naming the file and
   line. */
void readConfigFile(struct Settings *st);

#endif
