// Command papaya-broadcast is a minimal chat server speaking the chat protocol of
// experiments/chat/PROTOCOL.md, for testing and measuring the load generator's chat mode
// (the study's chat servers live in experiments/chat/). It keeps the log in memory only.
//
// A client first sends the 128-byte key (checked against -key-file when given; any 128
// bytes otherwise), then lines ending in "\n" of at most 4096 bytes. Each line is
// appended to the log and sent to every client, the sender included, each exactly once
// and in log order; a client that joins first gets the last -history lines.
//
// It prints "listening on HOST:PORT" to stdout once it listens, and on SIGTERM/SIGINT
// (or after -T) a JSON line with its counts.
package main

import (
	"bufio"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
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

	"papaya/loadgen/internal/chat"
)

const writeChunk = 64 << 10 // bytes gathered per write to a client

type server struct {
	key         []byte // nil: any key
	authTimeout time.Duration
	room        *room

	accepted, authenticated, rejected, lines, delivered atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (host:port; port 0 picks one)")
	keyFile := flag.String("key-file", "", "the key clients must send (default: accept any 128 bytes)")
	history := flag.Int("history", 7, "lines of the log sent to a client when it joins")
	authTimeout := flag.Duration("auth-timeout", time.Second, "time a client has to send the key")
	duration := flag.Duration("T", 0, "exit after this long (0: run until SIGTERM/SIGINT)")
	flag.Parse()

	s := &server{authTimeout: *authTimeout, room: newRoom(max(*history, 0)),
		conns: make(map[net.Conn]struct{})}
	if *keyFile != "" {
		key, err := chat.ReadKey(*keyFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "papaya-broadcast: -key-file: %v\n", err)
			os.Exit(2)
		}
		s.key = key
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "papaya-broadcast: %v\n", err)
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
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			break
		}
		s.accepted.Add(1)
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(c)
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	out, _ := json.Marshal(map[string]int64{
		"connections":     s.accepted.Load(),
		"authenticated":   s.authenticated.Load(),
		"rejected":        s.rejected.Load(),
		"lines":           s.lines.Load(),
		"lines_delivered": s.delivered.Load(),
	})
	fmt.Println(string(out))
}

// serve authenticates a client, then appends its lines to the log while a second
// goroutine sends it the log.
func (s *server) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	br := bufio.NewReaderSize(c, chat.MaxLine)
	key := make([]byte, chat.KeySize)
	_ = c.SetReadDeadline(time.Now().Add(s.authTimeout))
	if _, err := io.ReadFull(br, key); err != nil {
		s.rejected.Add(1)
		return
	}
	if s.key != nil && subtle.ConstantTimeCompare(key, s.key) != 1 {
		s.rejected.Add(1)
		fmt.Fprintf(os.Stderr, "papaya-broadcast: %s: wrong key\n", c.RemoteAddr())
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	s.authenticated.Add(1)

	m := s.room.join()
	defer s.room.leave(m)
	done := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		s.send(c, m, done)
	}()
	defer func() {
		close(done)
		c.Close() // a sender blocked in a write returns too
		<-sent
	}()
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			fmt.Fprintf(os.Stderr, "papaya-broadcast: %s: line longer than %d bytes; closing\n",
				c.RemoteAddr(), chat.MaxLine)
			return
		}
		if err != nil {
			return // a partial line at the end is dropped
		}
		s.room.append(append([]byte(nil), line...))
		s.lines.Add(1)
	}
}

// send writes the log to c from m's position whenever woken, until done or an error.
func (s *server) send(c net.Conn, m *member, done <-chan struct{}) {
	buf := make([]byte, 0, writeChunk)
	for {
		select {
		case <-m.wake:
		case <-done:
			return
		}
		lines := s.room.pending(m)
		for len(lines) > 0 {
			buf = buf[:0]
			n := 0
			for n < len(lines) && (n == 0 || len(buf)+len(lines[n]) <= writeChunk) {
				buf = append(buf, lines[n]...)
				n++
			}
			if _, err := c.Write(buf); err != nil {
				c.Close() // ends the reader too
				return
			}
			s.delivered.Add(int64(n))
			lines = lines[n:]
		}
	}
}
