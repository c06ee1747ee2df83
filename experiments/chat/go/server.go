package main

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

const (
	recvBuf = 16384 // bytes per read from a client; > maxLine
	sendBuf = 16384 // bytes per read of the log; > maxLine
)

// server accepts clients and serves each with one goroutine that reads its
// lines and one that sends it the log.
type server struct {
	st  *settings
	key []byte
	log *chatLog

	mu    sync.Mutex
	conns map[net.Conn]struct{} // live clients, authenticated or not
}

func newServer(st *settings, key []byte, log *chatLog) *server {
	return &server{st: st, key: key, log: log, conns: make(map[net.Conn]struct{})}
}

// admit counts conn as a client, unless the limit has been reached.
func (s *server) admit(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.conns) >= s.st.maxClients {
		return false
	}
	s.conns[conn] = struct{}{}
	return true
}

func (s *server) release(conn net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, conn)
}

// closeAll closes every client's connection. Used when terminating.
func (s *server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for conn := range s.conns {
		conn.Close()
	}
}

func isTemporaryAcceptError(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// serve accepts clients until ln is closed.
func (s *server) serve(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				select {} // terminating: the signal goroutine exits
			}
			if errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPROTO) {
				continue
			}
			logMsg("accept: %s", errText(err))
			if isTemporaryAcceptError(err) {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			os.Exit(1)
		}
		peer := conn.RemoteAddr().String()
		if !s.admit(conn) {
			logMsg("client %s: too many clients (limit %d); connection closed",
				peer, s.st.maxClients)
			conn.Close()
			continue
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
			tc.SetKeepAlive(true)
		}
		go s.serveClient(conn, peer)
	}
}

// serveClient is the life of one connection: authentication, then lines in
// (this goroutine) and the log out (a sender goroutine) until the client
// leaves.
func (s *server) serveClient(conn net.Conn, peer string) {
	defer s.release(conn)
	defer conn.Close()

	if !s.authenticate(conn, peer) {
		return
	}
	logMsg("client %s: authenticated", peer)

	// Lines appended from now on come after start, so none can be missed,
	// whenever the sender starts.
	start, err := s.log.historyStart(s.st.history)
	if err != nil {
		logMsg("client %s: cannot read log %s; connection closed: %s",
			peer, s.log.path, errText(err))
		return
	}

	done := make(chan struct{})
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		s.sendLog(conn, peer, start, done)
	}()

	s.receiveLines(conn, peer)

	close(done)
	conn.Close() // ends a sender blocked in Write
	<-senderDone
}

// authenticate reads exactly keyLength bytes within the auth timeout (in
// all, over any number of reads) and compares them with the key in constant
// time. Nothing beyond the key is read. Failures are logged.
func (s *server) authenticate(conn net.Conn, peer string) bool {
	timeout := time.Duration(s.st.authTimeoutMs) * time.Millisecond
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		logMsg("client %s: %s", peer, errText(err))
		return false
	}
	got := make([]byte, keyLength)
	if _, err := io.ReadFull(conn, got); err != nil {
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			logMsg("client %s: authentication timed out; connection closed", peer)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
			isGoneError(err):
			logMsg("client %s: connection closed during authentication", peer)
		default:
			logMsg("client %s: read: %s", peer, errText(err))
		}
		return false
	}
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		logMsg("client %s: %s", peer, errText(err))
		return false
	}
	if subtle.ConstantTimeCompare(got, s.key) != 1 {
		logMsg("client %s: wrong key; connection closed", peer)
		return false
	}
	return true
}

// isGoneError tells whether err means that the client has gone.
func isGoneError(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ETIMEDOUT) ||
		errors.Is(err, net.ErrClosed)
}

// receiveLines reads lines until the client leaves or breaks the protocol,
// appending each complete line to the log, exactly as the C server's RECV
// process does: lines longer than maxLine bytes (newline included) or holding
// a NUL byte end the connection, and so does an error appending to the log;
// a line the client did not finish is dropped.
func (s *server) receiveLines(conn net.Conn, peer string) {
	buf := make([]byte, recvBuf)
	used := 0 // bytes in buf: an unfinished line
	for {
		n, err := conn.Read(buf[used:])
		if n == 0 && err != nil {
			if !errors.Is(err, io.EOF) && !isGoneError(err) {
				logMsg("client %s: read: %s", peer, errText(err))
			}
			if used > 0 {
				logMsg("client %s: disconnected; dropped an unfinished line of %d bytes",
					peer, used)
			} else {
				logMsg("client %s: disconnected", peer)
			}
			return
		}

		// Find the complete lines among the bytes read.
		scan := used
		used += n
		start := 0
		for {
			i := bytes.IndexByte(buf[scan:used], '\n')
			if i < 0 {
				break
			}
			lineLen := scan + i + 1 - start
			if lineLen > maxLine || bytes.IndexByte(buf[start:start+lineLen], 0) >= 0 {
				s.appendLines(buf[:start], peer)
				if lineLen > maxLine {
					logMsg("client %s: line longer than %d bytes; connection closed",
						peer, maxLine)
				} else {
					logMsg("client %s: line contains a NUL byte; connection closed", peer)
				}
				return
			}
			start += lineLen
			scan = start
		}
		if !s.appendLines(buf[:start], peer) {
			return
		}

		// Keep the unfinished line; it may not reach maxLine bytes without
		// its newline.
		used = copy(buf, buf[start:used])
		if used >= maxLine {
			logMsg("client %s: line longer than %d bytes; connection closed", peer, maxLine)
			return
		}
	}
}

// appendLines appends whole lines to the log; false (logged) on failure.
func (s *server) appendLines(data []byte, peer string) bool {
	if len(data) == 0 {
		return true
	}
	if err := s.log.appendLines(data); err != nil {
		logMsg("client %s: cannot append to the log; connection closed: %s",
			peer, errText(err))
		return false
	}
	return true
}

// sendLog sends the client the log from off to its end, then everything
// appended after, until the client cannot be written to or done is closed.
// On the way out it closes the connection, so that receiveLines ends too.
func (s *server) sendLog(conn net.Conn, peer string, off int64, done <-chan struct{}) {
	defer conn.Close()
	buf := make([]byte, sendBuf)
	for {
		// The end of the log and the channel of the next append, together:
		// whatever is appended after this closes changed.
		end, changed := s.log.snapshot()
		for off < end {
			want := int64(sendBuf)
			if end-off < want {
				want = end - off
			}
			n, err := s.log.readAt(buf[:want], off)
			if err != nil {
				logMsg("client %s: read %s: %s", peer, s.log.path, errText(err))
				return
			}
			k := bytes.LastIndexByte(buf[:n], '\n') + 1
			if k == 0 {
				if n < sendBuf {
					break
				}
				k = n // no newline at all: not ours; pass it on
			}
			if _, err := conn.Write(buf[:k]); err != nil {
				if !isGoneError(err) {
					logMsg("client %s: write: %s", peer, errText(err))
				}
				return
			}
			off += int64(k)
		}
		select {
		case <-changed:
		case <-done:
			return
		}
	}
}
