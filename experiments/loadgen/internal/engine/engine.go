// Package engine opens the connections, paces each one's message stream and collects
// the numbers for the summary.
//
// Each connection has a sender goroutine that sleeps on its own timer until its token
// bucket (package pacing, clocked from the connection's own connect time) holds a batch
// of messages, and a reader goroutine that reads and discards whatever the server sends.
// At the end of the run every sender makes one last write of what it has earned up to
// the end instant, so a connection's bytes match rate × active time to within one
// message.
//
// In chat mode (Params.Chat, chat.go) each connection sends the key first, then lines
// that carry their send time, and its reader parses every line it receives and records
// the delivery latency of the run's own lines.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"papaya/loadgen/internal/pacing"
	"papaya/loadgen/internal/summary"
)

// Tunables. A write-combining sender waits for about one MTU of messages (as tcpkali's
// minimal move size), but wakes at least every maxInterval and at most every
// minInterval.
const (
	mtuBytes    = 1460
	minInterval = 2 * time.Millisecond
	maxInterval = 50 * time.Millisecond
	bufferBytes = 64 << 10 // message stream buffer (whole messages)
	readBytes   = 8 << 10  // per-connection read buffer
	grace       = 500 * time.Millisecond
)

// Params describe one run.
type Params struct {
	Target         string
	Connections    int
	Duration       time.Duration
	Message        []byte // may be empty: connect and stay idle
	FirstMessage   []byte // sent once on connect when HasFirst
	HasFirst       bool
	BandwidthBps   float64 // per-connection pacing in bits/s (0: none)
	MessageRate    float64 // per-connection pacing in messages/s (0: none)
	ConnectRate    float64 // connections started per second
	ConnectTimeout time.Duration
	WriteCombine   bool
	WriteInterval  time.Duration // 0: auto
	NoDelay        bool          // TCP_NODELAY
	Chat           *Chat         // chat mode when not nil (Message must then be empty)
	Log            io.Writer     // progress and errors; may be nil
}

type conn struct {
	start  time.Time // connected; the connection's pacing clock starts here
	end    time.Time // end of its active time
	nc     net.Conn
	opened bool
	sent   int64 // owned by the sender goroutine until it exits
	msgs   int64
	recv   atomic.Int64
	dead   chan struct{} // closed on the connection's first error
	once   sync.Once
	diedAt time.Time // valid once dead is closed
	chat   chatConn  // chat mode only
}

type run struct {
	p       Params
	log     io.Writer
	errs    summary.Errors
	conns   []*conn
	stop    chan struct{} // closed when the run ends
	stopCtx context.Context
	start   time.Time // the run's start (first connect attempt)
	endTime time.Time // written before stop is closed

	stream    []byte // the message repeated to about bufferBytes
	streamMsg int    // messages in stream
	batch     int64  // messages per wake-up
	cost      int64  // pacing units per message: bytes (bandwidth) or 1 (message rate)
	rate      float64

	mu      sync.Mutex
	closing bool
	first   time.Time // first connection established

	finished    atomic.Int64 // connections done (failed to connect, or sender exited)
	allFinished chan struct{}
	established atomic.Int64
	senders     sync.WaitGroup
	readers     sync.WaitGroup

	chat chatRun // chat mode only
}

