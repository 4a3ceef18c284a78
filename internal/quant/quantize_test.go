package quant_test

import (
	"bytes"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/internal/affine"
	"github.com/qtool-dev/qtool/internal/calib"
	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/quant"
	"github.com/qtool-dev/qtool/internal/tensor"
	"github.com/qtool-dev/qtool/internal/testutil"
)

// linearModel is one linear layer on [N, K] inputs.
const linearModel = `{
  "format": "qtool.float/1",
  "inputs": [{"name": "x", "shape": [-1, 4]}],
  "outputs": ["fc"],
  "nodes": [
    {"name": "fc", "op": "linear", "inputs": ["x"], "params": {"weight": "fc.weight", "bias": "fc.bias"}}
  ]
}`

// mixedModel is an unfused graph with every op that quantize handles.
const mixedModel = `{
  "format": "qtool.float/1",
  "inputs": [{"name": "x", "shape": [-1, 2, 4, 4]}],
  "outputs": ["out"],
  "nodes": [
    {"name": "conv", "op": "conv2d", "inputs": ["x"], "attrs": {"padding": [1, 1]}, "params": {"weight": "conv.weight", "bias": "conv.bias"}},
    {"name": "bn", "op": "batchnorm", "inputs": ["conv"], "params": {"running_mean": "bn.running_mean", "running_var": "bn.running_var", "weight": "bn.weight", "bias": "bn.bias"}},
    {"name": "r6", "op": "relu6", "inputs": ["bn"]},
    {"name": "drop", "op": "dropout", "inputs": ["r6"], "attrs": {"p": 0.5}},
    {"name": "conv_b", "op": "conv2d", "inputs": ["x"], "attrs": {"activation": "relu"}, "params": {"weight": "conv_b.weight"}},
    {"name": "sum", "op": "add", "inputs": ["drop", "conv_b"], "attrs": {"activation": "relu"}},
    {"name": "cat", "op": "concat", "inputs": ["sum", "r6"]},
    {"name": "pool", "op": "maxpool2d", "inputs": ["cat"], "attrs": {"kernel": [2, 2]}},
    {"name": "gap", "op": "global_avgpool", "inputs": ["pool"]},
    {"name": "flat", "op": "flatten", "inputs": ["gap"]},
    {"name": "fc", "op": "linear", "inputs": ["flat"], "params": {"weight": "fc.weight", "bias": "fc.bias"}},
    {"name": "out", "op": "identity", "inputs": ["fc"]}
  ]
}`

func mixedParams() map[string]*tensor.Tensor {
	rng := rand.New(rand.NewPCG(7, 8))
	return map[string]*tensor.Tensor{
		"conv.weight":     testutil.Random(rng, -1, 1, 3, 2, 3, 3),
		"conv.bias":       testutil.Random(rng, -0.5, 0.5, 3),
		"bn.running_mean": values([]int{3}, 0.5, -0.25, 0),
		"bn.running_var":  values([]int{3}, 4, 0.25, 1),
		"bn.weight":       values([]int{3}, 1.5, -2, 0.5),
		"bn.bias":         values([]int{3}, 0.1, 0.2, -0.3),
		"conv_b.weight":   testutil.Random(rng, -1, 1, 3, 2, 1, 1),
		"fc.weight":       testutil.Random(rng, -1, 1, 4, 6),
		"fc.bias":         testutil.Random(rng, -1, 1, 4),
	}
}

var mixedRanges = map[string][2]float64{
	"x":      {-1, 1},
	"conv":   {-3, 2.5},
	"bn":     {-4, 7},
	"conv_b": {0, 1.5},
	"sum":    {0, 7.5},
	"cat":    {0, 7},
	"fc":     {-2, 3},
}

func quantizeMixed(t *testing.T, opt quant.Options) (*format.QModel, *quant.Summary) {
	t.Helper()
	m := buildModel(t, mixedModel, mixedParams())
	q, sum, err := quant.Quantize(m, tableFor(m, mixedRanges), opt)
	if err != nil {
		t.Fatalf("Quantize: %v", err)
	}
	return q, sum
}

