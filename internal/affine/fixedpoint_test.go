package affine

import (
	"math"
	"math/rand"
	"testing"
)

func TestSaturatingRoundingDoublingHighMul(t *testing.T) {
	const minI, maxI = math.MinInt32, math.MaxInt32
	// want is a*b / 2^31 rounded to nearest, ties toward +Inf, worked by hand.
	cases := []struct {
		name string
		a, b int32
		want int32
	}{
		{"MinInt32 squared saturates", minI, minI, maxI},
		{"zero", 0, 12345, 0},
		{"2^30 * 2^30 = 2^29", 1 << 30, 1 << 30, 1 << 29},
		{"0.5 rounds up to 1", 1, 1 << 30, 1},
		{"-0.5 rounds up to 0", -1, 1 << 30, 0},
		{"1.5 rounds up to 2", 3, 1 << 30, 2},
		{"-1.5 rounds up to -1", -3, 1 << 30, -1},
		{"2.5 rounds up to 3", 5, 1 << 30, 3},
		{"-2.5 rounds up to -2", -5, 1 << 30, -2},
		{"1.25 rounds to 1", 5, 1 << 29, 1},
		{"-1.25 rounds to -1", -5, 1 << 29, -1},
		{"-1.75 rounds to -2", -7, 1 << 29, -2},
		{"MaxInt32 squared is 2^31 - 2 + 2^-31", maxI, maxI, maxI - 1},
		{"MinInt32 * MaxInt32 is exact", minI, maxI, -maxI},
		{"MinInt32 * 1 = -1", minI, 1, -1},
		{"MinInt32 * -1 = 1", minI, -1, 1},
		{"MaxInt32 * 1 is just below 1", maxI, 1, 1},
		{"MaxInt32 * -1 is just above -1", maxI, -1, -1},
		{"MinInt32 * 2^30 = -2^30", minI, 1 << 30, -(1 << 30)},
	}
	for _, tc := range cases {
		if got := SaturatingRoundingDoublingHighMul(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: SRDHM(%d, %d) = %d, want %d", tc.name, tc.a, tc.b, got, tc.want)
		}
		if got := SaturatingRoundingDoublingHighMul(tc.b, tc.a); got != tc.want {
			t.Errorf("%s: SRDHM(%d, %d) = %d, want %d (swapped operands)", tc.name, tc.b, tc.a, got, tc.want)
		}
	}
}

// TestSaturatingRoundingDoublingHighMulMatchesSQRDMULH compares with the
// instruction's definition, (2*a*b + 2^31) >> 32 with an arithmetic shift.
func TestSaturatingRoundingDoublingHighMulMatchesSQRDMULH(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 200000; i++ {
		a, b := randomInt32(rng), randomInt32(rng)
		if a == math.MinInt32 && b == math.MinInt32 {
			continue
		}
		want := int32((2*int64(a)*int64(b) + (1 << 31)) >> 32)
		if got := SaturatingRoundingDoublingHighMul(a, b); got != want {
			t.Fatalf("SRDHM(%d, %d) = %d, SQRDMULH definition gives %d", a, b, got, want)
		}
	}
}

func TestRoundingDivideByPOT(t *testing.T) {
	const minI, maxI = math.MinInt32, math.MaxInt32
	// want is x / 2^exponent rounded to nearest, ties away from zero.
	cases := []struct {
		name     string
		x        int32
		exponent int
		want     int32
	}{
		{"2.5 to 3", 5, 1, 3},
		{"-2.5 to -3", -5, 1, -3},
		{"1.5 to 2", 3, 1, 2},
		{"-1.5 to -2", -3, 1, -2},
		{"0.5 to 1", 1, 1, 1},
		{"-0.5 to -1", -1, 1, -1},
		{"exact 2", 4, 1, 2},
		{"exact -2", -4, 1, -2},
		{"1.25 to 1", 5, 2, 1},
		{"-1.25 to -1", -5, 2, -1},
		{"1.5 to 2 at exponent 2", 6, 2, 2},
		{"-1.5 to -2 at exponent 2", -6, 2, -2},
		{"1.75 to 2", 7, 2, 2},
		{"-1.75 to -2", -7, 2, -2},
		{"0.25 to 0", 1, 2, 0},
		{"-0.25 to 0", -1, 2, 0},
		{"exponent 0 keeps MaxInt32", maxI, 0, maxI},
		{"exponent 0 keeps MinInt32", minI, 0, minI},
		{"exponent 0 keeps -1", -1, 0, -1},
		{"MaxInt32 / 2 = 2^30 - 0.5 to 2^30", maxI, 1, 1 << 30},
		{"MinInt32 / 2 exact", minI, 1, -(1 << 30)},
		{"MaxInt32 / 2^31 just below 1", maxI, 31, 1},
		{"MinInt32 / 2^31 = -1", minI, 31, -1},
		{"2^30 / 2^31 = 0.5 to 1", 1 << 30, 31, 1},
		{"-2^30 / 2^31 = -0.5 to -1", -(1 << 30), 31, -1},
		{"(2^30 - 1) / 2^31 to 0", 1<<30 - 1, 31, 0},
		{"-(2^30 - 1) / 2^31 to 0", -(1<<30 - 1), 31, 0},
		{"-2^30 - 1 / 2^31 to -1", -(1 << 30) - 1, 31, -1},
	}
	for _, tc := range cases {
		if got := RoundingDivideByPOT(tc.x, tc.exponent); got != tc.want {
			t.Errorf("%s: RoundingDivideByPOT(%d, %d) = %d, want %d", tc.name, tc.x, tc.exponent, got, tc.want)
		}
	}
}

