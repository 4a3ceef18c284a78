package gemm

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// peakGOPSPerCore is the int8 peak that the benchmarks report a percentage
// of: 460 GOPS per core, the figure the performance targets were set
// against (2 ops per multiply-add). The peak of the machine at hand may
// differ; bench/vnnipeak measures it.
const peakGOPSPerCore = 460

// cpuClock measures the CPU time of a benchmark loop.
type cpuClock struct{ start float64 }

func startCPUClock() cpuClock { return cpuClock{start: processCPUSeconds()} }

// reportGOPS reports the throughput of b.N runs of ops operations each.
// GOPS is over wall time and %peak its percentage of peakGOPSPerCore times
// the thread count. cpuGOPS is over the CPU time of the whole process,
// including the polling of idle workers, so other processes on a loaded
// machine lower it less than GOPS.
func reportGOPS(b *testing.B, clock cpuClock, ops float64, threads int) {
	total := ops * float64(b.N)
	gops := total / b.Elapsed().Seconds() / 1e9
	b.ReportMetric(gops, "GOPS")
	b.ReportMetric(100*gops/(peakGOPSPerCore*float64(threads)), "%peak")
	if cpu := processCPUSeconds() - clock.start; cpu > 0 {
		b.ReportMetric(total/cpu/1e9, "cpuGOPS")
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkGEMM times M x K x N products as a Linear layer with M output
// features, K input features and a batch of N, including requantization.
func BenchmarkGEMM(b *testing.B) {
	shapes := []struct{ m, k, n int }{{256, 256, 256}, {64, 576, 3136}}
	for _, sh := range shapes {
		s := linearShape(sh.n, sh.k, sh.m)
		c := randomCase("", s, 1, defaultOptions)
		for _, p := range testPaths(b) {
			l, err := newLinearPath(sh.n, sh.k, sh.m, c.w, c.e, p)
			if err != nil {
				b.Fatal(err)
			}
			out := make([]uint8, sh.n*sh.m)
			for _, threads := range []int{1, 2} {
				name := fmt.Sprintf("%dx%dx%d/%s/threads=%d", sh.m, sh.k, sh.n, p, threads)
				b.Run(name, func(b *testing.B) {
					clock := startCPUClock()
					for b.Loop() {
						l.Run(c.in, out, threads)
					}
					reportGOPS(b, clock, 2*float64(sh.m*sh.k*sh.n), threads)
				})
			}
		}
	}
}

// benchConvShapes are the conv shapes of the benchmark table: ResNet-style
// 3x3 convs with padding 1 and a MobileNet-style depthwise conv.
var benchConvShapes = []struct {
	name  string
	shape ConvShape
}{
	{"3x3_64to64_56x56", conv2D(56, 56, 64, 64, 3, 1)},
	{"3x3_32to32_28x28", conv2D(28, 28, 32, 32, 3, 1)},
	{"depthwise3x3_64_56x56", withShape(conv2D(56, 56, 64, 64, 3, 1), func(s *ConvShape) { s.Groups = 64 })},
}

// BenchmarkConv times Conv.Run, which includes reading the input through
// the offset table (or packing it, on AVX2) and requantization.
func BenchmarkConv(b *testing.B) {
	for _, tc := range benchConvShapes {
		s := tc.shape
		c := randomCase(tc.name, s, 2, defaultOptions)
		ops := 2 * float64(s.outputLen()*s.depth())
		for _, p := range testPaths(b) {
			conv, err := newConvPath(s, c.w, c.e, p)
			if err != nil {
				b.Fatal(err)
			}
			out := make([]uint8, s.outputLen())
			for _, threads := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s/%s/threads=%d", tc.name, p, threads), func(b *testing.B) {
					clock := startCPUClock()
					for b.Loop() {
						conv.Run(c.in, out, threads)
					}
					reportGOPS(b, clock, ops, threads)
				})
			}
		}
	}
}

// BenchmarkNewConv times weight packing, which runs once per layer.
func BenchmarkNewConv(b *testing.B) {
	s := benchConvShapes[0].shape
	rng := rand.New(rand.NewPCG(1, 2))
	c := randomCase("", s, rng.Uint64(), defaultOptions)
	for _, p := range testPaths(b) {
		b.Run(p.String(), func(b *testing.B) {
			for b.Loop() {
				if _, err := newConvPath(s, c.w, c.e, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
