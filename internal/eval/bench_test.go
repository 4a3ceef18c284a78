package eval_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/qtool-dev/qtool/internal/calib"
	"github.com/qtool-dev/qtool/internal/dataset"
	"github.com/qtool-dev/qtool/internal/fold"
	"github.com/qtool-dev/qtool/internal/gemm"
	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/infer"
	"github.com/qtool-dev/qtool/internal/qinfer"
	"github.com/qtool-dev/qtool/internal/quant"
	"github.com/qtool-dev/qtool/internal/testutil"
)

// BenchmarkLeNet times the whole fused LeNet fixture per image, float32 against int8, on a
// batch of 256 test images with 1 and 2 threads. The int8 time includes quantizing the input
// and dequantizing the output; neither includes loading the data.
func BenchmarkLeNet(b *testing.B) {
	dir := filepath.Join(testutil.RepoRoot(b), "testdata", "lenet-mnist")
	m, err := graph.Load(filepath.Join(dir, "model.json"))
	if err != nil {
		b.Fatal(err)
	}
	fused, _, err := fold.Fuse(m)
	if err != nil {
		b.Fatal(err)
	}
	calibData, err := dataset.Open(fused, filepath.Join(dir, "calib.npy"))
	if err != nil {
		b.Fatal(err)
	}
	table, err := calib.Run(fused, calibData, calib.RunOptions{Batch: 100, Settings: calib.DefaultSettings(calib.MethodMinMax)})
	if err != nil {
		b.Fatal(err)
	}
	q, _, err := quant.Quantize(fused, table, quant.Options{})
	if err != nil {
		b.Fatal(err)
	}
	test, err := dataset.Open(fused, filepath.Join(dir, "test_x.npy"))
	if err != nil {
		b.Fatal(err)
	}
	const batch = 256
	inputs, err := test.Batch(0, batch)
	if err != nil {
		b.Fatal(err)
	}

	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("float32/threads=%d", threads), func(b *testing.B) {
			for b.Loop() {
				if _, err := infer.Run(fused, inputs, infer.Options{Threads: threads}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*batch), "us/image")
		})
		b.Run(fmt.Sprintf("int8-%s/threads=%d", gemm.KernelPath(), threads), func(b *testing.B) {
			ex, err := qinfer.New(q, qinfer.Options{Threads: threads})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := ex.Run(inputs, false); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*batch), "us/image")
		})
	}
}
