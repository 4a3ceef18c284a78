package quant_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/qtool-dev/qtool/internal/calib"
	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/infer"
	"github.com/qtool-dev/qtool/internal/qinfer"
	"github.com/qtool-dev/qtool/internal/quant"
	"github.com/qtool-dev/qtool/internal/tensor"
	"github.com/qtool-dev/qtool/internal/testutil"
)

// batchNorm1dModel is a linear layer followed by a batchnorm that fusion could not fold
// (because the linear output is also a graph output) on [N, C] features.
const batchNorm1dModel = `{
  "format": "qtool.float/1",
  "inputs": [{"name": "x", "shape": [-1, 6]}],
  "outputs": ["fc", "r"],
  "nodes": [
    {"name": "fc", "op": "linear", "inputs": ["x"], "params": {"weight": "fc.weight", "bias": "fc.bias"}},
    {"name": "bn", "op": "batchnorm", "inputs": ["fc"], "params": {"running_mean": "bn.running_mean", "running_var": "bn.running_var", "weight": "bn.weight", "bias": "bn.bias"}},
    {"name": "r", "op": "relu", "inputs": ["bn"]}
  ]
}`

// floatRangeTable runs the float model on inputs and records every tensor's min-max range.
func floatRangeTable(t *testing.T, m *graph.Model, inputs map[string]*tensor.Tensor) (*calib.Table, map[string]*tensor.Tensor) {
	t.Helper()
	values, err := infer.Run(m, inputs, infer.Options{KeepAll: true})
	if err != nil {
		t.Fatalf("infer.Run: %v", err)
	}
	settings := calib.DefaultSettings(calib.MethodMinMax)
	table := calib.NewTable(m.Hash(), 1)
	for name, v := range values {
		o, err := calib.NewObserver(name, settings)
		if err != nil {
			t.Fatal(err)
		}
		o.Observe(v.Data)
		r, err := o.Range()
		if err != nil {
			t.Fatal(err)
		}
		table.Tensors[name] = calib.NewEntry(r, settings)
	}
	return table, values
}

// TestQinferRunsQuantizedModels quantizes small unfused graphs with several option sets, runs
// them with the integer executor, and compares the outputs with float inference.
func TestQinferRunsQuantizedModels(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	bnParams := map[string]*tensor.Tensor{
		"fc.weight":       testutil.Random(rng, -1, 1, 5, 6),
		"fc.bias":         testutil.Random(rng, -0.5, 0.5, 5),
		"bn.running_mean": testutil.Random(rng, -0.5, 0.5, 5),
		"bn.running_var":  testutil.Random(rng, 0.5, 2, 5),
		"bn.weight":       values([]int{5}, 1, -1.5, 0.5, 2, -0.25),
		"bn.bias":         testutil.Random(rng, -0.5, 0.5, 5),
	}
	models := []struct {
		name   string
		doc    string
		params map[string]*tensor.Tensor
		input  []int
	}{
		{name: "mixed", doc: mixedModel, params: mixedParams(), input: []int{8, 2, 4, 4}},
		{name: "batchnorm1d", doc: batchNorm1dModel, params: bnParams, input: []int{8, 6}},
	}
	options := []struct {
		name string
		opt  quant.Options
	}{
		{"default", quant.Options{}},
		{"int8 symmetric", quant.Options{Activations: quant.Int8, SymmetricActivations: true}},
		{"per-tensor", quant.Options{Weights: quant.PerTensor}},
		{"pow2", quant.Options{Pow2Scales: true}},
		{"exclude fc", quant.Options{Exclude: []string{"fc"}}},
	}

	for _, mc := range models {
		m := buildModel(t, mc.doc, mc.params)
		inputs := map[string]*tensor.Tensor{"x": testutil.Random(rng, -1, 1, mc.input...)}
		table, want := floatRangeTable(t, m, inputs)

		for _, oc := range options {
			t.Run(mc.name+"/"+oc.name, func(t *testing.T) {
				q, _, err := quant.Quantize(m, table, oc.opt)
				if err != nil {
					t.Fatalf("Quantize: %v", err)
				}
				e, err := qinfer.New(q, qinfer.Options{Threads: 1})
				if err != nil {
					t.Fatalf("qinfer.New: %v", err)
				}
				res, err := e.Run(inputs, false)
				if err != nil {
					t.Fatalf("Run: %v", err)
				}

				for _, name := range m.Outputs {
					got, ref := res.Outputs[name].Data, want[name].Data
					lo, hi := slices.Min(ref), slices.Max(ref)
					span := float64(hi - lo)
					diff := testutil.MaxAbsDiff(t, got, ref)
					t.Logf("output %q: max |integer - float| %.4g over a range of %.4g", name, diff, span)
					if diff > 0.06*span {
						t.Errorf("output %q differs from float by up to %.4g, more than 6%% of its range %.4g", name, diff, span)
					}
				}
			})
		}
	}
}

// TestQinferMatchesReferenceOnLeNet checks that the integer executor computes, bit for bit, the
// integers of this package's reference of the arithmetic contract.
func TestQinferMatchesReferenceOnLeNet(t *testing.T) {
	l := loadLeNet(t)
	q, _, err := quant.Quantize(l.fused, l.fusedTable, quant.Options{})
	if err != nil {
		t.Fatalf("Quantize: %v", err)
	}
	e, err := qinfer.New(q, qinfer.Options{})
	if err != nil {
		t.Fatalf("qinfer.New: %v", err)
	}

	rng := rand.New(rand.NewPCG(5, 6))
	const samples = 20
	image := testutil.Random(rng, -0.5, 3, samples, 1, 28, 28)
	res, err := e.Run(map[string]*tensor.Tensor{"image": image}, true)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}

	got := res.Integers[q.Outputs[0]].Data
	per := 28 * 28
	for s := range samples {
		want := runInteger(t, q, image.Data[s*per:(s+1)*per])
		if !slices.Equal(got[s*10:(s+1)*10], want) {
			t.Errorf("sample %d: executor logits %v, reference %v", s, got[s*10:(s+1)*10], want)
		}
	}
}
