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
//
// The loops run over channel vectors, then rows, so that each vector of
// parameters is loaded once. The left-shift step is skipped when no channel
// has left > 0, and the rounding shift when no channel has right > 0: with
// left = 0 the shift cannot overflow, and with right = 0 the rounding adds 0.

// func requantizeVNNI(args *requantArgs)
//
// Registers: Z16 left, Z17 mult, Z18 mult of the odd lanes, Z19 right,
// Z20 roundMask, Z21 roundHalf for the current channel vector;
// Z26 0x7fffffff, Z27 dword 1, Z28 zeroPoint, Z29 high, Z30 low,
// Z31 qword 2^30; K1 lanes of the current vector that exist, K2 odd lanes,
// K3 overflowed lanes, K4 lanes rounded up.
// DI args, CX channel index, R8 acc, R9 out, R10 rows left,
// R11 hasLeft, R12 hasRight, R13 1 for a partial vector.
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
	MOVQ         requantArgs_hasLeft(DI), R11
	MOVQ         requantArgs_hasRight(DI), R12
	XORQ         CX, CX

vector:
	// K1 = all 16 lanes, or the low n - CX lanes of the last vector, and
	// R13 = 0 for a whole vector, whose accumulators are loaded unmasked.
	MOVQ requantArgs_n(DI), AX
	SUBQ CX, AX
	MOVL $0xffff, BX
	XORQ R13, R13
	CMPQ AX, $16
	JGE  fullmask
	MOVQ CX, DX
	MOVQ AX, CX
	MOVL $1, BX
	SHLL CX, BX
	DECL BX
	MOVQ DX, CX
	MOVQ $1, R13

fullmask:
	KMOVW BX, K1

	MOVQ        requantArgs_left(DI), AX
	VMOVDQU32.Z (AX)(CX*4), K1, Z16
	MOVQ        requantArgs_mult(DI), AX
	VMOVDQU32.Z (AX)(CX*4), K1, Z17
	VPSRLQ      $32, Z17, Z18
	MOVQ        requantArgs_right(DI), AX
	VMOVDQU32.Z (AX)(CX*4), K1, Z19
	MOVQ        requantArgs_roundMask(DI), AX
	VMOVDQU32.Z (AX)(CX*4), K1, Z20
	MOVQ        requantArgs_roundHalf(DI), AX
	VMOVDQU32.Z (AX)(CX*4), K1, Z21

	MOVQ requantArgs_acc(DI), R8
	LEAQ (R8)(CX*4), R8
	MOVQ requantArgs_out(DI), R9
	ADDQ CX, R9
	MOVQ requantArgs_rows(DI), R10

row:
	TESTQ       R13, R13
	JNZ         partialload
	VMOVDQU32   (R8), Z0
	JMP         shift

partialload:
	VMOVDQU32.Z (R8), K1, Z0

shift:

	// x = acc << left, saturated where shifting back does not restore acc.
	TESTQ     R11, R11
	JZ        multiply
	VPSLLVD   Z16, Z0, Z2
	VPSRAVD   Z16, Z2, Z3
	VPCMPD    $4, Z3, Z0, K3
	VPSRAD    $31, Z0, Z4
	VPXORD    Z26, Z4, Z4
	VMOVDQA32 Z4, K3, Z2
	VMOVDQA32 Z2, Z0

multiply:
	// y = (x * mult + 2^30) >> 31 in even and odd lanes.
	VPMULDQ   Z17, Z0, Z6
	VPSRLQ    $32, Z0, Z7
	VPMULDQ   Z18, Z7, Z7
	VPADDQ    Z31, Z6, Z6
	VPADDQ    Z31, Z7, Z7
	VPSRLQ    $31, Z6, Z6
	VPSLLQ    $1, Z7, Z7
	VPBLENDMD Z7, Z6, K2, Z10

	// Rounding right shift: add 1 where the remainder passes the threshold.
	TESTQ   R12, R12
	JZ      clamp
	VPSRAVD Z19, Z10, Z8
	VPANDD  Z20, Z10, Z11
	VPSRAD  $31, Z10, Z13
	VPSUBD  Z13, Z21, Z12
	VPCMPD  $6, Z12, Z11, K4
	VPADDD  Z27, Z8, K4, Z8
	VMOVDQA32 Z8, Z10

clamp:
	// Clamp, add the zero point and store the lanes that exist as bytes.
	VPMAXSD Z30, Z10, Z10
	VPMINSD Z29, Z10, Z10
	VPADDD  Z28, Z10, Z10
	VPMOVDB Z10, K1, (R9)

	ADDQ requantArgs_accStride(DI), R8
	ADDQ requantArgs_outStride(DI), R9
	DECQ R10
	JNZ  row

	ADDQ $16, CX
	CMPQ CX, requantArgs_n(DI)
	JLT  vector

	VZEROUPPER
	RET

