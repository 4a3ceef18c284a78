package format

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"codeberg.org/sbinet/npyio/npy"

	"github.com/qtool-dev/qtool/internal/tensor"
)

// Limits that an NPY header is checked against before any memory is allocated for its data.
const (
	// MaxNPYHeaderBytes bounds the header dictionary. NumPy writes about 128 bytes; 64 KiB leaves
	// room for long shapes and rejects headers that claim gigabytes.
	MaxNPYHeaderBytes = 64 << 10
	// MaxElements bounds the element count of one array (2^31-1, the int32 range used by the
	// integer kernels' indexing).
	MaxElements = 1<<31 - 1
)

var npyMagic = []byte("\x93NUMPY")

// DType names an NPY element type in NumPy's spelling (float32, uint8, ...).
type DType string

// The element types qtool reads. Object arrays, strings, complex and structured types are rejected.
const (
	Float32 DType = "float32"
	Float64 DType = "float64"
	Uint8   DType = "uint8"
	Int8    DType = "int8"
	Int16   DType = "int16"
	Uint16  DType = "uint16"
	Int32   DType = "int32"
	Int64   DType = "int64"
	Bool    DType = "bool"
)

// NPYHeader is the parsed header of an NPY file.
type NPYHeader struct {
	DType     DType
	BigEndian bool
	Fortran   bool
	Shape     []int
	// DataOffset is the file offset of the array data, and DataBytes its length.
	DataOffset int64
	DataBytes  int64
}

// Elements returns the element count of the header's shape.
func (h *NPYHeader) Elements() int { return tensor.Size(h.Shape) }

func itemSize(dt DType) int {
	switch dt {
	case Uint8, Int8, Bool:
		return 1
	case Int16, Uint16:
		return 2
	case Float32, Int32:
		return 4
	default:
		return 8
	}
}

// parseDescr maps a NumPy type string such as '<f4' to a DType and its byte order.
func parseDescr(s string) (DType, bool, error) {
	if len(s) < 2 {
		return "", false, fmt.Errorf("dtype %q is not a NumPy type string", s)
	}
	order, code := s[0], s[1:]
	if strings.HasPrefix(code, "O") {
		return "", false, fmt.Errorf("dtype %q is an object array; qtool never loads pickled data, save the array with a numeric dtype", s)
	}
	types := map[string]DType{
		"f4": Float32, "f8": Float64, "u1": Uint8, "i1": Int8, "i2": Int16, "u2": Uint16,
		"i4": Int32, "i8": Int64, "b1": Bool,
	}
	dt, ok := types[code]
	if !ok {
		return "", false, fmt.Errorf("unsupported dtype %q; use float32, float64, uint8, int8, int16, uint16, int32, int64 or bool", s)
	}
	switch order {
	case '<', '|':
		return dt, false, nil
	case '>':
		return dt, itemSize(dt) > 1, nil
	case '=':
		return dt, false, nil
	}
	return "", false, fmt.Errorf("dtype %q has an unknown byte-order mark %q", s, order)
}

