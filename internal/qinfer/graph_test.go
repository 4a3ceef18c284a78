package qinfer

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qtool-dev/qtool/internal/affine"
	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/infer"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// testGraph builds a float model that uses every op of the integer executor:
//
//	x -> c1 (conv 3x3, relu) -> dw (depthwise, stride 2, relu6) -+-> sum (add, relu) -> cat -> mp -> ap -> clp -> gap -> flat -> fc1 (relu) -> fc2
//	                                  `-> pw (1x1 conv, run in float) -'              ^
//	                            dw ------------------------------------------------'   mp -> flat2 -> fc3
func testGraph(t testing.TB, rng *rand.Rand) *graph.Model {
	t.Helper()
	m := &graph.Model{
		Inputs:  []graph.Input{{Name: "x", Shape: []int{-1, 3, 12, 12}}},
		Outputs: []string{"fc2", "fc3"},
		Params:  map[string]*tensor.Tensor{},
	}
	param := func(key string, lo, hi float32, shape ...int) string {
		m.Params[key] = randomTensor(rng, lo, hi, shape...)
		return key
	}
	conv := func(name, in string, o, c, k, stride, pad, groups int, act graph.ActKind) {
		m.Nodes = append(m.Nodes, &graph.Node{Name: name, Op: graph.OpConv2D, Inputs: []string{in},
			Params: map[string]string{"weight": param(name+".weight", -0.4, 0.4, o, c/groups, k, k), "bias": param(name+".bias", -0.2, 0.2, o)},
			Attrs: graph.Attrs{Stride: [2]int{stride, stride}, Padding: [4]int{pad, pad, pad, pad}, Dilation: [2]int{1, 1},
				Groups: groups, Activation: graph.Activation{Kind: act}}})
	}
	linear := func(name, in string, o, k int, act graph.ActKind) {
		m.Nodes = append(m.Nodes, &graph.Node{Name: name, Op: graph.OpLinear, Inputs: []string{in},
			Params: map[string]string{"weight": param(name+".weight", -0.3, 0.3, o, k), "bias": param(name+".bias", -0.2, 0.2, o)},
			Attrs:  graph.Attrs{Activation: graph.Activation{Kind: act}}})
	}
	plain := func(name string, op graph.Op, a graph.Attrs, inputs ...string) {
		m.Nodes = append(m.Nodes, &graph.Node{Name: name, Op: op, Inputs: inputs, Params: map[string]string{}, Attrs: a})
	}

	conv("c1", "x", 8, 3, 3, 1, 1, 1, graph.ActRelu)
	conv("dw", "c1", 8, 8, 3, 2, 1, 8, graph.ActRelu6)
	conv("pw", "dw", 8, 8, 1, 1, 0, 1, graph.ActNone)
	plain("sum", graph.OpAdd, graph.Attrs{Activation: graph.Activation{Kind: graph.ActRelu}}, "dw", "pw")
	plain("cat", graph.OpConcat, graph.Attrs{Axis: 1}, "sum", "dw")
	plain("mp", graph.OpMaxPool2D, graph.Attrs{Kernel: [2]int{2, 2}, Stride: [2]int{2, 2}}, "cat")
	plain("ap", graph.OpAvgPool2D, graph.Attrs{Kernel: [2]int{3, 3}, Stride: [2]int{1, 1}, Padding: [4]int{1, 1, 1, 1}, CountIncludePad: true}, "mp")
	plain("clp", graph.OpClip, graph.Attrs{Min: 0.05, Max: 2}, "ap")
	plain("gap", graph.OpGlobalAvgPool, graph.Attrs{}, "clp")
	plain("flat", graph.OpFlatten, graph.Attrs{}, "gap")
	linear("fc1", "flat", 12, 16, graph.ActRelu)
	linear("fc2", "fc1", 10, 12, graph.ActNone)
	plain("flat2", graph.OpFlatten, graph.Attrs{}, "mp")
	linear("fc3", "flat2", 10, 144, graph.ActNone)
	if err := m.InferShapes(); err != nil {
		t.Fatal(err)
	}
	return m
}

// sameQuantizationOps keep their input's parameters.
var sameQuantizationOps = map[graph.Op]bool{
	graph.OpMaxPool2D: true, graph.OpAvgPool2D: true, graph.OpGlobalAvgPool: true,
	graph.OpRelu: true, graph.OpRelu6: true, graph.OpClip: true, graph.OpFlatten: true,
}

