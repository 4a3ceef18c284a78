package gemm

// The generic path: plain Go kernels that run on every platform. They use
// the same offset tables and folded start values as the assembly kernels.

// tileGeneric computes the accumulators of one output pixel (tileRows is 1)
// for group g into scratch: the pixel's K input values are gathered into one
// row, then each output channel is a dot product with its weight row.
func (c *Conv) tileGeneric(ws *workspace, scratch []int32, in []uint8, inBase int, offsets []int32, g int) {
	s := c.shape
	depth, outPerGroup := s.depth(), s.outPerGroup()
	gatherRows(ws.gathered, c.kPadded, in, inBase, offsets, c.tileRows, c.tapSlots, s.inPerGroup(), c.zeroRow)

	row := ws.gathered[:depth]
	for oc := 0; oc < outPerGroup; oc++ {
		channel := g*outPerGroup + oc
		w := c.weights8[channel*depth : (channel+1)*depth]
		scratch[g*c.groupWidth+oc] = c.start[g*c.groupWidth+oc] + dotGeneric(row, w)
	}
}

// gatherRows copies, for each of rows pixels and each tap, width input
// bytes into dst (row stride stride): from in[base+offset:] or, for a
// padded tap (offset -1), from zeroRow. offsets is [taps][rows].
func gatherRows(dst []uint8, stride int, in []uint8, base int, offsets []int32, rows, taps, width int, zeroRow []uint8) {
	if width == 1 {
		// One byte per tap, as in a first layer on a grayscale image:
		// assign it instead of calling copy.
		zero := zeroRow[0]
		image := in[base:]
		for t := 0; t < taps; t++ {
			column := dst[t:]
			for r, off := range offsets[t*rows : (t+1)*rows] {
				v := zero
				if off >= 0 {
					v = image[off]
				}
				column[r*stride] = v
			}
		}
		return
	}
	for t := 0; t < taps; t++ {
		for r := 0; r < rows; r++ {
			d := dst[r*stride+t*width:][:width]
			if off := offsets[t*rows+r]; off < 0 {
				copy(d, zeroRow)
			} else {
				copy(d, in[base+int(off):])
			}
		}
	}
}

// dotGeneric returns sum a[k]*w[k] in wrapping int32 arithmetic. Each
// product is at most 255*128 in magnitude and the partial sums may wrap, but
// checkHeadroom bounds the final accumulator (start value plus this sum) to
// int32, for 8 bits by depth <= 66,311, so the wrapped sum gives it exactly.
func dotGeneric(a []uint8, w []int8) int32 {
	w = w[:len(a)]
	var s0, s1, s2, s3 int32
	k := 0
	for ; k+4 <= len(a); k += 4 {
		s0 += int32(a[k]) * int32(w[k])
		s1 += int32(a[k+1]) * int32(w[k+1])
		s2 += int32(a[k+2]) * int32(w[k+2])
		s3 += int32(a[k+3]) * int32(w[k+3])
	}
	for ; k < len(a); k++ {
		s0 += int32(a[k]) * int32(w[k])
	}
	return s0 + s1 + s2 + s3
}

// depthwiseGenericChannels computes the depthwise accumulators of channels
// [firstChannel, OutC) for rows pixels, with weights [channel][taps] and
// start values indexed from firstChannel. offsets is [rows][tapSlots].
func (c *Conv) depthwiseGenericChannels(ws *workspace, in []uint8, inBase int, offsets []int32, rows, firstChannel int, weights []int8, start []int32) {
	taps, channels := c.shape.taps(), c.shape.OutC
	for r := 0; r < rows; r++ {
		accRow := ws.acc[r*c.accRowWidth:]
		for ch := firstChannel; ch < channels; ch++ {
			accRow[ch] = start[ch-firstChannel]
		}
		// Headroom: taps <= 66,311 products of 255*127 for 8 bits, far more
		// than any depthwise kernel has; checkHeadroom enforces it.
		for t := 0; t < taps; t++ {
			off := offsets[r*c.tapSlots+t]
			src := c.zeroRow
			if off >= 0 {
				src = in[inBase+int(off):]
			}
			for ch := firstChannel; ch < channels; ch++ {
				accRow[ch] += int32(src[ch]) * int32(weights[(ch-firstChannel)*taps+t])
			}
		}
	}
}

// requantizeRowsGeneric requantizes rows of n accumulators (row stride
// accStride) into rows of n uint8 outputs (row stride outStride), for the
// output channels starting at channel.
func requantizeRowsGeneric(p *requantParams, acc []int32, accStride int, out []uint8, outStride, rows, channel, n int) {
	for r := 0; r < rows; r++ {
		for i := 0; i < n; i++ {
			c := channel + i
			v := multiplyByQuantizedMultiplierParts(acc[r*accStride+i], p.mult[c], p.left[c], p.right[c], p.roundMask[c], p.roundHalf[c])
			v = min(max(v, p.low), p.high)
			out[r*outStride+i] = uint8(v + p.zeroPoint)
		}
	}
}

// multiplyByQuantizedMultiplierParts is multiplyByQuantizedMultiplier with
// the shift split into its precomputed parts, step by step as the SIMD
// routines compute it. Step 2 adds 2^30 and shifts right arithmetically by
// 31, which equals the nudged truncating division for either sign of the
// product; the result fits int32 because mult >= 0 rules out the one
// saturating case.
func multiplyByQuantizedMultiplierParts(acc, mult, left, right, roundMask, roundHalf int32) int32 {
	x := acc << left
	if x>>left != acc {
		// The left shift overflowed: saturate toward the sign of acc.
		x = (acc >> 31) ^ 0x7fffffff
	}
	y := int32((int64(x)*int64(mult) + 1<<30) >> 31)

	threshold := roundHalf - (y >> 31)
	result := y >> right
	if y&roundMask > threshold {
		result++
	}
	return result
}
