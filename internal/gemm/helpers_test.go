package gemm

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
)

// testPaths returns the paths that the tests compare with the reference:
// every path that this CPU and build support, or only the one that
// QTOOL_KERNEL names, so that the suite can run once per path.
func testPaths(t testing.TB) []kernelPath {
	t.Helper()
	forced := os.Getenv(kernelEnv)
	if forced == "" {
		return supportedPaths()
	}
	p, err := parseKernelPath(forced)
	if err != nil {
		t.Fatal(err)
	}
	if !pathSupported(p) {
		t.Skipf("%s=%s is not supported here: %s", kernelEnv, p, unsupportedReason(p))
	}
	return []kernelPath{p}
}

// convCase is a conv with its data, generated from a seed.
type convCase struct {
	name  string
	shape ConvShape
	w     []int8
	e     Epilogue
	in    []uint8
}

// caseOptions controls the value ranges of a generated case.
type caseOptions struct {
	weightMax   int   // weights are uniform in [-weightMax, weightMax]
	inZeroPoint int32 // -1 picks one at random
	biasMax     int32 // bias is uniform in [-biasMax, biasMax]
}

var defaultOptions = caseOptions{weightMax: 127, inZeroPoint: -1, biasMax: 5000}

// randomCase fills a case with seeded random data. The multipliers and
// shifts are chosen so that outputs spread over 0..255 instead of all
// clamping.
func randomCase(name string, s ConvShape, seed uint64, opt caseOptions) convCase {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	c := convCase{name: name, shape: s}

	c.w = make([]int8, s.weightLen())
	for i := range c.w {
		c.w[i] = int8(rng.IntN(2*opt.weightMax+1) - opt.weightMax)
	}
	c.in = make([]uint8, s.inputLen())
	for i := range c.in {
		c.in[i] = uint8(rng.IntN(256))
	}

	c.e.InZeroPoint = opt.inZeroPoint
	if c.e.InZeroPoint < 0 {
		c.e.InZeroPoint = int32(rng.IntN(256))
	}
	c.e.OutZeroPoint = int32(rng.IntN(256))
	c.e.ClampMin = int32(rng.IntN(64))
	c.e.ClampMax = 255 - int32(rng.IntN(64))
	c.e.Bias = make([]int32, s.OutC)
	c.e.Mult = make([]int32, s.OutC)
	c.e.Shift = make([]int32, s.OutC)
	// A typical accumulator is about sqrt(depth) * 74 * 73; scale it to
	// about 64 output steps.
	depth := s.depth()
	for oc := range c.e.Mult {
		if opt.biasMax > 0 {
			c.e.Bias[oc] = int32(rng.IntN(int(2*opt.biasMax+1))) - opt.biasMax
		}
		c.e.Mult[oc] = int32(1<<30 + rng.IntN(1<<30))
		shift := 0
		for typical := 5400 * isqrt(depth); typical > 64; typical /= 2 {
			shift--
		}
		c.e.Shift[oc] = int32(shift + rng.IntN(3) - 1)
	}
	return c
}

func isqrt(n int) int {
	r := 1
	for (r+1)*(r+1) <= n {
		r++
	}
	return r
}

// shapeString returns a compact description of a shape for test names.
func shapeString(s ConvShape) string {
	return fmt.Sprintf("n%d_%dx%dx%d_to%d_k%dx%d_s%dx%d_d%dx%d_p%d%d%d%d_g%d",
		s.Batch, s.InH, s.InW, s.InC, s.OutC, s.KH, s.KW, s.StrideH, s.StrideW,
		s.DilationH, s.DilationW, s.PadTop, s.PadLeft, s.PadBottom, s.PadRight, s.Groups)
}

// conv2D returns a shape with batch 1, stride 1, dilation 1 and no groups.
func conv2D(h, w, inC, outC, k, pad int) ConvShape {
	return ConvShape{
		Batch: 1, InH: h, InW: w, InC: inC, OutC: outC,
		KH: k, KW: k, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1,
		PadTop: pad, PadLeft: pad, PadBottom: pad, PadRight: pad, Groups: 1,
	}
}

// checkPathsMatchReference runs the case on every test path and thread
// count and compares outputs and accumulators with the reference.
func checkPathsMatchReference(t *testing.T, c convCase, threads []int) {
	t.Helper()
	s := c.shape
	wantAcc := make([]int32, s.outputLen())
	if err := ReferenceConvAccumulators(s, c.w, c.e, c.in, wantAcc); err != nil {
		t.Fatalf("%s: reference: %v", c.name, err)
	}
	want := make([]uint8, s.outputLen())
	if err := ReferenceConv(s, c.w, c.e, c.in, want); err != nil {
		t.Fatalf("%s: reference: %v", c.name, err)
	}
	inCopy := append([]uint8(nil), c.in...)

	for _, p := range testPaths(t) {
		conv, err := newConvPath(s, c.w, c.e, p)
		if err != nil {
			t.Fatalf("%s/%s: newConvPath: %v", c.name, p, err)
		}

		gotAcc := make([]int32, s.outputLen())
		conv.RunAccumulators(c.in, gotAcc)
		if i := firstDiff(gotAcc, wantAcc); i >= 0 {
			t.Errorf("%s/%s: accumulator %s is %d, reference %d",
				c.name, p, indexString(s, i), gotAcc[i], wantAcc[i])
		}

		for _, n := range threads {
			got := make([]uint8, s.outputLen())
			for i := range got {
				got[i] = 0xcc
			}
			conv.Run(c.in, got, n)
			if i := firstDiff(got, want); i >= 0 {
				t.Errorf("%s/%s/threads=%d: output %s is %d, reference %d (accumulator %d)",
					c.name, p, n, indexString(s, i), got[i], want[i], wantAcc[i])
			}
		}
	}
	if firstDiff(c.in, inCopy) >= 0 {
		t.Errorf("%s: the input was modified", c.name)
	}
}

func firstDiff[T comparable](a, b []T) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// indexString names an output position as [n][h][w][c].
func indexString(s ConvShape, i int) string {
	c := i % s.OutC
	i /= s.OutC
	w := i % s.OutW()
	i /= s.OutW()
	h := i % s.OutH()
	return fmt.Sprintf("[%d][%d][%d][%d]", i/s.OutH(), h, w, c)
}
