package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// readyEnv names the environment variable that tells a process started by
// becomeDaemon that it is the daemon, and which descriptor to report on.
const readyEnv = "PAPAYA_CHATD_READY_FD"

// becomeDaemon runs the server in the background. Go cannot fork, so the
// program starts itself again, in a new session (setsid), with stdin and
// stdout on /dev/null (stderr is kept: redirect it to keep the server's
// messages), and waits until that process reports ready (then exits 0) or
// ends (then exits 1; its error message is on stderr), as the C server's
// original process does. In the daemon it returns the file to pass to
// notifyReady; in the foreground, nil.
func becomeDaemon(st *settings) *os.File {
	if fdText := os.Getenv(readyEnv); fdText != "" {
		os.Unsetenv(readyEnv)
		fd, err := strconv.Atoi(fdText)
		if err != nil || fd < 3 {
			fatal("%s: bad value %q", readyEnv, fdText)
		}
		syscall.CloseOnExec(fd)
		return os.NewFile(uintptr(fd), "ready")
	}
	if !st.daemon {
		return nil
	}

	exe, err := os.Executable()
	if err != nil {
		fatal("cannot find the program to run as a daemon: %s", errText(err))
	}
	r, w, err := os.Pipe()
	if err != nil {
		fatal("pipe: %s", errText(err))
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), readyEnv+"=3")
	cmd.Stderr = os.Stderr
	cmd.ExtraFiles = []*os.File{w} // descriptor 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fatal("cannot start the daemon: %s", errText(err))
	}
	w.Close()
	buf := make([]byte, 1)
	if n, _ := r.Read(buf); n == 1 {
		os.Exit(0)
	}
	cmd.Wait()
	os.Exit(1)
	return nil
}

// detach finishes a daemon's start: the working directory becomes "/".
func detach(ready *os.File) {
	if ready == nil {
		return
	}
	if err := os.Chdir("/"); err != nil {
		fatal("chdir /: %s", errText(err))
	}
}

// notifyReady tells the process that started the daemon that the server is
// ready.
func notifyReady(ready *os.File) {
	if ready == nil {
		return
	}
	if _, err := ready.Write([]byte("r")); err != nil {
		logMsg("cannot tell the starting process that the server is ready: %s", errText(err))
	}
	ready.Close()
}

// writePidFile writes this process's ID and a newline to path.
func writePidFile(path string) {
	err := os.WriteFile(path, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644)
	if err != nil {
		fatal("cannot write pid file %s: %s", path, errText(err))
	}
}
