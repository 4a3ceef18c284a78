package qinfer

import (
	"errors"
	"fmt"

	"github.com/qtool-dev/qtool/internal/affine"
	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// The rounding names that this executor implements, as QModel records them.
const (
	quantizeRounding = string(affine.RoundHalfToEven)
	requantRounding  = affine.RequantRounding
)

// New checks the model and prepares every node: it validates each tensor's parameters and each
// node's arrays against the arithmetic contract, packs the conv2d and linear weights, and
// checks every accumulator's int32 headroom. Each error names the tensor or the node. The
// Executor keeps a reference to q, which the caller must not modify afterwards.
func New(q *format.QModel, opt Options) (*Executor, error) {
	if q == nil {
		return nil, errors.New("qinfer: no model")
	}
	if err := checkHeader(q); err != nil {
		return nil, err
	}

	e := &Executor{
		model:   q,
		threads: defaultThreads(opt.Threads),
		tensors: make(map[string]*tensorInfo, len(q.Tensors)),
		lastUse: map[string]int{},
		isOut:   map[string]bool{},
	}
	for i := range q.Tensors {
		t, err := newTensorInfo(&q.Tensors[i])
		if err != nil {
			return nil, err
		}
		if _, dup := e.tensors[t.name]; dup {
			return nil, fmt.Errorf("qinfer: tensor %q is listed twice in the model", t.name)
		}
		e.tensors[t.name] = t
	}

	produced := map[string]bool{}
	for _, in := range q.Inputs {
		t, err := e.inputTensor(in)
		if err != nil {
			return nil, err
		}
		if produced[t.name] {
			return nil, fmt.Errorf("qinfer: input %q is listed twice", in.Name)
		}
		produced[t.name] = true
		e.inputs = append(e.inputs, t)
		e.order = append(e.order, t)
	}
	if len(e.inputs) == 0 {
		return nil, errors.New("qinfer: the model declares no inputs")
	}

	for i, qn := range q.Nodes {
		n, err := e.prepareNode(qn, produced)
		if err != nil {
			return nil, fmt.Errorf("qinfer: node %q (%s): %w", qn.Name, qn.Op, err)
		}
		for _, t := range n.inputs {
			e.lastUse[t.name] = i
		}
		produced[n.output.name] = true
		e.nodes = append(e.nodes, n)
		e.order = append(e.order, n.output)
	}

	if len(q.Outputs) == 0 {
		return nil, errors.New("qinfer: the model declares no outputs")
	}
	for _, name := range q.Outputs {
		if !produced[name] {
			return nil, fmt.Errorf("qinfer: output %q names no input or node", name)
		}
		e.outputs = append(e.outputs, e.tensors[name])
		e.isOut[name] = true
	}
	return e, nil
}

// checkHeader rejects a model whose version or rounding this executor does not implement.
func checkHeader(q *format.QModel) error {
	if q.Version != format.QModelVersion {
		return fmt.Errorf("qinfer: model version %d is not supported; this build runs version %d", q.Version, format.QModelVersion)
	}
	if q.Rounding != quantizeRounding {
		return fmt.Errorf("qinfer: the model's rounding %q is not supported; this build quantizes with %q", q.Rounding, quantizeRounding)
	}
	if q.RequantRounding != requantRounding {
		return fmt.Errorf("qinfer: the model's requantization rounding %q is not supported; this build implements %q", q.RequantRounding, requantRounding)
	}
	return nil
}

// newTensorInfo validates a QTensor: its shape, dtype, integer range and parameters.
func newTensorInfo(qt *format.QTensor) (*tensorInfo, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("qinfer: tensor %q: %s", qt.Name, fmt.Sprintf(format, args...))
	}
	if qt.Name == "" {
		return nil, errors.New("qinfer: a tensor has no name")
	}

	t := &tensorInfo{name: qt.Name, shape: qt.Shape}
	switch len(qt.Shape) {
	case 2:
		t.c, t.h, t.w = qt.Shape[1], 1, 1
	case 4:
		t.c, t.h, t.w = qt.Shape[1], qt.Shape[2], qt.Shape[3]
	default:
		return nil, bad("shape %s must be [1, C, H, W] or [1, C]", tensor.ShapeString(qt.Shape))
	}
	for _, d := range qt.Shape[1:] {
		if d < 1 {
			return nil, bad("shape %s has a dimension below 1", tensor.ShapeString(qt.Shape))
		}
	}
	if _, err := tensor.CheckedSize(qt.Shape[1:], format.MaxElements); err != nil {
		return nil, bad("%v", err)
	}

	var lo, hi int32
	switch qt.DType {
	case "uint8":
		lo, hi, t.offset = 0, 255, 0
	case "int8":
		lo, hi, t.offset = -128, 127, 128
	default:
		return nil, bad("dtype %q is not supported; expected uint8 or int8", qt.DType)
	}
	t.params = affine.Params{Scale: qt.Scale, ZeroPoint: qt.ZeroPoint, QMin: qt.QMin, QMax: qt.QMax}
	if err := t.params.Validate(); err != nil {
		return nil, bad("%v", err)
	}
	if qt.QMin < lo || qt.QMax > hi {
		return nil, bad("integer range [%d, %d] does not fit %s", qt.QMin, qt.QMax, qt.DType)
	}
	return t, nil
}

