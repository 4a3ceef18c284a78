package affine

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestQuantizeMultiplierBoundaries(t *testing.T) {
	type row struct {
		name  string // the real value
		m     float64
		mult  int32
		shift int32
	}
	cases := []row{
		{"0.5 - 2^-54 (just below 0.5) rounds up to 0.5", math.Nextafter(0.5, 0), 1 << 30, 0},
		{"0.5", 0.5, 1 << 30, 0},
		{"0.75", 0.75, 3 << 29, 0},
		{"1/3 = 0.333...", 1.0 / 3, 1431655765, -1},
		{"1 - 2^-53 (just below 1) rounds up to 1", math.Nextafter(1, 0), 1 << 30, 1},
		{"1 - 2^-40 mantissa rounds up to 2^31", 1 - 0x1p-40, 1 << 30, 1},
		{"1 - 2^-31 keeps the largest mantissa", 1 - 0x1p-31, math.MaxInt32, 0},
		{"1", 1, 1 << 30, 1},
		{"2", 2, 1 << 30, 2},
		{"1000.5", 1000.5, 2098200576, 10},
		{"2^-32, the smallest multiplier", 0x1p-32, 1 << 30, -31},
		{"2^-32 * (1 - 2^-40) rounds up to 2^-32", 0x1p-32 * (1 - 0x1p-40), 1 << 30, -31},
		{"2^-33 is the zero multiplier", 0x1p-33, 0, 0},
		{"2^-40 is the zero multiplier", 0x1p-40, 0, 0},
		{"5e-324, the smallest denormal, is the zero multiplier", math.SmallestNonzeroFloat64, 0, 0},
		{"2^30", 0x1p30, 1 << 30, 31},
		{"2^31 - 1, the largest multiplier", 0x1p31 - 1, math.MaxInt32, 31},
		{"2^31 - 0.75 rounds down to 2^31 - 1", 0x1p31 - 0.75, math.MaxInt32, 31},
	}
	for k := 1; k <= 31; k++ {
		cases = append(cases, row{fmt.Sprintf("2^-%d = %g", k, math.Ldexp(1, -k)), math.Ldexp(1, -k), 1 << 30, int32(1 - k)})
	}

	for _, tc := range cases {
		m, err := QuantizeMultiplier(tc.m)
		if err != nil {
			t.Errorf("%s: unexpected error %v", tc.name, err)
			continue
		}
		if m.Mult != tc.mult {
			t.Errorf("%s: Mult = %d, want %d", tc.name, m.Mult, tc.mult)
		}
		if m.Shift != tc.shift {
			t.Errorf("%s: Shift = %d, want %d", tc.name, m.Shift, tc.shift)
		}
		if err := m.Validate(); err != nil {
			t.Errorf("%s: result fails Validate: %v", tc.name, err)
		}
		if m.Mult != 0 && math.Abs(m.Float64()-tc.m) > tc.m*0x1p-31 {
			t.Errorf("%s: Float64() = %g, more than 2^-31 relative from %g", tc.name, m.Float64(), tc.m)
		}
	}
}

func TestQuantizeMultiplierErrors(t *testing.T) {
	cases := []struct {
		name string
		m    float64
		text string
	}{
		{"zero", 0, "multiplier 0 is not a finite positive number"},
		{"negative zero", math.Copysign(0, -1), "not a finite positive number"},
		{"negative", -0.5, "multiplier -0.5 is not a finite positive number"},
		{"NaN", math.NaN(), "multiplier NaN"},
		{"+Inf", math.Inf(1), "multiplier +Inf"},
		{"-Inf", math.Inf(-1), "multiplier -Inf"},
		{"2^31 - 0.5 rounds to Shift 32", 0x1p31 - 0.5, "too large"},
		{"2^31", 0x1p31, "multiplier 2.147483648e+09 is too large"},
		{"1e10", 1e10, "too large"},
		{"max float64", math.MaxFloat64, "too large"},
	}
	for _, tc := range cases {
		_, err := QuantizeMultiplier(tc.m)
		if err == nil {
			t.Errorf("%s: expected an error", tc.name)
			continue
		}
		if !strings.HasPrefix(err.Error(), "affine: ") {
			t.Errorf("%s: error %q lacks the package prefix", tc.name, err)
		}
		if !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: error %q does not contain %q", tc.name, err, tc.text)
		}
	}
}

func TestPow2Multiplier(t *testing.T) {
	cases := []struct {
		name  string
		m     float64
		mult  int32
		shift int32
	}{
		{"2^-10", 0x1p-10, 1 << 30, -9},
		{"2^-32", 0x1p-32, 1 << 30, -31},
		{"1", 1, 1 << 30, 1},
		{"2^30", 0x1p30, 1 << 30, 31},
		{"2^-40 is the zero multiplier", 0x1p-40, 0, 0},
	}
	for _, tc := range cases {
		m, err := Pow2Multiplier(tc.m)
		if err != nil {
			t.Errorf("%s: unexpected error %v", tc.name, err)
			continue
		}
		if m.Mult != tc.mult {
			t.Errorf("%s: Mult = %d, want %d", tc.name, m.Mult, tc.mult)
		}
		if m.Shift != tc.shift {
			t.Errorf("%s: Shift = %d, want %d", tc.name, m.Shift, tc.shift)
		}
	}

	for _, bad := range []float64{0.75, 3, -0.5, 0, math.NaN(), math.Inf(1), 0x1p31} {
		if _, err := Pow2Multiplier(bad); err == nil {
			t.Errorf("Pow2Multiplier(%g): expected an error", bad)
		}
	}
}

// TestPow2MultiplierIsRoundingShift checks that a power-of-two multiplier
// with Shift <= -1 gives round-half-away-from-zero of acc * 2^k for even acc,
// where the SRDHM step is exact.
func TestPow2MultiplierIsRoundingShift(t *testing.T) {
	for k := -32; k <= -2; k++ {
		m, err := Pow2Multiplier(math.Ldexp(1, k))
		if err != nil {
			t.Fatalf("2^%d: %v", k, err)
		}
		for _, acc := range []int32{0, 2, -2, 6, -6, 1 << 20, -(1 << 20), 3 << 20, -(3 << 20), math.MinInt32, math.MaxInt32 - 1} {
			want := int32(math.Round(math.Ldexp(float64(acc), k)))
			if got := MultiplyByQuantizedMultiplier(acc, m); got != want {
				t.Errorf("2^%d * %d = %d, want %d", k, acc, got, want)
			}
		}
	}
}

func TestMultiplierValidate(t *testing.T) {
	good := []Multiplier{{}, {Mult: 1 << 30, Shift: -31}, {Mult: math.MaxInt32, Shift: 31}, {Mult: 0, Shift: 5}}
	for _, m := range good {
		if err := m.Validate(); err != nil {
			t.Errorf("%+v: unexpected error %v", m, err)
		}
	}

	bad := []struct {
		m    Multiplier
		text string
	}{
		{Multiplier{Mult: 1 << 30, Shift: 32}, "shift 32"},
		{Multiplier{Mult: 1 << 30, Shift: -32}, "shift -32"},
		{Multiplier{Mult: 1<<30 - 1, Shift: 0}, "mantissa 1073741823"},
		{Multiplier{Mult: -1 << 30, Shift: 0}, "mantissa -1073741824"},
	}
	for _, tc := range bad {
		err := tc.m.Validate()
		if err == nil {
			t.Errorf("%+v: expected an error", tc.m)
			continue
		}
		if !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%+v: error %q does not contain %q", tc.m, err, tc.text)
		}
	}
}
