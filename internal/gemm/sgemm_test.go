package gemm

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// exactFMA32 rounds x*y + z, computed exactly with math/big, to float32.
func exactFMA32(x, y, z float32) float32 {
	const prec = 400 // far more than the 2*24 + exponent range bits needed
	bx := new(big.Float).SetPrec(prec).SetFloat64(float64(x))
	by := new(big.Float).SetPrec(prec).SetFloat64(float64(y))
	bz := new(big.Float).SetPrec(prec).SetFloat64(float64(z))
	p := new(big.Float).SetPrec(prec).Mul(bx, by)
	s := new(big.Float).SetPrec(prec).Add(p, bz)
	f, _ := s.Float32()
	return f
}

func finite32(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }

// randomFloat returns a float32 with a random sign, mantissa and an
// exponent in [-span, span].
func randomFloat(rng *rand.Rand, span int) float32 {
	mant := 1 + rng.Float64()
	v := float32(math.Ldexp(mant, rng.IntN(2*span+1)-span))
	if rng.IntN(2) == 0 {
		v = -v
	}
	return v
}

// fmaTriples returns inputs for the fma tests: cases whose float64 sum
// lands exactly between two float32 values although the exact sum does not,
// plus seeded random triples.
func fmaTriples(n int) [][3]float32 {
	one := float32(1)
	ulp := float32(math.Ldexp(1, -23))
	triples := [][3]float32{
		// (1+2^-23) * (1-2^-23)*2^-24 + (1+2^-23) = 1 + 2^-23 + 2^-24 - 2^-70:
		// rounded to float64 first it becomes a tie and would round to even.
		{one + ulp, (one - ulp) * float32(math.Ldexp(1, -24)), one + ulp},
		{-(one + ulp), (one - ulp) * float32(math.Ldexp(1, -24)), -(one + ulp)},
		{one + ulp, (one + ulp) * float32(math.Ldexp(1, -24)), one},
		{3, 5, -15},
		{0, 7, -0},
		{float32(math.Ldexp(1, -75)), float32(math.Ldexp(1, -75)), float32(math.Ldexp(1, -149))},
		{float32(math.Ldexp(1, 100)), float32(math.Ldexp(1, 27)), 1},
		// NaNs: x's first, then y's, then the accumulator's; 0*Inf and
		// Inf-Inf create the default NaN.
		{0, float32(math.Inf(1)), math.Float32frombits(0x7fc00001)},
		{math.Float32frombits(0x7fc00011), 1, math.Float32frombits(0x7fc00012)},
		{1, math.Float32frombits(0xffc00021), math.Float32frombits(0x7fc00022)},
		{math.Float32frombits(0x7f800031), math.Float32frombits(0x7fc00032), math.Float32frombits(0x7fc00033)},
		{math.Float32frombits(0xffc00123), math.Float32frombits(0x7fc00456), 2},
		{3, math.Float32frombits(0x7f800789), 2},
		{math.Float32frombits(0x7f800001), 1, math.Float32frombits(0xff800002)},
		{0, float32(math.Inf(-1)), 5},
		{float32(math.Inf(1)), 1, float32(math.Inf(-1))},
	}
	rng := rand.New(rand.NewPCG(7, 11))
	for range n {
		span := []int{2, 10, 40}[rng.IntN(3)]
		x, y := randomFloat(rng, span), randomFloat(rng, span)
		z := randomFloat(rng, span)
		if rng.IntN(4) == 0 {
			// Make z nearly cancel the product.
			z = -float32(float64(x) * float64(y))
		}
		triples = append(triples, [3]float32{x, y, z})
	}
	return triples
}

func TestFMA32MatchesExactRounding(t *testing.T) {
	for i, tr := range fmaTriples(200000) {
		if !finite32(tr[0]) || !finite32(tr[1]) || !finite32(tr[2]) {
			continue // math/big has no NaN or Inf; TestSGEMMHardwareFMA covers these
		}
		got, want := fma32(tr[0], tr[1], tr[2]), exactFMA32(tr[0], tr[1], tr[2])
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("triple %d: fma32(%g, %g, %g) = %g (%#08x), want %g (%#08x)",
				i, tr[0], tr[1], tr[2], got, math.Float32bits(got), want, math.Float32bits(want))
		}
	}
	// The tie case: a float64 sum would round to 1 + 2^-22.
	tr := fmaTriples(0)[0]
	if naive := float32(float64(tr[0])*float64(tr[1]) + float64(tr[2])); naive == fma32(tr[0], tr[1], tr[2]) {
		t.Fatalf("the tie case does not separate fma32 from a float64 sum (%g)", naive)
	}
}

