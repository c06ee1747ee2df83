// Package summary defines the JSON summary the load generator prints at the end of a
// run (the "loadgen.json" schema in data/README.md) and the small statistics behind it.
package summary

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"sync"

	"papaya/loadgen/internal/histogram"
)

// Tool and Version identify the load generator in its summary and in --version.
const (
	Tool    = "papaya-loadgen"
	Version = "0.2.0"
)

// Connections counts connections; Requested == Opened + Failed.
type Connections struct {
	Requested int `json:"requested"`
	Opened    int `json:"opened"`
	Failed    int `json:"failed"`
}

// Spread is the minimum, median and maximum of per-connection values (null when there
// are none).
type Spread struct {
	Min    *float64 `json:"min"`
	Median *float64 `json:"median"`
	Max    *float64 `json:"max"`
}

// Latency is the distribution of chat lines' delivery latency in seconds; the values are
// null when there are no samples (Count 0).
type Latency struct {
	Count int64    `json:"count"`
	Min   *float64 `json:"min"`
	P50   *float64 `json:"p50"`
	P90   *float64 `json:"p90"`
	P99   *float64 `json:"p99"`
	P999  *float64 `json:"p999"`
	Max   *float64 `json:"max"`
	Mean  *float64 `json:"mean"`
}

// Chat describes a chat-mode run's load.
type Chat struct {
	MessageRate    float64 `json:"message_rate"`    // lines per second per connection
	MessageSize    int     `json:"message_size"`    // bytes per line, newline included
	UsernamePrefix string  `json:"username_prefix"` // connection i (from 1) sends as prefix<i>
	KeySent        bool    `json:"key_sent"`        // every opened connection sent the whole key first
	RunID          string  `json:"run_id"`          // tells this run's lines from others'
	DrainS         float64 `json:"drain_s"`         // time waited after the end for lines in flight
}

// Summary is one run's result. Bandwidths are bits per second; TargetBandwidthBps is per
// connection and null when the run is unpaced. The Lines fields and Chat are null
// outside chat mode.
type Summary struct {
	Tool                      string      `json:"tool"`
	Version                   string      `json:"version"`
	Target                    string      `json:"target"`
	Connections               Connections `json:"connections"`
	DurationS                 float64     `json:"duration_s"`
	BytesSent                 int64       `json:"bytes_sent"`
	BytesReceived             int64       `json:"bytes_received"`
	MessagesSent              int64       `json:"messages_sent"`
	TargetBandwidthBps        *float64    `json:"target_bandwidth_bps"`
	AggregateBandwidthBps     *float64    `json:"aggregate_bandwidth_bps"`
	PerConnectionBandwidthBps Spread      `json:"per_connection_bandwidth_bps"`
	Errors                    []string    `json:"errors"`
	LinesSent                 *int64      `json:"lines_sent"`
	LinesReceived             *int64      `json:"lines_received"`
	LinesExpected             *int64      `json:"lines_expected"`
	LinesOutOfOrder           *int64      `json:"lines_out_of_order"`
	LinesOtherReceived        *int64      `json:"lines_other_received"`
	LatencyS                  Latency     `json:"latency_s"`
	Chat                      *Chat       `json:"chat"`
}

// JSON returns the summary as indented JSON followed by a newline.
func (s *Summary) JSON() ([]byte, error) {
	if s.Errors == nil {
		s.Errors = []string{}
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// SpreadOf returns the min, median and max of values, rounded to 0.001.
func SpreadOf(values []float64) Spread {
	if len(values) == 0 {
		return Spread{}
	}
	v := append([]float64(nil), values...)
	sort.Float64s(v)
	n := len(v)
	med := v[n/2]
	if n%2 == 0 {
		med = (v[n/2-1] + v[n/2]) / 2
	}
	return Spread{Min: Float(v[0]), Median: Float(med), Max: Float(v[n-1])}
}

// LatencyOf summarizes a histogram of nanoseconds in seconds (to the nanosecond).
func LatencyOf(h *histogram.Histogram) Latency {
	l := Latency{Count: h.Count()}
	if l.Count == 0 {
		return l
	}
	sec := func(ns float64) *float64 {
		v := Round(ns/1e9, 9)
		return &v
	}
	q := func(p float64) *float64 { return sec(float64(h.Quantile(p))) }
	l.Min, l.Max, l.Mean = sec(float64(h.Min())), sec(float64(h.Max())), sec(h.Mean())
	l.P50, l.P90, l.P99, l.P999 = q(0.5), q(0.9), q(0.99), q(0.999)
	return l
}

// Int returns a pointer to n (for the nullable fields).
func Int(n int64) *int64 { return &n }

// Float returns a pointer to x rounded to 0.001 (for the nullable fields).
func Float(x float64) *float64 {
	r := Round(x, 3)
	return &r
}

// Round rounds x to the given number of decimal places.
func Round(x float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
}

// Errors collects error messages, deduplicated in order of first appearance; safe for
// concurrent use.
type Errors struct {
	mu     sync.Mutex
	order  []string
	counts map[string]int
}

// Add records one occurrence of msg.
func (e *Errors) Add(msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.counts == nil {
		e.counts = make(map[string]int)
	}
	if e.counts[msg] == 0 {
		e.order = append(e.order, msg)
	}
	e.counts[msg]++
}

// List returns the messages, each followed by " (xN)" when it occurred N > 1 times.
func (e *Errors) List() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.order))
	for _, msg := range e.order {
		if n := e.counts[msg]; n > 1 {
			out = append(out, fmt.Sprintf("%s (x%d)", msg, n))
		} else {
			out = append(out, msg)
		}
	}
	return out
}
