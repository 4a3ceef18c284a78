//go:build amd64 && !purego

package gemm

import "golang.org/x/sys/cpu"

// cpuHasAVX2 reports whether the CPU and the OS support AVX2.
func cpuHasAVX2() bool {
	return cpu.X86.HasAVX2
}

// cpuHasVNNI reports whether the CPU and the OS support the AVX-512
// instructions of the VNNI path: AVX512F, AVX512BW (byte masks and shuffles)
// and AVX512VNNI (VPDPBUSD).
func cpuHasVNNI() bool {
	return cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VNNI
}

func unsupportedReason(p kernelPath) string {
	switch p {
	case pathAVX2:
		return "the CPU lacks AVX2"
	case pathVNNI:
		return "the CPU lacks AVX512F, AVX512BW or AVX512VNNI"
	}
	return ""
}

// cpuHasFMA reports whether the CPU supports the FMA3 instructions that the
// AVX2 float32 kernel uses.
func cpuHasFMA() bool {
	return cpu.X86.HasFMA
}
