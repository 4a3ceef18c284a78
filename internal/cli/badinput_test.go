package cli

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/internal/tensor"
	"github.com/qtool-dev/qtool/internal/testutil"
)

// tinyModel is a conv-bn-relu-flatten-linear graph on [N, 2, 4, 4] inputs.
const tinyModel = `{
  "format": "qtool.float/1",
  "inputs": [{"name": "x", "shape": [-1, 2, 4, 4]}],
  "outputs": ["fc"],
  "nodes": [
    {"name": "conv", "op": "conv2d", "inputs": ["x"], "attrs": {"padding": [1, 1]}, "params": {"weight": "conv.weight", "bias": "conv.bias"}},
    {"name": "bn", "op": "batchnorm", "inputs": ["conv"], "params": {"running_mean": "bn.running_mean", "running_var": "bn.running_var", "weight": "bn.weight", "bias": "bn.bias"}},
    {"name": "relu", "op": "relu", "inputs": ["bn"]},
    {"name": "flat", "op": "flatten", "inputs": ["relu"]},
    {"name": "fc", "op": "linear", "inputs": ["flat"], "params": {"weight": "fc.weight", "bias": "fc.bias"}}
  ]
}`

func tinyParams() map[string]*tensor.Tensor {
	rng := rand.New(rand.NewPCG(3, 4))
	return map[string]*tensor.Tensor{
		"conv.weight":     testutil.Random(rng, -1, 1, 3, 2, 3, 3),
		"conv.bias":       testutil.Random(rng, -1, 1, 3),
		"bn.running_mean": testutil.Random(rng, -1, 1, 3),
		"bn.running_var":  testutil.Random(rng, 0.5, 2, 3),
		"bn.weight":       testutil.Random(rng, 0.5, 2, 3),
		"bn.bias":         testutil.Random(rng, -1, 1, 3),
		"fc.weight":       testutil.Random(rng, -1, 1, 5, 48),
		"fc.bias":         testutil.Random(rng, -1, 1, 5),
	}
}

// runCLI runs qtool with args and returns the exit code, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(args, &Streams{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
}

