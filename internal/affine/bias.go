package affine

import (
	"fmt"
	"math"
)

// BiasWidenLimit is the largest |b_q| that WidenScaleForBias aims for. It
// leaves half of the int32 accumulator for the sum of products in equation
// (6). Each product of an 8-bit activation and an 8-bit weight, zero points
// subtracted, is at most 255 * 128 = 32640 in magnitude, so 2^30 more
// covers sums over about 32,000 terms, a 3x3 convolution over 3,600 input
// channels.
const BiasWidenLimit = 1 << 30

// QuantizeBias returns b_q[c] = round(bias[c] / (scaleIn * scaleW[c])) by
// equation (7), rounded half to even, with zero point 0. The bias scale is
// the exact float64 product of the two float32 scales. scaleW holds one
// weight scale per channel, or a single one for a per-tensor weight.
//
// It returns an error naming the channel if a bias is NaN or infinite, if a
// scale is not finite and positive, or if |b_q| > 2^31 - 1. The range is
// kept symmetric, so -2^31 is rejected too.
//
// NOTE: a b_q near the int32 limit leaves no headroom for the sum of
// products in the accumulator. WidenScaleForBias keeps |b_q| <= 2^30.
func QuantizeBias(bias []float32, scaleIn float32, scaleW []float32) ([]int32, error) {
	if !validScale(scaleIn) {
		return nil, fmt.Errorf("affine: input scale %g is not a finite positive number; check the quantization parameters of the layer input", scaleIn)
	}
	if len(scaleW) != len(bias) && len(scaleW) != 1 {
		return nil, fmt.Errorf("affine: %d weight scales for %d bias values; pass one scale per output channel, or one for the whole weight", len(scaleW), len(bias))
	}

	q := make([]int32, len(bias))
	for c, b := range bias {
		sw := scaleW[0]
		if len(scaleW) > 1 {
			sw = scaleW[c]
		}

		v, err := quantizeBiasValue(b, scaleIn, sw)
		if err != nil {
			return nil, fmt.Errorf("affine: bias of channel %d: %w", c, err)
		}
		if math.Abs(v) > math.MaxInt32 {
			return nil, fmt.Errorf("affine: bias of channel %d is %g, which needs the integer %.0f at bias scale %g (input scale %g * weight scale %g) and does not fit int32 (magnitude at most 2^31 - 1); widen the weight scale of this channel", c, b, v, biasScale(scaleIn, sw), scaleIn, sw)
		}
		q[c] = int32(v)
	}
	return q, nil
}

// WidenScaleForBias returns the smallest float32 weight scale >= scaleW for
// which QuantizeBias stores bias with |b_q| <= BiasWidenLimit. It returns
// scaleW itself when that already holds. The caller must requantize the
// channel's weights with the new scale, and its multiplier changes too.
//
// It returns scaleW unchanged when bias is NaN or infinite, when a scale is
// not finite and positive, or when no finite float32 scale is large enough.
// QuantizeBias then reports the problem.
func WidenScaleForBias(bias float32, scaleIn, scaleW float32) (newScaleW float32) {
	if !isFinite(float64(bias)) || !validScale(scaleIn) || !validScale(scaleW) {
		return scaleW
	}
	if biasFits(bias, scaleIn, scaleW) {
		return scaleW
	}

	// Solve |bias| / (scaleIn * s) = BiasWidenLimit for s, then correct the
	// float32 result by single steps for the rounding in quantizeBiasValue.
	need := math.Abs(float64(bias)) / (float64(scaleIn) * BiasWidenLimit)
	if need > math.MaxFloat32 {
		return scaleW
	}

	inf := float32(math.Inf(1))
	s := roundUpFloat32(need)
	for !biasFits(bias, scaleIn, s) {
		s = math.Nextafter32(s, inf)
		if math.IsInf(float64(s), 1) {
			return scaleW
		}
	}
	for {
		smaller := math.Nextafter32(s, 0)
		if smaller < scaleW || !biasFits(bias, scaleIn, smaller) {
			return s
		}
		s = smaller
	}
}

// quantizeBiasValue returns round(b / (scaleIn * scaleW)) as a float64 so
// that values beyond int32 can be reported.
func quantizeBiasValue(b, scaleIn, scaleW float32) (float64, error) {
	if !isFinite(float64(b)) {
		return 0, fmt.Errorf("value %g is not finite; check the bias and the BatchNorm folding that produced it", b)
	}
	if !validScale(scaleW) {
		return 0, fmt.Errorf("weight scale %g is not a finite positive number; check the weight quantization parameters", scaleW)
	}
	return math.RoundToEven(float64(b) / biasScale(scaleIn, scaleW)), nil
}

func biasFits(b, scaleIn, scaleW float32) bool {
	v, err := quantizeBiasValue(b, scaleIn, scaleW)
	return err == nil && math.Abs(v) <= BiasWidenLimit
}

// biasScale returns scaleIn * scaleW, exact in float64.
func biasScale(scaleIn, scaleW float32) float64 {
	return float64(scaleIn) * float64(scaleW)
}

func validScale(s float32) bool {
	return isFinite(float64(s)) && s > 0
}
