// Command papaya-chatd-go is a chat room server that serves every client
// with goroutines: the Go counterpart of papaya-chatd (../c), with the same
// protocol (../PROTOCOL.md), options, config file, limits, log format and
// messages (../README.md, or papaya-chatd-go --help).
//
// Clients authenticate with a shared key; each line a client sends is
// appended to one chat log, and every client is sent the log's last lines on
// connecting and every line appended after.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	st := defaultSettings()
	st.parseCommandLine(os.Args[1:])
	if st.configPath != "" {
		st.readConfigFile()
	}
	st.finish()

	// As the C server: SIGPIPE never kills (writes fail with EPIPE), a
	// stray SIGUSR1 is ignored.
	signal.Ignore(syscall.SIGPIPE, syscall.SIGUSR1)

	ready := becomeDaemon(&st) // in the daemon, or in the foreground

	key := loadKey(st.keyFile)
	who := resolveUser(st.user)

	ln, addr := listen(st.port, st.ipv6)

	detach(ready)
	if st.pidFile != "" {
		writePidFile(st.pidFile) // before dropping privileges
	}
	dropPrivileges(who)
	log := openChatLog(st.logPath) // as the user that will write it

	srv := newServer(&st, key, log)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		<-sigs
		terminate(srv, ln, st.pidFile)
	}()

	logMsg("listening on %s", addr)
	notifyReady(ready)
	srv.serve(ln)
}

// terminate stops the server: no new clients, no line half-written, every
// connection closed, the pid file removed (best effort: after dropping
// privileges the server may not be allowed to), then exit 0.
func terminate(srv *server, ln interface{ Close() error }, pidFile string) {
	ln.Close()
	srv.log.freeze()
	srv.closeAll()
	if pidFile != "" {
		os.Remove(pidFile)
	}
	os.Exit(0)
}
