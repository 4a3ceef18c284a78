package gemm

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
)

// Conv is a quantized 2-D convolution with prepacked weights, ready to run
// on uint8 NHWC activations. Its weights and parameters do not change after
// NewConv, and its pool of scratch memory is safe for concurrent use, so
// several goroutines may call Run on it at the same time.
type Conv struct {
	shape ConvShape
	path  kernelPath
	// depthwise selects the per-channel kernels instead of the GEMM kernels.
	depthwise bool

	// images is the number of input images indexed separately and pixels
	// the output pixels per image. A pointwise conv treats the whole batch
	// as one image.
	images, pixels int
	// imageBytes is the input stride between images.
	imageBytes int

	// tileRows is the number of output pixels each kernel call computes,
	// and tiles the number of tiles per image (the last one may be partial).
	tileRows, tiles int
	// offsets stores, for every pixel of a tile and every tap slot, the
	// byte offset of the tap's input pixel within its image, or -1 for a
	// tap in the padding, which reads zeroRow instead. GEMM layout:
	// [tiles][tapSlots][tileRows]; depthwise layout: [pixels][tapSlots].
	// The rows of a partial last tile repeat its last pixel.
	offsets  []int32
	tapSlots int
	// tapBytes is the number of input bytes the VNNI kernels read per tap
	// slot: InC/Groups, or KW*InC when rowTaps merges each kernel row's taps.
	tapBytes int
	// rowTaps makes each tap slot a whole kernel row: the KW taps of row ky
	// read KW*InC contiguous bytes when the input has no left or right
	// padding and DilationW is 1, so one slot covers them all. Only the
	// inner conv of a channel-padded conv sets it (see newChannelPaddedConv).
	rowTaps bool
	// zeroRow is KW*InC bytes of InZeroPoint, enough for a merged row tap,
	// plus slack for full-vector reads.
	zeroRow []uint8

	// gather selects the VNNI layout for InC/Groups not a multiple of 4:
	// each tile's input values are first copied into rows of kPadded bytes.
	gather bool
	// kPadded is K = InC/Groups*KH*KW rounded up to the path's k-step
	// (4 for VNNI, 2 for AVX2, 1 for generic); packed weights beyond K are 0.
	kPadded int

	// blocks lists the GEMM weight panels of one group in output channel
	// order; every group uses the same list at its own panel offset.
	blocks      []panelBlock
	groupPanel  int // elements of packed weights per group
	weights8    []int8
	weights16   []int16
	start       []int32 // folded start values, [Groups][groupWidth] (GEMM)
	groupWidth  int     // output channels per group padded to whole blocks
	accRowWidth int     // int32 values per accumulator scratch row
	// denseAcc reports that scratch rows are OutC apart and requantize with
	// denseRequant as one flat row (see planDenseAccumulators).
	denseAcc     bool
	denseRequant requantParams

	// channelBlocks is the number of channel blocks of the depthwise
	// kernels. On AVX2, tailWeights and tailStart cover the channels past
	// the last whole block of 16, which Go computes.
	channelBlocks int
	tailWeights   []int8
	tailStart     []int32

	requant requantParams

	// padded, if set, computes this conv: it is the same conv with InC
	// raised to a multiple of 4 and zero weights for the added channels,
	// and Run first copies the input into that wider layout (see
	// newChannelPaddedConv).
	padded *Conv
	// inputPool keeps the widened input buffers of padded.
	inputPool sync.Pool
	// padLeft and padRight are the zero-point columns that the input copy
	// adds for padded, whose own conv has no left or right padding.
	padLeft, padRight int

	// workspaces keeps the scratch memory of finished workers for reuse.
	workspaces sync.Pool
}

// panelBlock is one panel of packed weights: the output channels
// [first, first+width) of a group, packed for a kernel computing vectors
// vectors of channels.
type panelBlock struct {
	first, width, vectors int
	offset                int // element offset within the group's packed weights
}

// requantParams contains the epilogue as the per-channel arrays that the
// requantization routines read. Each array has requantSlack zero entries past
// OutC so that full-vector reads at the end stay inside it.
type requantParams struct {
	mult, left, right []int32
	// roundMask is 2^right - 1 and roundHalf is roundMask >> 1, the
	// remainder mask and tie threshold of the rounding right shift.
	roundMask, roundHalf []int32
	// low and high are ClampMin and ClampMax minus OutZeroPoint, so that
	// clamping before adding the zero point cannot overflow.
	low, high, zeroPoint int32
	// hasLeft and hasRight report whether any channel has left > 0 or
	// right > 0, so the SIMD routines can skip a step that changes nothing.
	hasLeft, hasRight bool
}

