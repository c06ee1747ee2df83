package engine

import (
	"bytes"
	"context"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink accepts connections on loopback and keeps what each one sent.
type sink struct {
	ln   net.Listener
	mu   sync.Mutex
	data []*bytes.Buffer
	wg   sync.WaitGroup
}

func newSink(t *testing.T) *sink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := &bytes.Buffer{}
			s.mu.Lock()
			s.data = append(s.data, buf)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				b := make([]byte, 4096)
				for {
					n, err := c.Read(b)
					s.mu.Lock()
					buf.Write(b[:n])
					s.mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return s
}

func (s *sink) received() []string {
	s.ln.Close()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.data))
	for i, b := range s.data {
		out[i] = b.String()
	}
	return out
}

func TestPacedRunWithFirstMessage(t *testing.T) {
	s := newSink(t)
	p := Params{
		Target: s.ln.Addr().String(), Connections: 4, Duration: 1500 * time.Millisecond,
		Message: []byte("message\n"), FirstMessage: []byte("HELLO\n"), HasFirst: true,
		BandwidthBps: 1e6, ConnectRate: 1e5, ConnectTimeout: time.Second, WriteCombine: true,
	}
	sum := Run(context.Background(), p)
	got := s.received()
	if sum.Connections.Opened != 4 || sum.Connections.Failed != 0 || len(sum.Errors) != 0 {
		t.Fatalf("summary %+v", sum)
	}
	var total int64
	for i, d := range got {
		if !strings.HasPrefix(d, "HELLO\nmessage\n") {
			t.Errorf("connection %d starts with %q", i, d[:min(len(d), 20)])
		}
		rest := strings.TrimPrefix(d, "HELLO\n")
		if strings.Count(rest, "message\n")*8 != len(rest) {
			t.Errorf("connection %d: stream is not whole messages", i)
		}
		total += int64(len(d))
	}
	if total != sum.BytesSent {
		t.Errorf("sink received %d bytes, summary says %d sent", total, sum.BytesSent)
	}
	// 4 x 1 Mbps for ~1.5 s = 750 kB; each connection's bytes are paced from its own start.
	for name, v := range map[string]float64{
		"min": *sum.PerConnectionBandwidthBps.Min, "max": *sum.PerConnectionBandwidthBps.Max,
	} {
		if math.Abs(v/1e6-1) > 0.02 {
			t.Errorf("per-connection %s = %.0f bps, want 1 Mbps +-2%%", name, v)
		}
	}
	if agg := *sum.AggregateBandwidthBps; math.Abs(agg/4e6-1) > 0.03 {
		t.Errorf("aggregate = %.0f bps, want 4 Mbps +-3%%", agg)
	}
	if sum.MessagesSent != (sum.BytesSent-4*6)/8+4 {
		t.Errorf("messages_sent %d does not match %d bytes", sum.MessagesSent, sum.BytesSent)
	}
}

func TestWriteCombineOffAndMessageRate(t *testing.T) {
	s := newSink(t)
	p := Params{
		Target: s.ln.Addr().String(), Connections: 2, Duration: time.Second,
		Message: []byte("0123456789"), MessageRate: 200, ConnectRate: 1e5,
		ConnectTimeout: time.Second, WriteCombine: false, NoDelay: true,
	}
	sum := Run(context.Background(), p)
	s.received()
	// 200 messages/s of 10 bytes = 16 kbps per connection, ~400 messages in total.
	if *sum.TargetBandwidthBps != 16000 {
		t.Errorf("target = %v", *sum.TargetBandwidthBps)
	}
	if sum.MessagesSent < 390 || sum.MessagesSent > 401 {
		t.Errorf("messages_sent = %d, want about 400", sum.MessagesSent)
	}
}

func TestRefusedConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	start := time.Now()
	sum := Run(context.Background(), Params{
		Target: addr, Connections: 3, Duration: 10 * time.Second, Message: []byte("x"),
		BandwidthBps: 1e5, ConnectRate: 1e4, ConnectTimeout: time.Second, WriteCombine: true,
	})
	if time.Since(start) > 3*time.Second {
		t.Errorf("run did not stop early when every connection failed")
	}
	if sum.Connections.Opened != 0 || sum.Connections.Failed != 3 {
		t.Errorf("connections %+v", sum.Connections)
	}
	if len(sum.Errors) != 1 || sum.Errors[0] != "connect: connection refused (x3)" {
		t.Errorf("errors %q", sum.Errors)
	}
	if sum.AggregateBandwidthBps != nil || sum.PerConnectionBandwidthBps.Median != nil {
		t.Errorf("bandwidths should be null: %+v", sum)
	}
}

func TestCancelStopsTheRun(t *testing.T) {
	s := newSink(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	sum := Run(ctx, Params{
		Target: s.ln.Addr().String(), Connections: 2, Duration: time.Minute,
		Message: []byte("x"), BandwidthBps: 1e5, ConnectRate: 1e4,
		ConnectTimeout: time.Second, WriteCombine: true,
	})
	s.received()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancel took %v to stop the run", d)
	}
	if sum.Connections.Opened != 2 || sum.DurationS > 1 {
		t.Errorf("summary %+v", sum)
	}
}

func TestServerClosingIsReported(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.CopyN(io.Discard, c, 100)
			c.Close()
		}
	}()
	sum := Run(context.Background(), Params{
		Target: ln.Addr().String(), Connections: 2, Duration: 5 * time.Second,
		Message: []byte("message\n"), BandwidthBps: 1e6, ConnectRate: 1e4,
		ConnectTimeout: time.Second, WriteCombine: true,
	})
	if sum.Connections.Opened != 2 || len(sum.Errors) == 0 {
		t.Fatalf("summary %+v", sum)
	}
	t.Logf("errors: %q", sum.Errors)
	if sum.DurationS > 4 {
		t.Errorf("run went on for %vs after every connection ended", sum.DurationS)
	}
}

func TestDescribe(t *testing.T) {
	_, err := net.DialTimeout("tcp", "127.0.0.1:1", time.Second)
	if err == nil {
		t.Skip("something listens on port 1")
	}
	if got := Describe("connect", err); got != "connect: connection refused" {
		t.Errorf("Describe = %q", got)
	}
	if got := Describe("read", io.EOF); got != "read: connection closed by the server" {
		t.Errorf("Describe(EOF) = %q", got)
	}
}
