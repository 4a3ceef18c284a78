package qinfer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/internal/affine"
	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// Each test here runs one integer op on seeded random data and compares its integers with a
// float64 reference of the same affine arithmetic. The reference dequantizes the input
// integers, computes in float64, quantizes with the output parameters (round half to even)
// and clamps.

var bothDTypes = []bool{false, true}

// quantizedInput is a random input tensor with its parameters, integers and real values.
type quantizedInput struct {
	x    *tensor.Tensor
	p    affine.Params
	q    []int32
	real []float64
}

func newQuantizedInput(t *testing.T, rng *rand.Rand, lo, hi float32, signed bool, shape ...int) quantizedInput {
	t.Helper()
	x := randomTensor(rng, lo, hi, shape...)
	in := quantizedInput{x: x, p: rangeParams(t, float64s(x.Data), signed)}
	in.q = quantizeInts(x.Data, in.p)
	in.real = realValues(in.q, in.p)
	return in
}

func TestLinearMatchesFloat64(t *testing.T) {
	for _, signed := range bothDTypes {
		for _, act := range []string{"", "relu"} {
			t.Run(caseName(signed, "act "+act), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(11, 1))
				const n, k, o = 5, 70, 19
				in := newQuantizedInput(t, rng, -2, 3, signed, n, k)
				w := randomTensor(rng, -0.3, 0.3, o, k)
				bias := randomTensor(rng, -0.5, 0.5, o)
				lw := quantizeLayer(t, w, bias, in.p.Scale)

				realOut := make([]float64, n*o)
				for s := range n {
					for j := range o {
						sum := lw.realBias[j]
						for i := range k {
							sum += in.real[s*k+i] * lw.realW[j*k+i]
						}
						realOut[s*o+j] = sum
					}
				}
				pOut := rangeParams(t, applyActivation(act, realOut), signed)
				lo, hi := activationClamp(act, pOut)

				q := newQModel()
				addInput(q, "x", in.x.Shape, in.p, signed)
				node := &format.QNode{Name: "fc", Op: "linear", Inputs: []string{"x"}, ClampMin: lo, ClampMax: hi}
				addLayerArrays(t, q, node, lw, w.Shape, in.p.Scale, pOut.Scale)
				q.Nodes = append(q.Nodes, node)
				addTensor(q, "fc", []int{1, o}, pOut, signed)
				q.Outputs = []string{"fc"}

				res := runModel(t, q, map[string]*tensor.Tensor{"x": in.x}, 2)
				checkWithinOneStep(t, "linear", res.Integers["fc"].Data, quantizeReal(realOut, pOut, lo, hi))
			})
		}
	}
}

// addMultipliersFor returns the real multipliers of add for input scales sa, sb and output
// scale so, with inputs rescaled to s / (2 max(sa, sb)) before the 2^leftShift headroom.
func addMultipliersFor(sa, sb, so float32, leftShift int) (inputs []float64, output float64) {
	twiceMax := 2 * math.Max(float64(sa), float64(sb))
	inputs = []float64{float64(sa) / twiceMax, float64(sb) / twiceMax}
	output = twiceMax / (math.Ldexp(1, leftShift) * float64(so))
	return inputs, output
}

