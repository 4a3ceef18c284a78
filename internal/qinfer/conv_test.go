package qinfer

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/internal/affine"
	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// convCase is one conv2d layer: input [n, c, h, w], o output channels, a kh x kw kernel.
type convCase struct {
	name                  string
	n, c, h, w, o, kh, kw int
	stride, dilation      [2]int
	padding               [4]int
	groups                int
	act                   string // "", "relu" or "relu6"
	// shrink < 1 narrows the output range below the real outputs', so that the clamp saturates.
	shrink float64
}

var convCases = []convCase{
	{name: "plain 3x3", n: 2, c: 3, h: 9, w: 8, o: 5, kh: 3, kw: 3},
	{name: "padded asymmetric", n: 2, c: 4, h: 7, w: 9, o: 6, kh: 3, kw: 2, padding: [4]int{1, 2, 0, 1}},
	{name: "strided", n: 2, c: 3, h: 11, w: 10, o: 4, kh: 3, kw: 3, stride: [2]int{2, 3}, padding: [4]int{1, 1, 1, 1}},
	{name: "dilated", n: 2, c: 3, h: 10, w: 10, o: 4, kh: 3, kw: 3, dilation: [2]int{2, 3}, padding: [4]int{2, 2, 2, 2}},
	{name: "grouped", n: 2, c: 6, h: 8, w: 8, o: 9, kh: 3, kw: 3, groups: 3, padding: [4]int{1, 1, 1, 1}},
	{name: "depthwise", n: 2, c: 8, h: 9, w: 9, o: 8, kh: 3, kw: 3, groups: 8, padding: [4]int{1, 1, 1, 1}},
	{name: "depthwise strided 20 channels", n: 2, c: 20, h: 9, w: 9, o: 20, kh: 3, kw: 3, groups: 20, stride: [2]int{2, 2}, padding: [4]int{1, 1, 1, 1}},
	{name: "depthwise 5x5 dilated 70 channels", n: 1, c: 70, h: 9, w: 9, o: 70, kh: 5, kw: 5, groups: 70, dilation: [2]int{2, 2}, padding: [4]int{4, 4, 4, 4}},
	{name: "depthwise multiplier 2", n: 2, c: 4, h: 6, w: 6, o: 8, kh: 3, kw: 3, groups: 4, padding: [4]int{1, 1, 1, 1}},
	{name: "pointwise", n: 3, c: 16, h: 5, w: 5, o: 24, kh: 1, kw: 1},
	{name: "wide 70 outputs", n: 1, c: 37, h: 6, w: 6, o: 70, kh: 3, kw: 3, padding: [4]int{1, 1, 1, 1}},
	{name: "relu", n: 2, c: 3, h: 8, w: 8, o: 5, kh: 3, kw: 3, act: "relu"},
	{name: "relu6", n: 2, c: 3, h: 8, w: 8, o: 5, kh: 3, kw: 3, act: "relu6"},
	{name: "saturating", n: 2, c: 3, h: 8, w: 8, o: 5, kh: 3, kw: 3, shrink: 0.5},
}

// withDefaults fills unset strides, dilations and groups with 1.
func (c convCase) withDefaults() convCase {
	if c.stride == [2]int{} {
		c.stride = [2]int{1, 1}
	}
	if c.dilation == [2]int{} {
		c.dilation = [2]int{1, 1}
	}
	if c.groups == 0 {
		c.groups = 1
	}
	if c.shrink == 0 {
		c.shrink = 1
	}
	return c
}

func (c convCase) outH() int {
	return (c.h+c.padding[0]+c.padding[2]-c.dilation[0]*(c.kh-1)-1)/c.stride[0] + 1
}

func (c convCase) outW() int {
	return (c.w+c.padding[1]+c.padding[3]-c.dilation[1]*(c.kw-1)-1)/c.stride[1] + 1
}

// tap returns the input row and column of tap (ky, kx) of output pixel (oy, ox), and
// whether it lies inside the image.
func (c convCase) tap(oy, ox, ky, kx int) (iy, ix int, ok bool) {
	iy = oy*c.stride[0] - c.padding[0] + ky*c.dilation[0]
	ix = ox*c.stride[1] - c.padding[1] + kx*c.dilation[1]
	return iy, ix, iy >= 0 && iy < c.h && ix >= 0 && ix < c.w
}

