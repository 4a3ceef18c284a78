package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestRequantizePathsMatchScalar compares every path's requantization with
// the scalar multiplyByQuantizedMultiplier on random and extreme
// accumulators, multipliers and shifts, for row lengths around the vector
// widths and for a first channel other than 0.
func TestRequantizePathsMatchScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for trial := 0; trial < 300; trial++ {
		channels := 1 + rng.IntN(70)
		first := rng.IntN(3)
		n := channels - first
		if n < 1 {
			continue
		}
		rows := 1 + rng.IntN(3)
		e := randomEpilogue(rng, channels)
		// Every fourth trial has only right shifts, only left shifts or
		// none, so the SIMD routines skip one step or both.
		for c, shift := range e.Shift {
			switch trial % 4 {
			case 1:
				e.Shift[c] = -max(shift, -shift)
			case 2:
				e.Shift[c] = max(shift, -shift)
			case 3:
				e.Shift[c] = 0
			}
		}
		params := newRequantParams(&e, channels)

		accStride := n + rng.IntN(5)
		acc := make([]int32, rows*accStride+8)
		for i := range acc {
			acc[i] = randomAccumulator(rng)
		}
		outStride := n + rng.IntN(5)

		want := make([]uint8, rows*outStride)
		for r := 0; r < rows; r++ {
			for i := 0; i < n; i++ {
				want[r*outStride+i] = e.requantize(acc[r*accStride+i], first+i)
			}
		}
		for _, p := range testPaths(t) {
			got := make([]uint8, rows*outStride)
			requantizeRowsPath(p, &params, acc, accStride, got, outStride, rows, first, n)
			for r := 0; r < rows; r++ {
				for i := 0; i < outStride; i++ {
					k := r*outStride + i
					if i >= n && got[k] != 0 {
						t.Fatalf("trial %d/%s: wrote byte %d of row %d past n = %d", trial, p, i, r, n)
					}
					if i < n && got[k] != want[k] {
						c := first + i
						t.Fatalf("trial %d/%s: requantize(acc %d, mult %d, shift %d, zp %d, clamp [%d, %d]) = %d, scalar %d",
							trial, p, acc[r*accStride+i], e.Mult[c], e.Shift[c], e.OutZeroPoint, e.ClampMin, e.ClampMax, got[k], want[k])
					}
				}
			}
		}
	}
}

// randomEpilogue returns an epilogue with multipliers and shifts over their
// whole ranges, including 0, 2^30, 2^31-1 and shifts of -31 and 31.
func randomEpilogue(rng *rand.Rand, channels int) Epilogue {
	e := Epilogue{
		Mult:         make([]int32, channels),
		Shift:        make([]int32, channels),
		OutZeroPoint: int32(rng.IntN(256)),
		ClampMin:     int32(rng.IntN(128)),
		ClampMax:     128 + int32(rng.IntN(128)),
	}
	if rng.IntN(4) == 0 {
		e.ClampMin, e.ClampMax = 0, 255
	}
	for c := range e.Mult {
		e.Mult[c] = int32(1<<30 + rng.IntN(1<<30))
		if rng.IntN(5) == 0 {
			e.Mult[c] = []int32{0, 1 << 30, math.MaxInt32}[rng.IntN(3)]
		}
		e.Shift[c] = int32(rng.IntN(63) - 31)
		if rng.IntN(5) == 0 {
			e.Shift[c] = []int32{-31, 31, 0, -1, 1}[rng.IntN(5)]
		}
	}
	return e
}

// TestRequantizeOutputRange checks that results at the int32 ends clamp
// correctly: a requantized 2^31-1 plus the zero point must not wrap.
func TestRequantizeOutputRange(t *testing.T) {
	e := Epilogue{
		Mult:         []int32{math.MaxInt32, math.MaxInt32, 1 << 30, 1 << 30},
		Shift:        []int32{31, 31, 31, 31},
		OutZeroPoint: 255, ClampMin: 0, ClampMax: 255,
	}
	params := newRequantParams(&e, 4)
	acc := []int32{math.MaxInt32, math.MinInt32, 1, -1, 0, 0, 0, 0, 0, 0, 0, 0}
	want := []uint8{255, 0, 255, 0}
	for _, p := range testPaths(t) {
		got := make([]uint8, 4)
		requantizeRowsPath(p, &params, acc, 4, got, 4, 1, 0, 4)
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: output %d for accumulator %d is %d, expected %d", p, i, acc[i], got[i], want[i])
			}
		}
	}
}

func ExampleNewConv() {
	// A 3x3 conv with padding 1 on a 4x4 image of 8 channels, 16 filters.
	s := ConvShape{
		Batch: 1, InH: 4, InW: 4, InC: 8, OutC: 16,
		KH: 3, KW: 3, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1,
		PadTop: 1, PadLeft: 1, PadBottom: 1, PadRight: 1, Groups: 1,
	}
	w := make([]int8, s.OutC*s.InC*s.KH*s.KW)
	for i := range w {
		w[i] = 1
	}
	e := Epilogue{
		InZeroPoint:  128,
		Mult:         make([]int32, s.OutC),
		Shift:        make([]int32, s.OutC),
		OutZeroPoint: 10, ClampMin: 0, ClampMax: 255,
	}
	for c := range e.Mult {
		e.Mult[c] = 1 << 30 // 0.5 * 2^-2 = 0.125
		e.Shift[c] = -2
	}
	conv, err := NewConv(s, w, e)
	if err != nil {
		fmt.Println(err)
		return
	}

	in := make([]uint8, s.Batch*s.InH*s.InW*s.InC)
	for i := range in {
		in[i] = 130 // real value 2 steps above the zero point
	}
	out := make([]uint8, s.Batch*s.OutH()*s.OutW()*s.OutC)
	conv.Run(in, out, 2)

	// A corner pixel reads 4 of 9 taps: 4 taps * 8 channels * 2 = 64, times
	// 0.125 is 8, plus the zero point 10. An inner pixel: 144 * 0.125 + 10.
	fmt.Println(out[0], out[5*s.OutC])
	// Output: 18 28
}

// BenchmarkRequantize times the requantization routine alone on the
// depthwise benchmark's output, 3136 pixels of 64 channels, in chunks of 16
// rows as the depthwise driver calls it.
func BenchmarkRequantize(b *testing.B) {
	const pixels, channels = 3136, 64
	c := randomCase("requant", ConvShape{Batch: 1, InH: 1, InW: 1, InC: channels, OutC: channels, KH: 1, KW: 1,
		StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1, Groups: 1}, 1, defaultOptions)
	params := newRequantParams(&c.e, channels)
	acc := make([]int32, pixels*channels+16)
	for i := range acc {
		acc[i] = int32(i*7919%200001) - 100000
	}
	out := make([]uint8, pixels*channels)
	for _, p := range supportedPaths() {
		b.Run(p.String(), func(b *testing.B) {
			for b.Loop() {
				for first := 0; first < pixels; first += depthwiseChunk {
					requantizeRowsPath(p, &params, acc[first*channels:], channels, out[first*channels:], channels, depthwiseChunk, 0, channels)
				}
			}
			b.ReportMetric(float64(pixels*channels)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Goutputs/s")
		})
	}
}
