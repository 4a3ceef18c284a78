package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/internal/fold"
	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// fuseTestGraph folds c+bn+r into one conv2d named r, keeps bn2 (c2 also feeds the add) and
// drops the dropout, whose name the add takes. Channel 1 of bn has running_var 0, which folds
// with a warning.
const fuseTestGraph = `{
  "format": "qtool.float/1",
  "inputs": [{"name": "x", "shape": [-1, 2, 4, 4]}],
  "outputs": ["d"],
  "nodes": [
    {"name": "c", "op": "conv2d", "inputs": ["x"], "attrs": {"padding": 1}, "params": {"weight": "c.weight", "bias": "c.bias"}},
    {"name": "bn", "op": "batchnorm", "inputs": ["c"], "params": {"weight": "bn.weight", "bias": "bn.bias", "running_mean": "bn.running_mean", "running_var": "bn.running_var"}},
    {"name": "r", "op": "relu", "inputs": ["bn"]},
    {"name": "c2", "op": "conv2d", "inputs": ["r"], "attrs": {"padding": 1}, "params": {"weight": "c2.weight"}},
    {"name": "bn2", "op": "batchnorm", "inputs": ["c2"], "params": {"running_mean": "bn2.running_mean", "running_var": "bn2.running_var"}},
    {"name": "sum", "op": "add", "inputs": ["bn2", "c2"]},
    {"name": "d", "op": "dropout", "inputs": ["sum"], "attrs": {"p": 0.1}}
  ]
}`

// writeFuseTestModel saves fuseTestGraph with deterministic weights as dir/model.json and
// dir/model.npz. variance sets bn's running_var.
func writeFuseTestModel(t *testing.T, dir string, variance []float32) string {
	t.Helper()
	m, err := graph.Parse([]byte(fuseTestGraph))
	if err != nil {
		t.Fatalf("parse the test graph: %v", err)
	}
	m.Dir = dir
	ramp := func(n int, step float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = step * float32(i%7-3)
		}
		return v
	}
	m.Params = map[string]*tensor.Tensor{
		"c.weight":         {Shape: []int{2, 2, 3, 3}, Data: ramp(36, 0.1)},
		"c.bias":           {Shape: []int{2}, Data: []float32{0.1, -0.2}},
		"bn.weight":        {Shape: []int{2}, Data: []float32{1.5, 0.5}},
		"bn.bias":          {Shape: []int{2}, Data: []float32{0, 0.25}},
		"bn.running_mean":  {Shape: []int{2}, Data: []float32{0.2, -0.1}},
		"bn.running_var":   {Shape: []int{2}, Data: variance},
		"c2.weight":        {Shape: []int{2, 2, 3, 3}, Data: ramp(36, 0.05)},
		"bn2.running_mean": {Shape: []int{2}, Data: []float32{0, 0.5}},
		"bn2.running_var":  {Shape: []int{2}, Data: []float32{1, 2}},
	}
	if err := m.InferShapes(); err != nil {
		t.Fatalf("infer shapes: %v", err)
	}
	path := filepath.Join(dir, "model.json")
	if err := m.Save(path); err != nil {
		t.Fatalf("save the test model: %v", err)
	}
	return path
}

func newFuseTestOptions(model, output string, asJSON bool) (*fuseOptions, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	s := &Streams{Out: &out, Err: &errOut}
	g := &globalOptions{log: NewLogger(&errOut, false, false)}
	return &fuseOptions{streams: s, global: g, model: model, output: output, json: asJSON}, &out, &errOut
}

// tableRows returns the whitespace-separated fields of each line of out that starts with
// one of the report's actions.
func tableRows(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) > 0 && slices.Contains([]string{"folded", "fused", "dropped", "kept"}, fields[0]) {
			rows = append(rows, fields)
		}
	}
	return rows
}

func TestRunFuseTable(t *testing.T) {
	dir := t.TempDir()
	model := writeFuseTestModel(t, dir, []float32{1, 0})
	output := filepath.Join(dir, "fused.json")
	o, out, errOut := newFuseTestOptions(model, output, false)

	if err := runFuse(o); err != nil {
		t.Fatalf("runFuse: %v", err)
	}

	rows := tableRows(out.String())
	want := [][]string{
		{"folded", "bn", "batchnorm", "c", "r"},
		{"fused", "r", "relu", "c", "r"},
		{"kept", "bn2", "batchnorm", "bn2", "input", `"c2"`, "also", "feeds", `"d"`},
		{"dropped", "d", "dropout", "sum", "d"},
	}
	if len(rows) != len(want) {
		t.Fatalf("table has %d rows, want %d:\n%s", len(rows), len(want), out)
	}
	for i := range want {
		if !slices.Equal(rows[i], want[i]) {
			t.Errorf("row %d = %q, want %q", i, rows[i], want[i])
		}
	}
	if !strings.HasPrefix(out.String(), "ACTION ") {
		t.Errorf("table does not start with its header:\n%s", out)
	}
	if !strings.Contains(out.String(), "1 folded, 1 fused, 1 dropped, 1 kept, 7 nodes before and 4 after\n") {
		t.Errorf("summary line missing or wrong:\n%s", out)
	}
	if !strings.Contains(errOut.String(), `warning: batchnorm "bn" channel 1: running_var is 0`) {
		t.Errorf("stderr has no dead-channel warning:\n%s", errOut)
	}
	if strings.Contains(out.String(), "warning") {
		t.Errorf("stdout contains a warning, which belongs on stderr:\n%s", out)
	}

	fused, err := graph.Load(output)
	if err != nil {
		t.Fatalf("load the fused model: %v", err)
	}
	var names []string
	for _, n := range fused.Nodes {
		names = append(names, n.Name)
	}
	if !slices.Equal(names, []string{"r", "c2", "bn2", "d"}) {
		t.Errorf("fused nodes = %q, want [r c2 bn2 d]", names)
	}
	if fused.Weights != "fused.npz" {
		t.Errorf("fused weights = %q, want fused.npz", fused.Weights)
	}
}

