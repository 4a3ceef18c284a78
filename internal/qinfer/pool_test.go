package qinfer

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestSampleMaxMatchesCellByCell compares the separable max pool with the cell-by-cell
// walk of sample on random shapes, strides and paddings.
func TestSampleMaxMatchesCellByCell(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 34))
	for i := range 500 {
		k := &poolKernel{
			c: 1 + rng.IntN(20), h: 1 + rng.IntN(9), w: 1 + rng.IntN(9),
			kernelH: 1 + rng.IntN(4), kernelW: 1 + rng.IntN(4),
			strideH: 1 + rng.IntN(3), strideW: 1 + rng.IntN(3),
		}
		k.padTop, k.padLeft = rng.IntN(k.kernelH/2+1), rng.IntN(k.kernelW/2+1)
		padBottom, padRight := rng.IntN(k.kernelH/2+1), rng.IntN(k.kernelW/2+1)
		if k.h+k.padTop+padBottom < k.kernelH || k.w+k.padLeft+padRight < k.kernelW {
			continue
		}
		k.outH = (k.h+k.padTop+padBottom-k.kernelH)/k.strideH + 1
		k.outW = (k.w+k.padLeft+padRight-k.kernelW)/k.strideW + 1
		src := make([]uint8, k.h*k.w*k.c)
		for j := range src {
			src[j] = uint8(rng.IntN(256))
		}
		want := make([]uint8, k.outH*k.outW*k.c)
		got := bytes.Repeat([]uint8{0xAA}, len(want))
		k.sample(src, want)
		k.sampleMax(src, got)
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d (%+v): separable max pool differs from the cell-by-cell walk", i, *k)
		}
	}
}
