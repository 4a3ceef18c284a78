package gemm

import "fmt"

// Linear is a quantized fully connected layer, out = in * w^T, with uint8
// inputs [Batch][In] row-major, int8 weights [Out][In] (PyTorch's layout)
// and uint8 outputs [Batch][Out]. It runs as a 1x1 conv over a Batch x 1
// image with In channels, so it shares the conv kernels and epilogue.
type Linear struct {
	batch, inFeatures, outFeatures int
	conv                           *Conv
}

// NewLinear validates the sizes, the weights and the epilogue, checks the
// accumulator headroom as NewConv does, and packs the weights.
func NewLinear(batch, inFeatures, outFeatures int, w []int8, e Epilogue) (*Linear, error) {
	return newLinearPath(batch, inFeatures, outFeatures, w, e, activePath)
}

func newLinearPath(batch, inFeatures, outFeatures int, w []int8, e Epilogue, path kernelPath) (*Linear, error) {
	if batch < 1 || inFeatures < 1 || outFeatures < 1 {
		return nil, fmt.Errorf("gemm: invalid linear size batch %d, in %d, out %d, expected each at least 1",
			batch, inFeatures, outFeatures)
	}
	conv, err := newConvPath(linearShape(batch, inFeatures, outFeatures), w, e, path)
	if err != nil {
		return nil, err
	}
	return &Linear{batch: batch, inFeatures: inFeatures, outFeatures: outFeatures, conv: conv}, nil
}

// linearShape returns the 1x1 conv that computes a linear layer.
func linearShape(batch, inFeatures, outFeatures int) ConvShape {
	return ConvShape{
		Batch: 1, InH: batch, InW: 1, InC: inFeatures, OutC: outFeatures,
		KH: 1, KW: 1, StrideH: 1, StrideW: 1, DilationH: 1, DilationW: 1, Groups: 1,
	}
}

// Run computes out ([Batch][Out]) from in ([Batch][In]) with up to threads
// goroutines. It panics if a slice length does not match the sizes.
func (l *Linear) Run(in, out []uint8, threads int) {
	if len(in) != l.batch*l.inFeatures || len(out) != l.batch*l.outFeatures {
		panic(fmt.Sprintf("gemm: Linear.Run got %d input and %d output bytes, expected %d and %d",
			len(in), len(out), l.batch*l.inFeatures, l.batch*l.outFeatures))
	}
	l.conv.run(in, out, nil, threads)
}

// RunAccumulators computes the int32 accumulators of Run into acc
// ([Batch][Out]). It panics if a slice length does not match the sizes.
func (l *Linear) RunAccumulators(in []uint8, acc []int32) {
	if len(in) != l.batch*l.inFeatures || len(acc) != l.batch*l.outFeatures {
		panic(fmt.Sprintf("gemm: Linear.RunAccumulators got %d input bytes and %d accumulators, expected %d and %d",
			len(in), len(acc), l.batch*l.inFeatures, l.batch*l.outFeatures))
	}
	l.conv.run(in, nil, acc, 1)
}

// Path returns the kernel path that the Linear runs.
func (l *Linear) Path() string { return l.conv.Path() }
