package chat

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"math"
	"strconv"
)

// A load line is
//
//	<user>: t=<unix-nanos> seq=<n> run=<run-id> xxxx…\n
//
// padded with a space and x's to a fixed size: t is the send time, seq numbers the
// run's lines (one counter for all connections, so a line is known to be newer than a
// connection's join), and run tells this run's lines from any other's.

// tDigits is the width of a Unix time in nanoseconds until the year 2286.
const tDigits = 19

// Line is a parsed load line; User and Run point into the parsed bytes.
type Line struct {
	User []byte
	T    int64 // send time, Unix nanoseconds
	Seq  int64
	Run  []byte
}

// NewRunID returns a random run identifier of 8 hex digits.
func NewRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // cannot fail since Go 1.24 (it crashes instead); zeros are valid too
	return hex.EncodeToString(b[:])
}

// HeaderSize returns the length of a line's text without padding and newline, for a
// user name of userLen bytes, a sequence number of up to maxSeq and a run id of runLen.
func HeaderSize(userLen int, maxSeq int64, runLen int) int {
	return userLen + len(": t=") + tDigits + len(" seq=") + len(strconv.FormatInt(maxSeq, 10)) +
		len(" run=") + runLen
}

// AppendLine appends a load line to dst, padded to size bytes with its newline (longer,
// unpadded, when the text does not fit).
func AppendLine(dst, user []byte, t, seq int64, run string, size int) []byte {
	start := len(dst)
	dst = append(dst, user...)
	dst = append(dst, ": t="...)
	dst = strconv.AppendInt(dst, t, 10)
	dst = append(dst, " seq="...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, " run="...)
	dst = append(dst, run...)
	if pad := size - (len(dst) - start) - 1; pad > 0 {
		dst = append(dst, ' ')
		for i := 1; i < pad; i++ {
			dst = append(dst, 'x')
		}
	}
	return append(dst, '\n')
}

// Parse reads a load line (with or without its newline); ok is false for any other line.
func Parse(b []byte) (l Line, ok bool) {
	i := bytes.Index(b, []byte(": t="))
	if i <= 0 {
		return l, false
	}
	l.User = b[:i]
	rest := b[i+len(": t="):]
	if l.T, rest, ok = number(rest); !ok {
		return l, false
	}
	if !bytes.HasPrefix(rest, []byte(" seq=")) {
		return l, false
	}
	if l.Seq, rest, ok = number(rest[len(" seq="):]); !ok {
		return l, false
	}
	if !bytes.HasPrefix(rest, []byte(" run=")) {
		return l, false
	}
	rest = rest[len(" run="):]
	end := bytes.IndexAny(rest, " \n")
	if end < 0 {
		end = len(rest)
	}
	if end == 0 {
		return l, false
	}
	l.Run = rest[:end]
	return l, true
}

// number parses the leading decimal digits of b as a non-negative int64.
func number(b []byte) (n int64, rest []byte, ok bool) {
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := int64(b[i] - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, b, false
		}
		n = n*10 + d
	}
	return n, b[i:], i > 0
}
