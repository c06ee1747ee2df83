// Package unescape expands the backslash escapes that tcpkali's -e accepts in messages.
package unescape

import (
	"fmt"
	"strings"
)

// String expands \n, \r, \t, \\ and \xHH (two hex digits) in s. Any other escape, a
// truncated \x or a trailing lone backslash is an error, so that a typo in a message
// does not silently change the bytes on the wire.
func String(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(s) {
			return "", fmt.Errorf("trailing backslash at offset %d", i)
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case '\\':
			b.WriteByte('\\')
		case 'x':
			if i+2 >= len(s) {
				return "", fmt.Errorf(`truncated \x escape at offset %d (expected two hex digits)`, i-1)
			}
			hi, ok1 := hexValue(s[i+1])
			lo, ok2 := hexValue(s[i+2])
			if !ok1 || !ok2 {
				return "", fmt.Errorf(`bad \x escape %q at offset %d (expected two hex digits)`, s[i-1:i+3], i-1)
			}
			b.WriteByte(hi<<4 | lo)
			i += 2
		default:
			return "", fmt.Errorf(`unknown escape \%c at offset %d (known: \n \r \t \\ \xHH)`, s[i], i-1)
		}
	}
	return b.String(), nil
}

func hexValue(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
