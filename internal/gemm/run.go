package gemm

import "fmt"

// depthwiseChunk is the maximum number of output pixels that a worker
// computes with the depthwise kernels before requantizing them together.
const depthwiseChunk = 16

// tilesPerItem is the maximum number of GEMM tiles that a worker computes
// before requantizing them together, which saves calls and parameter loads.
const tilesPerItem = 4

// Run computes the convolution of in ([Batch][InH][InW][InC]) into out
// ([Batch][OutH][OutW][OutC]) with up to threads goroutines (fewer than 1
// means 1, and more than GOMAXPROCS means GOMAXPROCS). The output is the same for every thread count, because every
// output value is computed by one worker with the same arithmetic. Run
// panics if a slice length does not match the shape.
func (c *Conv) Run(in, out []uint8, threads int) {
	s := c.shape
	if len(in) != s.inputLen() || len(out) != s.outputLen() {
		panic(fmt.Sprintf("gemm: Conv.Run got %d input and %d output bytes, expected %d and %d",
			len(in), len(out), s.inputLen(), s.outputLen()))
	}
	c.run(in, out, nil, threads)
}

// RunAccumulators computes the int32 accumulators of Run,
// Bias[c] + sum_k (a_k - InZeroPoint) * w[c][k], into acc
// ([Batch][OutH][OutW][OutC]) on one goroutine. It exists for tests and
// debugging, and panics if a slice length does not match the shape.
func (c *Conv) RunAccumulators(in []uint8, acc []int32) {
	s := c.shape
	if len(in) != s.inputLen() || len(acc) != s.outputLen() {
		panic(fmt.Sprintf("gemm: Conv.RunAccumulators got %d input bytes and %d accumulators, expected %d and %d",
			len(in), len(acc), s.inputLen(), s.outputLen()))
	}
	c.run(in, nil, acc, 1)
}

// run writes either uint8 outputs to out or accumulators to acc. The work
// items are GEMM tiles or depthwise pixels, split evenly over the workers.
// Each worker takes its items in groups that share one requantization call.
func (c *Conv) run(in, out []uint8, acc []int32, threads int) {
	if c.padded != nil {
		wide := c.widenChannels(in)
		c.padded.run(wide, out, acc, threads)
		c.inputPool.Put(&wide)
		return
	}
	perImage, group := c.tiles, tilesPerItem
	if c.depthwise {
		perImage, group = c.pixels, depthwiseChunk
	}
	parallelFor(c.images*perImage, threads, func(lo, hi int) {
		ws := c.getWorkspace()
		defer c.workspaces.Put(ws)
		for item := lo; item < hi; {
			image, index := item/perImage, item%perImage
			count := min(group, perImage-index, hi-item)
			if c.depthwise {
				c.runDepthwisePixels(ws, in, out, acc, image, index, count)
			} else {
				c.runTiles(ws, in, out, acc, image, index, count)
			}
			item += count
		}
	})
}

// workspace is one worker's scratch memory.
type workspace struct {
	// acc is [rows][accRowWidth] int32 accumulators before requantization.
	acc []int32
	// gathered is [tileRows][kPadded] input bytes copied through the
	// offset table (generic path, and VNNI with InC/Groups%4 != 0 when the
	// conv is grouped or too large to widen its input), and
	// gatheredOffsets the byte offset of each of its rows.
	gathered        []uint8
	gatheredOffsets []int32
	// widened is [tileRows][kPadded] input values widened to int16 (AVX2).
	widened []int16
}

// poisonScratch makes every worker fill its scratch memory with garbage
// before each use, so tests can show that no kernel reads padding it did
// not write. Only tests set it.
var poisonScratch = false

// getWorkspace returns a workspace from the Conv's pool, or a new one.
// Reusing workspaces matters for small layers run once per sample.
func (c *Conv) getWorkspace() *workspace {
	if ws, ok := c.workspaces.Get().(*workspace); ok {
		return ws
	}
	return c.newWorkspace()
}

func (c *Conv) newWorkspace() *workspace {
	rows := c.tileRows * tilesPerItem
	if c.depthwise {
		rows = depthwiseChunk
	}
	// The slack covers the AVX2 requantization, which reads whole vectors.
	// The slack also covers the whole vector that the VNNI kernels store for
	// the last row of dense accumulators.
	ws := &workspace{acc: make([]int32, rows*c.accRowWidth+16)}
	if !c.depthwise {
		switch {
		case c.path == pathGeneric || c.gather:
			ws.gathered = make([]uint8, c.tileRows*c.kPadded)
			ws.gatheredOffsets = make([]int32, c.tileRows)
			for r := range ws.gatheredOffsets {
				ws.gatheredOffsets[r] = int32(r * c.kPadded)
			}
		case c.path == pathAVX2:
			ws.widened = make([]int16, c.tileRows*c.kPadded)
		}
	}
	return ws
}

