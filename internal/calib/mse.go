package calib

import "math"

// Defaults of the mse method: a histogram of at most 2048 bins and an
// asymmetric 8-bit target grid of 255 steps, as uint8 or asymmetric int8 use.
const (
	DefaultMSEBins      = 2048
	DefaultMSEBits      = 8
	DefaultMSESymmetric = false
)

// The mse search scales the observed extremes by factors 2^(-k/mseGridSteps)
// for k = 0, 1, ... (a coarse grid), then by 2^(-k/mseGridSteps/mseRefineSteps)
// around the best coarse point (the refinement).
const (
	mseGridSteps   = 8
	mseRefineSteps = 8
	mseMaxSteps    = 64 * mseGridSteps // shrink by at most 2^-64
)

// mseObserver chooses the range that minimizes the estimated mean squared
// quantization error on the target grid. The estimate treats each histogram
// bin as count values at the bin centre, clamped to the observed extremes:
//   - a value inside the grid's range costs step²/12, the mean squared
//     rounding error of values spread evenly over a step.
//   - a value outside costs its squared distance to the nearest end.
//
// The asymmetric grid covers [min(alpha, 0), max(beta, 0)] in 2^bits-1 steps,
// because quantization widens every range to contain 0. The estimate ignores
// the zero-point nudge that follows, which moves the grid by less than half a
// step. The symmetric grid covers [-t, t] in 2^(bits-1)-1 steps on each side.
//
// The search is deterministic. Asymmetric: alpha scans min*f and beta scans
// max*f over the same factors (a full 2D grid), except that an end that
// cannot shrink toward 0 stays fixed: alpha = min when min >= 0 and
// beta = max when max <= 0. Symmetric: t scans max(|min|, |max|)*f, and the
// range is [-t, t], [0, t] or [-t, 0] as for entropy. The coarse factors stop
// once the scaled end is below half a bin width. The first candidate with the
// least error wins, so ties keep the wider range.
type mseObserver struct {
	counts    tensorCounts
	hist      *histogram
	bits      int
	symmetric bool
}

func (o *mseObserver) Observe(values []float32) {
	lo, hi, ok := o.counts.scan(values)
	if ok {
		o.hist.add(values, lo, hi)
	}
}

func (o *mseObserver) Range() (Range, error) {
	if err := o.counts.check(); err != nil {
		return Range{}, err
	}

	bins := o.occupiedBins()
	if o.symmetric {
		t := o.searchSymmetric(bins)
		switch {
		case o.counts.min >= 0:
			return o.counts.rangeOf(0, t), nil
		case o.counts.max <= 0:
			return o.counts.rangeOf(-t, 0), nil
		default:
			return o.counts.rangeOf(-t, t), nil
		}
	}

	alpha, beta := o.searchAsymmetric(bins)
	return o.counts.rangeOf(alpha, beta), nil
}

// weightedValue is a histogram bin reduced to its centre and count.
type weightedValue struct {
	x, n float64
}

// occupiedBins returns the non-empty bins in ascending order.
func (o *mseObserver) occupiedBins() []weightedValue {
	h := o.hist
	half := h.width() / 2
	var bins []weightedValue
	for j, c := range h.counts {
		if c == 0 {
			continue
		}
		x := math.Min(math.Max(h.lowerEdge(j)+half, o.counts.min), o.counts.max)
		bins = append(bins, weightedValue{x: x, n: float64(c)})
	}
	return bins
}

// shrinkFactor returns 2^(-k/steps).
func shrinkFactor(k, steps int) float64 {
	return math.Exp2(-float64(k) / float64(steps))
}

// coarseSteps returns how many coarse factors to try for an end at base: the
// factors 2^(-k/mseGridSteps) with |base|*factor >= half a bin width, at
// least one.
func (o *mseObserver) coarseSteps(base float64) int {
	limit := o.hist.width() / 2
	k := 1
	for k < mseMaxSteps && math.Abs(base)*shrinkFactor(k, mseGridSteps) >= limit {
		k++
	}
	return k
}