// ParseNPYHeader reads and checks the header at the start of r. size is the total length of
// the input; the header must fit MaxNPYHeaderBytes and the data it declares must fit in size.
func ParseNPYHeader(r io.Reader, size int64) (*NPYHeader, error) {
	var pre [10]byte
	if _, err := io.ReadFull(r, pre[:8]); err != nil {
		return nil, fmt.Errorf("file is too short for an NPY header (%d bytes)", size)
	}
	if !bytes.Equal(pre[:6], npyMagic) {
		return nil, fmt.Errorf("not an NPY file: the magic string \\x93NUMPY is missing")
	}

	major := pre[6]
	var headerLen, fixed int64
	switch major {
	case 1:
		if _, err := io.ReadFull(r, pre[8:10]); err != nil {
			return nil, fmt.Errorf("truncated NPY header")
		}
		headerLen, fixed = int64(binary.LittleEndian.Uint16(pre[8:10])), 10
	case 2, 3:
		var l [4]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return nil, fmt.Errorf("truncated NPY header")
		}
		headerLen, fixed = int64(binary.LittleEndian.Uint32(l[:])), 12
	default:
		return nil, fmt.Errorf("unsupported NPY format version %d.%d (supported: 1, 2, 3)", major, pre[7])
	}
	if headerLen > MaxNPYHeaderBytes {
		return nil, fmt.Errorf("NPY header claims %d bytes, more than the limit of %d", headerLen, MaxNPYHeaderBytes)
	}
	if fixed+headerLen > size {
		return nil, fmt.Errorf("truncated NPY file: the header needs %d bytes but the file has %d", fixed+headerLen, size)
	}

	raw := make([]byte, headerLen)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, fmt.Errorf("truncated NPY header: %v", err)
	}
	h, err := parseHeaderDict(string(raw))
	if err != nil {
		return nil, err
	}

	n, err := tensor.CheckedSize(h.Shape, MaxElements)
	if err != nil {
		return nil, err
	}
	h.DataOffset = fixed + headerLen
	h.DataBytes = int64(n) * int64(itemSize(h.DType))
	if h.DataOffset+h.DataBytes > size {
		return nil, fmt.Errorf("truncated NPY file: shape %s of %s needs %d data bytes but only %d remain",
			tensor.ShapeString(h.Shape), h.DType, h.DataBytes, size-h.DataOffset)
	}
	return h, nil
}

// parseHeaderDict parses the Python dict literal of an NPY header:
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
func parseHeaderDict(s string) (*NPYHeader, error) {
	s = strings.TrimRight(s, " \n\x00")
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return nil, fmt.Errorf("malformed NPY header %q: not a dictionary", clip(s))
	}
	body := s[1 : len(s)-1]

	h := &NPYHeader{}
	seen := map[string]bool{}
	for len(strings.TrimSpace(body)) > 0 {
		body = strings.TrimSpace(body)
		key, rest, err := pyString(body)
		if err != nil {
			return nil, fmt.Errorf("malformed NPY header %q: %v", clip(s), err)
		}
		rest = strings.TrimSpace(rest)
		if !strings.HasPrefix(rest, ":") {
			return nil, fmt.Errorf("malformed NPY header %q: missing ':' after %q", clip(s), key)
		}
		rest = strings.TrimSpace(rest[1:])
		if seen[key] {
			return nil, fmt.Errorf("malformed NPY header %q: key %q appears twice", clip(s), key)
		}
		seen[key] = true

		switch key {
		case "descr":
			var descr string
			if descr, rest, err = pyString(rest); err != nil {
				return nil, fmt.Errorf("NPY header: 'descr' must be a type string such as '<f4': %v", err)
			}
			if h.DType, h.BigEndian, err = parseDescr(descr); err != nil {
				return nil, err
			}
		case "fortran_order":
			switch {
			case strings.HasPrefix(rest, "True"):
				h.Fortran, rest = true, rest[4:]
			case strings.HasPrefix(rest, "False"):
				h.Fortran, rest = false, rest[5:]
			default:
				return nil, fmt.Errorf("malformed NPY header %q: fortran_order must be True or False", clip(s))
			}
		case "shape":
			if h.Shape, rest, err = pyIntTuple(rest); err != nil {
				return nil, fmt.Errorf("malformed NPY header %q: %v", clip(s), err)
			}
		default:
			return nil, fmt.Errorf("malformed NPY header %q: unknown key %q", clip(s), key)
		}

		rest = strings.TrimSpace(rest)
		if strings.HasPrefix(rest, ",") {
			rest = rest[1:]
		} else if strings.TrimSpace(rest) != "" {
			return nil, fmt.Errorf("malformed NPY header %q: expected ',' after %q", clip(s), key)
		}
		body = rest
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return nil, fmt.Errorf("malformed NPY header %q: missing key %q", clip(s), k)
		}
	}
	return h, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// pyString parses a quoted Python string without escapes at the start of s.
func pyString(s string) (string, string, error) {
	if s == "" || (s[0] != '\'' && s[0] != '"') {
		return "", s, errors.New("expected a quoted string")
	}
	end := strings.IndexByte(s[1:], s[0])
	if end < 0 {
		return "", s, errors.New("unterminated string")
	}
	return s[1 : 1+end], s[end+2:], nil
}

