//go:build !unix

package gemm

// processCPUSeconds returns 0 where getrusage is missing, which disables the
// cpuGOPS metric.
func processCPUSeconds() float64 { return 0 }
