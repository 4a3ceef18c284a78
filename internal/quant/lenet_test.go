package quant_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/qtool-dev/qtool/internal/affine"
	"github.com/qtool-dev/qtool/internal/calib"
	"github.com/qtool-dev/qtool/internal/dataset"
	"github.com/qtool-dev/qtool/internal/fold"
	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/infer"
	"github.com/qtool-dev/qtool/internal/quant"
	"github.com/qtool-dev/qtool/internal/tensor"
	"github.com/qtool-dev/qtool/internal/testutil"
)

// leNet is the LeNet fixture with a min-max calibration table over calib.npy, once fused and
// once as exported.
type leNet struct {
	fused, unfused           *graph.Model
	fusedTable, unfusedTable *calib.Table
}

var (
	leNetOnce sync.Once
	leNetData leNet
	leNetErr  error
)

func loadLeNet(t *testing.T) leNet {
	t.Helper()
	leNetOnce.Do(func() {
		dir := filepath.Join(testutil.RepoRoot(t), "testdata", "lenet-mnist")
		m, err := graph.Load(filepath.Join(dir, "model.json"))
		if err != nil {
			leNetErr = err
			return
		}
		fused, _, err := fold.Fuse(m)
		if err != nil {
			leNetErr = err
			return
		}
		leNetData = leNet{fused: fused, unfused: m}
		if leNetData.fusedTable, err = minMaxTable(fused, filepath.Join(dir, "calib.npy")); err != nil {
			leNetErr = err
			return
		}
		leNetData.unfusedTable, leNetErr = minMaxTable(m, filepath.Join(dir, "calib.npy"))
	})
	if leNetErr != nil {
		t.Fatalf("LeNet fixture: %v", leNetErr)
	}
	return leNetData
}

// minMaxTable runs the float model over the data and records every tensor's min-max range.
func minMaxTable(m *graph.Model, path string) (*calib.Table, error) {
	data, err := dataset.Open(m, path)
	if err != nil {
		return nil, err
	}
	settings := calib.DefaultSettings(calib.MethodMinMax)
	observers := map[string]calib.Observer{}

	const batch = 100
	for start := 0; start < data.Len(); start += batch {
		inputs, err := data.Batch(start, min(batch, data.Len()-start))
		if err != nil {
			return nil, err
		}
		values, err := infer.Run(m, inputs, infer.Options{KeepAll: true})
		if err != nil {
			return nil, err
		}
		for name, v := range values {
			if observers[name] == nil {
				if observers[name], err = calib.NewObserver(name, settings); err != nil {
					return nil, err
				}
			}
			observers[name].Observe(v.Data)
		}
	}

	table := calib.NewTable(m.Hash(), data.Len())
	for name, o := range observers {
		r, err := o.Range()
		if err != nil {
			return nil, err
		}
		table.Tensors[name] = calib.NewEntry(r, settings)
	}
	return table, nil
}

