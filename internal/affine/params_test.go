package affine

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"
)

var (
	uint8Asym       = Scheme{Bits: 8}
	int8Asym        = Scheme{Bits: 8, Signed: true}
	int8Sym         = Scheme{Bits: 8, Signed: true, Symmetric: true}
	int8SymNarrow   = Scheme{Bits: 8, Signed: true, Symmetric: true, NarrowRange: true}
	uint8Sym        = Scheme{Bits: 8, Symmetric: true}
	uint8AsymPow2   = Scheme{Bits: 8, Pow2Scale: true}
	int8SymNarrowP2 = Scheme{Bits: 8, Signed: true, Symmetric: true, NarrowRange: true, Pow2Scale: true}
)

func TestChooseParams(t *testing.T) {
	// Scales are the smallest float32 >= the ideal scale of equation (3) or (5).
	cases := []struct {
		name        string
		alpha, beta float64
		scheme      Scheme
		scale       float32
		zeroPoint   int32
	}{
		{"uint8 asym [-1, 3]", -1, 3, uint8Asym, 0.0156862754, 64},
		{"uint8 asym ReLU6 [0, 6]", 0, 6, uint8Asym, 0.0235294122, 0},
		{"uint8 asym [2, 5] widened to [0, 5]", 2, 5, uint8Asym, 0.0196078438, 0},
		{"uint8 asym [-5, -2] widened to [-5, 0]", -5, -2, uint8Asym, 0.0196078438, 255},
		{"uint8 asym alpha == beta = 3", 3, 3, uint8Asym, 0.0117647061, 0},
		{"int8 asym [-1, 1] zero point nudged to -1", -1, 1, int8Asym, 0.00784313772, -1},
		{"int8 asym [0, 6]", 0, 6, int8Asym, 0.0235294122, -128},
		{"int8 asym [-6, 0]", -6, 0, int8Asym, 0.0235294122, 127},
		{"int8 sym [-3, 1]", -3, 1, int8Sym, 0.023622049, 0},
		{"int8 sym narrow [-0.5, 2]", -0.5, 2, int8SymNarrow, 0.0157480333, 0},
		{"uint8 sym [-1, 2]", -1, 2, uint8Sym, 0.0157480333, 128},
		{"uint8 asym all zero", 0, 0, uint8Asym, MinScale, 0},
		{"int8 asym all zero", 0, 0, int8Asym, MinScale, -128},
		{"int8 sym all zero", 0, 0, int8Sym, MinScale, 0},
		{"uint8 sym all zero", 0, 0, uint8Sym, MinScale, 128},
		{"uint8 asym tiny [0, 1e-7]", 0, 1e-7, uint8Asym, MinScale, 0},
		{"int8 sym tiny [-1e-30, 1e-30]", -1e-30, 1e-30, int8Sym, MinScale, 0},
		{"uint8 asym huge [-1e38, 1e38]", -1e38, 1e38, uint8Asym, 7.84313728e+35, 127},
		{"int8 sym huge [0, 3e38]", 0, 3e38, int8Sym, 2.36220478e+36, 0},
		{"uint8 asym pow2 [0, 6]", 0, 6, uint8AsymPow2, 0x1p-5, 0},
		{"int8 sym narrow pow2 [-1, 1]", -1, 1, int8SymNarrowP2, 0x1p-6, 0},
		{"uint8 asym pow2 all zero", 0, 0, uint8AsymPow2, MinScale, 0},
	}
	for _, tc := range cases {
		p, err := ChooseParams(tc.alpha, tc.beta, tc.scheme)
		if err != nil {
			t.Errorf("%s: unexpected error %v", tc.name, err)
			continue
		}
		if p.Scale != tc.scale {
			t.Errorf("%s: scale = %.9g, want %.9g", tc.name, p.Scale, tc.scale)
		}
		if p.ZeroPoint != tc.zeroPoint {
			t.Errorf("%s: zero point = %d, want %d", tc.name, p.ZeroPoint, tc.zeroPoint)
		}
		qmin, qmax := tc.scheme.QRange()
		if p.QMin != qmin || p.QMax != qmax {
			t.Errorf("%s: integer range [%d, %d], want [%d, %d]", tc.name, p.QMin, p.QMax, qmin, qmax)
		}
		checkZeroExact(t, tc.name, p)
	}
}

