/* settings.h

   The server's settings: their defaults, their limits, and the checks
   shared by the command line (options.c) and the config file
   (config_file.c). The Go server (../go) has the same settings, limits
   and messages.
*/
#ifndef SETTINGS_H
#define SETTINGS_H

#define KEY_LENGTH 128              /* Bytes of the shared key */
#define MAX_LINE 4096               /* Longest line, newline included */

#define DEFAULT_PORT 7000
#define DEFAULT_KEY_FILE "/etc/papaya/chat.key"
#define DEFAULT_LOG "/var/lib/papaya/chat.log"
#define DEFAULT_HISTORY 7
#define DEFAULT_MAX_CLIENTS 512
#define DEFAULT_AUTH_TIMEOUT_MS 1000
#define DEFAULT_USER "papaya"

#define MAX_HISTORY 1000000
#define MAX_MAX_CLIENTS 100000
#define MAX_AUTH_TIMEOUT_MS 3600000

/* The settings that both the command line and the config file can set.
   The order is that of the usage text. */
enum Setting {
    SET_PORT, SET_KEY_FILE, SET_LOG, SET_HISTORY, SET_MAX_CLIENTS,
    SET_AUTH_TIMEOUT, SET_USER, NUM_SETTINGS
};

struct Settings {
    long port;                  /* 0 lets the kernel choose */
    char *keyFile;
    char *logPath;
    long history;               /* Lines sent on connecting */
    long maxClients;
    long authTimeoutMs;
    char *user;                 /* NULL: not given */
    char *configPath;           /* NULL: no config file */
    char *pidFile;              /* NULL: no pid file */
    int daemon;
    int ipv6;
    int fromCommandLine[NUM_SETTINGS];  /* The command line wins */
};

/* The command-line option ("--port") and config key ("PORT") of 's'. */
const char *settingOption(enum Setting s);
const char *settingKey(enum Setting s);

/* Fill 'st' with the defaults. */
void initSettings(struct Settings *st);

/* Set 'which' in 'st' from the text 'value'. Returns NULL on success, or
   what was expected ("an integer from 0 to 65535") if 'value' is not
   valid. Strings are stored as given (not copied). */
const char *applySetting(struct Settings *st, enum Setting which,
                         char *value);

/* A copy of 'str' (malloc()ed; out of memory is fatal). */
char *copyString(const char *str);

/* 'path' made absolute against the current directory (a new string). */
char *absolutePath(const char *path);

/* 'path' if absolute, else "dir/path" (a new string). */
char *joinPath(const char *dir, const char *path);

/* Make the key file, log and pid file paths absolute, so that they still
   name the same files after a daemon's chdir("/"). */
void finishSettings(struct Settings *st);

#endif