const requantSlack = 16

// maxImageBytes bounds one input image so that every offset fits an int32.
const maxImageBytes = math.MaxInt32

// NewConv validates the shape, the weights and the epilogue, checks that no
// accumulator can overflow int32, and packs the weights for the kernel path
// that KernelPath reports. w is [OutC][InC/Groups][KH][KW]. NewConv copies
// what it needs, so the caller may reuse w and e afterwards.
func NewConv(s ConvShape, w []int8, e Epilogue) (*Conv, error) {
	return newConvPath(s, w, e, activePath)
}

// newConvPath is NewConv for a given path, which tests use to compare paths.
func newConvPath(s ConvShape, w []int8, e Epilogue, path kernelPath) (*Conv, error) {
	return newConvPlanned(s, w, e, path, convPlan{})
}

// convPlan holds the choices that newChannelPaddedConv makes for its inner conv.
type convPlan struct {
	// rowTaps merges each kernel row's taps into one tap slot (see Conv.rowTaps).
	rowTaps bool
	// padded marks the inner conv of a channel-padded conv. Its headroom was checked on the
	// original shape, whose accumulators it equals because the added weights are 0; the
	// padded depth would overstate it.
	padded bool
}

// newConvPlanned is newConvPath with the plan of a channel-padded conv's inner conv.
func newConvPlanned(s ConvShape, w []int8, e Epilogue, path kernelPath, plan convPlan) (*Conv, error) {
	if plan.padded {
		if err := checkConvShape(s, w, &e); err != nil {
			return nil, err
		}
	} else if err := checkConvArgs(s, w, &e); err != nil {
		return nil, err
	}
	if plan.rowTaps && (path != pathVNNI || s.isDepthwise() || s.inPerGroup()%4 != 0 || s.PadLeft+s.PadRight != 0 || s.DilationW != 1) {
		return nil, fmt.Errorf("gemm: merged row taps need the VNNI path, InC/Groups a multiple of 4, no left or right padding and DilationW 1")
	}
	if !pathSupported(path) {
		return nil, fmt.Errorf("gemm: kernel path %s is not supported: %s", path, unsupportedReason(path))
	}
	if bytes := s.InH * s.InW * s.InC; bytes > maxImageBytes {
		return nil, fmt.Errorf("gemm: input image of %dx%dx%d = %d bytes exceeds the %d bytes that 32-bit offsets address",
			s.InH, s.InW, s.InC, bytes, maxImageBytes)
	}

	if path == pathVNNI && !s.isDepthwise() && s.Groups == 1 && s.InC%4 != 0 {
		if c := newChannelPaddedConv(s, w, e, path); c != nil {
			return c, nil
		}
	}

	c := &Conv{shape: s, path: path, depthwise: s.isDepthwise(), rowTaps: plan.rowTaps}
	c.planImages()
	c.zeroRow = make([]uint8, s.InC*s.KW+64)
	for i := range c.zeroRow {
		c.zeroRow[i] = uint8(e.InZeroPoint)
	}
	c.requant = newRequantParams(&e, s.OutC)

	// Reorder the weights to [OutC][K] with k = tap*InC/Groups + ic, the
	// order in which an NHWC input pixel presents its channels tap by tap.
	ordered := reorderWeights(s, w)
	start := foldStartValues(s, ordered, &e)

	if c.depthwise {
		c.planDepthwise(ordered, start)
	} else {
		c.planGEMM(ordered, start, &e)
	}
	return c, nil
}

