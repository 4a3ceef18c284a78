//go:build !amd64 || purego

package gemm

// Only the generic path exists on platforms other than amd64 and in builds
// with the purego tag.

func cpuHasAVX2() bool { return false }

func cpuHasVNNI() bool { return false }

func unsupportedReason(kernelPath) string {
	return "the assembly kernels exist only for amd64 builds without the purego tag"
}

func cpuHasFMA() bool { return false }
