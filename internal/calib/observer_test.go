package calib

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// interval is a closed interval that a range end must lie in.
type interval struct{ lo, hi float64 }

func exactly(x float64) interval { return interval{x, x} }

func around(x, tolerance float64) interval { return interval{x - tolerance, x + tolerance} }

func (i interval) contains(x float64) bool { return x >= i.lo && x <= i.hi }

func (i interval) String() string {
	if i.lo == i.hi {
		return fmt.Sprint(i.lo)
	}
	return fmt.Sprintf("[%v, %v]", i.lo, i.hi)
}

// rangeWant is the expected range of one method on a data set.
type rangeWant struct {
	name        string
	settings    Settings
	alpha, beta interval
}

func symmetricMSE() Settings {
	s := DefaultSettings(MethodMSE)
	s.Symmetric = true
	return s
}

// checkRanges observes values with each method of wants and checks the ends
// and counts.
func checkRanges(t *testing.T, values []float32, batchSize int, wants []rangeWant) {
	t.Helper()
	var finite int64
	for _, v := range values {
		if isFinite32(v) {
			finite++
		}
	}

	for _, want := range wants {
		t.Run(want.name, func(t *testing.T) {
			r := mustObserve(t, want.settings, values, batchSize)
			if !want.alpha.contains(r.Alpha) {
				t.Errorf("Alpha = %v, want %v", r.Alpha, want.alpha)
			}
			if !want.beta.contains(r.Beta) {
				t.Errorf("Beta = %v, want %v", r.Beta, want.beta)
			}
			if r.Alpha > r.Beta {
				t.Errorf("Alpha %v > Beta %v", r.Alpha, r.Beta)
			}
			if r.Samples != finite {
				t.Errorf("Samples = %d, want %d", r.Samples, finite)
			}
		})
	}
}

func TestRangeUniform(t *testing.T) {
	values := uniformValues(newRand(1), 100_000, -1, 3)
	lo, hi := finiteExtremes(values)
	// One bin is narrower than 2*(hi-lo)/bins, because the histogram uses
	// more than half of its bins.
	bin := 2 * (hi - lo) / DefaultPercentileBins

	checkRanges(t, values, 1000, []rangeWant{
		{"minmax", DefaultSettings(MethodMinMax), exactly(lo), exactly(hi)},
		{"percentile", DefaultSettings(MethodPercentile),
			around(empiricalQuantile(values, 1e-4), bin), around(empiricalQuantile(values, 0.9999), bin)},
		// The density of |x| is flat up to 3, so clipping it only adds
		// divergence. The 0.1 margin allows for sampling noise.
		{"entropy", DefaultSettings(MethodEntropy), interval{-hi, -2.9}, interval{2.9, hi}},
		// Clipping a flat density by d costs about density*d^3/3 against
		// a rounding error of step^2/12, so the optimum clips little.
		{"mse", DefaultSettings(MethodMSE), interval{lo, -0.95}, interval{2.9, hi}},
		{"mse symmetric", symmetricMSE(), interval{-hi, -2.9}, interval{2.9, hi}},
	})
}