func TestAddMatchesFloat64(t *testing.T) {
	for _, signed := range bothDTypes {
		for _, act := range []string{"", "relu"} {
			t.Run(caseName(signed, "act "+act), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(12, 1))
				shape := []int{3, 5, 6, 7}
				a := newQuantizedInput(t, rng, -1, 3, signed, shape...)
				b := newQuantizedInput(t, rng, -6, 0.5, signed, shape...)

				realOut := make([]float64, len(a.real))
				for i := range realOut {
					realOut[i] = a.real[i] + b.real[i]
				}
				pOut := rangeParams(t, applyActivation(act, realOut), signed)
				lo, hi := activationClamp(act, pOut)

				q := newQModel()
				addInput(q, "a", shape, a.p, signed)
				addInput(q, "b", shape, b.p, signed)
				node := &format.QNode{Name: "sum", Op: "add", Inputs: []string{"a", "b"}, ClampMin: lo, ClampMax: hi}
				inMult, outMult := addMultipliersFor(a.p.Scale, b.p.Scale, pOut.Scale, q.AddLeftShift)
				node.InputMult, node.InputShift = addMultipliers(t, q, "sum.input", inMult)
				node.Mult, node.Shift = addMultipliers(t, q, "sum", []float64{outMult})
				q.Nodes = append(q.Nodes, node)
				addTensor(q, "sum", shape, pOut, signed)
				q.Outputs = []string{"sum"}

				res := runModel(t, q, map[string]*tensor.Tensor{"a": a.x, "b": b.x}, 2)
				checkWithinOneStep(t, "add", res.Integers["sum"].Data, quantizeReal(realOut, pOut, lo, hi))
			})
		}
	}
}

func TestConcatMatchesFloat64(t *testing.T) {
	for _, signed := range bothDTypes {
		for _, rank := range []int{4, 2} {
			t.Run(caseName(signed, fmt.Sprintf("rank %d", rank)), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(13, uint64(rank)))
				const n = 3
				channels := []int{3, 5, 2}
				inner := []int{4, 5}
				if rank == 2 {
					inner = nil
				}
				shapeOf := func(c int) []int { return append([]int{n, c}, inner...) }
				pOut := chooseParams(t, -3, 4, signed)

				// Input 0 has the output's parameters and is copied. The others are rescaled,
				// and input 2 has a range wider than the output's, so that it saturates.
				inputs := []quantizedInput{}
				ranges := [][2]float32{{-3, 4}, {-1, 1}, {-5, 6}}
				for i, c := range channels {
					in := newQuantizedInput(t, rng, ranges[i][0], ranges[i][1], signed, shapeOf(c)...)
					if i == 0 {
						in.p = pOut
						in.q = quantizeInts(in.x.Data, in.p)
						in.real = realValues(in.q, in.p)
					}
					inputs = append(inputs, in)
				}

				q := newQModel()
				node := &format.QNode{Name: "cat", Op: "concat", ClampMin: pOut.QMin, ClampMax: pOut.QMax}
				feeds := map[string]*tensor.Tensor{}
				var mults []float64
				for i, in := range inputs {
					name := fmt.Sprintf("in%d", i)
					addInput(q, name, in.x.Shape, in.p, signed)
					node.Inputs = append(node.Inputs, name)
					feeds[name] = in.x
					mults = append(mults, float64(in.p.Scale)/float64(pOut.Scale)/float64(int64(1)<<q.AddLeftShift))
				}
				node.InputMult, node.InputShift = addMultipliers(t, q, "cat.input", mults)
				q.Nodes = append(q.Nodes, node)
				total := 0
				for _, c := range channels {
					total += c
				}
				addTensor(q, "cat", shapeOf(total), pOut, signed)
				q.Outputs = []string{"cat"}

				// The reference concatenates real NCHW values sample by sample.
				per := tensor.Size(inner)
				var realOut []float64
				for s := range n {
					for i, c := range channels {
						realOut = append(realOut, inputs[i].real[s*c*per:(s+1)*c*per]...)
					}
				}
				res := runModel(t, q, feeds, 2)
				got := res.Integers["cat"].Data
				want := quantizeReal(realOut, pOut, pOut.QMin, pOut.QMax)
				checkWithinOneStep(t, "concat", got, want)

				// The copied input matches exactly.
				for s := range n {
					copied := got[s*total*per:][:channels[0]*per]
					checkEqual(t, "copied input", copied, inputs[0].q[s*channels[0]*per:][:channels[0]*per])
				}
			})
		}
	}
}

// poolCase is one pooling node over an [n, c, h, w] input.
type poolCase struct {
	name       string
	op         string
	kernel     [2]int
	stride     [2]int
	padding    [4]int
	includePad bool
}

