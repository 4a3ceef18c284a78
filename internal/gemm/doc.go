// Package gemm implements the integer convolution and fully connected
// kernels of qtool's integer executor: a plain Go reference, and fast paths
// for AVX-512 VNNI, AVX2 and any other CPU, all bit-identical to the
// reference. It also holds the float32 GEMM of the float executor, SGEMM,
// whose AVX-512, AVX2 and plain Go kernels give the same bits, and MaxBytes,
// the row kernel of integer max pooling.
//
// # Overview
//
// NewConv validates a ConvShape, int8 weights and an Epilogue, and packs the
// weights once for the kernel path in use. Conv.Run then computes uint8
// outputs from uint8 inputs on any number of goroutines. NewLinear does the
// same for a fully connected layer, which runs as a 1x1 conv.
// ReferenceConv computes the same outputs by the definition, one value at a
// time, and is what the tests compare every path with.
//
// # Layout
//
// Activations are uint8 in NHWC order: [Batch][H][W][C]. A tensor
// quantized as int8 is stored with its sign bit flipped (x xor 0x80, so
// uint8 = int8 + 128) and its zero point raised by 128, which gives the
// same real values. The kernels therefore always multiply unsigned
// activations by signed weights, which is the operand order of VPDPBUSD.
//
// Weights are int8 in PyTorch's layout, [OutC][InC/Groups][KH][KW] for a
// conv and [Out][In] for a linear layer, symmetric (zero point 0). For 8 bits
// they lie in [-127, 127]; fewer bits give smaller ranges and more headroom.
//
// # Arithmetic
//
// For output channel c the accumulator is the exact int32 value
//
//	acc[c] = Bias[c] + sum_k (a_k - InZeroPoint) * w[c][k]
//
// where k runs over the InC/Groups * KH * KW kernel taps and channels, and
// taps in the padding read InZeroPoint, so they add 0. The kernels compute
// it as start[c] + sum_k a_k * w[c][k] with the per-channel start value
// start[c] = Bias[c] - InZeroPoint * sum_k w[c][k] folded in NewConv. The
// output is
//
//	out = clamp(OutZeroPoint + MultiplyByQuantizedMultiplier(acc[c], Mult[c], Shift[c]), ClampMin, ClampMax)
//
// with the gemmlowp/TensorFlow Lite fixed-point multiplier: a saturating
// left shift, a rounding doubling high multiply (ties toward +infinity) and a
// rounding right shift (ties away from zero). The SIMD routines use 64-bit
// VPMULDQ products and match the scalar steps bit for bit.
// No kernel forms a 16-bit intermediate that could saturate: the AVX2 path
// widens both operands to int16 and multiplies with VPMADDWD, whose int32
// pair sums hold 255*127*2 exactly, and never uses VPMADDUBSW.
//
// # Headroom
//
// NewConv returns an error if, for some output channel,
//
//	depth * max|a - InZeroPoint| * max|w[c]| + |Bias[c]| > 2^31 - 1,
//
// naming the channel and the numbers. For 8-bit weights and inputs
// (255 * 127 per product) that allows a depth of 66,311 with a zero bias.
// Inside that bound every sum is exact: the kernels add in wrapping int32
// arithmetic, possibly in another order and from a start value that itself
// wrapped, and wrapping addition gives the exact result whenever the final
// value fits.
//
// # Kernel paths
//
// KernelPath reports the path in use, chosen once at start-up from the CPU
// features that golang.org/x/sys/cpu reports:
//
//   - "vnni": AVX512F, AVX512BW and AVX512VNNI. VPDPBUSD on 16 output
//     channels by 4 input bytes per vector, a tile of 6 output pixels by up
//     to 64 channels.
//   - "avx2": AVX2. Inputs widened to int16 per tile, VPMADDWD and VPADDD, a
//     tile of 6 output pixels by 16 channels.
//   - "generic": plain Go, on every platform and in builds with the purego
//     tag.
//
// The environment variable QTOOL_KERNEL=generic|avx2|vnni forces a path; a
// value that is invalid or that the CPU cannot run prints a warning to
// stderr and is ignored. The GEMM kernels read each tap of the input
// through a per-pixel offset table instead of an im2col copy, with padded
// taps pointing at a row of InZeroPoint bytes. On the VNNI path a conv with
// Groups 1 and InC not a multiple of 4 first copies its input. The copy
// raises InC to a multiple of 4 and fills in the left and right padding, so
// that the kernels read whole kernel rows. Depthwise convs (Groups = InC =
// OutC) have their own kernels that keep channels in vector lanes.
//
// SGEMM follows the same QTOOL_KERNEL choice: vnni runs its AVX-512
// kernel, avx2 its AVX2 and FMA kernel, generic the plain Go one
// (FloatKernelPath reports which).
//
// The GEMM micro-kernels are generated: run go generate in this folder,
// which runs the generator in asm/ (a separate module, so the main module
// gains no dependency).
//
// # Threads and invariants
//
// Run splits the output pixels into contiguous ranges, one per goroutine,
// and every output value is computed by one goroutine with the same
// arithmetic, so the output is the same for every thread count. Idle worker
// goroutines poll for a short time before they park, because waking a
// parked thread can take longer than a small layer.
//
// A Conv or Linear is immutable after construction, so several goroutines
// may call Run on it concurrently. NewConv copies what it keeps. Run reads
// in and writes out, which must not overlap; it panics if a length does not
// match the shape, because that is a programming error in the caller.
package gemm