// quantizeGraph is a small min/max quantize pass for the tests: activation ranges from a float
// run on calib, per-channel int8 weights, and the multipliers of the contract. Nodes in
// floatNodes are kept in float.
func quantizeGraph(t testing.TB, m *graph.Model, calib map[string]*tensor.Tensor, signed bool, floatNodes map[string]bool) *format.QModel {
	t.Helper()
	values, err := infer.Run(m, calib, infer.Options{KeepAll: true})
	if err != nil {
		t.Fatal(err)
	}
	q := newQModel()
	q.Outputs = m.Outputs
	params := map[string]affine.Params{}
	for _, in := range m.Inputs {
		params[in.Name] = rangeParams(t, float64s(values[in.Name].Data), signed)
		addInput(q, in.Name, m.Shapes[in.Name], params[in.Name], signed)
	}

	for _, n := range m.Nodes {
		p := rangeParams(t, float64s(values[n.Name].Data), signed)
		if sameQuantizationOps[n.Op] && !floatNodes[n.Name] {
			p = params[n.Inputs[0]]
		}
		params[n.Name] = p
		addTensor(q, n.Name, m.Shapes[n.Name], p, signed)

		qn := &format.QNode{Name: n.Name, Op: string(n.Op), Inputs: n.Inputs,
			Stride: n.Attrs.Stride, Padding: n.Attrs.Padding, Dilation: n.Attrs.Dilation, Groups: n.Attrs.Groups,
			Kernel: n.Attrs.Kernel, CountIncludePad: n.Attrs.CountIncludePad}
		lo, hi, _ := n.Attrs.Activation.Bounds()
		switch n.Op {
		case graph.OpRelu:
			lo, hi = 0, math.Inf(1)
		case graph.OpRelu6:
			lo, hi = 0, 6
		case graph.OpClip:
			lo, hi = n.Attrs.Min, n.Attrs.Max
		}
		qn.ClampMin, qn.ClampMax = clampIntegers(lo, hi, p)

		switch {
		case floatNodes[n.Name]:
			qn.Float = true
			qn.FloatParams = n.Params
			for _, key := range n.Params {
				x := m.Params[key]
				addArray(q, key, "F32", x.Shape, x.Data)
			}
			if !math.IsInf(lo, -1) {
				qn.ActMin = &lo
			}
			if !math.IsInf(hi, 1) {
				qn.ActMax = &hi
			}
		case n.Op == graph.OpConv2D || n.Op == graph.OpLinear:
			pIn := params[n.Inputs[0]]
			w := m.Param(n, "weight")
			lw := quantizeLayer(t, w, m.Param(n, "bias"), pIn.Scale)
			addLayerArrays(t, q, qn, lw, w.Shape, pIn.Scale, p.Scale)
		case n.Op == graph.OpAdd:
			inMult, outMult := addMultipliersFor(params[n.Inputs[0]].Scale, params[n.Inputs[1]].Scale, p.Scale, q.AddLeftShift)
			qn.InputMult, qn.InputShift = addMultipliers(t, q, n.Name+".input", inMult)
			qn.Mult, qn.Shift = addMultipliers(t, q, n.Name, []float64{outMult})
		case n.Op == graph.OpConcat:
			var mults []float64
			for _, in := range n.Inputs {
				mults = append(mults, float64(params[in].Scale)/float64(p.Scale)/float64(int64(1)<<q.AddLeftShift))
			}
			qn.InputMult, qn.InputShift = addMultipliers(t, q, n.Name+".input", mults)
		}
		q.Nodes = append(q.Nodes, qn)
	}
	return q
}

// clampIntegers returns the integer clamp of the real interval [lo, hi] under p.
func clampIntegers(lo, hi float64, p affine.Params) (int32, int32) {
	qlo, qhi := p.QMin, p.QMax
	if !math.IsInf(lo, -1) {
		qlo = max(qlo, p.Quantize(float32(lo)))
	}
	if !math.IsInf(hi, 1) {
		qhi = min(qhi, p.Quantize(float32(hi)))
	}
	return qlo, qhi
}

// sqnr returns 10 log10(sum x^2 / sum (x - y)^2) in dB.
func sqnr(x, y []float32) float64 {
	var signal, noise float64
	for i := range x {
		signal += float64(x[i]) * float64(x[i])
		d := float64(x[i]) - float64(y[i])
		noise += d * d
	}
	return 10 * math.Log10(signal/noise)
}