func TestInspectTinyModel(t *testing.T) {
	path := testutil.ModelDir(t, tinyModel, tinyParams())
	code, out, errOut := runCLI(t, "inspect", path)
	if code != 0 {
		t.Fatalf("exit code %d, stderr %s", code, errOut)
	}
	for _, want := range []string{"conv2d", "[1 3 4 4]", "[1 48]", "5 nodes", "MACs"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	// conv: 48 outputs x 18 taps; fc: 5 x 48.
	if !strings.Contains(out, "1104 MACs") {
		t.Errorf("inspect output lacks the total of 1104 MACs:\n%s", out)
	}
}

func TestModelBadInputs(t *testing.T) {
	replace := func(old, new string) func(string) string {
		return func(s string) string { return strings.Replace(s, old, new, 1) }
	}
	writeRaw := func(name string, data []byte) func(string) {
		return func(dir string) { os.WriteFile(filepath.Join(dir, name), data, 0o644) }
	}
	outside := t.TempDir()
	testutil.WriteNPY(t, filepath.Join(outside, "x.npy"), tensor.New(3))

	cases := []struct {
		name   string
		edit   func(string) string // edits the model JSON
		files  func(dir string)    // edits the model folder
		expect []string            // substrings of the error message
	}{
		{name: "malformed JSON", edit: replace(`"outputs"`, `"outputs`), expect: []string{"invalid model JSON at line"}},
		{name: "unknown op", edit: replace(`"op": "relu"`, `"op": "gelu"`), expect: []string{`node "relu"`, `unknown op "gelu"`}},
		{name: "unknown attr", edit: replace(`"padding": [1, 1]`, `"pading": [1, 1]`), expect: []string{`node "conv"`, `unknown attr "pading"`}},
		{name: "missing param", edit: replace(`"weight": "fc.weight", `, ``), expect: []string{`node "fc"`, `missing param "weight"`}},
		{name: "extra param", edit: replace(`{"name": "relu", "op": "relu", "inputs": ["bn"]}`, `{"name": "relu", "op": "relu", "inputs": ["bn"], "params": {"weight": "fc.weight"}}`), expect: []string{`node "relu"`, `unexpected param "weight"`}},
		{name: "missing weight file", files: func(dir string) { os.Remove(filepath.Join(dir, "bn.running_var.npy")) }, expect: []string{`node "bn"`, "bn.running_var", "no such file"}},
		{name: "weight outside the folder (relative)", edit: replace(`"conv.bias"`, `"../x"`),
			files: func(dir string) { testutil.WriteNPY(t, filepath.Join(dir, "..", "x.npy"), tensor.New(3)) }, expect: []string{`node "conv"`, "outside the model's folder"}},
		{name: "weights path absolute", edit: replace(`"format": "qtool.float/1",`, `"format": "qtool.float/1", "weights": "`+outside+`",`), expect: []string{"absolute"}},
		{name: "weights folder symlinked outside", edit: replace(`"format": "qtool.float/1",`, `"format": "qtool.float/1", "weights": "link",`),
			files: func(dir string) { os.Symlink(outside, filepath.Join(dir, "link")) }, expect: []string{"outside the model's folder"}},
		{name: "wrong dtype", files: writeRaw("conv.bias.npy", testutil.RawNPY("{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", make([]byte, 12))), expect: []string{`node "conv"`, "dtype int32", "float32"}},
		{name: "wrong shape", files: func(dir string) { testutil.WriteNPY(t, filepath.Join(dir, "conv.bias.npy"), tensor.New(4)) }, expect: []string{`node "conv"`, "bias", "[4]", "expected [3]"}},
		{name: "truncated NPY", files: writeRaw("fc.weight.npy", testutil.RawNPY("{'descr': '<f4', 'fortran_order': False, 'shape': (5, 48), }", make([]byte, 100))), expect: []string{"fc.weight.npy", "truncated"}},
		{name: "NaN weight", files: func(dir string) {
			w := tensor.New(5)
			w.Data[2] = float32(math.NaN())
			testutil.WriteNPY(t, filepath.Join(dir, "fc.bias.npy"), w)
		}, expect: []string{`node "fc"`, "NaN", "[2]"}},
		{name: "Inf weight", files: func(dir string) {
			w := tensor.New(3)
			w.Data[1] = float32(math.Inf(-1))
			testutil.WriteNPY(t, filepath.Join(dir, "bn.running_mean.npy"), w)
		}, expect: []string{`node "bn"`, "-Inf"}},
		{name: "shape mismatch between nodes", files: func(dir string) { testutil.WriteNPY(t, filepath.Join(dir, "fc.weight.npy"), tensor.New(5, 40)) }, expect: []string{`node "fc"`, "[5 40]", "48 features"}},
		{name: "duplicate name", edit: replace(`"name": "flat"`, `"name": "relu"`), expect: []string{`node "relu"`, "duplicate name"}},
		{name: "cycle", edit: replace(`"inputs": ["x"]`, `"inputs": ["relu"]`), expect: []string{`node "conv"`, `input "relu"`, "no cycles"}},
		{name: "dangling input", edit: replace(`"inputs": ["bn"]`, `"inputs": ["bn0"]`), expect: []string{`node "relu"`, `"bn0"`}},
		{name: "unknown format", edit: replace(`qtool.float/1`, `qtool.float/9`), expect: []string{"qtool.float/9"}},
		{name: "output names nothing", edit: replace(`"outputs": ["fc"]`, `"outputs": ["logits"]`), expect: []string{`output "logits"`}},
		{name: "groups do not divide", edit: replace(`"padding": [1, 1]`, `"padding": [1, 1], "groups": 2`), expect: []string{`node "conv"`, "groups 2"}},
		{name: "BN affine half given", edit: replace(`, "bias": "bn.bias"`, ``), expect: []string{`node "bn"`, "both weight (gamma) and bias (beta)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := tinyModel
			if c.edit != nil {
				doc = c.edit(doc)
				if doc == tinyModel {
					t.Fatal("the edit changed nothing")
				}
			}
			path := testutil.ModelDir(t, doc, tinyParams())
			if c.files != nil {
				c.files(filepath.Dir(path))
			}
			code, out, errOut := runCLI(t, "inspect", path)
			if code != ExitFailure {
				t.Fatalf("exit code %d, want 1; stderr: %s", code, errOut)
			}
			if out != "" {
				t.Errorf("stdout is not empty: %s", out)
			}
			if !strings.Contains(errOut, path) {
				t.Errorf("error does not name the model file %s: %s", path, errOut)
			}
			for _, want := range c.expect {
				if !strings.Contains(errOut, want) {
					t.Errorf("error lacks %q: %s", want, errOut)
				}
			}
			if strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
				t.Errorf("error spans several lines: %s", errOut)
			}
		})
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{{"--bogus"}, {"inspect"}, {"frobnicate"}, {"inspect", "a", "b"}} {
		code, _, errOut := runCLI(t, args...)
		if code != ExitUsage {
			t.Errorf("qtool %v: exit code %d, want 2; stderr: %s", args, code, errOut)
		}
	}
}

func TestVersionPrintsKernel(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.Contains(out, "kernel ") {
		t.Errorf("version: code %d, output %q", code, out)
	}
}

func TestWrongKindOfFileAsModel(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name    string
		content string
		want    string
	}{
		{"qmodel", "\x28\x00\x00\x00\x00\x00\x00\x00{\"__metadata__\":{\"format\":\"qtool.qmodel\"}}", "this is a quantized .qmodel file"},
		{"calibration table", `{"format": "qtool.calib/1", "model_hash": "x", "images": 1, "tensors": {}}`, "this is a calibration table"},
		{"empty", "", "the file is empty"},
		{"binary", "\x93NUMPY", "not a JSON model file (it starts with byte 0x93)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_"))
			os.WriteFile(path, []byte(c.content), 0o644)
			code, _, errOut := runCLI(t, "inspect", path)
			if code != ExitFailure || !strings.Contains(errOut, c.want) || !strings.Contains(errOut, path) {
				t.Errorf("exit code %d, stderr %q; want 1 and %q with the path", code, errOut, c.want)
			}
		})
	}
}

