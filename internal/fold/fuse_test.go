package fold

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/internal/graph"
)

// equivalenceTolerance bounds max |fused - unfused| / max |unfused| for every output and every
// tensor name the two models share. Folding rounds each weight once to float32 (relative error
// 2^-24) and the sums then run in a different order. These tests measured at most 3e-7 on
// linux/amd64.
const equivalenceTolerance = 1e-5

func modelDoc(input, outputs string, nodes ...string) string {
	return fmt.Sprintf(`{"format": "qtool.float/1", "inputs": [%s], "outputs": %s, "nodes": [%s]}`,
		input, outputs, strings.Join(nodes, ",\n"))
}

// batchNormNode returns a batchnorm node whose params are keyed "<name>.<role>".
func batchNormNode(name, input string, affine bool) string {
	params := fmt.Sprintf(`"running_mean": "%[1]s.running_mean", "running_var": "%[1]s.running_var"`, name)
	if affine {
		params += fmt.Sprintf(`, "weight": "%[1]s.weight", "bias": "%[1]s.bias"`, name)
	}
	return fmt.Sprintf(`{"name": %q, "op": "batchnorm", "inputs": [%q], "params": {%s}}`, name, input, params)
}

// batchNormShapes adds the param shapes of batchNormNode(name, ..., affine) to shapes.
func batchNormShapes(shapes map[string][]int, name string, channels int, affine bool) map[string][]int {
	roles := []string{"running_mean", "running_var"}
	if affine {
		roles = append(roles, "weight", "bias")
	}
	for _, role := range roles {
		shapes[name+"."+role] = []int{channels}
	}
	return shapes
}

type fuseCase struct {
	name    string
	input   string // JSON of the graph inputs
	outputs string // JSON list of the graph outputs
	nodes   []string
	shapes  map[string][]int

	wantNodes   []string // describeNodes of the fused model
	wantChanges []string // describeChanges of the report
	wantOutputs []string
	wantParams  map[string]map[string]string // fused node name -> role -> param key
	wantDetail  map[string]string            // input model node name -> text in its change's Detail
	wantCopies  []ParamCopy
}

