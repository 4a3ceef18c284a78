package affine

import "fmt"

// Rounding names a rounding rule. Its values are recorded in the quantized
// model file, so they are part of the file format.
type Rounding string

// RoundHalfToEven rounds to the nearest integer and ties to the even one.
// Quantize and QuantizeBias use it, as ONNX QuantizeLinear does.
const RoundHalfToEven Rounding = "half_to_even"

// RequantRounding names the rounding of MultiplyByQuantizedMultiplier:
// SaturatingRoundingDoublingHighMul (ties toward +Inf) followed by
// RoundingDivideByPOT (ties away from zero). It is an untyped constant so
// that it can be stored both as a Rounding and as a string.
const RequantRounding = "srdhm_half_away"

// Supported integer widths in bits.
const (
	MinBits = 2
	MaxBits = 8
)

// Scheme describes an integer type and how a real range maps onto it.
type Scheme struct {
	Bits        int  // integer width, MinBits to MaxBits
	Signed      bool // range [-2^(Bits-1), 2^(Bits-1)-1] if true, else [0, 2^Bits-1]
	Symmetric   bool // zero point fixed at 0 (signed) or 2^(Bits-1) (unsigned, 128 for uint8)
	NarrowRange bool // qmin raised by one: -(2^(Bits-1)-1) if signed, 1 if unsigned
	Pow2Scale   bool // scale rounded up to a power of two, making each value a Qm.n number
}

// Validate returns an error if the scheme's bit width is unsupported. Every
// combination of the boolean fields is valid.
func (s Scheme) Validate() error {
	if err := s.check(); err != nil {
		return fmt.Errorf("affine: %w", err)
	}
	return nil
}

// check is Validate without the package prefix, for callers that add context.
func (s Scheme) check() error {
	if s.Bits < MinBits || s.Bits > MaxBits {
		return fmt.Errorf("bit width %d is not supported; use %d to %d bits", s.Bits, MinBits, MaxBits)
	}
	return nil
}

// QRange returns the clamp bounds [qmin, qmax] of the scheme's integers, for
// example [-127, 127] for signed 8-bit narrow range and [0, 255] for unsigned
// 8-bit. It panics if Bits is unsupported, so call Validate first.
func (s Scheme) QRange() (qmin, qmax int32) {
	if err := s.Validate(); err != nil {
		panic(err)
	}

	if s.Signed {
		half := int32(1) << (s.Bits - 1)
		qmin, qmax = -half, half-1
	} else {
		qmin, qmax = 0, int32(1)<<s.Bits-1
	}

	if s.NarrowRange {
		qmin++
	}
	return qmin, qmax
}

// symmetricZeroPoint returns the fixed zero point of a symmetric scheme.
func (s Scheme) symmetricZeroPoint() int32 {
	if s.Signed {
		return 0
	}
	return int32(1) << (s.Bits - 1)
}