func paramsOf(qt *format.QTensor) affine.Params {
	return affine.Params{Scale: qt.Scale, ZeroPoint: qt.ZeroPoint, QMin: qt.QMin, QMax: qt.QMax}
}

func multiplierNear(t *testing.T, what string, mult, shift int32, want float64) {
	t.Helper()
	got := affine.Multiplier{Mult: mult, Shift: shift}.Float64()
	if math.Abs(got-want) > want*1e-9 {
		t.Errorf("%s: multiplier %g, want %g", what, got, want)
	}
}

func TestQuantizeMixedGraph(t *testing.T) {
	q, sum := quantizeMixed(t, quant.Options{})

	if want := []string{"conv", "bn", "conv_b", "fc"}; !reflect.DeepEqual(sum.QuantizedLayers, want) {
		t.Errorf("quantized layers %v, want %v", sum.QuantizedLayers, want)
	}
	var names []string
	for _, n := range q.Nodes {
		names = append(names, n.Name)
	}
	if want := []string{"conv", "bn", "r6", "conv_b", "sum", "cat", "pool", "gap", "flat", "fc", "out"}; !reflect.DeepEqual(names, want) {
		t.Errorf("nodes %v, want %v (dropout dropped, identity output kept as a clip)", names, want)
	}
	if !reflect.DeepEqual(q.Outputs, []string{"out"}) {
		t.Errorf("outputs %v, want [out]", q.Outputs)
	}
	if got := node(t, q, "sum").Inputs; !reflect.DeepEqual(got, []string{"r6", "conv_b"}) {
		t.Errorf("add reads %v, want [r6 conv_b] (the dropout's input)", got)
	}

	bnOut := tensorOf(t, q, "bn")
	relu6 := node(t, q, "r6")
	if relu6.ClampMin != bnOut.ZeroPoint {
		t.Errorf("relu6 clamp min %d, want the zero point %d", relu6.ClampMin, bnOut.ZeroPoint)
	}
	if want := paramsOf(bnOut).Quantize(6); relu6.ClampMax != want {
		t.Errorf("relu6 clamp max %d, want quantize(6.0) = %d", relu6.ClampMax, want)
	}
	for _, name := range []string{"r6"} {
		if got := paramsOf(tensorOf(t, q, name)); got != paramsOf(bnOut) {
			t.Errorf("tensor %q has params %+v, want its input's %+v", name, got, paramsOf(bnOut))
		}
	}
	catOut := paramsOf(tensorOf(t, q, "cat"))
	for _, name := range []string{"pool", "gap", "flat"} {
		if got := paramsOf(tensorOf(t, q, name)); got != catOut {
			t.Errorf("tensor %q has params %+v, want the concat's %+v", name, got, catOut)
		}
	}
	if got := paramsOf(tensorOf(t, q, "out")); got != paramsOf(tensorOf(t, q, "fc")) {
		t.Errorf("identity output has params %+v, want fc's", got)
	}
	out := node(t, q, "out")
	if out.Op != "clip" || out.ClampMin != 0 || out.ClampMax != 255 {
		t.Errorf("identity output is %s [%d, %d], want clip [0, 255]", out.Op, out.ClampMin, out.ClampMax)
	}

	convB := node(t, q, "conv_b")
	if got := tensorOf(t, q, "conv_b").ZeroPoint; convB.ClampMin != got {
		t.Errorf("fused relu clamp min %d, want the zero point %d", convB.ClampMin, got)
	}
	if got := array[int32](t, q, "conv_b.bias"); !slices.Equal(got, []int32{0, 0, 0}) {
		t.Errorf("a conv2d without bias has bias %v, want zeros", got)
	}
}

