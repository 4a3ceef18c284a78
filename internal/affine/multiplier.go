package affine

import (
	"fmt"
	"math"
)

// Shift limits of a Multiplier. MaxShift keeps acc << Shift inside int64 in
// MultiplyByQuantizedMultiplier, and MinShift keeps the right shift at most
// 31 bits, the limit of RoundingDivideByPOT.
const (
	MinShift = -31
	MaxShift = 31
)

// Multiplier is the fixed-point form (10) of a real multiplier M > 0:
//
//	M = Mult * 2^(Shift - 31)
//
// Mult is a mantissa with its binary point at bit 31, in [2^30, 2^31 - 1],
// that is [0.5, 1). Shift is in [MinShift, MaxShift], and Shift > 0 means a
// left shift. So the multipliers that can be represented lie in
// [2^-32, 2^31 - 1]. The zero value, Mult 0 and Shift 0, multiplies by 0,
// and QuantizeMultiplier returns it for M below 2^-32.
type Multiplier struct {
	Mult  int32 // mantissa, Q0.31, in [2^30, 2^31 - 1], or 0 for the zero multiplier
	Shift int32 // power-of-two exponent; > 0 shifts left, < 0 shifts right
}

// QuantizeMultiplier returns the Multiplier closest to m.
//
// The mantissa m * 2^(31 - Shift) is rounded to nearest with ties away from
// zero, so the relative error is at most 2^-31. A mantissa that rounds up
// to 2^31 (m just below a power of two) is halved and Shift raised by one.
//
// m below 2^-32 after that rounding returns the zero Multiplier. The product
// with it is always 0, which is also round(acc * m) for every int32 acc,
// because |acc * m| < 2^31 * 2^-32 = 1/2.
//
// It returns an error if m is NaN, infinite or <= 0, or if m >= 2^31 - 0.5,
// which would need Shift 32.
func QuantizeMultiplier(m float64) (Multiplier, error) {
	if math.IsNaN(m) || math.IsInf(m, 0) || m <= 0 {
		return Multiplier{}, fmt.Errorf("affine: multiplier %g is not a finite positive number; check the scales it was computed from (scale_in * scale_w / scale_out)", m)
	}

	frac, exp := math.Frexp(m) // m = frac * 2^exp, frac in [0.5, 1)
	mantissa := math.Round(frac * (1 << 31))
	if mantissa == 1<<31 {
		mantissa /= 2
		exp++
	}

	if exp > MaxShift {
		return Multiplier{}, fmt.Errorf("affine: multiplier %g is too large for the fixed-point form, which needs it below 2^31 - 0.5; the output scale of this layer is probably far too small", m)
	}
	if exp < MinShift {
		return Multiplier{}, nil
	}
	return Multiplier{Mult: int32(mantissa), Shift: int32(exp)}, nil
}

// Pow2Multiplier returns the Multiplier of an exact power of two m = 2^k,
// which has Mult = 2^30 and Shift = k + 1, so MultiplyByQuantizedMultiplier
// becomes a rounding shift. With power-of-two scales (Scheme.Pow2Scale)
// every M is such a power. As with QuantizeMultiplier, m below 2^-32
// returns the zero Multiplier and m >= 2^31 is an error. It also returns an
// error if m is not a positive power of two.
func Pow2Multiplier(m float64) (Multiplier, error) {
	frac, _ := math.Frexp(m)
	if frac != 0.5 {
		return Multiplier{}, fmt.Errorf("affine: multiplier %g is not a power of two; use power-of-two scales for every tensor of the layer, or QuantizeMultiplier", m)
	}
	return QuantizeMultiplier(m)
}

// Float64 returns the real multiplier Mult * 2^(Shift - 31).
func (m Multiplier) Float64() float64 {
	return math.Ldexp(float64(m.Mult), int(m.Shift)-31)
}

// Validate returns an error unless Shift is in [MinShift, MaxShift] and Mult
// is in [2^30, 2^31 - 1] or 0. Use it on multipliers read from a file, since
// MultiplyByQuantizedMultiplier panics on an out-of-range Shift.
func (m Multiplier) Validate() error {
	if m.Shift < MinShift || m.Shift > MaxShift {
		return fmt.Errorf("affine: multiplier shift %d is outside [%d, %d]; the quantized model is damaged or was written by a faulty tool", m.Shift, MinShift, MaxShift)
	}
	if m.Mult != 0 && m.Mult < 1<<30 {
		return fmt.Errorf("affine: multiplier mantissa %d is outside [2^30, 2^31 - 1] and is not 0; the quantized model is damaged or was written by a faulty tool", m.Mult)
	}
	return nil
}

// shifts returns the left and right shift amounts, at most one nonzero.
func (m Multiplier) shifts() (left, right int) {
	if m.Shift < MinShift || m.Shift > MaxShift {
		panic(fmt.Sprintf("affine: multiplier shift %d is outside [%d, %d]", m.Shift, MinShift, MaxShift))
	}
	if m.Shift > 0 {
		return int(m.Shift), 0
	}
	return 0, int(-m.Shift)
}