// searchAsymmetric returns the alpha and beta with the least estimated error
// on the asymmetric grid.
func (o *mseObserver) searchAsymmetric(bins []weightedValue) (alpha, beta float64) {
	steps := float64(int(1)<<o.bits - 1)
	lo, hi := o.counts.min, o.counts.max

	alphaSteps, betaSteps := 1, 1
	if lo < 0 {
		alphaSteps = o.coarseSteps(lo)
	}
	if hi > 0 {
		betaSteps = o.coarseSteps(hi)
	}

	// Exponents are in units of 1/(mseGridSteps*mseRefineSteps) octave.
	const fine = mseGridSteps * mseRefineSteps
	bestA, bestB := 0, 0
	bestError := math.Inf(1)
	try := func(ka, kb int) {
		if ka < 0 || kb < 0 {
			return
		}
		a, b := lo, hi
		if lo < 0 {
			a = lo * shrinkFactor(ka, fine)
		}
		if hi > 0 {
			b = hi * shrinkFactor(kb, fine)
		}
		if a > b {
			return
		}
		if e := asymmetricError(bins, a, b, steps); e < bestError {
			bestA, bestB, bestError = ka, kb, e
		}
	}

	for i := range alphaSteps {
		for j := range betaSteps {
			try(i*mseRefineSteps, j*mseRefineSteps)
		}
	}

	centreA, centreB := bestA, bestB
	for da := -mseRefineSteps + 1; da < mseRefineSteps; da++ {
		for db := -mseRefineSteps + 1; db < mseRefineSteps; db++ {
			try(centreA+da, centreB+db)
		}
	}

	alpha, beta = lo, hi
	if lo < 0 {
		alpha = lo * shrinkFactor(bestA, fine)
	}
	if hi > 0 {
		beta = hi * shrinkFactor(bestB, fine)
	}
	return alpha, beta
}

// asymmetricError returns the estimated squared error summed over bins for
// the grid over [min(a, 0), max(b, 0)] with the given number of steps.
func asymmetricError(bins []weightedValue, a, b, steps float64) float64 {
	lo, hi := math.Min(a, 0), math.Max(b, 0)
	step := (hi - lo) / steps
	rounding := step * step / 12

	var sum float64
	for _, v := range bins {
		switch {
		case v.x < lo:
			d := lo - v.x
			sum += v.n * d * d
		case v.x > hi:
			d := v.x - hi
			sum += v.n * d * d
		default:
			sum += v.n * rounding
		}
	}
	return sum
}

// searchSymmetric returns the threshold t with the least estimated error on
// the symmetric grid.
func (o *mseObserver) searchSymmetric(bins []weightedValue) float64 {
	steps := float64(int(1)<<(o.bits-1) - 1)
	m := math.Max(math.Abs(o.counts.min), math.Abs(o.counts.max))
	if m == 0 {
		return 0
	}

	const fine = mseGridSteps * mseRefineSteps
	best := 0
	bestError := math.Inf(1)
	try := func(k int) {
		if k < 0 {
			return
		}
		if e := symmetricError(bins, m*shrinkFactor(k, fine), steps); e < bestError {
			best, bestError = k, e
		}
	}

	for i := range o.coarseSteps(m) {
		try(i * mseRefineSteps)
	}
	centre := best
	for d := -mseRefineSteps + 1; d < mseRefineSteps; d++ {
		try(centre + d)
	}
	return m * shrinkFactor(best, fine)
}

// symmetricError returns the estimated squared error summed over bins for
// the grid over [-t, t] with steps steps on each side.
func symmetricError(bins []weightedValue, t, steps float64) float64 {
	step := t / steps
	rounding := step * step / 12

	var sum float64
	for _, v := range bins {
		if d := math.Abs(v.x) - t; d > 0 {
			sum += v.n * d * d
		} else {
			sum += v.n * rounding
		}
	}
	return sum
}