// Run performs the run and returns its summary. It returns when the duration has
// elapsed, when ctx is cancelled (e.g. by a signal), or when every connection has failed
// or ended.
func Run(ctx context.Context, p Params) *summary.Summary {
	r := &run{p: p, log: p.Log, stop: make(chan struct{}), allFinished: make(chan struct{})}
	if r.log == nil {
		r.log = io.Discard
	}
	r.prepare()
	stopCtx, cancelDials := context.WithCancel(context.Background())
	r.stopCtx = stopCtx
	r.conns = make([]*conn, p.Connections)
	for i := range r.conns {
		r.conns[i] = &conn{dead: make(chan struct{})}
	}
	if p.Chat != nil {
		r.prepareChat()
	}

	start := time.Now()
	r.start = start
	deadline := start.Add(p.Duration)
	go r.launch(start)

	timer := time.NewTimer(p.Duration)
	reason := ""
	select {
	case <-timer.C:
	case <-ctx.Done():
		reason = "interrupted"
	case <-r.allFinished:
		reason = "no connection left"
	}
	timer.Stop()
	end := time.Now()
	if end.After(deadline) {
		end = deadline
	}
	r.endTime = end
	close(r.stop)
	cancelDials()
	if reason != "" {
		fmt.Fprintf(r.log, "Stopping early after %.3fs: %s.\n", end.Sub(start).Seconds(), reason)
	}

	// Let senders make their last write (and in chat mode the lines in flight arrive),
	// then close everything still open.
	waitTimeout(&r.senders, grace)
	if p.Chat != nil {
		r.drain()
	}
	r.mu.Lock()
	r.closing = true
	for _, c := range r.conns {
		if c.nc != nil {
			c.nc.Close()
		}
	}
	r.mu.Unlock()
	r.senders.Wait()
	r.readers.Wait()
	s := r.summarize(start)
	if p.Chat != nil {
		r.summarizeChat(s)
	}
	return s
}

// prepare precomputes the stream buffer and the pacing constants.
func (r *run) prepare() {
	p := r.p
	if n := len(p.Message); n > 0 {
		r.streamMsg = bufferBytes / n
		if r.streamMsg < 1 {
			r.streamMsg = 1
		}
		r.stream = make([]byte, 0, r.streamMsg*n)
		for i := 0; i < r.streamMsg; i++ {
			r.stream = append(r.stream, p.Message...)
		}
	}
	var msgsPerSec float64
	switch {
	case p.Chat != nil:
		r.rate = p.MessageRate
		r.cost = 1
		msgsPerSec = p.MessageRate
	case p.BandwidthBps > 0 && len(p.Message) > 0:
		r.rate = p.BandwidthBps / 8 // bytes per second
		r.cost = int64(len(p.Message))
		msgsPerSec = r.rate / float64(len(p.Message))
	case p.MessageRate > 0 && len(p.Message) > 0:
		r.rate = p.MessageRate
		r.cost = 1
		msgsPerSec = p.MessageRate
	}
	msgLen := len(p.Message)
	if p.Chat != nil {
		msgLen = p.Chat.MessageSize
	}
	switch {
	case r.rate == 0:
	case p.WriteInterval > 0:
		r.batch = int64(pacing.Batch(msgsPerSec, msgLen, 0, p.WriteInterval, p.WriteInterval))
	case p.WriteCombine && p.Chat == nil:
		r.batch = int64(pacing.Batch(msgsPerSec, msgLen, mtuBytes, minInterval, maxInterval))
	default: // each message (chat line) when it is due, but at most every minInterval
		r.batch = int64(pacing.Batch(msgsPerSec, msgLen, 0, minInterval, maxInterval))
	}
}

// launch hands connections to the dialers at ConnectRate; the first one at once.
func (r *run) launch(start time.Time) {
	dials := make(chan *conn)
	workers := dialers(len(r.conns))
	for i := 0; i < workers; i++ {
		r.senders.Add(1)
		go r.dialer(dials)
	}
	defer close(dials)

	pacer := pacing.Pacer{Rate: r.p.ConnectRate}
	n := len(r.conns)
	launched := 0
	timer := time.NewTimer(0)
	<-timer.C
	defer timer.Stop()
	notAttempted := func() {
		for ; launched < n; launched++ {
			r.errs.Add("connect: not attempted before the end of the run (raise --connect-rate?)")
		}
	}
	for launched < n {
		allowed := pacer.Budget(time.Since(start)) + 1
		for launched < n && int64(launched) < allowed {
			select {
			case dials <- r.conns[launched]:
				launched++
			case <-r.stop:
				notAttempted()
				return
			}
		}
		if launched >= n {
			return
		}
		timer.Reset(time.Until(start.Add(pacer.Due(int64(launched)))))
		select {
		case <-timer.C:
		case <-r.stop:
			notAttempted()
			return
		}
	}
}

// dialers returns how many connections are dialled concurrently. A few dialers keep
// each connect quick; a thousand goroutines dialling at once on two cores would each
// wait long to be scheduled, delaying most connections' start (and lowering the
// aggregate over the load window).
func dialers(connections int) int {
	n := 128 * runtime.GOMAXPROCS(0)
	if n > connections {
		n = connections
	}
	return n
}

