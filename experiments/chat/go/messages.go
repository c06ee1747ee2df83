package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// progName prefixes every message, as PROGRAM_NAME does in the C server.
const progName = "papaya-chatd-go"

// logMsg prints "papaya-chatd-go: <message>" to stderr as one line with
// one write, so that lines from concurrent goroutines never interleave.
func logMsg(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	os.Stderr.WriteString(progName + ": " + msg + "\n")
}

// fatal prints the message and exits with status 1: a start-up error.
func fatal(format string, args ...any) {
	logMsg(format, args...)
	os.Exit(1)
}

// usageErr prints the message and the usage text, then exits with status 2.
func usageErr(format string, args ...any) {
	logMsg(format, args...)
	printUsage(os.Stderr)
	os.Exit(2)
}

// errText is the text of the system error inside err, with its first letter
// in upper case: the text the C library gives for the same error, as the C
// server prints it ("No such file or directory").
func errText(err error) string {
	var errno syscall.Errno
	text := err.Error()
	if errors.As(err, &errno) {
		text = errno.Error()
	}
	if text != "" && text[0] >= 'a' && text[0] <= 'z' {
		text = string(text[0]-'a'+'A') + text[1:]
	}
	return text
}
