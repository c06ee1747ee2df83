package pacing

import (
	"testing"
	"time"
)

func TestBudget(t *testing.T) {
	p := Pacer{Rate: 125000} // 1 Mbps in bytes/s
	cases := map[time.Duration]int64{
		-time.Second:            0,
		0:                       0,
		time.Millisecond:        125,
		8 * time.Microsecond:    1,
		7 * time.Microsecond:    0, // 0.875 bytes earned: not yet one
		time.Second:             125000,
		10 * time.Second:        1250000,
		1500 * time.Millisecond: 187500,
	}
	for d, want := range cases {
		if got := p.Budget(d); got != want {
			t.Errorf("Budget(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestAllowedIsBudgetMinusUsedNeverNegative(t *testing.T) {
	p := Pacer{Rate: 12500} // 100 kbps
	if got := p.Allowed(time.Second, 10000); got != 2500 {
		t.Errorf("Allowed = %d, want 2500", got)
	}
	if got := p.Allowed(time.Second, 20000); got != 0 {
		t.Errorf("Allowed when ahead = %d, want 0", got)
	}
}

func TestDueIsEarliestTimeBudgetSuffices(t *testing.T) {
	for _, rate := range []float64{1, 3, 100, 12500, 125000, 1e9 / 8, 1562.5, 0.7} {
		p := Pacer{Rate: rate}
		for _, units := range []int64{1, 2, 7, 100, 1460, 123457} {
			d := p.Due(units)
			if got := p.Budget(d); got < units {
				t.Fatalf("rate %g: Budget(Due(%d)=%v) = %d < %d", rate, units, d, got, units)
			}
			exact := time.Duration(float64(units) / rate * 1e9)
			if d < exact || d-exact > time.Microsecond {
				t.Fatalf("rate %g: Due(%d) = %v, want about %v", rate, units, d, exact)
			}
		}
	}
	if got := (Pacer{Rate: 10}).Due(0); got != 0 {
		t.Errorf("Due(0) = %v, want 0", got)
	}
}

// A sender that wakes late, at irregular times, still ends up exactly on the
// cumulative budget: lateness does not accumulate into drift.
func TestCumulativePacingHasNoDrift(t *testing.T) {
	p := Pacer{Rate: 12500}
	const msg = 8
	var used int64
	var now time.Duration
	for i := 0; i < 1000; i++ {
		now += 9*time.Millisecond + time.Duration(i%7)*time.Millisecond // jittery ticks
		n := p.Allowed(now, used) / msg
		used += n * msg
	}
	want := p.Budget(now)
	if used > want || want-used >= msg {
		t.Fatalf("after %v used %d bytes, budget %d: off by more than one message", now, used, want)
	}
}

func TestBatch(t *testing.T) {
	cases := []struct {
		name       string
		msgsPerSec float64
		msgLen     int
		minBytes   int
		want       int
	}{
		// 1 Mbps of 8-byte messages: one MTU (183 messages) every 11.7 ms.
		{"1Mbps", 15625, 8, 1460, 183},
		// 100 kbps: an MTU would take 117 ms; capped at 50 ms worth (78 messages).
		{"100kbps", 1562.5, 8, 1460, 78},
		// 1 Gbps: an MTU every 12 us is too often; at least 2 ms worth.
		{"1Gbps", 1.5625e7, 8, 1460, 31250},
		// Large messages: one per write.
		{"big messages", 100, 4000, 1460, 1},
		// Slow rates: never below one message.
		{"slow", 1, 8, 1460, 1},
		// No combining (minBytes 0): one message per wake-up unless that is too often.
		{"no combining", 100, 8, 0, 1},
		{"no combining fast", 10000, 8, 0, 20},
	}
	// A fixed interval (minInterval == maxInterval, minBytes 0): that interval's worth.
	if got := Batch(15625, 8, 0, 5*time.Millisecond, 5*time.Millisecond); got != 79 {
		t.Errorf("fixed 5ms at 1 Mbps: Batch = %d, want 79", got)
	}
	for _, c := range cases {
		got := Batch(c.msgsPerSec, c.msgLen, c.minBytes, 2*time.Millisecond, 50*time.Millisecond)
		if got != c.want {
			t.Errorf("%s: Batch = %d, want %d", c.name, got, c.want)
		}
	}
}
