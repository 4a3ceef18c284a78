package fold

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/infer"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// newModel parses a model JSON document and gives every param key in shapes seeded random
// values: running_var uniform in [0.2, 2.2), every other param normal with standard deviation
// 0.5 (so gammas may be negative).
func newModel(t *testing.T, doc string, shapes map[string][]int, seed uint64) *graph.Model {
	t.Helper()
	m := parseModel(t, doc)
	rng := rand.New(rand.NewPCG(seed, 7))
	keys := make([]string, 0, len(shapes))
	for key := range shapes {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		p := tensor.New(shapes[key]...)
		for i := range p.Data {
			if strings.HasSuffix(key, "running_var") {
				p.Data[i] = float32(0.2 + 2*rng.Float64())
			} else {
				p.Data[i] = float32(0.5 * rng.NormFloat64())
			}
		}
		m.Params[key] = p
	}
	if err := m.InferShapes(); err != nil {
		t.Fatalf("infer the test model's shapes: %v", err)
	}
	return m
}

// parseModel parses a model JSON document into a model without params, with its own folder.
func parseModel(t *testing.T, doc string) *graph.Model {
	t.Helper()
	m, err := graph.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("parse the test model: %v", err)
	}
	m.Dir = t.TempDir()
	m.Params = map[string]*tensor.Tensor{}
	return m
}

// randomInputs returns a batch of normal values with standard deviation 3 for every graph
// input, large enough that relu6 and clip bounds are reached.
func randomInputs(m *graph.Model, batch int, seed uint64) map[string]*tensor.Tensor {
	rng := rand.New(rand.NewPCG(seed, 11))
	inputs := map[string]*tensor.Tensor{}
	for _, in := range m.Inputs {
		shape := slices.Clone(in.Shape)
		shape[0] = batch
		x := tensor.New(shape...)
		for i := range x.Data {
			x.Data[i] = float32(3 * rng.NormFloat64())
		}
		inputs[in.Name] = x
	}
	return inputs
}

func run(t *testing.T, m *graph.Model, inputs map[string]*tensor.Tensor, keepAll bool) map[string]*tensor.Tensor {
	t.Helper()
	out, err := infer.Run(m, inputs, infer.Options{KeepAll: keepAll})
	if err != nil {
		t.Fatalf("infer.Run: %v", err)
	}
	return out
}

// relativeDiff returns max |got - want| / max |want|, or the absolute difference when want is
// all zeros.
func relativeDiff(got, want *tensor.Tensor) float64 {
	if !tensor.EqualShape(got.Shape, want.Shape) {
		return math.Inf(1)
	}
	maxDiff, maxAbs := 0.0, 0.0
	for i := range want.Data {
		maxDiff = max(maxDiff, math.Abs(float64(got.Data[i])-float64(want.Data[i])))
		maxAbs = max(maxAbs, math.Abs(float64(want.Data[i])))
	}
	if maxAbs == 0 {
		return maxDiff
	}
	return maxDiff / maxAbs
}

// describeNodes lists a model's nodes as name:op, with :activation when one is fused.
func describeNodes(m *graph.Model) []string {
	var out []string
	for _, n := range m.Nodes {
		s := fmt.Sprintf("%s:%s", n.Name, n.Op)
		if n.Attrs.Activation.Kind != graph.ActNone {
			s += ":" + describeActivation(n.Attrs.Activation)
		}
		out = append(out, s)
	}
	return out
}

// describeChanges lists a report's changes as "action node into result", without into for
// kept nodes.
func describeChanges(r *Report) []string {
	var out []string
	for _, c := range r.Changes {
		out = append(out, strings.Join(strings.Fields(fmt.Sprintf("%s %s %s %s", c.Action, c.Node, c.Into, c.Result)), " "))
	}
	return out
}

func readNPY(t *testing.T, path string) *tensor.Tensor {
	t.Helper()
	arr, err := format.ReadNPY(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	data, err := arr.Float32()
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return &tensor.Tensor{Shape: arr.Shape, Data: data}
}

func mustMarshal(t *testing.T, m *graph.Model) string {
	t.Helper()
	doc, err := m.MarshalJSON()
	if err != nil {
		t.Fatalf("marshal the model: %v", err)
	}
	return string(doc)
}
