package affine

import (
	"fmt"
	"math"
)

// MinScale is the smallest scale that ChooseParams returns. A range narrower
// than MinScale * (qmax - qmin), including an all-zero tensor, gets this
// scale instead of a zero or denormal one. It is 2^-23, the float32 machine
// epsilon, which PyTorch's MinMaxObserver also uses as its default minimum
// scale (eps=1.1920928955078125e-07).
const MinScale = 0x1p-23

// Params are the quantization parameters of one tensor or one channel, as
// used in equations (1) and (2) of the package documentation.
type Params struct {
	Scale     float32 // real units per integer step, finite and > 0
	ZeroPoint int32   // integer that represents real 0, in [QMin, QMax]
	QMin      int32   // smallest integer value after clamping
	QMax      int32   // largest integer value after clamping
}

// ChooseParams returns the parameters that map the real range [alpha, beta]
// onto the integers of scheme s.
//
// The range is first widened to contain 0. An asymmetric scheme then uses
// equations (3) and (4), and a symmetric one uses (5). The scale is computed
// in float64, raised to MinScale if smaller, rounded up to a power of two if
// s.Pow2Scale is set, and rounded up to float32. The zero point is computed
// from the float32 scale. As a result every x in [alpha, beta] dequantizes
// to within half a step (Scale/2) of x, apart from float32 rounding in
// Quantize.
//
// It returns an error if s is invalid, if alpha or beta is NaN or infinite,
// if alpha > beta, or if the scale does not fit float32.
func ChooseParams(alpha, beta float64, s Scheme) (Params, error) {
	p, err := chooseParams(alpha, beta, s)
	if err != nil {
		return Params{}, fmt.Errorf("affine: %w", err)
	}
	return p, nil
}

// chooseParams is ChooseParams with errors that lack the package prefix.
func chooseParams(alpha, beta float64, s Scheme) (Params, error) {
	if err := s.check(); err != nil {
		return Params{}, err
	}
	if err := checkRange(alpha, beta); err != nil {
		return Params{}, err
	}

	qmin, qmax := s.QRange()
	lo := math.Min(alpha, 0)
	hi := math.Max(beta, 0)

	var ideal float64
	if s.Symmetric {
		absMax := math.Max(-lo, hi)
		ideal = absMax / float64(qmax-s.symmetricZeroPoint())
	} else {
		// Dividing each end first avoids overflow for ranges near ±MaxFloat64.
		steps := float64(qmax - qmin)
		ideal = hi/steps - lo/steps
	}

	scale, err := finishScale(ideal, s.Pow2Scale)
	if err != nil {
		return Params{}, fmt.Errorf("range [%g, %g] %w; check the calibration table or the weights of this tensor", alpha, beta, err)
	}

	zeroPoint := s.symmetricZeroPoint()
	if !s.Symmetric {
		zeroPoint = nudgeZeroPoint(lo, scale, qmin, qmax)
	}
	return Params{Scale: scale, ZeroPoint: zeroPoint, QMin: qmin, QMax: qmax}, nil
}

// checkRange returns an error unless [alpha, beta] is a finite, ordered range.
func checkRange(alpha, beta float64) error {
	if !isFinite(alpha) || !isFinite(beta) {
		return fmt.Errorf("range [%g, %g] is not finite; check the calibration table or the weights of this tensor", alpha, beta)
	}
	if alpha > beta {
		return fmt.Errorf("range [%g, %g] is invalid because alpha > beta; pass the minimum as alpha and the maximum as beta", alpha, beta)
	}
	return nil
}

// finishScale turns the ideal float64 scale into the stored float32 one:
// raised to MinScale, optionally rounded up to a power of two, then rounded
// up to float32. The error text continues a sentence about the range.
func finishScale(ideal float64, pow2 bool) (float32, error) {
	scale := math.Max(ideal, MinScale)
	if pow2 {
		scale = roundUpPow2(scale)
	}
	if scale > math.MaxFloat32 {
		return 0, fmt.Errorf("needs scale %g, which does not fit float32 (maximum %g)", scale, math.MaxFloat32)
	}
	return roundUpFloat32(scale), nil
}

