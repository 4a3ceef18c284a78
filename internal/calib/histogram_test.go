package calib

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

// buildHistogram bins values in batches of batchSize (all at once if
// batchSize <= 0), the way the histogram observers do.
func buildHistogram(values []float32, budget int, magnitude bool, batchSize int) *histogram {
	h := newHistogram(budget, magnitude)
	var counts tensorCounts
	for _, batch := range splitBatches(values, batchSize) {
		if lo, hi, ok := counts.scan(batch); ok {
			h.add(batch, lo, hi)
		}
	}
	return h
}

// directHistogram bins values at the width that fits their extremes,
// without growing: the reference that every batching must reproduce.
func directHistogram(values []float32, budget int, magnitude bool) *histogram {
	var counts tensorCounts
	counts.scan(values)
	lo, hi := counts.min, counts.max
	if magnitude {
		lo, hi = 0, math.Max(math.Abs(lo), math.Abs(hi))
	}

	exp := fittingExponent(lo, hi, minExponent, budget)
	first := binIndex(lo, exp)
	h := &histogram{budget: budget, magnitude: magnitude, exp: exp, first: first, lo: lo, hi: hi}
	h.counts = make([]uint64, int(binIndex(hi, exp)-first)+1)
	for _, v := range values {
		if !isFinite32(v) {
			continue
		}
		x := float64(v)
		if magnitude {
			x = math.Abs(x)
		}
		// Division by a power of two is exact, as multiplication is.
		h.counts[int(math.Floor(x/math.Ldexp(1, exp))-first)]++
	}
	return h
}

func checkSameHistogram(t *testing.T, got, want *histogram) {
	t.Helper()
	if got.exp != want.exp {
		t.Errorf("exp = %d, want %d", got.exp, want.exp)
	}
	if got.first != want.first {
		t.Errorf("first = %v, want %v", got.first, want.first)
	}
	if !slices.Equal(got.counts, want.counts) {
		t.Errorf("counts differ: %d bins with %d values, want %d bins with %d values", len(got.counts), got.total(), len(want.counts), want.total())
	}
}

func TestHistogramGrowthMatchesDirect(t *testing.T) {
	rng := newRand(10)
	scales := []float64{1e-30, 1e-3, 1, 7, 1e5, 1e30}
	var values []float32
	for _, scale := range scales {
		for _, v := range gaussianValues(rng, 2000) {
			values = append(values, float32(float64(v)*scale))
		}
		// Shifted copies make the lower end odd and even in turn.
		for _, v := range uniformValues(rng, 500, 3*scale, 11*scale) {
			values = append(values, v)
		}
	}
	rng.Shuffle(len(values), func(i, j int) { values[i], values[j] = values[j], values[i] })
	ascending := slices.Clone(values)
	slices.Sort(ascending)
	descending := slices.Clone(ascending)
	slices.Reverse(descending)

	for _, magnitude := range []bool{false, true} {
		for _, budget := range []int{16, 100, 2048} {
			for name, data := range map[string][]float32{"shuffled": values, "ascending": ascending, "descending": descending} {
				want := directHistogram(data, budget, magnitude)
				for _, size := range []int{1, 3, 64, 1000} {
					t.Run(fmt.Sprintf("magnitude=%v/budget=%d/%s/batch=%d", magnitude, budget, name, size), func(t *testing.T) {
						got := buildHistogram(data, budget, magnitude, size)
						checkSameHistogram(t, got, want)
					})
				}
			}
		}
	}
}

func TestHistogramBinCount(t *testing.T) {
	rng := newRand(11)
	for _, budget := range []int{16, 2048} {
		for _, scale := range []float64{1e-6, 1, 1e6} {
			values := uniformValues(rng, 10_000, -scale, 2*scale)
			h := buildHistogram(values, budget, false, 97)
			n := len(h.counts)
			if n > budget {
				t.Errorf("budget %d, scale %g: %d bins, want at most %d", budget, scale, n, budget)
			}
			if n <= budget/2 {
				t.Errorf("budget %d, scale %g: %d bins, want more than %d", budget, scale, n, budget/2)
			}
			if h.total() != 10_000 {
				t.Errorf("budget %d, scale %g: %d values binned, want 10000", budget, scale, h.total())
			}
		}
	}
}

func TestHistogramExtremeMagnitudes(t *testing.T) {
	cases := []struct {
		name    string
		batches [][]float32
	}{
		{"float32 extremes", [][]float32{{math.MaxFloat32, -math.MaxFloat32, 1e38, 0}}},
		{"constant 1e38 then wide", [][]float32{{1e38, 1e38}, {-1e38, 1}}},
		{"smallest subnormal then 1e38", [][]float32{{math.SmallestNonzeroFloat32}, {1e38}}},
		{"subnormals only", [][]float32{{math.SmallestNonzeroFloat32, 3 * math.SmallestNonzeroFloat32}, {-7e-45, 1e-40}}},
		{"1e38 then smallest subnormal", [][]float32{{1e38}, {-math.SmallestNonzeroFloat32}}},
	}

	for _, c := range cases {
		var all []float32
		for _, b := range c.batches {
			all = append(all, b...)
		}
		lo, hi := finiteExtremes(all)

		for _, s := range allSettings() {
			t.Run(c.name+"/"+s.String(), func(t *testing.T) {
				o, err := NewObserver("conv1", s)
				if err != nil {
					t.Fatal(err)
				}
				for _, b := range c.batches {
					o.Observe(b)
				}
				r, err := o.Range()
				if err != nil {
					t.Fatal(err)
				}
				bound := math.Max(math.Abs(lo), math.Abs(hi))
				if math.IsNaN(r.Alpha) || r.Alpha < -bound {
					t.Errorf("Alpha = %v, want a value in [%v, %v]", r.Alpha, -bound, bound)
				}
				if math.IsNaN(r.Beta) || r.Beta > bound {
					t.Errorf("Beta = %v, want a value in [%v, %v]", r.Beta, -bound, bound)
				}
				if r.Alpha > r.Beta {
					t.Errorf("Alpha %v > Beta %v", r.Alpha, r.Beta)
				}
			})
		}

		t.Run(c.name+"/histogram", func(t *testing.T) {
			got := buildHistogram(all, 2048, false, 1)
			checkSameHistogram(t, got, directHistogram(all, 2048, false))
		})
	}
}

func TestHistogramSubnormalQuantile(t *testing.T) {
	// k * 2^-149 for k = 0..4999: 5000 bins of the finest width do not fit
	// 2048, so bins are 4 * 2^-149 wide.
	values := make([]float32, 5000)
	for k := range values {
		values[k] = float32(math.Ldexp(float64(k), minExponent))
	}
	h := buildHistogram(values, 2048, false, 128)
	if h.exp != minExponent+2 {
		t.Errorf("exp = %d, want %d", h.exp, minExponent+2)
	}

	median := h.quantile(0.5)
	want := empiricalQuantile(values, 0.5)
	if math.Abs(median-want) > h.width() {
		t.Errorf("median = %v, want %v within one bin %v", median, want, h.width())
	}
}

func TestHistogramQuantileEnds(t *testing.T) {
	values := uniformValues(newRand(12), 1000, -3, 8)
	lo, hi := finiteExtremes(values)
	h := buildHistogram(values, 2048, false, 0)

	if got := h.quantile(0); got != lo {
		t.Errorf("quantile(0) = %v, want the minimum %v", got, lo)
	}
	if got := h.quantile(1); got != hi {
		t.Errorf("quantile(1) = %v, want the maximum %v", got, hi)
	}
}
