package calib

// minMaxObserver chooses the smallest and largest finite values. It has no
// parameters.
type minMaxObserver struct {
	counts tensorCounts
}

func (o *minMaxObserver) Observe(values []float32) {
	o.counts.scan(values)
}

func (o *minMaxObserver) Range() (Range, error) {
	if err := o.counts.check(); err != nil {
		return Range{}, err
	}
	return o.counts.rangeOf(o.counts.min, o.counts.max), nil
}

// DefaultMomentum is the default ema momentum. After n batches the first
// batch's extremes keep the weight 0.99^n, so the range follows roughly the
// last few hundred batches (0.99^100 ≈ 0.37).
const DefaultMomentum = 0.99

// emaObserver averages the per-batch minimum and maximum:
//
//	alpha = momentum*alpha + (1-momentum)*batchMin
//
// and the same for beta with batchMax. The first batch sets alpha and beta.
// The result depends on how the values are split into batches and on their
// order, by definition. Batches without finite values are skipped.
type emaObserver struct {
	counts      tensorCounts
	momentum    float64
	alpha, beta float64
}

func (o *emaObserver) Observe(values []float32) {
	first := o.counts.samples == 0
	lo, hi, ok := o.counts.scan(values)
	if !ok {
		return
	}
	if first {
		o.alpha, o.beta = lo, hi
		return
	}

	// Rounding is monotone, so alpha <= beta holds after every update.
	o.alpha = o.momentum*o.alpha + (1-o.momentum)*lo
	o.beta = o.momentum*o.beta + (1-o.momentum)*hi
}

func (o *emaObserver) Range() (Range, error) {
	if err := o.counts.check(); err != nil {
		return Range{}, err
	}
	return o.counts.rangeOf(o.alpha, o.beta), nil
}
