package eval_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/qtool-dev/qtool/internal/calib"
	"github.com/qtool-dev/qtool/internal/dataset"
	"github.com/qtool-dev/qtool/internal/eval"
	"github.com/qtool-dev/qtool/internal/fold"
	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/qinfer"
	"github.com/qtool-dev/qtool/internal/quant"
	"github.com/qtool-dev/qtool/internal/testutil"
)

// TestLeNetEndToEnd runs the whole pipeline on the LeNet MNIST fixture: fuse, min-max
// calibration on calib.npy, quantization, a write and read of the .qmodel bytes, and integer
// inference on the 2000 images of test_x.npy. The int8 model must stay within 0.3 percentage
// points of the float model's top-1 accuracy and agree with it on at least 99.5% of the images.
func TestLeNetEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("the LeNet pipeline runs 2000 images through both models")
	}
	dir := filepath.Join(testutil.RepoRoot(t), "testdata", "lenet-mnist")
	m, err := graph.Load(filepath.Join(dir, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	fused, _, err := fold.Fuse(m)
	if err != nil {
		t.Fatal(err)
	}
	calibData, err := dataset.Open(fused, filepath.Join(dir, "calib.npy"))
	if err != nil {
		t.Fatal(err)
	}
	table, err := calib.Run(fused, calibData, calib.RunOptions{Batch: 100, Settings: calib.DefaultSettings(calib.MethodMinMax)})
	if err != nil {
		t.Fatal(err)
	}
	test, err := dataset.Open(fused, filepath.Join(dir, "test_x.npy"))
	if err != nil {
		t.Fatal(err)
	}
	labels, err := dataset.Labels(filepath.Join(dir, "test_y.npy"), test.Len())
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		opt  quant.Options
	}{
		{"uint8", quant.Options{Activations: quant.Uint8}},
		{"int8", quant.Options{Activations: quant.Int8}},
		{"uint8 with fc2 in float", quant.Options{Activations: quant.Uint8, Exclude: []string{"fc2"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q, _, err := quant.Quantize(fused, table, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := format.EncodeQModel(q)
			if err != nil {
				t.Fatal(err)
			}
			if q, err = format.DecodeQModel(raw); err != nil {
				t.Fatal(err)
			}
			ex, err := qinfer.New(q, qinfer.Options{})
			if err != nil {
				t.Fatal(err)
			}

			// The unfused model is the float reference: fusing keeps the names of the last
			// fused nodes, so every quantized tensor has a float tensor of the same name.
			r, err := eval.Compare(m, ex, test, eval.Options{Batch: 250, Labels: labels, PerLayer: true})
			if err != nil {
				t.Fatal(err)
			}
			summary, _ := json.Marshal(r)
			t.Logf("report: %s", summary)

			if r.Samples != 2000 {
				t.Errorf("samples %d, want 2000", r.Samples)
			}
			if *r.DropPP > 0.3 || *r.DropPP < -0.3 {
				t.Errorf("int8 top-1 %.2f%% is %.2f pp from float %.2f%%, want within 0.3 pp", *r.Int8Top1, *r.DropPP, *r.FloatTop1)
			}
			if r.Agreement < 99.5 {
				t.Errorf("agreement %.2f%%, want at least 99.5%%", r.Agreement)
			}
			if len(r.Skipped) != 0 {
				t.Errorf("tensors without a float counterpart: %+v", r.Skipped)
			}
			for _, l := range r.Layers {
				// Each LeNet tensor measures 39 to 48 dB, so 25 dB leaves room for other
				// calibrations while still catching a broken layer.
				if l.SQNRdB != nil && *l.SQNRdB < 25 {
					t.Errorf("tensor %s: SQNR %.1f dB, want at least 25 dB", l.Name, *l.SQNRdB)
				}
			}
		})
	}
}
