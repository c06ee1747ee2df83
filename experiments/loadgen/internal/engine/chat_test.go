package engine

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"papaya/loadgen/internal/chat"
)

var testKey = []byte(strings.Repeat("0123456789abcdef", 8))

// chatServer is a small chat server for the tests: it checks the key, sends the last
// `history` lines of its log to a client that joins, then appends every line to the log
// and writes it to every client (under one lock, so in log order). deliver, when set,
// decides whether log line n (from 0) goes to client c (from 0).
type chatServer struct {
	ln      net.Listener
	history int
	deliver func(c, n int) bool

	mu      sync.Mutex
	log     [][]byte
	clients []net.Conn
	wg      sync.WaitGroup
}

func newChatServer(t *testing.T, history int, log ...string) *chatServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &chatServer{ln: ln, history: history}
	for _, l := range log {
		s.log = append(s.log, []byte(l))
	}
	go s.accept()
	t.Cleanup(s.close)
	return s
}

func (s *chatServer) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			br := bufio.NewReader(c)
			key := make([]byte, chat.KeySize)
			if _, err := io.ReadFull(br, key); err != nil || !bytes.Equal(key, testKey) {
				return
			}
			s.mu.Lock()
			for _, l := range s.log[max(0, len(s.log)-s.history):] {
				_, _ = c.Write(l)
			}
			s.clients = append(s.clients, c)
			s.mu.Unlock()
			for {
				line, err := br.ReadBytes('\n')
				if err != nil {
					return
				}
				s.mu.Lock()
				n := len(s.log)
				s.log = append(s.log, line)
				for i, other := range s.clients {
					if s.deliver == nil || s.deliver(i, n) {
						_, _ = other.Write(line)
					}
				}
				s.mu.Unlock()
			}
		}()
	}
}

func (s *chatServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.clients {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func chatParams(addr string, conns int, rate float64, d time.Duration) Params {
	return Params{
		Target: addr, Connections: conns, Duration: d, MessageRate: rate,
		ConnectRate: 1e5, ConnectTimeout: time.Second, WriteCombine: true, NoDelay: true,
		Chat: &Chat{Key: testKey, MessageSize: 100, UsernamePrefix: "user", Drain: time.Second},
	}
}

func TestChatRunCountsEveryLineOnEveryConnection(t *testing.T) {
	// History from an earlier run is received but neither counted as live nor timed.
	old := chat.AppendLine(nil, []byte("user1"), 1, 1, "00000000", 100)
	s := newChatServer(t, 3, "alice: hello\n", string(old), "bob: hi\n", string(old))
	sum := Run(context.Background(), chatParams(s.ln.Addr().String(), 3, 50, time.Second))
	if sum.Connections.Opened != 3 || len(sum.Errors) != 0 {
		t.Fatalf("summary %+v", sum)
	}
	sent, recv, exp := *sum.LinesSent, *sum.LinesReceived, *sum.LinesExpected
	if sent < 140 || sent > 150 {
		t.Errorf("lines_sent = %d, want about 3 x 50", sent)
	}
	if recv != 3*sent || exp != recv || *sum.LinesOutOfOrder != 0 {
		t.Errorf("sent %d, received %d, expected %d, out of order %d", sent, recv, exp,
			*sum.LinesOutOfOrder)
	}
	if *sum.LinesOtherReceived != 9 {
		t.Errorf("lines_other_received = %d, want the 3 x 3 history lines", *sum.LinesOtherReceived)
	}
	l := sum.LatencyS
	if l.Count != recv || *l.P50 <= 0 || *l.Max > 0.5 || *l.Min > *l.P50 || *l.P99 > *l.Max {
		t.Errorf("latency %+v", l)
	}
	if sum.MessagesSent != sent+3 || sum.BytesSent != sent*100+3*chat.KeySize {
		t.Errorf("messages_sent %d, bytes_sent %d for %d lines", sum.MessagesSent, sum.BytesSent, sent)
	}
	if c := sum.Chat; c == nil || !c.KeySent || c.MessageSize != 100 || len(c.RunID) != 8 ||
		c.DrainS > 0.5 {
		t.Errorf("chat %+v", sum.Chat)
	}
	// The log holds this run's lines in the agreed format, all of the agreed size, and
	// each sender's sequence numbers increase.
	s.mu.Lock()
	defer s.mu.Unlock()
	last := map[string]int64{}
	for _, line := range s.log[4:] {
		l, ok := chat.Parse(line)
		if !ok || len(line) != 100 || string(l.Run) != sum.Chat.RunID {
			t.Fatalf("logged line %q", line)
		}
		if l.Seq <= last[string(l.User)] {
			t.Errorf("%s: seq %d after %d", l.User, l.Seq, last[string(l.User)])
		}
		last[string(l.User)] = l.Seq
	}
	if len(last) != 3 || last["user1"] == 0 || last["user3"] == 0 {
		t.Errorf("senders %v", last)
	}
}

func TestChatLostLinesAreMissing(t *testing.T) {
	s := newChatServer(t, 0)
	s.deliver = func(c, n int) bool { return c != 0 || n%10 != 5 } // client 0 misses 1 in 10
	sum := Run(context.Background(), chatParams(s.ln.Addr().String(), 2, 100, 600*time.Millisecond))
	sent, recv, exp := *sum.LinesSent, *sum.LinesReceived, *sum.LinesExpected
	if exp != 2*sent || recv >= exp || recv < exp-sent/10-1 {
		t.Errorf("sent %d, received %d, expected %d", sent, recv, exp)
	}
	// Nothing more can arrive, so the whole drain is waited.
	if sum.Chat.DrainS < 0.9 {
		t.Errorf("drain_s = %v, want the full 1 s", sum.Chat.DrainS)
	}
}

func TestChatWrongKeyIsReported(t *testing.T) {
	s := newChatServer(t, 0)
	p := chatParams(s.ln.Addr().String(), 2, 10, 5*time.Second)
	p.Chat.Key = []byte(strings.Repeat("x", chat.KeySize))
	start := time.Now()
	sum := Run(context.Background(), p)
	if time.Since(start) > 2*time.Second {
		t.Errorf("the run went on after the server closed every connection")
	}
	if len(sum.Errors) == 0 || !strings.Contains(sum.Errors[0], "wrong key?") {
		t.Errorf("errors %q", sum.Errors)
	}
	if *sum.LinesReceived != 0 || sum.LatencyS.Count != 0 || sum.LatencyS.P50 != nil {
		t.Errorf("summary %+v", sum)
	}
}
