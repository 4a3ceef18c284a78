package calib

import (
	"errors"
	"fmt"
	"math"
)

// Observer collects the values of one tensor over the calibration batches
// and then computes its range. An Observer is not safe for concurrent use.
type Observer interface {
	// Observe folds one batch of values of a tensor in. NaN and ±Inf are
	// skipped and counted. Observe does not keep or change values.
	Observe(values []float32)

	// Range returns the chosen [Alpha, Beta] after all batches. It does not
	// change the observer, so Observe may continue after it. It returns an
	// error naming the tensor if no finite value was observed.
	Range() (Range, error)
}

// Range is the real range chosen for a tensor, with the counts behind it.
type Range struct {
	// Alpha and Beta are the ends of the range. Both are finite and
	// Alpha <= Beta. Alpha == Beta for a constant tensor: widening the range
	// to contain 0 is left to quantization.
	Alpha, Beta float64

	// Samples is the number of finite values observed.
	Samples int64

	// NaN and Inf are the numbers of NaN and ±Inf values skipped.
	NaN int64
	Inf int64
}

// NewObserver returns an observer of method s.Method for the named tensor.
// The tensor name appears in Range's errors. It returns an error if the name
// is empty or s is invalid. Settings.WithDefaults fills in missing defaults.
func NewObserver(tensor string, s Settings) (Observer, error) {
	if tensor == "" {
		return nil, errors.New("calib: tensor name is empty")
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("calib: tensor %q: %w", tensor, err)
	}

	counts := tensorCounts{tensor: tensor}
	switch s.Method {
	case MethodMinMax:
		return &minMaxObserver{counts: counts}, nil
	case MethodEMA:
		return &emaObserver{counts: counts, momentum: s.Momentum}, nil
	case MethodPercentile:
		return &percentileObserver{counts: counts, hist: newHistogram(s.Bins, false), percentile: s.Percentile}, nil
	case MethodEntropy:
		return &entropyObserver{counts: counts, hist: newHistogram(s.Bins, true), levels: entropyLevels(s.Bits)}, nil
	case MethodMSE:
		return &mseObserver{counts: counts, hist: newHistogram(s.Bins, false), bits: s.Bits, symmetric: s.Symmetric}, nil
	}
	// Validate accepts only the methods above.
	return nil, fmt.Errorf("calib: tensor %q: unknown method %q", tensor, s.Method)
}

// tensorCounts holds what every observer tracks: the value counts and the
// exact extremes of the finite values.
type tensorCounts struct {
	tensor  string
	samples int64
	nan     int64
	inf     int64

	// min and max are the extremes of the finite values, valid when
	// samples > 0. A zero extreme is always +0, never -0, because
	// comparisons do not order the two zeros and the sign would otherwise
	// depend on the order of the values.
	min, max float64
}

// scan counts the values of one batch and returns the minimum and maximum of
// its finite values. ok is false if the batch has none.
func (c *tensorCounts) scan(values []float32) (lo, hi float64, ok bool) {
	var batchMin, batchMax float32
	var finite, nans, infs int64
	for _, v := range values {
		if v != v {
			nans++
			continue
		}
		if v > math.MaxFloat32 || v < -math.MaxFloat32 {
			infs++
			continue
		}
		if finite == 0 {
			batchMin, batchMax = v, v
		} else if v < batchMin {
			batchMin = v
		} else if v > batchMax {
			batchMax = v
		}
		finite++
	}

	c.nan += nans
	c.inf += infs
	if finite == 0 {
		return 0, 0, false
	}

	lo, hi = positiveZero(float64(batchMin)), positiveZero(float64(batchMax))
	if c.samples == 0 {
		c.min, c.max = lo, hi
	} else {
		c.min = math.Min(c.min, lo)
		c.max = math.Max(c.max, hi)
	}
	c.samples += finite
	return lo, hi, true
}

// check returns the error for a tensor without finite values.
func (c *tensorCounts) check() error {
	if c.samples > 0 {
		return nil
	}
	if bad := c.nan + c.inf; bad > 0 {
		return fmt.Errorf("calib: tensor %q: all %d values are NaN or Inf; check the model's weights and the calibration data", c.tensor, bad)
	}
	return fmt.Errorf("calib: tensor %q: no values observed; check that the calibration run computes this tensor", c.tensor)
}

// rangeOf returns a Range with the counts of c. A zero end is +0.
func (c *tensorCounts) rangeOf(alpha, beta float64) Range {
	return Range{Alpha: positiveZero(alpha), Beta: positiveZero(beta), Samples: c.samples, NaN: c.nan, Inf: c.inf}
}

// positiveZero maps -0 to +0 and returns other values unchanged.
func positiveZero(x float64) float64 {
	if x == 0 {
		return 0
	}
	return x
}

// isFinite32 reports whether v is neither NaN nor ±Inf.
func isFinite32(v float32) bool {
	return v == v && v <= math.MaxFloat32 && v >= -math.MaxFloat32
}
