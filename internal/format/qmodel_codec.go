package format

// This file reads and writes the .qmodel file: a safetensors file whose __metadata__ carries the
// QModel JSON and a SHA-256 checksum. docs/format.md specifies the layout byte by byte.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/qtool-dev/qtool/internal/affine"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// Constants of the .qmodel layout.
const (
	// QModelFormat is the value of the "format" metadata key.
	QModelFormat = "qtool.qmodel"
	// MaxQModelHeaderBytes bounds the JSON header. LeNet's header, with 7 nodes and 20 arrays,
	// takes 5,104 bytes, so 16 MiB leaves room for networks with thousands of layers.
	MaxQModelHeaderBytes = 16 << 20
	// MaxAddLeftShift is the largest AddLeftShift for which (qmax - qmin) << AddLeftShift fits
	// int32 for 8-bit integers: 255 << 23 < 2^31.
	MaxAddLeftShift = 23
)

// The safetensors dtypes a .qmodel stores.
const (
	DTypeI8  = "I8"
	DTypeU8  = "U8"
	DTypeI32 = "I32"
	DTypeF32 = "F32"
)

// checksumKey is the byte sequence that precedes the 64 hex digits of the checksum in the
// header. A key inside the embedded QModel JSON string is escaped (\"checksum\"), so the
// sequence occurs exactly once in a file this package writes.
const checksumKey = `"checksum":"sha256:`

// errCorrupt starts every error about a file whose bytes do not match its checksum or whose
// structure is broken before the checksum can be checked.
const errCorrupt = "file is corrupt"

// dtypeSize returns the element size in bytes of a .qmodel dtype, or 0 for an unknown one.
func dtypeSize(dtype string) int {
	switch dtype {
	case DTypeI8, DTypeU8:
		return 1
	case DTypeI32, DTypeF32:
		return 4
	}
	return 0
}

// WriteQModel checks q and writes it to path atomically: through a temporary file in the same
// folder that is renamed over path when complete.
func WriteQModel(path string, q *QModel) error {
	data, err := EncodeQModel(q)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return WriteFileAtomic(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// ReadQModel reads and checks the .qmodel file at path. Errors name the file; a file whose
// bytes do not match its checksum is reported as corrupt.
func ReadQModel(path string) (*QModel, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, unwrapPath(err))
	}
	defer f.Close()

	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, unwrapPath(err))
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: not a regular file; give a .qmodel file", path)
	}
	data := make([]byte, st.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, unwrapPath(err))
	}
	q, err := DecodeQModel(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return q, nil
}

// EncodeQModel returns the bytes of the .qmodel file for q. It returns an error if q is
// inconsistent (see DecodeQModel for the checks), so that it never writes a file that
// DecodeQModel rejects. The bytes depend only on q.
func EncodeQModel(q *QModel) ([]byte, error) {
	if err := checkQModel(q); err != nil {
		return nil, fmt.Errorf("invalid quantized model: %w", err)
	}

	content, err := marshalCompact(q)
	if err != nil {
		return nil, err
	}
	names := slices.Sorted(maps.Keys(q.Arrays))
	offsets := dataOffsets(q.Arrays)

	header := buildHeader(string(content), names, q.Arrays, offsets)
	dataBytes := 0
	for _, name := range names {
		dataBytes += arrayBytes(q.Arrays[name])
	}

	buf := make([]byte, 8, 8+len(header)+dataBytes)
	binary.LittleEndian.PutUint64(buf, uint64(len(header)))
	buf = append(buf, header...)
	dataStart := len(buf)
	buf = buf[:dataStart+dataBytes]
	for _, name := range names {
		putArray(buf[dataStart+offsets[name]:], q.Arrays[name])
	}

	// The header holds 64 '0' characters in place of the digits while the sum is taken.
	at := 8 + bytes.Index(header, []byte(checksumKey)) + len(checksumKey)
	sum := sha256.Sum256(buf)
	hex.Encode(buf[at:at+64], sum[:])
	return buf, nil
}

