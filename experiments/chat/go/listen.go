package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
)

// listen listens on every address of one family, chosen explicitly as in
// the C server: 0.0.0.0 (IPv4), or [::] with IPV6_V6ONLY set (IPv6 only;
// the option's default differs between systems). Go sets SO_REUSEADDR. Its
// keep-alive settings are left out (KeepAlive: -1); the server sets
// SO_KEEPALIVE on each client with the system's timings, as the C server
// does. A bind error names the address.
func listen(port int, ipv6 bool) (net.Listener, string) {
	network, any := "tcp4", "0.0.0.0"
	if ipv6 {
		network, any = "tcp6", "[::]"
	}
	lc := net.ListenConfig{KeepAlive: -1}
	if ipv6 {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6,
					syscall.IPV6_V6ONLY, 1)
			})
			if err != nil {
				return err
			}
			if serr != nil {
				return os.NewSyscallError("setsockopt IPV6_V6ONLY", serr)
			}
			return nil
		}
	}
	host := "0.0.0.0"
	if ipv6 {
		host = "::"
	}
	ln, err := lc.Listen(context.Background(), network, net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		var serr *os.SyscallError
		if errors.As(err, &serr) && serr.Syscall != "bind" {
			fatal("%s: %s", serr.Syscall, errText(err))
		}
		fatal("bind to %s:%d: %s", any, port, errText(err))
	}
	bound := ln.Addr().(*net.TCPAddr).Port
	return ln, fmt.Sprintf("%s:%d", any, bound)
}
