//go:build amd64 && !purego

#include "textflag.h"
#include "go_asm.h"

// Headroom: the sums wrap consistently in int32, and NewConv's headroom check
// bounds every final accumulator to int32, for 8 bits by 66,311 taps.

// tapPointer sets reg to R11 + offset for the int32 offset at off(SI), or to
// R13 (the zero row) when the offset is negative. It clobbers AX.
#define tapPointer(off, reg) \
	MOVLQSX off(SI), AX \
	LEAQ    (R11)(AX*1), reg \
	TESTQ   AX, AX \
	CMOVQLT R13, reg

// func depthwiseVNNI(args *depthwiseArgs)
//
// For each pixel and each block of 64 channels, each quad of tap slots is
// loaded as 4 vectors of 64 channels (masked to the channel count), and
// byte then word unpacks interleave them into 4 vectors whose dword lanes
// hold one channel's 4 tap values, in the order of depthwiseVNNIChannel.
// VPDPBUSD multiplies them with the packed weights ([block][quad][4][64]).
// A lane transpose puts the 4 accumulators back in channel order before
// they are stored.
//
// Registers: DI args, R8 the pixel's offsets, R9 the pixel's accumulator
// row, R10 pixels left, R11 the input image, R12 weights, R13 the zero row,
// CX the block's first channel, DX quads left, SI tap offsets of the quad,
// AX and BX temporaries; K1 the channel mask.
TEXT ·depthwiseVNNI(SB), NOSPLIT, $0-8
	MOVQ args+0(FP), DI
	MOVQ depthwiseArgs_offsets(DI), R8
	MOVQ depthwiseArgs_acc(DI), R9
	MOVQ depthwiseArgs_pixels(DI), R10
	MOVQ depthwiseArgs_a(DI), R11
	MOVQ depthwiseArgs_zeroRow(DI), R13

pixel:
	XORQ CX, CX
	MOVQ depthwiseArgs_w(DI), R12

block:
	// K1 selects the channels of this block that exist: all 64, or the
	// low channels - CX bits of the last block.
	MOVQ depthwiseArgs_channels(DI), AX
	SUBQ CX, AX
	MOVQ $-1, BX
	CMPQ AX, $64
	JGE  fullmask
	MOVQ CX, DX
	MOVQ AX, CX
	MOVQ $1, BX
	SHLQ CX, BX
	DECQ BX
	MOVQ DX, CX

fullmask:
	KMOVQ BX, K1

	MOVQ      depthwiseArgs_start(DI), AX
	VMOVDQU32 0(AX)(CX*4), Z0
	VMOVDQU32 64(AX)(CX*4), Z1
	VMOVDQU32 128(AX)(CX*4), Z2
	VMOVDQU32 192(AX)(CX*4), Z3

	MOVQ R8, SI
	MOVQ depthwiseArgs_tapSlots(DI), DX
	SHRQ $2, DX

quad:
	tapPointer(0, BX)
	VMOVDQU8.Z (BX)(CX*1), K1, Z4
	tapPointer(4, BX)
	VMOVDQU8.Z (BX)(CX*1), K1, Z5
	tapPointer(8, BX)
	VMOVDQU8.Z (BX)(CX*1), K1, Z6
	tapPointer(12, BX)
	VMOVDQU8.Z (BX)(CX*1), K1, Z7

	// Interleave taps 0,1 and 2,3 bytewise, then the pairs wordwise:
	// lane dword i of Z12..Z15 is (t0, t1, t2, t3) of channel 16l+4j+i.
	VPUNPCKLBW Z5, Z4, Z8
	VPUNPCKHBW Z5, Z4, Z9
	VPUNPCKLBW Z7, Z6, Z10
	VPUNPCKHBW Z7, Z6, Z11
	VPUNPCKLWD Z10, Z8, Z12
	VPUNPCKHWD Z10, Z8, Z13
	VPUNPCKLWD Z11, Z9, Z14
	VPUNPCKHWD Z11, Z9, Z15

	VPDPBUSD 0(R12), Z12, Z0
	VPDPBUSD 64(R12), Z13, Z1
	VPDPBUSD 128(R12), Z14, Z2
	VPDPBUSD 192(R12), Z15, Z3
	ADDQ     $256, R12
	ADDQ     $16, SI
	DECQ     DX
	JNZ      quad

	// Lane l of accumulator j holds channels 16l+4j .. 16l+4j+3, so a 4x4
	// transpose of 128-bit lanes gives vectors of 16 consecutive channels:
	// Z8..Z11 are the first stage, Z12..Z15 the channels 0-15 .. 48-63.
	VSHUFI32X4 $0x88, Z1, Z0, Z8
	VSHUFI32X4 $0xdd, Z1, Z0, Z9
	VSHUFI32X4 $0x88, Z3, Z2, Z10
	VSHUFI32X4 $0xdd, Z3, Z2, Z11
	VSHUFI32X4 $0x88, Z10, Z8, Z12
	VSHUFI32X4 $0x88, Z11, Z9, Z13
	VSHUFI32X4 $0xdd, Z10, Z8, Z14
	VSHUFI32X4 $0xdd, Z11, Z9, Z15
	VMOVDQU32  Z12, 0(R9)(CX*4)
	VMOVDQU32  Z13, 64(R9)(CX*4)
	VMOVDQU32  Z14, 128(R9)(CX*4)
	VMOVDQU32  Z15, 192(R9)(CX*4)

	ADDQ $64, CX
	CMPQ CX, depthwiseArgs_channels(DI)
	JLT  block

	MOVQ depthwiseArgs_tapSlots(DI), AX
	SHLQ $2, AX
	ADDQ AX, R8
	ADDQ depthwiseArgs_accStride(DI), R9
	DECQ R10
	JNZ  pixel

	VZEROUPPER
	RET

