package qinfer

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/qtool-dev/qtool/internal/affine"
	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/gemm"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// The ONNX backend node tests from Debian's libonnx-testdata package: each folder holds
// model.onnx and test_data_set_0 with serialized TensorProto inputs and the expected output,
// which ONNX's reference computes in float with round half to even and saturation. The models
// used here have no attributes, so every op runs with its defaults (QLinearConv: stride 1, no
// padding, dilation 1, group 1, kernel shape from w). The test therefore does not read
// model.onnx.
const onnxNodeTests = "/usr/share/libonnx-testdata/data/node"

// loadONNXCase reads input_0.pb ... and output_0.pb of one node test, or skips the test when
// the package is not installed.
func loadONNXCase(t *testing.T, name string, inputs int) (in []*onnxTensor, out *onnxTensor) {
	t.Helper()
	dir := filepath.Join(onnxNodeTests, name, "test_data_set_0")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("ONNX node test data not found at %s (apt-get install libonnx-testdata): %v", dir, err)
	}
	for i := range inputs {
		x, err := readONNXTensor(filepath.Join(dir, fmt.Sprintf("input_%d.pb", i)))
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, x)
	}
	out, err := readONNXTensor(filepath.Join(dir, "output_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	return in, out
}

func mustInts(t *testing.T, x *onnxTensor) []int32 {
	t.Helper()
	v, err := x.intValues()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustFloats(t *testing.T, x *onnxTensor) []float32 {
	t.Helper()
	v, err := x.float32Values()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// uint8Params returns uint8 parameters with the given scale and zero point.
func uint8Params(scale float32, zeroPoint int32) affine.Params {
	return affine.Params{Scale: scale, ZeroPoint: zeroPoint, QMin: 0, QMax: 255}
}

// compareONNX fails when an integer differs from ONNX's output by more than one step and logs
// whether all matched exactly.
func compareONNX(t *testing.T, got, want []int32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d outputs, ONNX has %d", len(got), len(want))
	}
	off := 0
	for i := range got {
		d := got[i] - want[i]
		if d < -1 || d > 1 {
			t.Fatalf("output %d is %d, ONNX expects %d (more than 1 LSB apart)", i, got[i], want[i])
		}
		if d != 0 {
			off++
		}
	}
	if off == 0 {
		t.Logf("all %d outputs match ONNX exactly", len(got))
	} else {
		t.Logf("%d of %d outputs are 1 LSB from ONNX, the rest match exactly", off, len(got))
	}
}

// quantizeWithExecutor quantizes x with p through an Executor whose only tensor is its input,
// so the result is the executor's input quantization (round half to even, then clamp).
func quantizeWithExecutor(t *testing.T, x []float32, p affine.Params) (ints []int32, roundTrip []float32) {
	t.Helper()
	q := newQModel()
	addInput(q, "x", []int{1, len(x)}, p, false)
	q.Outputs = []string{"x"}
	feed, err := tensor.FromData(x, 1, len(x))
	if err != nil {
		t.Fatal(err)
	}
	res := runModel(t, q, map[string]*tensor.Tensor{"x": feed}, 1)
	return res.Integers["x"].Data, res.Outputs["x"].Data
}

func TestONNXQuantizeLinear(t *testing.T) {
	in, out := loadONNXCase(t, "test_quantizelinear", 3)
	x := mustFloats(t, in[0])
	p := uint8Params(mustFloats(t, in[1])[0], mustInts(t, in[2])[0])

	got, _ := quantizeWithExecutor(t, x, p)
	checkEqual(t, "QuantizeLinear", got, mustInts(t, out))
}

func TestONNXQuantizeLinearAxis(t *testing.T) {
	in, out := loadONNXCase(t, "test_quantizelinear_axis", 3)
	x := mustFloats(t, in[0])
	scales, zeros := mustFloats(t, in[1]), mustInts(t, in[2])

	// Per-channel parameters along axis 1 of [1, 3, 3, 2]: the executor quantizes activations
	// per tensor, so each channel runs through its own Executor.
	want := mustInts(t, out)
	plane := len(x) / len(scales)
	for c := range scales {
		got, _ := quantizeWithExecutor(t, x[c*plane:(c+1)*plane], uint8Params(scales[c], zeros[c]))
		checkEqual(t, fmt.Sprintf("QuantizeLinear channel %d", c), got, want[c*plane:(c+1)*plane])
	}
}

// dequantizeWithExecutor feeds the real values of the integers q to an Executor whose output is
// its input, checks that the input quantization gives q back, and returns the dequantized output.
func dequantizeWithExecutor(t *testing.T, q []int32, p affine.Params) []float32 {
	t.Helper()
	x := make([]float32, len(q))
	for i, v := range q {
		x[i] = float32(float64(p.Scale) * float64(v-p.ZeroPoint))
	}
	ints, out := quantizeWithExecutor(t, x, p)
	checkEqual(t, "integers after the round trip", ints, q)
	return out
}

func checkFloatsEqual(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: element %d is %v, ONNX expects %v", what, i, got[i], want[i])
		}
	}
	t.Logf("%s: all %d values match ONNX exactly", what, len(want))
}

