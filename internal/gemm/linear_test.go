package gemm

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestLinearPathsMatchDefinition(t *testing.T) {
	sizes := []struct{ batch, in, out int }{
		{1, 1, 1}, {5, 3, 10}, {13, 64, 70}, {7, 100, 16}, {6, 256, 256}, {1, 1000, 130}, {31, 9, 33},
	}
	rng := rand.New(rand.NewPCG(5, 5))
	for _, size := range sizes {
		name := fmt.Sprintf("batch %d, %d to %d", size.batch, size.in, size.out)
		w := make([]int8, size.out*size.in)
		for i := range w {
			w[i] = int8(rng.IntN(255) - 127)
		}
		in := make([]uint8, size.batch*size.in)
		for i := range in {
			in[i] = uint8(rng.IntN(256))
		}
		e := randomCase("", linearShape(size.batch, size.in, size.out), rng.Uint64(), defaultOptions).e

		// The definition, written out for a matrix product.
		wantAcc := make([]int32, size.batch*size.out)
		want := make([]uint8, size.batch*size.out)
		for n := 0; n < size.batch; n++ {
			for o := 0; o < size.out; o++ {
				sum := e.Bias[o]
				for i := 0; i < size.in; i++ {
					sum += (int32(in[n*size.in+i]) - e.InZeroPoint) * int32(w[o*size.in+i])
				}
				wantAcc[n*size.out+o] = sum
				want[n*size.out+o] = e.requantize(sum, o)
			}
		}

		for _, p := range testPaths(t) {
			l, err := newLinearPath(size.batch, size.in, size.out, w, e, p)
			if err != nil {
				t.Fatalf("%s/%s: %v", name, p, err)
			}
			acc := make([]int32, size.batch*size.out)
			l.RunAccumulators(in, acc)
			if i := firstDiff(acc, wantAcc); i >= 0 {
				t.Errorf("%s/%s: accumulator [%d][%d] is %d, expected %d", name, p, i/size.out, i%size.out, acc[i], wantAcc[i])
			}
			for _, threads := range []int{1, 2, 3} {
				out := make([]uint8, size.batch*size.out)
				l.Run(in, out, threads)
				if i := firstDiff(out, want); i >= 0 {
					t.Errorf("%s/%s/threads=%d: output [%d][%d] is %d, expected %d", name, p, threads, i/size.out, i%size.out, out[i], want[i])
				}
			}
		}
	}
}

func TestNewLinearErrors(t *testing.T) {
	e := Epilogue{Mult: make([]int32, 2), Shift: make([]int32, 2), ClampMax: 255}
	if _, err := NewLinear(0, 3, 2, make([]int8, 6), e); err == nil {
		t.Error("NewLinear with batch 0 returned no error")
	}
	if _, err := NewLinear(1, 3, 2, make([]int8, 5), e); err == nil {
		t.Error("NewLinear with 5 weights for 3 to 2 returned no error")
	}
}

func TestSelectPath(t *testing.T) {
	best := supportedPaths()[len(supportedPaths())-1]
	if p, warning := selectPath(""); p != best || warning != "" {
		t.Errorf("selectPath(\"\") = %s, %q, expected %s without a warning", p, warning, best)
	}
	if p, warning := selectPath("generic"); p != pathGeneric || warning != "" {
		t.Errorf("selectPath(generic) = %s, %q, expected generic without a warning", p, warning)
	}
	if p, warning := selectPath("fast"); p != best || warning == "" {
		t.Errorf("selectPath(fast) = %s, %q, expected %s with a warning", p, warning, best)
	}
	for _, name := range []string{"avx2", "VNNI"} {
		p, warning := selectPath(name)
		want, _ := parseKernelPath(name)
		if pathSupported(want) && (p != want || warning != "") {
			t.Errorf("selectPath(%s) = %s, %q, expected %s without a warning", name, p, warning, want)
		}
		if !pathSupported(want) && (p != best || warning == "") {
			t.Errorf("selectPath(%s) = %s, %q on a CPU without it, expected %s with a warning", name, p, warning, best)
		}
	}
	if KernelPath() != activePath.String() {
		t.Errorf("KernelPath() = %s, expected the active path %s", KernelPath(), activePath)
	}
}