func TestRangeGaussianOutliers(t *testing.T) {
	const n = 1_000_000
	const outlier = 200
	values := gaussianValues(newRand(2), n)
	values[123] = outlier
	values[456_789] = -outlier
	bin := 2 * 2 * outlier / float64(DefaultPercentileBins)

	// The mse estimate for a symmetric candidate [-x, x] on the uint8
	// grid is 2*(outlier-x)^2 for the two clipped outliers plus
	// n*((2x/255)^2)/12 rounding error, least at the x below. For the int8
	// grid of [-t, t] the rounding term is n*((t/127)^2)/12. The search
	// steps by 2^(1/64), about 1.1%, and the histogram reads the outlier
	// at -200 as the bin centre -199.875, so allow 3%.
	asymmetricOptimum := outlier / (1 + 2*float64(n)/(12*255*255))
	symmetricOptimum := 4 * outlier / (4 + 2*float64(n)/(12*127*127))

	// The lowest entropy candidate is 128 bins of width 0.125, the
	// smallest power of two that fits max|x| = 200 in 2048 bins.
	const lowestEntropyThreshold = 128 * 0.125

	checkRanges(t, values, 4096, []rangeWant{
		{"minmax", DefaultSettings(MethodMinMax), exactly(-outlier), exactly(outlier)},
		{"percentile", DefaultSettings(MethodPercentile),
			around(empiricalQuantile(values, 1e-4), bin), around(empiricalQuantile(values, 0.9999), bin)},
		{"entropy", DefaultSettings(MethodEntropy), exactly(-lowestEntropyThreshold), exactly(lowestEntropyThreshold)},
		{"mse", DefaultSettings(MethodMSE), around(-asymmetricOptimum, 0.03*asymmetricOptimum), around(asymmetricOptimum, 0.03*asymmetricOptimum)},
		{"mse symmetric", symmetricMSE(), around(-symmetricOptimum, 0.03*symmetricOptimum), around(symmetricOptimum, 0.03*symmetricOptimum)},
	})

	// Every method but minmax clips the outliers.
	for _, s := range []Settings{DefaultSettings(MethodPercentile), DefaultSettings(MethodEntropy), DefaultSettings(MethodMSE)} {
		r := mustObserve(t, s, values, 4096)
		if r.Beta > outlier/3 {
			t.Errorf("%s: Beta = %v, want at most a third of the outlier %v", s.Method, r.Beta, outlier)
		}
		if r.Alpha < -outlier/3 {
			t.Errorf("%s: Alpha = %v, want at least a third of the outlier %v", s.Method, r.Alpha, -outlier)
		}
	}
}

func TestRangeAllZero(t *testing.T) {
	// Batches that start with -0 and batches that start with +0 must give
	// the same +0 ends.
	values := constantValues(1000, 0)
	values[0] = float32(math.Copysign(0, -1))
	values[150] = float32(math.Copysign(0, -1))

	var wants []rangeWant
	for _, m := range Methods() {
		wants = append(wants, rangeWant{string(m), DefaultSettings(m), exactly(0), exactly(0)})
	}
	wants = append(wants, rangeWant{"mse symmetric", symmetricMSE(), exactly(0), exactly(0)})
	checkRanges(t, values, 100, wants)

	for _, m := range Methods() {
		r := mustObserve(t, DefaultSettings(m), values, 100)
		if math.Signbit(r.Alpha) {
			t.Errorf("%s: Alpha is -0, want +0", m)
		}
		if math.Signbit(r.Beta) {
			t.Errorf("%s: Beta is -0, want +0", m)
		}
	}
}

func TestRangeAllNegative(t *testing.T) {
	values := uniformValues(newRand(3), 100_000, -5, -1)
	lo, hi := finiteExtremes(values)
	bin := 2 * (hi - lo) / DefaultPercentileBins

	checkRanges(t, values, 1000, []rangeWant{
		{"minmax", DefaultSettings(MethodMinMax), exactly(lo), exactly(hi)},
		{"percentile", DefaultSettings(MethodPercentile),
			around(empiricalQuantile(values, 1e-4), bin), around(empiricalQuantile(values, 0.9999), bin)},
		// Without positive values the entropy range is [-t, 0]. The
		// density of |x| is flat on [1, 5], so t stays near 5.
		{"entropy", DefaultSettings(MethodEntropy), interval{lo, -4.9}, exactly(0)},
		// max < 0 cannot shrink toward 0, so beta stays at max.
		{"mse", DefaultSettings(MethodMSE), interval{lo, -4.9}, exactly(hi)},
		{"mse symmetric", symmetricMSE(), interval{lo, -4.9}, exactly(0)},
	})
}

func TestRangeConstant(t *testing.T) {
	values := constantValues(1000, 3.5)
	checkRanges(t, values, 64, []rangeWant{
		{"minmax", DefaultSettings(MethodMinMax), exactly(3.5), exactly(3.5)},
		{"ema", DefaultSettings(MethodEMA), exactly(3.5), exactly(3.5)},
		{"percentile", DefaultSettings(MethodPercentile), exactly(3.5), exactly(3.5)},
		{"entropy", DefaultSettings(MethodEntropy), exactly(0), exactly(3.5)},
		{"mse", DefaultSettings(MethodMSE), exactly(3.5), exactly(3.5)},
		{"mse symmetric", symmetricMSE(), exactly(0), exactly(3.5)},
	})
}

