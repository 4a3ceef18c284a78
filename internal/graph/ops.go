package graph

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/qtool-dev/qtool/internal/tensor"
)

var inf = math.Inf(1)

// Op names an operation of the float model format.
type Op string

// The ops of the float model format (docs/model-format.md).
const (
	OpConv2D        Op = "conv2d"
	OpLinear        Op = "linear"
	OpBatchNorm     Op = "batchnorm"
	OpRelu          Op = "relu"
	OpRelu6         Op = "relu6"
	OpClip          Op = "clip"
	OpMaxPool2D     Op = "maxpool2d"
	OpAvgPool2D     Op = "avgpool2d"
	OpGlobalAvgPool Op = "global_avgpool"
	OpAdd           Op = "add"
	OpConcat        Op = "concat"
	OpFlatten       Op = "flatten"
	OpIdentity      Op = "identity"
	OpDropout       Op = "dropout"
)

// opSpec lists what an op accepts: its attrs, its required and optional params, its input count
// (-2 means two or more).
type opSpec struct {
	attrs    []string
	params   []string
	optional []string
	inputs   int
}

var specs = map[Op]opSpec{
	OpConv2D:        {attrs: []string{"stride", "padding", "dilation", "groups", "activation", "act_min", "act_max"}, params: []string{"weight"}, optional: []string{"bias"}, inputs: 1},
	OpLinear:        {attrs: []string{"activation", "act_min", "act_max"}, params: []string{"weight"}, optional: []string{"bias"}, inputs: 1},
	OpBatchNorm:     {attrs: []string{"eps"}, params: []string{"running_mean", "running_var"}, optional: []string{"weight", "bias"}, inputs: 1},
	OpRelu:          {inputs: 1},
	OpRelu6:         {inputs: 1},
	OpClip:          {attrs: []string{"min", "max"}, inputs: 1},
	OpMaxPool2D:     {attrs: []string{"kernel", "stride", "padding"}, inputs: 1},
	OpAvgPool2D:     {attrs: []string{"kernel", "stride", "padding", "count_include_pad"}, inputs: 1},
	OpGlobalAvgPool: {inputs: 1},
	OpAdd:           {attrs: []string{"activation", "act_min", "act_max"}, inputs: 2},
	OpConcat:        {attrs: []string{"axis"}, inputs: -2},
	OpFlatten:       {inputs: 1},
	OpIdentity:      {inputs: 1},
	OpDropout:       {attrs: []string{"p"}, inputs: 1},
}

// KnownOps returns the op names qtool reads, sorted, for error messages.
func KnownOps() []string {
	names := make([]string, 0, len(specs))
	for op := range specs {
		names = append(names, string(op))
	}
	sort.Strings(names)
	return names
}

// parseAttrs fills n.Attrs from the JSON attrs object, with each op's defaults.
func parseAttrs(n *Node, raw map[string]json.RawMessage) error {
	spec := specs[n.Op]
	for key := range raw {
		if !contains(spec.attrs, key) {
			return fmt.Errorf("node %q (%s): unknown attr %q (accepted: %s)", n.Name, n.Op, key, orNone(spec.attrs))
		}
	}

	a := &n.Attrs
	a.Stride, a.Dilation, a.Groups, a.Eps, a.CountIncludePad, a.Axis = [2]int{1, 1}, [2]int{1, 1}, 1, 1e-5, true, 1
	p := attrParser{node: n, raw: raw}
	switch n.Op {
	case OpConv2D:
		p.pair("stride", &a.Stride, 1)
		p.padding(&a.Padding)
		p.pair("dilation", &a.Dilation, 1)
		p.integer("groups", &a.Groups, 1)
	case OpMaxPool2D, OpAvgPool2D:
		if _, ok := raw["kernel"]; !ok {
			return fmt.Errorf("node %q (%s): missing attr \"kernel\" ([kh, kw])", n.Name, n.Op)
		}
		p.pair("kernel", &a.Kernel, 1)
		a.Stride = a.Kernel
		p.pair("stride", &a.Stride, 1)
		p.padding(&a.Padding)
		p.boolean("count_include_pad", &a.CountIncludePad)
	case OpBatchNorm:
		p.number("eps", &a.Eps)
		if p.err == nil && !(a.Eps >= 0) {
			return fmt.Errorf("node %q (batchnorm): eps %v is negative; use the BatchNorm's eps (PyTorch's default is 1e-5)", n.Name, a.Eps)
		}
	case OpClip:
		for _, k := range []string{"min", "max"} {
			if _, ok := raw[k]; !ok {
				return fmt.Errorf("node %q (clip): missing attr %q", n.Name, k)
			}
		}
		p.number("min", &a.Min)
		p.number("max", &a.Max)
		if p.err == nil && !(a.Min < a.Max) {
			return fmt.Errorf("node %q (clip): min %v must be less than max %v", n.Name, a.Min, a.Max)
		}
	case OpConcat:
		p.integer("axis", &a.Axis, 1)
		if p.err == nil && a.Axis != 1 {
			return fmt.Errorf("node %q (concat): axis %d is not supported; only the channel axis 1 is", n.Name, a.Axis)
		}
	case OpDropout:
		p.number("p", &a.DropoutP)
	}
	if contains(spec.attrs, "activation") {
		p.activation(&a.Activation)
	}
	return p.err
}

