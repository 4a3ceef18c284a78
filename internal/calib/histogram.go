package calib

import "math"

// minExponent is the exponent of the finest bin width, 2^-149, the smallest
// positive float32 (a subnormal). Every float32 is an integer multiple of
// it, so finer bins could not separate more values.
const minExponent = -149

// histogram counts finite float32 values in bins of width w = 2^exp on a grid
// anchored at 0: a value x falls in the bin with absolute index
// floor(x / w), which covers [k*w, (k+1)*w).
//
// The histogram keeps exp at the smallest value >= minExponent for which the
// bins from floor(lo/w) to floor(hi/w) number at most budget, where lo and
// hi are the extremes of the values seen so far. When a batch widens
// [lo, hi] beyond that, exp grows and pairs of bins merge. The bin counts
// then depend only on the multiset of values, as doc.go argues.
//
// All index arithmetic is exact in float64:
//   - x * 2^-exp only changes the exponent of x. For float32 x and exp in
//     [-149, 130] the product lies in [2^-279, 2^277], far from float64
//     overflow and underflow.
//   - math.Floor of a float64 is exact, so absolute indices are exact
//     integer-valued float64s, however large (up to about 2^277 for 1e38
//     with the finest bins). They never pass through int64.
//   - The difference of two integer-valued float64s is exact when it is
//     below 2^53. Relative indices are below budget <= 2^16.
//
// With two or more distinct values, |first| < budget * 2^25 <= 2^41: a
// fitting width exceeds (hi - lo) / budget, and hi - lo is at least 2^-25
// of |lo| for distinct float32 values (at least 2^-149 for subnormals).
// Only a single distinct value can have a larger first index, and then the
// histogram has one bin. So first + j is exact for every bin j.
type histogram struct {
	budget int

	// magnitude makes the histogram count |x| and keeps 0 inside [lo, hi],
	// so that bin 0 starts at 0.
	magnitude bool

	exp    int      // bins are 2^exp wide
	first  float64  // absolute index of counts[0], integer-valued
	counts []uint64 // counts[j] is the number of values in bin first+j
	lo, hi float64  // extremes of the binned values, valid when counts != nil
}

func newHistogram(budget int, magnitude bool) *histogram {
	return &histogram{budget: budget, magnitude: magnitude}
}

// add bins the finite values of one batch. batchMin and batchMax are the
// extremes of its finite values as returned by tensorCounts.scan.
func (h *histogram) add(values []float32, batchMin, batchMax float64) {
	lo, hi := batchMin, batchMax
	if h.magnitude {
		lo = 0
		hi = math.Max(math.Abs(batchMin), math.Abs(batchMax))
	}

	if h.counts == nil {
		h.lo, h.hi = lo, hi
		h.exp = fittingExponent(lo, hi, minExponent, h.budget)
		h.first = binIndex(lo, h.exp)
		h.counts = make([]uint64, int(binIndex(hi, h.exp)-h.first)+1)
	} else if lo < h.lo || hi > h.hi {
		h.grow(math.Min(lo, h.lo), math.Max(hi, h.hi))
	}

	scale := math.Ldexp(1, -h.exp)
	for _, v := range values {
		if !isFinite32(v) {
			continue
		}
		x := float64(v)
		if h.magnitude {
			x = math.Abs(x)
		}
		h.counts[int(math.Floor(x*scale)-h.first)]++
	}
}

// grow widens the histogram to cover [lo, hi], a superset of [h.lo, h.hi].
func (h *histogram) grow(lo, hi float64) {
	exp := fittingExponent(lo, hi, h.exp, h.budget)
	for h.exp < exp {
		h.halve()
	}

	first := binIndex(lo, exp)
	last := binIndex(hi, exp)
	counts := make([]uint64, int(last-first)+1)
	copy(counts[int(h.first-first):], h.counts)

	h.first, h.counts = first, counts
	h.lo, h.hi = lo, hi
}

// halve doubles the bin width and merges bins 2k and 2k+1 into bin k. The
// merge is exact because floor(floor(y) / 2) == floor(y / 2).
func (h *histogram) halve() {
	first := math.Floor(h.first / 2)
	parity := int(h.first - 2*first) // 1 if h.first is odd: its bin is the upper half of bin first.
	counts := make([]uint64, (parity+len(h.counts)-1)/2+1)
	for j, c := range h.counts {
		counts[(parity+j)/2] += c
	}
	h.exp++
	h.first, h.counts = first, counts
}

// width returns the bin width.
func (h *histogram) width() float64 {
	return math.Ldexp(1, h.exp)
}

// lowerEdge returns the lower edge of bin j.
func (h *histogram) lowerEdge(j int) float64 {
	return math.Ldexp(h.first+float64(j), h.exp)
}

// total returns the number of binned values.
func (h *histogram) total() uint64 {
	var n uint64
	for _, c := range h.counts {
		n += c
	}
	return n
}

// quantile returns the value below which a fraction q of the binned values
// lie, interpolated linearly within its bin and clamped to [h.lo, h.hi].
func (h *histogram) quantile(q float64) float64 {
	rank := q * float64(h.total())
	var below uint64
	for j, c := range h.counts {
		if c == 0 {
			continue
		}
		if float64(below+c) >= rank {
			fraction := (rank - float64(below)) / float64(c)
			x := h.lowerEdge(j) + fraction*h.width()
			return math.Min(math.Max(x, h.lo), h.hi)
		}
		below += c
	}
	return h.hi
}

// binIndex returns the absolute index floor(x / 2^exp) of the bin of x.
func binIndex(x float64, exp int) float64 {
	return math.Floor(math.Ldexp(x, -exp))
}

// fittingExponent returns the smallest exponent >= start at which the bins
// covering [lo, hi] number at most budget. The bin count does not grow with
// the exponent: floor(a/2) - floor(b/2) <= a - b for integers a >= b. It
// reaches 2 or less at exponent 130 for any float32 range, so the loop ends.
func fittingExponent(lo, hi float64, start, budget int) int {
	exp := start
	for binIndex(hi, exp)-binIndex(lo, exp)+1 > float64(budget) {
		exp++
	}
	return exp
}
