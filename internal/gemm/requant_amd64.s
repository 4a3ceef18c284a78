//go:build amd64 && !purego

#include "textflag.h"
#include "go_asm.h"

// Both routines compute, per lane, the steps of
// multiplyByQuantizedMultiplierParts:
//
//	x = acc << left, or (acc >> 31) ^ 0x7fffffff where the shift overflowed
//	y = (x * mult + 2^30) >> 31        (64-bit products, VPMULDQ)
//	q = (y >> right) + ((y & roundMask) > roundHalf - (y >> 31))
//	out = uint8(clamp(q, low, high) + zeroPoint)
//
// VPMULDQ multiplies the even dword lanes; the odd lanes are shifted down
// by 32 bits first. Bits 31..62 of (x * mult + 2^30) are y, so the even
// products are shifted right by 31 and the odd ones left by 1, which puts
// y in the low and the high dword of each qword, and a dword blend merges
// them. Logical shifts suffice because only those 32 bits are kept.

// func requantizeVNNI(args *requantArgs)
//
// Registers: Z26 0x7fffffff, Z27 dword 1, Z28 zeroPoint, Z29 high,
// Z30 low, Z31 qword 2^30; K1 lanes of the current vector that exist,
// K2 odd lanes, K3 overflowed lanes, K4 lanes rounded up.
// DI args, R8 acc row, R9 out row, R10 rows left, CX channel index.
TEXT ·requantizeVNNI(SB), NOSPLIT, $0-8
	MOVQ         args+0(FP), DI
	MOVL         $0x7fffffff, AX
	VPBROADCASTD AX, Z26
	MOVL         $1, AX
	VPBROADCASTD AX, Z27
	VPBROADCASTD requantArgs_zeroPoint(DI), Z28
	VPBROADCASTD requantArgs_high(DI), Z29
	VPBROADCASTD requantArgs_low(DI), Z30
	MOVQ         $0x40000000, AX
	VPBROADCASTQ AX, Z31
	MOVL         $0xaaaa, AX
	KMOVW        AX, K2

	MOVQ requantArgs_acc(DI), R8
	MOVQ requantArgs_out(DI), R9
	MOVQ requantArgs_rows(DI), R10

row:
	XORQ CX, CX

vector:
	// K1 = all 16 lanes, or the low n - CX lanes of the last vector.
	MOVQ  requantArgs_n(DI), AX
	SUBQ  CX, AX
	MOVL  $0xffff, BX
	CMPQ  AX, $16
	JGE   fullmask
	MOVQ  CX, DX
	MOVQ  AX, CX
	MOVL  $1, BX
	SHLL  CX, BX
	DECL  BX
	MOVQ  DX, CX

fullmask:
	KMOVW BX, K1

	MOVQ       requantArgs_left(DI), AX
	VMOVDQU32.Z (AX)(CX*4), K1, Z1
	VMOVDQU32.Z (R8)(CX*4), K1, Z0

	// x = acc << left, saturated where shifting back does not restore acc.
	VPSLLVD   Z1, Z0, Z2
	VPSRAVD   Z1, Z2, Z3
	VPCMPD    $4, Z3, Z0, K3
	VPSRAD    $31, Z0, Z4
	VPXORD    Z26, Z4, Z4
	VMOVDQA32 Z4, K3, Z2

	// y = (x * mult + 2^30) >> 31 in even and odd lanes.
	MOVQ        requantArgs_mult(DI), AX
	VMOVDQU32.Z (AX)(CX*4), K1, Z5
	VPMULDQ     Z5, Z2, Z6
	VPSRLQ      $32, Z2, Z7
	VPSRLQ      $32, Z5, Z8
	VPMULDQ     Z8, Z7, Z7
	VPADDQ      Z31, Z6, Z6
	VPADDQ      Z31, Z7, Z7
	VPSRLQ      $31, Z6, Z6
	VPSLLQ      $1, Z7, Z7
	VPBLENDMD   Z7, Z6, K2, Z6

	// Rounding right shift: add 1 where the remainder passes the threshold.
	MOVQ        requantArgs_right(DI), AX
	VMOVDQU32.Z (AX)(CX*4), K1, Z9
	VPSRAVD     Z9, Z6, Z10
	MOVQ        requantArgs_roundMask(DI), AX
	VMOVDQU32.Z (AX)(CX*4), K1, Z11
	VPANDD      Z11, Z6, Z11
	MOVQ        requantArgs_roundHalf(DI), AX
	VMOVDQU32.Z (AX)(CX*4), K1, Z12
	VPSRAD      $31, Z6, Z13
	VPSUBD      Z13, Z12, Z12
	VPCMPD      $6, Z12, Z11, K4
	VPADDD      Z27, Z10, K4, Z10

	// Clamp, add the zero point and store the lanes that exist as bytes.
	VPMAXSD Z30, Z10, Z10
	VPMINSD Z29, Z10, Z10
	VPADDD  Z28, Z10, Z10
	VPMOVDB Z10, K1, (R9)(CX*1)

	ADDQ $16, CX
	CMPQ CX, requantArgs_n(DI)
	JLT  vector

	ADDQ requantArgs_accStride(DI), R8
	ADDQ requantArgs_outStride(DI), R9
	DECQ R10
	JNZ  row

	VZEROUPPER
	RET