type attrParser struct {
	node *Node
	raw  map[string]json.RawMessage
	err  error
}

func (p *attrParser) fail(key string, raw json.RawMessage, want string) {
	if p.err == nil {
		p.err = fmt.Errorf("node %q (%s): attr %q is %s; expected %s", p.node.Name, p.node.Op, key, string(raw), want)
	}
}

func (p *attrParser) ints(key string) ([]int, bool) {
	raw, ok := p.raw[key]
	if !ok || p.err != nil {
		return nil, false
	}
	var one int
	if json.Unmarshal(raw, &one) == nil {
		return []int{one}, true
	}
	var many []int
	if err := json.Unmarshal(raw, &many); err != nil {
		p.fail(key, raw, "an integer or a list of integers")
		return nil, false
	}
	return many, true
}

// pair reads [a, b] or a single integer used for both; each value must be >= lo.
func (p *attrParser) pair(key string, dst *[2]int, lo int) {
	v, ok := p.ints(key)
	if !ok {
		return
	}
	switch len(v) {
	case 1:
		*dst = [2]int{v[0], v[0]}
	case 2:
		*dst = [2]int{v[0], v[1]}
	default:
		p.fail(key, p.raw[key], "two integers [h, w]")
		return
	}
	if dst[0] < lo || dst[1] < lo {
		p.fail(key, p.raw[key], fmt.Sprintf("values of at least %d", lo))
	}
}

// padding reads [top, left, bottom, right], [ph, pw] or a single integer.
func (p *attrParser) padding(dst *[4]int) {
	v, ok := p.ints("padding")
	if !ok {
		return
	}
	switch len(v) {
	case 1:
		*dst = [4]int{v[0], v[0], v[0], v[0]}
	case 2:
		*dst = [4]int{v[0], v[1], v[0], v[1]}
	case 4:
		*dst = [4]int{v[0], v[1], v[2], v[3]}
	default:
		p.fail("padding", p.raw["padding"], "[top, left, bottom, right] or [ph, pw]")
		return
	}
	for _, x := range dst {
		if x < 0 {
			p.fail("padding", p.raw["padding"], "non-negative values")
		}
	}
}

func (p *attrParser) integer(key string, dst *int, lo int) {
	raw, ok := p.raw[key]
	if !ok || p.err != nil {
		return
	}
	if err := json.Unmarshal(raw, dst); err != nil || *dst < lo {
		p.fail(key, raw, fmt.Sprintf("an integer of at least %d", lo))
	}
}

func (p *attrParser) number(key string, dst *float64) {
	raw, ok := p.raw[key]
	if !ok || p.err != nil {
		return
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		p.fail(key, raw, "a number")
	}
}

func (p *attrParser) boolean(key string, dst *bool) {
	raw, ok := p.raw[key]
	if !ok || p.err != nil {
		return
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		p.fail(key, raw, "true or false")
	}
}

func (p *attrParser) activation(dst *Activation) {
	raw, ok := p.raw["activation"]
	if !ok || p.err != nil {
		if _, hasMin := p.raw["act_min"]; hasMin && p.err == nil {
			p.fail("act_min", p.raw["act_min"], "no act_min without activation \"clip\"")
		}
		return
	}
	var kind string
	if err := json.Unmarshal(raw, &kind); err != nil {
		p.fail("activation", raw, `"relu", "relu6" or "clip"`)
		return
	}
	dst.Kind = ActKind(kind)
	switch dst.Kind {
	case ActRelu, ActRelu6:
		if _, hasMin := p.raw["act_min"]; hasMin {
			p.fail("act_min", p.raw["act_min"], "no act_min unless activation is \"clip\"")
		}
	case ActClip:
		_, hasMin := p.raw["act_min"]
		_, hasMax := p.raw["act_max"]
		if !hasMin || !hasMax {
			p.fail("activation", raw, "act_min and act_max beside a clip activation")
			return
		}
		p.number("act_min", &dst.Min)
		p.number("act_max", &dst.Max)
		if p.err == nil && !(dst.Min < dst.Max) {
			p.fail("act_min", p.raw["act_min"], fmt.Sprintf("a value below act_max %v", dst.Max))
		}
	default:
		p.fail("activation", raw, `"relu", "relu6" or "clip"`)
	}
}

