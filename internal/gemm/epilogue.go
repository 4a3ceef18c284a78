package gemm

import (
	"fmt"
	"math"

	"github.com/qtool-dev/qtool/internal/affine"
)

// Epilogue is the per-output-channel arithmetic that turns int32
// accumulators into uint8 outputs. For output channel c:
//
//	acc[c] = Bias[c] + sum_k (a_k - InZeroPoint) * w[c][k]      (exact in int32)
//	out    = clamp(OutZeroPoint + MultiplyByQuantizedMultiplier(acc, Mult[c], Shift[c]), ClampMin, ClampMax)
//
// Padded input taps read InZeroPoint, so they add 0 to the sum.
// The clamp is applied to the exact sum, so OutZeroPoint plus a large
// requantized value saturates at ClampMax instead of wrapping.
type Epilogue struct {
	// Bias is in accumulator units (scale_in * scale_w[c], zero point 0),
	// one value per output channel. A nil Bias means all zeros.
	Bias []int32
	// InZeroPoint is the input zero point in the uint8 domain, 0..255.
	InZeroPoint int32
	// Mult is the fixed-point multiplier per output channel, with its binary
	// point at bit 31: in [2^30, 2^31-1], or 0 for a channel whose output is
	// always OutZeroPoint clamped.
	Mult []int32
	// Shift is the power-of-two exponent per output channel, in [-31, 31].
	// A positive value shifts left before the multiplication, and a negative
	// one is a rounding right shift after it.
	Shift []int32
	// OutZeroPoint, ClampMin and ClampMax are in the uint8 domain, 0..255,
	// with ClampMin <= ClampMax.
	OutZeroPoint, ClampMin, ClampMax int32
}

// validate checks the lengths and ranges against outC output channels.
func (e *Epilogue) validate(outC int) error {
	if e.Bias != nil && len(e.Bias) != outC {
		return fmt.Errorf("gemm: epilogue has %d bias values, expected %d (one per output channel) or none", len(e.Bias), outC)
	}
	if len(e.Mult) != outC {
		return fmt.Errorf("gemm: epilogue has %d multipliers, expected %d (one per output channel)", len(e.Mult), outC)
	}
	if len(e.Shift) != outC {
		return fmt.Errorf("gemm: epilogue has %d shifts, expected %d (one per output channel)", len(e.Shift), outC)
	}
	for c, m := range e.Mult {
		if m != 0 && m < 1<<30 {
			return fmt.Errorf("gemm: invalid multiplier %d of output channel %d, expected 0 or a value in [2^30, 2^31-1]", m, c)
		}
	}
	for c, s := range e.Shift {
		if s < -31 || s > 31 {
			return fmt.Errorf("gemm: invalid shift %d of output channel %d, expected a value in [-31, 31]", s, c)
		}
	}

	points := []struct {
		name  string
		value int32
	}{
		{"InZeroPoint", e.InZeroPoint}, {"OutZeroPoint", e.OutZeroPoint},
		{"ClampMin", e.ClampMin}, {"ClampMax", e.ClampMax},
	}
	for _, p := range points {
		if p.value < 0 || p.value > 255 {
			return fmt.Errorf("gemm: invalid epilogue %s %d, expected a uint8 value in [0, 255]", p.name, p.value)
		}
	}
	if e.ClampMin > e.ClampMax {
		return fmt.Errorf("gemm: epilogue ClampMin %d is greater than ClampMax %d", e.ClampMin, e.ClampMax)
	}
	return nil
}

// bias returns the bias of output channel c, zero when Bias is nil.
func (e *Epilogue) bias(c int) int32 {
	if e.Bias == nil {
		return 0
	}
	return e.Bias[c]
}

// checkHeadroom returns an error if an accumulator of some output channel
// could leave the int32 range. For channel c the bound is
//
//	depth * max|a - InZeroPoint| * max_k |w[c][k]| + |Bias[c]| <= 2^31 - 1,
//
// with max|a - InZeroPoint| = max(InZeroPoint, 255 - InZeroPoint). For 8-bit
// weights (|w| <= 127) and InZeroPoint 0 or 255 that allows depth up to
// 66,311 when the bias is 0; fewer weight bits allow more. Within the bound
// every kernel's int32 sum is exact, even where a kernel adds the terms in
// another order or starts from the folded value Bias - InZeroPoint*sum(w),
// because two's complement addition wraps consistently and the final value
// fits.
func checkHeadroom(s ConvShape, w []int8, e *Epilogue) error {
	depth := s.depth()
	maxA := int64(max(e.InZeroPoint, 255-e.InZeroPoint))
	for c := 0; c < s.OutC; c++ {
		maxW := int64(0)
		for _, v := range w[c*depth : (c+1)*depth] {
			maxW = max(maxW, abs64(int64(v)))
		}
		bias := abs64(int64(e.bias(c)))
		bound := int64(depth)*maxA*maxW + bias
		if bound > math.MaxInt32 {
			return fmt.Errorf("gemm: accumulator of output channel %d may overflow int32: depth %d * max|a-zp| %d * max|w| %d + |bias| %d = %d > %d; split the layer or use fewer weight bits",
				c, depth, maxA, maxW, bias, bound, int64(math.MaxInt32))
		}
	}
	return nil
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// multiplyByQuantizedMultiplier returns acc * mult * 2^shift / 2^31 with the rounding of
// affine.MultiplyByQuantizedMultiplier, the scalar definition that the SIMD requantization
// routines must match bit for bit. Epilogue.validate keeps shift in [-31, 31], so the call
// cannot panic.
func multiplyByQuantizedMultiplier(acc, mult, shift int32) int32 {
	return affine.MultiplyByQuantizedMultiplier(acc, affine.Multiplier{Mult: mult, Shift: shift})
}

// requantize returns the uint8 output for one accumulator of channel c. The
// sum with OutZeroPoint is formed in int64 so that it cannot wrap.
func (e *Epilogue) requantize(acc int32, c int) uint8 {
	v := int64(e.OutZeroPoint) + int64(multiplyByQuantizedMultiplier(acc, e.Mult[c], e.Shift[c]))
	v = min(max(v, int64(e.ClampMin)), int64(e.ClampMax))
	return uint8(v)
}
