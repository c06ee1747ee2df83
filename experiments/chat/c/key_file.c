/* key_file.c

   Loading of the shared key. See key_file.h.
*/
#include <sys/types.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "error_functions.h"
#include "key_file.h"

#define READ_LIMIT 4096         /* Larger files: their size is the length */

void
loadKey(const char *path, char key[KEY_LENGTH])
{
    char buf[READ_LIMIT];
    struct stat sb;
    size_t total = 0;
    ssize_t numRead;
    long length;
    int fd, j;

    fd = open(path, O_RDONLY | O_NOCTTY);
    if (fd == -1)
        fatal("cannot read key file %s: %s", path, errorText(errno));
    if (fstat(fd, &sb) == -1)
        fatal("cannot read key file %s: %s", path, errorText(errno));
    if (!S_ISREG(sb.st_mode))
        fatal("key file %s is not a regular file", path);
    if ((sb.st_mode & (S_IRWXG | S_IRWXO)) != 0)
        fatal("key file %s has mode %04lo, which lets others read it; "
              "run: chmod 600 %s", path,
              (unsigned long) (sb.st_mode & 07777), path);

    while (total < READ_LIMIT) {
        numRead = read(fd, buf + total, READ_LIMIT - total);
        if (numRead == -1) {
            if (errno == EINTR)
                continue;
            fatal("cannot read key file %s: %s", path, errorText(errno));
        }
        if (numRead == 0)
            break;
        total += (size_t) numRead;
    }
    if (close(fd) == -1)
        fatal("cannot read key file %s: %s", path, errorText(errno));

    /* The length of the key: the file's size, less one trailing newline. */
    if (total < READ_LIMIT)
        length = (long) total - (total > 0 && buf[total - 1] == '\n');
    else
        length = (long) sb.st_size;
    if (length != KEY_LENGTH)
        fatal("key file %s holds %ld bytes; the key is exactly %d printable "
              "ASCII characters (e.g. a SHA-512 hex digest)", path, length,
              KEY_LENGTH);

    for (j = 0; j < KEY_LENGTH; j++)
        if (buf[j] < 0x20 || buf[j] > 0x7e)
            fatal("key file %s contains a non-printable byte 0x%02x; the "
                  "key is exactly %d printable ASCII characters", path,
                  (unsigned) (unsigned char) buf[j], KEY_LENGTH);

    memcpy(key, buf, KEY_LENGTH);
}
