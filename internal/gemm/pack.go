package gemm

// Weight packing. Every packer reads the weights in the tap-major order of
// reorderWeights, [OutC][K], and writes zeros for every padded k or output
// channel, so that whatever input bytes a kernel reads there add nothing.

// packWeightsVNNI packs the GEMM weights for VPDPBUSD: per group, per block,
// per k-quad q, vectors*16 output channels of 4 consecutive k bytes, so that
// one 64-byte load gives 16 channels times k = 4q..4q+3.
func packWeightsVNNI(ordered []int8, groups, outPerGroup, depth, kPadded int, blocks []panelBlock, groupPanel int) []int8 {
	packed := make([]int8, groups*groupPanel)
	for g := 0; g < groups; g++ {
		for _, b := range blocks {
			panel := packed[g*groupPanel+b.offset:]
			lanes := b.vectors * 16
			for q := 0; q < kPadded/4; q++ {
				for lane := 0; lane < lanes; lane++ {
					channel := b.first + lane
					for i := 0; i < 4; i++ {
						k := 4*q + i
						if channel < outPerGroup && k < depth {
							panel[(q*lanes+lane)*4+i] = ordered[(g*outPerGroup+channel)*depth+k]
						}
					}
				}
			}
		}
	}
	return packed
}

// packWeightsAVX2 packs the GEMM weights for VPMADDWD: per group, per block,
// per k-pair p, vectors*8 output channels of 2 consecutive k values widened
// to int16, so that one 32-byte load gives 8 channels times k = 2p, 2p+1.
func packWeightsAVX2(ordered []int8, groups, outPerGroup, depth, kPadded int, blocks []panelBlock, groupPanel int) []int16 {
	packed := make([]int16, groups*groupPanel)
	for g := 0; g < groups; g++ {
		for _, b := range blocks {
			panel := packed[g*groupPanel+b.offset:]
			lanes := b.vectors * 8
			for p := 0; p < kPadded/2; p++ {
				for lane := 0; lane < lanes; lane++ {
					channel := b.first + lane
					for i := 0; i < 2; i++ {
						k := 2*p + i
						if channel < outPerGroup && k < depth {
							panel[(p*lanes+lane)*2+i] = int16(ordered[(g*outPerGroup+channel)*depth+k])
						}
					}
				}
			}
		}
	}
	return packed
}

// depthwiseVNNIChannel returns the channel, within a block of 64, that dword
// lane e of accumulator vector j holds in the VNNI depthwise kernel. The
// kernel interleaves 4 taps with byte and word unpacks, which work inside
// each 128-bit lane, so lane e holds channel 16*(e/4) + 4*j + e%4.
func depthwiseVNNIChannel(j, e int) int {
	return 16*(e/4) + 4*j + e%4
}

// packDepthwiseVNNI packs depthwise weights ([C][taps]) per block of 64
// channels and per quad of tap slots as 4 vectors of 16 dword lanes, each
// lane holding one channel's 4 tap weights in depthwiseVNNIChannel order.
// It also returns the start values in the same lane order, [blocks][4][16].
func packDepthwiseVNNI(ordered []int8, start []int32, channels, taps, tapSlots, blocks int) ([]int8, []int32) {
	quads := tapSlots / 4
	packed := make([]int8, blocks*quads*4*64)
	permuted := make([]int32, blocks*64)
	for b := 0; b < blocks; b++ {
		for j := 0; j < 4; j++ {
			for e := 0; e < 16; e++ {
				channel := 64*b + depthwiseVNNIChannel(j, e)
				if channel >= channels {
					continue
				}
				permuted[b*64+j*16+e] = start[channel]
				for q := 0; q < quads; q++ {
					for i := 0; i < 4; i++ {
						if t := 4*q + i; t < taps {
							packed[((b*quads+q)*4+j)*64+e*4+i] = ordered[channel*taps+t]
						}
					}
				}
			}
		}
	}
	return packed, permuted
}

// depthwiseAVX2Channel returns the channel, within a block of 16, that dword
// lane e of accumulator vector j holds in the AVX2 depthwise kernel: word
// unpacks work inside each 128-bit lane, so lane e holds channel
// 8*(e/4) + 4*j + e%4.
func depthwiseAVX2Channel(j, e int) int {
	return 8*(e/4) + 4*j + e%4
}

// packDepthwiseAVX2 packs depthwise weights per pair of tap slots and per
// block of 16 channels as 2 vectors of 8 dword lanes, each lane holding one
// channel's 2 tap weights as int16 in depthwiseAVX2Channel order:
// [pairs][blocks][2][16]. It also returns the start values in the same lane
// order, [blocks][2][8].
func packDepthwiseAVX2(ordered []int8, start []int32, taps, tapSlots, blocks int) ([]int16, []int32) {
	pairs := tapSlots / 2
	packed := make([]int16, blocks*pairs*2*16)
	permuted := make([]int32, blocks*16)
	for b := 0; b < blocks; b++ {
		for j := 0; j < 2; j++ {
			for e := 0; e < 8; e++ {
				channel := 16*b + depthwiseAVX2Channel(j, e)
				permuted[b*16+j*8+e] = start[channel]
				for p := 0; p < pairs; p++ {
					for i := 0; i < 2; i++ {
						if t := 2*p + i; t < taps {
							packed[((p*blocks+b)*2+j)*16+e*2+i] = int16(ordered[channel*taps+t])
						}
					}
				}
			}
		}
	}
	return packed, permuted
}