func TestRunFuseJSON(t *testing.T) {
	dir := t.TempDir()
	model := writeFuseTestModel(t, dir, []float32{1, 0})
	o, out, _ := newFuseTestOptions(model, filepath.Join(dir, "fused.json"), true)

	if err := runFuse(o); err != nil {
		t.Fatalf("runFuse: %v", err)
	}

	var report fold.Report
	if err := json.Unmarshal(out.Bytes(), &report); err != nil {
		t.Fatalf("stdout is not a JSON report: %v\n%s", err, out)
	}
	for action, want := range map[fold.Action]int{fold.ActionFolded: 1, fold.ActionFused: 1, fold.ActionDropped: 1, fold.ActionKept: 1} {
		if got := report.Count(action); got != want {
			t.Errorf("%s count = %d, want %d", action, got, want)
		}
	}
	// The reason names tensors as the fused model does, where the add is named d.
	if len(report.Changes) > 2 && report.Changes[2].Detail != `input "c2" also feeds "d"` {
		t.Errorf("kept reason = %q, want %q", report.Changes[2].Detail, `input "c2" also feeds "d"`)
	}
	if len(report.Warnings) != 1 {
		t.Fatalf("warnings = %+v, want one", report.Warnings)
	}
	if report.Warnings[0].Channel != 1 {
		t.Errorf("warning channel = %d, want 1", report.Warnings[0].Channel)
	}
	if report.NodesBefore != 7 || report.NodesAfter != 4 {
		t.Errorf("nodes before and after = %d, %d, want 7, 4", report.NodesBefore, report.NodesAfter)
	}
	if !strings.Contains(out.String(), `"copied_params": []`) {
		t.Errorf("copied_params should be an empty list, not null:\n%s", out)
	}
}

func TestRunFuseUsageErrors(t *testing.T) {
	dir := t.TempDir()
	model := writeFuseTestModel(t, dir, []float32{1, 2})

	// A second model in the same folder whose weights archive is w.npz, so -o w.json
	// would overwrite it.
	raw, err := os.ReadFile(model)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	npz, err := os.ReadFile(filepath.Join(dir, "model.npz"))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	other := filepath.Join(dir, "other.json")
	if err := os.WriteFile(other, bytes.Replace(raw, []byte(`"model.npz"`), []byte(`"w.npz"`), 1), 0o644); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "w.npz"), npz, 0o644); err != nil {
		t.Fatalf("write: %v", err)
	}

	cases := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"missing -o", []string{"fuse", model}, "missing -o"},
		{"output is the input model", []string{"fuse", model, "-o", model}, "would overwrite the input model's file"},
		{"output through another path", []string{"fuse", model, "-o", filepath.Join(dir, ".", "model.json")}, "would overwrite"},
		{"output weights overwrite the input weights", []string{"fuse", other, "-o", filepath.Join(dir, "w.json")}, "w.npz would overwrite"},
		{"output is not JSON", []string{"fuse", model, "-o", filepath.Join(dir, "fused.npz")}, "must be a .json file"},
		{"no model argument", []string{"fuse", "-o", filepath.Join(dir, "fused.json")}, "fuse needs the MODEL argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Main(tc.args, &Streams{Out: &out, Err: &errOut})
			if code != ExitUsage {
				t.Errorf("exit code = %d, want %d; stderr:\n%s", code, ExitUsage, errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.stderr) {
				t.Errorf("stderr does not contain %q:\n%s", tc.stderr, errOut.String())
			}
		})
	}

	after, err := os.ReadFile(model)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(after, raw) {
		t.Errorf("the input model changed")
	}
}

func TestRunFuseBadBatchNorm(t *testing.T) {
	dir := t.TempDir()
	model := writeFuseTestModel(t, dir, []float32{1, -0.25})
	output := filepath.Join(dir, "fused.json")
	o, _, _ := newFuseTestOptions(model, output, false)

	err := runFuse(o)
	if err == nil {
		t.Fatalf("runFuse returned no error for a negative running_var")
	}
	var exit *ExitError
	if errors.As(err, &exit) {
		t.Errorf("error has exit code %d, want the default failure code 1", exit.Code)
	}
	if !strings.Contains(err.Error(), `batchnorm "bn" channel 1: running_var is -0.25`) {
		t.Errorf("error %q does not name the batchnorm, channel and value", err)
	}
	if _, statErr := os.Stat(output); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("output %s was written despite the error", output)
	}
}
