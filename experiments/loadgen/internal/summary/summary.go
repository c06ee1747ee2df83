// Package summary defines the JSON summary the load generator prints at the end of a
// run (the "loadgen.json" schema in data/README.md) and the small statistics behind it.
package summary

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"sync"
)

// Tool and Version identify the load generator in its summary and in --version.
const (
	Tool    = "papaya-loadgen"
	Version = "0.1.0"
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

// Summary is one run's result. Bandwidths are bits per second; TargetBandwidthBps is per
// connection and null when the run is unpaced.
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