func TestONNXDequantizeLinear(t *testing.T) {
	in, out := loadONNXCase(t, "test_dequantizelinear", 3)
	p := uint8Params(mustFloats(t, in[1])[0], mustInts(t, in[2])[0])
	got := dequantizeWithExecutor(t, mustInts(t, in[0]), p)
	checkFloatsEqual(t, "DequantizeLinear", got, mustFloats(t, out))
}

func TestONNXDequantizeLinearAxis(t *testing.T) {
	in, out := loadONNXCase(t, "test_dequantizelinear_axis", 3)
	x := mustInts(t, in[0])
	scales, zeros := mustFloats(t, in[1]), mustInts(t, in[2])
	want := mustFloats(t, out)
	plane := len(x) / len(scales)
	for c := range scales {
		got := dequantizeWithExecutor(t, x[c*plane:(c+1)*plane], uint8Params(scales[c], zeros[c]))
		checkFloatsEqual(t, fmt.Sprintf("DequantizeLinear channel %d", c), got, want[c*plane:(c+1)*plane])
	}
}

// splitWeights writes w - zeroPoint, which for uint8 weights lies in [-255, 255], as a sum of
// int8 parts in [-127, 127], at most three. The gemm kernels take int8 weights with zero point
// 0, so a weight zero point that pushes w - zeroPoint outside int8 needs this general form:
// sum_k (x_k - z_x)(w_k - z_w) = sum over parts p of sum_k (x_k - z_x) * p_k.
func splitWeights(w []int32, zeroPoint int32) [][]int8 {
	rest := make([]int32, len(w))
	for i, v := range w {
		rest[i] = v - zeroPoint
	}
	var parts [][]int8
	for {
		part := make([]int8, len(rest))
		nonzero := false
		for i, v := range rest {
			p := min(max(v, -127), 127)
			part[i] = int8(p)
			rest[i] -= p
			nonzero = nonzero || p != 0
		}
		if !nonzero && len(parts) > 0 {
			return parts
		}
		parts = append(parts, part)
	}
}

// accumulatorEpilogue is an epilogue for RunAccumulators, which ignores the multipliers but
// needs valid ones.
func accumulatorEpilogue(channels int, inZeroPoint int32) gemm.Epilogue {
	e := gemm.Epilogue{InZeroPoint: inZeroPoint, ClampMin: 0, ClampMax: 255, Mult: make([]int32, channels), Shift: make([]int32, channels)}
	for c := range e.Mult {
		e.Mult[c] = 1 << 30
	}
	return e
}

// requantizeUint8 applies y = clamp(z_y + MBQM(acc, M), 0, 255) with M quantized from real.
func requantizeUint8(t *testing.T, acc []int32, real float64, zeroPoint int32) []int32 {
	t.Helper()
	m, err := affine.QuantizeMultiplier(real)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int32, len(acc))
	affine.Requantize(acc, m, zeroPoint, 0, 255, out)
	return out
}

func TestONNXQLinearConv(t *testing.T) {
	in, out := loadONNXCase(t, "test_qlinearconv", 8)
	x, w := mustInts(t, in[0]), mustInts(t, in[3])
	xScale, xZero := mustFloats(t, in[1])[0], mustInts(t, in[2])[0]
	wScale, wZero := mustFloats(t, in[4]), mustInts(t, in[5])
	yScale, yZero := mustFloats(t, in[6])[0], mustInts(t, in[7])[0]
	if len(wScale) != 1 || len(wZero) != 1 {
		t.Fatalf("this adapter handles a per-tensor weight scale and zero point, got %d and %d", len(wScale), len(wZero))
	}

	xd, wd := in[0].dims, in[3].dims
	s := gemm.ConvShape{
		Batch: xd[0], InC: xd[1], InH: xd[2], InW: xd[3], OutC: wd[0], KH: wd[2], KW: wd[3],
		StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1, Groups: 1,
	}
	nhwc := make([]uint8, len(x))
	plane := s.InH * s.InW
	for n := range s.Batch {
		for c := range s.InC {
			for p := range plane {
				nhwc[(n*plane+p)*s.InC+c] = uint8(x[(n*s.InC+c)*plane+p])
			}
		}
	}

	// The weight 0 with zero point 255 gives w - z_w = -255, outside int8, so the adapter
	// splits the weights and adds the accumulators of the gemm kernels.
	outLen := s.Batch * s.OutH() * s.OutW() * s.OutC
	acc := make([]int32, outLen)
	parts := splitWeights(w, wZero[0])
	t.Logf("w - z_w split into %d int8 parts", len(parts))
	for _, part := range parts {
		conv, err := gemm.NewConv(s, part, accumulatorEpilogue(s.OutC, xZero))
		if err != nil {
			t.Fatal(err)
		}
		partAcc := make([]int32, outLen)
		conv.RunAccumulators(nhwc, partAcc)
		for i := range acc {
			acc[i] += partAcc[i]
		}
	}
	real := float64(xScale) * float64(wScale[0]) / float64(yScale)
	yNHWC := requantizeUint8(t, acc, real, yZero)

	got := make([]int32, outLen)
	outPlane := s.OutH() * s.OutW()
	for n := range s.Batch {
		for c := range s.OutC {
			for p := range outPlane {
				got[(n*s.OutC+c)*outPlane+p] = yNHWC[(n*outPlane+p)*s.OutC+c]
			}
		}
	}
	compareONNX(t, got, mustInts(t, out))
}

