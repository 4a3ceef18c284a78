//go:build amd64 && !purego

#include "textflag.h"
#include "go_asm.h"

// func widenRowsAVX2(args *widenArgs)
//
// For each tap t and row r: src = a + offsets[t][r], or zeroRow when the
// offset is negative; dst[r][t*channels + i] = uint16(src[i]) for
// i < channels. 16 values per VPMOVZXBW, then one at a time.
TEXT ·widenRowsAVX2(SB), NOSPLIT, $0-8
	MOVQ args+0(FP), DI
	MOVQ widenArgs_offsets(DI), R8
	MOVQ widenArgs_dst(DI), R9     // dst of row 0 at the current tap
	MOVQ widenArgs_taps(DI), R10

tap:
	MOVQ R9, R11                   // dst of the current row
	MOVQ widenArgs_rows(DI), R12

row:
	MOVLQSX (R8), AX
	ADDQ    $4, R8
	MOVQ    widenArgs_a(DI), SI
	ADDQ    AX, SI
	TESTQ   AX, AX
	CMOVQLT widenArgs_zeroRow(DI), SI
	MOVQ    R11, BX
	MOVQ    widenArgs_channels(DI), CX
	CMPQ    CX, $16
	JLT     tail

vector:
	VPMOVZXBW (SI), Y0
	VMOVDQU   Y0, (BX)
	ADDQ      $16, SI
	ADDQ      $32, BX
	SUBQ      $16, CX
	CMPQ      CX, $16
	JGE       vector

tail:
	TESTQ CX, CX
	JZ    rowdone

scalar:
	MOVBLZX (SI), AX
	MOVW    AX, (BX)
	INCQ    SI
	ADDQ    $2, BX
	DECQ    CX
	JNZ     scalar

rowdone:
	ADDQ widenArgs_dstStride(DI), R11
	DECQ R12
	JNZ  row

	MOVQ widenArgs_channels(DI), AX
	SHLQ $1, AX
	ADDQ AX, R9
	DECQ R10
	JNZ  tap

	VZEROUPPER
	RET
