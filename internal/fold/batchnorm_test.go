package fold

import (
	"math"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// convBatchNormModel returns x [N,1,2,2] -> 1x1 conv c with three output channels -> batchnorm bn
// with the given eps, running_var and conv weights, and fixed other statistics.
func convBatchNormModel(t *testing.T, eps string, variance, weight []float32) *graph.Model {
	t.Helper()
	doc := modelDoc(`{"name": "x", "shape": [-1, 1, 2, 2]}`, `["bn"]`,
		`{"name": "c", "op": "conv2d", "inputs": ["x"], "params": {"weight": "c.weight", "bias": "c.bias"}}`,
		`{"name": "bn", "op": "batchnorm", "inputs": ["c"], "attrs": {"eps": `+eps+`}, "params": {"weight": "bn.weight", "bias": "bn.bias", "running_mean": "bn.running_mean", "running_var": "bn.running_var"}}`)
	m := parseModel(t, doc)
	m.Params = map[string]*tensor.Tensor{
		"c.weight":        {Shape: []int{3, 1, 1, 1}, Data: weight},
		"c.bias":          {Shape: []int{3}, Data: []float32{1, 0.5, -0.25}},
		"bn.weight":       {Shape: []int{3}, Data: []float32{0.5, 2, -1.5}},
		"bn.bias":         {Shape: []int{3}, Data: []float32{0.1, -0.2, 0.3}},
		"bn.running_mean": {Shape: []int{3}, Data: []float32{1, -1, 0.7}},
		"bn.running_var":  {Shape: []int{3}, Data: variance},
	}
	if err := m.InferShapes(); err != nil {
		t.Fatalf("infer shapes: %v", err)
	}
	return m
}

func TestFoldBatchNormValues(t *testing.T) {
	const eps = 1e-5
	variance := []float32{4, 0.25, 0.3}
	weight := []float32{2, -3, 0.7}
	m := convBatchNormModel(t, "1e-05", variance, weight)

	fused, _, err := Fuse(m)
	if err != nil {
		t.Fatalf("Fuse: %v", err)
	}
	n := fused.NodeByName("bn")
	if n == nil {
		t.Fatalf("fused model has no node bn: %q", describeNodes(fused))
	}
	gotW, gotB := fused.Param(n, "weight"), fused.Param(n, "bias")
	for c := range 3 {
		// The reference: float64 throughout, one rounding to float32 at the end.
		scale := float64(m.Params["bn.weight"].Data[c]) / math.Sqrt(float64(variance[c])+eps)
		wantW := float32(float64(weight[c]) * scale)
		wantB := float32((float64(m.Params["c.bias"].Data[c])-float64(m.Params["bn.running_mean"].Data[c]))*scale +
			float64(m.Params["bn.bias"].Data[c]))
		if gotW.Data[c] != wantW {
			t.Errorf("channel %d: folded weight %.9g, want %.9g", c, gotW.Data[c], wantW)
		}
		if gotB.Data[c] != wantB {
			t.Errorf("channel %d: folded bias %.9g, want %.9g", c, gotB.Data[c], wantB)
		}
	}
	if m.Params["c.weight"].Data[1] != -3 {
		t.Errorf("Fuse wrote into the input model's weight tensor: c.weight[1] = %v, want -3", m.Params["c.weight"].Data[1])
	}
}

func TestFuseBatchNormErrors(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	cases := []struct {
		name     string
		eps      string
		variance []float32
		weight   []float32
		want     []string
	}{
		{"negative running_var", "1e-05", []float32{1, -0.5, 1}, []float32{1, 1, 1},
			[]string{`batchnorm "bn"`, "channel 1", "running_var is -0.5"}},
		{"two negative channels", "1e-05", []float32{1, -0.5, -2}, []float32{1, 1, 1},
			[]string{`batchnorm "bn"`, "channel 1", "running_var is -0.5", "2 of 3 channels are invalid"}},
		{"NaN running_var", "1e-05", []float32{1, nan, 1}, []float32{1, 1, 1},
			[]string{`batchnorm "bn"`, "channel 1", "running_var is NaN"}},
		{"infinite running_var", "1e-05", []float32{1, 1, inf}, []float32{1, 1, 1},
			[]string{`batchnorm "bn"`, "channel 2", "running_var is +Inf"}},
		{"zero running_var and eps", "0", []float32{1, 0, 1}, []float32{1, 1, 1},
			[]string{`batchnorm "bn"`, "channel 1", `conv2d "c"`, "overflows float32", "gamma/sqrt(running_var + eps) = +Inf"}},
		{"tiny running_var overflows the weight", "0", []float32{1, 1e-44, 1}, []float32{1, 1e20, 1},
			[]string{`batchnorm "bn"`, "channel 1", `conv2d "c"`, "overflows float32", "running_var 1e-44"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := convBatchNormModel(t, tc.eps, tc.variance, tc.weight)
			_, _, err := Fuse(m)
			if err == nil {
				t.Fatalf("Fuse returned no error")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestFuseKeptBatchNormStillChecked(t *testing.T) {
	doc := modelDoc(`{"name": "x", "shape": [-1, 3]}`, `["bn"]`, batchNormNode("bn", "x", false))
	m := newModel(t, doc, batchNormShapes(map[string][]int{}, "bn", 3, false), 1)
	m.Params["bn.running_var"].Data[2] = -1

	_, _, err := Fuse(m)
	if err == nil {
		t.Fatalf("Fuse returned no error for a negative running_var")
	}
	if !strings.Contains(err.Error(), `batchnorm "bn" channel 2: running_var is -1`) {
		t.Errorf("error %q does not name the batchnorm, channel and value", err)
	}
}

func TestFuseDeadChannelWarning(t *testing.T) {
	m := convBatchNormModel(t, "1e-05", []float32{1, 0, 1}, []float32{1, -2, 1})

	fused, report, err := Fuse(m)
	if err != nil {
		t.Fatalf("Fuse: %v", err)
	}
	if len(report.Warnings) != 1 {
		t.Fatalf("warnings = %+v, want one", report.Warnings)
	}
	w := report.Warnings[0]
	if w.Node != "bn" {
		t.Errorf("warning node = %q, want bn", w.Node)
	}
	if w.Channel != 1 {
		t.Errorf("warning channel = %d, want 1", w.Channel)
	}
	if !strings.Contains(w.Message, "running_var is 0") {
		t.Errorf("warning message %q does not mention running_var 0", w.Message)
	}
	if report.Count(ActionFolded) != 1 {
		t.Errorf("folded %d batchnorms, want 1", report.Count(ActionFolded))
	}
	checkEquivalent(t, m, fused, 5)
}

func TestCompose(t *testing.T) {
	relu := graph.Activation{Kind: graph.ActRelu}
	relu6 := graph.Activation{Kind: graph.ActRelu6}
	clip := func(lo, hi float64) graph.Activation { return graph.Activation{Kind: graph.ActClip, Min: lo, Max: hi} }
	cases := []struct {
		name          string
		first, second graph.Activation
		want          graph.Activation
		ok            bool
	}{
		{"none then relu", graph.Activation{}, relu, relu, true},
		{"relu then relu", relu, relu, relu, true},
		{"relu then relu6", relu, relu6, relu6, true},
		{"relu6 then relu", relu6, relu, relu6, true},
		{"relu then clip(-1, 3)", relu, clip(-1, 3), clip(0, 3), true},
		{"clip(0, 6) then relu6 keeps the clip", clip(0, 6), relu6, clip(0, 6), true},
		{"clip(-2, 2) then clip(-1, 5)", clip(-2, 2), clip(-1, 5), clip(-1, 2), true},
		{"clip(-5, -1) then relu is constant", clip(-5, -1), relu, graph.Activation{}, false},
		{"clip(6, 10) then relu6 meets in one point", clip(6, 10), relu6, graph.Activation{}, false},
	}
	for _, tc := range cases {
		got, ok := compose(tc.first, tc.second)
		if ok != tc.ok {
			t.Errorf("%s: ok = %v, want %v", tc.name, ok, tc.ok)
		}
		if got != tc.want {
			t.Errorf("%s: compose = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
