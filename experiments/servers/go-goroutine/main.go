// Command go-goroutine is a TCP server that serves every client in its own
// goroutine. Each goroutine reads from its client into a 1024-byte buffer
// until end-of-file and, for every read, prints the bytes received as a
// quoted Go string literal (fmt's %q verb) followed by a newline to the
// unbuffered os.Stdout.
//
// Usage:
//
//	go-goroutine [-port N] [-output MODE] [-buffer-size N]
//
// The output mode and buffer size are experiment factors: -output paper is
// the behaviour above (the default), discard reads and drops, and same
// writes the bytes only, through a 4096-byte buffer per client, the policy
// the C server uses in the same mode.
//
// The flag may also be spelled --port or -p. SIGTERM or SIGINT closes the
// listener and exits with status 0.
package main

import (
	"bufio"
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
	progName       = "go-goroutine"
	defaultPort    = 50000
	defaultBufSize = 1024 // The original server's read buffer.
	maxBufSize     = 1024 * 1024
	sameBufSize    = 4096
)

// options are the command-line settings.
type options struct {
	port    int
	output  string // "paper", "discard" or "same"
	bufSize int
}

func main() {
	opts := parseFlags(os.Args[1:])

	ln, err := net.Listen("tcp4", net.JoinHostPort("0.0.0.0", strconv.Itoa(opts.port)))
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

	if err := serve(ln, opts); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", progName, err)
		os.Exit(1)
	}
}

// parseFlags parses the command line. Bad flags print a message and the
// usage text, then exit with status 2.
func parseFlags(args []string) options {
	fs := flag.NewFlagSet(progName, flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s [-port N] [-output MODE] [-buffer-size N]\n", progName)
		fs.PrintDefaults()
	}
	var opts options
	fs.IntVar(&opts.port, "port", defaultPort, "TCP port to listen on (0 = any)")
	fs.IntVar(&opts.port, "p", defaultPort, "shorthand for -port")
	fs.StringVar(&opts.output, "output", "paper",
		"paper (%q per read, unbuffered), discard (no output) or same (the bytes only, 4096-byte buffer)")
	fs.IntVar(&opts.bufSize, "buffer-size", defaultBufSize, "bytes per read")
	fs.Parse(args) // Exits on error.

	if fs.NArg() != 0 {
		usageError(fs, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if opts.port < 0 || opts.port > 65535 {
		usageError(fs, fmt.Sprintf("invalid port %d", opts.port))
	}
	switch opts.output {
	case "paper", "discard", "same":
	default:
		usageError(fs, fmt.Sprintf("invalid output mode %q (paper, discard or same)", opts.output))
	}
	if opts.bufSize < 1 || opts.bufSize > maxBufSize {
		usageError(fs, fmt.Sprintf("invalid buffer size %d (1 to %d)", opts.bufSize, maxBufSize))
	}
	return opts
}

func usageError(fs *flag.FlagSet, msg string) {
	fmt.Fprintf(fs.Output(), "%s: %s\n", progName, msg)
	fs.Usage()
	os.Exit(2)
}

// serve accepts connections until ln is closed, starting one goroutine per
// connection. It returns nil once ln has been closed.
func serve(ln net.Listener, opts options) error {
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go handle(conn, opts)
	}
}

// handle reports every read from conn as opts.output says until
// end-of-file, then closes it.
func handle(conn net.Conn, opts options) {
	defer conn.Close()
	var out *bufio.Writer
	if opts.output == "same" {
		out = bufio.NewWriterSize(os.Stdout, sameBufSize)
		defer out.Flush()
	}
	buf := make([]byte, opts.bufSize)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			switch opts.output {
			case "paper":
				fmt.Printf("%q\n", buf[:n])
			case "same":
				out.Write(buf[:n]) // Like fwrite: an error here is stdout's, not the client's.
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
				fmt.Fprintf(os.Stderr, "%s: %v\n", progName, err)
			}
			return
		}
	}
}
