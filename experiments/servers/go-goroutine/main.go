// Command go-goroutine is a TCP server that serves every client in its own
// goroutine. Each goroutine reads from its client into a 1024-byte buffer
// until end-of-file and, for every read, prints the bytes received as a
// quoted Go string literal (fmt's %q verb) followed by a newline to the
// unbuffered os.Stdout.
//
// Usage:
//
//	go-goroutine [-port N]
//
// The flag may also be spelled --port or -p. SIGTERM or SIGINT closes the
// listener and exits with status 0.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

const (
	progName    = "go-goroutine"
	defaultPort = 50000
	bufSize     = 1024
)

func main() {
	port := parseFlags(os.Args[1:])

	ln, err := net.Listen("tcp4", net.JoinHostPort("0.0.0.0", strconv.Itoa(port)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", progName, err)
		os.Exit(1)
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-sigs
		ln.Close() // Makes Accept return net.ErrClosed.
	}()

	fmt.Fprintf(os.Stderr, "%s: listening on %s\n", progName, ln.Addr())

	if err := serve(ln); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", progName, err)
		os.Exit(1)
	}
}

// parseFlags parses the command line and returns the port to listen on.
// Bad flags print a message and the usage text, then exit with status 2.
func parseFlags(args []string) int {
	fs := flag.NewFlagSet(progName, flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s [-port N]\n", progName)
		fs.PrintDefaults()
	}
	var port int
	fs.IntVar(&port, "port", defaultPort, "TCP port to listen on (0 = any)")
	fs.IntVar(&port, "p", defaultPort, "shorthand for -port")
	fs.Parse(args) // Exits on error.

	if fs.NArg() != 0 {
		usageError(fs, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if port < 0 || port > 65535 {
		usageError(fs, fmt.Sprintf("invalid port %d", port))
	}
	return port
}

func usageError(fs *flag.FlagSet, msg string) {
	fmt.Fprintf(fs.Output(), "%s: %s\n", progName, msg)
	fs.Usage()
	os.Exit(2)
}

// serve accepts connections until ln is closed, starting one goroutine per
// connection. It returns nil once ln has been closed.
func serve(ln net.Listener) error {
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go handle(conn)
	}
}

// handle prints every read from conn until end-of-file, then closes it.
func handle(conn net.Conn) {
	defer conn.Close()
	buf := make([]byte, bufSize)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			fmt.Printf("%q\n", buf[:n])
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
				fmt.Fprintf(os.Stderr, "%s: %v\n", progName, err)
			}
			return
		}
	}
}
