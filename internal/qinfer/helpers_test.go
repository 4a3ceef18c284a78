package qinfer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qtool-dev/qtool/internal/affine"
	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/tensor"
	"github.com/qtool-dev/qtool/internal/testutil"
)

// The tests build QModels by hand the way a quantize pass would: activation parameters from the
// real range of each tensor, per-channel symmetric int8 weights, int32 biases and fixed-point
// multipliers from internal/affine.

// weightScheme is the default weight scheme: symmetric int8 in [-127, 127].
var weightScheme = affine.Scheme{Bits: 8, Signed: true, Symmetric: true, NarrowRange: true}

// activationScheme returns asymmetric 8-bit activations, int8 when signed, else uint8.
func activationScheme(signed bool) affine.Scheme {
	return affine.Scheme{Bits: 8, Signed: signed}
}

func dtypeName(signed bool) string {
	if signed {
		return "int8"
	}
	return "uint8"
}

// newQModel returns an empty model with the header this executor accepts.
func newQModel() *format.QModel {
	return &format.QModel{
		Version:         format.QModelVersion,
		Rounding:        string(affine.RoundHalfToEven),
		RequantRounding: affine.RequantRounding,
		AddLeftShift:    20,
		Arrays:          map[string]*format.QArray{},
	}
}

// chooseParams returns the activation parameters of the real range [lo, hi].
func chooseParams(t testing.TB, lo, hi float64, signed bool) affine.Params {
	t.Helper()
	p, err := affine.ChooseParams(lo, hi, activationScheme(signed))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// rangeParams returns the parameters that cover every value of x.
func rangeParams(t testing.TB, x []float64, signed bool) affine.Params {
	t.Helper()
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range x {
		lo, hi = min(lo, v), max(hi, v)
	}
	return chooseParams(t, lo, hi, signed)
}

// addTensor appends a QTensor with parameters p to the model.
func addTensor(q *format.QModel, name string, shape []int, p affine.Params, signed bool) {
	q.Tensors = append(q.Tensors, format.QTensor{
		Name: name, Shape: append([]int{1}, shape[1:]...), DType: dtypeName(signed), Bits: 8,
		Scale: p.Scale, ZeroPoint: p.ZeroPoint, QMin: p.QMin, QMax: p.QMax,
	})
}

// addInput declares a graph input with parameters p.
func addInput(q *format.QModel, name string, shape []int, p affine.Params, signed bool) {
	q.Inputs = append(q.Inputs, format.QInput{Name: name, Shape: append([]int{-1}, shape[1:]...)})
	addTensor(q, name, shape, p, signed)
}

func addArray(q *format.QModel, name, dtype string, shape []int, data any) {
	q.Arrays[name] = &format.QArray{DType: dtype, Shape: shape, Data: data}
}

// addMultipliers stores real multipliers as the Mult and Shift arrays name.mult and name.shift.
func addMultipliers(t testing.TB, q *format.QModel, name string, real []float64) (multName, shiftName string) {
	t.Helper()
	mult := make([]int32, len(real))
	shift := make([]int32, len(real))
	for i, m := range real {
		qm, err := affine.QuantizeMultiplier(m)
		if err != nil {
			t.Fatal(err)
		}
		mult[i], shift[i] = qm.Mult, qm.Shift
	}
	multName, shiftName = name+".mult", name+".shift"
	addArray(q, multName, "I32", []int{len(real)}, mult)
	addArray(q, shiftName, "I32", []int{len(real)}, shift)
	return multName, shiftName
}

// quantizedWeights are a layer's weights and bias after quantization, and their real values.
type quantizedWeights struct {
	w     []int8
	scale []float32 // per output channel
	bias  []int32
	// realW and realBias are scale * w and scale_in * scale * bias in float64.
	realW, realBias []float64
}

// quantizeLayer quantizes float weights per output channel (axis 0) and the bias at scale_in *
// scale_w[c].
func quantizeLayer(t testing.TB, w, bias *tensor.Tensor, scaleIn float32) quantizedWeights {
	t.Helper()
	wq, params, err := affine.QuantizeTensorPerChannel(w.Data, w.Shape, 0, weightScheme)
	if err != nil {
		t.Fatal(err)
	}
	out := quantizedWeights{w: make([]int8, len(wq)), realW: make([]float64, len(wq))}
	per := len(wq) / w.Shape[0]
	for _, p := range params {
		out.scale = append(out.scale, p.Scale)
	}
	for i, v := range wq {
		out.w[i] = int8(v)
		out.realW[i] = float64(out.scale[i/per]) * float64(v)
	}
	if bias != nil {
		out.bias, err = affine.QuantizeBias(bias.Data, scaleIn, out.scale)
		if err != nil {
			t.Fatal(err)
		}
	} else {
		out.bias = make([]int32, w.Shape[0])
	}
	for c, b := range out.bias {
		out.realBias = append(out.realBias, float64(scaleIn)*float64(out.scale[c])*float64(b))
	}
	return out
}

// addLayerArrays stores a conv2d or linear node's weight, bias and multipliers.
func addLayerArrays(t testing.TB, q *format.QModel, n *format.QNode, lw quantizedWeights, wShape []int, scaleIn, scaleOut float32) {
	t.Helper()
	n.Weight, n.Bias, n.WeightScale = n.Name+".weight", n.Name+".bias", n.Name+".weight_scale"
	addArray(q, n.Weight, "I8", wShape, lw.w)
	addArray(q, n.Bias, "I32", []int{len(lw.bias)}, lw.bias)
	addArray(q, n.WeightScale, "F32", []int{len(lw.scale)}, lw.scale)
	real := make([]float64, len(lw.scale))
	for c, sw := range lw.scale {
		real[c] = float64(scaleIn) * float64(sw) / float64(scaleOut)
	}
	n.Mult, n.Shift = addMultipliers(t, q, n.Name, real)
}

// quantizeInts quantizes every value of x with p.
func quantizeInts(x []float32, p affine.Params) []int32 {
	q := make([]int32, len(x))
	for i, v := range x {
		q[i] = p.Quantize(v)
	}
	return q
}

// realValues returns p.Scale * (q - p.ZeroPoint) in float64.
func realValues(q []int32, p affine.Params) []float64 {
	r := make([]float64, len(q))
	for i, v := range q {
		r[i] = float64(p.Scale) * float64(v-p.ZeroPoint)
	}
	return r
}

// quantizeReal quantizes float64 reference values with p, rounding half to even, and clamps
// them to [lo, hi].
func quantizeReal(x []float64, p affine.Params, lo, hi int32) []int32 {
	q := make([]int32, len(x))
	for i, v := range x {
		r := math.RoundToEven(v/float64(p.Scale)) + float64(p.ZeroPoint)
		q[i] = int32(min(max(r, float64(lo)), float64(hi)))
	}
	return q
}

// runModel builds an Executor and runs it with keepAll.
func runModel(t testing.TB, q *format.QModel, inputs map[string]*tensor.Tensor, threads int) *Result {
	t.Helper()
	e, err := New(q, Options{Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(inputs, true)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// checkWithinOneStep fails the test when any integer differs from the reference by more than 1
// and logs how many differ by exactly 1.
func checkWithinOneStep(t testing.TB, what string, got, want []int32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d integers, want %d", what, len(got), len(want))
	}
	off := 0
	for i := range got {
		d := got[i] - want[i]
		if d < -1 || d > 1 {
			t.Fatalf("%s: element %d is %d, float64 reference %d (more than one step apart)", what, i, got[i], want[i])
		}
		if d != 0 {
			off++
		}
	}
	t.Logf("%s: %d of %d integers one step from the float64 reference", what, off, len(got))
}

// checkEqual fails the test at the first integer that differs.
func checkEqual(t testing.TB, what string, got, want []int32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d integers, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: element %d is %d, want %d", what, i, got[i], want[i])
		}
	}
}

// randomTensor returns uniform values in [lo, hi) from rng.
func randomTensor(rng *rand.Rand, lo, hi float32, shape ...int) *tensor.Tensor {
	return testutil.Random(rng, lo, hi, shape...)
}

func float64s(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

func caseName(signed bool, name string) string {
	return fmt.Sprintf("%s/%s", dtypeName(signed), name)
}