func TestRangeTinyWidth(t *testing.T) {
	for _, base := range []float64{1, 1e-3} {
		t.Run(fmt.Sprint(base), func(t *testing.T) {
			values := uniformValues(newRand(4), 10_000, base, base+1e-7)
			lo, hi := finiteExtremes(values)
			if lo == hi {
				t.Fatalf("test data has a single value %v", lo)
			}

			checkRanges(t, values, 100, []rangeWant{
				{"minmax", DefaultSettings(MethodMinMax), exactly(lo), exactly(hi)},
				{"percentile", DefaultSettings(MethodPercentile), interval{lo, hi}, interval{lo, hi}},
				// All values share the top bin of the |x| histogram,
				// which no candidate below max|x| can represent.
				{"entropy", DefaultSettings(MethodEntropy), exactly(0), exactly(hi)},
				// Shrinking beta by one search step would put it below
				// alpha = min, so the range stays [min, max].
				{"mse", DefaultSettings(MethodMSE), exactly(lo), exactly(hi)},
			})
		})
	}
}

func TestRangeZeroBatchThenWide(t *testing.T) {
	wide := uniformValues(newRand(5), 20_000, -2, 5)
	values := append(constantValues(1000, 0), wide...)
	lo, hi := finiteExtremes(values)
	bin := 2 * (hi - lo) / DefaultPercentileBins

	// The first batch is the 1000 zeros, which fit one bin of the finest
	// width. The second batch makes the histogram grow from there.
	checkRanges(t, values, 1000, []rangeWant{
		{"minmax", DefaultSettings(MethodMinMax), exactly(lo), exactly(hi)},
		{"percentile", DefaultSettings(MethodPercentile),
			around(empiricalQuantile(values, 1e-4), bin), around(empiricalQuantile(values, 0.9999), bin)},
		{"entropy", DefaultSettings(MethodEntropy), interval{-hi, -4.8}, interval{4.8, hi}},
		{"mse", DefaultSettings(MethodMSE), interval{lo, -1.8}, interval{4.8, hi}},
	})

	for _, m := range []Method{MethodMinMax, MethodPercentile, MethodEntropy, MethodMSE} {
		batched := mustObserve(t, DefaultSettings(m), values, 1000)
		whole := mustObserve(t, DefaultSettings(m), values, 0)
		if !sameBits(batched, whole) {
			t.Errorf("%s: range in two batches %+v differs from range in one batch %+v", m, batched, whole)
		}
	}
}

func TestEMAAveragesBatchExtremes(t *testing.T) {
	s := Settings{Method: MethodEMA, Momentum: 0.5}
	o, err := NewObserver("relu1", s)
	if err != nil {
		t.Fatal(err)
	}
	o.Observe([]float32{0, 1})
	o.Observe([]float32{float32(math.NaN())}) // no finite value: skipped
	o.Observe([]float32{2, 3})
	o.Observe([]float32{4, 2, 5})

	r, err := o.Range()
	if err != nil {
		t.Fatal(err)
	}
	// alpha: 0, then 0.5*0 + 0.5*2 = 1, then 0.5*1 + 0.5*2 = 1.5.
	// beta:  1, then 0.5*1 + 0.5*3 = 2, then 0.5*2 + 0.5*5 = 3.5.
	if r.Alpha != 1.5 {
		t.Errorf("Alpha = %v, want 1.5", r.Alpha)
	}
	if r.Beta != 3.5 {
		t.Errorf("Beta = %v, want 3.5", r.Beta)
	}
	if r.Samples != 7 {
		t.Errorf("Samples = %d, want 7", r.Samples)
	}
	if r.NaN != 1 {
		t.Errorf("NaN = %d, want 1", r.NaN)
	}
}

func allSettings() []Settings {
	var all []Settings
	for _, m := range Methods() {
		all = append(all, DefaultSettings(m))
	}
	return append(all, symmetricMSE())
}

