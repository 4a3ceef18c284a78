package cli

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/internal/affine"
	"github.com/qtool-dev/qtool/internal/calib"
	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/infer"
	"github.com/qtool-dev/qtool/internal/quant"
	"github.com/qtool-dev/qtool/internal/tensor"
	"github.com/qtool-dev/qtool/internal/testutil"
)

// evalFixture is a float linear model x [N, 8] -> fc [N, 10] on disk, its quantized form built
// by hand (per-tensor int8 weights, uint8 activations), test inputs, and labels that are the
// float model's own predictions, so float top-1 is 100%.
type evalFixture struct {
	dir, float, quant, data, labels string
	q                               *format.QModel
}

const evalSamples, evalClasses = 40, 10

func writeEvalFixture(t *testing.T) evalFixture {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 6))
	w := testutil.Random(rng, -1, 1, evalClasses, 8)
	b := testutil.Random(rng, -0.2, 0.2, evalClasses)
	x := testutil.Random(rng, -1, 1, evalSamples, 8)

	m := &graph.Model{
		Name:    "linear",
		Inputs:  []graph.Input{{Name: "x", Shape: []int{-1, 8}}},
		Outputs: []string{"fc"},
		Nodes:   []*graph.Node{{Name: "fc", Op: graph.OpLinear, Inputs: []string{"x"}, Params: map[string]string{"weight": "fc.weight", "bias": "fc.bias"}}},
		Params:  map[string]*tensor.Tensor{"fc.weight": w, "fc.bias": b},
	}
	if err := m.InferShapes(); err != nil {
		t.Fatal(err)
	}
	f := evalFixture{dir: dir, float: filepath.Join(dir, "model.json"), quant: filepath.Join(dir, "model.qmodel"),
		data: filepath.Join(dir, "x.npy"), labels: filepath.Join(dir, "y.npy")}
	if err := m.Save(f.float); err != nil {
		t.Fatal(err)
	}
	testutil.WriteNPY(t, f.data, x)

	out, err := infer.Run(m, map[string]*tensor.Tensor{"x": x}, infer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	labels := make([]int64, evalSamples)
	for s := range labels {
		scores := out["fc"].Data[s*evalClasses : (s+1)*evalClasses]
		for c, v := range scores {
			if v > scores[labels[s]] {
				labels[s] = int64(c)
			}
		}
	}
	writeLabels(t, f.labels, labels)

	f.q = quantizeLinearByHand(t, m, x, out["fc"])
	writeQModel(t, f.quant, f.q)
	return f
}

