package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/internal/calib"
	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/tensor"
	"github.com/qtool-dev/qtool/internal/testutil"
)

// tinyRanges are calibration ranges for every tensor of tinyModel.
var tinyRanges = map[string][2]float64{
	"x": {-1, 1}, "conv": {-3, 3}, "bn": {-4, 5}, "relu": {0, 5}, "flat": {0, 5}, "fc": {-6, 6},
}

// quantizeFixture writes tinyModel with params and a calibration table for it, and returns the
// model path, the table path and the folder.
func quantizeFixture(t *testing.T, params map[string]*tensor.Tensor, edit func(*calib.Table)) (model, table, dir string) {
	t.Helper()
	model = testutil.ModelDir(t, tinyModel, params)
	dir = filepath.Dir(model)
	m, err := graph.Load(model)
	if err != nil {
		t.Fatal(err)
	}

	tab := calib.NewTable(m.Hash(), 1)
	settings := calib.DefaultSettings(calib.MethodMinMax)
	for name, r := range tinyRanges {
		tab.Tensors[name] = calib.NewEntry(calib.Range{Alpha: r[0], Beta: r[1], Samples: 1}, settings)
	}
	if edit != nil {
		edit(tab)
	}
	table = filepath.Join(dir, "calib.json")
	if err := tab.Write(table); err != nil {
		t.Fatal(err)
	}
	return model, table, dir
}

func TestQuantizePrintsSummary(t *testing.T) {
	model, table, dir := quantizeFixture(t, tinyParams(), nil)
	out := filepath.Join(dir, "tiny.qmodel")

	code, stdout, stderr := runCLI(t, "quantize", model, "--calib", table, "-o", out)
	if code != ExitOK {
		t.Fatalf("exit code %d, stderr:\n%s", code, stderr)
	}
	for _, want := range []string{"layers quantized", "conv, bn, fc", "layers kept in float  0", "float weights", "quantized arrays", "x smaller", ".qmodel file", "widened channels      0"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "wrote "+out) {
		t.Errorf("stderr lacks the written file:\n%s", stderr)
	}
	q, err := format.ReadQModel(out)
	if err != nil {
		t.Fatalf("ReadQModel: %v", err)
	}
	if len(q.Nodes) != 5 {
		t.Errorf("the model has %d nodes, want 5", len(q.Nodes))
	}
}

