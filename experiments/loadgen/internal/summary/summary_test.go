package summary

import (
	"encoding/json"
	"reflect"
	"sync"
	"testing"

	"papaya/loadgen/internal/histogram"
)

func TestSpreadOf(t *testing.T) {
	s := SpreadOf([]float64{3, 1, 2})
	if *s.Min != 1 || *s.Median != 2 || *s.Max != 3 {
		t.Errorf("odd: got %v %v %v", *s.Min, *s.Median, *s.Max)
	}
	s = SpreadOf([]float64{4, 1, 3, 2})
	if *s.Min != 1 || *s.Median != 2.5 || *s.Max != 4 {
		t.Errorf("even: got %v %v %v", *s.Min, *s.Median, *s.Max)
	}
	if s := SpreadOf(nil); s.Min != nil || s.Median != nil || s.Max != nil {
		t.Errorf("empty: want nulls")
	}
}

func TestErrorsDeduplicateInOrder(t *testing.T) {
	var e Errors
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.Add("connect: connection refused")
		}()
	}
	wg.Wait()
	e.Add("write: broken pipe")
	want := []string{"connect: connection refused (x3)", "write: broken pipe"}
	if got := e.List(); !reflect.DeepEqual(got, want) {
		t.Errorf("List() = %q, want %q", got, want)
	}
}

func TestJSONSchema(t *testing.T) {
	s := Summary{Tool: Tool, Version: Version, Target: "127.0.0.1:50000",
		Connections: Connections{Requested: 4, Opened: 4}, DurationS: 10,
		BytesSent: 5000000, MessagesSent: 625000, TargetBandwidthBps: Float(1e6),
		AggregateBandwidthBps: Float(4e6), PerConnectionBandwidthBps: SpreadOf([]float64{1e6})}
	b, err := s.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"tool", "version", "target", "connections", "duration_s",
		"bytes_sent", "bytes_received", "messages_sent", "target_bandwidth_bps",
		"aggregate_bandwidth_bps", "per_connection_bandwidth_bps", "errors", "lines_sent",
		"lines_received", "lines_expected", "lines_out_of_order", "lines_other_received",
		"latency_s", "chat"} {
		if _, ok := m[k]; !ok {
			t.Errorf("missing key %q in %s", k, b)
		}
	}
	if len(m) != 19 {
		t.Errorf("got %d keys, want 19: %s", len(m), b)
	}
	// Outside chat mode the chat fields are null and latency_s has no samples.
	for _, k := range []string{"lines_sent", "lines_received", "lines_expected", "chat"} {
		if m[k] != nil {
			t.Errorf("%s = %v, want null", k, m[k])
		}
	}
	want := map[string]any{"count": 0.0, "min": nil, "p50": nil, "p90": nil, "p99": nil,
		"p999": nil, "max": nil, "mean": nil}
	if !reflect.DeepEqual(m["latency_s"], want) {
		t.Errorf("latency_s = %v, want %v", m["latency_s"], want)
	}
	if errs, ok := m["errors"].([]any); !ok || len(errs) != 0 {
		t.Errorf("errors should be an empty list, got %v", m["errors"])
	}
	// Large bandwidths are plain numbers, not exponent notation.
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(b, &raw)
	if got := string(raw["aggregate_bandwidth_bps"]); got != "4000000" {
		t.Errorf("aggregate_bandwidth_bps encoded as %s", got)
	}
}

func TestLatencyOf(t *testing.T) {
	h := histogram.New()
	for v := int64(1); v <= 1000; v++ {
		h.Record(v * 1000) // 1 µs .. 1 ms
	}
	l := LatencyOf(h)
	if l.Count != 1000 || *l.Min != 1e-6 || *l.Max != 1e-3 || *l.Mean != 500.5e-6 {
		t.Errorf("count %d min %v max %v mean %v", l.Count, *l.Min, *l.Max, *l.Mean)
	}
	for name, got := range map[string]*float64{"p50": l.P50, "p90": l.P90, "p99": l.P99,
		"p999": l.P999} {
		want := map[string]float64{"p50": 500e-6, "p90": 900e-6, "p99": 990e-6, "p999": 999e-6}[name]
		if got == nil || *got < want*(1-1.0/256) || *got > want*(1+1.0/256) {
			t.Errorf("%s = %v, want %g within 0.4%%", name, got, want)
		}
	}
	if e := LatencyOf(histogram.New()); e.Count != 0 || e.P50 != nil || e.Max != nil {
		t.Errorf("empty: %+v", e)
	}
}