func TestChooseParamsErrors(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	cases := []struct {
		name        string
		alpha, beta float64
		scheme      Scheme
		contains    []string
	}{
		{"NaN alpha", nan, 3, uint8Asym, []string{"[NaN, 3]", "not finite", "check the calibration table"}},
		{"NaN beta", -1, nan, uint8Asym, []string{"[-1, NaN]", "not finite"}},
		{"+Inf beta", 0, inf, int8Sym, []string{"[0, +Inf]", "not finite"}},
		{"-Inf alpha", -inf, 0, int8Sym, []string{"[-Inf, 0]", "not finite"}},
		{"alpha > beta", 5, 2, uint8Asym, []string{"[5, 2]", "alpha > beta", "pass the minimum as alpha"}},
		{"scale beyond float32", -1e308, 1e308, uint8Asym, []string{"[-1e+308, 1e+308]", "does not fit float32"}},
		{"pow2 scale beyond float32", 0, 3.4e38 * 255, uint8AsymPow2, []string{"does not fit float32"}},
		{"bits 9", 0, 1, Scheme{Bits: 9}, []string{"bit width 9"}},
		{"bits 1", 0, 1, Scheme{Bits: 1}, []string{"bit width 1"}},
	}
	for _, tc := range cases {
		_, err := ChooseParams(tc.alpha, tc.beta, tc.scheme)
		if err == nil {
			t.Errorf("%s: expected an error", tc.name)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "affine: ") {
			t.Errorf("%s: error %q lacks the package prefix", tc.name, msg)
		}
		for _, want := range tc.contains {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: error %q does not contain %q", tc.name, msg, want)
			}
		}
	}
}

// TestChooseParamsAllSchemes checks the invariants of every bit width and
// flag combination over random and edge ranges.
func TestChooseParamsAllSchemes(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	ranges := [][2]float64{
		{0, 0}, {0, 1}, {-1, 0}, {-1, 1}, {-0.3, 7.1}, {2, 5}, {-5, -2},
		{-1e-7, 1e-7}, {0, 1e-30}, {-1e6, 3}, {-1e30, 1e30},
	}
	for i := 0; i < 40; i++ {
		a := rng.NormFloat64() * math.Pow(10, float64(rng.Intn(8)-4))
		b := a + rng.ExpFloat64()*math.Pow(10, float64(rng.Intn(8)-4))
		ranges = append(ranges, [2]float64{a, b})
	}

	for bits := MinBits; bits <= MaxBits; bits++ {
		for flags := 0; flags < 16; flags++ {
			s := Scheme{
				Bits:        bits,
				Signed:      flags&1 != 0,
				Symmetric:   flags&2 != 0,
				NarrowRange: flags&4 != 0,
				Pow2Scale:   flags&8 != 0,
			}
			for _, r := range ranges {
				name := fmt.Sprintf("%+v [%g, %g]", s, r[0], r[1])
				p, err := ChooseParams(r[0], r[1], s)
				if err != nil {
					t.Errorf("%s: unexpected error %v", name, err)
					continue
				}
				checkParamsValid(t, name, p, s)
				checkZeroExact(t, name, p)
				checkRangeCovered(t, name, p, r[0], r[1])
			}
		}
	}
}

func checkParamsValid(t *testing.T, name string, p Params, s Scheme) {
	t.Helper()
	if err := p.Validate(); err != nil {
		t.Errorf("%s: %v", name, err)
	}
	if p.Scale < MinScale {
		t.Errorf("%s: scale %g is below MinScale", name, p.Scale)
	}
	if s.Pow2Scale {
		if _, ok := p.Pow2Exponent(); !ok {
			t.Errorf("%s: scale %g is not a power of two", name, p.Scale)
		}
	}
	if s.Symmetric && p.ZeroPoint != s.symmetricZeroPoint() {
		t.Errorf("%s: symmetric zero point = %d, want %d", name, p.ZeroPoint, s.symmetricZeroPoint())
	}
}