// poolReal pools real NCHW values in float64: max or mean of the in-bounds cells, or of the
// whole window with padded cells read as 0 when includePad.
func poolReal(pc poolCase, x []float64, n, c, h, w int) ([]float64, int, int) {
	kh, kw, sh, sw := pc.kernel[0], pc.kernel[1], pc.stride[0], pc.stride[1]
	if pc.op == "global_avgpool" {
		kh, kw, sh, sw = h, w, 1, 1
	}
	oh := (h+pc.padding[0]+pc.padding[2]-kh)/sh + 1
	ow := (w+pc.padding[1]+pc.padding[3]-kw)/sw + 1
	out := make([]float64, 0, n*c*oh*ow)
	for p := range n * c {
		plane := x[p*h*w : (p+1)*h*w]
		for oy := range oh {
			for ox := range ow {
				best, sum, cells := math.Inf(-1), 0.0, 0
				for ky := range kh {
					for kx := range kw {
						iy, ix := oy*sh-pc.padding[0]+ky, ox*sw-pc.padding[1]+kx
						if iy < 0 || iy >= h || ix < 0 || ix >= w {
							continue
						}
						v := plane[iy*w+ix]
						best, sum, cells = max(best, v), sum+v, cells+1
					}
				}
				switch {
				case pc.op == "maxpool2d":
					out = append(out, best)
				case pc.includePad:
					out = append(out, sum/float64(kh*kw))
				default:
					out = append(out, sum/float64(cells))
				}
			}
		}
	}
	return out, oh, ow
}

func TestPoolsMatchFloat64(t *testing.T) {
	cases := []poolCase{
		{name: "max 2x2", op: "maxpool2d", kernel: [2]int{2, 2}, stride: [2]int{2, 2}},
		{name: "max 3x3 padded", op: "maxpool2d", kernel: [2]int{3, 3}, stride: [2]int{2, 2}, padding: [4]int{1, 1, 1, 1}},
		{name: "avg 2x2", op: "avgpool2d", kernel: [2]int{2, 2}, stride: [2]int{2, 2}},
		{name: "avg 3x3 padded with pad", op: "avgpool2d", kernel: [2]int{3, 3}, stride: [2]int{1, 2}, padding: [4]int{1, 1, 1, 1}, includePad: true},
		{name: "avg 3x3 padded without pad", op: "avgpool2d", kernel: [2]int{3, 3}, stride: [2]int{2, 1}, padding: [4]int{1, 0, 1, 1}},
		{name: "global", op: "global_avgpool"},
	}
	for _, signed := range bothDTypes {
		for _, pc := range cases {
			t.Run(caseName(signed, pc.name), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(14, 1))
				const n, c, h, w = 3, 5, 9, 8
				in := newQuantizedInput(t, rng, -2, 3, signed, n, c, h, w)
				realOut, oh, ow := poolReal(pc, in.real, n, c, h, w)

				q := newQModel()
				addInput(q, "x", in.x.Shape, in.p, signed)
				q.Nodes = append(q.Nodes, &format.QNode{
					Name: "pool", Op: pc.op, Inputs: []string{"x"}, Kernel: pc.kernel, Stride: pc.stride,
					Padding: pc.padding, CountIncludePad: pc.includePad, ClampMin: in.p.QMin, ClampMax: in.p.QMax,
				})
				addTensor(q, "pool", []int{1, c, oh, ow}, in.p, signed)
				q.Outputs = []string{"pool"}

				res := runModel(t, q, map[string]*tensor.Tensor{"x": in.x}, 2)
				got := res.Integers["pool"].Data
				want := quantizeReal(realOut, in.p, in.p.QMin, in.p.QMax)
				if pc.op == "maxpool2d" {
					checkEqual(t, "maxpool", got, want)
				} else {
					checkWithinOneStep(t, pc.op, got, want)
				}
			})
		}
	}
}