func writeQModel(t *testing.T, q *format.QModel) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lenet.qmodel")
	if err := format.WriteQModel(path, q); err != nil {
		t.Fatalf("WriteQModel: %v", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, data
}

func TestLeNetQuantizes(t *testing.T) {
	l := loadLeNet(t)
	q, sum, err := quant.Quantize(l.fused, l.fusedTable, quant.Options{})
	if err != nil {
		t.Fatalf("Quantize: %v", err)
	}

	if want := []string{"relu1", "relu2", "relu3", "fc2"}; !reflect.DeepEqual(sum.QuantizedLayers, want) {
		t.Errorf("quantized layers %v, want %v", sum.QuantizedLayers, want)
	}
	if len(sum.WidenedChannels) != 0 {
		t.Errorf("widened channels %+v, want none", sum.WidenedChannels)
	}

	_, data := writeQModel(t, q)
	ratio := float64(sum.FloatWeightBytes) / float64(len(data))
	t.Logf("float weights %d bytes, quantized arrays %d bytes (%.2fx), .qmodel file %d bytes (%.2fx)",
		sum.FloatWeightBytes, sum.QuantizedWeightBytes, sum.CompressionRatio, len(data), ratio)
	if ratio < 3.4 || ratio > 4 {
		t.Errorf("the file is %.2fx smaller than the float weights, want about 4x", ratio)
	}
	if sum.CompressionRatio < 3.7 || sum.CompressionRatio > 4 {
		t.Errorf("compression ratio %.2f, want about 4", sum.CompressionRatio)
	}
}

func TestLeNetUnfusedQuantizes(t *testing.T) {
	l := loadLeNet(t)
	q, sum, err := quant.Quantize(l.unfused, l.unfusedTable, quant.Options{})
	if err != nil {
		t.Fatalf("Quantize: %v", err)
	}
	if want := []string{"conv1", "bn1", "conv2", "bn2", "fc1", "fc2"}; !reflect.DeepEqual(sum.QuantizedLayers, want) {
		t.Errorf("quantized layers %v, want %v", sum.QuantizedLayers, want)
	}
	relu := node(t, q, "relu1")
	if relu.Op != "relu" || relu.ClampMin != tensorOf(t, q, "bn1").ZeroPoint {
		t.Errorf("relu1 is %s clamping at %d, want a relu at bn1's zero point", relu.Op, relu.ClampMin)
	}
	if _, err := format.EncodeQModel(q); err != nil {
		t.Errorf("the unfused model does not encode: %v", err)
	}
}

func TestLeNetFileDeterministic(t *testing.T) {
	l := loadLeNet(t)
	var files [][]byte
	for range 2 {
		q, _, err := quant.Quantize(l.fused, l.fusedTable, quant.Options{})
		if err != nil {
			t.Fatalf("Quantize: %v", err)
		}
		_, data := writeQModel(t, q)
		files = append(files, data)
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Error("quantizing twice gave different files")
	}
}

func TestLeNetReadRoundTrip(t *testing.T) {
	l := loadLeNet(t)
	q, _, err := quant.Quantize(l.fused, l.fusedTable, quant.Options{Exclude: []string{"fc2"}})
	if err != nil {
		t.Fatalf("Quantize: %v", err)
	}
	path, _ := writeQModel(t, q)
	got, err := format.ReadQModel(path)
	if err != nil {
		t.Fatalf("ReadQModel: %v", err)
	}
	if !reflect.DeepEqual(got, q) {
		t.Error("the LeNet QModel differs after writing and reading it")
	}
}

func TestLeNetByteFlipsFail(t *testing.T) {
	l := loadLeNet(t)
	q, _, err := quant.Quantize(l.fused, l.fusedTable, quant.Options{})
	if err != nil {
		t.Fatalf("Quantize: %v", err)
	}
	_, data := writeQModel(t, q)

	// Every byte of the first 4 KiB (header length, header JSON, padding) and the last 256,
	// and 300 sampled bytes of the arrays.
	var offsets []int
	for i := range min(4096, len(data)) {
		offsets = append(offsets, i)
	}
	for i := len(data) - 256; i < len(data); i++ {
		offsets = append(offsets, i)
	}
	for i := range 300 {
		offsets = append(offsets, 4096+i*(len(data)-4096-256)/300)
	}

	for _, at := range offsets {
		bad := slices.Clone(data)
		bad[at] ^= 0x20
		_, err := format.DecodeQModel(bad)
		if err == nil {
			t.Errorf("byte %d flipped: DecodeQModel accepted the file", at)
			continue
		}
		if !bytes.Contains([]byte(err.Error()), []byte("corrupt")) {
			t.Errorf("byte %d flipped: error %q does not say the file is corrupt", at, err)
		}
	}
}

// TestLeNetIntegerAgreesWithFloat runs the quantized LeNet with a small integer reference of
// the arithmetic in internal/format/qmodel.go and compares its predictions with the float model's.
func TestLeNetIntegerAgreesWithFloat(t *testing.T) {
	l := loadLeNet(t)
	q, _, err := quant.Quantize(l.fused, l.fusedTable, quant.Options{})
	if err != nil {
		t.Fatalf("Quantize: %v", err)
	}
	data, err := dataset.Open(l.fused, filepath.Join(testutil.RepoRoot(t), "testdata", "lenet-mnist", "test_x.npy"))
	if err != nil {
		t.Fatal(err)
	}

	const samples = 300
	inputs, err := data.Batch(0, samples)
	if err != nil {
		t.Fatal(err)
	}
	floatOut, err := infer.Run(l.fused, inputs, infer.Options{})
	if err != nil {
		t.Fatal(err)
	}

	agree := 0
	image := inputs["image"]
	per := tensor.Size(image.Shape[1:])
	for s := range samples {
		logits := runInteger(t, q, image.Data[s*per:(s+1)*per])
		floatLogits := floatOut[l.fused.Outputs[0]].Data[s*10 : (s+1)*10]
		if argmax(logits) == argmax(floatLogits) {
			agree++
		}
	}
	t.Logf("integer and float predictions agree on %d of %d test images", agree, samples)
	if agree < samples*97/100 {
		t.Errorf("integer and float predictions agree on %d of %d images, want at least 97%%", agree, samples)
	}
}

func argmax[T int32 | float32](v []T) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}

