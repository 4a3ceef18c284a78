package fold

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// pytorchTolerance bounds max |qtool - PyTorch| / max |PyTorch| for the expected outputs that
// PyTorch computed: both run in float32 but sum in different orders.
const pytorchTolerance = 1e-4

func loadModel(t *testing.T, path string) *graph.Model {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Skipf("test model not available: %v", err)
	}
	m, err := graph.Load(path)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return m
}

// lenetBatch returns the first n test images of testdata/lenet-mnist, preprocessed.
func lenetBatch(t *testing.T, m *graph.Model, n int) map[string]*tensor.Tensor {
	t.Helper()
	all := readNPY(t, filepath.Join("..", "..", "testdata", "lenet-mnist", "test_x.npy"))
	per := tensor.Size(all.Shape[1:])
	shape := append([]int{n}, all.Shape[1:]...)
	x := &tensor.Tensor{Shape: shape, Data: append([]float32(nil), all.Data[:n*per]...)}
	m.Inputs[0].Preprocess.Apply(x.Data, x.Shape)
	return map[string]*tensor.Tensor{m.Inputs[0].Name: x}
}

func TestFuseLeNet(t *testing.T) {
	m := loadModel(t, filepath.Join("..", "..", "testdata", "lenet-mnist", "model.json"))

	fused, report, err := Fuse(m)
	if err != nil {
		t.Fatalf("Fuse: %v", err)
	}
	for _, n := range fused.Nodes {
		if n.Op == graph.OpBatchNorm || n.Op == graph.OpRelu || n.Op == graph.OpRelu6 || n.Op == graph.OpClip {
			t.Errorf("fused LeNet still has node %q (%s)", n.Name, n.Op)
		}
	}
	if got := report.Count(ActionKept); got != 0 {
		t.Errorf("kept %d nodes, want 0: %q", got, describeChanges(report))
	}
	if got := report.Count(ActionFolded); got != 2 {
		t.Errorf("folded %d batchnorms, want 2", got)
	}
	if got := report.Count(ActionFused); got != 3 {
		t.Errorf("fused %d activations, want 3", got)
	}

	inputs := lenetBatch(t, m, 256)
	want := run(t, m, inputs, false)["fc2"]
	got := run(t, fused, inputs, false)["fc2"]
	d := relativeDiff(got, want)
	t.Logf("LeNet fused vs unfused on 256 test images: max relative difference %.3g (tolerance %g)", d, equivalenceTolerance)
	if d > equivalenceTolerance {
		t.Errorf("fused logits differ from unfused: relative difference %.3g > %g", d, equivalenceTolerance)
	}

	// expected_logits.npy holds PyTorch's logits for the first 64 test images.
	expected := readNPY(t, filepath.Join("..", "..", "testdata", "lenet-mnist", "expected_logits.npy"))
	first := &tensor.Tensor{Shape: expected.Shape, Data: got.Data[:tensor.Size(expected.Shape)]}
	d = relativeDiff(first, expected)
	t.Logf("LeNet fused vs PyTorch on 64 test images: max relative difference %.3g (tolerance %g)", d, pytorchTolerance)
	if d > pytorchTolerance {
		t.Errorf("fused logits differ from PyTorch's: relative difference %.3g > %g", d, pytorchTolerance)
	}
}

func TestFusePyTorchSynthetic(t *testing.T) {
	for _, name := range []string{"dwconv-bn-relu6", "residual-bn-noaffine", "concat-pool-bn1d"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("..", "..", "testdata", "synthetic", name)
			m := loadModel(t, filepath.Join(dir, "model.json"))

			fused, _, err := Fuse(m)
			if err != nil {
				t.Fatalf("Fuse: %v", err)
			}
			for _, n := range fused.Nodes {
				if n.Op == graph.OpBatchNorm {
					t.Errorf("fused model still has batchnorm %q", n.Name)
				}
			}

			x := readNPY(t, filepath.Join(dir, "input.npy"))
			m.Inputs[0].Preprocess.Apply(x.Data, x.Shape)
			inputs := map[string]*tensor.Tensor{m.Inputs[0].Name: x}
			want := run(t, m, inputs, false)[m.Outputs[0]]
			got := run(t, fused, inputs, false)[fused.Outputs[0]]

			d := relativeDiff(got, want)
			t.Logf("fused vs unfused: max relative difference %.3g (tolerance %g)", d, equivalenceTolerance)
			if d > equivalenceTolerance {
				t.Errorf("fused output differs from unfused: relative difference %.3g > %g", d, equivalenceTolerance)
			}

			expected := readNPY(t, filepath.Join(dir, "expected.npy"))
			d = relativeDiff(got, expected)
			t.Logf("fused vs PyTorch: max relative difference %.3g (tolerance %g)", d, pytorchTolerance)
			if d > pytorchTolerance {
				t.Errorf("fused output differs from PyTorch's expected.npy: relative difference %.3g > %g", d, pytorchTolerance)
			}
			checkFixedPoint(t, fused)
		})
	}
}

// TestFuseTwiceByteIdentical saves a fused model, loads it, fuses it again and saves that under
// the same file name in another folder: the JSON and NPZ files must be byte-identical.
func TestFuseTwiceByteIdentical(t *testing.T) {
	models := []string{
		filepath.Join("..", "..", "testdata", "lenet-mnist", "model.json"),
		filepath.Join("..", "..", "testdata", "synthetic", "residual-bn-noaffine", "model.json"),
	}
	for _, path := range models {
		t.Run(filepath.Base(filepath.Dir(path)), func(t *testing.T) {
			m := loadModel(t, path)
			once, _, err := Fuse(m)
			if err != nil {
				t.Fatalf("Fuse: %v", err)
			}
			first := filepath.Join(t.TempDir(), "fused.json")
			if err := once.Save(first); err != nil {
				t.Fatalf("save: %v", err)
			}

			reloaded, err := graph.Load(first)
			if err != nil {
				t.Fatalf("load the fused model: %v", err)
			}
			twice, report, err := Fuse(reloaded)
			if err != nil {
				t.Fatalf("second Fuse: %v", err)
			}
			if len(report.Changes) != 0 {
				t.Errorf("second Fuse reported changes: %q", describeChanges(report))
			}
			second := filepath.Join(t.TempDir(), "fused.json")
			if err := twice.Save(second); err != nil {
				t.Fatalf("save: %v", err)
			}

			for _, file := range []string{"fused.json", "fused.npz"} {
				a, errA := os.ReadFile(filepath.Join(filepath.Dir(first), file))
				b, errB := os.ReadFile(filepath.Join(filepath.Dir(second), file))
				if errA != nil || errB != nil {
					t.Fatalf("read %s: %v, %v", file, errA, errB)
				}
				if !bytes.Equal(a, b) {
					t.Errorf("%s differs between fusing once and twice (%d and %d bytes)", file, len(a), len(b))
				}
			}
		})
	}
}
