package gemm

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// TestReferenceConvByHand checks the reference on a case computed by hand:
// one 3x3 input channel with zero point 10, a 2x2 kernel, stride 1 and
// padding 1 on the top and left only.
func TestReferenceConvByHand(t *testing.T) {
	s := ConvShape{
		Batch: 1, InH: 3, InW: 3, InC: 1, OutC: 1,
		KH: 2, KW: 2, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1,
		PadTop: 1, PadLeft: 1, Groups: 1,
	}
	// Input minus the zero point 10:
	//   1 2 3
	//   4 5 6
	//   7 8 9
	in := []uint8{11, 12, 13, 14, 15, 16, 17, 18, 19}
	w := []int8{1, -1, 2, 3} // [[1, -1], [2, 3]]
	e := Epilogue{Bias: []int32{100}, InZeroPoint: 10, Mult: []int32{1 << 30}, Shift: []int32{0}, ClampMax: 255}

	// Output (0,0) covers padded rows and columns: only input (0,0)=1 meets
	// weight 3, so 100 + 3 = 103. Output (1,1) covers inputs 1 2 / 4 5:
	// 1 - 2 + 8 + 15 = 22, plus the bias 122.
	want := []int32{
		103, 100 + 2*1 + 3*2, 100 + 2*2 + 3*3,
		100 - 1*1 + 3*4, 122, 100 + 2 - 3 + 2*5 + 3*6,
		100 - 4 + 3*7, 100 + 4 - 5 + 2*7 + 3*8, 100 + 5 - 6 + 2*8 + 3*9,
	}
	acc := make([]int32, 9)
	if err := ReferenceConvAccumulators(s, w, e, in, acc); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if acc[i] != want[i] {
			t.Errorf("accumulator %d is %d, expected %d", i, acc[i], want[i])
		}
	}

	// The multiplier 2^30 is 0.5: 103 * 0.5 = 51.5 rounds away from zero.
	out := make([]uint8, 9)
	if err := ReferenceConv(s, w, e, in, out); err != nil {
		t.Fatal(err)
	}
	if out[0] != 52 {
		t.Errorf("output 0 is %d, expected 52", out[0])
	}
}

// TestMultiplyByQuantizedMultiplierPinned pins the rounding at boundaries,
// each multiplier labelled with the real value it stands for.
func TestMultiplyByQuantizedMultiplierPinned(t *testing.T) {
	cases := []struct {
		label            string
		acc, mult, shift int32
		want             int32
	}{
		{"0.5 * 1 = 0.5 rounds toward +infinity", 1, 1 << 30, 0, 1},
		{"0.5 * -1 = -0.5 rounds toward +infinity", -1, 1 << 30, 0, 0},
		{"0.5 * 3 = 1.5", 3, 1 << 30, 0, 2},
		{"0.5 * -3 = -1.5", -3, 1 << 30, 0, -1},
		{"just below 1.0 * 100", 100, math.MaxInt32, 0, 100},
		{"just below 1.0 * -2^31", math.MinInt32, math.MaxInt32, 0, math.MinInt32 + 1},
		{"0.25 * 2 = 0.5 rounds away from zero in the shift", 2, 1 << 30, -1, 1},
		{"0.25 * -2 = -0.5 rounds away from zero in the shift", -2, 1 << 30, -1, -1},
		{"0.25 * 6 = 1.5", 6, 1 << 30, -1, 2},
		{"0.25 * 5 = 1.25 rounds twice, 2.5 to 3 and 1.5 to 2", 5, 1 << 30, -1, 2},
		{"0.25 * -5 = -1.25", -5, 1 << 30, -1, -1},
		{"0.25 * -7 = -1.75", -7, 1 << 30, -1, -2},
		{"2^-31 * (2^31-1) is just below 1.0", math.MaxInt32, math.MaxInt32, -31, 1},
		{"2^-32 * (2^31-1) is just below 0.5 but rounds twice to 1", math.MaxInt32, 1 << 30, -31, 1},
		{"2^-32 * -2^31 is -0.5", math.MinInt32, 1 << 30, -31, -1},
		{"0.5 * 2^31 saturates the left shift of 1", 1, 1 << 30, 31, 1 << 30},
		{"0.5 * -2^31 * 2 saturates", -3, 1 << 30, 31, math.MinInt32 / 2},
		{"2.0 * 1000", 1000, 1 << 30, 2, 2000},
		{"zero multiplier", 12345, 0, 5, 0},
		{"zero accumulator", 0, math.MaxInt32, -31, 0},
		{"-2^31 * -2^31 saturates the doubling multiply", math.MinInt32, math.MinInt32, 0, math.MaxInt32},
	}
	for _, c := range cases {
		if got := multiplyByQuantizedMultiplier(c.acc, c.mult, c.shift); got != c.want {
			t.Errorf("%s: multiplyByQuantizedMultiplier(%d, %d, %d) = %d, expected %d",
				c.label, c.acc, c.mult, c.shift, got, c.want)
		}
	}
}