// depthwiseAVX2Block multiplies one pair of taps, widened from the 16
// channels at off(BX) and off(R10), with the packed int16 weights at
// woff(R12) and adds the products into the accumulators acc0 and acc1.
// Word unpacks interleave the taps so that each dword lane holds one
// channel's 2 tap values in the order of depthwiseAVX2Channel; VPMADDWD adds
// each product pair into an int32 lane, which 255*127*2 = 64,770 cannot
// overflow.
#define depthwiseAVX2Block(off, woff, acc0, acc1) \
	VPMOVZXBW  off(BX)(CX*1), Y8 \
	VPMOVZXBW  off(R10)(CX*1), Y9 \
	VPUNPCKLWD Y9, Y8, Y10 \
	VPUNPCKHWD Y9, Y8, Y11 \
	VPMADDWD   woff(R12), Y10, Y10 \
	VPADDD     Y10, acc0, acc0 \
	VPMADDWD   woff+32(R12), Y11, Y11 \
	VPADDD     Y11, acc1, acc1

// depthwiseAVX2Store stores acc0 (channels 0-3 | 8-11 of a block) and acc1
// (channels 4-7 | 12-15) in channel order at off(R9)(CX*4).
#define depthwiseAVX2Store(off, acc0, acc1) \
	VPERM2I128 $0x20, acc1, acc0, Y12 \
	VMOVDQU    Y12, off(R9)(CX*4) \
	VPERM2I128 $0x31, acc1, acc0, Y13 \
	VMOVDQU    Y13, off+32(R9)(CX*4)

// func depthwiseAVX2(args *depthwiseArgs)
//
// For each pixel, each pair of tap slots multiplies 4 blocks of 16
// channels at a time (8 accumulators), then the remaining blocks one at a
// time. Only whole blocks are computed. The weights are packed
// [pair][block][2][16], so the blocks of one pair are adjacent and
// weightStride bytes separate the pairs.
//
// Registers: DI args, R8 the pixel's offsets, R9 the pixel's accumulator
// row, R11 the input image, R12 weights, R13 the zero row, CX the first
// channel of the current blocks, DX pairs left, SI tap offsets of the pair,
// BX and R10 the two tap pointers, AX a temporary. The pixel count is
// decremented in args.
TEXT ·depthwiseAVX2(SB), NOSPLIT, $0-8
	MOVQ args+0(FP), DI
	MOVQ depthwiseArgs_offsets(DI), R8
	MOVQ depthwiseArgs_acc(DI), R9
	MOVQ depthwiseArgs_a(DI), R11
	MOVQ depthwiseArgs_zeroRow(DI), R13

pixel:
	XORQ CX, CX

wide:
	MOVQ depthwiseArgs_channels(DI), AX
	SUBQ CX, AX
	CMPQ AX, $64
	JLT  narrow

	MOVQ    depthwiseArgs_start(DI), AX
	VMOVDQU 0(AX)(CX*4), Y0
	VMOVDQU 32(AX)(CX*4), Y1
	VMOVDQU 64(AX)(CX*4), Y2
	VMOVDQU 96(AX)(CX*4), Y3
	VMOVDQU 128(AX)(CX*4), Y4
	VMOVDQU 160(AX)(CX*4), Y5
	VMOVDQU 192(AX)(CX*4), Y6
	VMOVDQU 224(AX)(CX*4), Y7

	MOVQ depthwiseArgs_w(DI), R12
	LEAQ (R12)(CX*4), R12
	MOVQ R8, SI
	MOVQ depthwiseArgs_tapSlots(DI), DX
	SHRQ $1, DX

widepair:
	tapPointer(0, BX)
	tapPointer(4, R10)
	depthwiseAVX2Block(0, 0, Y0, Y1)
	depthwiseAVX2Block(16, 64, Y2, Y3)
	depthwiseAVX2Block(32, 128, Y4, Y5)
	depthwiseAVX2Block(48, 192, Y6, Y7)
	ADDQ depthwiseArgs_weightStride(DI), R12
	ADDQ $8, SI
	DECQ DX
	JNZ  widepair

	depthwiseAVX2Store(0, Y0, Y1)
	depthwiseAVX2Store(64, Y2, Y3)
	depthwiseAVX2Store(128, Y4, Y5)
	depthwiseAVX2Store(192, Y6, Y7)
	ADDQ $64, CX
	JMP  wide

narrow:
	CMPQ AX, $16
	JLT  pixeldone

	MOVQ    depthwiseArgs_start(DI), AX
	VMOVDQU 0(AX)(CX*4), Y0
	VMOVDQU 32(AX)(CX*4), Y1

	MOVQ depthwiseArgs_w(DI), R12
	LEAQ (R12)(CX*4), R12
	MOVQ R8, SI
	MOVQ depthwiseArgs_tapSlots(DI), DX
	SHRQ $1, DX

narrowpair:
	tapPointer(0, BX)
	tapPointer(4, R10)
	depthwiseAVX2Block(0, 0, Y0, Y1)
	ADDQ depthwiseArgs_weightStride(DI), R12
	ADDQ $8, SI
	DECQ DX
	JNZ  narrowpair

	depthwiseAVX2Store(0, Y0, Y1)
	ADDQ $16, CX
	MOVQ depthwiseArgs_channels(DI), AX
	SUBQ CX, AX
	JMP  narrow

pixeldone:
	MOVQ depthwiseArgs_tapSlots(DI), AX
	SHLQ $2, AX
	ADDQ AX, R8
	ADDQ depthwiseArgs_accStride(DI), R9
	DECQ depthwiseArgs_pixels(DI)
	JNZ  pixel

	VZEROUPPER
	RET
