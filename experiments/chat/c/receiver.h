/* receiver.h

   A RECV process's work: the client's lines into the log.
*/
#ifndef RECEIVER_H
#define RECEIVER_H

/* Read lines from 'cfd' until the client leaves or breaks the protocol,
   appending each complete line to the log at 'logPath' (opened here, so
   with an open file description of its own) and waking the SEND
   processes after each batch. Lines longer than MAX_LINE bytes (newline
   included) or holding a NUL byte end the connection; so does an error
   appending to the log. A line the client did not finish is dropped.
   Every reason is logged, naming the client 'peer'. */
void receiveLines(int cfd, const char *logPath, const char *peer);

#endif