// exactMultiply is an independent model of multiplyByQuantizedMultiplier in
// exact rational arithmetic: saturate acc*2^left, round x*mult/2^31 to
// nearest with ties toward +infinity (saturating), then round y/2^right to
// nearest with ties away from zero.
func exactMultiply(acc, mult, shift int32) int32 {
	left, right := max(shift, 0), max(-shift, 0)
	x := new(big.Int).Lsh(big.NewInt(int64(acc)), uint(left))
	x = clampBig(x)
	y := roundHalfUp(new(big.Rat).SetFrac(new(big.Int).Mul(x, big.NewInt(int64(mult))), new(big.Int).Lsh(big.NewInt(1), 31)))
	y = clampBig(y)
	z := roundHalfAwayFromZero(new(big.Rat).SetFrac(y, new(big.Int).Lsh(big.NewInt(1), uint(right))))
	return int32(z.Int64())
}

func clampBig(x *big.Int) *big.Int {
	if x.Cmp(big.NewInt(math.MaxInt32)) > 0 {
		return big.NewInt(math.MaxInt32)
	}
	if x.Cmp(big.NewInt(math.MinInt32)) < 0 {
		return big.NewInt(math.MinInt32)
	}
	return x
}

// roundHalfUp returns floor(r + 1/2).
func roundHalfUp(r *big.Rat) *big.Int {
	v := new(big.Rat).Add(r, big.NewRat(1, 2))
	q := new(big.Int).Div(v.Num(), v.Denom()) // Euclidean division floors for a positive divisor
	return q
}

func roundHalfAwayFromZero(r *big.Rat) *big.Int {
	abs := new(big.Rat).Abs(r)
	abs.Add(abs, big.NewRat(1, 2))
	q := new(big.Int).Quo(abs.Num(), abs.Denom())
	if r.Sign() < 0 {
		q.Neg(q)
	}
	return q
}

func TestMultiplyByQuantizedMultiplierMatchesExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 200000; i++ {
		acc := randomAccumulator(rng)
		mult := int32(1<<30 + rng.IntN(1<<30))
		if i%10 == 0 {
			mult = []int32{0, 1 << 30, math.MaxInt32}[rng.IntN(3)]
		}
		shift := int32(rng.IntN(63) - 31)
		got := multiplyByQuantizedMultiplier(acc, mult, shift)
		if want := exactMultiply(acc, mult, shift); got != want {
			t.Fatalf("multiplyByQuantizedMultiplier(%d, %d, %d) = %d, exact rounding gives %d", acc, mult, shift, got, want)
		}
	}
}

// randomAccumulator returns accumulators of every magnitude, with extra
// weight on the int32 limits and small values.
func randomAccumulator(rng *rand.Rand) int32 {
	switch rng.IntN(4) {
	case 0:
		return int32(rng.Uint32())
	case 1:
		return []int32{math.MinInt32, math.MinInt32 + 1, -1, 0, 1, math.MaxInt32 - 1, math.MaxInt32}[rng.IntN(7)]
	case 2:
		return int32(rng.IntN(2001) - 1000)
	default:
		return int32(rng.Uint32()) >> rng.IntN(32)
	}
}

// TestHeadroomLimit checks the documented depth limit for 8-bit weights:
// 66,311 products of 255 * 127 fit int32 and 66,312 do not.
func TestHeadroomLimit(t *testing.T) {
	for _, depth := range []int{66311, 66312} {
		s := ConvShape{Batch: 1, InH: 1, InW: 1, InC: depth, OutC: 1, KH: 1, KW: 1,
			StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1, Groups: 1}
		w := make([]int8, depth)
		w[0] = -127
		e := Epilogue{InZeroPoint: 255, Mult: []int32{0}, Shift: []int32{0}, ClampMax: 255}
		err := checkHeadroom(s, w, &e)
		if fits := depth <= 66311; fits != (err == nil) {
			t.Errorf("depth %d: checkHeadroom error %v, expected fits=%v", depth, err, fits)
		}
	}
}