func (r *run) connectionDone() {
	if r.finished.Add(1) == int64(len(r.conns)) {
		close(r.allFinished)
	}
}

// dialer connects the connections it is handed and starts a goroutine serving each.
func (r *run) dialer(dials <-chan *conn) {
	defer r.senders.Done()
	d := net.Dialer{Timeout: r.p.ConnectTimeout}
	for c := range dials {
		if r.connect(&d, c) {
			r.senders.Add(1)
			go r.serve(c)
		} else {
			r.connectionDone()
		}
	}
}

// connect dials c and records the outcome; false when it did not open.
func (r *run) connect(d *net.Dialer, c *conn) bool {
	nc, err := d.DialContext(r.stopCtx, "tcp", r.p.Target)
	if err != nil {
		if r.stopCtx.Err() != nil {
			r.errs.Add("connect: not established before the end of the run")
		} else {
			r.errs.Add(Describe("connect", err))
		}
		return false
	}
	now := time.Now()
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		nc.Close()
		r.errs.Add("connect: not established before the end of the run")
		return false
	}
	c.nc, c.start, c.opened = nc, now, true
	if r.first.IsZero() || now.Before(r.first) {
		r.first = now
	}
	r.mu.Unlock()
	if r.established.Add(1) == int64(len(r.conns)) {
		fmt.Fprintf(r.log, "Ramped up to %d connections in %.3fs.\n", len(r.conns),
			now.Sub(r.start).Seconds())
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(r.p.NoDelay)
	}
	return true
}

// serve runs an open connection: its reader, and its sender until the end of the run.
func (r *run) serve(c *conn) {
	defer r.senders.Done()
	defer r.connectionDone()
	if r.p.Chat != nil {
		if !r.join(c) {
			c.end = r.endOf(c)
			return
		}
		r.readers.Add(1)
		go r.readLines(c)
	} else {
		r.readers.Add(1)
		go r.read(c)
	}
	r.send(c)
}

// fail records the connection's first error (unless the run is over) and marks it dead.
func (r *run) fail(c *conn, op string, err error) {
	r.failWith(c, Describe(op, err))
}

// failWith is fail with the error already described.
func (r *run) failWith(c *conn, msg string) {
	c.once.Do(func() {
		c.diedAt = time.Now()
		select {
		case <-r.stop:
		default:
			r.errs.Add(msg)
		}
		close(c.dead)
	})
}

func (r *run) stopped() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

func (r *run) read(c *conn) {
	defer r.readers.Done()
	buf := make([]byte, readBytes)
	for {
		n, err := c.nc.Read(buf)
		if n > 0 {
			c.recv.Add(int64(n))
		}
		if err != nil {
			r.fail(c, "read", err)
			return
		}
	}
}

// send runs the connection's message stream until the end of the run or its death, and
// sets c.end.
func (r *run) send(c *conn) {
	defer func() {
		c.end = r.endOf(c)
	}()
	var used int64 // pacing units spent
	if r.p.HasFirst && len(r.p.FirstMessage) > 0 {
		if !r.write(c, r.p.FirstMessage, 1) {
			return
		}
		if r.cost > 1 { // bandwidth pacing counts the first message's bytes
			used += int64(len(r.p.FirstMessage))
		}
	}
	switch {
	case r.p.Chat != nil:
		r.sendPaced(c, used)
	case len(r.p.Message) == 0:
		select {
		case <-r.stop:
		case <-c.dead:
		}
	case r.rate == 0:
		r.sendUnpaced(c)
	default:
		r.sendPaced(c, used)
	}
}

func (r *run) endOf(c *conn) time.Time {
	select {
	case <-c.dead:
		if c.diedAt.Before(r.endTimeIfStopped()) {
			return c.diedAt
		}
	default:
	}
	return r.endTimeIfStopped()
}

// endTimeIfStopped returns the run's end time, or now when the run is still going
// (only possible for a connection that died).
func (r *run) endTimeIfStopped() time.Time {
	if r.stopped() {
		return r.endTime
	}
	return time.Now()
}