// writeLabels writes an int64 NPY file of shape [len(labels)].
func writeLabels(t *testing.T, path string, labels []int64) {
	t.Helper()
	data := make([]byte, 8*len(labels))
	for i, l := range labels {
		binary.LittleEndian.PutUint64(data[8*i:], uint64(l))
	}
	header := fmt.Sprintf("{'descr': '<i8', 'fortran_order': False, 'shape': (%d,), }", len(labels))
	if err := os.WriteFile(path, testutil.RawNPY(header, data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeQModel(t *testing.T, path string, q *format.QModel) {
	t.Helper()
	if err := format.WriteQModel(path, q); err != nil {
		t.Fatal(err)
	}
}

// quantizeLinearByHand quantizes the fixture's linear model with ranges from x and its outputs.
func quantizeLinearByHand(t *testing.T, m *graph.Model, x, y *tensor.Tensor) *format.QModel {
	t.Helper()
	paramsOf := func(v []float32) affine.Params {
		lo, hi := v[0], v[0]
		for _, f := range v {
			lo, hi = min(lo, f), max(hi, f)
		}
		p, err := affine.ChooseParams(float64(lo), float64(hi), affine.Scheme{Bits: 8})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	pIn, pOut := paramsOf(x.Data), paramsOf(y.Data)
	w, b := m.Params["fc.weight"], m.Params["fc.bias"]
	wq, pw, err := affine.QuantizeTensor(w.Data, affine.Scheme{Bits: 8, Signed: true, Symmetric: true, NarrowRange: true})
	if err != nil {
		t.Fatal(err)
	}
	bq, err := affine.QuantizeBias(b.Data, pIn.Scale, []float32{pw.Scale})
	if err != nil {
		t.Fatal(err)
	}
	mult, err := affine.QuantizeMultiplier(float64(pIn.Scale) * float64(pw.Scale) / float64(pOut.Scale))
	if err != nil {
		t.Fatal(err)
	}

	weights := make([]int8, len(wq))
	for i, v := range wq {
		weights[i] = int8(v)
	}
	mults, shifts, scales := make([]int32, evalClasses), make([]int32, evalClasses), make([]float32, evalClasses)
	for c := range mults {
		mults[c], shifts[c], scales[c] = mult.Mult, mult.Shift, pw.Scale
	}
	tensorOf := func(name string, shape []int, p affine.Params) format.QTensor {
		return format.QTensor{Name: name, Shape: shape, DType: "uint8", Bits: 8, Scale: p.Scale, ZeroPoint: p.ZeroPoint, QMin: p.QMin, QMax: p.QMax}
	}
	return &format.QModel{
		Version: format.QModelVersion, Name: m.Name, SourceHash: m.Hash(),
		Rounding: string(affine.RoundHalfToEven), RequantRounding: affine.RequantRounding, AddLeftShift: 20,
		Scheme:  format.QScheme{WeightBits: 8, ActivationBits: 8},
		Inputs:  []format.QInput{{Name: "x", Shape: []int{-1, 8}}},
		Outputs: []string{"fc"},
		Nodes: []*format.QNode{{Name: "fc", Op: "linear", Inputs: []string{"x"},
			Weight: "fc.weight", Bias: "fc.bias", WeightScale: "fc.weight_scale", Mult: "fc.mult", Shift: "fc.shift",
			ClampMin: 0, ClampMax: 255}},
		Tensors: []format.QTensor{tensorOf("x", []int{1, 8}, pIn), tensorOf("fc", []int{1, evalClasses}, pOut)},
		Arrays: map[string]*format.QArray{
			"fc.weight":       {DType: "I8", Shape: []int{evalClasses, 8}, Data: weights},
			"fc.bias":         {DType: "I32", Shape: []int{evalClasses}, Data: bq},
			"fc.weight_scale": {DType: "F32", Shape: []int{evalClasses}, Data: scales},
			"fc.mult":         {DType: "I32", Shape: []int{evalClasses}, Data: mults},
			"fc.shift":        {DType: "I32", Shape: []int{evalClasses}, Data: shifts},
		},
	}
}

func (f evalFixture) args(extra ...string) []string {
	return append([]string{"eval", "--float", f.float, "--quant", f.quant, "--data", f.data}, extra...)
}

func TestEvalPrintsTable(t *testing.T) {
	f := writeEvalFixture(t)
	code, out, errOut := runCLI(t, f.args("--labels", f.labels)...)
	if code != ExitOK {
		t.Fatalf("exit code %d, stderr:\n%s", code, errOut)
	}
	for _, want := range []string{"samples      40\n", "float top-1  100.00%", "int8 top-1", "float top-5", "top-1 drop", "agreement", "output fc", "float time", "int8 time"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "evaluating 40 samples") {
		t.Errorf("stderr lacks the start line:\n%s", errOut)
	}
	if strings.Contains(errOut, "warning") {
		t.Errorf("stderr has a warning for the model's own quantized form:\n%s", errOut)
	}
}

func TestEvalWithoutLabels(t *testing.T) {
	f := writeEvalFixture(t)
	code, out, errOut := runCLI(t, f.args()...)
	if code != ExitOK {
		t.Fatalf("exit code %d, stderr:\n%s", code, errOut)
	}
	if strings.Contains(out, "top-1") {
		t.Errorf("stdout reports accuracy without labels:\n%s", out)
	}
	for _, want := range []string{"agreement", "output fc"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
}

func TestEvalJSONWithoutTimingIsStable(t *testing.T) {
	f := writeEvalFixture(t)
	_, first, errOut := runCLI(t, f.args("--labels", f.labels, "--json", "--no-timing", "--per-layer", "--batch", "7", "--threads", "1")...)
	code, second, _ := runCLI(t, f.args("--labels", f.labels, "--json", "--no-timing", "--per-layer", "--batch", "64", "--threads", "2")...)
	if code != ExitOK {
		t.Fatalf("exit code %d, stderr:\n%s", code, errOut)
	}
	if first != second {
		t.Errorf("JSON differs between runs:\n%s\n%s", first, second)
	}

	var doc map[string]any
	if err := json.Unmarshal([]byte(first), &doc); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, first)
	}
	for _, key := range []string{"samples", "float_top1", "int8_top1", "float_top5", "int8_top5", "drop_pp", "agreement", "layers", "outputs"} {
		if _, ok := doc[key]; !ok {
			t.Errorf("JSON lacks %q: %s", key, first)
		}
	}
	for _, key := range []string{"float_ms_per_image", "int8_ms_per_image"} {
		if _, ok := doc[key]; ok {
			t.Errorf("JSON has %q with --no-timing", key)
		}
	}
	layers, _ := doc["layers"].([]any)
	if len(layers) != 2 {
		t.Fatalf("layers %v, want x and fc", doc["layers"])
	}
	for _, l := range layers {
		entry := l.(map[string]any)
		for _, key := range []string{"name", "sqnr_db", "cosine", "max_abs_err"} {
			if _, ok := entry[key]; !ok {
				t.Errorf("layer %v lacks %q", entry, key)
			}
		}
	}

	code, timed, _ := runCLI(t, f.args("--json")...)
	if code != ExitOK || !strings.Contains(timed, `"int8_ms_per_image"`) {
		t.Errorf("JSON without --no-timing lacks the timing (exit %d):\n%s", code, timed)
	}
}

func TestEvalMaxDropGate(t *testing.T) {
	f := writeEvalFixture(t)

	// Negated weights make the int8 model predict other classes.
	weights := f.q.Arrays["fc.weight"].Data.([]int8)
	for i := range weights {
		weights[i] = -weights[i]
	}
	broken := filepath.Join(f.dir, "broken.qmodel")
	writeQModel(t, broken, f.q)
	args := []string{"eval", "--float", f.float, "--quant", broken, "--data", f.data, "--labels", f.labels, "--no-timing"}

	code, out, errOut := runCLI(t, append(args, "--max-drop", "1")...)
	if code != ExitGate {
		t.Fatalf("exit code %d, want %d; stdout:\n%s\nstderr:\n%s", code, ExitGate, out, errOut)
	}
	if !strings.Contains(out, "top-1 drop") {
		t.Errorf("the report is missing from stdout:\n%s", out)
	}
	if !strings.Contains(errOut, "quality gate failed") || !strings.Contains(errOut, "pp more than --max-drop 1") {
		t.Errorf("stderr does not say by how much the gate failed:\n%s", errOut)
	}

	if code, _, errOut := runCLI(t, append(args, "--max-drop", "100")...); code != ExitOK {
		t.Errorf("exit code %d with --max-drop 100, stderr:\n%s", code, errOut)
	}
	if code, _, errOut := runCLI(t, f.args("--labels", f.labels, "--max-drop", "0")...); code != ExitOK {
		t.Errorf("exit code %d for the faithful model with --max-drop 0, stderr:\n%s", code, errOut)
	}
}

func TestEvalRejectsBadInvocations(t *testing.T) {
	f := writeEvalFixture(t)
	short := filepath.Join(f.dir, "short.npy")
	writeLabels(t, short, []int64{1, 2, 3, 4, 5})

	renamed := *f.q
	renamed.Inputs = []format.QInput{{Name: "image", Shape: []int{-1, 8}}}
	renamed.Tensors = append([]format.QTensor{}, f.q.Tensors...)
	renamed.Tensors[0].Name = "image"
	renamed.Nodes = []*format.QNode{{}}
	*renamed.Nodes[0] = *f.q.Nodes[0]
	renamed.Nodes[0].Inputs = []string{"image"}
	other := filepath.Join(f.dir, "other.qmodel")
	writeQModel(t, other, &renamed)

	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing quant", []string{"eval", "--float", f.float, "--data", f.data}, ExitUsage, "--quant"},
		{"missing data", []string{"eval", "--float", f.float, "--quant", f.quant}, ExitUsage, "--data"},
		{"max drop without labels", f.args("--max-drop", "1"), ExitUsage, "--max-drop needs --labels"},
		{"negative max drop", f.args("--labels", f.labels, "--max-drop", "-1"), ExitUsage, "percentage points"},
		{"zero batch", f.args("--batch", "0"), ExitUsage, "--batch"},
		{"label count", f.args("--labels", short), ExitFailure, "5 labels for 40 samples"},
		{"other inputs", []string{"eval", "--float", f.float, "--quant", other, "--data", f.data}, ExitFailure, `"image"`},
		{"missing qmodel", []string{"eval", "--float", f.float, "--quant", filepath.Join(f.dir, "none.qmodel"), "--data", f.data}, ExitFailure, "none.qmodel"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tc.code, errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, errOut)
			}
			if out != "" {
				t.Errorf("stdout is not empty on failure:\n%s", out)
			}
		})
	}
}

