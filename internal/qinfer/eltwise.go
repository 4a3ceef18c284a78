package qinfer

import (
	"errors"
	"fmt"
	"math"

	"github.com/qtool-dev/qtool/internal/affine"
	"github.com/qtool-dev/qtool/internal/format"
)

// mbqm is affine.MultiplyByQuantizedMultiplier, the MBQM of the arithmetic contract.
var mbqm = affine.MultiplyByQuantizedMultiplier

// addKernel computes add by the contract in qmodel.go:
//
//	a' = MBQM((a - z_a) * 2^AddLeftShift, InputMult[0], InputShift[0])
//	b' = MBQM((b - z_b) * 2^AddLeftShift, InputMult[1], InputShift[1])
//	y  = clamp(z_out + MBQM(a' + b', Mult[0], Shift[0]), ClampMin, ClampMax)
//
// Zero points and clamp bounds are in the stored byte domain, where a - z_a is unchanged.
type addKernel struct {
	zeroA, zeroB    int32
	leftShift       int
	multA, multB    affine.Multiplier
	multOut         affine.Multiplier
	zeroOut, lo, hi int32
	sampleLen       int
}

// newAddKernel checks the shapes and arrays of an add node and its int32 headroom. The shifted
// differences and the sum a' + b' must fit int32 for every input integer, and evaluating MBQM
// at both ends of each input range checks that exactly. With 8-bit inputs, AddLeftShift 20 and input multipliers of at most 1/2, as the quantize pass chooses,
// |a - z_a| * 2^20 <= 255 * 2^20 < 2^28 and |a' + b'| < 2^28.
func newAddKernel(q *format.QModel, n *node) (kernel, error) {
	a, b, out := n.inputs[0], n.inputs[1], n.output
	if err := checkShape(b, a.shape); err != nil {
		return nil, err
	}
	if err := checkShape(out, a.shape); err != nil {
		return nil, err
	}
	if q.AddLeftShift < 0 || q.AddLeftShift > 30 {
		return nil, fmt.Errorf("the model's add_left_shift %d is outside [0, 30]", q.AddLeftShift)
	}
	if n.q.InputMult == "" || n.q.InputShift == "" || n.q.Mult == "" || n.q.Shift == "" {
		return nil, errors.New("add needs input_mult, input_shift, mult and shift arrays")
	}
	in, err := multipliers(q, "input_mult", n.q.InputMult, "input_shift", n.q.InputShift, 2)
	if err != nil {
		return nil, err
	}
	outM, err := multipliers(q, "mult", n.q.Mult, "shift", n.q.Shift, 1)
	if err != nil {
		return nil, err
	}
	lo, hi, err := storedClamp(n)
	if err != nil {
		return nil, err
	}

	k := &addKernel{
		zeroA: a.params.ZeroPoint + a.offset, zeroB: b.params.ZeroPoint + b.offset,
		leftShift: q.AddLeftShift, multA: in[0], multB: in[1], multOut: outM[0],
		zeroOut: out.params.ZeroPoint + out.offset, lo: lo, hi: hi,
		sampleLen: a.sampleLen(),
	}
	loA, hiA, err := scaledRange(a, k.leftShift, k.multA)
	if err != nil {
		return nil, err
	}
	loB, hiB, err := scaledRange(b, k.leftShift, k.multB)
	if err != nil {
		return nil, err
	}
	if loA+loB < math.MinInt32 || hiA+hiB > math.MaxInt32 {
		return nil, fmt.Errorf("the rescaled sum a' + b' spans [%d, %d], which does not fit int32; the input multipliers are too large", loA+loB, hiA+hiB)
	}
	return k, nil
}

// scaledRange returns the smallest and largest MBQM((x - z) * 2^left, m) over the integer range
// of t, or an error when (x - z) * 2^left does not fit int32. MBQM is monotone in its first
// argument, so the ends of the range give the extremes.
func scaledRange(t *tensorInfo, left int, m affine.Multiplier) (lo, hi int64, err error) {
	p := t.params
	low := int64(p.QMin-p.ZeroPoint) << left
	high := int64(p.QMax-p.ZeroPoint) << left
	if low < math.MinInt32 || high > math.MaxInt32 {
		return 0, 0, fmt.Errorf("input %q: (x - zero_point) * 2^%d spans [%d, %d], which does not fit int32", t.name, left, low, high)
	}
	return int64(mbqm(int32(low), m)), int64(mbqm(int32(high), m)), nil
}

func (k *addKernel) run(in [][]uint8, out []uint8, batch, threads int) error {
	forSamples(batch, threads, func(s, _ int) {
		lo, hi := s*k.sampleLen, (s+1)*k.sampleLen
		k.sample(in[0][lo:hi], in[1][lo:hi], out[lo:hi])
	})
	return nil
}

func (k *addKernel) sample(a, b, out []uint8) {
	for i := range out {
		sa := mbqm((int32(a[i])-k.zeroA)<<k.leftShift, k.multA)
		sb := mbqm((int32(b[i])-k.zeroB)<<k.leftShift, k.multB)
		y := int64(k.zeroOut) + int64(mbqm(sa+sb, k.multOut))
		out[i] = uint8(min(max(y, int64(k.lo)), int64(k.hi)))
	}
}