func fuseCases() []fuseCase {
	image := `{"name": "x", "shape": [-1, 4, 6, 6]}`
	rgb := `{"name": "x", "shape": [-1, 3, 6, 6]}`
	features := `{"name": "x", "shape": [-1, 16]}`
	conv := func(name, input, params string) string {
		return fmt.Sprintf(`{"name": %q, "op": "conv2d", "inputs": [%q], "attrs": {"padding": 1}, "params": {%s}}`, name, input, params)
	}
	node := func(name, op, input, attrs string) string {
		if attrs == "" {
			return fmt.Sprintf(`{"name": %q, "op": %q, "inputs": [%q]}`, name, op, input)
		}
		return fmt.Sprintf(`{"name": %q, "op": %q, "inputs": [%q], "attrs": %s}`, name, op, input, attrs)
	}
	convShapes := func(name string, out, in int, bias bool) map[string][]int {
		s := map[string][]int{name + ".weight": {out, in, 3, 3}}
		if bias {
			s[name+".bias"] = []int{out}
		}
		return s
	}

	return []fuseCase{
		{
			name:    "depthwise conv, BN, relu6",
			input:   image,
			outputs: `["act"]`,
			nodes: []string{
				`{"name": "dw", "op": "conv2d", "inputs": ["x"], "attrs": {"groups": 4, "padding": 1}, "params": {"weight": "dw.weight", "bias": "dw.bias"}}`,
				batchNormNode("bn", "dw", true),
				node("act", "relu6", "bn", ""),
			},
			shapes:      batchNormShapes(map[string][]int{"dw.weight": {8, 1, 3, 3}, "dw.bias": {8}}, "bn", 8, true),
			wantNodes:   []string{"act:conv2d:relu6"},
			wantChanges: []string{"folded bn dw act", "fused act dw act"},
			wantOutputs: []string{"act"},
			wantParams:  map[string]map[string]string{"act": {"weight": "dw.weight", "bias": "dw.bias"}},
		},
		{
			name:    "conv without bias, BN without affine",
			input:   rgb,
			outputs: `["r"]`,
			nodes: []string{
				conv("c", "x", `"weight": "c.weight"`),
				batchNormNode("bn", "c", false),
				node("r", "relu", "bn", ""),
			},
			shapes:      batchNormShapes(convShapes("c", 6, 3, false), "bn", 6, false),
			wantNodes:   []string{"r:conv2d:relu"},
			wantChanges: []string{"folded bn c r", "fused r c r"},
			wantOutputs: []string{"r"},
			wantParams:  map[string]map[string]string{"r": {"weight": "c.weight", "bias": "c.bias"}},
			wantDetail:  map[string]string{"bn": `added bias "c.bias", used gamma 1 and beta 0`},
		},
		{
			name:    "linear, BN1d, relu",
			input:   features,
			outputs: `["r"]`,
			nodes: []string{
				`{"name": "fc", "op": "linear", "inputs": ["x"], "params": {"weight": "fc.weight", "bias": "fc.bias"}}`,
				batchNormNode("bn", "fc", true),
				node("r", "relu", "bn", ""),
			},
			shapes:      batchNormShapes(map[string][]int{"fc.weight": {10, 16}, "fc.bias": {10}}, "bn", 10, true),
			wantNodes:   []string{"r:linear:relu"},
			wantChanges: []string{"folded bn fc r", "fused r fc r"},
			wantOutputs: []string{"r"},
		},
		{
			name:    "BN kept when the conv also feeds a residual add",
			input:   rgb,
			outputs: `["r"]`,
			nodes: []string{
				conv("c", "x", `"weight": "c.weight", "bias": "c.bias"`),
				batchNormNode("bn", "c", true),
				`{"name": "sum", "op": "add", "inputs": ["bn", "c"]}`,
				node("r", "relu", "sum", ""),
			},
			shapes:      batchNormShapes(convShapes("c", 3, 3, true), "bn", 3, true),
			wantNodes:   []string{"c:conv2d", "bn:batchnorm", "r:add:relu"},
			wantChanges: []string{"kept bn bn", "fused r sum r"},
			wantOutputs: []string{"r"},
			wantDetail:  map[string]string{"bn": `input "c" also feeds "r"`}, // the add, renamed r after fusing the relu
		},
		{
			name:    "BN kept when the conv is a graph output",
			input:   rgb,
			outputs: `["bn", "c"]`,
			nodes: []string{
				conv("c", "x", `"weight": "c.weight", "bias": "c.bias"`),
				batchNormNode("bn", "c", true),
			},
			shapes:      batchNormShapes(convShapes("c", 5, 3, true), "bn", 5, true),
			wantNodes:   []string{"c:conv2d", "bn:batchnorm"},
			wantChanges: []string{"kept bn bn"},
			wantOutputs: []string{"bn", "c"},
			wantDetail:  map[string]string{"bn": `input "c" is a graph output`},
		},
		{
			name:    "shared weight key copied before folding",
			input:   rgb,
			outputs: `["sum"]`,
			nodes: []string{
				conv("a", "x", `"weight": "shared.weight", "bias": "a.bias"`),
				batchNormNode("bna", "a", true),
				conv("b", "x", `"weight": "shared.weight", "bias": "b.bias"`),
				`{"name": "sum", "op": "add", "inputs": ["bna", "b"]}`,
			},
			shapes:      batchNormShapes(map[string][]int{"shared.weight": {3, 3, 3, 3}, "a.bias": {3}, "b.bias": {3}}, "bna", 3, true),
			wantNodes:   []string{"bna:conv2d", "b:conv2d", "sum:add"},
			wantChanges: []string{"folded bna a bna"},
			wantOutputs: []string{"sum"},
			wantParams: map[string]map[string]string{
				"bna": {"weight": "a.weight", "bias": "a.bias"},
				"b":   {"weight": "shared.weight", "bias": "b.bias"},
			},
			wantCopies: []ParamCopy{{Node: "a", Role: "weight", From: "shared.weight", To: "a.weight"}},
		},
		{
			name:    "tied weight named after the folded layer",
			input:   rgb,
			outputs: `["sum"]`,
			nodes: []string{
				conv("a", "x", `"weight": "a.weight"`),
				batchNormNode("bna", "a", true),
				conv("b", "x", `"weight": "a.weight"`),
				`{"name": "sum", "op": "add", "inputs": ["bna", "b"]}`,
			},
			shapes:      batchNormShapes(map[string][]int{"a.weight": {3, 3, 3, 3}}, "bna", 3, true),
			wantNodes:   []string{"bna:conv2d", "b:conv2d", "sum:add"},
			wantChanges: []string{"folded bna a bna"},
			wantOutputs: []string{"sum"},
			wantParams: map[string]map[string]string{
				"bna": {"weight": "a.weight.1", "bias": "a.bias"},
				"b":   {"weight": "a.weight"},
			},
			wantCopies: []ParamCopy{{Node: "a", Role: "weight", From: "a.weight", To: "a.weight.1"}},
		},
		{
			name:    "identity and dropout dropped inside a chain",
			input:   rgb,
			outputs: `["fc"]`,
			nodes: []string{
				conv("c", "x", `"weight": "c.weight", "bias": "c.bias"`),
				node("d", "dropout", "c", `{"p": 0.5}`),
				batchNormNode("bn", "d", true),
				node("i", "identity", "bn", ""),
				node("r", "relu", "i", ""),
				node("f", "flatten", "r", ""),
				`{"name": "fc", "op": "linear", "inputs": ["f"], "params": {"weight": "fc.weight", "bias": "fc.bias"}}`,
			},
			shapes: batchNormShapes(map[string][]int{
				"c.weight": {4, 3, 3, 3}, "c.bias": {4}, "fc.weight": {5, 4 * 36}, "fc.bias": {5},
			}, "bn", 4, true),
			wantNodes:   []string{"r:conv2d:relu", "f:flatten", "fc:linear"},
			wantChanges: []string{"dropped d c r", "folded bn c r", "dropped i c r", "fused r c r"},
			wantOutputs: []string{"fc"},
		},
		{
			name:    "identity on a graph input and a graph output",
			input:   `{"name": "x", "shape": [-1, 4]}`,
			outputs: `["o", "i"]`,
			nodes: []string{
				node("i", "identity", "x", ""),
				`{"name": "fc", "op": "linear", "inputs": ["i"], "params": {"weight": "fc.weight"}}`,
				node("o", "identity", "fc", ""),
			},
			shapes:      map[string][]int{"fc.weight": {3, 4}},
			wantNodes:   []string{"o:linear"},
			wantChanges: []string{"dropped i x x", "dropped o fc o"},
			wantOutputs: []string{"o", "x"},
			wantDetail:  map[string]string{"i": `graph output "i" is renamed "x"`},
		},
		{
			name:    "activation chain composed into one clip",
			input:   rgb,
			outputs: `["s"]`,
			nodes: []string{
				conv("c", "x", `"weight": "c.weight", "bias": "c.bias"`),
				node("r", "relu", "c", ""),
				node("k", "clip", "r", `{"min": -1, "max": 3}`),
				node("s", "relu6", "k", ""),
			},
			shapes:      convShapes("c", 4, 3, true),
			wantNodes:   []string{"s:conv2d:clip(0, 3)"},
			wantChanges: []string{"fused r c s", "fused k c s", "fused s c s"},
			wantOutputs: []string{"s"},
			wantDetail:  map[string]string{"k": "composed with the existing relu into clip(0, 3)"},
		},
		{
			name:    "disjoint clamps keep the second activation",
			input:   rgb,
			outputs: `["r"]`,
			nodes: []string{
				conv("c", "x", `"weight": "c.weight", "bias": "c.bias"`),
				node("k", "clip", "c", `{"min": -5, "max": -1}`),
				node("r", "relu", "k", ""),
			},
			shapes:      convShapes("c", 4, 3, true),
			wantNodes:   []string{"k:conv2d:clip(-5, -1)", "r:relu"},
			wantChanges: []string{"fused k c k", "kept r r"},
			wantOutputs: []string{"r"},
			wantDetail:  map[string]string{"r": "gives a constant output"},
		},
		{
			name:    "BN after a fused relu kept",
			input:   rgb,
			outputs: `["bn"]`,
			nodes: []string{
				conv("c", "x", `"weight": "c.weight", "bias": "c.bias"`),
				node("r", "relu", "c", ""),
				batchNormNode("bn", "r", true),
			},
			shapes:      batchNormShapes(convShapes("c", 4, 3, true), "bn", 4, true),
			wantNodes:   []string{"r:conv2d:relu", "bn:batchnorm"},
			wantChanges: []string{"fused r c r", "kept bn bn"},
			wantOutputs: []string{"bn"},
			wantDetail:  map[string]string{"bn": "already applies a fused relu"},
		},
		{
			name:    "relu after maxpool kept",
			input:   rgb,
			outputs: `["r"]`,
			nodes: []string{
				conv("c", "x", `"weight": "c.weight", "bias": "c.bias"`),
				node("p", "maxpool2d", "c", `{"kernel": [2, 2]}`),
				node("r", "relu", "p", ""),
			},
			shapes:      convShapes("c", 4, 3, true),
			wantNodes:   []string{"c:conv2d", "p:maxpool2d", "r:relu"},
			wantChanges: []string{"kept r r"},
			wantOutputs: []string{"r"},
			wantDetail:  map[string]string{"r": `input "p" comes from maxpool2d`},
		},
		{
			name:    "BN on a graph input kept",
			input:   features,
			outputs: `["bn"]`,
			nodes:   []string{batchNormNode("bn", "x", true)},
			shapes:  batchNormShapes(map[string][]int{}, "bn", 16, true),

			wantNodes:   []string{"bn:batchnorm"},
			wantChanges: []string{"kept bn bn"},
			wantOutputs: []string{"bn"},
			wantDetail:  map[string]string{"bn": `input "x" is a graph input`},
		},
		{
			// The first sweep keeps bn because the dead identity also reads c; dropping the
			// identity lets the next sweep fold bn.
			name:    "dead identity dropped then BN folded",
			input:   rgb,
			outputs: `["bn"]`,
			nodes: []string{
				conv("c", "x", `"weight": "c.weight", "bias": "c.bias"`),
				batchNormNode("bn", "c", true),
				node("i", "identity", "c", ""),
			},
			shapes:      batchNormShapes(convShapes("c", 4, 3, true), "bn", 4, true),
			wantNodes:   []string{"bn:conv2d"},
			wantChanges: []string{"folded bn c bn", "dropped i c bn"},
			wantOutputs: []string{"bn"},
		},
	}
}

