package main

import (
	"bytes"
	"fmt"
)

// sgemmKernel describes one float32 micro-kernel: a tile of rows times
// vectors*lanes columns, with one accumulator register per row and vector.
type sgemmKernel struct {
	name    string // Go symbol
	reg     string // register prefix: "Z" or "Y"
	lanes   int    // float32 values per vector
	rows    int    // rows of the tile (rows of A)
	vectors int    // vectors per row of the tile
}

// sgemmKernels are the float kernels: AVX-512 with 8 rows times 3 vectors
// (24 of the 32 registers hold accumulators) and AVX2 with 4 rows times 3
// vectors (12 of the 16).
var sgemmKernels = []sgemmKernel{
	{name: "sgemmAVX512", reg: "Z", lanes: 16, rows: 8, vectors: 3},
	{name: "sgemmAVX2", reg: "Y", lanes: 8, rows: 4, vectors: 3},
}

// writeSGEMM emits the float32 kernels. Each computes, for one tile,
//
//	c[r][n] = fma(a[k][r], b[k][n], c[r][n]) for k = 0, 1, ..., k-1
//
// one fused multiply-add per k, in k order, so every output is the same
// chain of roundings as the generic Go kernel's. Register use:
//
//	acc   rows*vectors accumulators, R(r*vectors + j)
//	B     the current row of b, one register per vector
//	T     the broadcast a[k][r]
//	DI args, R8 b row, R9 b stride, R11 a panel, CX k left,
//	AX c row, BX c stride
func writeSGEMM(b *bytes.Buffer) {
	for _, kern := range sgemmKernels {
		emit := func(format string, args ...any) { fmt.Fprintf(b, "\t"+format+"\n", args...) }
		reg := func(i int) string { return fmt.Sprintf("%s%d", kern.reg, i) }
		acc := func(r, j int) string { return reg(r*kern.vectors + j) }
		firstB := kern.rows * kern.vectors
		bcast := reg(firstB + kern.vectors)
		width := 4 * kern.lanes // bytes per vector

		fmt.Fprintf(b, "\n// func %s(args *sgemmArgs)\n", kern.name)
		fmt.Fprintf(b, "TEXT ·%s(SB), NOSPLIT, $0-8\n", kern.name)
		emit("MOVQ args+0(FP), DI")
		emit("MOVQ sgemmArgs_c(DI), AX")
		emit("MOVQ sgemmArgs_cStride(DI), BX")
		emit("MOVQ AX, R10")
		for r := 0; r < kern.rows; r++ {
			for j := 0; j < kern.vectors; j++ {
				emit("VMOVUPS %d(R10), %s", width*j, acc(r, j))
			}
			if r < kern.rows-1 {
				emit("ADDQ BX, R10")
			}
		}
		emit("MOVQ sgemmArgs_a(DI), R11")
		emit("MOVQ sgemmArgs_b(DI), R8")
		emit("MOVQ sgemmArgs_bStride(DI), R9")
		emit("MOVQ sgemmArgs_k(DI), CX")

		fmt.Fprintf(b, "%sk:\n", kern.name)
		for j := 0; j < kern.vectors; j++ {
			emit("VMOVUPS %d(R8), %s", width*j, reg(firstB+j))
		}
		for r := 0; r < kern.rows; r++ {
			emit("VBROADCASTSS %d(R11), %s", 4*r, bcast)
			for j := 0; j < kern.vectors; j++ {
				emit("VFMADD231PS %s, %s, %s", reg(firstB+j), bcast, acc(r, j))
			}
		}
		emit("ADDQ R9, R8")
		emit("ADDQ $%d, R11", 4*kern.rows)
		emit("DECQ CX")
		emit("JNZ %sk", kern.name)

		emit("MOVQ AX, R10")
		for r := 0; r < kern.rows; r++ {
			for j := 0; j < kern.vectors; j++ {
				emit("VMOVUPS %s, %d(R10)", acc(r, j), width*j)
			}
			if r < kern.rows-1 {
				emit("ADDQ BX, R10")
			}
		}
		emit("VZEROUPPER")
		emit("RET")
	}
}