// inputTensor returns the tensor of a graph input and checks that the shapes agree.
func (e *Executor) inputTensor(in format.QInput) (*tensorInfo, error) {
	t, ok := e.tensors[in.Name]
	if !ok {
		return nil, fmt.Errorf("qinfer: input %q has no quantization parameters in the model's tensor list", in.Name)
	}
	if len(in.Shape) != len(t.shape) || !tensor.EqualShape(in.Shape[1:], t.shape[1:]) {
		return nil, fmt.Errorf("qinfer: input %q has shape %s but its tensor has shape %s",
			in.Name, tensor.ShapeString(in.Shape), tensor.ShapeString(t.shape))
	}
	return t, nil
}

// prepareNode resolves a node's tensors, checks its arrays and builds its kernel.
func (e *Executor) prepareNode(qn *format.QNode, produced map[string]bool) (*node, error) {
	if qn == nil || qn.Name == "" {
		return nil, errors.New("the node has no name")
	}
	n := &node{q: qn}
	for _, name := range qn.Inputs {
		if !produced[name] {
			return nil, fmt.Errorf("input %q is not a graph input or the output of an earlier node", name)
		}
		n.inputs = append(n.inputs, e.tensors[name])
	}
	if produced[qn.Name] {
		return nil, fmt.Errorf("the output name %q is already used by an input or an earlier node", qn.Name)
	}
	out, ok := e.tensors[qn.Name]
	if !ok {
		return nil, fmt.Errorf("the output tensor %q has no quantization parameters in the model's tensor list", qn.Name)
	}
	n.output = out

	if err := checkInputCount(qn); err != nil {
		return nil, err
	}
	var err error
	if qn.Float {
		n.kernel, err = newFloatKernel(e.model, n)
		return n, err
	}
	switch qn.Op {
	case "conv2d":
		n.kernel, err = newConvKernel(e.model, n)
	case "linear":
		n.kernel, err = newLinearKernel(e.model, n)
	case "add":
		n.kernel, err = newAddKernel(e.model, n)
	case "concat":
		n.kernel, err = newConcatKernel(e.model, n)
	case "maxpool2d", "avgpool2d", "global_avgpool":
		n.kernel, err = newPoolKernel(n)
	case "relu", "relu6", "clip":
		n.kernel, err = newClampKernel(n)
	case "flatten":
		n.kernel, err = newFlattenKernel(n)
	default:
		return nil, fmt.Errorf("op %q is not supported by the integer executor (supported: conv2d, linear, add, concat, maxpool2d, avgpool2d, global_avgpool, relu, relu6, clip, flatten)", qn.Op)
	}
	return n, err
}

// checkInputCount checks the number of inputs of an integer node.
func checkInputCount(qn *format.QNode) error {
	want := 1
	switch qn.Op {
	case "add":
		want = 2
	case "concat":
		if len(qn.Inputs) < 1 {
			return errors.New("concat has no inputs")
		}
		return nil
	}
	if len(qn.Inputs) != want {
		return fmt.Errorf("has %d inputs; expected %d", len(qn.Inputs), want)
	}
	return nil
}

// checkShape returns an error unless t has the shape want (batch dimension 1).
func checkShape(t *tensorInfo, want []int) error {
	if !tensor.EqualShape(t.shape, want) {
		return fmt.Errorf("tensor %q has shape %s; the op computes %s", t.name, tensor.ShapeString(t.shape), tensor.ShapeString(want))
	}
	return nil
}

// checkSameQuantization returns an error unless the output stores the same real values with
// the same integers as the input, as the contract requires for ops that move or clamp values.
func checkSameQuantization(n *node) error {
	in, out := n.inputs[0], n.output
	if !in.sameQuantization(out) {
		return fmt.Errorf("output %q (scale %g, zero point %d, range [%d, %d], offset %d) must have the quantization of input %q (scale %g, zero point %d, range [%d, %d], offset %d)",
			out.name, out.params.Scale, out.params.ZeroPoint, out.params.QMin, out.params.QMax, out.offset,
			in.name, in.params.Scale, in.params.ZeroPoint, in.params.QMin, in.params.QMax, in.offset)
	}
	return nil
}

// storedClamp returns the node's ClampMin and ClampMax in the stored byte domain of its output,
// after checking that they lie inside the output's integer range.
func storedClamp(n *node) (lo, hi int32, err error) {
	p := n.output.params
	if n.q.ClampMin > n.q.ClampMax || n.q.ClampMin < p.QMin || n.q.ClampMax > p.QMax {
		return 0, 0, fmt.Errorf("clamp [%d, %d] is not a range inside the output's integer range [%d, %d]",
			n.q.ClampMin, n.q.ClampMax, p.QMin, p.QMax)
	}
	return n.q.ClampMin + n.output.offset, n.q.ClampMax + n.output.offset, nil
}