func TestFuseSyntheticGraphs(t *testing.T) {
	worst := 0.0
	for i, tc := range fuseCases() {
		t.Run(tc.name, func(t *testing.T) {
			m := newModel(t, modelDoc(tc.input, tc.outputs, tc.nodes...), tc.shapes, uint64(i+1))
			before := mustMarshal(t, m)
			beforeHash := m.Hash()

			fused, report, err := Fuse(m)
			if err != nil {
				t.Fatalf("Fuse: %v", err)
			}

			if got := describeNodes(fused); !slices.Equal(got, tc.wantNodes) {
				t.Errorf("fused nodes = %q, want %q", got, tc.wantNodes)
			}
			if got := describeChanges(report); !slices.Equal(got, tc.wantChanges) {
				t.Errorf("report changes = %q, want %q", got, tc.wantChanges)
			}
			if !slices.Equal(fused.Outputs, tc.wantOutputs) {
				t.Errorf("outputs = %q, want %q", fused.Outputs, tc.wantOutputs)
			}
			for name, roles := range tc.wantParams {
				n := fused.NodeByName(name)
				if n == nil {
					t.Errorf("fused model has no node %q", name)
					continue
				}
				if !maps.Equal(n.Params, roles) {
					t.Errorf("node %q params = %v, want %v", name, n.Params, roles)
				}
			}
			for node, want := range tc.wantDetail {
				if got := detailOf(report, node); !strings.Contains(got, want) {
					t.Errorf("detail of %q = %q, want it to contain %q", node, got, want)
				}
			}
			if !slices.Equal(report.CopiedParams, tc.wantCopies) && len(report.CopiedParams)+len(tc.wantCopies) > 0 {
				t.Errorf("copied params = %+v, want %+v", report.CopiedParams, tc.wantCopies)
			}
			if report.NodesBefore != len(m.Nodes) {
				t.Errorf("report NodesBefore = %d, want %d", report.NodesBefore, len(m.Nodes))
			}
			if report.NodesAfter != len(fused.Nodes) {
				t.Errorf("report NodesAfter = %d, want %d", report.NodesAfter, len(fused.Nodes))
			}
			checkParamsReferenced(t, fused)

			if mustMarshal(t, m) != before {
				t.Errorf("Fuse changed the input model's graph")
			}
			if m.Hash() != beforeHash {
				t.Errorf("Fuse changed the input model's content hash")
			}

			worst = max(worst, checkEquivalent(t, m, fused, uint64(100+i)))
			checkFixedPoint(t, fused)
		})
	}
	t.Logf("max relative difference over all cases: %.3g (tolerance %g)", worst, equivalenceTolerance)
}

