package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// MaxModelJSONBytes bounds the model file read into memory (64 MiB).
const MaxModelJSONBytes = 64 << 20

type jsonModel struct {
	Format  string      `json:"format"`
	Name    string      `json:"name,omitempty"`
	Weights string      `json:"weights,omitempty"`
	Inputs  []jsonInput `json:"inputs"`
	Outputs []string    `json:"outputs"`
	Nodes   []jsonNode  `json:"nodes"`
}

type jsonInput struct {
	Name       string          `json:"name"`
	Shape      []int           `json:"shape"`
	Preprocess *jsonPreprocess `json:"preprocess,omitempty"`
}

type jsonPreprocess struct {
	Scale *float64  `json:"scale,omitempty"`
	Mean  []float64 `json:"mean,omitempty"`
	Std   []float64 `json:"std,omitempty"`
}

type jsonNode struct {
	Name   string                     `json:"name"`
	Op     string                     `json:"op"`
	Inputs []string                   `json:"inputs"`
	Attrs  map[string]json.RawMessage `json:"attrs,omitempty"`
	Params map[string]string          `json:"params,omitempty"`
}

// Load reads a float model: the JSON graph at path and its parameters, then validates the graph
// and infers every tensor's shape. Every error names the file and the node or parameter.
func Load(path string) (*Model, error) {
	m, err := load(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

func load(path string) (*Model, error) {
	raw, err := readLimited(path, MaxModelJSONBytes)
	if err != nil {
		return nil, err
	}
	m, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	m.Dir = filepath.Dir(path)
	if err := m.loadParams(); err != nil {
		return nil, err
	}
	if err := m.InferShapes(); err != nil {
		return nil, err
	}
	return m, nil
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("cannot open the model: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, fmt.Errorf("is a folder; give the model's JSON file")
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("model file has %d bytes, more than the limit of %d", st.Size(), limit)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Parse decodes and checks the graph of a model JSON document without loading parameters or
// inferring shapes. The checks cover everything that needs no parameter: the format, ops, attrs,
// param roles, names and the order of nodes.
func Parse(raw []byte) (*Model, error) {
	if err := checkIsFloatModel(raw); err != nil {
		return nil, err
	}
	var jm jsonModel
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&jm); err != nil {
		return nil, describeJSONError(raw, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("invalid JSON: extra data after the model object")
	}
	if jm.Format != FormatVersion {
		return nil, fmt.Errorf("format %q is not supported; expected %q (see docs/model-format.md)", jm.Format, FormatVersion)
	}

	m := &Model{Name: jm.Name, Weights: jm.Weights, Outputs: jm.Outputs}
	if m.Weights == "" {
		m.Weights = "."
	}
	if len(jm.Inputs) == 0 {
		return nil, fmt.Errorf("the model declares no inputs")
	}
	if len(jm.Outputs) == 0 {
		return nil, fmt.Errorf("the model declares no outputs")
	}

	known := map[string]string{} // tensor name -> what defines it
	for _, ji := range jm.Inputs {
		in, err := parseInput(ji)
		if err != nil {
			return nil, err
		}
		if prev, dup := known[in.Name]; dup {
			return nil, fmt.Errorf("input %q: the name is already used by %s", in.Name, prev)
		}
		known[in.Name] = "an input"
		m.Inputs = append(m.Inputs, in)
	}

	for i, jn := range jm.Nodes {
		n, err := parseNode(i, jn)
		if err != nil {
			return nil, err
		}
		for _, in := range n.Inputs {
			if _, ok := known[in]; !ok {
				return nil, fmt.Errorf("node %q (%s): input %q is not a graph input or an earlier node; nodes must be listed in execution order and the graph must have no cycles", n.Name, n.Op, in)
			}
		}
		if prev, dup := known[n.Name]; dup {
			return nil, fmt.Errorf("node %q (%s): duplicate name, already used by %s", n.Name, n.Op, prev)
		}
		known[n.Name] = fmt.Sprintf("node %d", i)
		m.Nodes = append(m.Nodes, n)
	}

	for _, out := range m.Outputs {
		if _, ok := known[out]; !ok {
			return nil, fmt.Errorf("output %q names no input or node", out)
		}
	}
	return m, nil
}

// checkIsFloatModel recognises files that are not a float model JSON, such as a .qmodel or a
// calibration table given by mistake, so the error names what the file is.
func checkIsFloatModel(raw []byte) error {
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	if len(trimmed) == 0 {
		return fmt.Errorf("the file is empty; give the float model's JSON file")
	}
	if trimmed[0] != '{' {
		if bytes.Contains(raw[:min(len(raw), 4096)], []byte("qtool.qmodel")) {
			return fmt.Errorf("this is a quantized .qmodel file; give the float model's JSON file (qtool inspect reads .qmodel files)")
		}
		return fmt.Errorf("not a JSON model file (it starts with byte 0x%02x); give the float model's JSON file", trimmed[0])
	}
	var head struct {
		Format string `json:"format"`
	}
	if json.Unmarshal(raw, &head) == nil && head.Format != "" && head.Format != FormatVersion {
		if strings.HasPrefix(head.Format, "qtool.calib") {
			return fmt.Errorf("this is a calibration table (format %q), not a float model; give the model's JSON file", head.Format)
		}
		return fmt.Errorf("format %q is not supported; expected %q (see docs/model-format.md)", head.Format, FormatVersion)
	}
	return nil
}

// describeJSONError turns a decoding error into one with a line and column.
func describeJSONError(raw []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	offset := int64(-1)
	switch {
	case errors.As(err, &se):
		offset = se.Offset
	case errors.As(err, &te):
		offset = te.Offset
	}
	if offset < 0 {
		return fmt.Errorf("invalid model JSON: %v", err)
	}
	line, col := 1, 1
	for _, b := range raw[:min(int(offset), len(raw))] {
		if b == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Errorf("invalid model JSON at line %d, column %d: %v", line, col, err)
}

func parseInput(ji jsonInput) (Input, error) {
	in := Input{Name: ji.Name, Shape: ji.Shape}
	if in.Name == "" {
		return in, fmt.Errorf("an input has no name")
	}
	if len(in.Shape) != 2 && len(in.Shape) != 4 {
		return in, fmt.Errorf("input %q: shape %s must be [N, C, H, W] or [N, C]", in.Name, tensor.ShapeString(in.Shape))
	}
	for i, d := range in.Shape {
		if d <= 0 && !(i == 0 && d == -1) {
			return in, fmt.Errorf("input %q: dimension %d of shape %s must be positive (only the batch dimension may be -1)", in.Name, i, tensor.ShapeString(in.Shape))
		}
	}
	if _, err := tensor.CheckedSize(in.Shape[1:], format.MaxElements); err != nil {
		return in, fmt.Errorf("input %q: %v", in.Name, err)
	}

	if jp := ji.Preprocess; jp != nil {
		p := &Preprocess{Scale: 1, Mean: jp.Mean, Std: jp.Std}
		if jp.Scale != nil {
			p.Scale = *jp.Scale
		}
		channels := in.Shape[1]
		for _, v := range []struct {
			name string
			vals []float64
		}{{"mean", p.Mean}, {"std", p.Std}} {
			if len(v.vals) > 1 && len(v.vals) != channels {
				return in, fmt.Errorf("input %q: preprocess %s has %d values but the input has %d channels; give one value or one per channel", in.Name, v.name, len(v.vals), channels)
			}
		}
		for c, s := range p.Std {
			if !(s > 0) {
				return in, fmt.Errorf("input %q: preprocess std[%d] is %v; it must be positive", in.Name, c, s)
			}
		}
		if !(p.Scale > 0) {
			return in, fmt.Errorf("input %q: preprocess scale %v must be positive", in.Name, p.Scale)
		}
		in.Preprocess = p
	}
	return in, nil
}

func parseNode(i int, jn jsonNode) (*Node, error) {
	if jn.Name == "" {
		return nil, fmt.Errorf("node %d (%s) has no name", i, jn.Op)
	}
	n := &Node{Name: jn.Name, Op: Op(jn.Op), Inputs: jn.Inputs, Params: jn.Params}
	if n.Params == nil {
		n.Params = map[string]string{}
	}
	spec, ok := specs[n.Op]
	if !ok {
		return nil, fmt.Errorf("node %q: unknown op %q (supported: %s)", n.Name, jn.Op, strings.Join(KnownOps(), ", "))
	}
	switch {
	case spec.inputs > 0 && len(n.Inputs) != spec.inputs:
		return nil, fmt.Errorf("node %q (%s): has %d inputs; expected %d", n.Name, n.Op, len(n.Inputs), spec.inputs)
	case spec.inputs == -2 && len(n.Inputs) < 2:
		return nil, fmt.Errorf("node %q (%s): has %d inputs; expected two or more", n.Name, n.Op, len(n.Inputs))
	}
	if err := parseAttrs(n, jn.Attrs); err != nil {
		return nil, err
	}
	if err := checkParams(n); err != nil {
		return nil, err
	}
	return n, nil
}

// weightSource resolves the model's weights path inside Dir and opens it.
type weightSource struct {
	npz    *format.NPZ
	folder string
}

// resolveInside returns the absolute, symlink-free form of rel inside dir, or an error when it
// leaves dir.
func resolveInside(dir, rel, what string) (string, error) {
	if filepath.IsAbs(rel) {
		return "", fmt.Errorf("%s path %q is absolute; give a path relative to the model's folder", what, rel)
	}
	base, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("cannot resolve the model folder %q: %v", dir, err)
	}
	base, _ = filepath.Abs(base)
	full, err := filepath.EvalSymlinks(filepath.Join(base, rel))
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("%s %q: %v", what, rel, err)
	}
	full, _ = filepath.Abs(full)
	if full != base && !strings.HasPrefix(full, base+string(filepath.Separator)) {
		return "", fmt.Errorf("%s path %q resolves to %s, outside the model's folder %s; weights must stay beside the model", what, rel, full, base)
	}
	return full, nil
}

func (m *Model) openWeights() (*weightSource, error) {
	full, err := resolveInside(m.Dir, m.Weights, "weights")
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(full)
	if err != nil {
		return nil, fmt.Errorf("weights %q: %v", m.Weights, err)
	}
	if st.IsDir() {
		return &weightSource{folder: full}, nil
	}
	z, err := format.OpenNPZ(full)
	if err != nil {
		return nil, err
	}
	return &weightSource{npz: z}, nil
}

func (w *weightSource) close() {
	if w.npz != nil {
		w.npz.Close()
	}
}

func (w *weightSource) read(key string) (*format.Array, error) {
	if w.npz != nil {
		return w.npz.Read(key)
	}
	full, err := resolveInside(w.folder, key+".npy", "parameter")
	if err != nil {
		return nil, err
	}
	return format.ReadNPY(full)
}

// loadParams reads every parameter the nodes name, as float32, and rejects NaN and Inf.
func (m *Model) loadParams() error {
	src, err := m.openWeights()
	if err != nil {
		return err
	}
	defer src.close()

	m.Params = map[string]*tensor.Tensor{}
	var keys []string
	users := map[string]string{}
	for _, n := range m.Nodes {
		roles := make([]string, 0, len(n.Params))
		for role := range n.Params {
			roles = append(roles, role)
		}
		sort.Strings(roles)
		for _, role := range roles {
			key := n.Params[role]
			if _, seen := users[key]; !seen {
				users[key] = fmt.Sprintf("node %q (%s) param %q", n.Name, n.Op, role)
				keys = append(keys, key)
			}
		}
	}

	for _, key := range keys {
		if key == "" || strings.ContainsAny(key, "\x00") {
			return fmt.Errorf("%s: empty or invalid parameter key %q", users[key], key)
		}
		arr, err := src.read(key)
		if err != nil {
			return fmt.Errorf("%s: %w", users[key], err)
		}
		if arr.DType != format.Float32 && arr.DType != format.Float64 {
			return fmt.Errorf("%s: parameter %q has dtype %s; save weights as float32", users[key], key, arr.DType)
		}
		data, _ := arr.Float32()
		t := &tensor.Tensor{Shape: arr.Shape, Data: data}
		if i := t.FirstNonFinite(); i >= 0 {
			if wide, ok := arr.Data.([]float64); ok && !math.IsInf(wide[i], 0) && !math.IsNaN(wide[i]) {
				return fmt.Errorf("%s: parameter %q has %g at index %v, beyond the float32 range of about ±3.4e38; fix or retrain the model",
					users[key], key, wide[i], tensor.Index(t.Shape, i))
			}
			return fmt.Errorf("%s: parameter %q has %v at index %v; fix or retrain the model, qtool cannot quantize non-finite weights",
				users[key], key, t.Data[i], tensor.Index(t.Shape, i))
		}
		m.Params[key] = t
	}
	return nil
}

// InferShapes computes every tensor's shape (batch dimension 1) and checks each node against
// its inputs and params.
func (m *Model) InferShapes() error {
	m.Shapes = map[string][]int{}
	for _, in := range m.Inputs {
		s := append([]int{}, in.Shape...)
		s[0] = 1
		m.Shapes[in.Name] = s
	}
	for _, n := range m.Nodes {
		in := make([][]int, len(n.Inputs))
		for i, name := range n.Inputs {
			in[i] = m.Shapes[name]
		}
		out, err := m.inferShape(n, in)
		if err != nil {
			return err
		}
		m.Shapes[n.Name] = out
	}
	return nil
}
