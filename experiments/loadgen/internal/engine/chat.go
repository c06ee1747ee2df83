package engine

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"papaya/loadgen/internal/chat"
	"papaya/loadgen/internal/histogram"
	"papaya/loadgen/internal/summary"
)

const (
	lineReadBytes = 16 << 10 // per-connection read buffer in chat mode; > chat.MaxLine
	drainPoll     = 5 * time.Millisecond
)

// Chat configures chat mode: every connection writes Key first, then lines of
// MessageSize bytes at Params.MessageRate, as UsernamePrefix<i> (i from 1), and reads
// and tallies everything it receives. At the end of the run the connections stay open
// up to Drain for lines in flight.
type Chat struct {
	Key            []byte
	MessageSize    int
	UsernamePrefix string
	Drain          time.Duration
}

// chatRun is the run-wide chat state.
type chatRun struct {
	runID    string
	seq      atomic.Int64 // sequence numbers handed out to lines, all connections
	base     time.Time    // the line clock: Unix time at base, then the monotonic clock
	baseUnix int64
	reading  atomic.Int64 // readers still running

	mu     sync.Mutex
	unsent [][2]int64 // ranges of sequence numbers given to lines not written whole

	drained time.Duration
}

// chatConn is one connection's chat state.
type chatConn struct {
	user   []byte
	tally  atomic.Pointer[chat.Tally] // set once the key is sent (the join)
	endSeq atomic.Int64               // chatRun.seq when the reader stopped; -1 while reading
	lines  int64                      // lines written whole; owned by the sender
	buf    []byte
}

func (r *run) prepareChat() {
	r.chat.runID = chat.NewRunID()
	r.chat.base = time.Now()
	r.chat.baseUnix = r.chat.base.UnixNano()
	for i, c := range r.conns {
		c.chat.user = chat.UserName(r.p.Chat.UsernamePrefix, i)
		c.chat.endSeq.Store(-1)
	}
}

// now is the line clock in Unix nanoseconds: the wall clock at the start of the run
// advanced by the monotonic clock, so that a wall-clock step during the run does not
// distort latencies measured within this process.
func (r *run) now() int64 {
	return r.chat.baseUnix + int64(time.Since(r.chat.base))
}

// join writes the key and starts the connection's tally; false if the write failed.
// Lines numbered from here on were sent after the join, and the connection expects them.
func (r *run) join(c *conn) bool {
	if !r.write(c, r.p.Chat.Key, 1) {
		return false
	}
	c.chat.tally.Store(chat.NewTally(r.chat.runID, r.p.Chat.UsernamePrefix, len(r.conns),
		r.chat.seq.Load()))
	r.chat.reading.Add(1)
	return true
}

type countingReader struct{ c *conn }

func (cr countingReader) Read(b []byte) (int, error) {
	n, err := cr.c.nc.Read(b)
	cr.c.recv.Add(int64(n))
	return n, err
}

// readLines reads the connection's lines into its tally until the connection ends.
func (r *run) readLines(c *conn) {
	defer r.readers.Done()
	defer func() {
		c.chat.endSeq.Store(r.chat.seq.Load())
		r.chat.reading.Add(-1)
	}()
	t := c.chat.tally.Load()
	br := bufio.NewReaderSize(countingReader{c}, lineReadBytes)
	long := false // in a line longer than the buffer (no protocol line is)
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case err == nil && long:
			t.Other++
			long = false
		case err == nil:
			t.Add(line, r.now())
		case errors.Is(err, bufio.ErrBufferFull):
			long = true
		case errors.Is(err, io.EOF) && c.recv.Load() == 0:
			r.failWith(c, "read: connection closed by the server before it sent anything (wrong key?)")
			return
		default:
			r.fail(c, "read", err)
			return
		}
	}
}

// writeLines writes n lines, several per write with write combining on.
func (r *run) writeLines(c *conn, n int64) bool {
	size := r.p.Chat.MessageSize
	per := int64(1)
	if r.p.WriteCombine {
		per = max(1, int64(bufferBytes/size))
	}
	for n > 0 {
		k := min(n, per)
		first := r.chat.seq.Add(k) - k + 1
		now := r.now()
		buf := c.chat.buf[:0]
		for i := int64(0); i < k; i++ {
			buf = chat.AppendLine(buf, c.chat.user, now, first+i, r.chat.runID, size)
		}
		c.chat.buf = buf
		w, err := c.nc.Write(buf)
		c.sent += int64(w)
		if err != nil {
			whole := int64(bytes.Count(buf[:w], []byte{'\n'}))
			c.msgs += whole
			c.chat.lines += whole
			r.chat.mu.Lock()
			r.chat.unsent = append(r.chat.unsent, [2]int64{first + whole, first + k - 1})
			r.chat.mu.Unlock()
			r.fail(c, "write", err)
			return false
		}
		c.msgs += k
		c.chat.lines += k
		n -= k
	}
	return true
}

// lineCounts returns the lines received so far (live, as the tallies count them) and
// the lines expected: for every joined connection, the lines numbered after its join
// and until its reader stopped (or until now), less those not written whole.
func (r *run) lineCounts() (received, expected int64) {
	now := r.chat.seq.Load()
	r.chat.mu.Lock()
	unsent := append([][2]int64(nil), r.chat.unsent...)
	r.chat.mu.Unlock()
	for _, c := range r.conns {
		t := c.chat.tally.Load()
		if t == nil {
			continue
		}
		end := c.chat.endSeq.Load()
		if end < 0 {
			end = now
		}
		received += t.Live()
		expected += end - t.Joined()
		for _, u := range unsent {
			lo, hi := max(u[0], t.Joined()+1), min(u[1], end)
			if hi >= lo {
				expected -= hi - lo + 1
			}
		}
	}
	return received, expected
}

// drain waits, up to the drain time, until every expected line has arrived or no
// reader is left.
func (r *run) drain() {
	start := time.Now()
	deadline := start.Add(r.p.Chat.Drain)
	for r.chat.reading.Load() > 0 && time.Now().Before(deadline) {
		if received, expected := r.lineCounts(); received >= expected {
			break
		}
		time.Sleep(drainPoll)
	}
	r.chat.drained = time.Since(start)
}

// summarizeChat adds the chat fields to s once every reader and sender has stopped.
func (r *run) summarizeChat(s *summary.Summary) {
	h := histogram.New()
	var sent, other, outOfOrder int64
	keySent := s.Connections.Opened > 0
	for _, c := range r.conns {
		if !c.opened {
			continue
		}
		sent += c.chat.lines
		t := c.chat.tally.Load()
		if t == nil {
			keySent = false
			continue
		}
		other += t.Other
		outOfOrder += t.OutOfOrder
		h.Merge(t.Latency)
	}
	received, expected := r.lineCounts()
	s.LinesSent = summary.Int(sent)
	s.LinesReceived = summary.Int(received)
	s.LinesExpected = summary.Int(expected)
	s.LinesOutOfOrder = summary.Int(outOfOrder)
	s.LinesOtherReceived = summary.Int(other)
	s.LatencyS = summary.LatencyOf(h)
	s.Chat = &summary.Chat{
		MessageRate:    r.p.MessageRate,
		MessageSize:    r.p.Chat.MessageSize,
		UsernamePrefix: r.p.Chat.UsernamePrefix,
		KeySent:        keySent,
		RunID:          r.chat.runID,
		DrainS:         summary.Round(r.chat.drained.Seconds(), 3),
	}
}