// convReal is the textbook convolution of real NCHW values in float64; padded taps read 0.
func convReal(c convCase, x, w, bias []float64) []float64 {
	oh, ow := c.outH(), c.outW()
	cg, og := c.c/c.groups, c.o/c.groups
	out := make([]float64, c.n*c.o*oh*ow)
	for s := range c.n {
		for o := range c.o {
			g := o / og
			for oy := range oh {
				for ox := range ow {
					sum := bias[o]
					for ci := range cg {
						for ky := range c.kh {
							for kx := range c.kw {
								iy, ix, ok := c.tap(oy, ox, ky, kx)
								if !ok {
									continue
								}
								sum += x[((s*c.c+g*cg+ci)*c.h+iy)*c.w+ix] * w[((o*cg+ci)*c.kh+ky)*c.kw+kx]
							}
						}
					}
					out[((s*c.o+o)*oh+oy)*ow+ox] = sum
				}
			}
		}
	}
	return out
}

// convDirect is the integer definition of the contract, on NCHW integers:
// acc = Bias[o] + sum (x - z_in) * W[o][k], y = clamp(z_out + MBQM(acc, Mult[o], Shift[o])).
// A padded tap reads z_in and adds 0.
func convDirect(c convCase, x []int32, zIn int32, w []int8, bias []int32, m []affine.Multiplier, zOut, lo, hi int32) []int32 {
	oh, ow := c.outH(), c.outW()
	cg, og := c.c/c.groups, c.o/c.groups
	out := make([]int32, c.n*c.o*oh*ow)
	for s := range c.n {
		for o := range c.o {
			g := o / og
			for oy := range oh {
				for ox := range ow {
					acc := bias[o]
					for ci := range cg {
						for ky := range c.kh {
							for kx := range c.kw {
								iy, ix, ok := c.tap(oy, ox, ky, kx)
								if !ok {
									continue
								}
								acc += (x[((s*c.c+g*cg+ci)*c.h+iy)*c.w+ix] - zIn) * int32(w[((o*cg+ci)*c.kh+ky)*c.kw+kx])
							}
						}
					}
					y := int64(zOut) + int64(affine.MultiplyByQuantizedMultiplier(acc, m[o]))
					out[((s*c.o+o)*oh+oy)*ow+ox] = int32(min(max(y, int64(lo)), int64(hi)))
				}
			}
		}
	}
	return out
}

// activationClamp returns the clamp bounds of a fused activation in the integers of p.
func activationClamp(act string, p affine.Params) (lo, hi int32) {
	lo, hi = p.QMin, p.QMax
	switch act {
	case "relu":
		lo = max(lo, p.ZeroPoint)
	case "relu6":
		lo = max(lo, p.ZeroPoint)
		hi = min(hi, p.Quantize(6))
	}
	return lo, hi
}

// applyActivation clamps real values as the activation does.
func applyActivation(act string, y []float64) []float64 {
	out := append([]float64{}, y...)
	for i, v := range out {
		switch act {
		case "relu":
			out[i] = max(v, 0)
		case "relu6":
			out[i] = min(max(v, 0), 6)
		}
	}
	return out
}

// convModel is a one-conv model with its reference data.
type convModel struct {
	q                *format.QModel
	x                *tensor.Tensor
	xq               []int32
	pIn, pOut        affine.Params
	weights          quantizedWeights
	realOut          []float64
	clampLo, clampHi int32
}

// buildConvModel quantizes a random conv layer of case c and its random input.
func buildConvModel(t *testing.T, c convCase, signed bool, seed uint64) convModel {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	x := randomTensor(rng, -1.5, 2.5, c.n, c.c, c.h, c.w)
	w := randomTensor(rng, -0.5, 0.5, c.o, c.c/c.groups, c.kh, c.kw)
	bias := randomTensor(rng, -0.3, 0.3, c.o)

	m := convModel{x: x}
	m.pIn = rangeParams(t, float64s(x.Data), signed)
	m.xq = quantizeInts(x.Data, m.pIn)
	m.weights = quantizeLayer(t, w, bias, m.pIn.Scale)
	m.realOut = convReal(c, realValues(m.xq, m.pIn), m.weights.realW, m.weights.realBias)

	covered := applyActivation(c.act, m.realOut)
	for i := range covered {
		covered[i] *= c.shrink
	}
	m.pOut = rangeParams(t, covered, signed)
	if c.act == "relu6" {
		// Cover [0, 6] so that the relu6 clamp lies inside the integer range.
		m.pOut = chooseParams(t, 0, 6, signed)
	}
	m.clampLo, m.clampHi = activationClamp(c.act, m.pOut)

	q := newQModel()
	addInput(q, "x", x.Shape, m.pIn, signed)
	n := &format.QNode{
		Name: "conv", Op: "conv2d", Inputs: []string{"x"},
		Stride: c.stride, Padding: c.padding, Dilation: c.dilation, Groups: c.groups,
		ClampMin: m.clampLo, ClampMax: m.clampHi, Activation: c.act,
	}
	addLayerArrays(t, q, n, m.weights, w.Shape, m.pIn.Scale, m.pOut.Scale)
	q.Nodes = append(q.Nodes, n)
	addTensor(q, "conv", []int{1, c.o, c.outH(), c.outW()}, m.pOut, signed)
	q.Outputs = []string{"conv"}
	m.q = q
	return m
}