// dataOffsets places the arrays in the data section: 4-byte dtypes first, then 1-byte ones,
// each group by name. Every array then starts at a multiple of its element size, and the
// section has no gaps, as safetensors requires.
func dataOffsets(arrays map[string]*QArray) map[string]int {
	names := slices.Sorted(maps.Keys(arrays))
	sort.SliceStable(names, func(i, j int) bool {
		return dtypeSize(arrays[names[i]].DType) > dtypeSize(arrays[names[j]].DType)
	})

	offsets := make(map[string]int, len(names))
	at := 0
	for _, name := range names {
		offsets[name] = at
		at += arrayBytes(arrays[name])
	}
	return offsets
}

// buildHeader returns the JSON header: __metadata__ first, then one entry per array in name
// order, padded with spaces to a multiple of 8 bytes so that the data section starts at a
// multiple of 8 in the file. The checksum digits are all '0'.
func buildHeader(content string, names []string, arrays map[string]*QArray, offsets map[string]int) []byte {
	var h bytes.Buffer
	h.WriteString(`{"__metadata__":{`)
	h.WriteString(checksumKey)
	h.WriteString(strings.Repeat("0", 64))
	h.WriteString(`","format":`)
	h.Write(quoteJSON(QModelFormat))
	h.WriteString(`,"qmodel":`)
	h.Write(quoteJSON(content))
	h.WriteString(`,"version":`)
	h.Write(quoteJSON(strconv.Itoa(QModelVersion)))
	h.WriteString("}")

	for _, name := range names {
		a := arrays[name]
		h.WriteString(",")
		h.Write(quoteJSON(name))
		h.WriteString(`:{"dtype":`)
		h.Write(quoteJSON(a.DType))
		h.WriteString(`,"shape":[`)
		for i, d := range a.Shape {
			if i > 0 {
				h.WriteString(",")
			}
			h.WriteString(strconv.Itoa(d))
		}
		begin := offsets[name]
		fmt.Fprintf(&h, `],"data_offsets":[%d,%d]}`, begin, begin+arrayBytes(a))
	}
	h.WriteString("}")

	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	return h.Bytes()
}