func TestRoundingDivideByPOTPanicsOutOfRange(t *testing.T) {
	for _, exponent := range []int{-1, 32} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("exponent %d did not panic", exponent)
				}
			}()
			RoundingDivideByPOT(1, exponent)
		}()
	}
}

// TestRoundingDivideByPOTNEONForm checks the form documented for NEON
// kernels: subtract 1, saturating, from negative x when exponent > 0, then
// round the shift with ties toward +Inf as SRSHL does.
func TestRoundingDivideByPOTNEONForm(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 200000; i++ {
		x := randomInt32(rng)
		exponent := rng.Intn(32)

		fixed := int64(x)
		if x < 0 && exponent > 0 && x != math.MinInt32 {
			fixed--
		}
		want := fixed
		if exponent > 0 {
			want = (fixed + int64(1)<<(exponent-1)) >> exponent
		}

		if got := RoundingDivideByPOT(x, exponent); int64(got) != want {
			t.Fatalf("RoundingDivideByPOT(%d, %d) = %d, NEON form gives %d", x, exponent, got, want)
		}
	}
}

func TestMultiplyByQuantizedMultiplierExact(t *testing.T) {
	const minI, maxI = math.MinInt32, math.MaxInt32
	half := Multiplier{Mult: 1 << 30, Shift: 0}      // 0.5
	quarter := Multiplier{Mult: 1 << 30, Shift: -1}  // 0.25
	pow2m8 := Multiplier{Mult: 1 << 30, Shift: -7}   // 2^-8
	identity := Multiplier{Mult: 1 << 30, Shift: 1}  // 1
	two := Multiplier{Mult: 1 << 30, Shift: 2}       // 2
	pow2m32 := Multiplier{Mult: 1 << 30, Shift: -31} // 2^-32
	almostOne := Multiplier{Mult: maxI, Shift: 0}    // 1 - 2^-31
	cases := []struct {
		name string
		acc  int32
		m    Multiplier
		want int32
	}{
		{"0 * 0.5", 0, half, 0},
		{"0 * 2", 0, two, 0},
		{"MaxInt32 * 0", maxI, Multiplier{}, 0},
		{"MinInt32 * 0", minI, Multiplier{}, 0},
		{"3 * 0.5 = 1.5 to 2", 3, half, 2},
		{"-3 * 0.5 = -1.5 to -1, SRDHM ties toward +Inf", -3, half, -1},
		{"6 * 0.25 = 1.5 to 2", 6, quarter, 2},
		{"-6 * 0.25 = -1.5 to -2, half away from zero", -6, quarter, -2},
		{"2 * 0.25 = 0.5 to 1", 2, quarter, 1},
		{"-2 * 0.25 = -0.5 to -1", -2, quarter, -1},
		{"1 * 0.25 = 0.25 to 1, double rounding off by one", 1, quarter, 1},
		{"-1 * 0.25 = -0.25 to 0", -1, quarter, 0},
		{"384 * 2^-8 = 1.5 to 2", 384, pow2m8, 2},
		{"-384 * 2^-8 = -1.5 to -2", -384, pow2m8, -2},
		{"640 * 2^-8 = 2.5 to 3", 640, pow2m8, 3},
		{"-640 * 2^-8 = -2.5 to -3", -640, pow2m8, -3},
		{"MinInt32 * 0.5", minI, half, -(1 << 30)},
		{"MaxInt32 * 0.5 = 2^30 - 0.5 to 2^30", maxI, half, 1 << 30},
		{"MaxInt32 * (1 - 2^-31)", maxI, almostOne, maxI - 1},
		{"MinInt32 * (1 - 2^-31)", minI, almostOne, minI + 1},
		{"12345 * 1", 12345, identity, 12345},
		{"-12345 * 1", -12345, identity, -12345},
		{"2^30 - 1 times 1 does not saturate", 1<<30 - 1, identity, 1<<30 - 1},
		{"MaxInt32 * 1 saturates the left shift to 2^30", maxI, identity, 1 << 30},
		{"MinInt32 * 1 saturates the left shift to -2^30", minI, identity, -(1 << 30)},
		{"MaxInt32 * 2 saturates to 2^30", maxI, two, 1 << 30},
		{"MinInt32 * 2^-32 = -0.5 to -1", minI, pow2m32, -1},
		{"MaxInt32 * 2^-32 = 0.49999 to 1, double rounding off by one", maxI, pow2m32, 1},
		{"2^30 * 2^-32 = 0.25 to 0", 1 << 30, pow2m32, 0},
	}
	for _, tc := range cases {
		if got := MultiplyByQuantizedMultiplier(tc.acc, tc.m); got != tc.want {
			t.Errorf("%s: MultiplyByQuantizedMultiplier(%d, %+v) = %d, want %d", tc.name, tc.acc, tc.m, got, tc.want)
		}
	}
}