// newChannelPaddedConv returns a conv whose VNNI kernels read InC rounded up
// to a multiple of 4 channels per pixel, or nil if the wider image exceeds
// the image size limit. VPDPBUSD takes 4 bytes per lane,
// so with InC not a multiple of 4 the kernels would otherwise need each
// tile's taps gathered into contiguous rows, which for a first layer on a
// one-channel image cost several times the multiply-adds. The added
// channels have zero weights, so they change no accumulator, and the input
// copy writes InZeroPoint into them.
//
// The copy also adds the left and right padding as zero-point columns. With
// DilationW 1, the KW taps of one kernel row then read KW*InC contiguous
// bytes in every output pixel. The kernels therefore take a whole kernel
// row per tap slot (rowTaps), KH slots instead of KH*KW. That cuts the
// per-tap pointer set-up, which dominates when a tap has only 4 bytes.
func newChannelPaddedConv(s ConvShape, w []int8, e Epilogue, path kernelPath) *Conv {
	ps := s
	ps.InC = roundUp(s.InC, 4)
	ps.InW = s.InW + s.PadLeft + s.PadRight
	ps.PadLeft, ps.PadRight = 0, 0
	taps := s.KH * s.KW
	pw := make([]int8, ps.weightLen())
	for oc := 0; oc < s.OutC; oc++ {
		for ic := 0; ic < s.InC; ic++ {
			copy(pw[(oc*ps.InC+ic)*taps:][:taps], w[(oc*s.InC+ic)*taps:][:taps])
		}
	}
	inner, err := newConvPlanned(ps, pw, e, path, convPlan{rowTaps: s.DilationW == 1 && s.KW > 1, padded: true})
	if err != nil {
		// The widened image exceeds the 32-bit offsets; gather the taps instead.
		return nil
	}
	return &Conv{shape: s, path: path, padded: inner, padLeft: s.PadLeft, padRight: s.PadRight}
}

// widenChannels copies in, [images][InH][InW][InC], into the padded conv's
// input layout, [images][InH][padLeft+InW+padRight][padded InC], with
// InZeroPoint in the added channels and columns.
func (c *Conv) widenChannels(in []uint8) []uint8 {
	s, ps := c.shape, c.padded.shape
	from, to := s.InC, ps.InC
	n := s.Batch * ps.InH * ps.InW * to
	buf, _ := c.inputPool.Get().(*[]uint8)
	if buf == nil || cap(*buf) < n {
		b := make([]uint8, n)
		buf = &b
	}
	dst := (*buf)[:n]
	zero := c.padded.zeroRow[0]
	rows := s.Batch * s.InH
	for r := range rows {
		src := in[r*s.InW*from : (r+1)*s.InW*from]
		line := dst[r*ps.InW*to : (r+1)*ps.InW*to]
		for i := range line[:c.padLeft*to] {
			line[i] = zero
		}
		for i := range line[(c.padLeft+s.InW)*to:] {
			line[(c.padLeft+s.InW)*to+i] = zero
		}
		pixels := line[c.padLeft*to : (c.padLeft+s.InW)*to]
		if from == 1 && to == 4 {
			// One byte per pixel, as in a first layer on a grayscale image:
			// store the pixel and its three zero-point bytes as one word.
			fill := uint32(zero) * 0x01010100
			for p, v := range src {
				binary.LittleEndian.PutUint32(pixels[4*p:], fill|uint32(v))
			}
			continue
		}
		for p := range s.InW {
			d := pixels[p*to : p*to+to]
			copy(d, src[p*from:p*from+from])
			for i := from; i < to; i++ {
				d[i] = zero
			}
		}
	}
	return dst
}

// planImages decides whether the batch can be treated as one image.
func (c *Conv) planImages() {
	s := c.shape
	c.images, c.pixels = s.Batch, s.OutH()*s.OutW()
	c.imageBytes = s.InH * s.InW * s.InC
	if s.isPointwise() && s.Batch > 1 && s.inputLen() <= maxImageBytes {
		c.images, c.pixels = 1, s.Batch*s.OutH()*s.OutW()
		c.imageBytes = s.inputLen()
	}
}

// reorderWeights returns the weights as [OutC][K] in tap-major order.
func reorderWeights(s ConvShape, w []int8) []int8 {
	inPerGroup, taps, depth := s.inPerGroup(), s.taps(), s.depth()
	ordered := make([]int8, len(w))
	for oc := 0; oc < s.OutC; oc++ {
		for ic := 0; ic < inPerGroup; ic++ {
			for t := 0; t < taps; t++ {
				ordered[oc*depth+t*inPerGroup+ic] = w[(oc*inPerGroup+ic)*taps+t]
			}
		}
	}
	return ordered
}