// TestSGEMMHardwareFMA runs every triple through each path's kernel with
// k = 1, which checks that the assembly's fused multiply-add rounds as
// fma32 does.
func TestSGEMMHardwareFMA(t *testing.T) {
	triples := fmaTriples(20000)
	n := len(triples)
	a, b, c := make([]float32, n), make([]float32, n), make([]float32, n)
	for _, p := range testPaths(t) {
		// One row per triple would run n calls; instead put x on the
		// diagonal of a square block and read the diagonal of c.
		const block = 64
		for base := 0; base < n; base += block {
			m := min(block, n-base)
			am := make([]float32, m*m)
			bm := make([]float32, m*m)
			cm := make([]float32, m*m)
			for i := range m {
				am[i*m+i] = triples[base+i][0]
				bm[i*m+i] = triples[base+i][1]
				cm[i*m+i] = triples[base+i][2]
			}
			// Column i of b has one nonzero, in row i, so c[i][i]'s chain
			// adds exact zeros except at k = i, and adding 0 leaves any
			// nonzero value as it is.
			sgemmPath(floatPath(p), m, m, m, am, m, bm, m, cm, m)
			for i := range m {
				a[base+i], b[base+i], c[base+i] = am[i*m+i], bm[i*m+i], cm[i*m+i]
			}
		}
		for i, tr := range triples {
			want := fma32(tr[0], tr[1], tr[2])
			if want == 0 {
				continue // the chain's other terms add +0, which may flip a -0
			}
			if math.Float32bits(c[i]) != math.Float32bits(want) {
				t.Fatalf("%s: triple %d: kernel gives %g (%#08x) for fma(%g, %g, %g), fma32 gives %g (%#08x)",
					p, i, c[i], math.Float32bits(c[i]), tr[0], tr[1], tr[2], want, math.Float32bits(want))
			}
		}
	}
}

// sgemmChain is the definition: one fma32 chain per output.
func sgemmChain(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	for i := range m {
		for j := range n {
			acc := c[i*ldc+j]
			for kk := range k {
				acc = fma32(a[i*lda+kk], b[kk*ldb+j], acc)
			}
			c[i*ldc+j] = acc
		}
	}
}

// sgemmCase is an SGEMM problem with strides wider than the matrices. The
// values between a row's end and the next row are NaN, so a kernel that
// reads them spoils its outputs. The tests also check that c's padding is
// left as it was.
type sgemmCase struct {
	m, n, k, lda, ldb, ldc int
	a, b, c                []float32
}

func newSGEMMCase(rng *rand.Rand, m, n, k, pad int) sgemmCase {
	s := sgemmCase{m: m, n: n, k: k, lda: k + pad, ldb: n + pad, ldc: n + pad}
	fill := func(rows, cols, stride int, scale float64) []float32 {
		v := make([]float32, rows*stride)
		for i := range v {
			if i%stride >= cols {
				v[i] = float32(math.NaN())
				continue
			}
			v[i] = float32(rng.NormFloat64() * scale)
		}
		return v
	}
	s.a = fill(m, k, s.lda, 1)
	s.b = fill(k, n, s.ldb, 3)
	s.c = fill(m, n, s.ldc, 0.5)
	return s
}

func (s sgemmCase) run(p kernelPath) []float32 {
	c := append([]float32(nil), s.c...)
	sgemmPath(p, s.m, s.n, s.k, s.a, s.lda, s.b, s.ldb, c, s.ldc)
	return c
}

func sameBits(got, want []float32) int {
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			return i
		}
	}
	return -1
}

func TestSGEMMPathsMatchDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	var shapes [][3]int
	for _, m := range []int{1, 3, 4, 5, 8, 9, 17} {
		for _, n := range []int{1, 7, 23, 24, 25, 48, 49, 100} {
			for _, k := range []int{1, 2, 3, 17, 64} {
				shapes = append(shapes, [3]int{m, n, k})
			}
		}
	}
	shapes = append(shapes, [3]int{64, 784, 25}, [3]int{16, 3136, 150}, [3]int{256, 120, 400})
	for _, p := range testPaths(t) {
		fp := floatPath(p)
		for _, sh := range shapes {
			for _, pad := range []int{0, 3} {
				s := newSGEMMCase(rng, sh[0], sh[1], sh[2], pad)
				want := append([]float32(nil), s.c...)
				sgemmChain(s.m, s.n, s.k, s.a, s.lda, s.b, s.ldb, want, s.ldc)
				got := s.run(fp)
				if i := sameBits(got, want); i >= 0 {
					t.Fatalf("%s m=%d n=%d k=%d pad=%d: c[%d][%d] = %g, want %g (definition)",
						fp, s.m, s.n, s.k, pad, i/s.ldc, i%s.ldc, got[i], want[i])
				}
			}
		}
	}
}

// TestSGEMMSplitInvariance checks that computing the rows or the columns of
// c in several calls gives the same bits as one call, which is what makes
// float inference independent of the batch size and the thread count.
func TestSGEMMSplitInvariance(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 1))
	for _, p := range testPaths(t) {
		fp := floatPath(p)
		s := newSGEMMCase(rng, 37, 131, 70, 2)
		whole := s.run(fp)
		rows := append([]float32(nil), s.c...)
		for i0 := 0; i0 < s.m; i0 += 5 {
			h := min(5, s.m-i0)
			sgemmPath(fp, h, s.n, s.k, s.a[i0*s.lda:], s.lda, s.b, s.ldb, rows[i0*s.ldc:], s.ldc)
		}
		cols := append([]float32(nil), s.c...)
		for j0 := 0; j0 < s.n; j0 += 30 {
			w := min(30, s.n-j0)
			sgemmPath(fp, s.m, w, s.k, s.a, s.lda, s.b[j0:], s.ldb, cols[j0:], s.ldc)
		}
		for name, got := range map[string][]float32{"row blocks": rows, "column blocks": cols} {
			if i := sameBits(got, whole); i >= 0 {
				t.Fatalf("%s %s: c[%d] = %g, one call gives %g", fp, name, i, got[i], whole[i])
			}
		}
	}
}

