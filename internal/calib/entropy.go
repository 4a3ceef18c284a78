package calib

import (
	"math"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/stat"
)

// Defaults of the entropy method: a histogram of |x| with at most 2048 bins
// and 8 bits, that is 128 quantized levels. These follow the pseudocode of
// TensorRT's entropy calibration in NVIDIA's GTC 2017 talk "8-bit Inference
// with TensorRT", as quoted at
// https://forums.developer.nvidia.com/t/tensorrt-entropy-calibration-pseudocode/108185
const (
	DefaultEntropyBins = 2048
	DefaultEntropyBits = 8
)

// entropySmoothing is the probability given to a bin of the candidate
// distribution Q that is empty where the reference P is not, before Q is
// renormalized. Without it the KL divergence would be infinite.
const entropySmoothing = 1e-4

// entropyLevels returns the number of quantized levels of one sign for a
// symmetric grid of the given bit width: 128 for 8 bits.
func entropyLevels(bits int) int {
	return 1 << (bits - 1)
}

// entropyObserver chooses the threshold t that minimizes the KL divergence
// between the histogram of |x| and its quantized form, and returns
// [-t, t] for a tensor with values of both signs, [0, t] for a tensor without
// negative values and [-t, 0] for a tensor without positive values.
//
// Exact zeros are counted as samples but left out of the histogram. Zero quantizes exactly
// whatever the threshold, so zeros carry no information about it. After a ReLU they are often
// half of all values, and in the histogram their spike in bin 0 dominates the divergence of
// every wide candidate, so the search would pick the narrowest one and clip most of the range:
// on the LeNet fixture, relu1 (max 5.6) was clipped at 0.625.
type entropyObserver struct {
	counts  tensorCounts
	hist    *histogram // of the non-zero |x|, so bin 0 starts at 0
	levels  int
	nonZero []float32 // scratch for one batch's non-zero values
}

func (o *entropyObserver) Observe(values []float32) {
	lo, hi, ok := o.counts.scan(values)
	if !ok {
		return
	}
	o.nonZero = o.nonZero[:0]
	for _, v := range values {
		if v != 0 {
			o.nonZero = append(o.nonZero, v)
		}
	}
	if len(o.nonZero) > 0 {
		o.hist.add(o.nonZero, lo, hi)
	}
}

func (o *entropyObserver) Range() (Range, error) {
	if err := o.counts.check(); err != nil {
		return Range{}, err
	}

	t := entropyThreshold(o.hist, o.levels)
	switch {
	case o.counts.min >= 0:
		return o.counts.rangeOf(0, t), nil
	case o.counts.max <= 0:
		return o.counts.rangeOf(-t, 0), nil
	default:
		return o.counts.rangeOf(-t, t), nil
	}
}

// entropyThreshold returns the threshold on |x| with the smallest KL
// divergence. h is a magnitude histogram: its bin 0 starts at 0.
//
// For each candidate i, from levels bins up to all n bins, the threshold is
// the upper edge of bin i-1:
//   - P is bins 0..i-1 with the count of every bin from i on (the values
//     that the threshold clips) added to bin i-1.
//   - Q merges bins 0..i-1 into levels groups of i/levels bins (the group
//     boundaries are g*i/levels, rounded down), then spreads each group's
//     count evenly over the group's bins where P is not zero.
//   - Q gets entropySmoothing where it is zero and P is not.
//
// The smallest i with the least divergence wins. Two kinds of candidates are
// skipped, which the TensorRT description does not mention:
//   - those with fewer than two non-empty bins below the threshold. P is
//     then a single spike, which Q matches exactly, so the divergence is 0
//     however many values are clipped. Without this rule a tensor with no
//     values near 0, such as one in [1, 5], would be clipped to about 1.
//   - those whose Q is all zero because every value is clipped.
//
// If every candidate is skipped, or the histogram has at most levels bins,
// the threshold is max|x|. The threshold never exceeds max|x|, which
// candidate n returns. The cost is O(n^2) for n bins: up to 4 million bin
// visits for 2048 bins.
//
// The histogram has between bins/2 and bins bins (see histogram), so the
// lowest candidate threshold, levels bins, lies between levels/bins and
// 2*levels/bins of max|x|: 6.25% to 12.5% with the defaults. TensorRT's
// fixed 2048 bins over [0, max|x|] give 6.25%.
func entropyThreshold(h *histogram, levels int) float64 {
	n := len(h.counts)
	if n <= levels {
		// The histogram is no finer than the quantized grid, so clipping
		// cannot help.
		return h.hi
	}

	// clipped[i] is the number of values in bins i and up.
	clipped := make([]float64, n+1)
	for j := n - 1; j >= 0; j-- {
		clipped[j] = clipped[j+1] + float64(h.counts[j])
	}

	// nonEmpty is the number of non-empty bins below the candidate.
	nonEmpty := 0
	for _, c := range h.counts[:levels-1] {
		if c > 0 {
			nonEmpty++
		}
	}

	p := make([]float64, n)
	q := make([]float64, n)
	best, bestDivergence := n, math.Inf(1)
	for i := levels; i <= n; i++ {
		if h.counts[i-1] > 0 {
			nonEmpty++
		}
		if nonEmpty < 2 {
			continue
		}
		divergence, ok := entropyDivergence(h.counts[:i], clipped[i], levels, p[:i], q[:i])
		if ok && divergence < bestDivergence {
			best, bestDivergence = i, divergence
		}
	}

	if best == n {
		return h.hi
	}
	return math.Min(h.lowerEdge(best), h.hi)
}

// entropyDivergence returns KL(P || Q) for the first len(counts) bins with
// clipped values folded into the last one, using p and q as scratch space of
// len(counts). ok is false if Q is all zero.
func entropyDivergence(counts []uint64, clipped float64, levels int, p, q []float64) (divergence float64, ok bool) {
	i := len(counts)
	for j, c := range counts {
		p[j] = float64(c)
	}
	p[i-1] += clipped

	for g := range levels {
		start, end := g*i/levels, (g+1)*i/levels
		var sum, nonZero float64
		for j := start; j < end; j++ {
			sum += float64(counts[j])
			if p[j] > 0 {
				nonZero++
			}
		}
		for j := start; j < end; j++ {
			q[j] = 0
			if p[j] > 0 {
				q[j] = sum / nonZero
			}
		}
	}

	qSum := floats.Sum(q)
	if qSum == 0 {
		return 0, false
	}
	floats.Scale(1/floats.Sum(p), p)
	floats.Scale(1/qSum, q)

	smoothed := false
	for j := range q {
		if q[j] == 0 && p[j] > 0 {
			q[j] = entropySmoothing
			smoothed = true
		}
	}
	if smoothed {
		floats.Scale(1/floats.Sum(q), q)
	}
	return stat.KullbackLeibler(p, q), true
}