// TestAveragePoolRoundsHalfUp pins the rounding of a mean that lies exactly between two
// integers: floor((sum + count/2) / count) rounds it up, also below the zero point.
func TestAveragePoolRoundsHalfUp(t *testing.T) {
	for _, signed := range bothDTypes {
		t.Run(dtypeName(signed), func(t *testing.T) {
			p := affine.Params{Scale: 1, ZeroPoint: 0, QMin: 0, QMax: 255}
			if signed {
				p = affine.Params{Scale: 1, ZeroPoint: 0, QMin: -128, QMax: 127}
			}
			// Two cells per window: (3 + 4) / 2 = 3.5 -> 4 and (-3 + -4) / 2 = -3.5 -> -3.
			values := []float32{3, 4, 10, 11}
			want := []int32{4, 11}
			if signed {
				values = []float32{3, 4, -3, -4}
				want = []int32{4, -3}
			}
			x, _ := tensor.FromData(values, 1, 1, 1, 4)
			q := newQModel()
			addInput(q, "x", x.Shape, p, signed)
			q.Nodes = append(q.Nodes, &format.QNode{Name: "pool", Op: "avgpool2d", Inputs: []string{"x"},
				Kernel: [2]int{1, 2}, Stride: [2]int{1, 2}, ClampMin: p.QMin, ClampMax: p.QMax})
			addTensor(q, "pool", []int{1, 1, 1, 2}, p, signed)
			q.Outputs = []string{"pool"}

			res := runModel(t, q, map[string]*tensor.Tensor{"x": x}, 1)
			checkEqual(t, "avgpool", res.Integers["pool"].Data, want)
		})
	}
}

func TestClampsMatchFloat64(t *testing.T) {
	cases := []struct {
		op     string
		lo, hi float64
	}{
		{"relu", 0, math.Inf(1)},
		{"relu6", 0, 6},
		{"clip", -0.5, 1.25},
	}
	for _, signed := range bothDTypes {
		for _, tc := range cases {
			t.Run(caseName(signed, tc.op), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(15, 1))
				in := newQuantizedInput(t, rng, -3, 8, signed, 2, 3, 4, 5)
				lo, hi := in.p.QMin, in.p.QMax
				lo = max(lo, in.p.Quantize(float32(tc.lo)))
				if !math.IsInf(tc.hi, 1) {
					hi = min(hi, in.p.Quantize(float32(tc.hi)))
				}

				q := newQModel()
				addInput(q, "x", in.x.Shape, in.p, signed)
				q.Nodes = append(q.Nodes, &format.QNode{Name: "act", Op: tc.op, Inputs: []string{"x"}, ClampMin: lo, ClampMax: hi})
				addTensor(q, "act", in.x.Shape, in.p, signed)
				q.Outputs = []string{"act"}

				realOut := make([]float64, len(in.real))
				for i, v := range in.real {
					realOut[i] = min(max(v, tc.lo), tc.hi)
				}
				res := runModel(t, q, map[string]*tensor.Tensor{"x": in.x}, 1)
				checkWithinOneStep(t, tc.op, res.Integers["act"].Data, quantizeReal(realOut, in.p, in.p.QMin, in.p.QMax))
			})
		}
	}
}

func TestFlattenUsesNCHWOrder(t *testing.T) {
	for _, signed := range bothDTypes {
		t.Run(dtypeName(signed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(16, 1))
			in := newQuantizedInput(t, rng, -1, 1, signed, 2, 3, 4, 5)
			q := newQModel()
			addInput(q, "x", in.x.Shape, in.p, signed)
			q.Nodes = append(q.Nodes, &format.QNode{Name: "flat", Op: "flatten", Inputs: []string{"x"}, ClampMin: in.p.QMin, ClampMax: in.p.QMax})
			addTensor(q, "flat", []int{1, 60}, in.p, signed)
			q.Outputs = []string{"flat"}

			res := runModel(t, q, map[string]*tensor.Tensor{"x": in.x}, 1)
			// PyTorch's flatten of an NCHW tensor keeps the NCHW element order.
			checkEqual(t, "flatten", res.Integers["flat"].Data, in.q)
			if got := res.Outputs["flat"].Shape; !tensor.EqualShape(got, []int{2, 60}) {
				t.Errorf("output shape %v, want [2 60]", got)
			}
		})
	}
}