func TestQuantizeJSONSummary(t *testing.T) {
	model, table, dir := quantizeFixture(t, tinyParams(), nil)
	out := filepath.Join(dir, "tiny.qmodel")

	code, stdout, stderr := runCLI(t, "quantize", model, "--calib", table, "-o", out, "--json", "--exclude", "fc", "--bits", "6")
	if code != ExitOK {
		t.Fatalf("exit code %d, stderr:\n%s", code, stderr)
	}
	var r struct {
		Model            string   `json:"model"`
		Output           string   `json:"output"`
		FileBytes        int64    `json:"file_bytes"`
		Quantized        []string `json:"quantized_layers"`
		Excluded         []string `json:"excluded_layers"`
		FloatWeightBytes int64    `json:"float_weight_bytes"`
		Ratio            float64  `json:"compression_ratio"`
		Widened          []any    `json:"widened_channels"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	st, _ := os.Stat(out)
	if r.FileBytes != st.Size() {
		t.Errorf("file_bytes %d, want the file's %d", r.FileBytes, st.Size())
	}
	if strings.Join(r.Quantized, ",") != "conv,bn" {
		t.Errorf("quantized_layers %v, want [conv bn]", r.Quantized)
	}
	if strings.Join(r.Excluded, ",") != "fc" {
		t.Errorf("excluded_layers %v, want [fc]", r.Excluded)
	}
	if r.FloatWeightBytes != 4*(3*2*9+3+4*3+5*48+5) {
		t.Errorf("float_weight_bytes %d, want %d", r.FloatWeightBytes, 4*(3*2*9+3+4*3+5*48+5))
	}
	if !(r.Ratio > 0) || r.Widened == nil {
		t.Errorf("compression_ratio %g and widened_channels %v, want a positive ratio and a list", r.Ratio, r.Widened)
	}
	if r.Model != model || r.Output != out {
		t.Errorf("model %q and output %q, want %q and %q", r.Model, r.Output, model, out)
	}
}

func TestQuantizeWidenedChannels(t *testing.T) {
	params := tinyParams()
	// fc's input scale is 5/255 and its weight scales about 1/127, so bias 1e6 needs about
	// 6.5e9 integer steps, beyond int32.
	params["fc.bias"].Data[2] = 1e6
	model, table, dir := quantizeFixture(t, params, nil)
	out := filepath.Join(dir, "tiny.qmodel")

	code, _, stderr := runCLI(t, "quantize", model, "--calib", table, "-o", out)
	if code != ExitFailure {
		t.Fatalf("exit code %d, want %d for a bias beyond int32; stderr:\n%s", code, ExitFailure, stderr)
	}
	for _, want := range []string{`layer "fc"`, "channel 2", "does not fit int32", "--widen-weight-scale"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}

	code, stdout, stderr := runCLI(t, "quantize", model, "--calib", table, "-o", out, "--widen-weight-scale")
	if code != ExitOK {
		t.Fatalf("exit code %d with --widen-weight-scale, stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "widened channels      1") || !strings.Contains(stdout, "LAYER") || !strings.Contains(stdout, "fc     2") {
		t.Errorf("summary does not list the widened channel:\n%s", stdout)
	}
	if !strings.Contains(stderr, "warning: layer fc channel 2: widened the weight scale") {
		t.Errorf("stderr lacks the widening warning:\n%s", stderr)
	}
}

func TestQuantizeExitCodes(t *testing.T) {
	cases := []struct {
		name   string
		args   func(model, table, dir string) []string
		edit   func(*calib.Table)
		files  func(dir string)
		code   int
		stderr []string
	}{
		{name: "weights value", args: withFlags("--weights", "foo"), code: ExitUsage, stderr: []string{`--weights "foo" is invalid`, "per-channel"}},
		{name: "bits too high", args: withFlags("--bits", "9"), code: ExitUsage, stderr: []string{"--bits 9 is invalid", "2 to 8"}},
		{name: "bits too low", args: withFlags("--bits", "1"), code: ExitUsage, stderr: []string{"--bits 1 is invalid"}},
		{name: "activations value", args: withFlags("--activations", "uint16"), code: ExitUsage, stderr: []string{`--activations "uint16" is invalid`}},
		{name: "bits not a number", args: withFlags("--bits", "eight"), code: ExitUsage, stderr: []string{"--bits"}},
		{name: "missing calib flag", args: func(model, _, dir string) []string {
			return []string{"quantize", model, "-o", filepath.Join(dir, "m.qmodel")}
		}, code: ExitUsage, stderr: []string{"--calib"}},
		{name: "missing output flag", args: func(model, table, _ string) []string {
			return []string{"quantize", model, "--calib", table}
		}, code: ExitUsage, stderr: []string{"-o"}},
		{name: "bad calib file", files: func(dir string) { os.WriteFile(filepath.Join(dir, "calib.json"), []byte("{not json"), 0o644) },
			code: ExitFailure, stderr: []string{"calib.json", "not a calibration table"}},
		{name: "missing calib file", files: func(dir string) { os.Remove(filepath.Join(dir, "calib.json")) },
			code: ExitFailure, stderr: []string{"calib.json", "not found; run qtool calibrate"}},
		{name: "missing tensor", edit: func(tab *calib.Table) { delete(tab.Tensors, "conv") },
			code: ExitFailure, stderr: []string{`tensor "conv" is missing`, "re-run qtool calibrate"}},
		{name: "stale table", edit: func(tab *calib.Table) { tab.ModelHash = "sha256:" + strings.Repeat("1", 64) },
			code: ExitFailure, stderr: []string{"stale", "sha256:1111"}},
		{name: "stale table allowed", edit: func(tab *calib.Table) { tab.ModelHash = "sha256:" + strings.Repeat("1", 64) },
			args: withFlags("--allow-stale-calib"), code: ExitOK, stderr: []string{"warning:", "--allow-stale-calib"}},
		{name: "unknown exclude", args: withFlags("--exclude", "conv,nope"), code: ExitFailure, stderr: []string{`"nope"`, "conv, fc"}},
		{name: "missing model", args: func(_, table, dir string) []string {
			return []string{"quantize", filepath.Join(dir, "none.json"), "--calib", table, "-o", filepath.Join(dir, "m.qmodel")}
		}, code: ExitFailure, stderr: []string{"none.json"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			model, table, dir := quantizeFixture(t, tinyParams(), c.edit)
			if c.files != nil {
				c.files(dir)
			}
			args := withFlags()(model, table, dir)
			if c.args != nil {
				args = c.args(model, table, dir)
			}

			code, _, stderr := runCLI(t, args...)
			if code != c.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, c.code, stderr)
			}
			for _, want := range c.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			if c.code != ExitOK {
				if _, err := os.Stat(filepath.Join(dir, "m.qmodel")); err == nil {
					t.Error("a failed run wrote the output file")
				}
			}
		})
	}
}

// withFlags returns the arguments of a valid quantize run with extra flags appended.
func withFlags(extra ...string) func(model, table, dir string) []string {
	return func(model, table, dir string) []string {
		args := []string{"quantize", model, "--calib", table, "-o", filepath.Join(dir, "m.qmodel")}
		return append(args, extra...)
	}
}

func TestInspectQModel(t *testing.T) {
	model, table, dir := quantizeFixture(t, tinyParams(), nil)
	out := filepath.Join(dir, "tiny.qmodel")
	if code, _, stderr := runCLI(t, "quantize", model, "--calib", table, "-o", out, "--pow2-scales", "--activations", "int8", "--symmetric-activations"); code != ExitOK {
		t.Fatalf("quantize: exit code %d, stderr:\n%s", code, stderr)
	}

	code, stdout, stderr := runCLI(t, "inspect", out)
	if code != ExitOK {
		t.Fatalf("inspect: exit code %d, stderr:\n%s", code, stderr)
	}
	for _, want := range []string{"version              1", "source hash", "half_to_even", "srdhm_half_away", "8-bit per-channel", "8-bit int8, symmetric",
		"power-of-two scales  true", "NODE", "conv2d", "TENSOR", "(2^-", "Q", "ARRAY", "conv.weight", "I8", "[3 2 3 3]", "5 nodes"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, stdout)
		}
	}

	code, stdout, stderr = runCLI(t, "inspect", "--json", out)
	if code != ExitOK {
		t.Fatalf("inspect --json: exit code %d, stderr:\n%s", code, stderr)
	}
	var r struct {
		Version int `json:"version"`
		Tensors []struct {
			Name    string  `json:"name"`
			Scale   float64 `json:"scale"`
			QFormat string  `json:"qformat"`
		} `json:"tensors"`
		Arrays []struct {
			Name  string `json:"name"`
			DType string `json:"dtype"`
			Bytes int    `json:"bytes"`
		} `json:"arrays"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("inspect --json is not JSON: %v", err)
	}
	if r.Version != 1 {
		t.Errorf("version %d, want 1", r.Version)
	}
	if len(r.Tensors) != 6 || r.Tensors[0].QFormat == "" {
		t.Errorf("tensors %+v, want 6 with a Q format", r.Tensors)
	}
	if len(r.Arrays) != 15 {
		t.Errorf("%d arrays, want 15 (5 for each of conv, bn and fc)", len(r.Arrays))
	}
}

func TestInspectCorruptQModel(t *testing.T) {
	model, table, dir := quantizeFixture(t, tinyParams(), nil)
	out := filepath.Join(dir, "tiny.qmodel")
	if code, _, stderr := runCLI(t, "quantize", model, "--calib", table, "-o", out); code != ExitOK {
		t.Fatalf("quantize: exit code %d, stderr:\n%s", code, stderr)
	}
	data, _ := os.ReadFile(out)
	data[len(data)-1] ^= 0x10
	os.WriteFile(out, data, 0o644)

	code, _, stderr := runCLI(t, "inspect", out)
	if code != ExitFailure {
		t.Errorf("exit code %d, want %d", code, ExitFailure)
	}
	if !strings.Contains(stderr, "file is corrupt: checksum mismatch") {
		t.Errorf("stderr lacks the checksum error:\n%s", stderr)
	}
}
