// Command vnnipeak measures the int8 multiply-add peak of this machine's
// cores: independent VPDPBUSD instructions on 512-bit registers (the
// AVX-512 VNNI path's inner instruction) and VPMADDWD plus VPADDD pairs on
// 256-bit registers (the exact AVX2 path's), and the float32 peak of
// independent VFMADD231PS on 512-bit registers (GFLOPS, the AVX-512 float
// kernel's instruction), on 1 and on all cores at once.
// docs/benchmarks.md compares the gemm kernels with these numbers.
//
// Usage: go run ./bench/vnnipeak [-duration 2s]
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

// loop is one measured instruction sequence: run executes iterations of the
// unrolled loop body, which performs opsPerIteration int8 operations
// (2 per multiply-add).
type loop struct {
	name            string
	supported       bool
	opsPerIteration float64
	run             func(iterations int)
}

func main() {
	duration := flag.Duration("duration", 2*time.Second, "time to run each measurement")
	flag.Parse()

	loops := []loop{
		{"VPDPBUSD zmm (vnni)", hasVNNI(), 12 * 64 * 2, vpdpbusdLoop},
		{"VPMADDWD+VPADDD ymm (avx2)", hasAVX2(), 6 * 16 * 2, vpmaddwdLoop},
		{"VFMADD231PS zmm (float32)", hasAVX512F(), 12 * 16 * 2, vfmaddLoop},
	}
	fmt.Printf("%-28s %8s %10s\n", "instructions", "threads", "G(FL)OPS")
	for _, l := range loops {
		if !l.supported {
			fmt.Printf("%-28s %8s %10s\n", l.name, "-", "unsupported")
			continue
		}
		for _, threads := range []int{1, runtime.NumCPU()} {
			fmt.Printf("%-28s %8d %10.1f\n", l.name, threads, measure(l, threads, *duration))
		}
	}
}

// measure runs l on threads locked OS threads for about duration and
// returns the combined GOPS.
func measure(l loop, threads int, duration time.Duration) float64 {
	// Calibrate the iteration count so that one call takes about duration.
	iterations := 1 << 20
	for {
		start := time.Now()
		l.run(iterations)
		if elapsed := time.Since(start); elapsed > duration/10 {
			iterations = int(float64(iterations) * float64(duration) / float64(elapsed))
			break
		}
		iterations *= 2
	}

	var wg sync.WaitGroup
	start := time.Now()
	for t := 0; t < threads; t++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			l.run(iterations)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	if elapsed <= 0 {
		fmt.Fprintln(os.Stderr, "vnnipeak: the measurement took no time; increase -duration")
		os.Exit(1)
	}
	return float64(threads) * float64(iterations) * l.opsPerIteration / elapsed / 1e9
}
