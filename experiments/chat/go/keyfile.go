package main

import (
	"errors"
	"io"
	"os"
	"syscall"
)

const keyReadLimit = 4096 // larger files: their size is the length

// loadKey reads the shared key with the C server's checks (../c/key_file.h):
// a regular file that neither group nor others may access in any way, holding
// exactly keyLength printable ASCII characters, optionally followed by one
// newline. Anything else is fatal.
func loadKey(path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		fatal("cannot read key file %s: %s", path, errText(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		fatal("cannot read key file %s: %s", path, errText(err))
	}
	if !fi.Mode().IsRegular() {
		fatal("key file %s is not a regular file", path)
	}
	mode := uint32(fi.Sys().(*syscall.Stat_t).Mode)
	if mode&0o077 != 0 {
		fatal("key file %s has mode %04o, which lets others read it; run: chmod 600 %s",
			path, mode&0o7777, path)
	}

	buf := make([]byte, keyReadLimit)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		fatal("cannot read key file %s: %s", path, errText(err))
	}
	length := int64(n)
	if n < keyReadLimit {
		if n > 0 && buf[n-1] == '\n' {
			length--
		}
	} else {
		length = fi.Size()
	}
	if length != keyLength {
		fatal("key file %s holds %d bytes; the key is exactly %d printable ASCII "+
			"characters (e.g. a SHA-512 hex digest)", path, length, keyLength)
	}
	for _, c := range buf[:keyLength] {
		if c < 0x20 || c > 0x7e {
			fatal("key file %s contains a non-printable byte 0x%02x; the key is "+
				"exactly %d printable ASCII characters", path, c, keyLength)
		}
	}
	return buf[:keyLength:keyLength]
}
