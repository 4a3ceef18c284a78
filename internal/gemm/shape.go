package gemm

import "fmt"

// ConvShape describes a 2-D convolution on NHWC activations with weights in
// PyTorch layout [OutC][InC/Groups][KH][KW].
//
// The output size follows PyTorch's Conv2d:
// OutH = (InH + PadTop + PadBottom - DilationH*(KH-1) - 1)/StrideH + 1,
// and the same for the width.
type ConvShape struct {
	Batch, InH, InW, InC, OutC                     int
	KH, KW, StrideH, StrideW, DilationH, DilationW int
	PadTop, PadLeft, PadBottom, PadRight           int
	Groups                                         int
}

// OutH returns the output height. It may be zero or negative for an invalid
// shape, which Validate rejects.
func (s ConvShape) OutH() int {
	if s.StrideH <= 0 {
		return 0
	}
	span := s.InH + s.PadTop + s.PadBottom - s.DilationH*(s.KH-1) - 1
	if span < 0 {
		return 0
	}
	return span/s.StrideH + 1
}

// OutW returns the output width. It may be zero for an invalid shape, which
// Validate rejects.
func (s ConvShape) OutW() int {
	if s.StrideW <= 0 {
		return 0
	}
	span := s.InW + s.PadLeft + s.PadRight - s.DilationW*(s.KW-1) - 1
	if span < 0 {
		return 0
	}
	return span/s.StrideW + 1
}

// Validate returns an error unless every size is positive, the paddings are
// not negative, Groups divides InC and OutC, and the output has at least one
// pixel.
func (s ConvShape) Validate() error {
	positive := []struct {
		name  string
		value int
	}{
		{"Batch", s.Batch}, {"InH", s.InH}, {"InW", s.InW}, {"InC", s.InC}, {"OutC", s.OutC},
		{"KH", s.KH}, {"KW", s.KW}, {"StrideH", s.StrideH}, {"StrideW", s.StrideW},
		{"DilationH", s.DilationH}, {"DilationW", s.DilationW}, {"Groups", s.Groups},
	}
	for _, p := range positive {
		if p.value <= 0 {
			return fmt.Errorf("gemm: invalid conv shape: %s is %d, expected at least 1", p.name, p.value)
		}
	}

	pads := []struct {
		name  string
		value int
	}{
		{"PadTop", s.PadTop}, {"PadLeft", s.PadLeft}, {"PadBottom", s.PadBottom}, {"PadRight", s.PadRight},
	}
	for _, p := range pads {
		if p.value < 0 {
			return fmt.Errorf("gemm: invalid conv shape: %s is %d, expected at least 0", p.name, p.value)
		}
	}

	if s.InC%s.Groups != 0 || s.OutC%s.Groups != 0 {
		return fmt.Errorf("gemm: invalid conv shape: Groups %d does not divide InC %d and OutC %d", s.Groups, s.InC, s.OutC)
	}
	if s.OutH() < 1 || s.OutW() < 1 {
		return fmt.Errorf("gemm: invalid conv shape: output is %dx%d, the dilated %dx%d kernel does not fit the padded %dx%d input",
			s.OutH(), s.OutW(), s.DilationH*(s.KH-1)+1, s.DilationW*(s.KW-1)+1,
			s.InH+s.PadTop+s.PadBottom, s.InW+s.PadLeft+s.PadRight)
	}
	return nil
}

// inPerGroup returns the input channels each group reads.
func (s ConvShape) inPerGroup() int { return s.InC / s.Groups }

// outPerGroup returns the output channels each group writes.
func (s ConvShape) outPerGroup() int { return s.OutC / s.Groups }

// taps returns the number of kernel positions, KH*KW.
func (s ConvShape) taps() int { return s.KH * s.KW }

// depth returns K, the number of products summed into each accumulator.
func (s ConvShape) depth() int { return s.inPerGroup() * s.taps() }

// inputLen returns the byte length of an NHWC input.
func (s ConvShape) inputLen() int { return s.Batch * s.InH * s.InW * s.InC }

// outputLen returns the element count of an NHWC output.
func (s ConvShape) outputLen() int { return s.Batch * s.OutH() * s.OutW() * s.OutC }

// weightLen returns the element count of the weight tensor.
func (s ConvShape) weightLen() int { return s.OutC * s.depth() }

// isDepthwise reports whether every group maps one input channel to one
// output channel, which the depthwise kernels handle.
func (s ConvShape) isDepthwise() bool {
	return s.Groups > 1 && s.Groups == s.InC && s.Groups == s.OutC
}

// isPointwise reports whether the conv is a 1x1 conv with stride 1 and no
// padding, so that every output pixel reads exactly its own input pixel and
// the batch can be treated as one tall image.
func (s ConvShape) isPointwise() bool {
	return s.KH == 1 && s.KW == 1 && s.StrideH == 1 && s.StrideW == 1 &&
		s.PadTop == 0 && s.PadLeft == 0 && s.PadBottom == 0 && s.PadRight == 0
}