// checkZeroExact checks that real 0 survives a round trip exactly.
func checkZeroExact(t *testing.T, name string, p Params) {
	t.Helper()
	if q := p.Quantize(0); q != p.ZeroPoint {
		t.Errorf("%s: Quantize(0) = %d, want zero point %d", name, q, p.ZeroPoint)
	}
	if x := p.Dequantize(p.ZeroPoint); x != 0 {
		t.Errorf("%s: Dequantize(zero point) = %g, want exactly 0", name, x)
	}
	if p.ZeroPoint < p.QMin || p.ZeroPoint > p.QMax {
		t.Errorf("%s: zero point %d outside [%d, %d]", name, p.ZeroPoint, p.QMin, p.QMax)
	}
}

// checkRangeCovered checks that values across [alpha, beta] round-trip to
// within half a step, with slack for float32 rounding in Quantize and
// Dequantize.
func checkRangeCovered(t *testing.T, name string, p Params, alpha, beta float64) {
	t.Helper()
	if math.Abs(alpha) > math.MaxFloat32 || math.Abs(beta) > math.MaxFloat32 {
		return
	}
	scale := float64(p.Scale)
	for i := 0; i <= 16; i++ {
		x := float32(alpha + (beta-alpha)*float64(i)/16)
		back := float64(p.Dequantize(p.Quantize(x)))
		bound := scale*(0.5+1e-4) + math.Abs(float64(x))*0x1p-22
		if diff := math.Abs(back - float64(x)); diff > bound {
			t.Errorf("%s: x = %g dequantizes to %g, error %g > %g", name, x, back, diff, bound)
		}
	}
}

func TestQuantizeRoundsHalfToEven(t *testing.T) {
	p := Params{Scale: 1, ZeroPoint: 0, QMin: -128, QMax: 127}
	cases := []struct {
		x    float32
		want int32
	}{
		{0.5, 0}, {1.5, 2}, {2.5, 2}, {3.5, 4}, {-0.5, 0}, {-1.5, -2}, {-2.5, -2},
		{0.49999997, 0}, {0.50000006, 1}, {-0.50000006, -1},
	}
	for _, tc := range cases {
		if got := p.Quantize(tc.x); got != tc.want {
			t.Errorf("Quantize(%g) = %d, want %d", tc.x, got, tc.want)
		}
	}
}

func TestQuantizeClampsAndMapsNaN(t *testing.T) {
	p := Params{Scale: 0.5, ZeroPoint: 10, QMin: 0, QMax: 255}
	inf := float32(math.Inf(1))
	cases := []struct {
		name string
		x    float32
		want int32
	}{
		{"in range", 3, 16},
		{"negative in range", -5, 0},
		{"below range", -5.5, 0},
		{"above range", 1000, 255},
		{"max float32", math.MaxFloat32, 255},
		{"-max float32", -math.MaxFloat32, 0},
		{"+Inf", inf, 255},
		{"-Inf", -inf, 0},
		{"NaN", float32(math.NaN()), 10},
		{"zero", 0, 10},
		{"negative zero", float32(math.Copysign(0, -1)), 10},
	}
	for _, tc := range cases {
		if got := p.Quantize(tc.x); got != tc.want {
			t.Errorf("%s: Quantize(%g) = %d, want %d", tc.name, tc.x, got, tc.want)
		}
	}
}

func TestQuantizeTinyScaleOverflow(t *testing.T) {
	// x / Scale overflows float32 to +Inf, which must clamp, not wrap.
	p := Params{Scale: MinScale, ZeroPoint: 0, QMin: -127, QMax: 127}
	if got := p.Quantize(3e38); got != 127 {
		t.Errorf("Quantize(3e38) = %d, want 127", got)
	}
	if got := p.Quantize(-3e38); got != -127 {
		t.Errorf("Quantize(-3e38) = %d, want -127", got)
	}
}