// quoteJSON returns s as a JSON string without HTML escaping, so that <, > and & stay as they are.
func quoteJSON(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// marshalCompact returns v as compact JSON without HTML escaping.
func marshalCompact(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// arrayBytes returns the size of a checked array's data in bytes.
func arrayBytes(a *QArray) int {
	return tensor.Size(a.Shape) * dtypeSize(a.DType)
}

// putArray writes the little-endian bytes of a checked array to dst.
func putArray(dst []byte, a *QArray) {
	switch v := a.Data.(type) {
	case []int8:
		for i, x := range v {
			dst[i] = byte(x)
		}
	case []uint8:
		copy(dst, v)
	case []int32:
		for i, x := range v {
			binary.LittleEndian.PutUint32(dst[4*i:], uint32(x))
		}
	case []float32:
		for i, x := range v {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(x))
		}
	}
}

// headerEntry is one array's entry in the JSON header.
type headerEntry struct {
	DType       string `json:"dtype"`
	Shape       []int  `json:"shape"`
	DataOffsets []int  `json:"data_offsets"`
}

// DecodeQModel parses and checks the bytes of a .qmodel file. It checks, before it allocates
// memory for any array: the header length (at most MaxQModelHeaderBytes and within the file),
// the header JSON (no duplicate names, only spaces after it), the format, the checksum, the
// version, and every array's dtype, shape and data offsets (within the data section,
// contiguous, and matching dtype * shape). It then checks the QModel itself: the graph, every
// tensor's quantization parameters, and the arrays each node names with their dtypes and sizes.
func DecodeQModel(data []byte) (*QModel, error) {
	header, err := splitHeader(data)
	if err != nil {
		return nil, err
	}
	fields, err := parseHeaderFields(header)
	if err != nil {
		return nil, err
	}
	meta, err := parseMetadata(fields)
	if err != nil {
		return nil, err
	}
	if err := verifyChecksum(data, header, meta); err != nil {
		return nil, err
	}
	if err := checkVersion(meta["version"]); err != nil {
		return nil, err
	}

	content, ok := meta["qmodel"]
	if !ok {
		return nil, errors.New("invalid .qmodel: metadata has no \"qmodel\" key; re-run qtool quantize")
	}
	q := &QModel{}
	dec := json.NewDecoder(strings.NewReader(content))
	dec.DisallowUnknownFields()
	if err := dec.Decode(q); err != nil {
		return nil, fmt.Errorf("invalid .qmodel: the qmodel JSON: %v; re-run qtool quantize", err)
	}
	if dec.More() {
		return nil, errors.New("invalid .qmodel: extra data after the qmodel JSON; re-run qtool quantize")
	}

	q.Arrays, err = decodeArrays(data[8+len(header):], fields)
	if err != nil {
		return nil, fmt.Errorf("invalid .qmodel: %w; re-run qtool quantize", err)
	}
	if err := checkQModel(q); err != nil {
		return nil, fmt.Errorf("invalid .qmodel: %w; re-run qtool quantize", err)
	}
	return q, nil
}

// splitHeader returns the JSON header after checking its length against the limits.
func splitHeader(data []byte) ([]byte, error) {
	if len(data) < 8 {
		return nil, notQModel(data, fmt.Errorf("%s or not a .qmodel: it has %d bytes, fewer than the 8-byte header length", errCorrupt, len(data)))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > MaxQModelHeaderBytes {
		return nil, notQModel(data, fmt.Errorf("%s or not a .qmodel: header length %d is more than the limit of %d bytes", errCorrupt, n, MaxQModelHeaderBytes))
	}
	if n > uint64(len(data)-8) {
		return nil, notQModel(data, fmt.Errorf("%s or not a .qmodel: header length %d is more than the %d bytes after it; the file may be truncated", errCorrupt, n, len(data)-8))
	}
	header := data[8 : 8+n]
	if len(header) == 0 || header[0] != '{' {
		return nil, notQModel(data, fmt.Errorf("%s or not a .qmodel: the header does not start with '{'", errCorrupt))
	}
	return header, nil
}

// notQModel returns err, or a clearer error when data, which failed the header checks, starts
// like a JSON document: the float model given where the .qmodel belongs is a common mix-up. The
// check runs only after the length checks failed, because a real .qmodel's first 8 bytes are
// a length that may happen to read as a space and '{'.
func notQModel(data []byte, err error) error {
	if trimmed := bytes.TrimLeft(data[:min(len(data), 64)], " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '{' {
		return fmt.Errorf("this is a JSON file, not a .qmodel; give the file that qtool quantize writes (-o model.qmodel)")
	}
	return err
}

// headerField is one key of the header object with its undecoded value.
type headerField struct {
	name  string
	value json.RawMessage
}

// parseHeaderFields splits the header object into its keys, in file order, and rejects a
// duplicate key and anything but spaces after the object.
func parseHeaderFields(header []byte) ([]headerField, error) {
	bad := func(detail string, args ...any) error {
		return fmt.Errorf("%s or not a .qmodel: invalid header JSON: %s", errCorrupt, fmt.Sprintf(detail, args...))
	}

	dec := json.NewDecoder(bytes.NewReader(header))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, bad("expected an object")
	}
	var fields []headerField
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, bad("%v", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, bad("expected a key, found %v", tok)
		}
		if seen[name] {
			return nil, bad("duplicate name %q", name)
		}
		seen[name] = true

		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, bad("value of %q: %v", name, err)
		}
		fields = append(fields, headerField{name: name, value: value})
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad("%v", err)
	}

	rest := header[dec.InputOffset():]
	if len(bytes.TrimLeft(rest, " ")) != 0 {
		return nil, bad("unexpected data after the header object (the padding must be spaces)")
	}
	return fields, nil
}

// parseMetadata returns the __metadata__ map and checks its format key.
func parseMetadata(fields []headerField) (map[string]string, error) {
	var raw json.RawMessage
	for _, f := range fields {
		if f.name == "__metadata__" {
			raw = f.value
		}
	}
	if raw == nil {
		return nil, fmt.Errorf("%s or not a .qmodel: the header has no __metadata__", errCorrupt)
	}

	var meta map[string]string
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, fmt.Errorf("%s or not a .qmodel: __metadata__ must map names to strings: %v", errCorrupt, err)
	}
	if meta["format"] != QModelFormat {
		return nil, fmt.Errorf("%s or not a .qmodel: metadata format is %q, expected %q", errCorrupt, meta["format"], QModelFormat)
	}
	return meta, nil
}