// pyIntTuple parses a tuple of non-negative integers such as (2, 3) or (5,) or ().
func pyIntTuple(s string) ([]int, string, error) {
	if !strings.HasPrefix(s, "(") {
		return nil, s, errors.New("shape must be a tuple")
	}
	end := strings.IndexByte(s, ')')
	if end < 0 {
		return nil, s, errors.New("unterminated shape tuple")
	}
	shape := []int{}
	for _, tok := range strings.Split(s[1:end], ",") {
		tok = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(tok), "L"))
		if tok == "" {
			continue
		}
		d, err := strconv.Atoi(tok)
		if err != nil || d < 0 {
			return nil, s, fmt.Errorf("invalid dimension %q in shape", tok)
		}
		shape = append(shape, d)
	}
	return shape, s[end+1:], nil
}

// Array is an NPY array read into memory in C order with its original dtype.
// Data is one of []float32, []float64, []uint8, []int8, []int16, []uint16, []int32, []int64, []bool.
type Array struct {
	DType DType
	Shape []int
	Data  any
}

// ReadNPY reads a whole NPY file. Errors name the file.
func ReadNPY(path string) (*Array, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, unwrapPath(err))
	}
	a, err := DecodeNPY(buf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// unwrapPath drops the *PathError wrapper whose text would repeat the path.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// DecodeNPY decodes an NPY file held in memory. ParseNPYHeader checks the header first. Then
// npyio decodes the data behind a canonical header, and Fortran-ordered data is transposed to
// C order.
func DecodeNPY(buf []byte) (*Array, error) {
	h, err := ParseNPYHeader(bytes.NewReader(buf), int64(len(buf)))
	if err != nil {
		return nil, err
	}
	data := buf[h.DataOffset : h.DataOffset+h.DataBytes]
	return decodeData(h, data)
}

// decodeData decodes raw array bytes described by h.
func decodeData(h *NPYHeader, data []byte) (*Array, error) {
	canonical := canonicalNPY(h, data)
	r, err := npy.NewReader(bytes.NewReader(canonical))
	if err != nil {
		return nil, fmt.Errorf("npy decode: %w", err)
	}

	var out any
	switch h.DType {
	case Float32:
		v := make([]float32, h.Elements())
		err, out = r.Read(&v), v
	case Float64:
		v := make([]float64, h.Elements())
		err, out = r.Read(&v), v
	case Uint8:
		v := make([]uint8, h.Elements())
		err, out = r.Read(&v), v
	case Int8:
		v := make([]int8, h.Elements())
		err, out = r.Read(&v), v
	case Int16:
		v := make([]int16, h.Elements())
		err, out = r.Read(&v), v
	case Uint16:
		v := make([]uint16, h.Elements())
		err, out = r.Read(&v), v
	case Int32:
		v := make([]int32, h.Elements())
		err, out = r.Read(&v), v
	case Int64:
		v := make([]int64, h.Elements())
		err, out = r.Read(&v), v
	case Bool:
		v := make([]bool, h.Elements())
		err, out = r.Read(&v), v
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("npy decode: %w", err)
	}

	a := &Array{DType: h.DType, Shape: append([]int{}, h.Shape...), Data: out}
	if h.Fortran && len(h.Shape) > 1 {
		a.Data = fortranToC(a.Data, h.Shape)
	}
	return a, nil
}

// canonicalNPY builds a version 1 NPY file that npyio's header parser reads reliably: keys in
// NumPy's order, the byte order made explicit, C order (the caller transposes Fortran data).
func canonicalNPY(h *NPYHeader, data []byte) []byte {
	codes := map[DType]string{
		Float32: "f4", Float64: "f8", Uint8: "u1", Int8: "i1", Int16: "i2", Uint16: "u2",
		Int32: "i4", Int64: "i8", Bool: "b1",
	}
	order := "<"
	if h.BigEndian {
		order = ">"
	}
	if itemSize(h.DType) == 1 {
		order = "|"
	}
	dims := make([]string, len(h.Shape))
	for i, d := range h.Shape {
		dims[i] = strconv.Itoa(d)
	}
	shape := "(" + strings.Join(dims, ", ")
	if len(dims) == 1 {
		shape += ","
	}
	shape += ")"

	dict := fmt.Sprintf("{'descr': '%s%s', 'fortran_order': False, 'shape': %s, }", order, codes[h.DType], shape)
	pad := 64 - (10+len(dict)+1)%64
	dict += strings.Repeat(" ", pad%64) + "\n"

	out := make([]byte, 0, 10+len(dict)+len(data))
	out = append(out, npyMagic...)
	out = append(out, 1, 0)
	out = binary.LittleEndian.AppendUint16(out, uint16(len(dict)))
	out = append(out, dict...)
	return append(out, data...)
}

// fortranToC reorders column-major data to row-major for the given shape.
func fortranToC(data any, shape []int) any {
	n := tensor.Size(shape)
	perm := make([]int, n) // perm[c] = Fortran index of C-order element c
	strides := make([]int, len(shape))
	s := 1
	for d := range shape {
		strides[d] = s
		s *= shape[d]
	}
	for c := range n {
		idx := tensor.Index(shape, c)
		f := 0
		for d, i := range idx {
			f += i * strides[d]
		}
		perm[c] = f
	}
	switch v := data.(type) {
	case []float32:
		return permute(v, perm)
	case []float64:
		return permute(v, perm)
	case []uint8:
		return permute(v, perm)
	case []int8:
		return permute(v, perm)
	case []int16:
		return permute(v, perm)
	case []uint16:
		return permute(v, perm)
	case []int32:
		return permute(v, perm)
	case []int64:
		return permute(v, perm)
	case []bool:
		return permute(v, perm)
	}
	return data
}

func permute[T any](v []T, perm []int) []T {
	out := make([]T, len(v))
	for c, f := range perm {
		out[c] = v[f]
	}
	return out
}

// Float32 returns the array's values as float32. float64 data is rounded to float32; integer
// data is converted exactly (uint8 and int8 images, for example). The result may share the
// array's memory when the dtype is already float32.
func (a *Array) Float32() ([]float32, error) {
	switch v := a.Data.(type) {
	case []float32:
		return v, nil
	case []float64:
		return convert[float64](v), nil
	case []uint8:
		return convert[uint8](v), nil
	case []int8:
		return convert[int8](v), nil
	case []int16:
		return convert[int16](v), nil
	case []uint16:
		return convert[uint16](v), nil
	}
	return nil, fmt.Errorf("dtype %s cannot be used as real values; save it as float32", a.DType)
}

// Ints returns integer data (labels) as int64. Float data is rejected.
func (a *Array) Ints() ([]int64, error) {
	out := make([]int64, tensor.Size(a.Shape))
	switch v := a.Data.(type) {
	case []uint8:
		for i, x := range v {
			out[i] = int64(x)
		}
	case []int8:
		for i, x := range v {
			out[i] = int64(x)
		}
	case []int16:
		for i, x := range v {
			out[i] = int64(x)
		}
	case []uint16:
		for i, x := range v {
			out[i] = int64(x)
		}
	case []int32:
		for i, x := range v {
			out[i] = int64(x)
		}
	case []int64:
		copy(out, v)
	default:
		return nil, fmt.Errorf("dtype %s is not an integer type; save labels as int64", a.DType)
	}
	return out, nil
}

func convert[T float64 | uint8 | int8 | int16 | uint16](v []T) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// EncodeNPY writes a float32 array as a version 1 little-endian C-order NPY file, with the
// header padded as NumPy pads it, so that the same tensor always gives the same bytes.
func EncodeNPY(w io.Writer, t *tensor.Tensor) error {
	h := &NPYHeader{DType: Float32, Shape: t.Shape}
	raw := make([]byte, 4*len(t.Data))
	for i, v := range t.Data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	_, err := w.Write(canonicalNPY(h, raw))
	return err
}
