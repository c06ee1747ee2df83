// Package chat holds what the load generator knows of the chat protocol
// (experiments/chat/PROTOCOL.md): the 128-byte key sent first on every connection, the
// load's line format, and the tally a receiving connection keeps of the lines it gets.
package chat

import (
	"fmt"
	"io"
	"os"
)

// KeySize is the length of the shared key, the first thing a client sends.
const KeySize = 128

// MaxLine is the protocol's longest line, the newline included.
const MaxLine = 4096

// ReadKey reads a key file: exactly KeySize printable ASCII characters (0x20 to 0x7e),
// optionally followed by one newline, which is not part of the key. Errors name the
// file and what is wrong with it.
func ReadKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Read a little more than a key can be, so that a long file is reported by its size
	// without reading all of it.
	b, err := io.ReadAll(io.LimitReader(f, KeySize+2))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if err := CheckKey(b); err != nil {
		if fi, statErr := f.Stat(); statErr == nil && fi.Size() > KeySize+1 {
			return nil, fmt.Errorf("%s: %d bytes; %s", path, fi.Size(), keyRule)
		}
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return b[:KeySize], nil
}

const keyRule = "expected exactly 128 printable ASCII characters, optionally followed by one newline"

// CheckKey checks a key file's contents (see ReadKey).
func CheckKey(b []byte) error {
	n := len(b)
	if n == KeySize+1 && b[KeySize] == '\n' {
		n = KeySize
	}
	if n != KeySize {
		return fmt.Errorf("%d bytes; %s", len(b), keyRule)
	}
	for i, c := range b[:KeySize] {
		if c < 0x20 || c > 0x7e {
			return fmt.Errorf("byte %d is 0x%02x, not printable ASCII; %s", i+1, c, keyRule)
		}
	}
	return nil
}