func TestQuantizeAddConcatMultipliers(t *testing.T) {
	q, _ := quantizeMixed(t, quant.Options{})
	s := func(name string) float64 { return float64(tensorOf(t, q, name).Scale) }

	sum := node(t, q, "sum")
	twiceMax := 2 * math.Max(s("r6"), s("conv_b"))
	inMult := array[int32](t, q, sum.InputMult)
	inShift := array[int32](t, q, sum.InputShift)
	multiplierNear(t, "add input 0", inMult[0], inShift[0], s("r6")/twiceMax)
	multiplierNear(t, "add input 1", inMult[1], inShift[1], s("conv_b")/twiceMax)
	multiplierNear(t, "add output", array[int32](t, q, sum.Mult)[0], array[int32](t, q, sum.Shift)[0], twiceMax/(math.Ldexp(1, quant.AddLeftShift)*s("sum")))
	if q.AddLeftShift != quant.AddLeftShift {
		t.Errorf("add_left_shift %d, want %d", q.AddLeftShift, quant.AddLeftShift)
	}

	cat := node(t, q, "cat")
	catMult := array[int32](t, q, cat.InputMult)
	catShift := array[int32](t, q, cat.InputShift)
	// concat shifts x - z left by AddLeftShift too, so its multipliers carry 2^-AddLeftShift.
	shifted := math.Ldexp(1, -quant.AddLeftShift)
	multiplierNear(t, "concat input 0", catMult[0], catShift[0], s("sum")/s("cat")*shifted)
	multiplierNear(t, "concat input 1", catMult[1], catShift[1], s("r6")/s("cat")*shifted)

	fc := node(t, q, "fc")
	scales := array[float32](t, q, fc.WeightScale)
	mults := array[int32](t, q, fc.Mult)
	shifts := array[int32](t, q, fc.Shift)
	for c := range mults {
		multiplierNear(t, "fc channel", mults[c], shifts[c], s("flat")*float64(scales[c])/s("fc"))
	}
}

func TestQuantizeStandaloneBatchNorm(t *testing.T) {
	q, _ := quantizeMixed(t, quant.Options{})
	params := mixedParams()
	bn := node(t, q, "bn")

	if bn.Op != "conv2d" || bn.Groups != 3 {
		t.Fatalf("batchnorm became %s with groups %d, want a depthwise conv2d with groups 3", bn.Op, bn.Groups)
	}
	if got := q.Arrays[bn.Weight].Shape; !reflect.DeepEqual(got, []int{3, 1, 1, 1}) {
		t.Errorf("weight shape %v, want [3 1 1 1]", got)
	}
	weights := array[int8](t, q, bn.Weight)
	scales := array[float32](t, q, bn.WeightScale)
	biases := array[int32](t, q, bn.Bias)
	sIn := float64(tensorOf(t, q, "conv").Scale)

	for c := range 3 {
		gamma := float64(params["bn.weight"].Data[c])
		a := gamma / math.Sqrt(float64(params["bn.running_var"].Data[c])+1e-5)
		b := float64(params["bn.bias"].Data[c]) - float64(params["bn.running_mean"].Data[c])*a

		if want := int8(127 * math.Copysign(1, gamma)); weights[c] != want {
			t.Errorf("channel %d: weight %d, want %d", c, weights[c], want)
		}
		if got := float64(weights[c]) * float64(scales[c]); math.Abs(got-a) > math.Abs(a)*1e-6 {
			t.Errorf("channel %d: dequantized weight %g, want gamma/sqrt(var+eps) = %g", c, got, a)
		}
		if got := float64(biases[c]) * sIn * float64(scales[c]); math.Abs(got-b) > sIn*float64(scales[c]) {
			t.Errorf("channel %d: dequantized bias %g, want %g within one step", c, got, b)
		}
	}
}

