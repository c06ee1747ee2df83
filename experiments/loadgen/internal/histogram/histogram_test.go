package histogram

import (
	"math"
	"math/rand"
	"sort"
	"testing"
)

func TestIndexAndBoundsAgree(t *testing.T) {
	prev := -1
	for _, v := range []int64{0, 1, 127, 128, 255, 256, 257, 511, 512, 1000, 1 << 20,
		1<<20 + 12345, 1<<MaxBits - 1} {
		i := index(v)
		low, width := bounds(i)
		if v < low || v >= low+width {
			t.Errorf("value %d in bucket %d = [%d, %d)", v, i, low, low+width)
		}
		if i < prev {
			t.Errorf("index not monotonic at %d", v)
		}
		prev = i
		if v >= subCount && float64(width)/float64(v) > 1.0/subCount {
			t.Errorf("bucket of %d is %d wide, over 1/%d", v, width, subCount)
		}
	}
	if got := index(math.MaxInt64); got != nBuckets-1 {
		t.Errorf("index(MaxInt64) = %d, want the last bucket %d", got, nBuckets-1)
	}
	// Every bucket starts where the previous one ends.
	end := int64(0)
	for i := 0; i < nBuckets; i++ {
		low, width := bounds(i)
		if low != end {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, low, end)
		}
		end = low + width
	}
}

// exact returns the nearest-rank q-quantile of sorted values.
func exact(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

func TestQuantilesOfKnownDistributions(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	dists := map[string]func() int64{
		// 1..100000 µs uniformly: p50 = 50 ms, p99 = 99 ms exactly known.
		"uniform": func() int64 { return (rng.Int63n(100000) + 1) * 1000 },
		// Log-normal around 200 µs with a long tail, as delivery latencies look.
		"lognormal": func() int64 { return int64(math.Exp(rng.NormFloat64()*1.5 + math.Log(200e3))) },
		// Tiny values, counted exactly.
		"small": func() int64 { return rng.Int63n(200) },
	}
	for name, draw := range dists {
		h := New()
		values := make([]int64, 200000)
		var sum float64
		for i := range values {
			values[i] = draw()
			h.Record(values[i])
			sum += float64(values[i])
		}
		sort.Slice(values, func(i, j int) bool { return values[i] < values[j] })
		if h.Count() != int64(len(values)) || h.Max() != values[len(values)-1] ||
			h.Min() != values[0] {
			t.Errorf("%s: count %d min %d max %d", name, h.Count(), h.Min(), h.Max())
		}
		if m := sum / float64(len(values)); math.Abs(h.Mean()-m) > 1e-9*m {
			t.Errorf("%s: mean %g, want %g", name, h.Mean(), m)
		}
		for _, q := range []float64{0, 0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 1} {
			want := exact(values, q)
			got := h.Quantile(q)
			if math.Abs(float64(got-want)) > float64(want)/256+0.5 {
				t.Errorf("%s: q%g = %d, want %d within 0.4%%", name, q, got, want)
			}
		}
	}
}

func TestUniformPercentilesAreExactToBucket(t *testing.T) {
	h := New()
	for v := int64(1); v <= 1000; v++ {
		h.Record(v * 1e6) // 1 ms .. 1 s
	}
	for q, want := range map[float64]float64{0.5: 500e6, 0.9: 900e6, 0.99: 990e6, 0.999: 999e6} {
		if got := float64(h.Quantile(q)); math.Abs(got/want-1) > 1.0/256 {
			t.Errorf("q%g = %g, want %g", q, got, want)
		}
	}
	if h.Quantile(1) != 1e9 || h.Max() != 1e9 {
		t.Errorf("max = %d", h.Max())
	}
}

func TestEmptyNegativeHugeAndMerge(t *testing.T) {
	h := New()
	if h.Count() != 0 || h.Quantile(0.5) != 0 || !math.IsNaN(h.Mean()) {
		t.Errorf("empty histogram: count %d q50 %d mean %g", h.Count(), h.Quantile(0.5), h.Mean())
	}
	h.Record(-5) // clock trouble counts as zero
	if h.Min() != 0 || h.Quantile(0.5) != 0 {
		t.Errorf("negative value: min %d", h.Min())
	}
	huge := int64(3600e9) // an hour, beyond the tracked range
	h.Record(huge)
	if h.Max() != huge || h.Quantile(1) != huge || h.Quantile(0.99) != huge {
		t.Errorf("huge value: max %d q99 %d", h.Max(), h.Quantile(0.99))
	}
	a, b := New(), New()
	for v := int64(1); v <= 100; v++ {
		a.Record(v * 1000)
		b.Record((v + 100) * 1000)
	}
	a.Merge(b)
	a.Merge(New())
	a.Merge(nil)
	if a.Count() != 200 || a.Min() != 1000 || a.Max() != 200000 || a.Mean() != 100500 {
		t.Errorf("merged: count %d min %d max %d mean %g", a.Count(), a.Min(), a.Max(), a.Mean())
	}
	if got := a.Quantile(0.5); math.Abs(float64(got)-100000) > 100000.0/256 {
		t.Errorf("merged median %d, want 100000", got)
	}
	empty := New()
	empty.Merge(b)
	if empty.Min() != b.Min() || empty.Count() != b.Count() {
		t.Errorf("merge into empty: min %d", empty.Min())
	}
}
