package qinfer

import (
	"github.com/qtool-dev/qtool/internal/tensor"
)

// quantizeNCHW quantizes batch samples of t from float NCHW data into stored NHWC bytes, by
// affine.Params.Quantize (x / scale in float32, round half to even, add the zero point, clamp).
func quantizeNCHW(data []float32, t *tensorInfo, batch int) []uint8 {
	out := make([]uint8, batch*t.sampleLen())
	plane := t.h * t.w
	for s := range batch {
		for c := range t.c {
			src := data[(s*t.c+c)*plane:][:plane]
			for p, v := range src {
				out[(s*plane+p)*t.c+c] = uint8(t.params.Quantize(v) + t.offset)
			}
		}
	}
	return out
}

// dequantizeNCHW returns the real values of batch samples of t, stored NHWC, as a float NCHW
// tensor, by affine.Params.Dequantize.
func dequantizeNCHW(stored []uint8, t *tensorInfo, batch int) *tensor.Tensor {
	out := tensor.New(append([]int{batch}, t.shape[1:]...)...)
	plane := t.h * t.w
	for s := range batch {
		for c := range t.c {
			dst := out.Data[(s*t.c+c)*plane:][:plane]
			for p := range dst {
				q := int32(stored[(s*plane+p)*t.c+c]) - t.offset
				dst[p] = t.params.Dequantize(q)
			}
		}
	}
	return out
}

// integersNCHW returns the integers of batch samples of t, stored NHWC, in NCHW order.
func integersNCHW(stored []uint8, t *tensorInfo, batch int) *IntTensor {
	out := &IntTensor{
		Shape:  append([]int{batch}, t.shape[1:]...),
		Data:   make([]int32, len(stored)),
		Params: t.params,
	}
	plane := t.h * t.w
	for s := range batch {
		for c := range t.c {
			dst := out.Data[(s*t.c+c)*plane:][:plane]
			for p := range dst {
				dst[p] = int32(stored[(s*plane+p)*t.c+c]) - t.offset
			}
		}
	}
	return out
}
