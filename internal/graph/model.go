package graph

import (
	"fmt"

	"github.com/qtool-dev/qtool/internal/tensor"
)

// FormatVersion is the value of the float model's "format" key.
const FormatVersion = "qtool.float/1"

// Model is a float model: its graph, its loaded parameters and every tensor's inferred shape.
type Model struct {
	Name    string
	Weights string // location of the parameters, relative to Dir: an .npz archive or a folder
	Inputs  []Input
	Outputs []string
	Nodes   []*Node

	// Dir is the folder of the model's JSON file; parameter paths are resolved inside it.
	Dir string
	// Params maps a parameter key (conv1.weight) to its values.
	Params map[string]*tensor.Tensor
	// Shapes maps every tensor name to its shape with the batch dimension set to 1.
	Shapes map[string][]int
}

// Input is a graph input.
type Input struct {
	Name string
	// Shape is NCHW or NC. The first (batch) dimension is -1 or a fixed value; the executor
	// accepts any batch size either way.
	Shape      []int
	Preprocess *Preprocess
}

// Preprocess maps raw data to the model's input: x = (raw*Scale - Mean[c]) / Std[c].
// Mean and Std have one value or one per channel.
type Preprocess struct {
	Scale float64
	Mean  []float64
	Std   []float64
}

// Apply converts raw values of an [N, C, ...] batch in place.
func (p *Preprocess) Apply(data []float32, shape []int) {
	if p == nil {
		return
	}
	channels := 1
	if len(shape) > 1 {
		channels = shape[1]
	}
	inner := 1
	for _, d := range shape[min(2, len(shape)):] {
		inner *= d
	}
	for i := range data {
		c := (i / inner) % channels
		mean, std := pick(p.Mean, c, 0), pick(p.Std, c, 1)
		data[i] = float32((float64(data[i])*p.Scale - mean) / std)
	}
}

func pick(v []float64, c int, def float64) float64 {
	switch len(v) {
	case 0:
		return def
	case 1:
		return v[0]
	}
	return v[c]
}

// Node is one operation. It produces one tensor, named after the node.
type Node struct {
	Name   string
	Op     Op
	Inputs []string
	// Params maps a role (weight, bias, running_mean, ...) to a parameter key in Model.Params.
	Params map[string]string
	Attrs  Attrs
}

// Attrs holds the attributes of every op. Each op reads the fields that its row in
// docs/model-format.md names, and the other fields stay at their zero value.
type Attrs struct {
	Stride   [2]int // conv2d, pooling: [sh, sw]
	Padding  [4]int // conv2d, pooling: [top, left, bottom, right]
	Dilation [2]int // conv2d
	Groups   int    // conv2d
	Kernel   [2]int // pooling: [kh, kw]

	Eps             float64 // batchnorm
	Min, Max        float64 // clip
	CountIncludePad bool    // avgpool2d
	Axis            int     // concat
	DropoutP        float64 // dropout, kept only to write the model back unchanged

	// Activation is an activation that qtool fuse merged into a conv2d, linear or add.
	Activation Activation
}

// ActKind names a fused activation.
type ActKind string

// The fused activations. ActNone leaves the output unchanged.
const (
	ActNone  ActKind = ""
	ActRelu  ActKind = "relu"
	ActRelu6 ActKind = "relu6"
	ActClip  ActKind = "clip"
)

// Activation is a fused activation: a clamp of the node's output.
type Activation struct {
	Kind     ActKind
	Min, Max float64 // bounds for ActClip
}

// Bounds returns the clamp interval of the activation; -Inf/+Inf where it has none.
func (a Activation) Bounds() (lo, hi float64, ok bool) {
	switch a.Kind {
	case ActRelu:
		return 0, inf, true
	case ActRelu6:
		return 0, 6, true
	case ActClip:
		return a.Min, a.Max, true
	}
	return -inf, inf, false
}

// Param returns the tensor bound to role, or nil when the node has none.
func (m *Model) Param(n *Node, role string) *tensor.Tensor {
	key, ok := n.Params[role]
	if !ok {
		return nil
	}
	return m.Params[key]
}

// NodeByName returns the node that produces tensor name, or nil for graph inputs.
func (m *Model) NodeByName(name string) *Node {
	for _, n := range m.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Consumers returns, for each tensor, the nodes that read it (graph outputs are not counted).
func (m *Model) Consumers() map[string][]*Node {
	c := map[string][]*Node{}
	for _, n := range m.Nodes {
		for _, in := range n.Inputs {
			c[in] = append(c[in], n)
		}
	}
	return c
}

// IsOutput reports whether tensor name is a graph output.
func (m *Model) IsOutput(name string) bool {
	for _, o := range m.Outputs {
		if o == name {
			return true
		}
	}
	return false
}

// ParamCount returns the number of parameter values a node uses.
func (m *Model) ParamCount(n *Node) int {
	total := 0
	for _, key := range n.Params {
		if t := m.Params[key]; t != nil {
			total += t.Len()
		}
	}
	return total
}

// MACs returns the multiply-accumulate count of a node for one sample.
func (m *Model) MACs(n *Node) int64 {
	out := m.Shapes[n.Name]
	switch n.Op {
	case OpConv2D:
		w := m.Param(n, "weight")
		if w == nil {
			return 0
		}
		return int64(tensor.Size(out)) * int64(w.Shape[1]*w.Shape[2]*w.Shape[3])
	case OpLinear:
		w := m.Param(n, "weight")
		if w == nil {
			return 0
		}
		return int64(w.Shape[0]) * int64(w.Shape[1])
	}
	return 0
}

// CheckInputShape checks a batch's shape against a graph input: same rank and the same
// dimensions after the batch dimension.
func (in Input) CheckInputShape(shape []int) error {
	if len(shape) != len(in.Shape) {
		return fmt.Errorf("input %q expects shape %s (any batch size) but the data has shape %s",
			in.Name, tensor.ShapeString(in.Shape), tensor.ShapeString(shape))
	}
	for i := 1; i < len(shape); i++ {
		if shape[i] != in.Shape[i] {
			return fmt.Errorf("input %q expects shape %s (any batch size) but the data has shape %s",
				in.Name, tensor.ShapeString(in.Shape), tensor.ShapeString(shape))
		}
	}
	return nil
}