// qlinearMatMul computes one [m, k] x [k, n] product of QLinearMatMul with gemm.Linear, whose
// weights are [n][k]: the transpose of b, split as splitWeights describes.
func qlinearMatMul(t *testing.T, a, b []int32, m, k, n int, aZero, bZero int32, real float64, yZero int32) []int32 {
	t.Helper()
	rows := make([]uint8, len(a))
	for i, v := range a {
		rows[i] = uint8(v)
	}
	transposed := make([]int32, len(b))
	for i := range k {
		for j := range n {
			transposed[j*k+i] = b[i*n+j]
		}
	}

	acc := make([]int32, m*n)
	for _, part := range splitWeights(transposed, bZero) {
		lin, err := gemm.NewLinear(m, k, n, part, accumulatorEpilogue(n, aZero))
		if err != nil {
			t.Fatal(err)
		}
		partAcc := make([]int32, m*n)
		lin.RunAccumulators(rows, partAcc)
		for i := range acc {
			acc[i] += partAcc[i]
		}
	}
	return requantizeUint8(t, acc, real, yZero)
}

func TestONNXQLinearMatMul(t *testing.T) {
	for _, name := range []string{"test_qlinearmatmul_2D", "test_qlinearmatmul_3D"} {
		t.Run(name, func(t *testing.T) {
			in, out := loadONNXCase(t, name, 8)
			a, b := mustInts(t, in[0]), mustInts(t, in[3])
			aScale, aZero := mustFloats(t, in[1])[0], mustInts(t, in[2])[0]
			bScale, bZero := mustFloats(t, in[4])[0], mustInts(t, in[5])[0]
			yScale, yZero := mustFloats(t, in[6])[0], mustInts(t, in[7])[0]
			real := float64(aScale) * float64(bScale) / float64(yScale)

			ad, bd := in[0].dims, in[3].dims
			m, k, n := ad[len(ad)-2], ad[len(ad)-1], bd[len(bd)-1]
			batches := len(a) / (m * k)
			if len(b) != batches*k*n {
				t.Fatalf("a %v and b %v are not a batch of matching products", ad, bd)
			}
			var got []int32
			for i := range batches {
				got = append(got, qlinearMatMul(t, a[i*m*k:(i+1)*m*k], b[i*k*n:(i+1)*k*n], m, k, n, aZero, bZero, real, yZero)...)
			}
			compareONNX(t, got, mustInts(t, out))
		})
	}
}

// TestONNXStyleConvThroughExecutor runs a QLinearConv-shaped layer whose weights fit int8
// (z_w = 0) through a QModel conv2d node, to tie the ONNX arithmetic to the executor itself.
func TestONNXStyleConvThroughExecutor(t *testing.T) {
	in, _ := loadONNXCase(t, "test_qlinearconv", 8)
	x := mustInts(t, in[0])
	xp := uint8Params(mustFloats(t, in[1])[0], mustInts(t, in[2])[0])
	yp := uint8Params(mustFloats(t, in[6])[0], mustInts(t, in[7])[0])
	const wScale, weight = float32(0.0017279458), int8(-100)

	q := newQModel()
	addInput(q, "x", in[0].dims, xp, false)
	node := &format.QNode{Name: "conv", Op: "conv2d", Inputs: []string{"x"}, ClampMin: 0, ClampMax: 255}
	lw := quantizedWeights{w: []int8{weight}, scale: []float32{wScale}, bias: []int32{0}}
	addLayerArrays(t, q, node, lw, []int{1, 1, 1, 1}, xp.Scale, yp.Scale)
	q.Nodes = append(q.Nodes, node)
	addTensor(q, "conv", in[0].dims, yp, false)
	q.Outputs = []string{"conv"}

	feed := tensor.New(in[0].dims...)
	for i, v := range x {
		feed.Data[i] = xp.Dequantize(v)
	}
	res := runModel(t, q, map[string]*tensor.Tensor{"x": feed}, 1)
	checkEqual(t, "input integers", res.Integers["x"].Data, x)

	// ONNX's float reference: round half to even, then saturate.
	want := make([]float64, len(x))
	for i, v := range x {
		want[i] = float64(xp.Scale) * float64(v-xp.ZeroPoint) * float64(wScale) * float64(weight)
	}
	compareONNX(t, res.Integers["conv"].Data, quantizeReal(want, yp, 0, 255))
}
