package qinfer

import (
	"errors"
	"fmt"
	"math"

	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/infer"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// floatKernel runs a node that was kept in float (--exclude). It dequantizes the inputs and runs
// the op with internal/infer on a one-node graph, so the arithmetic is the float executor's.
// Then it quantizes the output with the output's parameters (round half to even, then clamp).
type floatKernel struct {
	model  *graph.Model
	inputs []*tensorInfo
	output *tensorInfo
}

// floatOps are the ops a float node may have. batchnorm is not among them because a QNode does
// not store its eps.
var floatOps = map[string]graph.Op{
	"conv2d": graph.OpConv2D, "linear": graph.OpLinear, "add": graph.OpAdd, "concat": graph.OpConcat,
	"maxpool2d": graph.OpMaxPool2D, "avgpool2d": graph.OpAvgPool2D, "global_avgpool": graph.OpGlobalAvgPool,
	"relu": graph.OpRelu, "relu6": graph.OpRelu6, "clip": graph.OpClip, "flatten": graph.OpFlatten,
}

// newFloatKernel builds the one-node float graph of n with the F32 arrays that FloatParams
// names, and checks its shapes with graph's shape inference.
func newFloatKernel(q *format.QModel, n *node) (kernel, error) {
	qn := n.q
	op, ok := floatOps[qn.Op]
	if !ok {
		return nil, fmt.Errorf("op %q cannot run in float; float nodes support conv2d, linear, add, concat, pooling, relu, relu6, clip and flatten", qn.Op)
	}

	if err := checkFloatNode(qn); err != nil {
		return nil, err
	}

	gn := &graph.Node{Name: qn.Name, Op: op, Inputs: qn.Inputs, Params: map[string]string{}, Attrs: floatAttrs(qn)}
	m := &graph.Model{Name: qn.Name, Outputs: []string{qn.Name}, Nodes: []*graph.Node{gn}, Params: map[string]*tensor.Tensor{}}
	for _, t := range n.inputs {
		if m.NodeByName(t.name) != nil || hasInput(m, t.name) {
			continue
		}
		m.Inputs = append(m.Inputs, graph.Input{Name: t.name, Shape: append([]int{-1}, t.shape[1:]...)})
	}
	for role, name := range qn.FloatParams {
		x, err := float32Array(q, "float "+role, name)
		if err != nil {
			return nil, err
		}
		gn.Params[role] = name
		m.Params[name] = x
	}

	if op == graph.OpClip {
		if qn.ActMin == nil || qn.ActMax == nil {
			return nil, errors.New("a float clip needs act_min and act_max")
		}
		gn.Attrs.Min, gn.Attrs.Max = *qn.ActMin, *qn.ActMax
	}
	if err := m.InferShapes(); err != nil {
		return nil, err
	}
	if err := checkShape(n.output, m.Shapes[qn.Name]); err != nil {
		return nil, err
	}
	return &floatKernel{model: m, inputs: n.inputs, output: n.output}, nil
}

// checkFloatNode checks what graph's shape inference takes for granted: conv2d and linear have
// a weight and at most a bias, other ops have no parameters, and pooling windows and strides
// are at least 1.
func checkFloatNode(qn *format.QNode) error {
	layer := qn.Op == "conv2d" || qn.Op == "linear"
	if _, ok := qn.FloatParams["weight"]; layer && !ok {
		return fmt.Errorf("a float %s needs a weight in float_params", qn.Op)
	}
	for role := range qn.FloatParams {
		if !layer || (role != "weight" && role != "bias") {
			return fmt.Errorf("float_params role %q is not a parameter of %s", role, qn.Op)
		}
	}
	if qn.Op == "maxpool2d" || qn.Op == "avgpool2d" {
		a := floatAttrs(qn)
		if a.Kernel[0] < 1 || a.Kernel[1] < 1 || a.Stride[0] < 1 || a.Stride[1] < 1 {
			return fmt.Errorf("kernel %v and stride %v must be at least 1", a.Kernel, a.Stride)
		}
	}
	return nil
}

// floatAttrs converts a QNode's attributes to the float graph's, with the float format's
// defaults for unset (zero) strides, dilations and group counts.
func floatAttrs(qn *format.QNode) graph.Attrs {
	a := graph.Attrs{
		Stride:          [2]int{orOne(qn.Stride[0]), orOne(qn.Stride[1])},
		Padding:         qn.Padding,
		Dilation:        [2]int{orOne(qn.Dilation[0]), orOne(qn.Dilation[1])},
		Groups:          orOne(qn.Groups),
		Kernel:          qn.Kernel,
		CountIncludePad: qn.CountIncludePad,
		Axis:            1,
	}
	if (qn.Op == "maxpool2d" || qn.Op == "avgpool2d") && qn.Stride == [2]int{} {
		a.Stride = qn.Kernel
	}
	if qn.ActMin != nil || qn.ActMax != nil {
		lo, hi := math.Inf(-1), math.Inf(1)
		if qn.ActMin != nil {
			lo = *qn.ActMin
		}
		if qn.ActMax != nil {
			hi = *qn.ActMax
		}
		a.Activation = graph.Activation{Kind: graph.ActClip, Min: lo, Max: hi}
	}
	return a
}

func hasInput(m *graph.Model, name string) bool {
	for _, in := range m.Inputs {
		if in.Name == name {
			return true
		}
	}
	return false
}

func (k *floatKernel) run(in [][]uint8, out []uint8, batch, threads int) error {
	inputs := make(map[string]*tensor.Tensor, len(k.inputs))
	for i, t := range k.inputs {
		inputs[t.name] = dequantizeNCHW(in[i], t, batch)
	}
	res, err := infer.Run(k.model, inputs, infer.Options{Threads: threads})
	if err != nil {
		return err
	}
	copy(out, quantizeNCHW(res[k.output.name].Data, k.output, batch))
	return nil
}
