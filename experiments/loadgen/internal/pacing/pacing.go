// Package pacing holds the token-bucket arithmetic used to pace connections.
//
// A Pacer counts from a start instant (a connection's own connect time): by elapsed time
// t it has earned floor(Rate*t) units (bytes, messages or connections), and a sender may
// use whatever it has earned but not used yet. Because the budget is computed from the
// start rather than accumulated tick by tick, late wake-ups and short writes do not add
// up to drift: the next wake-up simply finds more budget.
package pacing

import (
	"math"
	"time"
)

// epsilon absorbs floating-point error so that Budget(Due(n)) >= n always holds.
const epsilon = 1e-6

// Pacer earns Rate units per second from elapsed time zero.
type Pacer struct {
	Rate float64 // units per second; must be > 0
}

// Budget returns the units earned by elapsed time t (zero before the start).
func (p Pacer) Budget(t time.Duration) int64 {
	if t <= 0 {
		return 0
	}
	v := math.Floor(p.Rate*t.Seconds() + epsilon)
	if v >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// Allowed returns the units that may be used at elapsed time t when used units were
// already spent; never negative.
func (p Pacer) Allowed(t time.Duration, used int64) int64 {
	if a := p.Budget(t) - used; a > 0 {
		return a
	}
	return 0
}

// Due returns the earliest elapsed time at which Budget reaches units.
func (p Pacer) Due(units int64) time.Duration {
	if units <= 0 {
		return 0
	}
	secs := float64(units) / p.Rate
	if secs > float64(math.MaxInt64)/1e9 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(math.Ceil(secs * 1e9))
}

// Batch returns how many messages a write-combining sender should wait for before it
// writes: about minBytes (one MTU, as tcpkali does), but no fewer than minInterval's
// worth (to bound wake-ups at high rates) and no more than maxInterval's worth (to keep
// low rates smooth); always at least one message.
func Batch(msgsPerSec float64, msgLen int, minBytes int, minInterval, maxInterval time.Duration) int {
	if msgLen <= 0 || msgsPerSec <= 0 {
		return 1
	}
	n := math.Ceil(float64(minBytes) / float64(msgLen))
	if hi := math.Floor(msgsPerSec * maxInterval.Seconds()); n > hi {
		n = hi
	}
	if lo := math.Ceil(msgsPerSec * minInterval.Seconds()); n < lo {
		n = lo
	}
	if n < 1 {
		n = 1
	}
	if n > 1<<30 {
		n = 1 << 30
	}
	return int(n)
}
