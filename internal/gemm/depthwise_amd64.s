//go:build amd64 && !purego

#include "textflag.h"
#include "go_asm.h"

// tapPointer sets reg to a + offset for the int32 offset at off(SI), or to
// zeroRow when the offset is negative. It clobbers AX.
#define tapPointer(off, reg) \
	MOVLQSX off(SI), AX \
	MOVQ    depthwiseArgs_a(DI), reg \
	ADDQ    AX, reg \
	TESTQ   AX, AX \
	CMOVQLT depthwiseArgs_zeroRow(DI), reg

// func depthwiseVNNI(args *depthwiseArgs)
//
// For each pixel and each block of 64 channels, each quad of tap slots is
// loaded as 4 vectors of 64 channels (masked to the channel count), and
// byte then word unpacks interleave them into 4 vectors whose dword lanes
// hold one channel's 4 tap values, in the order of depthwiseVNNIChannel.
// VPDPBUSD multiplies them with the packed weights. A lane transpose puts
// the 4 accumulators back in channel order before they are stored.
//
// Registers: DI args, R8 the pixel's offsets, R9 the pixel's accumulator
// row, R10 pixels left, R11 block index, R12 weights, R13 start values,
// CX block*64, DX quads left, SI tap offsets of the quad, BX the current
// tap pointer; K1 the channel mask.
TEXT ·depthwiseVNNI(SB), NOSPLIT, $0-8
	MOVQ args+0(FP), DI
	MOVQ depthwiseArgs_offsets(DI), R8
	MOVQ depthwiseArgs_acc(DI), R9
	MOVQ depthwiseArgs_pixels(DI), R10

pixel:
	XORQ R11, R11
	MOVQ depthwiseArgs_w(DI), R12
	MOVQ depthwiseArgs_start(DI), R13

block:
	// K1 selects the channels of this block that exist: all 64, or the
	// low channels - block*64 bits of the last block.
	MOVQ  R11, CX
	SHLQ  $6, CX
	MOVQ  depthwiseArgs_channels(DI), AX
	SUBQ  CX, AX
	MOVQ  $-1, BX
	CMPQ  AX, $64
	JGE   fullmask
	MOVQ  CX, DX
	MOVQ  AX, CX
	MOVQ  $1, BX
	SHLQ  CX, BX
	DECQ  BX
	MOVQ  DX, CX

fullmask:
	KMOVQ BX, K1

	VMOVDQU32 0(R13), Z0
	VMOVDQU32 64(R13), Z1
	VMOVDQU32 128(R13), Z2
	VMOVDQU32 192(R13), Z3
	ADDQ      $256, R13

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

	INCQ R11
	CMPQ R11, depthwiseArgs_blocks(DI)
	JLT  block

	MOVQ depthwiseArgs_tapSlots(DI), AX
	SHLQ $2, AX
	ADDQ AX, R8
	ADDQ depthwiseArgs_accStride(DI), R9
	DECQ R10
	JNZ  pixel

	VZEROUPPER
	RET

// func depthwiseAVX2(args *depthwiseArgs)
//
// For each pixel and each block of 16 channels, each pair of tap slots is
// loaded as 2 vectors of 16 channels widened to int16, and word unpacks
// interleave them into 2 vectors whose dword lanes hold one channel's 2 tap
// values, in the order of depthwiseAVX2Channel. VPMADDWD multiplies them with
// the packed int16 weights and adds each pair into an int32 lane, which
// 255*127*2 = 64,770 cannot overflow. Only whole blocks are computed.
//
// Registers: DI args, R8 the pixel's offsets, R9 the pixel's accumulator
// row, R10 pixels left, R11 block index, R12 weights, R13 start values,
// CX block*16, DX pairs left, SI tap offsets of the pair.
TEXT ·depthwiseAVX2(SB), NOSPLIT, $0-8
	MOVQ args+0(FP), DI
	MOVQ depthwiseArgs_offsets(DI), R8
	MOVQ depthwiseArgs_acc(DI), R9
	MOVQ depthwiseArgs_pixels(DI), R10

pixel:
	XORQ R11, R11
	MOVQ depthwiseArgs_w(DI), R12
	MOVQ depthwiseArgs_start(DI), R13

block:
	MOVQ    R11, CX
	SHLQ    $4, CX
	VMOVDQU 0(R13), Y0
	VMOVDQU 32(R13), Y1
	ADDQ    $64, R13

	MOVQ R8, SI
	MOVQ depthwiseArgs_tapSlots(DI), DX
	SHRQ $1, DX

pair:
	tapPointer(0, BX)
	VPMOVZXBW (BX)(CX*1), Y2
	tapPointer(4, BX)
	VPMOVZXBW (BX)(CX*1), Y3
	VPUNPCKLWD Y3, Y2, Y4
	VPUNPCKHWD Y3, Y2, Y5
	VPMADDWD   0(R12), Y4, Y4
	VPADDD     Y4, Y0, Y0
	VPMADDWD   32(R12), Y5, Y5
	VPADDD     Y5, Y1, Y1
	ADDQ       $64, R12
	ADDQ       $8, SI
	DECQ       DX
	JNZ        pair

	// Y0 holds channels 0-3 | 8-11 and Y1 channels 4-7 | 12-15.
	VPERM2I128 $0x20, Y1, Y0, Y6
	VMOVDQU    Y6, 0(R9)(CX*4)
	VPERM2I128 $0x31, Y1, Y0, Y7
	VMOVDQU    Y7, 32(R9)(CX*4)

	INCQ R11
	CMPQ R11, depthwiseArgs_blocks(DI)
	JLT  block

	MOVQ depthwiseArgs_tapSlots(DI), AX
	SHLQ $2, AX
	ADDQ AX, R8
	ADDQ depthwiseArgs_accStride(DI), R9
	DECQ R10
	JNZ  pixel

	VZEROUPPER
	RET