func TestQuantizeBiasOverflow(t *testing.T) {
	// Input range [0, 127.5] gives input scale 0.5. Channel 0's weights are so small that its
	// scale is affine.MinScale, 2^-23, so bias 2000 needs 2000 / (0.5 * 2^-23) = 3.36e10.
	params := map[string]*tensor.Tensor{
		"fc.weight": values([]int{2, 4}, 1e-8, -1e-8, 5e-9, 0, 0.5, -0.25, 1, 0.75),
		"fc.bias":   values([]int{2}, 2000, 0.1),
	}
	m := buildModel(t, linearModel, params)
	table := tableFor(m, map[string][2]float64{"x": {0, 127.5}, "fc": {-10, 10}})

	_, _, err := quant.Quantize(m, table, quant.Options{})
	if err == nil {
		t.Fatal("Quantize accepted a bias that does not fit int32")
	}
	for _, want := range []string{`layer "fc"`, "channel 0", "is 2000,", "33554432000", "does not fit int32", "--widen-weight-scale"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}

	q, sum, err := quant.Quantize(m, table, quant.Options{WidenWeightScale: true})
	if err != nil {
		t.Fatalf("Quantize with WidenWeightScale: %v", err)
	}
	if len(sum.WidenedChannels) != 1 {
		t.Fatalf("widened channels %+v, want one", sum.WidenedChannels)
	}
	w := sum.WidenedChannels[0]
	if w.Layer != "fc" || w.Channel != 0 || w.Bias != 2000 || w.AllZero {
		t.Errorf("widened channel %+v, want layer fc, channel 0, bias 2000", w)
	}
	if w.ScaleBefore != affine.MinScale {
		t.Errorf("scale before widening %g, want MinScale %g", w.ScaleBefore, affine.MinScale)
	}
	if minScale := 2000 / (0.5 * float64(affine.BiasWidenLimit)); float64(w.ScaleAfter) < minScale {
		t.Errorf("scale after widening %g, want at least %g", w.ScaleAfter, minScale)
	}

	scales := array[float32](t, q, "fc.weight_scale")
	if scales[0] != w.ScaleAfter {
		t.Errorf("stored weight scale %g, want the widened %g", scales[0], w.ScaleAfter)
	}
	if b := array[int32](t, q, "fc.bias")[0]; b > affine.BiasWidenLimit || b < 1<<29 {
		t.Errorf("bias integer %d, want at most 2^30 and close to it", b)
	}
	wq := array[int8](t, q, "fc.weight")
	if wq[0] != 0 {
		t.Errorf("requantized weight %d, want 0 at the widened scale", wq[0])
	}
	if !slices.Equal(wq[4:], []int8{63, -32, 127, 95}) {
		t.Errorf("channel 1 weights %v, want [63 -32 127 95] unchanged by channel 0's widening", wq[4:])
	}
}

func TestQuantizeAllZeroChannel(t *testing.T) {
	cases := []struct {
		name    string
		bias    float32
		widened bool
	}{
		{name: "small bias", bias: 0.2, widened: false},
		{name: "large bias", bias: 1e4, widened: true},
	}
	for _, c := range cases {
		for _, granularity := range []quant.Granularity{quant.PerChannel, quant.PerTensor} {
			t.Run(c.name+"/"+string(granularity), func(t *testing.T) {
				weight := values([]int{2, 4}, 0, 0, 0, 0, 0, 0, 0, 0)
				if granularity == quant.PerChannel {
					weight = values([]int{2, 4}, 0, 0, 0, 0, 0.5, -0.25, 1, 0.75)
				}
				m := buildModel(t, linearModel, map[string]*tensor.Tensor{"fc.weight": weight, "fc.bias": values([]int{2}, c.bias, 0.1)})
				table := tableFor(m, map[string][2]float64{"x": {-1, 1}, "fc": {-1e4, 1e4}})

				q, sum, err := quant.Quantize(m, table, quant.Options{Weights: granularity})
				if err != nil {
					t.Fatalf("Quantize: %v", err)
				}
				scale := array[float32](t, q, "fc.weight_scale")[0]
				if !(scale > 0) || math.IsInf(float64(scale), 0) {
					t.Errorf("all-zero channel scale %g, want finite and positive", scale)
				}
				for i, v := range array[int8](t, q, "fc.weight")[:4] {
					if v != 0 {
						t.Errorf("weight %d is %d, want 0", i, v)
					}
				}
				mult := affine.Multiplier{Mult: array[int32](t, q, "fc.mult")[0], Shift: array[int32](t, q, "fc.shift")[0]}
				if err := mult.Validate(); err != nil {
					t.Errorf("multiplier of the zero channel: %v", err)
				}
				if got := len(sum.WidenedChannels) > 0; got != c.widened {
					t.Errorf("widened %v (%+v), want %v", got, sum.WidenedChannels, c.widened)
				}
				if c.widened && !sum.WidenedChannels[0].AllZero {
					t.Errorf("widened channel %+v is not marked all-zero", sum.WidenedChannels[0])
				}
				bias := float64(array[int32](t, q, "fc.bias")[0]) * float64(tensorOf(t, q, "x").Scale) * float64(scale)
				if math.Abs(bias-float64(c.bias)) > math.Abs(float64(c.bias))*1e-6 {
					t.Errorf("dequantized bias %g, want %g", bias, c.bias)
				}
			})
		}
	}
}

