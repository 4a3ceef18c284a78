package qinfer

import (
	"fmt"
	"math"

	"github.com/qtool-dev/qtool/internal/gemm"
)

// poolKernel computes maxpool2d, avgpool2d and global_avgpool on one sample's NHWC bytes.
// global_avgpool is an average over a window of the whole plane.
//
// Max: the largest in-bounds cell of the window. Max commutes with the int8 offset, so it is
// the same in the stored domain.
//
// Average: sum the in-bounds cells, add z_in for each padded cell when CountIncludePad, then
// floor((sum + floor(count/2)) / count), round half up. In the stored domain every value is
// non-negative, so Go's truncating division is the floor, and the offset of 128 passes through
// the division exactly because it is a whole multiple of count. Headroom: sum <= count * 255,
// and New rejects windows with count * 255 + count/2 > 2^31 - 1 (count > 8,421,504).
type poolKernel struct {
	average    bool
	includePad bool
	padValue   int32 // z_in in the stored domain

	c, h, w, outH, outW int
	kernelH, kernelW    int
	strideH, strideW    int
	padTop, padLeft     int
}

// newPoolKernel checks the window, the output shape and the quantization of a pooling node.
func newPoolKernel(n *node) (kernel, error) {
	in, out, qn := n.inputs[0], n.output, n.q
	if len(in.shape) != 4 {
		return nil, fmt.Errorf("input %q has shape %v; %s needs [N, C, H, W]", in.name, in.shape, qn.Op)
	}
	if err := checkSameQuantization(n); err != nil {
		return nil, err
	}

	k := &poolKernel{
		average:    qn.Op != "maxpool2d",
		includePad: qn.CountIncludePad,
		padValue:   in.params.ZeroPoint + in.offset,
		c:          in.c, h: in.h, w: in.w,
	}
	if qn.Op == "global_avgpool" {
		k.kernelH, k.kernelW, k.strideH, k.strideW = in.h, in.w, 1, 1
	} else {
		k.kernelH, k.kernelW = qn.Kernel[0], qn.Kernel[1]
		k.strideH, k.strideW = qn.Stride[0], qn.Stride[1]
		k.padTop, k.padLeft = qn.Padding[0], qn.Padding[1]
		if k.strideH == 0 && k.strideW == 0 {
			// An unset stride is the kernel size, as in the float model format.
			k.strideH, k.strideW = k.kernelH, k.kernelW
		}
	}
	if k.kernelH < 1 || k.kernelW < 1 || k.strideH < 1 || k.strideW < 1 {
		return nil, fmt.Errorf("kernel %v and stride %v must be at least 1", qn.Kernel, qn.Stride)
	}
	pad := qn.Padding
	if qn.Op == "global_avgpool" {
		pad = [4]int{}
	}
	for i, p := range pad {
		size := k.kernelH
		if i%2 == 1 {
			size = k.kernelW
		}
		if p < 0 || 2*p > size {
			return nil, fmt.Errorf("padding %v must be between 0 and half the kernel %v", pad, qn.Kernel)
		}
	}

	count := int64(k.kernelH) * int64(k.kernelW)
	if count*255+count/2 > math.MaxInt32 {
		return nil, fmt.Errorf("a %dx%d window sums up to %d * 255, which does not fit int32", k.kernelH, k.kernelW, count)
	}
	k.outH = (in.h+pad[0]+pad[2]-k.kernelH)/k.strideH + 1
	k.outW = (in.w+pad[1]+pad[3]-k.kernelW)/k.strideW + 1
	if in.h+pad[0]+pad[2] < k.kernelH || in.w+pad[1]+pad[3] < k.kernelW {
		return nil, fmt.Errorf("kernel %dx%d does not fit the %dx%d input with padding %v", k.kernelH, k.kernelW, in.h, in.w, pad)
	}
	if err := checkShape(out, []int{1, in.c, k.outH, k.outW}); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *poolKernel) run(in [][]uint8, out []uint8, batch, threads int) error {
	inLen, outLen := k.h*k.w*k.c, k.outH*k.outW*k.c
	forSamples(batch, threads, func(s, _ int) {
		if k.average {
			k.sample(in[0][s*inLen:][:inLen], out[s*outLen:][:outLen])
		} else {
			k.sampleMax(in[0][s*inLen:][:inLen], out[s*outLen:][:outLen])
		}
	})
	return nil
}

// sampleMax max-pools one image separably: for each output row it first takes the bytewise
// maximum of the window's in-bounds input rows, whole rows at a time, then the maximum over
// each window's in-bounds columns of that line. It gives the same bytes as sample. It needs
// every window to have an in-bounds row and column, which newPoolKernel's check that padding
// is at most half the kernel guarantees.
func (k *poolKernel) sampleMax(src, dst []uint8) {
	rowBytes := k.w * k.c
	line := make([]uint8, rowBytes)
	for oy := range k.outH {
		y0 := oy*k.strideH - k.padTop
		y1 := min(y0+k.kernelH, k.h)
		y0 = max(y0, 0)
		copy(line, src[y0*rowBytes:(y0+1)*rowBytes])
		for y := y0 + 1; y < y1; y++ {
			gemm.MaxBytes(line, src[y*rowBytes:(y+1)*rowBytes])
		}
		for ox := range k.outW {
			x0 := ox*k.strideW - k.padLeft
			x1 := min(x0+k.kernelW, k.w)
			x0 = max(x0, 0)
			out := dst[(oy*k.outW+ox)*k.c:][:k.c]
			copy(out, line[x0*k.c:(x0+1)*k.c])
			for x := x0 + 1; x < x1; x++ {
				gemm.MaxBytes(out, line[x*k.c:(x+1)*k.c])
			}
		}
	}
}

// sample pools one image. For each output pixel it walks the window's in-bounds cells and
// updates all channels of a cell at once, because NHWC keeps a pixel's channels contiguous.
func (k *poolKernel) sample(src, dst []uint8) {
	window := int32(k.kernelH * k.kernelW)
	sums := make([]int32, k.c)
	for oy := range k.outH {
		y0 := oy*k.strideH - k.padTop
		for ox := range k.outW {
			x0 := ox*k.strideW - k.padLeft
			out := dst[(oy*k.outW+ox)*k.c:][:k.c]
			if k.average {
				clear(sums)
			} else {
				clear(out) // 0 is the smallest stored value, and every window has a cell
			}

			var cells int32
			for y := max(y0, 0); y < min(y0+k.kernelH, k.h); y++ {
				for x := max(x0, 0); x < min(x0+k.kernelW, k.w); x++ {
					in := src[(y*k.w+x)*k.c:][:k.c]
					cells++
					if k.average {
						for c, v := range in {
							sums[c] += int32(v)
						}
					} else {
						for c, v := range in {
							out[c] = max(out[c], v)
						}
					}
				}
			}

			if k.average {
				count, padding := cells, int32(0)
				if k.includePad {
					count, padding = window, (window-cells)*k.padValue
				}
				for c := range out {
					out[c] = uint8((sums[c] + padding + count/2) / count)
				}
			}
		}
	}
}
