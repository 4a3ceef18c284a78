package qinfer

import (
	"errors"
	"fmt"

	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/gemm"
)

// convKernel runs a conv2d node with a gemm.Conv built for one sample, one sample per call, so
// that the packed weights serve every batch size.
//
// TODO: a gemm.Conv is fixed to the batch size it was built for, so 1x1 convs cannot merge the
// batch into one GEMM here, and linear layers run one matrix-vector product per sample.
type convKernel struct {
	conv          *gemm.Conv
	inLen, outLen int
}

// newConvKernel builds the epilogue and the gemm.Conv of a conv2d node. gemm.NewConv folds
// Bias[c] - z_in * sum_k W[c][k] into each channel's start value and rejects the node when
// depth * max|x - z_in| * max|W[c]| + |Bias[c]| could pass 2^31 - 1 for some channel c.
func newConvKernel(q *format.QModel, n *node) (kernel, error) {
	in, out, qn := n.inputs[0], n.output, n.q
	if len(in.shape) != 4 {
		return nil, fmt.Errorf("input %q has shape %v; conv2d needs [N, C, H, W]", in.name, in.shape)
	}
	w, ok := q.Arrays[qn.Weight]
	if !ok || w == nil {
		return nil, fmt.Errorf("weight array %q is missing from the model", qn.Weight)
	}
	if len(w.Shape) != 4 {
		return nil, fmt.Errorf("weight array %q has shape %v; expected [out, in/groups, kh, kw]", qn.Weight, w.Shape)
	}

	s := gemm.ConvShape{
		Batch: 1, InH: in.h, InW: in.w, InC: in.c, OutC: w.Shape[0],
		KH: w.Shape[2], KW: w.Shape[3],
		StrideH: orOne(qn.Stride[0]), StrideW: orOne(qn.Stride[1]),
		DilationH: orOne(qn.Dilation[0]), DilationW: orOne(qn.Dilation[1]),
		PadTop: qn.Padding[0], PadLeft: qn.Padding[1], PadBottom: qn.Padding[2], PadRight: qn.Padding[3],
		Groups: orOne(qn.Groups),
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if w.Shape[1]*s.Groups != in.c {
		return nil, fmt.Errorf("weight %q has shape %v, but input %q has %d channels and groups is %d", qn.Weight, w.Shape, in.name, in.c, s.Groups)
	}
	if err := checkShape(out, []int{1, s.OutC, s.OutH(), s.OutW()}); err != nil {
		return nil, err
	}

	weights, err := int8Array(q, "weight", qn.Weight, s.OutC*w.Shape[1]*s.KH*s.KW)
	if err != nil {
		return nil, err
	}
	e, err := epilogue(q, n, s.OutC)
	if err != nil {
		return nil, err
	}
	conv, err := gemm.NewConv(s, weights, e)
	if err != nil {
		return nil, err
	}
	return &convKernel{conv: conv, inLen: in.sampleLen(), outLen: out.sampleLen()}, nil
}

func (k *convKernel) run(in [][]uint8, out []uint8, batch, threads int) error {
	forSamples(batch, threads, func(s, inner int) {
		k.conv.Run(in[0][s*k.inLen:][:k.inLen], out[s*k.outLen:][:k.outLen], inner)
	})
	return nil
}

// linearKernel runs a linear node with a gemm.Linear built for one sample.
type linearKernel struct {
	linear        *gemm.Linear
	inLen, outLen int
}

// newLinearKernel builds a linear node. Its headroom check is the one of newConvKernel with
// depth = in_features.
func newLinearKernel(q *format.QModel, n *node) (kernel, error) {
	in, out, qn := n.inputs[0], n.output, n.q
	if len(in.shape) != 2 {
		return nil, fmt.Errorf("input %q has shape %v; linear needs [N, features] (insert a flatten node)", in.name, in.shape)
	}
	w, ok := q.Arrays[qn.Weight]
	if !ok || w == nil {
		return nil, fmt.Errorf("weight array %q is missing from the model", qn.Weight)
	}
	if len(w.Shape) != 2 || w.Shape[1] != in.c {
		return nil, fmt.Errorf("weight array %q has shape %v; expected [out, %d] for input %q", qn.Weight, w.Shape, in.c, in.name)
	}
	outFeatures := w.Shape[0]
	if err := checkShape(out, []int{1, outFeatures}); err != nil {
		return nil, err
	}

	weights, err := int8Array(q, "weight", qn.Weight, outFeatures*in.c)
	if err != nil {
		return nil, err
	}
	e, err := epilogue(q, n, outFeatures)
	if err != nil {
		return nil, err
	}
	lin, err := gemm.NewLinear(1, in.c, outFeatures, weights, e)
	if err != nil {
		return nil, err
	}
	return &linearKernel{linear: lin, inLen: in.sampleLen(), outLen: out.sampleLen()}, nil
}

func (k *linearKernel) run(in [][]uint8, out []uint8, batch, threads int) error {
	forSamples(batch, threads, func(s, _ int) {
		k.linear.Run(in[0][s*k.inLen:][:k.inLen], out[s*k.outLen:][:k.outLen], 1)
	})
	return nil
}

// epilogue builds the gemm epilogue of a conv2d or linear node with outC output channels, with
// zero points and clamp bounds in the stored byte domain.
func epilogue(q *format.QModel, n *node, outC int) (gemm.Epilogue, error) {
	qn := n.q
	e := gemm.Epilogue{
		InZeroPoint:  n.inputs[0].params.ZeroPoint + n.inputs[0].offset,
		OutZeroPoint: n.output.params.ZeroPoint + n.output.offset,
	}
	var err error
	if e.ClampMin, e.ClampMax, err = storedClamp(n); err != nil {
		return e, err
	}
	if qn.Bias != "" {
		if e.Bias, err = int32Array(q, "bias", qn.Bias, outC); err != nil {
			return e, err
		}
	}
	if qn.Mult == "" || qn.Shift == "" {
		return e, errors.New("the node names no mult or shift array")
	}
	ms, err := multipliers(q, "mult", qn.Mult, "shift", qn.Shift, outC)
	if err != nil {
		return e, err
	}
	e.Mult = make([]int32, outC)
	e.Shift = make([]int32, outC)
	for c, m := range ms {
		e.Mult[c], e.Shift[c] = m.Mult, m.Shift
	}
	return e, nil
}

// orOne returns v, or 1 for an unset (zero) stride, dilation or group count, the defaults of
// the float model format.
func orOne(v int) int {
	if v == 0 {
		return 1
	}
	return v
}
