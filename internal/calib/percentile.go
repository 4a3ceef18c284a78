package calib

// Defaults of the percentile method.
const (
	DefaultPercentile     = 99.99
	DefaultPercentileBins = 2048
)

// percentileObserver chooses alpha as the (100-p)-th and beta as the p-th
// percentile of the values, read from a histogram and interpolated linearly
// within the bin that holds the percentile. Both are clamped to the observed
// minimum and maximum. Each end lies within one bin width, less than
// 2*(max-min)/bins, of the sample percentile (the ceil(q*n)-th smallest
// value for q = p/100 and n values).
type percentileObserver struct {
	counts     tensorCounts
	hist       *histogram
	percentile float64
}

func (o *percentileObserver) Observe(values []float32) {
	lo, hi, ok := o.counts.scan(values)
	if ok {
		o.hist.add(values, lo, hi)
	}
}

func (o *percentileObserver) Range() (Range, error) {
	if err := o.counts.check(); err != nil {
		return Range{}, err
	}
	alpha := o.hist.quantile((100 - o.percentile) / 100)
	beta := o.hist.quantile(o.percentile / 100)
	return o.counts.rangeOf(alpha, beta), nil
}