// concatPart is one input of a concat: its channel count and either a plain copy or a rescale
// y = clamp(z_out + MBQM((x - z_in) * 2^leftShift, m), qmin_out, qmax_out). The shifted
// difference is at most 255 * 2^20 < 2^31 in magnitude, so it cannot overflow.
type concatPart struct {
	channels int
	copy     bool
	zero     int32 // stored domain
	mult     affine.Multiplier
	shift    int // AddLeftShift of the model
}

// concatKernel joins its inputs along the channel axis, which in NHWC means pixel by pixel.
type concatKernel struct {
	parts           []concatPart
	pixels, outC    int
	zeroOut, lo, hi int32
}

func newConcatKernel(q *format.QModel, n *node) (kernel, error) {
	out := n.output
	first := n.inputs[0]
	channels := 0
	needRescale := false
	for _, t := range n.inputs {
		if len(t.shape) != len(first.shape) || t.h != first.h || t.w != first.w {
			return nil, fmt.Errorf("input %q has shape %v but %q has %v; all dimensions but the channel axis must match",
				t.name, t.shape, first.name, first.shape)
		}
		channels += t.c
		needRescale = needRescale || !t.sameQuantization(out)
	}
	want := append([]int{}, first.shape...)
	want[1] = channels
	if err := checkShape(out, want); err != nil {
		return nil, err
	}

	var ms []affine.Multiplier
	if needRescale {
		if n.q.InputMult == "" || n.q.InputShift == "" {
			return nil, errors.New("an input's quantization differs from the output's, so input_mult and input_shift arrays are needed")
		}
		var err error
		if ms, err = multipliers(q, "input_mult", n.q.InputMult, "input_shift", n.q.InputShift, len(n.inputs)); err != nil {
			return nil, err
		}
	}

	k := &concatKernel{
		pixels: out.h * out.w, outC: out.c,
		zeroOut: out.params.ZeroPoint + out.offset,
		lo:      out.params.QMin + out.offset, hi: out.params.QMax + out.offset,
	}
	for i, t := range n.inputs {
		part := concatPart{channels: t.c, copy: t.sameQuantization(out), zero: t.params.ZeroPoint + t.offset, shift: q.AddLeftShift}
		if !part.copy {
			part.mult = ms[i]
		}
		k.parts = append(k.parts, part)
	}
	return k, nil
}

func (k *concatKernel) run(in [][]uint8, out []uint8, batch, threads int) error {
	forSamples(batch, threads, func(s, _ int) {
		dst := out[s*k.pixels*k.outC:][:k.pixels*k.outC]
		first := 0
		for i, part := range k.parts {
			src := in[i][s*k.pixels*part.channels:][:k.pixels*part.channels]
			k.copyPart(part, src, dst, first)
			first += part.channels
		}
	})
	return nil
}

// copyPart writes one input's channels, starting at channel first of every output pixel.
func (k *concatKernel) copyPart(part concatPart, src, dst []uint8, first int) {
	for p := range k.pixels {
		from := src[p*part.channels:][:part.channels]
		to := dst[p*k.outC+first:][:part.channels]
		if part.copy {
			copy(to, from)
			continue
		}
		for c, x := range from {
			y := int64(k.zeroOut) + int64(mbqm((int32(x)-part.zero)<<part.shift, part.mult))
			to[c] = uint8(min(max(y, int64(k.lo)), int64(k.hi)))
		}
	}
}

// clampKernel is a standalone relu, relu6 or clip: y = clamp(x, ClampMin, ClampMax) with the
// input's quantization.
type clampKernel struct{ lo, hi uint8 }

func newClampKernel(n *node) (kernel, error) {
	if err := checkShape(n.output, n.inputs[0].shape); err != nil {
		return nil, err
	}
	if err := checkSameQuantization(n); err != nil {
		return nil, err
	}
	lo, hi, err := storedClamp(n)
	if err != nil {
		return nil, err
	}
	return &clampKernel{lo: uint8(lo), hi: uint8(hi)}, nil
}

func (k *clampKernel) run(in [][]uint8, out []uint8, _, _ int) error {
	for i, x := range in[0] {
		out[i] = min(max(x, k.lo), k.hi)
	}
	return nil
}

// flattenKernel reorders each sample from NHWC to PyTorch's flatten order of NCHW,
// index c*H*W + y*W + x.
type flattenKernel struct{ c, plane int }

func newFlattenKernel(n *node) (kernel, error) {
	in := n.inputs[0]
	if err := checkShape(n.output, []int{1, in.sampleLen()}); err != nil {
		return nil, err
	}
	if err := checkSameQuantization(n); err != nil {
		return nil, err
	}
	return &flattenKernel{c: in.c, plane: in.h * in.w}, nil
}

func (k *flattenKernel) run(in [][]uint8, out []uint8, batch, _ int) error {
	size := k.c * k.plane
	for s := range batch {
		src, dst := in[0][s*size:][:size], out[s*size:][:size]
		for p := range k.plane {
			for c := range k.c {
				dst[c*k.plane+p] = src[p*k.c+c]
			}
		}
	}
	return nil
}
