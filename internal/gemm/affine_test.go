package gemm

import (
	"math/rand/v2"
	"testing"

	"github.com/qtool-dev/qtool/internal/affine"
)

// TestMultiplyMatchesAffine checks the scalar requantization of this
// package, and through TestRequantizePathsMatchScalar every SIMD path,
// against affine.MultiplyByQuantizedMultiplier, the project's reference.
func TestMultiplyMatchesAffine(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	for i := 0; i < 500000; i++ {
		acc := randomAccumulator(rng)
		e := randomEpilogue(rng, 1)
		mult, shift := e.Mult[0], e.Shift[0]
		want := affine.MultiplyByQuantizedMultiplier(acc, affine.Multiplier{Mult: mult, Shift: shift})
		if got := multiplyByQuantizedMultiplier(acc, mult, shift); got != want {
			t.Fatalf("multiplyByQuantizedMultiplier(%d, %d, %d) = %d, affine returns %d", acc, mult, shift, got, want)
		}
		left, right := max(shift, 0), max(-shift, 0)
		mask := int32(int64(1)<<right - 1)
		if got := multiplyByQuantizedMultiplierParts(acc, mult, left, right, mask, mask>>1); got != want {
			t.Fatalf("multiplyByQuantizedMultiplierParts(%d, %d, shift %d) = %d, affine returns %d", acc, mult, shift, got, want)
		}
	}
}