// TestMultiplyByQuantizedMultiplierRandom compares with round(acc * M) in
// float64 for log-uniform M in [2^-31, 2^10].
//
// acc is bounded so that |acc * M| <= 2^30 and acc << Shift does not
// saturate. Then the mantissa's relative error of 2^-31 moves the product by
// at most 0.5, and the two roundings add at most 0.75. The result is thus
// within 1.25 of acc * M, and so within one integer step of round(acc * M).
func TestMultiplyByQuantizedMultiplierRandom(t *testing.T) {
	const samples = 1000000
	rng := rand.New(rand.NewSource(4))
	offByOne := 0

	for i := 0; i < samples; i++ {
		multiplier := math.Exp2(-31 + 41*rng.Float64())
		m, err := QuantizeMultiplier(multiplier)
		if err != nil {
			t.Fatalf("QuantizeMultiplier(%g): %v", multiplier, err)
		}

		limit := math.Min(0x1p30/multiplier, float64(int32(math.MaxInt32)>>max(m.Shift, 0)))
		if i%2 == 1 {
			limit = math.Min(limit, 1000) // small accumulators, where ties are frequent
		}
		acc := int32(math.Floor((2*rng.Float64() - 1) * limit))

		got := MultiplyByQuantizedMultiplier(acc, m)
		want := math.Round(float64(acc) * multiplier)
		diff := math.Abs(float64(got) - want)
		if diff > 1 {
			t.Fatalf("MultiplyByQuantizedMultiplier(%d, %+v) = %d, but round(%d * %g) = %g", acc, m, got, acc, multiplier, want)
		}
		if diff == 1 {
			offByOne++
		}
	}
	t.Logf("%d of %d results were one step from round(acc * M)", offByOne, samples)
}

func TestMultiplyByQuantizedMultiplierPanicsOnBadShift(t *testing.T) {
	for _, shift := range []int32{-32, 32} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("shift %d did not panic", shift)
				}
			}()
			MultiplyByQuantizedMultiplier(1, Multiplier{Mult: 1 << 30, Shift: shift})
		}()
	}
}

func TestRequantize(t *testing.T) {
	m := Multiplier{Mult: 1 << 30, Shift: -1} // 0.25
	acc := []int32{0, 6, -6, 400, -400, math.MaxInt32, math.MinInt32}
	input := append([]int32(nil), acc...)
	// 0.25 * acc + 10, clamped to [0, 100].
	want := []int32{10, 12, 8, 100, 0, 100, 0}

	out := make([]int32, len(acc))
	Requantize(acc, m, 10, 0, 100, out)
	for i := range want {
		if out[i] != want[i] {
			t.Errorf("acc %d: out = %d, want %d", acc[i], out[i], want[i])
		}
		if acc[i] != input[i] {
			t.Errorf("acc[%d] changed from %d to %d", i, input[i], acc[i])
		}
	}

	Requantize(acc, m, 10, 0, 100, acc)
	for i := range want {
		if acc[i] != want[i] {
			t.Errorf("in place, acc %d: out = %d, want %d", input[i], acc[i], want[i])
		}
	}
}

func TestRequantizeZeroPointAddDoesNotWrap(t *testing.T) {
	identity := Multiplier{Mult: 1 << 30, Shift: 1}
	acc := []int32{1<<30 - 1, -(1 << 30)}
	out := make([]int32, 2)

	Requantize(acc, identity, math.MaxInt32, math.MinInt32, math.MaxInt32, out)
	if out[0] != math.MaxInt32 {
		t.Errorf("(2^30 - 1) + MaxInt32 = %d, want MaxInt32 after clamping", out[0])
	}

	Requantize(acc, identity, math.MinInt32, math.MinInt32, math.MaxInt32, out)
	if out[1] != math.MinInt32 {
		t.Errorf("-2^30 + MinInt32 = %d, want MinInt32 after clamping", out[1])
	}
}

func TestRequantizePanics(t *testing.T) {
	m := Multiplier{Mult: 1 << 30, Shift: 0}
	cases := []struct {
		name string
		run  func()
	}{
		{"short output", func() { Requantize([]int32{1, 2}, m, 0, 0, 255, make([]int32, 1)) }},
		{"empty clamp range", func() { Requantize([]int32{1}, m, 0, 10, 5, make([]int32, 1)) }},
	}
	for _, tc := range cases {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: did not panic", tc.name)
				}
			}()
			tc.run()
		}()
	}
}

// randomInt32 returns edge values a quarter of the time, else uniform int32.
func randomInt32(rng *rand.Rand) int32 {
	edges := []int32{0, 1, -1, math.MaxInt32, math.MinInt32, 1 << 30, -(1 << 30), math.MaxInt32 - 1, math.MinInt32 + 1}
	if rng.Intn(4) == 0 {
		return edges[rng.Intn(len(edges))]
	}
	return int32(rng.Uint32())
}
