package gemm

import (
	"fmt"
	"math"
)

// SGEMM adds the product of two row-major float32 matrices to a third:
// c (m x n, row stride ldc) += a (m x k, row stride lda) * b (k x n, row
// stride ldb). Every output is one chain of fused multiply-adds in k order,
// starting from its value in c:
//
//	c[i][j] = fma(a[i][k-1], b[k-1][j], ... fma(a[i][0], b[0][j], c[i][j]))
//
// with fma rounding once, to nearest even, as IEEE 754 fusedMultiplyAdd
// does (see fma32 for overflow and NaNs). The AVX-512 and AVX2 kernels and
// the plain Go kernel compute exactly this, so the result has the same bits
// on every path. It also does not
// depend on how a caller splits rows or columns among calls or goroutines.
// SGEMM itself runs on the calling goroutine.
//
// It panics if a slice is shorter than its dimensions and strides need,
// which is a bug in the caller.
func SGEMM(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	sgemmPath(floatPath(activePath), m, n, k, a, lda, b, ldb, c, ldc)
}

// FloatKernelPath returns the float32 kernel that SGEMM uses: "avx512",
// "avx2" (with FMA) or "generic". It follows the integer path that
// QTOOL_KERNEL selects: vnni runs the AVX-512 float kernel.
func FloatKernelPath() string {
	return floatPathName(floatPath(activePath))
}

func floatPathName(p kernelPath) string {
	rows, _, _ := sgemmTile(p)
	switch {
	case rows == 0:
		return "generic"
	case p == pathVNNI:
		return "avx512"
	default:
		return "avx2"
	}
}

// floatPath returns the float kernel family for an integer path: the AVX2
// float kernel also needs FMA, which a few AVX2 CPUs lack.
func floatPath(p kernelPath) kernelPath {
	if p == pathAVX2 && !cpuHasFMA() {
		return pathGeneric
	}
	return p
}

func sgemmPath(p kernelPath, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m <= 0 || n <= 0 || k <= 0 {
		return
	}
	checkMatrix("a", a, m, k, lda)
	checkMatrix("b", b, k, n, ldb)
	checkMatrix("c", c, m, n, ldc)
	rows, cols, kernel := sgemmTile(p)
	if rows == 0 {
		sgemmGeneric(m, n, k, a, lda, b, ldb, c, ldc)
		return
	}
	sgemmTiled(rows, cols, kernel, m, n, k, a, lda, b, ldb, c, ldc)
}

func checkMatrix(name string, v []float32, rows, cols, stride int) {
	if stride < cols || len(v) < (rows-1)*stride+cols {
		panic(fmt.Sprintf("gemm: SGEMM matrix %s of %d x %d with stride %d needs %d values, has %d",
			name, rows, cols, stride, (rows-1)*stride+cols, len(v)))
	}
}

// sgemmGeneric is the plain Go kernel. It walks each row of b once per k,
// which keeps every output's chain in k order.
// NOTE: fma32 costs several float64 operations per multiply-add, so this
// kernel runs at about 0.6 GFLOPS on the benchmark machine, several times
// slower than gonum's SGEMM; that is the price of bit-identical results.
func sgemmGeneric(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	for i := range m {
		ci := c[i*ldc : i*ldc+n]
		for kk := range k {
			aik := a[i*lda+kk]
			bk := b[kk*ldb : kk*ldb+n]
			for j := range ci {
				ci[j] = fma32(aik, bk[j], ci[j])
			}

		}
	}
}

// fma32 returns x*y + z rounded once to float32, to nearest even, as the
// x86 VFMADD231PS with z as the accumulator computes it. A result too large
// for float32 becomes ±Inf. NaNs follow that instruction too, as measured
// on an Intel core; TestSGEMMHardwareFMA checks it on every run. The first
// NaN among x, y and z is returned quieted. A NaN that the operation creates
// (0 * Inf, or Inf - Inf) is the x86 default NaN, 0xffc00000.
//
// The product of two float32 values is exact in float64. The sum is formed
// in float64 together with its rounding error and then rounded to odd.
// Because float64 has at least 2 more significand bits than float32 needs
// (53 >= 24 + 2), the final rounding to float32 then gives the correctly
// rounded result. Rounding to odd keeps a sum that lies just off the
// midpoint of two float32 values from being rounded onto the midpoint and
// then treated as a tie.
func fma32(x, y, z float32) float32 {
	p := float64(x) * float64(y)
	zz := float64(z)
	s := p + zz
	if roundsLikeExact(s) {
		return float32(s)
	}
	if math.IsNaN(s) {
		return fma32NaN(x, y, z)
	}
	// Knuth's TwoSum: p + zz = s + e exactly.
	bv := s - p
	e := (p - (s - bv)) + (zz - bv)
	if e != 0 && !math.IsInf(s, 0) && !math.IsNaN(e) {
		bits := math.Float64bits(s)
		if bits&1 == 0 {
			// Move s one unit in the last place toward the exact value,
			// which makes its last bit 1.
			if (e > 0) == (s > 0) {
				bits++
			} else {
				bits--
			}
			s = math.Float64frombits(bits)
		}
	}
	return float32(s)
}

// defaultNaN32 is the quiet NaN that x86 SSE and AVX instructions create.
const defaultNaN32 = 0xffc00000

// fma32NaN returns the NaN that VFMADD231PS returns when x*y + z is a NaN:
// the first NaN operand among x, y and z, quieted, or the default NaN.
func fma32NaN(x, y, z float32) float32 {
	const quiet = 0x00400000
	for _, v := range [3]float32{x, y, z} {
		if v != v {
			return math.Float32frombits(math.Float32bits(v) | quiet)
		}
	}
	return math.Float32frombits(defaultNaN32)
}

// roundsLikeExact reports whether the float64 sum s of a float32 product and a float32 value
// rounds to the same float32 as the exact sum. Rounding s to float32 drops its low 29 mantissa
// bits. Unless they are exactly the midpoint pattern, the exact sum lies on the same side of
// every float32 midpoint as s, because rounding to float64 is monotonic. Below float32's
// smallest normal number more bits are dropped, so those sums report false.
func roundsLikeExact(s float64) bool {
	return math.Float64bits(s)&(1<<29-1) != 1<<28 && math.Abs(s) >= 0x1p-126
}
