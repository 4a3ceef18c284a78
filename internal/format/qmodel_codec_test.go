package format

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// smallQModel returns a model that uses every kind of node content: an int8 conv2d with a
// standalone relu, a conv2d kept in float, add, concat, pooling, flatten and a per-tensor linear.
func smallQModel() *QModel {
	rng := rand.New(rand.NewPCG(1, 2))
	i8 := func(shape ...int) *QArray {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]int8, n)
		for i := range v {
			v[i] = int8(rng.IntN(255) - 127)
		}
		return &QArray{DType: DTypeI8, Shape: shape, Data: v}
	}
	i32 := func(v ...int32) *QArray { return &QArray{DType: DTypeI32, Shape: []int{len(v)}, Data: v} }
	f32 := func(shape []int, v ...float32) *QArray { return &QArray{DType: DTypeF32, Shape: shape, Data: v} }
	tensor := func(name string, shape []int, scale float32, zp int32) QTensor {
		return QTensor{Name: name, Shape: shape, DType: "uint8", Bits: 8, Scale: scale, ZeroPoint: zp, QMin: 0, QMax: 255}
	}
	actMin := 0.0

	return &QModel{
		Version:         QModelVersion,
		Name:            "small <test> & co",
		SourceHash:      "sha256:" + strings.Repeat("ab", 32),
		Rounding:        "half_to_even",
		RequantRounding: "srdhm_half_away",
		AddLeftShift:    20,
		Scheme:          QScheme{WeightBits: 8, WeightPerChannel: true, ActivationBits: 8, Excluded: []string{"c2"}, CalibMethod: "minmax"},
		Inputs:          []QInput{{Name: "x", Shape: []int{-1, 2, 4, 4}, Preprocess: &QPreprocess{Scale: 1.0 / 255, Mean: []float64{0.5, 0.25}, Std: []float64{0.5, 2}}}},
		Outputs:         []string{"fc"},
		Tensors: []QTensor{
			tensor("x", []int{1, 2, 4, 4}, 0.0078125, 128),
			tensor("c1", []int{1, 3, 4, 4}, 0.05, 0),
			tensor("r1", []int{1, 3, 4, 4}, 0.05, 0),
			tensor("c2", []int{1, 3, 4, 4}, 0.04, 3),
			tensor("a", []int{1, 3, 4, 4}, 0.1, 7),
			tensor("cat", []int{1, 6, 4, 4}, 0.1, 7),
			tensor("p", []int{1, 6, 2, 2}, 0.1, 7),
			tensor("g", []int{1, 6, 1, 1}, 0.1, 7),
			tensor("f", []int{1, 6}, 0.1, 7),
			{Name: "fc", Shape: []int{1, 4}, DType: "int8", Bits: 8, Scale: 0.25, ZeroPoint: 0, QMin: -128, QMax: 127, QFormat: "Q5.2"},
		},
		Nodes: []*QNode{
			{Name: "c1", Op: "conv2d", Inputs: []string{"x"}, Stride: [2]int{1, 1}, Padding: [4]int{1, 1, 1, 1}, Dilation: [2]int{1, 1}, Groups: 1,
				Weight: "c1.weight", Bias: "c1.bias", WeightScale: "c1.weight_scale", Mult: "c1.mult", Shift: "c1.shift", ClampMin: 0, ClampMax: 255},
			{Name: "r1", Op: "relu", Inputs: []string{"c1"}, ClampMin: 0, ClampMax: 255},
			{Name: "c2", Op: "conv2d", Inputs: []string{"r1"}, Stride: [2]int{1, 1}, Dilation: [2]int{1, 1}, Groups: 1, Float: true,
				FloatParams: map[string]string{"weight": "c2.weight", "bias": "c2.bias"}, ActMin: &actMin, Activation: "relu", ClampMin: 3, ClampMax: 255},
			{Name: "a", Op: "add", Inputs: []string{"r1", "c2"}, Mult: "a.mult", Shift: "a.shift", InputMult: "a.input_mult", InputShift: "a.input_shift", ClampMin: 0, ClampMax: 255},
			{Name: "cat", Op: "concat", Inputs: []string{"a", "r1"}, InputMult: "cat.input_mult", InputShift: "cat.input_shift", ClampMin: 0, ClampMax: 255},
			{Name: "p", Op: "maxpool2d", Inputs: []string{"cat"}, Kernel: [2]int{2, 2}, Stride: [2]int{2, 2}, ClampMin: 0, ClampMax: 255},
			{Name: "g", Op: "global_avgpool", Inputs: []string{"p"}, ClampMin: 0, ClampMax: 255},
			{Name: "f", Op: "flatten", Inputs: []string{"g"}, ClampMin: 0, ClampMax: 255},
			{Name: "fc", Op: "linear", Inputs: []string{"f"}, Weight: "fc.weight", Bias: "fc.bias", WeightScale: "fc.weight_scale", Mult: "fc.mult", Shift: "fc.shift", ClampMin: -128, ClampMax: 127},
		},
		Arrays: map[string]*QArray{
			"c1.weight":       i8(3, 2, 3, 3),
			"c1.bias":         i32(-5, 0, 1<<20),
			"c1.weight_scale": f32([]int{3}, 0.01, 0.02, 0x1p-23),
			"c1.mult":         i32(1<<30, 1<<30+12345, math.MaxInt32),
			"c1.shift":        i32(-3, 0, 2),
			"c2.weight":       f32([]int{3, 3, 1, 1}, 1, -2, 3, 0.5, -0.25, 0, float32(math.Inf(1)), -0, 7),
			"c2.bias":         f32([]int{3}, 0.125, -1, 2),
			"a.mult":          i32(1 << 30),
			"a.shift":         i32(-18),
			"a.input_mult":    i32(1<<30, 1500000000),
			"a.input_shift":   i32(0, -1),
			"cat.input_mult":  i32(1<<30, 1<<30),
			"cat.input_shift": i32(1, 1),
			"fc.weight":       i8(4, 6),
			"fc.bias":         i32(1, 2, 3, -4),
			"fc.weight_scale": f32([]int{1}, 0.125),
			"fc.mult":         i32(0, 0, 0, 0),
			"fc.shift":        i32(0, 0, 0, 0),
		},
	}
}