func TestConvMatchesReferences(t *testing.T) {
	for _, signed := range []bool{false, true} {
		for i, tc := range convCases {
			c := tc.withDefaults()
			t.Run(caseName(signed, c.name), func(t *testing.T) {
				m := buildConvModel(t, c, signed, uint64(100+i))
				res := runModel(t, m.q, map[string]*tensor.Tensor{"x": m.x}, 2)
				got := res.Integers["conv"].Data

				checkEqual(t, "input integers", res.Integers["x"].Data, m.xq)
				want := quantizeReal(m.realOut, m.pOut, m.clampLo, m.clampHi)
				checkWithinOneStep(t, "conv vs float64", got, want)

				ms := make([]affine.Multiplier, c.o)
				mult := m.q.Arrays["conv.mult"].Data.([]int32)
				shift := m.q.Arrays["conv.shift"].Data.([]int32)
				for o := range ms {
					ms[o] = affine.Multiplier{Mult: mult[o], Shift: shift[o]}
				}
				direct := convDirect(c, m.xq, m.pIn.ZeroPoint, m.weights.w, m.weights.bias, ms, m.pOut.ZeroPoint, m.clampLo, m.clampHi)
				checkEqual(t, "conv vs direct integer definition", got, direct)
			})
		}
	}
}

func TestConvHeadroomErrorNamesLayer(t *testing.T) {
	c := convCase{name: "huge bias", n: 1, c: 3, h: 5, w: 5, o: 2, kh: 3, kw: 3}.withDefaults()
	m := buildConvModel(t, c, false, 1)
	bias := m.q.Arrays["conv.bias"].Data.([]int32)
	bias[1] = math.MaxInt32 - 10

	_, err := New(m.q, Options{})
	if err == nil {
		t.Fatal("New accepted a bias that leaves no int32 headroom")
	}
	if !strings.Contains(err.Error(), `node "conv" (conv2d)`) {
		t.Errorf("error %q does not name the layer", err)
	}
	if !strings.Contains(err.Error(), "overflow") {
		t.Errorf("error %q does not say that the accumulator may overflow", err)
	}
}

func TestConvRejectsDamagedModel(t *testing.T) {
	cases := []struct {
		name   string
		damage func(q *format.QModel)
		want   string
	}{
		{"missing weight", func(q *format.QModel) { delete(q.Arrays, "conv.weight") }, `weight array "conv.weight"`},
		{"short bias", func(q *format.QModel) {
			q.Arrays["conv.bias"].Shape = []int{1}
			q.Arrays["conv.bias"].Data = []int32{0}
		}, "bias array"},
		{"bad shift", func(q *format.QModel) { q.Arrays["conv.shift"].Data.([]int32)[0] = 40 }, "shift 40"},
		{"clamp outside range", func(q *format.QModel) { q.Nodes[0].ClampMax = 300 }, "clamp"},
		{"wrong output shape", func(q *format.QModel) { q.Tensors[1].Shape = []int{1, 2, 4, 4} }, "shape"},
		{"unknown dtype", func(q *format.QModel) { q.Tensors[1].DType = "int16" }, "int16"},
		{"other rounding", func(q *format.QModel) { q.Rounding = "half_up" }, "half_up"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := convCase{n: 1, c: 3, h: 5, w: 5, o: 2, kh: 3, kw: 3}.withDefaults()
			m := buildConvModel(t, c, false, 2)
			tc.damage(m.q)
			_, err := New(m.q, Options{})
			if err == nil {
				t.Fatal("New accepted the damaged model")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}
