package calib

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// newRand returns a seeded source, so every run gets the same data.
func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
}

func uniformValues(rng *rand.Rand, n int, lo, hi float64) []float32 {
	values := make([]float32, n)
	for i := range values {
		values[i] = float32(lo + (hi-lo)*rng.Float64())
	}
	return values
}

func gaussianValues(rng *rand.Rand, n int) []float32 {
	values := make([]float32, n)
	for i := range values {
		values[i] = float32(rng.NormFloat64())
	}
	return values
}

func constantValues(n int, v float32) []float32 {
	values := make([]float32, n)
	for i := range values {
		values[i] = v
	}
	return values
}

// observe feeds values to a new observer in batches of batchSize (all at
// once if batchSize <= 0) and returns its range.
func observe(t testing.TB, s Settings, values []float32, batchSize int) (Range, error) {
	t.Helper()
	o, err := NewObserver("conv1", s)
	if err != nil {
		t.Fatalf("NewObserver(%v): %v", s, err)
	}
	for _, batch := range splitBatches(values, batchSize) {
		o.Observe(batch)
	}
	return o.Range()
}

func mustObserve(t testing.TB, s Settings, values []float32, batchSize int) Range {
	t.Helper()
	r, err := observe(t, s, values, batchSize)
	if err != nil {
		t.Fatalf("%s: Range: %v", s.Method, err)
	}
	return r
}

func splitBatches(values []float32, batchSize int) [][]float32 {
	if batchSize <= 0 {
		return [][]float32{values}
	}
	var batches [][]float32
	for start := 0; start < len(values); start += batchSize {
		batches = append(batches, values[start:min(start+batchSize, len(values))])
	}
	return batches
}

// finiteExtremes returns the minimum and maximum finite value.
func finiteExtremes(values []float32) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range values {
		if isFinite32(v) {
			lo = math.Min(lo, float64(v))
			hi = math.Max(hi, float64(v))
		}
	}
	return lo, hi
}

// empiricalQuantile returns the ceil(q*n)-th smallest finite value (the
// first for q = 0), the order statistic that histogram.quantile interpolates.
func empiricalQuantile(values []float32, q float64) float64 {
	var sorted []float64
	for _, v := range values {
		if isFinite32(v) {
			sorted = append(sorted, float64(v))
		}
	}
	slices.Sort(sorted)
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[max(rank-1, 0)]
}

// sameBits reports whether two ranges are bit-identical.
func sameBits(a, b Range) bool {
	return math.Float64bits(a.Alpha) == math.Float64bits(b.Alpha) &&
		math.Float64bits(a.Beta) == math.Float64bits(b.Beta) &&
		a.Samples == b.Samples && a.NaN == b.NaN && a.Inf == b.Inf
}