// poison fills the scratch buffers with a fixed garbage pattern.
func (ws *workspace) poison() {
	for i := range ws.acc {
		ws.acc[i] = -0x5a5a5a5b
	}
	for i := range ws.gathered {
		ws.gathered[i] = 0xa5
	}
	for i := range ws.widened {
		ws.widened[i] = -0x5a5b
	}
}

// runTiles computes tiles (at most tilesPerItem) GEMM tiles of one image,
// starting at tile first, for every group, then requantizes or copies the
// valid rows.
func (c *Conv) runTiles(ws *workspace, in, out []uint8, acc []int32, image, first, tiles int) {
	s := c.shape
	if poisonScratch {
		ws.poison()
	}
	tableLen := c.tapSlots * c.tileRows

	if c.path == pathVNNI {
		// The VNNI kernels take all the item's tiles in one call per block.
		for g := 0; g < s.Groups; g++ {
			inBase := image*c.imageBytes + g*s.inPerGroup()
			c.tilesVNNI(ws, ws.acc, in, inBase, c.offsets[first*tableLen:(first+tiles)*tableLen], g, tiles)
		}
	} else {
		for t := 0; t < tiles; t++ {
			tile := first + t
			offsets := c.offsets[tile*tableLen : (tile+1)*tableLen]
			scratch := ws.acc[t*c.tileRows*c.accRowWidth:]
			for g := 0; g < s.Groups; g++ {
				inBase := image*c.imageBytes + g*s.inPerGroup()
				if c.path == pathAVX2 {
					c.tileAVX2(ws, scratch, in, inBase, offsets, g)
				} else {
					c.tileGeneric(ws, scratch, in, inBase, offsets, g)
				}
			}
		}
	}

	firstPixel := first * c.tileRows
	rows := min(tiles*c.tileRows, c.pixels-firstPixel)
	outPixel := image*c.pixels + firstPixel
	outPerGroup := s.outPerGroup()
	if c.groupWidth == outPerGroup {
		c.finishRows(ws.acc, 0, out, acc, outPixel, rows, 0, s.OutC)
		return
	}
	for g := 0; g < s.Groups; g++ {
		c.finishRows(ws.acc, g*c.groupWidth, out, acc, outPixel, rows, g*outPerGroup, outPerGroup)
	}
}

// runDepthwisePixels computes rows (at most depthwiseChunk) output pixels of
// one image with the depthwise kernels, starting at pixel first.
func (c *Conv) runDepthwisePixels(ws *workspace, in, out []uint8, acc []int32, image, first, rows int) {
	if poisonScratch {
		ws.poison()
	}
	offsets := c.offsets[first*c.tapSlots : (first+rows)*c.tapSlots]
	inBase := image * c.imageBytes

	switch c.path {
	case pathVNNI:
		c.depthwiseVNNI(ws, in, inBase, offsets, rows)
	case pathAVX2:
		c.depthwiseAVX2(ws, in, inBase, offsets, rows)
		if tail := c.channelBlocks * 16; tail < c.shape.OutC {
			c.depthwiseGenericChannels(ws, in, inBase, offsets, rows, tail, c.tailWeights, c.tailStart)
		}
	default:
		c.depthwiseGenericChannels(ws, in, inBase, offsets, rows, 0, c.weights8, c.start)
	}
	c.finishRows(ws.acc, 0, out, acc, image*c.pixels+first, rows, 0, c.shape.OutC)
}

// finishRows turns rows of scratch accumulators, starting at accFirst in
// each scratch row, into the n output channels starting at channel of the
// output pixels starting at outPixel: requantized into out, or copied into
// acc when out is nil.
func (c *Conv) finishRows(scratch []int32, accFirst int, out []uint8, acc []int32, outPixel, rows, channel, n int) {
	outC := c.shape.OutC
	if out == nil {
		for r := 0; r < rows; r++ {
			src := scratch[r*c.accRowWidth+accFirst:][:n]
			copy(acc[(outPixel+r)*outC+channel:][:n], src)
		}
		return
	}

	switch {
	case c.denseAcc:
		// Rows are OutC apart in scratch as in out, so they form one row.
		requantizeRowsPath(c.path, &c.denseRequant, scratch, 0, out[outPixel*outC:], 0, 1, 0, rows*outC)
	case c.path == pathVNNI || c.path == pathAVX2:
		c.requantizeRowsSIMD(scratch[accFirst:], c.accRowWidth, out[outPixel*outC+channel:], outC, rows, channel, n)
	default:
		requantizeRowsGeneric(&c.requant, scratch[accFirst:], c.accRowWidth, out[outPixel*outC+channel:], outC, rows, channel, n)
	}
}
