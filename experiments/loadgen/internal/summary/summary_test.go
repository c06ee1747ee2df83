package summary

import (
	"encoding/json"
	"reflect"
	"sync"
	"testing"
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
		"aggregate_bandwidth_bps", "per_connection_bandwidth_bps", "errors"} {
		if _, ok := m[k]; !ok {
			t.Errorf("missing key %q in %s", k, b)
		}
	}
	if len(m) != 12 {
		t.Errorf("got %d keys, want 12: %s", len(m), b)
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
