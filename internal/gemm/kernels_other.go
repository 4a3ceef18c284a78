//go:build !amd64 || purego

package gemm

// Without the assembly kernels only the generic path is supported, so
// newConvPath never selects the methods below; they exist so that the
// dispatch in run.go compiles on every platform.

const (
	vnniTileRows = 1
	avx2TileRows = 1
)

func (c *Conv) tilesVNNI(*workspace, []int32, []uint8, int, []int32, int, int) {
	panic("gemm: the VNNI kernels are not built on this platform")
}

func (c *Conv) tileAVX2(*workspace, []int32, []uint8, int, []int32, int) {
	panic("gemm: the AVX2 kernels are not built on this platform")
}

func (c *Conv) depthwiseVNNI(*workspace, []uint8, int, []int32, int) {
	panic("gemm: the VNNI kernels are not built on this platform")
}

func (c *Conv) depthwiseAVX2(*workspace, []uint8, int, []int32, int) {
	panic("gemm: the AVX2 kernels are not built on this platform")
}

func (c *Conv) requantizeRowsSIMD(acc []int32, accStride int, out []uint8, outStride, rows, channel, n int) {
	requantizeRowsGeneric(&c.requant, acc, accStride, out, outStride, rows, channel, n)
}

// requantizeRowsPath runs the generic routine, the only one on this platform.
func requantizeRowsPath(_ kernelPath, params *requantParams, acc []int32, accStride int, out []uint8, outStride, rows, channel, n int) {
	requantizeRowsGeneric(params, acc, accStride, out, outStride, rows, channel, n)
}