func TestQuantizeRangesExcludingZero(t *testing.T) {
	cases := []struct {
		name        string
		activations quant.ActivationType
		alpha, beta float64
		zeroPoint   int32
	}{
		{name: "positive uint8", activations: quant.Uint8, alpha: 2, beta: 5, zeroPoint: 0},
		{name: "negative uint8", activations: quant.Uint8, alpha: -5, beta: -2, zeroPoint: 255},
		{name: "positive int8", activations: quant.Int8, alpha: 2, beta: 5, zeroPoint: -128},
		{name: "negative int8", activations: quant.Int8, alpha: -5, beta: -2, zeroPoint: 127},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			params := map[string]*tensor.Tensor{
				"fc.weight": values([]int{2, 4}, 0.5, 1, 0.75, 0.6, -0.5, -1, -0.75, -0.6),
				"fc.bias":   values([]int{2}, 0, 0),
			}
			m := buildModel(t, linearModel, params)
			table := tableFor(m, map[string][2]float64{"x": {c.alpha, c.beta}, "fc": {c.alpha, c.beta}})
			q, _, err := quant.Quantize(m, table, quant.Options{Activations: c.activations})
			if err != nil {
				t.Fatalf("Quantize: %v", err)
			}

			x := tensorOf(t, q, "x")
			if x.ZeroPoint != c.zeroPoint {
				t.Errorf("zero point %d, want %d", x.ZeroPoint, c.zeroPoint)
			}
			if want := 5.0 / float64(x.QMax-x.QMin); math.Abs(float64(x.Scale)-want) > want*1e-6 {
				t.Errorf("scale %g, want %g for the range widened to contain 0", x.Scale, want)
			}
			if got := paramsOf(x).Dequantize(x.ZeroPoint); got != 0 {
				t.Errorf("the zero point dequantizes to %g, want 0", got)
			}

			// All-positive and all-negative weight channels are symmetric too.
			w := array[int8](t, q, "fc.weight")
			if want := []int8{63, 127, 95, 76, -63, -127, -95, -76}; !slices.Equal(w, want) {
				t.Errorf("weights %v, want %v", w, want)
			}
		})
	}
}

func TestQuantizeFusedRelu6Clamp(t *testing.T) {
	doc := strings.Replace(linearModel, `"inputs": ["x"],`, `"inputs": ["x"], "attrs": {"activation": "relu6"},`, 1)
	m := buildModel(t, doc, map[string]*tensor.Tensor{"fc.weight": filled(0.5, 2, 4), "fc.bias": filled(0, 2)})
	q, _, err := quant.Quantize(m, tableFor(m, map[string][2]float64{"x": {-1, 1}, "fc": {0, 8}}), quant.Options{})
	if err != nil {
		t.Fatalf("Quantize: %v", err)
	}

	fc := node(t, q, "fc")
	if fc.ClampMin != 0 {
		t.Errorf("clamp min %d, want the zero point 0", fc.ClampMin)
	}
	if fc.ClampMax != 191 {
		t.Errorf("clamp max %d, want quantize(6.0) = round(6 / (8/255)) = 191", fc.ClampMax)
	}
	if fc.Activation != "relu6" {
		t.Errorf("activation %q, want relu6", fc.Activation)
	}
}

