package affine

import (
	"fmt"
	"math"
)

// SaturatingRoundingDoublingHighMul returns a*b / 2^31, the high 32 bits of
// 2*a*b, rounded to nearest with ties toward +Inf. It saturates only for
// a = b = math.MinInt32, returning math.MaxInt32; every other product fits.
// It mirrors ARM SQRDMULH and gemmlowp's function of the same name.
//
// The rounding is the truncating-division form used by gemmlowp: add 2^30
// (or 1 - 2^30 for a negative product) and divide by 2^31 toward zero.
func SaturatingRoundingDoublingHighMul(a, b int32) int32 {
	if a == math.MinInt32 && b == math.MinInt32 {
		return math.MaxInt32
	}

	ab := int64(a) * int64(b)
	nudge := int64(1 << 30)
	if ab < 0 {
		nudge = 1 - (1 << 30)
	}
	return int32((ab + nudge) / (1 << 31))
}

// RoundingDivideByPOT returns x / 2^exponent rounded to nearest with ties
// away from zero. It never overflows. It panics unless 0 <= exponent <= 31.
// It mirrors gemmlowp's scalar RoundingDivideByPOT. ARM's rounding shift
// (SRSHL by -exponent) rounds ties toward +Inf instead. To match, a NEON
// version must first subtract 1, saturating, from negative x when
// exponent > 0.
func RoundingDivideByPOT(x int32, exponent int) int32 {
	if exponent < 0 || exponent > 31 {
		panic(fmt.Sprintf("affine: RoundingDivideByPOT exponent %d is outside [0, 31]", exponent))
	}

	mask := int32((int64(1) << exponent) - 1)
	remainder := x & mask
	threshold := mask >> 1
	if x < 0 {
		threshold++
	}

	result := x >> exponent
	if remainder > threshold {
		result++
	}
	return result
}

// MultiplyByQuantizedMultiplier returns acc * M for M = m.Mult * 2^(m.Shift-31),
// rounded by RequantRounding. It mirrors TensorFlow Lite's function of the
// same name, except that the left shift saturates instead of overflowing.
// It panics unless -31 <= m.Shift <= 31, so check multipliers read from a
// file with Multiplier.Validate.
//
// The steps, which SIMD kernels must reproduce bit for bit:
//
//	left, right := max(Shift, 0), max(-Shift, 0)
//	x := acc << left, saturated to int32
//	y := SaturatingRoundingDoublingHighMul(x, Mult)  // ties toward +Inf
//	return RoundingDivideByPOT(y, right)             // ties away from zero
//
// Accuracy: the result is within one step of round(acc * M) whenever
// |acc * M| <= 2^30 and acc << left does not saturate. When the left shift
// saturates, |acc * M| >= 2^30 and the result is at least 2^30 - 1 in
// magnitude with the right sign, so clamping it to an 8-bit output range
// gives the same value as the exact product would.
func MultiplyByQuantizedMultiplier(acc int32, m Multiplier) int32 {
	left, right := m.shifts()

	x := saturateInt32(int64(acc) << left)
	y := SaturatingRoundingDoublingHighMul(x, m.Mult)
	return RoundingDivideByPOT(y, right)
}

// Requantize applies equation (8) to every accumulator:
//
//	out[i] = clamp(MultiplyByQuantizedMultiplier(acc[i], m) + outZP, clampMin, clampMax)
//
// The addition is exact, as if in int64, so a SIMD version may use a
// saturating int32 add before the clamp. It is the reference for the SIMD
// requantization kernels. out may be the same slice as acc. It panics if
// len(out) != len(acc), if clampMin > clampMax, or if m.Shift is outside
// [-31, 31].
func Requantize(acc []int32, m Multiplier, outZP, clampMin, clampMax int32, out []int32) {
	if len(out) != len(acc) {
		panic(fmt.Sprintf("affine: Requantize output length %d differs from input length %d", len(out), len(acc)))
	}
	if clampMin > clampMax {
		panic(fmt.Sprintf("affine: Requantize clamp range [%d, %d] is empty", clampMin, clampMax))
	}

	for i, a := range acc {
		scaled := int64(MultiplyByQuantizedMultiplier(a, m))
		out[i] = clampInt64(scaled+int64(outZP), clampMin, clampMax)
	}
}

func saturateInt32(x int64) int32 {
	return clampInt64(x, math.MinInt32, math.MaxInt32)
}

func clampInt64(x int64, lo, hi int32) int32 {
	if x < int64(lo) {
		return lo
	}
	if x > int64(hi) {
		return hi
	}
	return int32(x)
}
