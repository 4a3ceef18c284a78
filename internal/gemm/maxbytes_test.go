package gemm

import (
	"math/rand/v2"
	"testing"
)

func TestMaxBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 3))
	for _, n := range []int{0, 1, 31, 32, 33, 64, 100, 1000} {
		dst := make([]uint8, n)
		src := make([]uint8, n+5) // longer than dst: only len(dst) bytes count
		for i := range src {
			src[i] = uint8(rng.IntN(256))
		}
		for i := range dst {
			dst[i] = []uint8{0, 255, uint8(rng.IntN(256))}[rng.IntN(3)]
		}
		want := make([]uint8, n)
		for i := range want {
			want[i] = max(dst[i], src[i])
		}
		MaxBytes(dst, src)
		for i := range want {
			if dst[i] != want[i] {
				t.Fatalf("n=%d: dst[%d] = %d, want %d", n, i, dst[i], want[i])
			}
		}
		g := make([]uint8, n)
		copy(g, dst)
		maxBytesGeneric(g, src)
		for i := range want {
			if g[i] != want[i] {
				t.Fatalf("generic n=%d: dst[%d] = %d, want %d", n, i, g[i], want[i])
			}
		}
	}
}