func TestQuantizeBits(t *testing.T) {
	q, _ := quantizeMixed(t, quant.Options{Bits: 4})
	for _, qt := range q.Tensors {
		if qt.QMin != 0 || qt.QMax != 15 || qt.Bits != 4 {
			t.Errorf("tensor %q: range [%d, %d] with %d bits, want [0, 15] with 4", qt.Name, qt.QMin, qt.QMax, qt.Bits)
		}
	}
	for _, name := range []string{"conv.weight", "bn.weight", "conv_b.weight", "fc.weight"} {
		for _, v := range array[int8](t, q, name) {
			if v < -7 || v > 7 {
				t.Errorf("%s has %d, outside [-7, 7]", name, v)
				break
			}
		}
	}
	if q.Scheme.WeightBits != 4 || q.Scheme.ActivationBits != 4 {
		t.Errorf("scheme bits %d/%d, want 4/4", q.Scheme.WeightBits, q.Scheme.ActivationBits)
	}
}

func TestQuantizePerTensorWeights(t *testing.T) {
	q, _ := quantizeMixed(t, quant.Options{Weights: quant.PerTensor})
	fc := node(t, q, "fc")
	if n := len(array[float32](t, q, fc.WeightScale)); n != 1 {
		t.Errorf("per-tensor weight has %d scales, want 1", n)
	}
	mults := array[int32](t, q, fc.Mult)
	for c := range mults {
		if mults[c] != mults[0] {
			t.Errorf("per-tensor multipliers differ: %v", mults)
			break
		}
	}
	if q.Scheme.WeightPerChannel {
		t.Error("scheme says per-channel weights")
	}
}

func TestQuantizePow2Scales(t *testing.T) {
	q, _ := quantizeMixed(t, quant.Options{Pow2Scales: true, Activations: quant.Int8, SymmetricActivations: true})

	for _, qt := range q.Tensors {
		if !isPow2(float64(qt.Scale)) {
			t.Errorf("tensor %q: scale %g is not a power of two", qt.Name, qt.Scale)
		}
		if qt.ZeroPoint != 0 {
			t.Errorf("tensor %q: zero point %d, want 0 for symmetric int8", qt.Name, qt.ZeroPoint)
		}
		n, _ := paramsOf(&qt).Pow2Exponent()
		if want := "Q" + itoa(7-n) + "." + itoa(n); qt.QFormat != want {
			t.Errorf("tensor %q: qformat %q, want %q", qt.Name, qt.QFormat, want)
		}
	}
	for name, a := range q.Arrays {
		switch {
		case strings.HasSuffix(name, ".weight_scale"):
			for _, s := range a.Data.([]float32) {
				if !isPow2(float64(s)) {
					t.Errorf("%s has %g, not a power of two", name, s)
				}
			}
		case strings.HasSuffix(name, "mult"):
			for _, m := range a.Data.([]int32) {
				if m != 1<<30 && m != 0 {
					t.Errorf("%s has mantissa %d, want 2^30 (a pure shift)", name, m)
				}
			}
		}
	}
	if !q.Scheme.Pow2Scales {
		t.Error("scheme does not record pow2 scales")
	}
}

func TestQuantizePow2UnsignedKeepsZeroPoints(t *testing.T) {
	q, _ := quantizeMixed(t, quant.Options{Pow2Scales: true})
	x := tensorOf(t, q, "x")
	if !isPow2(float64(x.Scale)) {
		t.Errorf("scale %g is not a power of two", x.Scale)
	}
	if x.Scale != 0x1p-6 {
		t.Errorf("scale %g, want 2/255 rounded up to 2^-6", x.Scale)
	}
	if x.ZeroPoint != 64 {
		t.Errorf("zero point %d, want 64 for the range [-1, 1] with scale 2^-6", x.ZeroPoint)
	}
	if x.QFormat != "" {
		t.Errorf("qformat %q, want none because the zero point is not 0", x.QFormat)
	}
}

func itoa(n int) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + itoa(n%10)
}