func encodeSmall(t testing.TB) []byte {
	t.Helper()
	data, err := EncodeQModel(smallQModel())
	if err != nil {
		t.Fatalf("EncodeQModel: %v", err)
	}
	return data
}

// resign rewrites the header of a .qmodel with edit, fixes the header length and padding, and
// recomputes the checksum, so a test can build a file that passes the checksum but is invalid.
func resign(t testing.TB, data []byte, edit func(header string) string) []byte {
	t.Helper()
	n := binary.LittleEndian.Uint64(data)
	header := strings.TrimRight(edit(string(data[8:8+n])), " ")
	for (len(header))%8 != 0 {
		header += " "
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	out = append(out, header...)
	out = append(out, data[8+n:]...)
	sign(out)
	return out
}

// sign recomputes the checksum digits of data in place, if the checksum key is present.
func sign(data []byte) {
	at := bytes.Index(data, []byte(checksumKey))
	if at < 0 || at+len(checksumKey)+64 > len(data) {
		return
	}
	at += len(checksumKey)
	copy(data[at:at+64], strings.Repeat("0", 64))
	sum := sha256.Sum256(data)
	hex.Encode(data[at:at+64], sum[:])
}

func TestQModelRoundTrip(t *testing.T) {
	want := smallQModel()
	path := filepath.Join(t.TempDir(), "small.qmodel")
	if err := WriteQModel(path, want); err != nil {
		t.Fatalf("WriteQModel: %v", err)
	}
	got, err := ReadQModel(path)
	if err != nil {
		t.Fatalf("ReadQModel: %v", err)
	}

	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("QModel JSON differs after a round trip:\n got %s\nwant %s", gotJSON, wantJSON)
	}
	if !reflect.DeepEqual(got.Nodes, want.Nodes) {
		t.Errorf("nodes differ after a round trip")
	}
	if !reflect.DeepEqual(got.Tensors, want.Tensors) {
		t.Errorf("tensors differ after a round trip")
	}
	if len(got.Arrays) != len(want.Arrays) {
		t.Fatalf("%d arrays after a round trip, want %d", len(got.Arrays), len(want.Arrays))
	}
	for name, a := range want.Arrays {
		b := got.Arrays[name]
		if b == nil {
			t.Errorf("array %q is missing after a round trip", name)
			continue
		}
		if b.DType != a.DType || !reflect.DeepEqual(b.Shape, a.Shape) {
			t.Errorf("array %q: %s %v after a round trip, want %s %v", name, b.DType, b.Shape, a.DType, a.Shape)
		}
		if !sameBits(a.Data, b.Data) {
			t.Errorf("array %q: data differs after a round trip: %v, want %v", name, b.Data, a.Data)
		}
	}
	got.Arrays, want.Arrays = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("QModel differs after a round trip:\n got %+v\nwant %+v", got, want)
	}
}

