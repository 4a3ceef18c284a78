package calib

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/qtool-dev/qtool/internal/dataset"
	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/tensor"
	"github.com/qtool-dev/qtool/internal/testutil"
)

func openLeNet(t testing.TB, data string) (*graph.Model, *dataset.Dataset) {
	t.Helper()
	dir := filepath.Join(testutil.RepoRoot(t), "testdata", "lenet-mnist")
	m, err := graph.Load(filepath.Join(dir, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := dataset.Open(m, filepath.Join(dir, data))
	if err != nil {
		t.Fatal(err)
	}
	return m, d
}

func TestRunTableIndependentOfBatchSize(t *testing.T) {
	m, data := openLeNet(t, "calib.npy")
	for _, method := range []Method{MethodMinMax, MethodPercentile, MethodEntropy, MethodMSE} {
		t.Run(string(method), func(t *testing.T) {
			var first []byte
			for _, batch := range []int{1, 7, 500} {
				table, err := Run(m, data, RunOptions{Batch: batch, Settings: Settings{Method: method}})
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(t.TempDir(), "calib.json")
				if err := table.Write(path); err != nil {
					t.Fatal(err)
				}
				got, _ := os.ReadFile(path)
				if first == nil {
					first = got
					continue
				}
				if !bytes.Equal(got, first) {
					t.Errorf("batch %d gives a different table than batch 1", batch)
				}
			}
		})
	}
}

func TestRunLeNetRanges(t *testing.T) {
	m, data := openLeNet(t, "calib.npy")
	tables := map[Method]*Table{}
	for _, method := range Methods() {
		table, err := Run(m, data, RunOptions{Batch: 64, Settings: Settings{Method: method}})
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		tables[method] = table
		if len(table.Tensors) != 1+len(m.Nodes) {
			t.Errorf("%s: %d entries, want %d (input and every node)", method, len(table.Tensors), 1+len(m.Nodes))
		}
		if table.ModelHash != m.Hash() || table.Images != 500 {
			t.Errorf("%s: hash %s images %d, want the model's hash and 500", method, table.ModelHash, table.Images)
		}
	}
	mm := tables[MethodMinMax].Tensors
	// The input is (pixel/255 - 0.1307)/0.3081: MNIST has black (0) and white (255) pixels.
	if got, want := mm["image"].Alpha, (0-0.1307)/0.3081; diff(got, want) > 1e-6 {
		t.Errorf("minmax image alpha = %v, want %v", got, want)
	}
	if got, want := mm["image"].Beta, (1-0.1307)/0.3081; diff(got, want) > 1e-6 {
		t.Errorf("minmax image beta = %v, want %v", got, want)
	}
	for _, relu := range []string{"relu1", "relu2", "relu3"} {
		if mm[relu].Alpha != 0 {
			t.Errorf("minmax %s alpha = %v, want 0 after ReLU", relu, mm[relu].Alpha)
		}
		for _, method := range []Method{MethodPercentile, MethodEntropy, MethodMSE} {
			e := tables[method].Tensors[relu]
			if e.Beta > mm[relu].Beta || e.Beta <= 0 {
				t.Errorf("%s %s beta = %v, want in (0, %v] (the minmax beta)", method, relu, e.Beta, mm[relu].Beta)
			}
		}
	}
}

func diff(a, b float64) float64 {
	if a > b {
		return a - b
	}
	return b - a
}

func TestRunRejectsUnknownPerTensorName(t *testing.T) {
	m, data := openLeNet(t, "calib.npy")
	_, err := Run(m, data, RunOptions{Settings: Settings{Method: MethodMinMax}, PerTensor: map[string]Settings{"conv9": {Method: MethodMinMax}}})
	if err == nil {
		t.Fatal("Run accepted a method for a tensor the model lacks")
	}
}

// BenchmarkCalibrateLeNet reports images/s and the peak live heap (sampled after a GC every
// ten batches) while calibrating N images, the fixture's 2000 test images repeated. A peak that
// stays flat as N grows shows that memory is bounded by the model and one batch.
// repeatSource cycles through a data set's samples to make n of them.
type repeatSource struct {
	data *dataset.Dataset
	n    int
}

func (r repeatSource) Len() int { return r.n }

func (r repeatSource) Batch(start, count int) (map[string]*tensor.Tensor, error) {
	parts := make([]map[string]*tensor.Tensor, 0, 2)
	for count > 0 {
		from := start % r.data.Len()
		take := min(count, r.data.Len()-from)
		b, err := r.data.Batch(from, take)
		if err != nil {
			return nil, err
		}
		parts = append(parts, b)
		start, count = start+take, count-take
	}
	if len(parts) == 1 {
		return parts[0], nil
	}
	out := map[string]*tensor.Tensor{}
	for name := range parts[0] {
		var data []float32
		shape := append([]int{0}, parts[0][name].Shape[1:]...)
		for _, p := range parts {
			data = append(data, p[name].Data...)
			shape[0] += p[name].Shape[0]
		}
		out[name] = &tensor.Tensor{Shape: shape, Data: data}
	}
	return out, nil
}

func BenchmarkCalibrateLeNet(b *testing.B) {
	m, data := openLeNet(b, "test_x.npy")
	for _, method := range []Method{MethodMinMax, MethodEntropy} {
		for _, n := range []int{2000, 10000} {
			b.Run(fmt.Sprintf("%s/images=%d", method, n), func(b *testing.B) {
				repeated := repeatSource{data, n}
				var peak uint64
				var stats runtime.MemStats
				sample := func(done int) {
					if done%(10*64) == 0 {
						runtime.GC()
						runtime.ReadMemStats(&stats)
						peak = max(peak, stats.HeapAlloc)
					}
				}
				for b.Loop() {
					_, err := Run(m, repeated, RunOptions{Batch: 64, Settings: Settings{Method: method}, Progress: sample})
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "images/s")
				b.ReportMetric(float64(peak)/(1<<20), "peak-live-heap-MB")
			})
		}
	}
}
