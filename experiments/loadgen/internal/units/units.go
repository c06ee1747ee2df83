// Package units parses the human units used on tcpkali's command line.
//
// It mirrors experiments/units.py: bandwidth uses a lower-case "b" for bits and an
// upper-case "B" for bytes, with decimal prefixes (k = 1000, M = 10^6, G = 10^9), so
// "1Mbps" is 10^6 bits/s and "1kBps" is 8000 bits/s. Durations are "500ms", "8s",
// "1m", "2h" or a bare number of seconds.
package units

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
)

var (
	durationRE  = regexp.MustCompile(`^\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*$`)
	bandwidthRE = regexp.MustCompile(`^\s*([0-9]*\.?[0-9]+)\s*([kKMG]?)(bps|Bps)\s*$`)

	durationUnits = map[string]float64{"": 1, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
	prefixes      = map[string]float64{"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}
)

// ParseDuration returns the number of seconds in text, e.g. "500ms" -> 0.5.
func ParseDuration(text string) (float64, error) {
	m := durationRE.FindStringSubmatch(text)
	if m == nil {
		return 0, fmt.Errorf("not a duration: %q (expected e.g. 500ms, 8s, 1m, 2h)", text)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, fmt.Errorf("not a duration: %q", text)
	}
	return v * durationUnits[m[2]], nil
}

// ParseBandwidth returns bits per second from text, e.g. "1Mbps" -> 1e6, "125kBps" -> 1e6.
func ParseBandwidth(text string) (float64, error) {
	m := bandwidthRE.FindStringSubmatch(text)
	if m == nil {
		return 0, fmt.Errorf("not a bandwidth: %q (expected e.g. 1Mbps, 100kbps, 125kBps)", text)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, fmt.Errorf("not a bandwidth: %q", text)
	}
	v *= prefixes[m[2]]
	if m[3] == "Bps" {
		v *= 8
	}
	if math.IsInf(v, 0) {
		return 0, fmt.Errorf("not a bandwidth: %q (too large)", text)
	}
	return v, nil
}

// FormatBandwidth returns the shortest tcpkali-style spelling, e.g. 1e6 -> "1Mbps".
func FormatBandwidth(bitsPerSecond float64) string {
	for _, p := range []struct {
		prefix string
		factor float64
	}{{"G", 1e9}, {"M", 1e6}, {"k", 1e3}} {
		if bitsPerSecond >= p.factor && math.Mod(bitsPerSecond, p.factor) == 0 {
			return fmt.Sprintf("%d%sbps", int64(bitsPerSecond/p.factor), p.prefix)
		}
	}
	return strconv.FormatFloat(bitsPerSecond, 'f', -1, 64) + "bps"
}
