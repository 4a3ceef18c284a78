package affine

import (
	"math"
	"testing"
)

// FuzzQuantizeMultiplier decodes any 64-bit pattern as a float64 M and checks
// that QuantizeMultiplier returns an error or a multiplier that reconstructs
// M within 2^-31 relative, and that applying it never panics.
func FuzzQuantizeMultiplier(f *testing.F) {
	seeds := []float64{
		0.5, math.Nextafter(0.5, 0), math.Nextafter(1, 0), 1, 2, 1 - 0x1p-40,
		0x1p-31, 0x1p-32, 0x1p-33, 0x1p-40, 0x1p31 - 1, 0x1p31 - 0.5, 0x1p31,
		0, -1, math.NaN(), math.Inf(1), math.SmallestNonzeroFloat64, math.MaxFloat64,
	}
	for _, m := range seeds {
		f.Add(math.Float64bits(m))
	}

	f.Fuzz(func(t *testing.T, bits uint64) {
		m := math.Float64frombits(bits)
		q, err := QuantizeMultiplier(m)

		representable := m >= 0x1p-32 && m <= 0x1p31-1
		if err != nil {
			if representable {
				t.Fatalf("QuantizeMultiplier(%g) rejected a representable multiplier: %v", m, err)
			}
			return
		}

		if err := q.Validate(); err != nil {
			t.Fatalf("QuantizeMultiplier(%g) = %+v fails Validate: %v", m, q, err)
		}
		if q.Mult == 0 {
			if m >= 0x1p-32 {
				t.Fatalf("QuantizeMultiplier(%g) returned the zero multiplier for M >= 2^-32", m)
			}
		} else if diff := math.Abs(q.Float64() - m); diff > m*0x1p-31 {
			t.Fatalf("QuantizeMultiplier(%g) = %+v reconstructs %g, relative error %g > 2^-31", m, q, q.Float64(), diff/m)
		}

		for _, acc := range []int32{0, 1, -1, math.MaxInt32, math.MinInt32} {
			MultiplyByQuantizedMultiplier(acc, q)
		}
	})
}

// FuzzChooseParams checks that any range and any scheme give an error or
// valid parameters with an exact real 0.
func FuzzChooseParams(f *testing.F) {
	f.Add(-1.0, 3.0, uint8(8), uint8(0))
	f.Add(0.0, 0.0, uint8(8), uint8(3))
	f.Add(-1e-30, 1e-30, uint8(4), uint8(15))
	f.Add(-1e308, 1e308, uint8(8), uint8(0))
	f.Add(5.0, 2.0, uint8(2), uint8(1))
	f.Add(math.NaN(), 1.0, uint8(8), uint8(0))
	f.Add(0.0, 1.0, uint8(9), uint8(0))

	f.Fuzz(func(t *testing.T, alpha, beta float64, bits, flags uint8) {
		s := Scheme{
			Bits:        int(bits),
			Signed:      flags&1 != 0,
			Symmetric:   flags&2 != 0,
			NarrowRange: flags&4 != 0,
			Pow2Scale:   flags&8 != 0,
		}
		p, err := ChooseParams(alpha, beta, s)

		validInput := s.Validate() == nil && isFinite(alpha) && isFinite(beta) && alpha <= beta
		if err != nil {
			if validInput && math.Abs(alpha) <= 1e30 && math.Abs(beta) <= 1e30 {
				t.Fatalf("ChooseParams(%g, %g, %+v) rejected a moderate range: %v", alpha, beta, s, err)
			}
			return
		}
		if !validInput {
			t.Fatalf("ChooseParams(%g, %g, %+v) accepted invalid input", alpha, beta, s)
		}

		if !isFinite(float64(p.Scale)) || p.Scale <= 0 {
			t.Fatalf("ChooseParams(%g, %g, %+v): scale %g is not finite and positive", alpha, beta, s, p.Scale)
		}
		qmin, qmax := s.QRange()
		if p.QMin != qmin || p.QMax != qmax {
			t.Fatalf("ChooseParams(%g, %g, %+v): integer range [%d, %d], want [%d, %d]", alpha, beta, s, p.QMin, p.QMax, qmin, qmax)
		}
		if p.ZeroPoint < qmin || p.ZeroPoint > qmax {
			t.Fatalf("ChooseParams(%g, %g, %+v): zero point %d outside [%d, %d]", alpha, beta, s, p.ZeroPoint, qmin, qmax)
		}
		if q := p.Quantize(0); q != p.ZeroPoint {
			t.Fatalf("ChooseParams(%g, %g, %+v): Quantize(0) = %d, want zero point %d", alpha, beta, s, q, p.ZeroPoint)
		}
		if x := p.Dequantize(p.ZeroPoint); x != 0 {
			t.Fatalf("ChooseParams(%g, %g, %+v): Dequantize(zero point) = %g, want 0", alpha, beta, s, x)
		}
		checkRangeCovered(t, "fuzzed range", p, alpha, beta)
	})
}
