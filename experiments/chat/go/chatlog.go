package main

import (
	"sync"
	"syscall"
)

const scanBuf = 4096

// chatLog is the chat log: one append-only file of lines, shared by every
// client of this process. Appends are serialised by mu and, so that other
// processes (another server on the same file, a tool reading it) are
// excluded too, made under an exclusive flock; each line is written with one
// write(2) to a descriptor opened with O_APPEND. size is the end of the last
// whole line written: readers read below it only, so they never see part of
// a line. Every append closes changed and replaces it: a broadcast to the
// clients' senders that cannot be missed (see snapshot).
type chatLog struct {
	path    string
	mu      sync.Mutex
	wfd     int // O_WRONLY|O_APPEND
	rfd     int // O_RDONLY, for pread
	size    int64
	changed chan struct{}
}

func retryEINTR(f func() error) error {
	for {
		err := f()
		if err != syscall.EINTR {
			return err
		}
	}
}

func flock(fd, how int) error {
	return retryEINTR(func() error { return syscall.Flock(fd, how) })
}

// preadFully reads until buf is full or the end of the file.
func preadFully(fd int, buf []byte, off int64) (int, error) {
	total := 0
	for total < len(buf) {
		var n int
		err := retryEINTR(func() (err error) {
			n, err = syscall.Pread(fd, buf[total:], off+int64(total))
			return err
		})
		if err != nil {
			return total, err
		}
		if n == 0 {
			break
		}
		total += n
	}
	return total, nil
}

func openFile(path string, flags int, perm uint32) (int, error) {
	var fd int
	err := retryEINTR(func() (err error) {
		fd, err = syscall.Open(path, flags|syscall.O_CLOEXEC|syscall.O_NOCTTY, perm)
		return err
	})
	return fd, err
}

// openChatLog creates the log if it does not exist (mode 0600), checks that
// it is a regular file and, if it does not end with a newline (a line cut
// short by a crash or another program), appends one, as the C server's
// prepareLog does. Errors are fatal.
func openChatLog(path string) *chatLog {
	fd, err := openFile(path, syscall.O_RDWR|syscall.O_APPEND|syscall.O_CREAT, 0o600)
	if err != nil {
		fatal("cannot open log %s: %s", path, errText(err))
	}
	var sb syscall.Stat_t
	if err := syscall.Fstat(fd, &sb); err != nil {
		fatal("fstat %s: %s", path, errText(err))
	}
	if sb.Mode&syscall.S_IFMT != syscall.S_IFREG {
		fatal("log %s is not a regular file", path)
	}
	if err := flock(fd, syscall.LOCK_EX); err != nil {
		fatal("flock %s: %s", path, errText(err))
	}
	if err := syscall.Fstat(fd, &sb); err != nil {
		fatal("fstat %s: %s", path, errText(err))
	}
	if sb.Size > 0 {
		last := make([]byte, 1)
		if n, err := preadFully(fd, last, sb.Size-1); n != 1 {
			fatal("read %s: %s", path, errText(err))
		}
		if last[0] != '\n' {
			if _, err := syscall.Write(fd, []byte{'\n'}); err != nil {
				fatal("write %s: %s", path, errText(err))
			}
			logMsg("log %s did not end with a newline; appended one", path)
		}
	}
	if err := syscall.Fstat(fd, &sb); err != nil {
		fatal("fstat %s: %s", path, errText(err))
	}
	if err := flock(fd, syscall.LOCK_UN); err != nil {
		fatal("flock %s: %s", path, errText(err))
	}
	syscall.Close(fd)

	l := &chatLog{path: path, size: sb.Size, changed: make(chan struct{})}
	if l.wfd, err = openFile(path, syscall.O_WRONLY|syscall.O_APPEND, 0); err != nil {
		fatal("cannot open log %s: %s", path, errText(err))
	}
	if l.rfd, err = openFile(path, syscall.O_RDONLY, 0); err != nil {
		fatal("cannot open log %s: %s", path, errText(err))
	}
	return l
}

// appendLines appends data, whole lines ending in '\n', each with one
// write(2), under one exclusive lock, then wakes the senders. If a write
// fails (disk full, ...), the log is cut back to its last whole line.
func (l *chatLog) appendLines(data []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := flock(l.wfd, syscall.LOCK_EX); err != nil {
		return err
	}
	var werr error
	for len(data) > 0 {
		end := len(data)
		for i, c := range data {
			if c == '\n' {
				end = i + 1
				break
			}
		}
		var n int
		werr = retryEINTR(func() (err error) {
			n, err = syscall.Write(l.wfd, data[:end])
			return err
		})
		if werr == nil && n != end {
			werr = syscall.ENOSPC
		}
		if werr != nil {
			var sb syscall.Stat_t
			if n > 0 && (syscall.Fstat(l.wfd, &sb) != nil ||
				syscall.Ftruncate(l.wfd, sb.Size-int64(n)) != nil) {
				logMsg("cannot cut a partly written line off the log")
			}
			break
		}
		data = data[end:]
	}
	// The end of the log as it now is (other processes' lines included).
	var sb syscall.Stat_t
	if err := syscall.Fstat(l.wfd, &sb); err == nil && sb.Size > l.size {
		l.size = sb.Size
	}
	if err := flock(l.wfd, syscall.LOCK_UN); err != nil && werr == nil {
		werr = err
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return werr
}

// snapshot returns the end of the log and the channel that the next append
// closes. Taken together, so that a sender that reads up to the end and then
// waits on the channel cannot miss a line.
func (l *chatLog) snapshot() (int64, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size, l.changed
}

// historyStart is the offset where the last lines lines of the log begin (0
// if it has fewer): what a client that has just authenticated is sent first.
func (l *chatLog) historyStart(lines int) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pos := l.size
	if lines == 0 {
		return pos, nil
	}
	// The log ends with a newline; the last lines lines begin just after
	// the (lines + 1)th newline from the end.
	buf := make([]byte, scanBuf)
	newlines := 0
	for pos > 0 {
		chunk := int64(scanBuf)
		if pos < chunk {
			chunk = pos
		}
		pos -= chunk
		n, err := preadFully(l.rfd, buf[:chunk], pos)
		if err != nil {
			return 0, err
		}
		for i := n - 1; i >= 0; i-- {
			if buf[i] == '\n' {
				newlines++
				if newlines == lines+1 {
					return pos + int64(i) + 1, nil
				}
			}
		}
	}
	return 0, nil
}

// readAt reads the log at off, up to len(buf) bytes.
func (l *chatLog) readAt(buf []byte, off int64) (int, error) {
	return preadFully(l.rfd, buf, off)
}

// freeze takes the log for good: no line is written after it returns, and
// none is half-written when it does. Used when terminating.
func (l *chatLog) freeze() {
	l.mu.Lock()
}