func TestGraphTracksFloatModel(t *testing.T) {
	for _, signed := range bothDTypes {
		t.Run(dtypeName(signed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(21, 1))
			m := testGraph(t, rng)
			x := randomTensor(rng, -1, 1, 16, 3, 12, 12)
			feeds := map[string]*tensor.Tensor{"x": x}
			q := quantizeGraph(t, m, feeds, signed, map[string]bool{"pw": true})

			want, err := infer.Run(m, feeds, infer.Options{KeepAll: true})
			if err != nil {
				t.Fatal(err)
			}
			res := runModel(t, q, feeds, 2)
			for _, n := range m.Nodes {
				db := sqnr(want[n.Name].Data, res.Activations[n.Name].Data)
				t.Logf("%s: SQNR %.1f dB", n.Name, db)
				// One 8-bit tensor measures about 40 dB in these tests, and errors add up along the graph.
				if db < 25 {
					t.Errorf("tensor %s: SQNR %.1f dB against the float model, want at least 25 dB", n.Name, db)
				}
			}
		})
	}
}

func TestResultsIndependentOfBatchAndThreads(t *testing.T) {
	for _, signed := range bothDTypes {
		t.Run(dtypeName(signed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(22, 1))
			m := testGraph(t, rng)
			const samples = 13
			x := randomTensor(rng, -1, 1, samples, 3, 12, 12)
			q := quantizeGraph(t, m, map[string]*tensor.Tensor{"x": x}, signed, map[string]bool{"pw": true})

			baseline := runModel(t, q, map[string]*tensor.Tensor{"x": x}, 1)
			for _, threads := range []int{1, 2} {
				e, err := New(q, Options{Threads: threads})
				if err != nil {
					t.Fatal(err)
				}
				for _, batch := range []int{1, 7, samples} {
					for start := 0; start < samples; start += batch {
						count := min(batch, samples-start)
						part, _ := tensor.FromData(x.Data[start*3*144:(start+count)*3*144], count, 3, 12, 12)
						res, err := e.Run(map[string]*tensor.Tensor{"x": part}, true)
						if err != nil {
							t.Fatal(err)
						}
						for name, got := range res.Integers {
							per := len(got.Data) / count
							want := baseline.Integers[name].Data[start*per : (start+count)*per]
							for i := range got.Data {
								if got.Data[i] != want[i] {
									t.Fatalf("threads %d, batch %d, samples from %d: tensor %s element %d is %d, with batch %d and 1 thread %d",
										threads, batch, start, name, i, got.Data[i], samples, want[i])
								}
							}
						}
						outputsOnly, err := e.Run(map[string]*tensor.Tensor{"x": part}, false)
						if err != nil {
							t.Fatal(err)
						}
						for name, got := range outputsOnly.Outputs {
							wantOut := res.Outputs[name]
							for i := range got.Data {
								if math.Float32bits(got.Data[i]) != math.Float32bits(wantOut.Data[i]) {
									t.Fatalf("output %s element %d differs between keepAll and outputs-only runs", name, i)
								}
							}
						}
					}
				}
			}
		})
	}
}

func TestRunRejectsBadInputs(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 1))
	m := testGraph(t, rng)
	x := randomTensor(rng, -1, 1, 2, 3, 12, 12)
	q := quantizeGraph(t, m, map[string]*tensor.Tensor{"x": x}, false, nil)
	e, err := New(q, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(map[string]*tensor.Tensor{}, false); err == nil {
		t.Error("Run accepted a missing input")
	}
	wrong := randomTensor(rng, -1, 1, 2, 3, 12, 11)
	if _, err := e.Run(map[string]*tensor.Tensor{"x": wrong}, false); err == nil {
		t.Error("Run accepted an input of the wrong shape")
	}
	before := append([]float32{}, x.Data...)
	if _, err := e.Run(map[string]*tensor.Tensor{"x": x}, true); err != nil {
		t.Fatal(err)
	}
	for i := range before {
		if x.Data[i] != before[i] {
			t.Fatal("Run modified its input tensor")
		}
	}
}

// TestConcurrentRunsAgree runs one Executor from several goroutines, as its documentation
// allows; go test -race checks that they share no mutable state.
func TestConcurrentRunsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(24, 1))
	m := testGraph(t, rng)
	x := randomTensor(rng, -1, 1, 5, 3, 12, 12)
	feeds := map[string]*tensor.Tensor{"x": x}
	q := quantizeGraph(t, m, feeds, true, map[string]bool{"pw": true})
	e, err := New(q, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	want, err := e.Run(feeds, false)
	if err != nil {
		t.Fatal(err)
	}

	results := make(chan *Result, 4)
	for range 4 {
		go func() {
			res, err := e.Run(feeds, true)
			if err != nil {
				t.Error(err)
			}
			results <- res
		}()
	}
	for range 4 {
		res := <-results
		if res == nil {
			continue
		}
		for name, out := range want.Outputs {
			for i, v := range res.Outputs[name].Data {
				if math.Float32bits(v) != math.Float32bits(out.Data[i]) {
					t.Fatalf("output %s element %d differs between concurrent runs", name, i)
				}
			}
		}
	}
}