// foldStartValues returns Bias[c] - InZeroPoint * sum_k w[c][k] for every
// output channel, the value each kernel starts its sum of a_k * w[c][k] from.
// The value may wrap modulo 2^32: the kernels add in wrapping int32
// arithmetic, and the final accumulator fits int32 by checkHeadroom, so the
// wrapped start gives the exact result.
func foldStartValues(s ConvShape, ordered []int8, e *Epilogue) []int32 {
	depth := s.depth()
	start := make([]int32, s.OutC)
	for oc := range start {
		sum := int64(0)
		for _, v := range ordered[oc*depth : (oc+1)*depth] {
			sum += int64(v)
		}
		start[oc] = int32(int64(e.bias(oc)) - int64(e.InZeroPoint)*sum)
	}
	return start
}

func newRequantParams(e *Epilogue, outC int) requantParams {
	n := outC + requantSlack
	p := requantParams{
		mult:      make([]int32, n),
		left:      make([]int32, n),
		right:     make([]int32, n),
		roundMask: make([]int32, n),
		roundHalf: make([]int32, n),
		low:       e.ClampMin - e.OutZeroPoint,
		high:      e.ClampMax - e.OutZeroPoint,
		zeroPoint: e.OutZeroPoint,
	}
	for c := 0; c < outC; c++ {
		p.mult[c] = e.Mult[c]
		p.left[c] = max(e.Shift[c], 0)
		p.right[c] = max(-e.Shift[c], 0)
		p.roundMask[c] = int32(int64(1)<<p.right[c] - 1)
		p.roundHalf[c] = p.roundMask[c] >> 1
		p.hasLeft = p.hasLeft || p.left[c] > 0
		p.hasRight = p.hasRight || p.right[c] > 0
	}
	return p
}

// planGEMM builds the offset table and packs the weights for the GEMM
// kernels: tiles of tileRows output pixels times blocks of output channels.
func (c *Conv) planGEMM(ordered []int8, start []int32, e *Epilogue) {
	s := c.shape
	depth, outPerGroup := s.depth(), s.outPerGroup()

	var kStep, blockWidth, vectorWidth int
	switch c.path {
	case pathVNNI:
		c.tileRows, kStep, blockWidth, vectorWidth = vnniTileRows, 4, 64, 16
		c.gather = s.inPerGroup()%4 != 0
	case pathAVX2:
		c.tileRows, kStep, blockWidth, vectorWidth = avx2TileRows, 2, 16, 8
	default:
		c.tileRows, kStep, blockWidth, vectorWidth = 1, 1, outPerGroup, outPerGroup
	}
	c.kPadded = roundUp(depth, kStep)
	c.tiles = ceilDiv(c.pixels, c.tileRows)
	c.tapSlots, c.tapBytes = s.taps(), s.inPerGroup()
	if c.rowTaps {
		c.tapSlots, c.tapBytes = s.KH, s.KW*s.inPerGroup()
	}
	c.offsets = c.tileOffsets()

	// Split each group's output channels into blocks of blockWidth; the
	// last block uses only as many vectors as it needs.
	c.blocks = nil
	offset := 0
	for first := 0; first < outPerGroup; first += blockWidth {
		width := min(blockWidth, outPerGroup-first)
		vectors := ceilDiv(width, vectorWidth)
		c.blocks = append(c.blocks, panelBlock{first: first, width: width, vectors: vectors, offset: offset})
		offset += c.kPadded * vectors * vectorWidth
	}
	c.groupPanel = offset
	last := c.blocks[len(c.blocks)-1]
	c.groupWidth = last.first + last.vectors*vectorWidth
	c.accRowWidth = s.Groups * c.groupWidth
	if c.path == pathVNNI && s.Groups == 1 && s.OutC < vectorWidth {
		c.planDenseAccumulators(e)
	}

	c.start = make([]int32, s.Groups*c.groupWidth)
	for g := 0; g < s.Groups; g++ {
		copy(c.start[g*c.groupWidth:], start[g*outPerGroup:(g+1)*outPerGroup])
	}

	switch c.path {
	case pathVNNI:
		c.weights8 = packWeightsVNNI(ordered, s.Groups, outPerGroup, depth, c.kPadded, c.blocks, c.groupPanel)
	case pathAVX2:
		c.weights16 = packWeightsAVX2(ordered, s.Groups, outPerGroup, depth, c.kPadded, c.blocks, c.groupPanel)
	default:
		c.weights8 = ordered
	}
}