func TestQuantizeExclude(t *testing.T) {
	q, sum := quantizeMixed(t, quant.Options{Exclude: []string{"conv_b"}})
	n := node(t, q, "conv_b")
	if !n.Float {
		t.Fatal("the excluded layer is not marked float")
	}

	if n.Weight != "" || n.Mult != "" {
		t.Errorf("the excluded layer names integer arrays %q and %q", n.Weight, n.Mult)
	}

	w := q.Arrays[n.FloatParams["weight"]]
	if w == nil || w.DType != format.DTypeF32 {
		t.Fatalf("float weight array %v, want F32", w)
	}
	if want := mixedParams()["conv_b.weight"].Data; !slices.Equal(w.Data.([]float32), want) {
		t.Errorf("float weights differ from the model's")
	}
	if _, ok := n.FloatParams["bias"]; ok {
		t.Errorf("a layer without bias got a float bias")
	}

	if n.ActMin == nil || *n.ActMin != 0 || n.ActMax != nil {
		t.Errorf("act bounds %v %v, want min 0 and no max for relu", n.ActMin, n.ActMax)
	}
	if !reflect.DeepEqual(sum.ExcludedLayers, []string{"conv_b"}) || !reflect.DeepEqual(q.Scheme.Excluded, []string{"conv_b"}) {
		t.Errorf("excluded %v in the summary and %v in the scheme, want [conv_b]", sum.ExcludedLayers, q.Scheme.Excluded)
	}
	if slices.Contains(sum.QuantizedLayers, "conv_b") {
		t.Errorf("quantized layers %v include the excluded one", sum.QuantizedLayers)
	}

	if _, err := format.EncodeQModel(q); err != nil {
		t.Errorf("the model with a float layer does not encode: %v", err)
	}
}