func (r *run) sendPaced(c *conn, used int64) {
	pacer := pacing.Pacer{Rate: r.rate}
	timer := time.NewTimer(time.Until(c.start.Add(pacer.Due(used + r.batch*r.cost))))
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
		case <-c.dead:
			return
		case <-r.stop:
			// Last write: whatever was earned up to the end instant.
			if n := pacer.Allowed(r.endTime.Sub(c.start), used) / r.cost; n > 0 {
				_ = c.nc.SetWriteDeadline(time.Now().Add(grace))
				r.writeMessages(c, n)
			}
			return
		}
		n := pacer.Allowed(time.Since(c.start), used) / r.cost
		if n > 0 {
			if !r.writeMessages(c, n) {
				return
			}
			used += n * r.cost
		}
		timer.Reset(time.Until(c.start.Add(pacer.Due(used + r.batch*r.cost))))
	}
}

func (r *run) sendUnpaced(c *conn) {
	for !r.stopped() {
		if !r.writeMessages(c, int64(r.streamMsg)) {
			return
		}
	}
}

// writeMessages writes n messages, combined into as few writes as the stream buffer
// allows, or one per write with write combining off.
func (r *run) writeMessages(c *conn, n int64) bool {
	if r.p.Chat != nil {
		return r.writeLines(c, n)
	}
	if !r.p.WriteCombine {
		for ; n > 0; n-- {
			if !r.write(c, r.p.Message, 1) {
				return false
			}
		}
		return true
	}
	msgLen := int64(len(r.p.Message))
	for n > 0 {
		k := n
		if k > int64(r.streamMsg) {
			k = int64(r.streamMsg)
		}
		if !r.write(c, r.stream[:k*msgLen], k) {
			return false
		}
		n -= k
	}
	return true
}

// write writes b, which holds msgs whole messages, and accounts for it.
func (r *run) write(c *conn, b []byte, msgs int64) bool {
	w, err := c.nc.Write(b)
	c.sent += int64(w)
	if err != nil {
		if msgs > 1 {
			c.msgs += int64(w) / int64(len(r.p.Message))
		}
		r.fail(c, "write", err)
		return false
	}
	c.msgs += msgs
	return true
}

func (r *run) summarize(start time.Time) *summary.Summary {
	s := &summary.Summary{
		Tool:        summary.Tool,
		Version:     summary.Version,
		Target:      r.p.Target,
		Connections: summary.Connections{Requested: len(r.conns)},
	}
	var bws []float64
	for _, c := range r.conns {
		if !c.opened {
			continue
		}
		s.Connections.Opened++
		s.BytesSent += c.sent
		s.BytesReceived += c.recv.Load()
		s.MessagesSent += c.msgs
		if active := c.end.Sub(c.start).Seconds(); active > 0 {
			bws = append(bws, float64(c.sent)*8/active)
		}
	}
	s.Connections.Failed = s.Connections.Requested - s.Connections.Opened
	window := r.endTime.Sub(start)
	if s.Connections.Opened > 0 {
		window = r.endTime.Sub(r.first)
		if window > 0 {
			s.AggregateBandwidthBps = summary.Float(float64(s.BytesSent) * 8 / window.Seconds())
		}
	}
	s.DurationS = summary.Round(window.Seconds(), 6)
	if t := r.targetBps(); t > 0 {
		s.TargetBandwidthBps = summary.Float(t)
	}
	s.PerConnectionBandwidthBps = summary.SpreadOf(bws)
	s.Errors = r.errs.List()
	return s
}

func (r *run) targetBps() float64 {
	switch {
	case r.p.Chat != nil:
		return r.p.MessageRate * float64(r.p.Chat.MessageSize) * 8
	case len(r.p.Message) == 0:
		return 0
	case r.p.BandwidthBps > 0:
		return r.p.BandwidthBps
	case r.p.MessageRate > 0:
		return r.p.MessageRate * float64(len(r.p.Message)) * 8
	}
	return 0
}

// Describe turns a network error into a short, address-free message suitable for
// deduplication, e.g. "connect: connection refused" or "write: broken pipe".
func Describe(op string, err error) string {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Error()
	}
	if errors.Is(err, io.EOF) {
		return op + ": connection closed by the server"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return op + ": timeout"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return op + ": " + oe.Err.Error()
	}
	return op + ": " + err.Error()
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}