func detailOf(r *Report, node string) string {
	for _, c := range r.Changes {
		if c.Node == node {
			return c.Detail
		}
	}
	return "(no change for this node)"
}

// checkParamsReferenced checks that the fused model stores exactly the params its nodes use.
func checkParamsReferenced(t *testing.T, m *graph.Model) {
	t.Helper()
	used := map[string]bool{}
	for _, n := range m.Nodes {
		for role, key := range n.Params {
			used[key] = true
			if m.Params[key] == nil {
				t.Errorf("node %q param %q names key %q, which the model does not store", n.Name, role, key)
			}
		}
	}
	for key := range m.Params {
		if !used[key] {
			t.Errorf("param %q is stored but no node uses it", key)
		}
	}
}

// checkEquivalent runs both models on the same seeded batch and checks each output, matched by
// position, and every tensor name the fused model shares with the unfused one. It returns the
// largest relative difference seen.
func checkEquivalent(t *testing.T, unfused, fused *graph.Model, seed uint64) float64 {
	t.Helper()
	inputs := randomInputs(unfused, 4, seed)
	want := run(t, unfused, inputs, true)
	got := run(t, fused, inputs, true)

	worst := 0.0
	for k, name := range unfused.Outputs {
		d := relativeDiff(got[fused.Outputs[k]], want[name])
		worst = max(worst, d)
		if d > equivalenceTolerance {
			t.Errorf("output %d (%q, fused %q): relative difference %.3g > %g", k, name, fused.Outputs[k], d, equivalenceTolerance)
		}
	}
	for _, n := range fused.Nodes {
		ref, ok := want[n.Name]
		if !ok {
			t.Errorf("fused tensor %q has no tensor of the same name in the unfused model", n.Name)
			continue
		}
		d := relativeDiff(got[n.Name], ref)
		worst = max(worst, d)
		if d > equivalenceTolerance {
			t.Errorf("tensor %q: relative difference %.3g > %g", n.Name, d, equivalenceTolerance)
		}
	}
	return worst
}

// checkFixedPoint checks that fusing a fused model changes nothing.
func checkFixedPoint(t *testing.T, fused *graph.Model) {
	t.Helper()
	again, report, err := Fuse(fused)
	if err != nil {
		t.Fatalf("second Fuse: %v", err)
	}
	if n := len(report.Changes) - report.Count(ActionKept); n != 0 {
		t.Errorf("second Fuse made %d changes: %q", n, describeChanges(report))
	}
	if mustMarshal(t, again) != mustMarshal(t, fused) {
		t.Errorf("second Fuse changed the graph")
	}
	if again.Hash() != fused.Hash() {
		t.Errorf("second Fuse changed the content hash")
	}
}