func TestQuantizeExcludeErrors(t *testing.T) {
	cases := []struct {
		name    string
		exclude []string
		expect  []string
	}{
		{name: "unknown name", exclude: []string{"nope"}, expect: []string{`"nope"`, "not a node", "conv, conv_b, fc"}},
		{name: "not a layer", exclude: []string{"pool"}, expect: []string{`"pool"`, "maxpool2d", "only conv2d and linear"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := buildModel(t, mixedModel, mixedParams())
			_, _, err := quant.Quantize(m, tableFor(m, mixedRanges), quant.Options{Exclude: c.exclude})
			if err == nil {
				t.Fatal("Quantize accepted the exclude list")
			}
			for _, want := range c.expect {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestQuantizeStaleTable(t *testing.T) {
	m := buildModel(t, mixedModel, mixedParams())
	table := tableFor(m, mixedRanges)
	table.ModelHash = "sha256:" + strings.Repeat("0", 64)

	_, _, err := quant.Quantize(m, table, quant.Options{})
	if err == nil {
		t.Fatal("Quantize accepted a stale table")
	}
	for _, want := range []string{"stale", table.ModelHash, m.Hash(), "re-run qtool calibrate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}

	if _, _, err := quant.Quantize(m, table, quant.Options{AllowStale: true}); err != nil {
		t.Errorf("Quantize with AllowStale: %v", err)
	}
}

func TestQuantizeMissingTensor(t *testing.T) {
	for _, name := range []string{"x", "conv", "sum", "cat", "fc"} {
		t.Run(name, func(t *testing.T) {
			m := buildModel(t, mixedModel, mixedParams())
			table := tableFor(m, mixedRanges)
			delete(table.Tensors, name)

			_, _, err := quant.Quantize(m, table, quant.Options{})
			if err == nil {
				t.Fatal("Quantize accepted a table without the tensor")
			}
			for _, want := range []string{`tensor "` + name + `"`, "missing from the calibration table", "re-run qtool calibrate"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestQuantizeAccumulatorHeadroom(t *testing.T) {
	// 140000 products x 128 x 127 = 2.28e9 > 2^31 - 1.
	const k = 140000
	doc := strings.Replace(linearModel, `[-1, 4]`, `[-1, 140000]`, 1)
	m := buildModel(t, doc, map[string]*tensor.Tensor{"fc.weight": filled(1, 1, k), "fc.bias": filled(0, 1)})
	_, _, err := quant.Quantize(m, tableFor(m, map[string][2]float64{"x": {-1, 1}, "fc": {-1, 1}}), quant.Options{})
	if err == nil {
		t.Fatal("Quantize accepted a layer whose accumulator can overflow")
	}
	for _, want := range []string{`layer "fc"`, "channel 0", "overflow the int32 accumulator", "140000 products", "max |x - z| 128", "max |w| 127"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestQuantizeInvalidOptions(t *testing.T) {
	cases := []struct {
		name   string
		opt    quant.Options
		expect string
	}{
		{name: "weights", opt: quant.Options{Weights: "per-row"}, expect: `"per-row"`},
		{name: "activations", opt: quant.Options{Activations: "uint16"}, expect: `"uint16"`},
		{name: "bits high", opt: quant.Options{Bits: 9}, expect: "bit width 9"},
		{name: "bits low", opt: quant.Options{Bits: 1}, expect: "bit width 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := buildModel(t, mixedModel, mixedParams())
			_, _, err := quant.Quantize(m, tableFor(m, mixedRanges), c.opt)
			if err == nil || !strings.Contains(err.Error(), c.expect) {
				t.Errorf("error %v, want one containing %q", err, c.expect)
			}
		})
	}
}

func TestQuantizeDeterministic(t *testing.T) {
	opts := []quant.Options{{}, {Pow2Scales: true}, {Weights: quant.PerTensor, Activations: quant.Int8}, {Exclude: []string{"fc"}}}
	for _, opt := range opts {
		first, _ := quantizeMixed(t, opt)
		second, _ := quantizeMixed(t, opt)
		a, err := format.EncodeQModel(first)
		if err != nil {
			t.Fatalf("EncodeQModel: %v", err)
		}
		b, err := format.EncodeQModel(second)
		if err != nil {
			t.Fatalf("EncodeQModel: %v", err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("options %+v: two runs gave different files", opt)
		}
	}
}

func TestQuantizeLeavesInputsUnchanged(t *testing.T) {
	m := buildModel(t, mixedModel, mixedParams())
	table := tableFor(m, mixedRanges)
	hash := m.Hash()
	entries := len(table.Tensors)

	if _, _, err := quant.Quantize(m, table, quant.Options{WidenWeightScale: true, Exclude: []string{"fc"}}); err != nil {
		t.Fatalf("Quantize: %v", err)
	}
	if m.Hash() != hash {
		t.Error("Quantize changed the model")
	}
	if len(table.Tensors) != entries {
		t.Error("Quantize changed the table")
	}
}

func TestQuantizeRoundTripsThroughFile(t *testing.T) {
	q, _ := quantizeMixed(t, quant.Options{Exclude: []string{"conv_b"}})
	data, err := format.EncodeQModel(q)
	if err != nil {
		t.Fatalf("EncodeQModel: %v", err)
	}
	got, err := format.DecodeQModel(data)
	if err != nil {
		t.Fatalf("DecodeQModel: %v", err)
	}
	if !reflect.DeepEqual(got, q) {
		t.Error("the quantized model differs after writing and reading it")
	}
}

func TestQuantizeMethodRecorded(t *testing.T) {
	m := buildModel(t, mixedModel, mixedParams())
	table := tableFor(m, mixedRanges)
	e := table.Tensors["x"]
	e.Method, e.Settings = calib.MethodPercentile, calib.DefaultSettings(calib.MethodPercentile)
	table.Tensors["x"] = e

	q, _, err := quant.Quantize(m, table, quant.Options{})
	if err != nil {
		t.Fatalf("Quantize: %v", err)
	}
	if q.Scheme.CalibMethod != "minmax,percentile" {
		t.Errorf("calib method %q, want minmax,percentile", q.Scheme.CalibMethod)
	}
	if q.SourceHash != m.Hash() {
		t.Errorf("source hash %q, want the model's %q", q.SourceHash, m.Hash())
	}
}
