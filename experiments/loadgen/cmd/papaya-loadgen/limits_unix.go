//go:build unix

package main

import "syscall"

// openFileLimit returns the soft RLIMIT_NOFILE. The Go runtime (since 1.19) has already
// raised it to the hard limit at start-up, so this is what the run can use.
func openFileLimit() (uint64, bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, false
	}
	return uint64(rl.Cur), true
}