// func requantizeAVX2(args *requantArgs)
//
// Registers: Y5 left, Y6 mult, Y7 mult of the odd lanes, Y8 right,
// Y9 roundMask, Y10 roundHalf for the current channel vector;
// Y11 zeroPoint, Y12 high, Y13 low, Y14 0x7fffffff, Y15 qword 2^30.
// DI args, CX channel index, R8 acc, R9 out, R10 rows left, R11 hasLeft,
// R12 hasRight, R13 channels in this vector (8, or fewer in the last),
// BX the result bytes of a partial vector.
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
	MOVQ         requantArgs_hasLeft(DI), R11
	MOVQ         requantArgs_hasRight(DI), R12
	XORQ         CX, CX

vector:
	MOVQ requantArgs_n(DI), R13
	SUBQ CX, R13
	CMPQ R13, $8
	JLE  loadparams
	MOVQ $8, R13

loadparams:
	MOVQ    requantArgs_left(DI), AX
	VMOVDQU (AX)(CX*4), Y5
	MOVQ    requantArgs_mult(DI), AX
	VMOVDQU (AX)(CX*4), Y6
	VPSRLQ  $32, Y6, Y7
	MOVQ    requantArgs_right(DI), AX
	VMOVDQU (AX)(CX*4), Y8
	MOVQ    requantArgs_roundMask(DI), AX
	VMOVDQU (AX)(CX*4), Y9
	MOVQ    requantArgs_roundHalf(DI), AX
	VMOVDQU (AX)(CX*4), Y10

	MOVQ requantArgs_acc(DI), R8
	LEAQ (R8)(CX*4), R8
	MOVQ requantArgs_out(DI), R9
	ADDQ CX, R9
	MOVQ requantArgs_rows(DI), R10

row:
	VMOVDQU (R8), Y0

	// x = acc << left, saturated where shifting back does not restore acc.
	TESTQ     R11, R11
	JZ        multiply
	VPSLLVD   Y5, Y0, Y2
	VPSRAVD   Y5, Y2, Y3
	VPCMPEQD  Y3, Y0, Y3
	VPSRAD    $31, Y0, Y4
	VPXOR     Y14, Y4, Y4
	VPBLENDVB Y3, Y2, Y4, Y0

multiply:
	// y = (x * mult + 2^30) >> 31 in even and odd lanes.
	VPMULDQ  Y6, Y0, Y1
	VPSRLQ   $32, Y0, Y2
	VPMULDQ  Y7, Y2, Y2
	VPADDQ   Y15, Y1, Y1
	VPADDQ   Y15, Y2, Y2
	VPSRLQ   $31, Y1, Y1
	VPSLLQ   $1, Y2, Y2
	VPBLENDD $0xaa, Y2, Y1, Y1

	// Rounding right shift: subtract -1 where the remainder passes the
	// threshold.
	TESTQ    R12, R12
	JZ       clamp
	VPSRAVD  Y8, Y1, Y2
	VPAND    Y9, Y1, Y3
	VPSRAD   $31, Y1, Y4
	VPSUBD   Y4, Y10, Y4
	VPCMPGTD Y4, Y3, Y3
	VPSUBD   Y3, Y2, Y1

clamp:
	// Clamp and add the zero point, then pack the 8 values, each in
	// 0..255, into the low 8 bytes of X1.
	VPMAXSD      Y13, Y1, Y1
	VPMINSD      Y12, Y1, Y1
	VPADDD       Y11, Y1, Y1
	VPACKSSDW    Y1, Y1, Y1
	VPACKUSWB    Y1, Y1, Y1
	VEXTRACTI128 $1, Y1, X2
	VPUNPCKLDQ   X2, X1, X1

	CMPQ R13, $8
	JLT  partial
	MOVQ X1, (R9)
	JMP  rowdone

partial:
	// Store the R13 < 8 bytes that exist, one at a time.
	MOVQ X1, BX
	MOVQ R13, AX
	MOVQ R9, DX

partialbyte:
	MOVB BX, (DX)
	SHRQ $8, BX
	INCQ DX
	DECQ AX
	JNZ  partialbyte

rowdone:
	ADDQ requantArgs_accStride(DI), R8
	ADDQ requantArgs_outStride(DI), R9
	DECQ R10
	JNZ  row

	ADDQ $8, CX
	CMPQ CX, requantArgs_n(DI)
	JLT  vector

	VZEROUPPER
	RET
