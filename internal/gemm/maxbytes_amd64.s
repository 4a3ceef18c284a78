//go:build amd64 && !purego

#include "textflag.h"

// func maxBytesAVX2(dst, src *uint8, n int)
TEXT ·maxBytesAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	XORQ AX, AX

loop:
	VMOVDQU (DI)(AX*1), Y0
	VPMAXUB (SI)(AX*1), Y0, Y0
	VMOVDQU Y0, (DI)(AX*1)
	ADDQ $32, AX
	CMPQ AX, CX
	JLT  loop
	VZEROUPPER
	RET