func TestOutputPathIsAFolder(t *testing.T) {
	path := testutil.ModelDir(t, tinyModel, tinyParams())
	out := t.TempDir()
	code, _, errOut := runCLI(t, "fuse", path, "-o", out+"/")
	if code == 0 {
		t.Fatalf("fuse to a folder succeeded: %s", errOut)
	}
	folder := filepath.Join(t.TempDir(), "fused.json")
	os.Mkdir(folder, 0o755)
	code, _, errOut = runCLI(t, "fuse", path, "-o", folder)
	if code != ExitFailure || !strings.Contains(errOut, "it is a folder") {
		t.Errorf("exit code %d, stderr %q; want 1 and \"it is a folder\"", code, errOut)
	}
}

func TestPreprocessTypoInConfig(t *testing.T) {
	root := testutil.RepoRoot(t)
	images := t.TempDir()
	os.WriteFile(filepath.Join(images, "a.png"), []byte("not read"), 0o644)
	cfg := filepath.Join(t.TempDir(), "cfg.yaml")
	os.WriteFile(cfg, []byte("preprocess:\n  scal: 0.5\n"), 0o644)
	code, _, errOut := runCLI(t, "calibrate", "-c", cfg, filepath.Join(root, "testdata", "lenet-mnist", "model.json"),
		"--data", images, "-o", filepath.Join(t.TempDir(), "c.json"))
	if code != ExitUsage || !strings.Contains(errOut, "scal") {
		t.Errorf("exit code %d, stderr %q; want 2 and the unknown key scal", code, errOut)
	}
}