func TestFloatNodeMatchesFloat64(t *testing.T) {
	for _, signed := range bothDTypes {
		t.Run(dtypeName(signed), func(t *testing.T) {
			c := convCase{n: 2, c: 3, h: 7, w: 7, o: 4, kh: 3, kw: 3, padding: [4]int{1, 1, 1, 1}}.withDefaults()
			rng := rand.New(rand.NewPCG(17, 1))
			in := newQuantizedInput(t, rng, -1, 2, signed, c.n, c.c, c.h, c.w)
			w := randomTensor(rng, -0.5, 0.5, c.o, c.c, c.kh, c.kw)
			bias := randomTensor(rng, -0.3, 0.3, c.o)

			realOut := applyActivation("relu", convReal(c, in.real, float64s(w.Data), float64s(bias.Data)))
			pOut := rangeParams(t, realOut, signed)

			q := newQModel()
			addInput(q, "x", in.x.Shape, in.p, signed)
			zero := 0.0
			q.Nodes = append(q.Nodes, &format.QNode{
				Name: "conv", Op: "conv2d", Inputs: []string{"x"}, Float: true,
				Stride: c.stride, Padding: c.padding, Dilation: c.dilation, Groups: 1,
				FloatParams: map[string]string{"weight": "conv.float_weight", "bias": "conv.float_bias"},
				ActMin:      &zero, ClampMin: pOut.ZeroPoint, ClampMax: pOut.QMax,
			})
			addArray(q, "conv.float_weight", "F32", w.Shape, w.Data)
			addArray(q, "conv.float_bias", "F32", bias.Shape, bias.Data)
			addTensor(q, "conv", []int{1, c.o, c.outH(), c.outW()}, pOut, signed)
			q.Outputs = []string{"conv"}

			res := runModel(t, q, map[string]*tensor.Tensor{"x": in.x}, 2)
			checkWithinOneStep(t, "float conv", res.Integers["conv"].Data, quantizeReal(realOut, pOut, pOut.QMin, pOut.QMax))
		})
	}
}

func TestFloatAddWithOneInputIsRejected(t *testing.T) {
	p := affine.Params{Scale: 0.1, ZeroPoint: 0, QMin: 0, QMax: 255}
	q := newQModel()
	addInput(q, "x", []int{1, 4}, p, false)
	q.Nodes = append(q.Nodes, &format.QNode{Name: "sum", Op: "add", Inputs: []string{"x"}, Float: true, ClampMin: 0, ClampMax: 255})
	addTensor(q, "sum", []int{1, 4}, p, false)
	q.Outputs = []string{"sum"}

	_, err := New(q, Options{})
	if err == nil {
		t.Fatal("New accepted a float add with one input")
	}
	if !strings.Contains(err.Error(), `node "sum" (add): has 1 inputs; expected 2`) {
		t.Errorf("error %q does not name the node and the input count", err)
	}
}

func TestDamagedFloatNodesAreRejected(t *testing.T) {
	cases := []struct {
		name string
		node format.QNode
		want string
	}{
		{"conv without weight", format.QNode{Op: "conv2d"}, "needs a weight"},
		{"relu with a parameter", format.QNode{Op: "relu", FloatParams: map[string]string{"weight": "w"}}, `role "weight"`},
		{"pool without kernel", format.QNode{Op: "maxpool2d"}, "at least 1"},
		{"batchnorm", format.QNode{Op: "batchnorm"}, "cannot run in float"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := affine.Params{Scale: 0.1, ZeroPoint: 0, QMin: 0, QMax: 255}
			q := newQModel()
			addInput(q, "x", []int{1, 2, 4, 4}, p, false)
			node := tc.node
			node.Name, node.Inputs, node.Float, node.ClampMin, node.ClampMax = "f", []string{"x"}, true, 0, 255
			q.Nodes = append(q.Nodes, &node)
			addTensor(q, "f", []int{1, 2, 4, 4}, p, false)
			q.Outputs = []string{"f"}

			_, err := New(q, Options{})
			if err == nil {
				t.Fatal("New accepted the damaged float node")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}