func TestObserveCountsNaNAndInf(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	batches := [][]float32{
		{nan, inf, 1, -inf, 2, nan},
		{nan, 1.5},
		{},
	}

	for _, s := range allSettings() {
		t.Run(s.String(), func(t *testing.T) {
			o, err := NewObserver("conv1", s)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range batches {
				o.Observe(b)
			}
			r, err := o.Range()
			if err != nil {
				t.Fatal(err)
			}
			if r.Samples != 3 {
				t.Errorf("Samples = %d, want 3", r.Samples)
			}
			if r.NaN != 3 {
				t.Errorf("NaN = %d, want 3", r.NaN)
			}
			if r.Inf != 2 {
				t.Errorf("Inf = %d, want 2", r.Inf)
			}
			if r.Alpha < -2 || r.Beta > 2 {
				t.Errorf("range [%v, %v] exceeds [-2, 2], so a non-finite value leaked in", r.Alpha, r.Beta)
			}
		})
	}
}

func TestRangeAllNaNIsError(t *testing.T) {
	values := constantValues(1024, float32(math.NaN()))
	values[7] = float32(math.Inf(1))
	values[9] = float32(math.Inf(-1))
	const want = `calib: tensor "conv1": all 1024 values are NaN or Inf; check the model's weights and the calibration data`

	for _, s := range allSettings() {
		t.Run(s.String(), func(t *testing.T) {
			_, err := observe(t, s, values, 100)
			if err == nil {
				t.Fatal("Range returned no error")
			}
			if err.Error() != want {
				t.Errorf("error = %q, want %q", err, want)
			}
		})
	}
}

func TestRangeNoValuesIsError(t *testing.T) {
	for _, s := range allSettings() {
		t.Run(s.String(), func(t *testing.T) {
			o, err := NewObserver("fc.out", s)
			if err != nil {
				t.Fatal(err)
			}
			o.Observe(nil)
			_, err = o.Range()
			if err == nil {
				t.Fatal("Range returned no error")
			}
			if !strings.Contains(err.Error(), `calib: tensor "fc.out": no values observed`) {
				t.Errorf("error = %q, want it to name the tensor and say that no values were observed", err)
			}
		})
	}
}