// checkVersion returns an error unless version is this build's QModelVersion.
func checkVersion(version string) error {
	if version == strconv.Itoa(QModelVersion) {
		return nil
	}
	if v, err := strconv.Atoi(version); err == nil && v > QModelVersion {
		return fmt.Errorf("file version %d is newer than this build's version %d; update qtool to read it", v, QModelVersion)
	}
	return fmt.Errorf("file version %q is not supported; this build reads version %d; re-run qtool quantize", version, QModelVersion)
}

// verifyChecksum recomputes the SHA-256 of data with the stored digits replaced by '0' and
// compares it with the stored checksum.
func verifyChecksum(data, header []byte, meta map[string]string) error {
	at := bytes.Index(header, []byte(checksumKey))
	if at < 0 || bytes.Count(header, []byte(checksumKey)) != 1 {
		return fmt.Errorf("%s or not a .qmodel: the header must contain %s followed by 64 hex digits exactly once", errCorrupt, checksumKey)
	}
	at += len(checksumKey)
	if at+64 > len(header) {
		return fmt.Errorf("%s: the checksum is cut off", errCorrupt)
	}
	at += 8
	stored := string(data[at : at+64])

	zeroed := slices.Clone(data)
	copy(zeroed[at:at+64], strings.Repeat("0", 64))
	sum := sha256.Sum256(zeroed)
	computed := hex.EncodeToString(sum[:])

	if stored != computed || meta["checksum"] != "sha256:"+stored {
		if v, err := strconv.Atoi(meta["version"]); err == nil && v > QModelVersion {
			return fmt.Errorf("file version %d is newer than this build's version %d, or the file is corrupt (checksum mismatch); update qtool, or re-run qtool quantize", v, QModelVersion)
		}
		return fmt.Errorf("%s: checksum mismatch (stored sha256:%s, computed sha256:%s); re-run qtool quantize", errCorrupt, stored, computed)
	}
	return nil
}

// decodeArrays checks every array entry against the data section and then decodes the arrays.
// All sizes are checked before any array is allocated.
func decodeArrays(section []byte, fields []headerField) (map[string]*QArray, error) {
	type span struct {
		name       string
		begin, end int
	}
	entries := map[string]headerEntry{}
	var spans []span

	for _, f := range fields {
		if f.name == "__metadata__" {
			continue
		}
		var e headerEntry
		dec := json.NewDecoder(bytes.NewReader(f.value))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("array %q: invalid entry: %v", f.name, err)
		}
		size := dtypeSize(e.DType)
		if size == 0 {
			return nil, fmt.Errorf("array %q: unknown dtype %q (supported: I8, U8, I32, F32)", f.name, e.DType)
		}
		if e.Shape == nil {
			return nil, fmt.Errorf("array %q: missing shape", f.name)
		}
		count, err := tensor.CheckedSize(e.Shape, MaxElements)
		if err != nil {
			return nil, fmt.Errorf("array %q: %v", f.name, err)
		}
		if len(e.DataOffsets) != 2 {
			return nil, fmt.Errorf("array %q: data_offsets must be [begin, end]", f.name)
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if begin < 0 || end < begin || end > len(section) {
			return nil, fmt.Errorf("array %q: data_offsets [%d, %d] are outside the data section of %d bytes", f.name, begin, end, len(section))
		}
		if end-begin != count*size {
			return nil, fmt.Errorf("array %q: data_offsets [%d, %d] give %d bytes, but %s %s needs %d", f.name, begin, end, end-begin, e.DType, tensor.ShapeString(e.Shape), count*size)
		}
		entries[f.name] = e
		spans = append(spans, span{name: f.name, begin: begin, end: end})
	}

	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		return spans[i].end < spans[j].end
	})
	at := 0
	for _, s := range spans {
		if s.begin != at {
			return nil, fmt.Errorf("array %q starts at data offset %d, but the previous array ends at %d; arrays must cover the data section without gaps or overlaps", s.name, s.begin, at)
		}
		at = s.end
	}
	if at != len(section) {
		return nil, fmt.Errorf("the arrays end at data offset %d, but the data section has %d bytes", at, len(section))
	}

	arrays := make(map[string]*QArray, len(entries))
	for name, e := range entries {
		raw := section[e.DataOffsets[0]:e.DataOffsets[1]]
		arrays[name] = &QArray{DType: e.DType, Shape: e.Shape, Data: decodeArrayData(e.DType, raw)}
	}
	return arrays, nil
}