// sameBits compares array data bit for bit, so that -0 and Inf in float arrays count.
func sameBits(a, b any) bool {
	fa, ok := a.([]float32)
	if !ok {
		return reflect.DeepEqual(a, b)
	}
	fb, ok := b.([]float32)
	if !ok || len(fa) != len(fb) {
		return false
	}
	for i := range fa {
		if math.Float32bits(fa[i]) != math.Float32bits(fb[i]) {
			return false
		}
	}
	return true
}

func TestQModelEncodeDeterministic(t *testing.T) {
	first := encodeSmall(t)
	for i := range 5 {
		if again := encodeSmall(t); !bytes.Equal(first, again) {
			t.Fatalf("encoding %d differs from the first", i+2)
		}
	}
}

func TestQModelLayout(t *testing.T) {
	data := encodeSmall(t)
	n := binary.LittleEndian.Uint64(data)

	if (8+n)%8 != 0 {
		t.Errorf("data section starts at %d, not a multiple of 8", 8+n)
	}
	if data[8] != '{' {
		t.Errorf("header starts with %q, want '{'", data[8])
	}

	var header map[string]json.RawMessage
	if err := json.Unmarshal(data[8:8+n], &header); err != nil {
		t.Fatalf("header is not JSON: %v", err)
	}
	var meta map[string]string
	if err := json.Unmarshal(header["__metadata__"], &meta); err != nil {
		t.Fatalf("__metadata__ is not a map of strings: %v", err)
	}
	if meta["format"] != "qtool.qmodel" {
		t.Errorf("format %q, want qtool.qmodel", meta["format"])
	}
	if meta["version"] != "1" {
		t.Errorf("version %q, want 1", meta["version"])
	}
	if !strings.HasPrefix(meta["checksum"], "sha256:") || len(meta["checksum"]) != 7+64 {
		t.Errorf("checksum %q is not sha256:<64 hex digits>", meta["checksum"])
	}

	// Every array starts at a multiple of its element size.
	for name, raw := range header {
		if name == "__metadata__" {
			continue
		}
		var e headerEntry
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("array %q: %v", name, err)
		}
		if e.DataOffsets[0]%dtypeSize(e.DType) != 0 {
			t.Errorf("array %q (%s) starts at data offset %d, not aligned to its element size", name, e.DType, e.DataOffsets[0])
		}
	}
}

func TestQModelChecksumRule(t *testing.T) {
	data := encodeSmall(t)
	at := bytes.Index(data, []byte(checksumKey)) + len(checksumKey)
	stored := string(data[at : at+64])

	zeroed := bytes.Clone(data)
	copy(zeroed[at:], strings.Repeat("0", 64))
	sum := sha256.Sum256(zeroed)
	if got := hex.EncodeToString(sum[:]); got != stored {
		t.Errorf("stored checksum %s, want SHA-256 of the file with the digits zeroed %s", stored, got)
	}
}