// planDenseAccumulators makes a conv with fewer output channels than a
// vector keep its scratch rows OutC apart instead of a whole vector apart.
// The kernels store each row as a whole vector, in row order, so the next
// row's channels overwrite the lanes past OutC of a row. The rows of a work
// item thus end up as one dense array of tileRows*tilesPerItem*OutC
// accumulators. Requantization then runs over that array with vectors full
// of outputs, using parameters repeated with period OutC, instead of one
// mostly empty vector per output pixel (a first layer with 6 channels would
// use 6 of 16 lanes).
func (c *Conv) planDenseAccumulators(e *Epilogue) {
	outC := c.shape.OutC
	c.accRowWidth = outC
	c.denseAcc = true
	length := roundUp(c.tileRows*tilesPerItem*outC, 16)
	repeated := *e
	repeated.Mult = make([]int32, length)
	repeated.Shift = make([]int32, length)
	for i := range length {
		repeated.Mult[i], repeated.Shift[i] = e.Mult[i%outC], e.Shift[i%outC]
	}
	c.denseRequant = newRequantParams(&repeated, length)
}

// tileOffsets builds the GEMM offset table, [tiles][taps][tileRows].
func (c *Conv) tileOffsets() []int32 {
	taps := c.tapSlots
	table := make([]int32, c.tiles*taps*c.tileRows)
	for tile := 0; tile < c.tiles; tile++ {
		for r := 0; r < c.tileRows; r++ {
			pixel := min(tile*c.tileRows+r, c.pixels-1)
			for t := 0; t < taps; t++ {
				table[(tile*taps+t)*c.tileRows+r] = c.tapOffset(pixel, t)
			}
		}
	}
	return table
}

// tapOffset returns the byte offset within its image of the input pixel
// that tap t of output pixel reads, or -1 if the tap lies in the padding.
func (c *Conv) tapOffset(pixel, t int) int32 {
	s := c.shape
	if c.rowTaps {
		// Slot t is kernel row t; its first tap's pixel starts the row.
		t *= s.KW
	}
	if c.images == 1 && s.Batch > 1 {
		// A pointwise conv over the folded batch reads its own pixel.
		return int32(pixel * s.InC)
	}
	outW := s.OutW()
	oh, ow := pixel/outW, pixel%outW
	kh, kw := t/s.KW, t%s.KW
	ih := oh*s.StrideH - s.PadTop + kh*s.DilationH
	iw := ow*s.StrideW - s.PadLeft + kw*s.DilationW
	if ih < 0 || ih >= s.InH || iw < 0 || iw >= s.InW {
		return -1
	}
	return int32((ih*s.InW + iw) * s.InC)
}

// planDepthwise builds the offset table and packs the weights for the
// depthwise kernels, which keep channels in vector lanes.
func (c *Conv) planDepthwise(ordered []int8, start []int32) {
	s := c.shape
	taps, channels := s.taps(), s.OutC
	c.tileRows = 1
	c.tiles = c.pixels

	switch c.path {
	case pathVNNI:
		c.tapSlots = roundUp(taps, 4)
		c.channelBlocks = ceilDiv(channels, 64)
		c.weights8, c.start = packDepthwiseVNNI(ordered, start, channels, taps, c.tapSlots, c.channelBlocks)
		c.accRowWidth = c.channelBlocks * 64
	case pathAVX2:
		c.tapSlots = roundUp(taps, 2)
		c.channelBlocks = channels / 16
		c.weights16, c.start = packDepthwiseAVX2(ordered, start, taps, c.tapSlots, c.channelBlocks)
		tail := c.channelBlocks * 16
		c.tailWeights = ordered[tail*taps:]
		c.tailStart = start[tail:]
		c.accRowWidth = channels
	default:
		c.tapSlots = taps
		c.weights8, c.start = ordered, start
		c.accRowWidth = channels
	}

	// Tap slots past the kernel's taps read the zero row with weight 0.
	c.offsets = make([]int32, c.pixels*c.tapSlots)
	for p := 0; p < c.pixels; p++ {
		for t := 0; t < c.tapSlots; t++ {
			off := int32(-1)
			if t < taps {
				off = c.tapOffset(p, t)
			}
			c.offsets[p*c.tapSlots+t] = off
		}
	}
}

// Shape returns the shape that the Conv was built for.
func (c *Conv) Shape() ConvShape { return c.shape }

// Path returns the kernel path that the Conv runs: "vnni", "avx2" or
// "generic".
func (c *Conv) Path() string { return c.path.String() }

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func roundUp(a, b int) int { return ceilDiv(a, b) * b }