// decodeArrayData converts little-endian bytes of a known dtype to a typed slice.
func decodeArrayData(dtype string, raw []byte) any {
	switch dtype {
	case DTypeI8:
		v := make([]int8, len(raw))
		for i, b := range raw {
			v[i] = int8(b)
		}
		return v
	case DTypeU8:
		return slices.Clone(raw)
	case DTypeI32:
		v := make([]int32, len(raw)/4)
		for i := range v {
			v[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return v
	default: // DTypeF32
		v := make([]float32, len(raw)/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return v
	}
}

// The ops of a QModel node.
var qOps = []string{"conv2d", "linear", "add", "concat", "maxpool2d", "avgpool2d", "global_avgpool", "relu", "relu6", "clip", "flatten"}

// checkQModel returns the first inconsistency of q: the header fields, every tensor's
// quantization parameters, the graph's names and order, and the arrays each node names.
func checkQModel(q *QModel) error {
	if q == nil {
		return errors.New("no model")
	}
	if q.Version != QModelVersion {
		return fmt.Errorf("version %d differs from this build's %d", q.Version, QModelVersion)
	}
	if q.Rounding != string(affine.RoundHalfToEven) {
		return fmt.Errorf("rounding %q is not supported; expected %q", q.Rounding, affine.RoundHalfToEven)
	}
	if q.RequantRounding != affine.RequantRounding {
		return fmt.Errorf("requant_rounding %q is not supported; expected %q", q.RequantRounding, affine.RequantRounding)
	}
	if q.AddLeftShift < 0 || q.AddLeftShift > MaxAddLeftShift {
		return fmt.Errorf("add_left_shift %d is outside [0, %d]", q.AddLeftShift, MaxAddLeftShift)
	}
	if err := checkArrays(q.Arrays); err != nil {
		return err
	}

	tensors := map[string]*QTensor{}
	for i := range q.Tensors {
		t := &q.Tensors[i]
		if err := checkQTensor(t); err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		if tensors[t.Name] != nil {
			return fmt.Errorf("tensor %q is listed twice", t.Name)
		}
		tensors[t.Name] = t
	}

	defined := map[string]bool{}
	for _, in := range q.Inputs {
		if tensors[in.Name] == nil {
			return fmt.Errorf("input %q has no tensor entry", in.Name)
		}
		if defined[in.Name] {
			return fmt.Errorf("input %q is listed twice", in.Name)
		}
		defined[in.Name] = true
	}
	for _, n := range q.Nodes {
		if n == nil {
			return errors.New("a node is null")
		}
		if err := checkQNode(q, n, tensors, defined); err != nil {
			return fmt.Errorf("node %q (%s): %w", n.Name, n.Op, err)
		}
		defined[n.Name] = true
	}
	if len(q.Outputs) == 0 {
		return errors.New("the model has no outputs")
	}
	for _, out := range q.Outputs {
		if !defined[out] {
			return fmt.Errorf("output %q names no input or node", out)
		}
	}
	return nil
}

// checkArrays checks that each array's Data has the Go type of its dtype and len(Shape) elements.
func checkArrays(arrays map[string]*QArray) error {
	for _, name := range slices.Sorted(maps.Keys(arrays)) {
		a := arrays[name]
		if a == nil {
			return fmt.Errorf("array %q is nil", name)
		}
		count, err := tensor.CheckedSize(a.Shape, MaxElements)
		if err != nil {
			return fmt.Errorf("array %q: %v", name, err)
		}
		n := -1
		switch v := a.Data.(type) {
		case []int8:
			n = checkLen(a.DType == DTypeI8, len(v))
		case []uint8:
			n = checkLen(a.DType == DTypeU8, len(v))
		case []int32:
			n = checkLen(a.DType == DTypeI32, len(v))
		case []float32:
			n = checkLen(a.DType == DTypeF32, len(v))
		}
		if n < 0 {
			return fmt.Errorf("array %q: dtype %q does not match its data of type %T", name, a.DType, a.Data)
		}
		if n != count {
			return fmt.Errorf("array %q: %d values do not fill shape %s", name, n, tensor.ShapeString(a.Shape))
		}
	}
	return nil
}

func checkLen(dtypeMatches bool, n int) int {
	if !dtypeMatches {
		return -1
	}
	return n
}

// checkQTensor checks an activation tensor's dtype, bit width and quantization parameters.
func checkQTensor(t *QTensor) error {
	if t.Name == "" {
		return errors.New("empty name")
	}
	var scheme affine.Scheme
	switch t.DType {
	case "uint8":
		scheme = affine.Scheme{Bits: t.Bits}
	case "int8":
		scheme = affine.Scheme{Bits: t.Bits, Signed: true}
	default:
		return fmt.Errorf("dtype %q is not uint8 or int8", t.DType)
	}
	if err := scheme.Validate(); err != nil {
		return err
	}
	lo, hi := scheme.QRange()
	if t.QMin < lo || t.QMax > hi {
		return fmt.Errorf("integer range [%d, %d] exceeds %d-bit %s [%d, %d]", t.QMin, t.QMax, t.Bits, t.DType, lo, hi)
	}
	p := affine.Params{Scale: t.Scale, ZeroPoint: t.ZeroPoint, QMin: t.QMin, QMax: t.QMax}
	if err := p.Validate(); err != nil {
		return err
	}
	for _, d := range t.Shape {
		if d <= 0 {
			return fmt.Errorf("shape %s has a dimension that is not positive", tensor.ShapeString(t.Shape))
		}
	}
	return nil
}

// checkQNode checks one node: its op, its inputs (defined earlier), its output tensor, its clamp
// and the arrays its op needs.
func checkQNode(q *QModel, n *QNode, tensors map[string]*QTensor, defined map[string]bool) error {
	if n.Name == "" {
		return errors.New("empty name")
	}
	if defined[n.Name] {
		return errors.New("the name is already used by an input or an earlier node")
	}
	if !slices.Contains(qOps, n.Op) {
		return fmt.Errorf("unknown op (supported: %s)", strings.Join(qOps, ", "))
	}
	for _, in := range n.Inputs {
		if !defined[in] {
			return fmt.Errorf("input %q is not a graph input or an earlier node", in)
		}
	}
	out := tensors[n.Name]
	if out == nil {
		return errors.New("no tensor entry for its output")
	}
	if n.ClampMin > n.ClampMax || n.ClampMin < out.QMin || n.ClampMax > out.QMax {
		return fmt.Errorf("clamp [%d, %d] is empty or outside the output range [%d, %d]", n.ClampMin, n.ClampMax, out.QMin, out.QMax)
	}

	wantInputs := 1
	switch n.Op {
	case "add":
		wantInputs = 2
	case "concat":
		wantInputs = max(2, len(n.Inputs))
	}
	if len(n.Inputs) != wantInputs {
		return fmt.Errorf("has %d inputs; expected %d", len(n.Inputs), wantInputs)
	}

	a := arrayChecker{q: q, node: n}
	switch n.Op {
	case "conv2d", "linear":
		if n.Float {
			return a.checkFloatLayer()
		}
		return a.checkIntegerLayer()
	case "add":
		a.want(n.Mult, DTypeI32, 1)
		a.want(n.Shift, DTypeI32, 1)
		a.want(n.InputMult, DTypeI32, 2)
		a.want(n.InputShift, DTypeI32, 2)
		a.multipliers(n.Mult, n.Shift)
		a.multipliers(n.InputMult, n.InputShift)
		return a.err
	case "concat":
		a.want(n.InputMult, DTypeI32, len(n.Inputs))
		a.want(n.InputShift, DTypeI32, len(n.Inputs))
		a.multipliers(n.InputMult, n.InputShift)
		return a.err
	case "maxpool2d", "avgpool2d":
		if n.Kernel[0] < 1 || n.Kernel[1] < 1 || n.Stride[0] < 1 || n.Stride[1] < 1 {
			return fmt.Errorf("kernel %v and stride %v must be positive", n.Kernel, n.Stride)
		}
	}
	if n.Float {
		return errors.New("only conv2d and linear nodes can be kept in float")
	}
	return nil
}

// arrayChecker checks the arrays a node names and keeps the first error.
type arrayChecker struct {
	q    *QModel
	node *QNode
	err  error
}

func (c *arrayChecker) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf(format, args...)
	}
}

// want returns the named array after checking its dtype and, when count >= 0, its element count.
func (c *arrayChecker) want(name, dtype string, count int) *QArray {
	if c.err != nil {
		return nil
	}
	if name == "" {
		c.fail("names no %s array where one is required", dtype)
		return nil
	}
	a := c.q.Arrays[name]
	if a == nil {
		c.fail("array %q is missing", name)
		return nil
	}
	if a.DType != dtype {
		c.fail("array %q has dtype %s; expected %s", name, a.DType, dtype)
		return nil
	}
	if n := tensor.Size(a.Shape); count >= 0 && n != count {
		c.fail("array %q has %d elements; expected %d", name, n, count)
		return nil
	}
	return a
}

// multipliers checks that paired Mult and Shift arrays are valid affine.Multipliers.
func (c *arrayChecker) multipliers(multName, shiftName string) {
	if c.err != nil {
		return
	}
	mult := c.q.Arrays[multName].Data.([]int32)
	shift := c.q.Arrays[shiftName].Data.([]int32)
	for i := range mult {
		m := affine.Multiplier{Mult: mult[i], Shift: shift[i]}
		if err := m.Validate(); err != nil {
			c.fail("multiplier %d of %q: %v", i, multName, err)
			return
		}
	}
}

// checkIntegerLayer checks an int8 conv2d or linear: weight [O, ...] I8, bias [O] I32, weight
// scale [O] or [1] F32, and O multipliers.
func (c *arrayChecker) checkIntegerLayer() error {
	n := c.node
	rank := 2
	if n.Op == "conv2d" {
		rank = 4
		if n.Groups < 1 || n.Stride[0] < 1 || n.Stride[1] < 1 || n.Dilation[0] < 1 || n.Dilation[1] < 1 {
			return fmt.Errorf("groups %d, stride %v and dilation %v must be positive", n.Groups, n.Stride, n.Dilation)
		}
	}
	w := c.want(n.Weight, DTypeI8, -1)
	if c.err != nil {
		return c.err
	}
	if len(w.Shape) != rank || w.Shape[0] < 1 {
		return fmt.Errorf("weight %q has shape %s; expected rank %d with at least one output channel", n.Weight, tensor.ShapeString(w.Shape), rank)
	}
	channels := w.Shape[0]
	c.want(n.Bias, DTypeI32, channels)
	c.want(n.Mult, DTypeI32, channels)
	c.want(n.Shift, DTypeI32, channels)
	scales := c.want(n.WeightScale, DTypeF32, -1)
	if c.err != nil {
		return c.err
	}
	if k := tensor.Size(scales.Shape); k != 1 && k != channels {
		return fmt.Errorf("weight scale %q has %d elements; expected 1 or %d", n.WeightScale, k, channels)
	}
	for i, s := range scales.Data.([]float32) {
		if !(s > 0) || math.IsInf(float64(s), 1) {
			return fmt.Errorf("weight scale %d of %q is %g; expected a finite positive number", i, n.WeightScale, s)
		}
	}
	c.multipliers(n.Mult, n.Shift)
	return c.err
}

// checkFloatLayer checks a conv2d or linear kept in float: F32 weight and optional F32 bias.
func (c *arrayChecker) checkFloatLayer() error {
	n := c.node
	for role := range n.FloatParams {
		if role != "weight" && role != "bias" {
			return fmt.Errorf("float_params has role %q; expected weight and bias", role)
		}
	}
	w := c.want(n.FloatParams["weight"], DTypeF32, -1)
	if c.err != nil {
		return c.err
	}
	if len(w.Shape) < 2 {
		return fmt.Errorf("float weight %q has shape %s; expected [O, ...]", n.FloatParams["weight"], tensor.ShapeString(w.Shape))
	}
	if b, ok := n.FloatParams["bias"]; ok {
		c.want(b, DTypeF32, w.Shape[0])
	}
	for _, v := range []*float64{n.ActMin, n.ActMax} {
		if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0)) {
			return fmt.Errorf("activation bound %g is not finite", *v)
		}
	}
	return c.err
}