func TestQModelEveryByteFlipFails(t *testing.T) {
	data := encodeSmall(t)
	for _, mask := range []byte{0x01, 0x80, 0xFF} {
		for i := range data {
			bad := bytes.Clone(data)
			bad[i] ^= mask
			_, err := DecodeQModel(bad)
			if err == nil {
				t.Errorf("byte %d xor %#x: DecodeQModel accepted the corrupted file", i, mask)
				continue
			}
			if !strings.Contains(err.Error(), "corrupt") {
				t.Errorf("byte %d xor %#x: error %q does not say the file is corrupt", i, mask, err)
			}
		}
	}
}

func TestQModelTruncatedFails(t *testing.T) {
	data := encodeSmall(t)
	for _, n := range []int{0, 3, 8, 9, 100, len(data) / 2, len(data) - 1} {
		_, err := DecodeQModel(data[:n])
		if err == nil {
			t.Errorf("truncated to %d bytes: DecodeQModel accepted it", n)
			continue
		}
		if !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("truncated to %d bytes: error %q does not say the file is corrupt", n, err)
		}
	}
}

func TestQModelAppendedByteFails(t *testing.T) {
	data := append(encodeSmall(t), 0)
	if _, err := DecodeQModel(data); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("one byte appended: error %v, want a corrupt-file error", err)
	}
}