// nudgeZeroPoint returns equation (4) rounded half to even and clamped to
// [qmin, qmax]. alpha must be <= 0 and scale > 0, so the unrounded value is
// already in range, and the clamp only absorbs float64 rounding.
func nudgeZeroPoint(alpha float64, scale float32, qmin, qmax int32) int32 {
	ideal := float64(qmin) - alpha/float64(scale)
	return clampToInt32(math.RoundToEven(ideal), qmin, qmax)
}

// Quantize returns x as an integer by equation (1): x / Scale in float32,
// rounded half to even, plus ZeroPoint, clamped to [QMin, QMax]. ±Inf
// clamps to QMin or QMax, and NaN maps to ZeroPoint (real 0).
func (p Params) Quantize(x float32) int32 {
	if x != x {
		return p.ZeroPoint
	}

	steps := float32(x / p.Scale)
	q := math.RoundToEven(float64(steps)) + float64(p.ZeroPoint)
	return clampToInt32(q, p.QMin, p.QMax)
}

// Dequantize returns the real value of q by equation (2). The product is
// exact in float64 and rounded once to float32, so for |q - ZeroPoint| <=
// 2^24 it equals the float32 product (q - ZeroPoint) * Scale.
func (p Params) Dequantize(q int32) float32 {
	steps := float64(int64(q) - int64(p.ZeroPoint))
	return float32(float64(p.Scale) * steps)
}

// Pow2Exponent returns n and true if Scale is exactly 2^-n, and 0 and false
// otherwise. n is negative for scales above 1.
func (p Params) Pow2Exponent() (int, bool) {
	frac, exp := math.Frexp(float64(p.Scale))
	if frac != 0.5 {
		return 0, false
	}
	return 1 - exp, true
}

// QFormat returns the fixed-point format of a bits-wide integer with these
// parameters in ARM notation: "Qm.n" for signed integers, with m integer bits
// besides the sign bit, and "UQm.n" for unsigned ones. n is the number of
// fractional bits, so for example int8 with Scale 2^-4 is "Q3.4". m or n is
// negative when the scale falls outside the integer's own bits (Scale 2^-10
// in int8 is "Q-3.10"). It returns "" unless Scale is a power of two and
// ZeroPoint is 0, because an offset integer is not a Qm.n number.
func (p Params) QFormat(bits int, signed bool) string {
	n, ok := p.Pow2Exponent()
	if !ok || p.ZeroPoint != 0 {
		return ""
	}
	if signed {
		return fmt.Sprintf("Q%d.%d", bits-1-n, n)
	}
	return fmt.Sprintf("UQ%d.%d", bits-n, n)
}

// Validate returns an error unless p could have come from ChooseParams:
// a finite scale > 0 and QMin <= ZeroPoint <= QMax. Use it on parameters
// read from a file.
func (p Params) Validate() error {
	if !isFinite(float64(p.Scale)) || p.Scale <= 0 {
		return fmt.Errorf("affine: scale %g is not a finite positive number; the quantized model is damaged or was written by a faulty tool", p.Scale)
	}
	if p.QMin > p.QMax || p.ZeroPoint < p.QMin || p.ZeroPoint > p.QMax {
		return fmt.Errorf("affine: zero point %d is outside the integer range [%d, %d]; the quantized model is damaged or was written by a faulty tool", p.ZeroPoint, p.QMin, p.QMax)
	}
	return nil
}

func isFinite(x float64) bool {
	return !math.IsNaN(x) && !math.IsInf(x, 0)
}

// clampToInt32 clamps a whole number x (possibly ±Inf) to [lo, hi].
func clampToInt32(x float64, lo, hi int32) int32 {
	if x < float64(lo) {
		return lo
	}
	if x > float64(hi) {
		return hi
	}
	return int32(x)
}

// roundUpFloat32 returns the smallest float32 >= x. x must be at most
// math.MaxFloat32.
func roundUpFloat32(x float64) float32 {
	f := float32(x)
	if float64(f) < x {
		f = math.Nextafter32(f, float32(math.Inf(1)))
	}
	return f
}

// roundUpPow2 returns the smallest power of two >= x, for x > 0.
func roundUpPow2(x float64) float64 {
	frac, exp := math.Frexp(x)
	if frac == 0.5 {
		return x
	}
	return math.Ldexp(1, exp)
}
