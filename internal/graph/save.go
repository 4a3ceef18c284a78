package graph

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"github.com/qtool-dev/qtool/internal/format"
)

// MarshalJSON returns the model's graph in canonical form: fixed key order, every attr of each
// op written out, two-space indentation. The same model always gives the same bytes.
func (m *Model) MarshalJSON() ([]byte, error) {
	type node struct {
		Name   string            `json:"name"`
		Op     Op                `json:"op"`
		Inputs []string          `json:"inputs"`
		Attrs  map[string]any    `json:"attrs,omitempty"`
		Params map[string]string `json:"params,omitempty"`
	}
	type input struct {
		Name       string          `json:"name"`
		Shape      []int           `json:"shape"`
		Preprocess *jsonPreprocess `json:"preprocess,omitempty"`
	}
	doc := struct {
		Format  string   `json:"format"`
		Name    string   `json:"name,omitempty"`
		Weights string   `json:"weights"`
		Inputs  []input  `json:"inputs"`
		Outputs []string `json:"outputs"`
		Nodes   []node   `json:"nodes"`
	}{Format: FormatVersion, Name: m.Name, Weights: m.Weights, Outputs: m.Outputs}

	for _, in := range m.Inputs {
		ji := input{Name: in.Name, Shape: in.Shape}
		if p := in.Preprocess; p != nil {
			scale := p.Scale
			ji.Preprocess = &jsonPreprocess{Scale: &scale, Mean: p.Mean, Std: p.Std}
		}
		doc.Inputs = append(doc.Inputs, ji)
	}
	for _, n := range m.Nodes {
		params := n.Params
		if len(params) == 0 {
			params = nil
		}
		doc.Nodes = append(doc.Nodes, node{Name: n.Name, Op: n.Op, Inputs: n.Inputs, Attrs: marshalAttrs(n), Params: params})
	}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Save writes the model to path and its parameters to an NPZ archive beside it, named after the
// JSON file (fused.json gets fused.npz), so that saving never overwrites another model's weights.
// Both files are written in full to temporary files before either replaces an old file, the
// archive first, so a failed save leaves the old pair and the JSON never names a missing file.
func (m *Model) Save(path string) error {
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	weights := base + ".npz"
	if filepath.Ext(path) == ".npz" {
		return fmt.Errorf("output %s must be a .json file", path)
	}

	arrays := map[string]func(io.Writer) error{}
	for key, t := range m.Params {
		arrays[key] = func(w io.Writer) error { return format.EncodeNPY(w, t) }
	}
	saved := *m
	saved.Weights = weights
	doc, err := saved.MarshalJSON()
	if err != nil {
		return err
	}
	return format.WriteFilesAtomic(
		format.AtomicFile{
			Path:  filepath.Join(filepath.Dir(path), weights),
			Write: func(w io.Writer) error { return format.WriteNPZ(w, arrays) },
		},
		format.AtomicFile{
			Path: path,
			Write: func(w io.Writer) error {
				_, err := w.Write(doc)
				return err
			},
		},
	)
}

// Hash returns a SHA-256 over the model's content: the canonical graph (without the weights
// path, which only gives the location of the values) and every parameter's key, shape and values.
// Calibration tables store it so that a table made for another model is detected.
func (m *Model) Hash() string {
	h := sha256.New()
	content := *m
	content.Weights = ""
	doc, _ := content.MarshalJSON()
	h.Write(doc)

	keys := make([]string, 0, len(m.Params))
	for k := range m.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b [8]byte
	for _, k := range keys {
		t := m.Params[k]
		h.Write([]byte(k))
		for _, d := range t.Shape {
			binary.LittleEndian.PutUint64(b[:], uint64(d))
			h.Write(b[:])
		}
		for _, v := range t.Data {
			binary.LittleEndian.PutUint32(b[:4], math.Float32bits(v))
			h.Write(b[:4])
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