func TestEvalWarnsAboutOtherSourceModel(t *testing.T) {
	f := writeEvalFixture(t)
	f.q.SourceHash = "sha256:" + strings.Repeat("0", 64)
	writeQModel(t, f.quant, f.q)

	code, _, errOut := runCLI(t, f.args()...)
	if code != ExitOK {
		t.Fatalf("exit code %d, stderr:\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "warning: ") || !strings.Contains(errOut, "quantized from a float model with hash") {
		t.Errorf("stderr lacks the source warning:\n%s", errOut)
	}
}

// TestEvalLeNet runs qtool eval on the LeNet fixture: the fused model from qtool fuse, a
// min-max calibration table from qtool calibrate, and a .qmodel written by the quantize pass.
// It checks the accuracy target through the --max-drop gate and logs the table.
func TestEvalLeNet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 2000 LeNet images through both models")
	}
	lenet := filepath.Join(testutil.RepoRoot(t), "testdata", "lenet-mnist")
	dir := t.TempDir()
	fused := filepath.Join(dir, "fused.json")
	table := filepath.Join(dir, "calib.json")
	qmodel := filepath.Join(dir, "model.qmodel")

	steps := [][]string{
		{"fuse", filepath.Join(lenet, "model.json"), "-o", fused},
		{"calibrate", fused, "--data", filepath.Join(lenet, "calib.npy"), "--method", "minmax", "-o", table},
	}
	for _, args := range steps {
		if code, _, errOut := runCLI(t, append([]string{"--quiet"}, args...)...); code != ExitOK {
			t.Fatalf("qtool %s: exit code %d, stderr:\n%s", args[0], code, errOut)
		}
	}
	m, err := graph.Load(fused)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := calib.ReadTable(table)
	if err != nil {
		t.Fatal(err)
	}
	q, _, err := quant.Quantize(m, tab, quant.Options{})
	if err != nil {
		t.Fatal(err)
	}
	writeQModel(t, qmodel, q)

	args := []string{"eval", "--float", fused, "--quant", qmodel,
		"--data", filepath.Join(lenet, "test_x.npy"), "--labels", filepath.Join(lenet, "test_y.npy"), "--max-drop", "0.3"}
	code, out, errOut := runCLI(t, args...)
	if code != ExitOK {
		t.Fatalf("exit code %d; stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	t.Logf("qtool %s\n%s", strings.Join(args, " "), out)

	code, raw, errOut := runCLI(t, append(args, "--json", "--no-timing")...)
	if code != ExitOK {
		t.Fatalf("--json: exit code %d, stderr:\n%s", code, errOut)
	}
	var r struct {
		Samples   int     `json:"samples"`
		Agreement float64 `json:"agreement"`
		DropPP    float64 `json:"drop_pp"`
	}
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		t.Fatal(err)
	}
	if r.Samples != 2000 || r.Agreement < 99.5 || r.DropPP > 0.3 {
		t.Errorf("samples %d, agreement %.2f%%, drop %.2f pp; want 2000, at least 99.5%% and at most 0.3 pp", r.Samples, r.Agreement, r.DropPP)
	}
}

func TestEvalProgressOnlyOnTerminal(t *testing.T) {
	f := writeEvalFixture(t)
	// Batches of 7 make the bar draw intermediate counts such as 7/40 before it is cleared.
	run := func(terminal bool, extra ...string) string {
		var out, errOut strings.Builder
		code := Main(f.args(append([]string{"--batch", "7"}, extra...)...), &Streams{In: strings.NewReader(""), Out: &out, Err: &errOut, ErrIsTerminal: terminal})
		if code != ExitOK {
			t.Fatalf("exit code %d, stderr:\n%s", code, errOut.String())
		}
		if strings.Contains(out.String(), "/40") {
			t.Errorf("the progress bar is on stdout:\n%q", out.String())
		}
		return errOut.String()
	}

	if got := run(true); !strings.Contains(got, "7/40") {
		t.Errorf("no progress bar on a terminal; stderr:\n%q", got)
	}
	if got := run(false); strings.Contains(got, "/40") {
		t.Errorf("a progress bar without a terminal; stderr:\n%q", got)
	}
	if got := run(true, "--quiet"); got != "" {
		t.Errorf("stderr is not empty with --quiet:\n%q", got)
	}
}