// runInteger runs one sample through conv2d, maxpool2d, flatten and linear nodes in integers.
func runInteger(t *testing.T, q *format.QModel, x []float32) []int32 {
	t.Helper()
	values := map[string][]int32{}
	in := q.Tensor(q.Inputs[0].Name)
	inParams := affine.Params{Scale: in.Scale, ZeroPoint: in.ZeroPoint, QMin: in.QMin, QMax: in.QMax}
	xq := make([]int32, len(x))
	for i, v := range x {
		xq[i] = inParams.Quantize(v)
	}
	values[in.Name] = xq

	for _, n := range q.Nodes {
		src := q.Tensor(n.Inputs[0])
		inShape := src.Shape
		outShape := q.Tensor(n.Name).Shape
		x := values[n.Inputs[0]]
		out := make([]int32, tensor.Size(outShape))
		switch n.Op {
		case "conv2d", "linear":
			w := q.Arrays[n.Weight].Data.([]int8)
			bias := q.Arrays[n.Bias].Data.([]int32)
			mult := q.Arrays[n.Mult].Data.([]int32)
			shift := q.Arrays[n.Shift].Data.([]int32)
			zOut := q.Tensor(n.Name).ZeroPoint
			acc := integerLayer(n, x, inShape, outShape, w, q.Arrays[n.Weight].Shape, bias, src.ZeroPoint)
			channels := outShape[1]
			inner := len(out) / channels
			for i, a := range acc {
				c := i / inner
				m := affine.Multiplier{Mult: mult[c], Shift: shift[c]}
				y := int64(zOut) + int64(affine.MultiplyByQuantizedMultiplier(a, m))
				out[i] = int32(min(max(y, int64(n.ClampMin)), int64(n.ClampMax)))
			}
		case "maxpool2d":
			c, h, w := inShape[1], inShape[2], inShape[3]
			oh, ow := outShape[2], outShape[3]
			for ch := range c {
				for i := range oh {
					for j := range ow {
						best := int32(-1 << 31)
						for di := range n.Kernel[0] {
							for dj := range n.Kernel[1] {
								r, col := i*n.Stride[0]+di-n.Padding[0], j*n.Stride[1]+dj-n.Padding[1]
								if r >= 0 && r < h && col >= 0 && col < w {
									best = max(best, x[(ch*h+r)*w+col])
								}
							}
						}
						out[(ch*oh+i)*ow+j] = best
					}
				}
			}
		case "flatten":
			copy(out, x)
		default:
			t.Fatalf("the reference does not run op %s", n.Op)
		}
		values[n.Name] = out
	}
	return values[q.Outputs[0]]
}

// integerLayer returns the int32 accumulators Bias[c] + sum_k (x_k - z_in) W[c][k] of one
// sample, for a conv2d (groups 1) or linear node. Padding reads z_in.
func integerLayer(n *format.QNode, x []int32, inShape, outShape []int, w []int8, wShape []int, bias []int32, zIn int32) []int32 {
	if n.Op == "linear" {
		o, k := wShape[0], wShape[1]
		acc := make([]int32, o)
		for c := range o {
			sum := bias[c]
			for i := range k {
				sum += (x[i] - zIn) * int32(w[c*k+i])
			}
			acc[c] = sum
		}
		return acc
	}

	cin, h, wd := inShape[1], inShape[2], inShape[3]
	cout, oh, ow := outShape[1], outShape[2], outShape[3]
	kh, kw := wShape[2], wShape[3]
	acc := make([]int32, cout*oh*ow)
	for c := range cout {
		for i := range oh {
			for j := range ow {
				sum := bias[c]
				for ci := range cin {
					for di := range kh {
						for dj := range kw {
							r := i*n.Stride[0] + di*n.Dilation[0] - n.Padding[0]
							col := j*n.Stride[1] + dj*n.Dilation[1] - n.Padding[1]
							if r < 0 || r >= h || col < 0 || col >= wd {
								continue
							}
							sum += (x[(ci*h+r)*wd+col] - zIn) * int32(w[((c*cin+ci)*kh+di)*kw+dj])
						}
					}
				}
				acc[(c*oh+i)*ow+j] = sum
			}
		}
	}
	return acc
}
