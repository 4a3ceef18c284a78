package gemm

import "fmt"

// ReferenceConv computes the convolution by its definition, one output
// value at a time, and writes uint8 outputs. It is the specification that
// the fast paths are tested against, and it is slow.
//
// in is [Batch][InH][InW][InC], out is [Batch][OutH][OutW][OutC] and w is
// [OutC][InC/Groups][KH][KW]. It returns the same errors as NewConv.
func ReferenceConv(s ConvShape, w []int8, e Epilogue, in, out []uint8) error {
	if err := checkConvArgs(s, w, &e); err != nil {
		return err
	}
	if len(in) != s.inputLen() || len(out) != s.outputLen() {
		return fmt.Errorf("gemm: reference conv got %d input and %d output bytes, expected %d and %d",
			len(in), len(out), s.inputLen(), s.outputLen())
	}

	acc := make([]int32, s.outputLen())
	referenceAccumulators(s, w, &e, in, acc)
	for i, v := range acc {
		out[i] = e.requantize(v, i%s.OutC)
	}
	return nil
}

// ReferenceConvAccumulators computes the int32 accumulators of ReferenceConv,
// Bias[c] + sum_k (a_k - InZeroPoint) * w[c][k], into acc
// ([Batch][OutH][OutW][OutC]).
func ReferenceConvAccumulators(s ConvShape, w []int8, e Epilogue, in []uint8, acc []int32) error {
	if err := checkConvArgs(s, w, &e); err != nil {
		return err
	}
	if len(in) != s.inputLen() || len(acc) != s.outputLen() {
		return fmt.Errorf("gemm: reference conv got %d input bytes and %d accumulators, expected %d and %d",
			len(in), len(acc), s.inputLen(), s.outputLen())
	}
	referenceAccumulators(s, w, &e, in, acc)
	return nil
}

// checkConvArgs validates the shape, the weight length, the epilogue and the
// accumulator headroom.
func checkConvArgs(s ConvShape, w []int8, e *Epilogue) error {
	if err := checkConvShape(s, w, e); err != nil {
		return err
	}
	return checkHeadroom(s, w, e)
}

// checkConvShape validates the shape, the weight length and the epilogue.
func checkConvShape(s ConvShape, w []int8, e *Epilogue) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if len(w) != s.weightLen() {
		return fmt.Errorf("gemm: got %d weights, expected OutC %d * InC/Groups %d * KH %d * KW %d = %d",
			len(w), s.OutC, s.inPerGroup(), s.KH, s.KW, s.weightLen())
	}
	return e.validate(s.OutC)
}

// referenceAccumulators is the direct definition: for every output value,
// loop over the input channels of its group and the kernel taps, reading
// InZeroPoint for taps in the padding.
func referenceAccumulators(s ConvShape, w []int8, e *Epilogue, in []uint8, acc []int32) {
	outH, outW := s.OutH(), s.OutW()
	inPerGroup, outPerGroup := s.inPerGroup(), s.outPerGroup()
	zeroPoint := e.InZeroPoint

	for n := 0; n < s.Batch; n++ {
		for oh := 0; oh < outH; oh++ {
			for ow := 0; ow < outW; ow++ {
				for oc := 0; oc < s.OutC; oc++ {
					group := oc / outPerGroup
					// Headroom: each term is at most max|a - zp| * max|w|,
					// 255 * 127 = 32,385 for 8 bits, and there are
					// depth = InC/Groups * KH * KW terms. checkHeadroom has
					// rejected any channel where depth * 32,385 + |bias| could
					// pass 2^31 - 1 (for a zero bias: depth <= 66,311), so the
					// int32 sum below never wraps.
					sum := e.bias(oc)
					for ic := 0; ic < inPerGroup; ic++ {
						for kh := 0; kh < s.KH; kh++ {
							for kw := 0; kw < s.KW; kw++ {
								ih := oh*s.StrideH - s.PadTop + kh*s.DilationH
								iw := ow*s.StrideW - s.PadLeft + kw*s.DilationW
								a := zeroPoint
								if ih >= 0 && ih < s.InH && iw >= 0 && iw < s.InW {
									a = int32(in[((n*s.InH+ih)*s.InW+iw)*s.InC+group*inPerGroup+ic])
								}
								weight := int32(w[((oc*inPerGroup+ic)*s.KH+kh)*s.KW+kw])
								sum += (a - zeroPoint) * weight
							}
						}
					}
					acc[((n*outH+oh)*outW+ow)*s.OutC+oc] = sum
				}
			}
		}
	}
}
