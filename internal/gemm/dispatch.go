package gemm

import (
	"fmt"
	"os"
	"strings"
)

// kernelPath selects one implementation of every kernel.
type kernelPath int

const (
	// pathGeneric is plain Go, available on every platform.
	pathGeneric kernelPath = iota
	// pathAVX2 widens u8 and s8 to int16 and multiplies with VPMADDWD.
	pathAVX2
	// pathVNNI multiplies u8 by s8 with the AVX-512 VNNI VPDPBUSD.
	pathVNNI
)

// kernelEnv is the environment variable that forces a path.
const kernelEnv = "QTOOL_KERNEL"

func (p kernelPath) String() string {
	switch p {
	case pathAVX2:
		return "avx2"
	case pathVNNI:
		return "vnni"
	default:
		return "generic"
	}
}

// parseKernelPath returns the path named name ("generic", "avx2", "vnni").
func parseKernelPath(name string) (kernelPath, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "generic":
		return pathGeneric, nil
	case "avx2":
		return pathAVX2, nil
	case "vnni":
		return pathVNNI, nil
	}
	return pathGeneric, fmt.Errorf("gemm: invalid %s %q, expected generic, avx2 or vnni", kernelEnv, name)
}

// supportedPaths returns the paths that this build and CPU can run, slowest
// first.
func supportedPaths() []kernelPath {
	paths := []kernelPath{pathGeneric}
	if cpuHasAVX2() {
		paths = append(paths, pathAVX2)
	}
	if cpuHasVNNI() {
		paths = append(paths, pathVNNI)
	}
	return paths
}

func pathSupported(p kernelPath) bool {
	for _, q := range supportedPaths() {
		if q == p {
			return true
		}
	}
	return false
}

// selectPath returns the fastest supported path, or the path named by a
// non-empty forced value. A forced path that is invalid or that the CPU or
// build cannot run falls back to the fastest supported path, and the
// returned warning gives the reason.
func selectPath(forced string) (kernelPath, string) {
	paths := supportedPaths()
	best := paths[len(paths)-1]
	if forced == "" {
		return best, ""
	}

	p, err := parseKernelPath(forced)
	if err != nil {
		return best, fmt.Sprintf("%v; using %s", err, best)
	}
	if !pathSupported(p) {
		return best, fmt.Sprintf("gemm: %s=%s is not supported by this CPU or build (%s); using %s",
			kernelEnv, p, unsupportedReason(p), best)
	}
	return p, ""
}

// activePath is the path that NewConv and NewLinear use, chosen once when
// the program starts.
var activePath = initActivePath()

func initActivePath() kernelPath {
	p, warning := selectPath(os.Getenv(kernelEnv))
	if warning != "" {
		fmt.Fprintln(os.Stderr, "qtool: warning: "+strings.TrimPrefix(warning, "gemm: "))
	}
	return p
}

// KernelPath returns the kernel path in use: "vnni", "avx2" or "generic".
// It is the fastest path that the CPU supports unless the environment
// variable QTOOL_KERNEL names another one. An invalid or unsupported
// QTOOL_KERNEL prints a warning to stderr once and is ignored.
func KernelPath() string {
	return activePath.String()
}
