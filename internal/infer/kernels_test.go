package infer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// im2colByCell is the definition of the patch matrix, one value at a time.
func im2colByCell(x []float32, c, h, w, kh, kw int, a graph.Attrs, oh, ow int, cols []float32) {
	row := 0
	for ci := range c {
		for ky := range kh {
			for kx := range kw {
				for oy := range oh {
					for ox := range ow {
						iy := oy*a.Stride[0] - a.Padding[0] + ky*a.Dilation[0]
						ix := ox*a.Stride[1] - a.Padding[1] + kx*a.Dilation[1]
						v := float32(0)
						if iy >= 0 && iy < h && ix >= 0 && ix < w {
							v = x[(ci*h+iy)*w+ix]
						}
						cols[(row*oh+oy)*ow+ox] = v
					}
				}
				row++
			}
		}
	}
}

// maxPoolByCell is the definition of max pooling: the maximum of each window's in-bounds
// cells, -Inf for a window with none.
func maxPoolByCell(x *tensor.Tensor, a graph.Attrs) *tensor.Tensor {
	n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	kh, kw := a.Kernel[0], a.Kernel[1]
	oh := (h+a.Padding[0]+a.Padding[2]-kh)/a.Stride[0] + 1
	ow := (w+a.Padding[1]+a.Padding[3]-kw)/a.Stride[1] + 1
	out := tensor.New(n, c, oh, ow)
	for p := range n * c {
		for oy := range oh {
			for ox := range ow {
				m := float32(math.Inf(-1))
				for ky := range kh {
					for kx := range kw {
						iy, ix := oy*a.Stride[0]-a.Padding[0]+ky, ox*a.Stride[1]-a.Padding[1]+kx
						if iy >= 0 && iy < h && ix >= 0 && ix < w {
							m = max(m, x.Data[(p*h+iy)*w+ix])
						}
					}
				}
				out.Data[(p*oh+oy)*ow+ox] = m
			}
		}
	}
	return out
}

func randomAttrs(rng *rand.Rand, kh, kw int) graph.Attrs {
	return graph.Attrs{
		Kernel:   [2]int{kh, kw},
		Stride:   [2]int{1 + rng.IntN(3), 1 + rng.IntN(3)},
		Dilation: [2]int{1 + rng.IntN(2), 1 + rng.IntN(2)},
		Padding:  [4]int{rng.IntN(kh), rng.IntN(kw), rng.IntN(kh), rng.IntN(kw)},
	}
}

func TestIm2colMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	for i := range 300 {
		c, h, w := 1+rng.IntN(3), 1+rng.IntN(9), 1+rng.IntN(9)
		kh, kw := 1+rng.IntN(4), 1+rng.IntN(4)
		a := randomAttrs(rng, kh, kw)
		oh := (h+a.Padding[0]+a.Padding[2]-a.Dilation[0]*(kh-1)-1)/a.Stride[0] + 1
		ow := (w+a.Padding[1]+a.Padding[3]-a.Dilation[1]*(kw-1)-1)/a.Stride[1] + 1
		if oh < 1 || ow < 1 {
			continue
		}
		x := make([]float32, c*h*w)
		for j := range x {
			x[j] = float32(rng.NormFloat64())
		}
		want := make([]float32, c*kh*kw*oh*ow)
		got := make([]float32, len(want))
		for j := range got {
			got[j] = float32(math.NaN()) // every value must be written
		}
		im2colByCell(x, c, h, w, kh, kw, a, oh, ow, want)
		im2col(x, c, h, w, kh, kw, a, oh, ow, got)
		for j := range want {
			if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
				t.Fatalf("case %d (c=%d h=%d w=%d k=%dx%d %+v): cols[%d] = %g, want %g", i, c, h, w, kh, kw, a, j, got[j], want[j])
			}
		}
	}
}

func TestMaxPoolMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 9))
	for i := range 300 {
		n, c, h, w := 1+rng.IntN(2), 1+rng.IntN(3), 1+rng.IntN(9), 1+rng.IntN(9)
		kh, kw := 1+rng.IntN(4), 1+rng.IntN(4)
		a := randomAttrs(rng, kh, kw)
		a.Dilation = [2]int{1, 1}
		if h+a.Padding[0]+a.Padding[2] < kh || w+a.Padding[1]+a.Padding[3] < kw {
			continue
		}
		x := tensor.New(n, c, h, w)
		for j := range x.Data {
			// Few distinct values, signed zeros among them, so that ties are common.
			x.Data[j] = []float32{-1, float32(math.Copysign(0, -1)), 0, 2, 2.5}[rng.IntN(5)]
		}
		want, got := maxPoolByCell(x, a), maxPool(x, a)
		for j := range want.Data {
			if math.Float32bits(got.Data[j]) != math.Float32bits(want.Data[j]) {
				t.Fatalf("case %d (%v k=%dx%d %+v): out[%d] = %g, want %g", i, x.Shape, kh, kw, a, j, got.Data[j], want.Data[j])
			}
		}
	}
}

func BenchmarkIm2col(b *testing.B) {
	for _, tc := range []struct{ c, h, k, pad int }{{1, 28, 5, 2}, {6, 14, 5, 0}, {64, 56, 3, 1}} {
		a := graph.Attrs{Kernel: [2]int{tc.k, tc.k}, Stride: [2]int{1, 1}, Dilation: [2]int{1, 1}, Padding: [4]int{tc.pad, tc.pad, tc.pad, tc.pad}}
		o := tc.h + 2*tc.pad - tc.k + 1
		x := make([]float32, tc.c*tc.h*tc.h)
		cols := make([]float32, tc.c*tc.k*tc.k*o*o)
		b.Run(fmt.Sprintf("c%d_%dx%d_k%d", tc.c, tc.h, tc.h, tc.k), func(b *testing.B) {
			for b.Loop() {
				im2col(x, tc.c, tc.h, tc.h, tc.k, tc.k, a, o, o, cols)
			}
		})
	}
}
