package units

import (
	"strings"
	"testing"
)

func TestParseBandwidth(t *testing.T) {
	cases := []struct {
		in   string
		want float64
	}{
		{"1Mbps", 1e6},
		{"100kbps", 1e5},
		{"100Kbps", 1e5},
		{"1Gbps", 1e9},
		{"125kBps", 1e6},
		{"1MBps", 8e6},
		{"1kBps", 8000},
		{"8bps", 8},
		{"1Bps", 8},
		{"0.5Mbps", 5e5},
		{".5Mbps", 5e5},
		{" 2 Mbps ", 2e6},
		{"0bps", 0},
	}
	for _, c := range cases {
		got, err := ParseBandwidth(c.in)
		if err != nil {
			t.Errorf("ParseBandwidth(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("ParseBandwidth(%q) = %g, want %g", c.in, got, c.want)
		}
	}
}

func TestParseBandwidthRejects(t *testing.T) {
	// As experiments/units.py: a unit is required, prefixes are k K M G, and the unit
	// is exactly bps or Bps.
	for _, in := range []string{"", "1000", "1mbps", "1Mbit", "1Mb", "1 M bps", "-1Mbps",
		"1e6bps", "Mbps", "1.2.3Mbps", "1Tbps", "10xbps", "1Mbpss"} {
		if v, err := ParseBandwidth(in); err == nil {
			t.Errorf("ParseBandwidth(%q) = %g, want an error", in, v)
		} else if !strings.Contains(err.Error(), "not a bandwidth") {
			t.Errorf("ParseBandwidth(%q) error %q does not say what is wrong", in, err)
		}
	}
}

func TestParseDuration(t *testing.T) {
	cases := []struct {
		in   string
		want float64
	}{
		{"500ms", 0.5},
		{"8s", 8},
		{"1m", 60},
		{"2h", 7200},
		{"10", 10},
		{"1.5", 1.5},
		{"0.25s", 0.25},
		{" 3 s ", 3},
		{"0", 0},
	}
	for _, c := range cases {
		got, err := ParseDuration(c.in)
		if err != nil {
			t.Errorf("ParseDuration(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("ParseDuration(%q) = %g, want %g", c.in, got, c.want)
		}
	}
}

func TestParseDurationRejects(t *testing.T) {
	for _, in := range []string{"", "s", "-1s", "1d", "1min", "1sec", "1e3s", "1 2s", "ten"} {
		if v, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %g, want an error", in, v)
		}
	}
}

func TestFormatBandwidth(t *testing.T) {
	cases := map[float64]string{
		1e6:     "1Mbps",
		1e5:     "100kbps",
		2e9:     "2Gbps",
		1500:    "1500bps",
		1234567: "1234567bps",
		1.5:     "1.5bps",
		8e6:     "8Mbps",
	}
	for in, want := range cases {
		if got := FormatBandwidth(in); got != want {
			t.Errorf("FormatBandwidth(%g) = %q, want %q", in, got, want)
		}
		back, err := ParseBandwidth(FormatBandwidth(in))
		if err != nil || back != in {
			t.Errorf("round trip of %g gave %g, %v", in, back, err)
		}
	}
}
