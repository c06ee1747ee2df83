// Command papaya-sink accepts TCP connections and reads and discards everything sent to
// them (one goroutine per connection). It is a stand-in server for measuring the load
// generator itself.
//
// It prints "listening on HOST:PORT" to stdout once it listens, and on SIGTERM/SIGINT
// (or after -T) a JSON line with the connections accepted and bytes received.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (host:port; port 0 picks one)")
	duration := flag.Duration("T", 0, "exit after this long (0: run until SIGTERM/SIGINT)")
	flag.Parse()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "papaya-sink: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	var (
		accepted atomic.Int64
		received atomic.Int64
		mu       sync.Mutex
		conns    = map[net.Conn]struct{}{}
		wg       sync.WaitGroup
	)
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			break
		}
		accepted.Add(1)
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, _ := io.Copy(io.Discard, c)
			received.Add(n)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			c.Close()
		}()
	}
	// Give open connections a moment to drain, then close them.
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	for c := range conns {
		c.Close()
	}
	mu.Unlock()
	wg.Wait()
	out, _ := json.Marshal(map[string]int64{
		"connections":    accepted.Load(),
		"bytes_received": received.Load(),
	})
	fmt.Println(string(out))
}
