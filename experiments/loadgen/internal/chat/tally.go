package chat

import (
	"bytes"
	"strconv"
	"sync/atomic"

	"papaya/loadgen/internal/histogram"
)

// Tally is what one receiving connection keeps of the lines it gets. A line counts as
// live when it is one of this run's and was sent after the connection joined (its Seq
// is above the run's line counter at the join); its delivery latency is recorded. Lines
// sent before the join (history), other runs' lines and lines in any other format count
// as Other. A live line whose Seq is not above the last one received from the same
// sender (a duplicate, or a line out of its sender's order; a correct server delivers
// neither) counts as OutOfOrder instead.
//
// Add and the exported fields belong to one goroutine; Live may be read from any.
type Tally struct {
	Latency    *histogram.Histogram // live lines' receive time − send time, in ns
	Other      int64
	OutOfOrder int64

	live   atomic.Int64
	run    []byte
	prefix []byte
	joined int64
	last   []int64 // by sender index: the highest Seq received
}

// NewTally returns the tally of a connection that joined when the run's line counter
// stood at joined, in a run whose senders are prefix1 … prefixN (N = senders).
func NewTally(run, prefix string, senders int, joined int64) *Tally {
	return &Tally{
		Latency: histogram.New(),
		run:     []byte(run),
		prefix:  []byte(prefix),
		joined:  joined,
		last:    make([]int64, senders),
	}
}

// Joined returns the run's line counter at the connection's join.
func (t *Tally) Joined() int64 { return t.joined }

// Live returns the number of live lines received so far.
func (t *Tally) Live() int64 { return t.live.Load() }

// Add counts one received line (newline included) received at now (Unix nanoseconds).
func (t *Tally) Add(line []byte, now int64) {
	l, ok := Parse(line)
	if !ok || l.Seq <= t.joined || !bytes.Equal(l.Run, t.run) {
		t.Other++
		return
	}
	i, ok := t.sender(l.User)
	if !ok {
		t.Other++
		return
	}
	if l.Seq <= t.last[i] {
		t.OutOfOrder++
		return
	}
	t.last[i] = l.Seq
	t.live.Add(1)
	t.Latency.Record(now - l.T)
}

// sender returns the index (0-based) of user name prefix<n>, n in 1..senders.
func (t *Tally) sender(user []byte) (int, bool) {
	if !bytes.HasPrefix(user, t.prefix) {
		return 0, false
	}
	digits := user[len(t.prefix):]
	if len(digits) == 0 || digits[0] == '0' {
		return 0, false
	}
	n, rest, ok := number(digits)
	if !ok || len(rest) != 0 || n > int64(len(t.last)) {
		return 0, false
	}
	return int(n - 1), true
}

// UserName returns the user name of sender i (0-based): prefix followed by i+1.
func UserName(prefix string, i int) []byte {
	return []byte(prefix + strconv.Itoa(i+1))
}