// func requantizeAVX2(args *requantArgs)
//
// Registers: Y11 zeroPoint, Y12 high, Y13 low, Y14 0x7fffffff,
// Y15 qword 2^30. DI args, R8 acc row, R9 out row, R10 rows left,
// CX channel index, BX the 8 result bytes of a partial vector.
TEXT ·requantizeAVX2(SB), NOSPLIT, $0-8
	MOVQ         args+0(FP), DI
	MOVL         $0x7fffffff, AX
	MOVQ         AX, X14
	VPBROADCASTD X14, Y14
	VPBROADCASTD requantArgs_zeroPoint(DI), Y11
	VPBROADCASTD requantArgs_high(DI), Y12
	VPBROADCASTD requantArgs_low(DI), Y13
	MOVQ         $0x40000000, AX
	MOVQ         AX, X15
	VPBROADCASTQ X15, Y15

	MOVQ requantArgs_acc(DI), R8
	MOVQ requantArgs_out(DI), R9
	MOVQ requantArgs_rows(DI), R10

row:
	XORQ CX, CX

vector:
	MOVQ    requantArgs_left(DI), AX
	VMOVDQU (AX)(CX*4), Y1
	VMOVDQU (R8)(CX*4), Y0

	// x = acc << left, saturated where shifting back does not restore acc.
	VPSLLVD   Y1, Y0, Y2
	VPSRAVD   Y1, Y2, Y3
	VPCMPEQD  Y3, Y0, Y3
	VPSRAD    $31, Y0, Y4
	VPXOR     Y14, Y4, Y4
	VPBLENDVB Y3, Y2, Y4, Y2

	// y = (x * mult + 2^30) >> 31 in even and odd lanes.
	MOVQ     requantArgs_mult(DI), AX
	VMOVDQU  (AX)(CX*4), Y5
	VPMULDQ  Y5, Y2, Y6
	VPSRLQ   $32, Y2, Y7
	VPSRLQ   $32, Y5, Y8
	VPMULDQ  Y8, Y7, Y7
	VPADDQ   Y15, Y6, Y6
	VPADDQ   Y15, Y7, Y7
	VPSRLQ   $31, Y6, Y6
	VPSLLQ   $1, Y7, Y7
	VPBLENDD $0xaa, Y7, Y6, Y6

	// Rounding right shift: subtract -1 where the remainder passes the
	// threshold.
	MOVQ     requantArgs_right(DI), AX
	VMOVDQU  (AX)(CX*4), Y1
	VPSRAVD  Y1, Y6, Y8
	MOVQ     requantArgs_roundMask(DI), AX
	VPAND    (AX)(CX*4), Y6, Y9
	MOVQ     requantArgs_roundHalf(DI), AX
	VMOVDQU  (AX)(CX*4), Y3
	VPSRAD   $31, Y6, Y10
	VPSUBD   Y10, Y3, Y3
	VPCMPGTD Y3, Y9, Y9
	VPSUBD   Y9, Y8, Y8

	// Clamp and add the zero point, then pack the 8 values, each in
	// 0..255, into the low 8 bytes of X8.
	VPMAXSD      Y13, Y8, Y8
	VPMINSD      Y12, Y8, Y8
	VPADDD       Y11, Y8, Y8
	VPACKSSDW    Y8, Y8, Y8
	VPACKUSWB    Y8, Y8, Y8
	VEXTRACTI128 $1, Y8, X9
	VPUNPCKLDQ   X9, X8, X8

	MOVQ requantArgs_n(DI), AX
	SUBQ CX, AX
	CMPQ AX, $8
	JLT  partial
	MOVQ X8, (R9)(CX*1)
	ADDQ $8, CX
	CMPQ CX, requantArgs_n(DI)
	JLT  vector
	JMP  rowdone

partial:
	// Store the AX < 8 bytes that exist, one at a time.
	MOVQ X8, BX

partialbyte:
	MOVB BX, (R9)(CX*1)
	SHRQ $8, BX
	INCQ CX
	DECQ AX
	JNZ  partialbyte

rowdone:
	ADDQ requantArgs_accStride(DI), R8
	ADDQ requantArgs_outStride(DI), R9
	DECQ R10
	JNZ  row

	VZEROUPPER
	RET