func TestQModelDecodeErrors(t *testing.T) {
	setLength := func(n uint64) func([]byte) []byte {
		return func(d []byte) []byte {
			binary.LittleEndian.PutUint64(d, n)
			return d
		}
	}
	edit := func(old, new string) func(testing.TB, []byte) []byte {
		return func(t testing.TB, d []byte) []byte {
			return resign(t, d, func(h string) string {
				if !strings.Contains(h, old) {
					t.Fatalf("the header does not contain %q", old)
				}
				return strings.Replace(h, old, new, 1)
			})
		}
	}

	cases := []struct {
		name   string
		raw    func([]byte) []byte             // edits the bytes without re-signing
		signed func(testing.TB, []byte) []byte // edits the header and re-signs
		expect []string
	}{
		{name: "header length over the limit", raw: setLength(MaxQModelHeaderBytes + 1), expect: []string{"corrupt", "header length 16777217", "limit"}},
		{name: "header length over the file size", raw: setLength(1 << 20), expect: []string{"corrupt", "header length 1048576", "truncated"}},
		{name: "not a qmodel", raw: func([]byte) []byte { return []byte(`{"format": "qtool.float/1"}`) }, expect: []string{"not a .qmodel"}},
		{name: "future version", signed: edit(`"version":"1"`, `"version":"2"`), expect: []string{"version 2", "newer", "version 1", "update qtool"}},
		{name: "future version and bad checksum", raw: func(d []byte) []byte {
			return bytes.Replace(d, []byte(`"version":"1"`), []byte(`"version":"7"`), 1)
		}, expect: []string{"version 7", "corrupt"}},
		{name: "old version", signed: edit(`"version":"1"`, `"version":"0"`), expect: []string{`version "0"`, "not supported"}},
		{name: "unknown dtype", signed: edit(`"c1.bias":{"dtype":"I32"`, `"c1.bias":{"dtype":"F16"`), expect: []string{`array "c1.bias"`, `unknown dtype "F16"`}},
		{name: "duplicate name", signed: edit(`,"c1.bias":`, `,"c1.bias":{"dtype":"I8","shape":[0],"data_offsets":[0,0]},"c1.bias":`), expect: []string{`duplicate name "c1.bias"`}},
		{name: "missing array", signed: func(t testing.TB, d []byte) []byte {
			return resign(t, d, func(h string) string {
				return strings.Replace(h, `"c1.bias":{`, `"c1.bias_renamed":{`, 1)
			})
		}, expect: []string{`node "c1"`, `array "c1.bias" is missing`}},
		{name: "offsets outside the data", signed: edit(`"data_offsets":[0,`, `"data_offsets":[1000000,`), expect: []string{"outside the data section"}},
		{name: "size does not match shape", signed: edit(`"fc.bias":{"dtype":"I32","shape":[4]`, `"fc.bias":{"dtype":"I32","shape":[5]`), expect: []string{`array "fc.bias"`, "needs 20"}},
		{name: "negative dimension", signed: edit(`"fc.bias":{"dtype":"I32","shape":[4]`, `"fc.bias":{"dtype":"I32","shape":[-4]`), expect: []string{`array "fc.bias"`, "negative dimension"}},
		{name: "huge shape", signed: edit(`"fc.bias":{"dtype":"I32","shape":[4]`, `"fc.bias":{"dtype":"I32","shape":[4000000,4000000]`), expect: []string{`array "fc.bias"`, "more than"}},
		{name: "unknown entry field", signed: edit(`"fc.bias":{"dtype":"I32"`, `"fc.bias":{"endian":"big","dtype":"I32"`), expect: []string{`array "fc.bias"`, "endian"}},
		{name: "metadata not strings", signed: edit(`"version":"1"`, `"version":1`), expect: []string{"corrupt or not a .qmodel", "__metadata__"}},
		{name: "padding not spaces", signed: func(t testing.TB, d []byte) []byte {
			return resign(t, d, func(h string) string { return strings.TrimRight(h, " ") + "\n\n\n\n\n\n\n\nx" })
		}, expect: []string{"after the header object"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := encodeSmall(t)
			if c.raw != nil {
				data = c.raw(data)
			} else {
				data = c.signed(t, data)
			}
			_, err := DecodeQModel(data)
			if err == nil {
				t.Fatal("DecodeQModel accepted the file")
			}
			for _, want := range c.expect {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestQModelContentErrors(t *testing.T) {
	cases := []struct {
		name   string
		edit   func(q *QModel)
		expect []string
	}{
		{name: "node names a missing array", edit: func(q *QModel) { delete(q.Arrays, "fc.mult") }, expect: []string{`node "fc"`, `"fc.mult" is missing`}},
		{name: "wrong array dtype", edit: func(q *QModel) {
			q.Arrays["c1.bias"] = &QArray{DType: DTypeF32, Shape: []int{3}, Data: []float32{1, 2, 3}}
		}, expect: []string{`node "c1"`, "dtype F32", "expected I32"}},
		{name: "bias length", edit: func(q *QModel) { q.Arrays["fc.bias"].Shape = []int{3}; q.Arrays["fc.bias"].Data = []int32{1, 2, 3} }, expect: []string{`node "fc"`, "3 elements", "expected 4"}},
		{name: "data does not fill shape", edit: func(q *QModel) { q.Arrays["fc.bias"].Shape = []int{5} }, expect: []string{`array "fc.bias"`, "do not fill"}},
		{name: "dtype differs from data type", edit: func(q *QModel) { q.Arrays["fc.bias"].DType = DTypeU8 }, expect: []string{`array "fc.bias"`, "does not match"}},
		{name: "bad multiplier", edit: func(q *QModel) { q.Arrays["c1.shift"].Data.([]int32)[1] = 40 }, expect: []string{`node "c1"`, "shift 40"}},
		{name: "zero scale", edit: func(q *QModel) { q.Tensors[2].Scale = 0 }, expect: []string{`tensor "r1"`, "scale 0"}},
		{name: "zero point out of range", edit: func(q *QModel) { q.Tensors[2].ZeroPoint = 300 }, expect: []string{`tensor "r1"`, "zero point 300"}},
		{name: "int8 range on uint8", edit: func(q *QModel) { q.Tensors[2].QMin = -128 }, expect: []string{`tensor "r1"`, "exceeds"}},
		{name: "unknown op", edit: func(q *QModel) { q.Nodes[1].Op = "gelu" }, expect: []string{`node "r1"`, "unknown op"}},
		{name: "input defined later", edit: func(q *QModel) { q.Nodes[0].Inputs = []string{"fc"} }, expect: []string{`node "c1"`, `input "fc"`}},
		{name: "clamp outside the range", edit: func(q *QModel) { q.Nodes[1].ClampMax = 256 }, expect: []string{`node "r1"`, "clamp [0, 256]"}},
		{name: "missing tensor", edit: func(q *QModel) { q.Tensors = q.Tensors[:len(q.Tensors)-1] }, expect: []string{`node "fc"`, "no tensor entry"}},
		{name: "output names nothing", edit: func(q *QModel) { q.Outputs = []string{"logits"} }, expect: []string{`output "logits"`}},
		{name: "other version", edit: func(q *QModel) { q.Version = 2 }, expect: []string{"version 2"}},
		{name: "other rounding", edit: func(q *QModel) { q.Rounding = "half_up" }, expect: []string{`rounding "half_up"`}},
		{name: "float pool", edit: func(q *QModel) { q.Nodes[5].Float = true }, expect: []string{`node "p"`, "only conv2d and linear"}},
		{name: "add with one input", edit: func(q *QModel) { q.Nodes[3].Inputs = []string{"r1"} }, expect: []string{`node "a"`, "expected 2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := smallQModel()
			c.edit(q)
			_, err := EncodeQModel(q)
			if err == nil {
				t.Fatal("EncodeQModel accepted the model")
			}
			for _, want := range c.expect {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

func TestQModelReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadQModel(filepath.Join(dir, "missing.qmodel")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: error %v, want one that says no such file", err)
	}
	if _, err := ReadQModel(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("folder: error %v, want one that says not a regular file", err)
	}

	path := filepath.Join(dir, "bad.qmodel")
	data := encodeSmall(t)
	data[len(data)-1] ^= 1
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadQModel(path)
	if err == nil {
		t.Fatal("ReadQModel accepted a corrupted file")
	}
	for _, want := range []string{path, "file is corrupt: checksum mismatch", "re-run qtool quantize"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestWriteQModelKeepsOldFileOnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.qmodel")
	if err := WriteQModel(path, smallQModel()); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)

	bad := smallQModel()
	delete(bad.Arrays, "c1.weight")
	if err := WriteQModel(path, bad); err == nil {
		t.Fatal("WriteQModel accepted an inconsistent model")
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("a failed write changed the existing file")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("the folder has %d entries after a failed write, want only the old file", len(entries))
	}
}

func TestQModelJSONFileNamed(t *testing.T) {
	for _, data := range []string{`{"format": "qtool.float/1", "nodes": []}`, "\n  {\"format\": 1}"} {
		_, err := DecodeQModel([]byte(data))
		if err == nil || !strings.Contains(err.Error(), "JSON file, not a .qmodel") {
			t.Errorf("DecodeQModel(%q) = %v, want an error that calls it a JSON file", data, err)
		}
	}
}

// TestQModelHeaderLengthLikeJSON round-trips a model whose header length, 31520 = 0x7b20,
// makes the file start with the bytes of a space and '{'.
func TestQModelHeaderLengthLikeJSON(t *testing.T) {
	q := smallQModel()
	for pad := 0; pad < 40000; pad++ {
		data, err := EncodeQModel(q)
		if err != nil {
			t.Fatal(err)
		}
		n := binary.LittleEndian.Uint64(data)
		if n == 31520 {
			if _, err := DecodeQModel(data); err != nil {
				t.Fatalf("header length %d (bytes % x): DecodeQModel: %v", n, data[:4], err)
			}
			return
		}
		if n > 31520 {
			break
		}
		// Grow the header by the difference, in steps the 8-byte padding cannot hide.
		q.Name += strings.Repeat("x", int(max(1, (31520-n)/2)))
	}
	t.Skip("could not reach a header length of 31520 bytes by growing the model name")
}
