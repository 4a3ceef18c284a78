//go:build !amd64 || purego

package gemm

// sgemmArgs exists so that the dispatch compiles; no kernel takes it here.
type sgemmArgs struct{}

// sgemmTile returns rows 0: only the generic float kernel exists here.
func sgemmTile(kernelPath) (rows, cols int, kernel func(*sgemmArgs)) { return 0, 0, nil }

func sgemmTiled(int, int, func(*sgemmArgs), int, int, int, []float32, int, []float32, int, []float32, int) {
	panic("gemm: the float32 assembly kernels are not built on this platform")
}
