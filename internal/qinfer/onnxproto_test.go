package qinfer

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"

	"google.golang.org/protobuf/encoding/protowire"
)

// onnxTensor is the part of an ONNX TensorProto that the backend node tests use.
type onnxTensor struct {
	name     string
	dims     []int
	dataType int32
	floats   []float32
	int32s   []int32
	int64s   []int64
	raw      []byte
}

// ONNX TensorProto.DataType values.
const (
	onnxFloat = 1
	onnxUint8 = 2
	onnxInt8  = 3
	onnxInt32 = 6
	onnxInt64 = 7
)

// TensorProto field numbers (onnx.proto).
const (
	fieldDims      = 1
	fieldDataType  = 2
	fieldFloatData = 4
	fieldInt32Data = 5
	fieldInt64Data = 7
	fieldName      = 8
	fieldRawData   = 9
)

// readONNXTensor parses a serialized TensorProto with the protobuf wire format. Repeated
// numeric fields may be packed or not, as protobuf allows.
func readONNXTensor(path string) (*onnxTensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t := &onnxTensor{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("%s: invalid tag: %v", path, protowire.ParseError(n))
		}
		b = b[n:]

		switch {
		case num == fieldDataType && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, fmt.Errorf("%s: data_type: %v", path, protowire.ParseError(n))
			}
			t.dataType, b = int32(v), b[n:]
		case (num == fieldName || num == fieldRawData) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, fmt.Errorf("%s: field %d: %v", path, num, protowire.ParseError(n))
			}
			if num == fieldName {
				t.name = string(v)
			} else {
				t.raw = append([]byte{}, v...)
			}
			b = b[n:]
		case num == fieldFloatData:
			n, err := consumeFloats(b, typ, &t.floats)
			if err != nil {
				return nil, fmt.Errorf("%s: float_data: %v", path, err)
			}
			b = b[n:]
		case num == fieldDims || num == fieldInt32Data || num == fieldInt64Data:
			var vals []uint64
			n, err := consumeVarints(b, typ, &vals)
			if err != nil {
				return nil, fmt.Errorf("%s: field %d: %v", path, num, err)
			}
			b = b[n:]
			for _, v := range vals {
				switch num {
				case fieldDims:
					t.dims = append(t.dims, int(int64(v)))
				case fieldInt32Data:
					t.int32s = append(t.int32s, int32(v))
				default:
					t.int64s = append(t.int64s, int64(v))
				}
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, fmt.Errorf("%s: field %d: %v", path, num, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return t, nil
}

// consumeVarints reads one varint or a packed list of them and returns the bytes consumed.
func consumeVarints(b []byte, typ protowire.Type, out *[]uint64) (int, error) {
	switch typ {
	case protowire.VarintType:
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return 0, protowire.ParseError(n)
		}
		*out = append(*out, v)
		return n, nil
	case protowire.BytesType:
		packed, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, protowire.ParseError(n)
		}
		for len(packed) > 0 {
			v, m := protowire.ConsumeVarint(packed)
			if m < 0 {
				return 0, protowire.ParseError(m)
			}
			*out = append(*out, v)
			packed = packed[m:]
		}
		return n, nil
	}
	return 0, fmt.Errorf("wire type %d is not a varint or a packed list", typ)
}

// consumeFloats reads one fixed32 float or a packed list of them and returns the bytes consumed.
func consumeFloats(b []byte, typ protowire.Type, out *[]float32) (int, error) {
	switch typ {
	case protowire.Fixed32Type:
		v, n := protowire.ConsumeFixed32(b)
		if n < 0 {
			return 0, protowire.ParseError(n)
		}
		*out = append(*out, math.Float32frombits(v))
		return n, nil
	case protowire.BytesType:
		packed, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, protowire.ParseError(n)
		}
		if len(packed)%4 != 0 {
			return 0, fmt.Errorf("packed floats of %d bytes", len(packed))
		}
		for i := 0; i < len(packed); i += 4 {
			*out = append(*out, math.Float32frombits(binary.LittleEndian.Uint32(packed[i:])))
		}
		return n, nil
	}
	return 0, fmt.Errorf("wire type %d is not fixed32 or a packed list", typ)
}

// size returns the element count of the dims (1 for a scalar).
func (t *onnxTensor) size() int {
	n := 1
	for _, d := range t.dims {
		n *= d
	}
	return n
}

// float32Values returns a FLOAT tensor's values from raw_data or float_data.
func (t *onnxTensor) float32Values() ([]float32, error) {
	if t.dataType != onnxFloat {
		return nil, fmt.Errorf("tensor %q has data type %d, not FLOAT", t.name, t.dataType)
	}
	vals := t.floats
	if t.raw != nil {
		if len(t.raw) != 4*t.size() {
			return nil, fmt.Errorf("tensor %q has %d raw bytes for %d floats", t.name, len(t.raw), t.size())
		}
		vals = make([]float32, t.size())
		for i := range vals {
			vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.raw[4*i:]))
		}
	}
	if len(vals) != t.size() {
		return nil, fmt.Errorf("tensor %q has %d floats for dims %v", t.name, len(vals), t.dims)
	}
	return vals, nil
}

// intValues returns a UINT8, INT8, INT32 or INT64 tensor's values. ONNX stores 8-bit values one
// per byte in raw_data, or one per element of int32_data.
func (t *onnxTensor) intValues() ([]int32, error) {
	var vals []int32
	switch {
	case t.raw != nil && (t.dataType == onnxUint8 || t.dataType == onnxInt8):
		for _, b := range t.raw {
			if t.dataType == onnxInt8 {
				vals = append(vals, int32(int8(b)))
			} else {
				vals = append(vals, int32(b))
			}
		}
	case t.raw != nil && t.dataType == onnxInt32:
		for i := 0; i+4 <= len(t.raw); i += 4 {
			vals = append(vals, int32(binary.LittleEndian.Uint32(t.raw[i:])))
		}
	case t.dataType == onnxUint8 || t.dataType == onnxInt8 || t.dataType == onnxInt32:
		for _, v := range t.int32s {
			if t.dataType == onnxInt8 {
				v = int32(int8(v))
			}
			vals = append(vals, v)
		}
	case t.dataType == onnxInt64:
		for _, v := range t.int64s {
			vals = append(vals, int32(v))
		}
	default:
		return nil, fmt.Errorf("tensor %q has data type %d, not an integer type this test reads", t.name, t.dataType)
	}
	if len(vals) != t.size() {
		return nil, fmt.Errorf("tensor %q has %d integers for dims %v", t.name, len(vals), t.dims)
	}
	return vals, nil
}