func TestDequantize(t *testing.T) {
	p := Params{Scale: 0.25, ZeroPoint: 128, QMin: 0, QMax: 255}
	cases := []struct {
		q    int32
		want float32
	}{
		{128, 0}, {129, 0.25}, {0, -32}, {255, 31.75},
		{math.MaxInt32, float32((float64(math.MaxInt32) - 128) * 0.25)},
		{math.MinInt32, float32((float64(math.MinInt32) - 128) * 0.25)},
	}
	for _, tc := range cases {
		if got := p.Dequantize(tc.q); got != tc.want {
			t.Errorf("Dequantize(%d) = %g, want %g", tc.q, got, tc.want)
		}
	}
}

func TestPow2ExponentAndQFormat(t *testing.T) {
	cases := []struct {
		name      string
		scale     float32
		zeroPoint int32
		bits      int
		signed    bool
		exponent  int
		isPow2    bool
		format    string
	}{
		{"int8 2^-4", 0x1p-4, 0, 8, true, 4, true, "Q3.4"},
		{"int8 2^-7", 0x1p-7, 0, 8, true, 7, true, "Q0.7"},
		{"int8 2^0", 1, 0, 8, true, 0, true, "Q7.0"},
		{"int8 2^3", 8, 0, 8, true, -3, true, "Q10.-3"},
		{"int8 2^-10", 0x1p-10, 0, 8, true, 10, true, "Q-3.10"},
		{"uint8 2^-5", 0x1p-5, 0, 8, false, 5, true, "UQ3.5"},
		{"int4 2^-2", 0x1p-2, 0, 4, true, 2, true, "Q1.2"},
		{"uint8 2^-5 zero point 128", 0x1p-5, 128, 8, false, 5, true, ""},
		{"not a power of two", 0.1, 0, 8, true, 0, false, ""},
		{"3 * 2^-4", 0.1875, 0, 8, true, 0, false, ""},
		{"MinScale", MinScale, 0, 8, true, 23, true, "Q-16.23"},
	}
	for _, tc := range cases {
		p := Params{Scale: tc.scale, ZeroPoint: tc.zeroPoint, QMin: -128, QMax: 255}
		n, ok := p.Pow2Exponent()
		if ok != tc.isPow2 {
			t.Errorf("%s: Pow2Exponent ok = %v, want %v", tc.name, ok, tc.isPow2)
		}
		if n != tc.exponent {
			t.Errorf("%s: Pow2Exponent = %d, want %d", tc.name, n, tc.exponent)
		}
		if got := p.QFormat(tc.bits, tc.signed); got != tc.format {
			t.Errorf("%s: QFormat = %q, want %q", tc.name, got, tc.format)
		}
	}
}

func TestParamsValidate(t *testing.T) {
	good := Params{Scale: 0.5, ZeroPoint: 3, QMin: 0, QMax: 255}
	if err := good.Validate(); err != nil {
		t.Errorf("valid params: unexpected error %v", err)
	}

	bad := []struct {
		name   string
		params Params
		text   string
	}{
		{"zero scale", Params{Scale: 0, QMin: 0, QMax: 255}, "scale 0"},
		{"negative scale", Params{Scale: -1, QMin: 0, QMax: 255}, "scale -1"},
		{"NaN scale", Params{Scale: float32(math.NaN()), QMin: 0, QMax: 255}, "scale NaN"},
		{"zero point above range", Params{Scale: 1, ZeroPoint: 256, QMin: 0, QMax: 255}, "zero point 256"},
		{"empty range", Params{Scale: 1, ZeroPoint: 0, QMin: 1, QMax: 0}, "[1, 0]"},
	}
	for _, tc := range bad {
		err := tc.params.Validate()
		if err == nil {
			t.Errorf("%s: expected an error", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: error %q does not contain %q", tc.name, err, tc.text)
		}
	}
}
