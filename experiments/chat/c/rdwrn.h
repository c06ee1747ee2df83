/* rdwrn.h

   writen(): write all of a buffer, as in TLPI's rdwrn.h.
*/
#ifndef RDWRN_H
#define RDWRN_H

#include <sys/types.h>

/* Write all 'n' bytes of 'buf' to 'fd', looping over partial writes and
   EINTR. Returns n, or -1 with errno set. */
ssize_t writen(int fd, const void *buf, size_t n);

#endif
