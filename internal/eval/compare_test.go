package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/internal/affine"
	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/infer"
	"github.com/qtool-dev/qtool/internal/qinfer"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// memorySource serves batches of one in-memory input tensor named x.
type memorySource struct{ x *tensor.Tensor }

func (s memorySource) Len() int { return s.x.Shape[0] }

func (s memorySource) Batch(start, count int) (map[string]*tensor.Tensor, error) {
	per := tensor.Size(s.x.Shape[1:])
	t, err := tensor.FromData(append([]float32{}, s.x.Data[start*per:(start+count)*per]...), append([]int{count}, s.x.Shape[1:]...)...)
	return map[string]*tensor.Tensor{"x": t}, err
}

// linearFixture is a float model x [N, 8] -> fc (linear, 8 -> classes) and its quantized form,
// built by hand with per-tensor weights.
type linearFixture struct {
	float *graph.Model
	q     *format.QModel
	data  memorySource
}

func newLinearFixture(t *testing.T, samples, classes int) linearFixture {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	random := func(lo, hi float32, shape ...int) *tensor.Tensor {
		x := tensor.New(shape...)
		for i := range x.Data {
			x.Data[i] = lo + (hi-lo)*rng.Float32()
		}
		return x
	}
	w, b := random(-1, 1, classes, 8), random(-0.2, 0.2, classes)
	x := random(-1, 1, samples, 8)

	m := &graph.Model{
		Inputs:  []graph.Input{{Name: "x", Shape: []int{-1, 8}}},
		Outputs: []string{"fc"},
		Nodes:   []*graph.Node{{Name: "fc", Op: graph.OpLinear, Inputs: []string{"x"}, Params: map[string]string{"weight": "fc.weight", "bias": "fc.bias"}}},
		Params:  map[string]*tensor.Tensor{"fc.weight": w, "fc.bias": b},
	}
	if err := m.InferShapes(); err != nil {
		t.Fatal(err)
	}
	out, err := infer.Run(m, map[string]*tensor.Tensor{"x": x}, infer.Options{})
	if err != nil {
		t.Fatal(err)
	}

	act := affine.Scheme{Bits: 8}
	rangeOf := func(v []float32) affine.Params {
		lo, hi := v[0], v[0]
		for _, f := range v {
			lo, hi = min(lo, f), max(hi, f)
		}
		p, err := affine.ChooseParams(float64(lo), float64(hi), act)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	pIn, pOut := rangeOf(x.Data), rangeOf(out["fc"].Data)
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
	mults, shifts := make([]int32, classes), make([]int32, classes)
	for c := range mults {
		mults[c], shifts[c] = mult.Mult, mult.Shift
	}
	tensorOf := func(name string, shape []int, p affine.Params) format.QTensor {
		return format.QTensor{Name: name, Shape: shape, DType: "uint8", Bits: 8, Scale: p.Scale, ZeroPoint: p.ZeroPoint, QMin: p.QMin, QMax: p.QMax}
	}
	q := &format.QModel{
		Version: format.QModelVersion, SourceHash: m.Hash(),
		Rounding: string(affine.RoundHalfToEven), RequantRounding: affine.RequantRounding, AddLeftShift: 20,
		Inputs:  []format.QInput{{Name: "x", Shape: []int{-1, 8}}},
		Outputs: []string{"fc"},
		Nodes: []*format.QNode{{Name: "fc", Op: "linear", Inputs: []string{"x"}, Weight: "w", Bias: "b", Mult: "m", Shift: "s",
			ClampMin: 0, ClampMax: 255}},
		Tensors: []format.QTensor{
			tensorOf("x", []int{1, 8}, pIn),
			tensorOf("fc", []int{1, classes}, pOut),
			tensorOf("orphan", []int{1, 2}, pOut),
		},
		Arrays: map[string]*format.QArray{
			"w": {DType: "I8", Shape: []int{classes, 8}, Data: weights},
			"b": {DType: "I32", Shape: []int{classes}, Data: bq},
			"m": {DType: "I32", Shape: []int{classes}, Data: mults},
			"s": {DType: "I32", Shape: []int{classes}, Data: shifts},
		},
	}
	return linearFixture{float: m, q: q, data: memorySource{x: x}}
}

func (f linearFixture) executor(t *testing.T, threads int) *qinfer.Executor {
	t.Helper()
	ex, err := qinfer.New(f.q, qinfer.Options{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

// floatLabels returns the float model's top class of every sample, so that float top-1 is 100%.
func (f linearFixture) floatLabels(t *testing.T) []int64 {
	t.Helper()
	out, err := infer.Run(f.float, map[string]*tensor.Tensor{"x": f.data.x}, infer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	classes := out["fc"].Shape[1]
	labels := make([]int64, f.data.Len())
	for s := range labels {
		labels[s] = int64(Argmax(out["fc"].Data[s*classes : (s+1)*classes]))
	}
	return labels
}

func TestCompareSameReportForAnyBatchAndThreads(t *testing.T) {
	f := newLinearFixture(t, 50, 10)
	labels := f.floatLabels(t)
	var first []byte
	for _, threads := range []int{1, 2} {
		for _, batch := range []int{1, 7, 50} {
			r, err := Compare(f.float, f.executor(t, threads), f.data, Options{Batch: batch, Threads: threads, Labels: labels, PerLayer: true})
			if err != nil {
				t.Fatal(err)
			}
			raw, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first = raw
				t.Logf("report: %s", raw)
				continue
			}
			if !bytes.Equal(raw, first) {
				t.Errorf("threads %d, batch %d: report %s differs from %s", threads, batch, raw, first)
			}
		}
	}
}

func TestCompareReportContents(t *testing.T) {
	f := newLinearFixture(t, 40, 10)
	labels := f.floatLabels(t)
	r, err := Compare(f.float, f.executor(t, 1), f.data, Options{Labels: labels, PerLayer: true, Timing: true})
	if err != nil {
		t.Fatal(err)
	}

	if r.Samples != 40 || r.Classes != 10 {
		t.Errorf("samples %d and classes %d, want 40 and 10", r.Samples, r.Classes)
	}
	if r.FloatTop1 == nil || *r.FloatTop1 != 100 {
		t.Errorf("float top-1 %v, want 100 with the float model's own predictions as labels", r.FloatTop1)
	}
	if r.Int8Top1 == nil || *r.Int8Top1 != r.Agreement {
		t.Errorf("int8 top-1 %v, want the agreement %v when the labels are the float predictions", r.Int8Top1, r.Agreement)
	}
	if r.DropPP == nil || *r.DropPP != 100-r.Agreement {
		t.Errorf("drop %v pp, want %v", r.DropPP, 100-r.Agreement)
	}
	if r.FloatTop5 == nil || r.Int8Top5 == nil {
		t.Error("ten classes should report top-5")
	}
	if r.Agreement < 80 {
		t.Errorf("agreement %.1f%%, want at least 80%% for an 8-bit linear layer", r.Agreement)
	}
	if r.FloatMsPerImage == nil || r.Int8MsPerImage == nil {
		t.Error("timing was requested but is missing")
	}

	var names []string
	for _, l := range r.Layers {
		names = append(names, l.Name)
		if l.SQNRdB == nil || *l.SQNRdB < 25 {
			t.Errorf("tensor %s: SQNR %v dB, want at least 25", l.Name, l.SQNRdB)
		}
	}
	if got := strings.Join(names, ","); got != "x,fc" {
		t.Errorf("layers %s, want x,fc", got)
	}
	if len(r.Skipped) != 1 || r.Skipped[0].Name != "orphan" {
		t.Errorf("skipped %+v, want the orphan tensor", r.Skipped)
	}
	if len(r.Outputs) != 1 || r.Outputs[0].Name != "fc" {
		t.Errorf("outputs %+v, want fc", r.Outputs)
	}
}

func TestCompareWithoutLabels(t *testing.T) {
	f := newLinearFixture(t, 20, 4)
	r, err := Compare(f.float, f.executor(t, 1), f.data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]any
	if err := json.Unmarshal(raw, &keys); err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"float_top1", "int8_top1", "float_top5", "int8_top5", "drop_pp", "layers", "float_ms_per_image"} {
		if _, ok := keys[absent]; ok {
			t.Errorf("key %q is present without labels, per-layer or timing: %s", absent, raw)
		}
	}
	for _, present := range []string{"samples", "agreement", "outputs"} {
		if _, ok := keys[present]; !ok {
			t.Errorf("key %q is missing: %s", present, raw)
		}
	}
}

func TestCompareLimitAndLabelErrors(t *testing.T) {
	f := newLinearFixture(t, 20, 4)
	labels := f.floatLabels(t)

	r, err := Compare(f.float, f.executor(t, 1), f.data, Options{Limit: 5, Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	if r.Samples != 5 {
		t.Errorf("samples %d with limit 5", r.Samples)
	}

	if _, err := Compare(f.float, f.executor(t, 1), f.data, Options{Labels: labels[:10]}); err == nil {
		t.Error("Compare accepted 10 labels for 20 samples")
	}
	bad := append([]int64{}, labels...)
	bad[3] = 4
	if _, err := Compare(f.float, f.executor(t, 1), f.data, Options{Labels: bad}); err == nil || !strings.Contains(err.Error(), "label 4") {
		t.Errorf("error %v, want one naming label 4", err)
	}
}

func TestCheckInputsRejectsOtherModel(t *testing.T) {
	f := newLinearFixture(t, 4, 3)
	cases := []struct {
		name   string
		change func(q *format.QModel)
		want   string
	}{
		{"renamed", func(q *format.QModel) { q.Inputs[0].Name = "image" }, `"image"`},
		{"reshaped", func(q *format.QModel) { q.Inputs[0].Shape = []int{-1, 9} }, "shape"},
		{"extra input", func(q *format.QModel) { q.Inputs = append(q.Inputs, format.QInput{Name: "y", Shape: []int{-1, 1}}) }, "2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := *f.q
			q.Inputs = append([]format.QInput{}, f.q.Inputs...)
			tc.change(&q)
			err := CheckInputs(f.float, &q)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %s", err, tc.want)
			}
		})
	}
}

func ExampleReport_WriteTable() {
	top1, int8Top1, drop, db := 98.8, 98.75, 0.05, 35.5
	r := &Report{
		Samples: 2000, Classes: 10, FloatTop1: &top1, Int8Top1: &int8Top1, DropPP: &drop, Agreement: 99.7,
		Outputs: []LayerReport{{Name: "fc2", SQNRdB: &db, Cosine: 0.99987, MaxAbsErr: 0.25}},
	}
	if err := r.WriteTable(os.Stdout); err != nil {
		fmt.Println(err)
	}
	// Output:
	// samples      2000
	// float top-1  98.80%
	// int8 top-1   98.75%
	// top-1 drop   0.05 pp
	// agreement    99.70%
	// output fc2   SQNR 35.50 dB, cosine 0.999870, max abs err 0.25
}