// TestSGEMMAccuracy compares with a float64 product: the chain of k fused
// multiply-adds has a relative error within about k * 2^-24 of the sum of
// absolute products.
func TestSGEMMAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	s := newSGEMMCase(rng, 20, 50, 300, 0)
	got := s.run(floatPath(activePath))
	for i := range s.m {
		for j := range s.n {
			sum, abs := float64(s.c[i*s.ldc+j]), math.Abs(float64(s.c[i*s.ldc+j]))
			for kk := range s.k {
				p := float64(s.a[i*s.lda+kk]) * float64(s.b[kk*s.ldb+j])
				sum += p
				abs += math.Abs(p)
			}
			if d := math.Abs(float64(got[i*s.ldc+j]) - sum); d > float64(s.k)*math.Ldexp(1, -24)*abs {
				t.Fatalf("c[%d][%d] = %g, float64 gives %g (error %g, bound %g)", i, j, got[i*s.ldc+j], sum, d, float64(s.k)*math.Ldexp(1, -24)*abs)
			}
		}
	}
}

// FuzzSGEMMPaths compares every float path with the generic kernel on
// matrices built from the fuzzer's numbers.
func FuzzSGEMMPaths(f *testing.F) {
	f.Add(uint64(1), uint8(8), uint8(48), uint8(9), uint8(0))
	f.Add(uint64(2), uint8(1), uint8(1), uint8(1), uint8(3))
	f.Add(uint64(3), uint8(13), uint8(77), uint8(64), uint8(1))
	f.Fuzz(func(t *testing.T, seed uint64, m, n, k, pad uint8) {
		rng := rand.New(rand.NewPCG(seed, 2))
		s := newSGEMMCase(rng, 1+int(m%40), 1+int(n%130), 1+int(k%100), int(pad%4))
		// Mix in extreme magnitudes, zeros, subnormals, an infinity and a NaN.
		for _, v := range [][]float32{s.a, s.b} {
			for i := range v {
				if v[i] == v[i] && rng.IntN(8) == 0 {
					v[i] = []float32{0, float32(math.Ldexp(1, -140)), 3e30, -1e-30, float32(math.Inf(1)),
						math.Float32frombits(0x7fc01234)}[rng.IntN(6)]
				}
			}
		}
		want := s.run(pathGeneric)
		for _, p := range supportedPaths() {
			got := s.run(floatPath(p))
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s m=%d n=%d k=%d: c[%d] = %g (%#08x), generic gives %g (%#08x)", floatPath(p), s.m, s.n, s.k, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
				}
			}
		}
	})
}

func BenchmarkSGEMM(b *testing.B) {
	shapes := []struct {
		name    string
		m, n, k int
	}{
		{"conv3x3_64to64_56x56", 64, 3136, 576},
		{"lenet_conv2_16x100x150", 16, 100, 150},
		{"256x256x256", 256, 256, 256},
	}
	for _, sh := range shapes {
		for _, p := range supportedPaths() {
			fp := floatPath(p)
			rng := rand.New(rand.NewPCG(1, 1))
			s := newSGEMMCase(rng, sh.m, sh.n, sh.k, 0)
			b.Run(fmt.Sprintf("%s/%s", sh.name, floatPathName(fp)), func(b *testing.B) {
				c := append([]float32(nil), s.c...)
				for b.Loop() {
					sgemmPath(fp, s.m, s.n, s.k, s.a, s.lda, s.b, s.ldb, c, s.ldc)
				}
				flops := 2 * float64(sh.m*sh.n*sh.k) * float64(b.N)
				b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOPS")
				b.ReportMetric(0, "ns/op")
			})
		}
		// gonum's SGEMM, which the float executor used before, for comparison.
		rng := rand.New(rand.NewPCG(1, 1))
		s := newSGEMMCase(rng, sh.m, sh.n, sh.k, 0)
		b.Run(fmt.Sprintf("%s/gonum", sh.name), func(b *testing.B) {
			am := blas32.General{Rows: s.m, Cols: s.k, Stride: s.lda, Data: s.a}
			bm := blas32.General{Rows: s.k, Cols: s.n, Stride: s.ldb, Data: s.b}
			cm := blas32.General{Rows: s.m, Cols: s.n, Stride: s.ldc, Data: append([]float32(nil), s.c...)}
			for b.Loop() {
				blas32.Gemm(blas.NoTrans, blas.NoTrans, 1, am, bm, 1, cm)
			}
			flops := 2 * float64(sh.m*sh.n*sh.k) * float64(b.N)
			b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOPS")
			b.ReportMetric(0, "ns/op")
		})
	}
}