func TestNewObserverRejectsBadInput(t *testing.T) {
	cases := []struct {
		name     string
		tensor   string
		settings Settings
		want     string
	}{
		{"empty tensor name", "", DefaultSettings(MethodMinMax), "calib: tensor name is empty"},
		{"unknown method", "conv1", Settings{Method: "median"}, `calib: tensor "conv1": calib: invalid settings: unknown method "median"`},
		{"zero percentile", "conv1", Settings{Method: MethodPercentile, Bins: 2048}, `percentile 0 is outside (50, 100]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, err := NewObserver(c.tensor, c.settings)
			if err == nil {
				t.Fatalf("NewObserver returned %T and no error", o)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %q, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestObserveLeavesValuesUnchanged(t *testing.T) {
	values := gaussianValues(newRand(6), 5000)
	values[3] = float32(math.Copysign(0, -1))
	values[4] = float32(math.NaN())
	want := slices.Clone(values)

	for _, s := range allSettings() {
		mustObserve(t, s, values, 333)
		for i := range values {
			if math.Float32bits(values[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s: Observe changed values[%d] from %v to %v", s.Method, i, want[i], values[i])
			}
		}
	}
}

func TestRangeRepeatableAndResumable(t *testing.T) {
	first := uniformValues(newRand(7), 3000, -1, 1)
	second := uniformValues(newRand(8), 3000, -4, 4)

	for _, s := range allSettings() {
		t.Run(s.String(), func(t *testing.T) {
			o, err := NewObserver("conv1", s)
			if err != nil {
				t.Fatal(err)
			}
			o.Observe(first)
			r1, err := o.Range()
			if err != nil {
				t.Fatal(err)
			}
			r2, err := o.Range()
			if err != nil {
				t.Fatal(err)
			}
			if !sameBits(r1, r2) {
				t.Errorf("second Range %+v differs from first %+v", r2, r1)
			}

			o.Observe(second)
			resumed, err := o.Range()
			if err != nil {
				t.Fatal(err)
			}
			fresh := mustObserve(t, s, append(slices.Clone(first), second...), 3000)
			if !sameBits(resumed, fresh) {
				t.Errorf("Range after Range and Observe %+v differs from a fresh observer's %+v", resumed, fresh)
			}
		})
	}
}

// TestRangeIndependentOfBatching feeds the same values in batches of 1, 7,
// 500 and all at once, and in shuffled and reversed batch orders, and
// requires bit-identical ranges from every method but ema.
func TestRangeIndependentOfBatching(t *testing.T) {
	rng := newRand(9)
	// A Gaussian with a log-normal scale fills the bins densely over a
	// wide range, so that a count in the wrong bin moves the results. The
	// batches widen the range many times, along different paths for
	// different orders.
	values := make([]float32, 100_000)
	for i := range values {
		values[i] = float32(rng.NormFloat64() * math.Exp(1.5*rng.NormFloat64()))
	}
	values[10] = 0
	values[11] = float32(math.Copysign(0, -1))
	values[12] = float32(math.NaN())
	values[13] = float32(math.Inf(-1))
	values[14] = 1e-40 // subnormal

	sorted := slices.Clone(values)
	slices.SortFunc(sorted, func(a, b float32) int {
		return cmpAbs(a, b)
	})

	type feed struct {
		name    string
		batches [][]float32
	}
	var feeds []feed
	for _, size := range []int{1, 7, 500} {
		batches := splitBatches(values, size)
		feeds = append(feeds, feed{fmt.Sprintf("batches of %d", size), batches})

		shuffled := slices.Clone(batches)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		feeds = append(feeds, feed{fmt.Sprintf("shuffled batches of %d", size), shuffled})

		reversed := slices.Clone(batches)
		slices.Reverse(reversed)
		feeds = append(feeds, feed{fmt.Sprintf("reversed batches of %d", size), reversed})
	}
	feeds = append(feeds, feed{"ascending |x| in batches of 500", splitBatches(sorted, 500)})

	methods := []Settings{
		DefaultSettings(MethodMinMax),
		DefaultSettings(MethodPercentile),
		{Method: MethodPercentile, Percentile: 99, Bins: 256},
		DefaultSettings(MethodEntropy),
		DefaultSettings(MethodMSE),
		symmetricMSE(),
		{Method: MethodMSE, Bins: 100, Bits: 4},
	}
	for _, s := range methods {
		t.Run(s.String(), func(t *testing.T) {
			want := mustObserve(t, s, values, 0)
			for _, f := range feeds {
				o, err := NewObserver("conv1", s)
				if err != nil {
					t.Fatal(err)
				}
				for _, b := range f.batches {
					o.Observe(b)
				}
				got, err := o.Range()
				if err != nil {
					t.Fatal(err)
				}
				if !sameBits(got, want) {
					t.Errorf("%s: range %+v differs from the one-batch range %+v", f.name, got, want)
				}
			}
		})
	}
}

// cmpAbs orders by magnitude, with NaN last.
func cmpAbs(a, b float32) int {
	x, y := math.Abs(float64(a)), math.Abs(float64(b))
	switch {
	case x < y || (y != y && x == x):
		return -1
	case y < x || (x != x && y == y):
		return 1
	}
	return 0
}

func TestEntropyIgnoresExactZeros(t *testing.T) {
	// A ReLU output: 90% exact zeros, the rest uniform in (0, 4]. Uniform data has no tail
	// to clip, so the threshold must stay near 4; a spike of zeros in the histogram would pull
	// it down to the narrowest candidate.
	rng := rand.New(rand.NewPCG(11, 12))
	values := make([]float32, 200000)
	for i := range values {
		if i%10 == 9 {
			values[i] = 4 * (1 - rng.Float32())
		}
	}
	obs, err := NewObserver("relu", DefaultSettings(MethodEntropy))
	if err != nil {
		t.Fatal(err)
	}
	obs.Observe(values)
	r, err := obs.Range()
	if err != nil {
		t.Fatal(err)
	}
	if r.Alpha != 0 || r.Beta < 3.5 {
		t.Errorf("range [%v, %v], want [0, >= 3.5]", r.Alpha, r.Beta)
	}
	if r.Samples != int64(len(values)) {
		t.Errorf("samples = %d, want %d (zeros are counted)", r.Samples, len(values))
	}
}