// marshalAttrs writes a node's attrs in canonical form: every attr of the op, keys sorted, so
// that writing a loaded model gives the same bytes each time.
func marshalAttrs(n *Node) map[string]any {
	a := n.Attrs
	out := map[string]any{}
	switch n.Op {
	case OpConv2D:
		out["stride"], out["padding"], out["dilation"], out["groups"] = a.Stride, a.Padding, a.Dilation, a.Groups
	case OpMaxPool2D:
		out["kernel"], out["stride"], out["padding"] = a.Kernel, a.Stride, a.Padding
	case OpAvgPool2D:
		out["kernel"], out["stride"], out["padding"], out["count_include_pad"] = a.Kernel, a.Stride, a.Padding, a.CountIncludePad
	case OpBatchNorm:
		out["eps"] = a.Eps
	case OpClip:
		out["min"], out["max"] = a.Min, a.Max
	case OpConcat:
		out["axis"] = a.Axis
	case OpDropout:
		out["p"] = a.DropoutP
	}
	if a.Activation.Kind != ActNone {
		out["activation"] = string(a.Activation.Kind)
		if a.Activation.Kind == ActClip {
			out["act_min"], out["act_max"] = a.Activation.Min, a.Activation.Max
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// checkParams checks that a node names exactly the params its op takes.
func checkParams(n *Node) error {
	spec := specs[n.Op]
	for _, role := range spec.params {
		if _, ok := n.Params[role]; !ok {
			return fmt.Errorf("node %q (%s): missing param %q", n.Name, n.Op, role)
		}
	}
	for role := range n.Params {
		if !contains(spec.params, role) && !contains(spec.optional, role) {
			return fmt.Errorf("node %q (%s): unexpected param %q (accepted: %s)", n.Name, n.Op, role,
				orNone(append(append([]string{}, spec.params...), spec.optional...)))
		}
	}
	if n.Op == OpBatchNorm {
		_, w := n.Params["weight"]
		_, b := n.Params["bias"]
		if w != b {
			return fmt.Errorf("node %q (batchnorm): give both weight (gamma) and bias (beta), or neither for a BatchNorm without affine parameters", n.Name)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	sorted := append([]string{}, list...)
	sort.Strings(sorted)
	return strings.Join(sorted, ", ")
}

// inferShape computes a node's output shape from its input shapes and checks its params' shapes.
func (m *Model) inferShape(n *Node, in [][]int) ([]int, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("node %q (%s): %s", n.Name, n.Op, fmt.Sprintf(format, args...))
	}
	x := in[0]
	rank4 := func() error {
		if len(x) != 4 {
			return bad("input %q has shape %s; expected [N, C, H, W]", n.Inputs[0], tensor.ShapeString(x))
		}
		return nil
	}
	a := n.Attrs

	switch n.Op {
	case OpConv2D:
		if err := rank4(); err != nil {
			return nil, err
		}
		w := m.Param(n, "weight")
		if len(w.Shape) != 4 {
			return nil, bad("weight %q has shape %s; expected [out, in/groups, kh, kw]", n.Params["weight"], tensor.ShapeString(w.Shape))
		}
		c, o := x[1], w.Shape[0]
		if c%a.Groups != 0 || o%a.Groups != 0 {
			return nil, bad("groups %d must divide the input channels %d and the output channels %d", a.Groups, c, o)
		}
		if w.Shape[1] != c/a.Groups {
			return nil, bad("weight %q has shape %s but the input %q has %d channels and groups is %d, so dimension 1 must be %d",
				n.Params["weight"], tensor.ShapeString(w.Shape), n.Inputs[0], c, a.Groups, c/a.Groups)
		}
		if err := m.checkVector(n, "bias", o); err != nil {
			return nil, err
		}
		oh := convOut(x[2], w.Shape[2], a.Stride[0], a.Padding[0]+a.Padding[2], a.Dilation[0])
		ow := convOut(x[3], w.Shape[3], a.Stride[1], a.Padding[1]+a.Padding[3], a.Dilation[1])
		if oh <= 0 || ow <= 0 {
			return nil, bad("kernel %dx%d (dilation %v, padding %v) does not fit the %dx%d input", w.Shape[2], w.Shape[3], a.Dilation, a.Padding, x[2], x[3])
		}
		return []int{x[0], o, oh, ow}, nil

	case OpLinear:
		if len(x) != 2 {
			return nil, bad("input %q has shape %s; expected [N, features] (insert a flatten node)", n.Inputs[0], tensor.ShapeString(x))
		}
		w := m.Param(n, "weight")
		if len(w.Shape) != 2 || w.Shape[1] != x[1] {
			return nil, bad("weight %q has shape %s but the input %q has %d features; expected [out, %d]",
				n.Params["weight"], tensor.ShapeString(w.Shape), n.Inputs[0], x[1], x[1])
		}
		if err := m.checkVector(n, "bias", w.Shape[0]); err != nil {
			return nil, err
		}
		return []int{x[0], w.Shape[0]}, nil

	case OpBatchNorm:
		if len(x) != 4 && len(x) != 2 {
			return nil, bad("input %q has shape %s; expected [N, C, H, W] or [N, C]", n.Inputs[0], tensor.ShapeString(x))
		}
		for _, role := range []string{"running_mean", "running_var", "weight", "bias"} {
			if err := m.checkVector(n, role, x[1]); err != nil {
				return nil, err
			}
		}
		return x, nil

	case OpMaxPool2D, OpAvgPool2D:
		if err := rank4(); err != nil {
			return nil, err
		}
		if 2*a.Padding[0] > a.Kernel[0] || 2*a.Padding[2] > a.Kernel[0] || 2*a.Padding[1] > a.Kernel[1] || 2*a.Padding[3] > a.Kernel[1] {
			return nil, bad("padding %v must be at most half the kernel %v", a.Padding, a.Kernel)
		}
		oh := convOut(x[2], a.Kernel[0], a.Stride[0], a.Padding[0]+a.Padding[2], 1)
		ow := convOut(x[3], a.Kernel[1], a.Stride[1], a.Padding[1]+a.Padding[3], 1)
		if oh <= 0 || ow <= 0 {
			return nil, bad("kernel %v does not fit the %dx%d input", a.Kernel, x[2], x[3])
		}
		return []int{x[0], x[1], oh, ow}, nil

	case OpGlobalAvgPool:
		if err := rank4(); err != nil {
			return nil, err
		}
		return []int{x[0], x[1], 1, 1}, nil

	case OpAdd:
		if !tensor.EqualShape(in[0], in[1]) {
			return nil, bad("inputs %q %s and %q %s must have the same shape",
				n.Inputs[0], tensor.ShapeString(in[0]), n.Inputs[1], tensor.ShapeString(in[1]))
		}
		return x, nil

	case OpConcat:
		out := append([]int{}, x...)
		if len(x) < 2 {
			return nil, bad("input %q has shape %s; expected [N, C, ...]", n.Inputs[0], tensor.ShapeString(x))
		}
		for i := 1; i < len(in); i++ {
			s := in[i]
			same := len(s) == len(x)
			for d := 0; same && d < len(s); d++ {
				same = d == 1 || s[d] == x[d]
			}
			if !same {
				return nil, bad("input %q has shape %s but %q has %s; all dimensions but the channel axis must match",
					n.Inputs[i], tensor.ShapeString(s), n.Inputs[0], tensor.ShapeString(x))
			}
			out[1] += s[1]
		}
		return out, nil

	case OpFlatten:
		if len(x) < 2 {
			return nil, bad("input %q has shape %s; expected at least [N, C]", n.Inputs[0], tensor.ShapeString(x))
		}
		return []int{x[0], tensor.Size(x[1:])}, nil
	}
	return x, nil
}

func (m *Model) checkVector(n *Node, role string, want int) error {
	t := m.Param(n, role)
	if t == nil {
		return nil
	}
	if len(t.Shape) != 1 || t.Shape[0] != want {
		return fmt.Errorf("node %q (%s): %s %q has shape %s; expected [%d]", n.Name, n.Op, role, n.Params[role], tensor.ShapeString(t.Shape), want)
	}
	return nil
}

// convOut is PyTorch's output size with ceil_mode off: floor((in + pad - dil*(k-1) - 1)/stride) + 1.
func convOut(in, k, stride, pad, dil int) int {
	span := in + pad - dil*(k-1) - 1
	if span < 0 {
		return 0
	}
	return span/stride + 1
}
