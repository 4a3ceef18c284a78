package affine

import (
	"strings"
	"testing"
)

func TestQRange(t *testing.T) {
	cases := []struct {
		name     string
		scheme   Scheme
		min, max int32
	}{
		{"int8", Scheme{Bits: 8, Signed: true}, -128, 127},
		{"int8 narrow", Scheme{Bits: 8, Signed: true, NarrowRange: true}, -127, 127},
		{"uint8", Scheme{Bits: 8}, 0, 255},
		{"uint8 narrow", Scheme{Bits: 8, NarrowRange: true}, 1, 255},
		{"int4", Scheme{Bits: 4, Signed: true}, -8, 7},
		{"uint4", Scheme{Bits: 4}, 0, 15},
		{"int2", Scheme{Bits: 2, Signed: true}, -2, 1},
		{"int2 narrow", Scheme{Bits: 2, Signed: true, NarrowRange: true}, -1, 1},
		{"uint2", Scheme{Bits: 2}, 0, 3},
	}
	for _, tc := range cases {
		qmin, qmax := tc.scheme.QRange()
		if qmin != tc.min {
			t.Errorf("%s: qmin = %d, want %d", tc.name, qmin, tc.min)
		}
		if qmax != tc.max {
			t.Errorf("%s: qmax = %d, want %d", tc.name, qmax, tc.max)
		}
	}
}

func TestSchemeValidate(t *testing.T) {
	for bits := MinBits; bits <= MaxBits; bits++ {
		if err := (Scheme{Bits: bits}).Validate(); err != nil {
			t.Errorf("bits %d: unexpected error %v", bits, err)
		}
	}

	for _, bits := range []int{-1, 0, 1, 9, 16, 32} {
		err := Scheme{Bits: bits, Signed: true}.Validate()
		if err == nil {
			t.Errorf("bits %d: expected an error", bits)
			continue
		}
		if !strings.HasPrefix(err.Error(), "affine: ") {
			t.Errorf("bits %d: error %q lacks the package prefix", bits, err)
		}
		if !strings.Contains(err.Error(), "bit width") {
			t.Errorf("bits %d: error %q does not name the bit width", bits, err)
		}
	}
}

func TestQRangePanicsOnInvalidBits(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("QRange with Bits 9 did not panic")
		}
	}()
	Scheme{Bits: 9}.QRange()
}
