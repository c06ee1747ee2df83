// Package histogram records non-negative durations (in nanoseconds) in a fixed-size
// log-linear histogram, HDR-style, so that percentiles of millions of samples need a
// few kilobytes.
//
// Values below 2^SubBits ns are counted exactly. Above, each power-of-two range
// [2^k, 2^(k+1)) is split into 2^SubBits equal buckets, so a bucket is at most 1/128 of
// the values in it wide. A quantile is reported as the midpoint of its bucket (clamped
// to the exact minimum and maximum), within 1/256 (0.4 %) of the true sample value.
// Values of 2^MaxBits ns (about 18 minutes) and more share the last bucket; the
// maximum, minimum and mean are exact whatever the value.
package histogram

import (
	"math"
	"math/bits"
)

// SubBits sets the precision: 2^SubBits buckets per power of two.
const SubBits = 7

// MaxBits bounds the tracked range: values >= 2^MaxBits ns share the last bucket.
const MaxBits = 40

const (
	subCount = 1 << SubBits
	nBuckets = (MaxBits-SubBits)*subCount + subCount
)

// Histogram counts values; the zero value is not usable, use New. It is not safe for
// concurrent use: give each goroutine its own and Merge them.
type Histogram struct {
	counts []int64
	count  int64
	sum    float64
	min    int64
	max    int64
}

// New returns an empty histogram (about 35 kB).
func New() *Histogram {
	return &Histogram{counts: make([]int64, nBuckets)}
}

// index returns the bucket of v (v >= 0).
func index(v int64) int {
	if v < subCount {
		return int(v)
	}
	if v >= 1<<MaxBits {
		return nBuckets - 1
	}
	shift := bits.Len64(uint64(v)) - SubBits - 1 // v>>shift is in [subCount, 2*subCount)
	return (shift+1)*subCount + int(v>>uint(shift)) - subCount
}

// bounds returns the smallest value of bucket i and the bucket's width.
func bounds(i int) (low, width int64) {
	if i < 2*subCount {
		return int64(i), 1
	}
	shift := i/subCount - 1
	sub := int64(i%subCount + subCount)
	return sub << uint(shift), 1 << uint(shift)
}

// Record counts one value; negative values count as 0.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	if h.count == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.count++
	h.sum += float64(v)
	h.counts[index(v)]++
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.count == 0 {
		return
	}
	if h.count == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.count += o.count
	h.sum += o.sum
	for i, n := range o.counts {
		h.counts[i] += n
	}
}

// Count returns the number of values recorded.
func (h *Histogram) Count() int64 { return h.count }

// Min returns the smallest value recorded (0 when empty).
func (h *Histogram) Min() int64 { return h.min }

// Max returns the largest value recorded (0 when empty).
func (h *Histogram) Max() int64 { return h.max }

// Mean returns the mean of the values recorded (NaN when empty).
func (h *Histogram) Mean() float64 {
	if h.count == 0 {
		return math.NaN()
	}
	return h.sum / float64(h.count)
}

// Quantile returns the q-quantile (0 <= q <= 1) by the nearest-rank definition: the
// value of the ceil(q*count)-th smallest sample (the smallest for q = 0), as its
// bucket's midpoint clamped to [Min, Max]. It returns 0 when the histogram is empty.
func (h *Histogram) Quantile(q float64) int64 {
	if h.count == 0 {
		return 0
	}
	switch {
	case !(q > 0):
		return h.min
	case q >= 1:
		return h.max
	}
	rank := int64(math.Ceil(q * float64(h.count)))
	if rank < 1 {
		rank = 1
	}
	var seen int64
	for i, n := range h.counts {
		seen += n
		if seen < rank {
			continue
		}
		low, width := bounds(i)
		v := low + (width-1)/2
		if i == nBuckets-1 || v > h.max {
			v = h.max
		}
		if v < h.min {
			v = h.min
		}
		return v
	}
	return h.max
}
