// Package affine maps real tensors to small integers and back, and carries
// out the integer-only rescaling between layers.
//
// # The scheme
//
// A real value x in the calibrated range [alpha, beta] is stored as an
// integer x_q in [qmin, qmax]. Every name below is a field or argument in
// this package (Params.Scale, Params.ZeroPoint, Params.QMin, Params.QMax).
//
//	(1) x_q = clamp(round(x / scale) + zero_point, qmin, qmax)    quantize
//	(2) x   = scale * (x_q - zero_point)                          dequantize
//
// scale is the real size of one integer step, never its inverse. For an
// asymmetric scheme ChooseParams picks
//
//	(3) scale      = (beta - alpha) / (qmax - qmin)
//	(4) zero_point = round(qmin - alpha / scale)
//
// after widening [alpha, beta] to contain 0. A symmetric scheme fixes
// zero_point (0 for signed types, 2^(bits-1) for unsigned ones) and uses
//
//	(5) scale = max(|alpha|, |beta|) / (qmax - zero_point)
//
// # Why real 0 is exact
//
// zero_point is an integer in [qmin, qmax], so x = 0 quantizes to
// zero_point and dequantizes to exactly 0 by (1) and (2). Zero padding fills
// the border with zero_point and is then exactly 0. A fused ReLU is a clamp
// at zero_point. If 0 were not representable, every padded pixel would add
// a bias and ReLU would cut at the wrong value. Equation (4) therefore
// rounds the ideal real zero point to an integer ("nudges" it), which moves
// the represented range by less than half a step.
//
// # Integer layers
//
// A convolution or matrix product with input x, weights w and bias b
// accumulates in int32 the exact sum
//
//	(6) acc = sum_k (x_q[k] - zero_point_in) * (w_q[k] - zero_point_w) + b_q
//	(7) b_q = round(b / (scale_in * scale_w))      (int32, zero point 0)
//
// so that acc * scale_in * scale_w is the real output. The output is then
//
//	(8) y_q = clamp(zero_point_out + M * acc, qmin, qmax)
//	(9) M   = scale_in * scale_w / scale_out
//
// M is a real number and is stored as a Multiplier, an int32 mantissa with
// its binary point at bit 31 and a power-of-two shift:
//
//	(10) M = Mult * 2^(Shift - 31),   Mult in [2^30, 2^31 - 1]
//
// MultiplyByQuantizedMultiplier evaluates M * acc from (10) with integer
// operations only, in the gemmlowp and TensorFlow Lite style.
//
// # Rounding of every step
//
//   - Quantize (1): x / scale in float32, then round half to even
//     (RoundHalfToEven, the rule of ONNX QuantizeLinear), then clamp.
//     NaN quantizes to zero_point.
//   - Dequantize (2): one rounding of the exact product to float32.
//   - Scale (3), (5): computed in float64 and rounded up to float32, so the
//     stored step is never smaller than the ideal one.
//   - Zero point (4): nearest integer, ties to even, then clamped to
//     [qmin, qmax].
//   - Bias (7): computed in float64, round half to even.
//   - Multiplier mantissa (10): nearest, ties away from zero. A mantissa that
//     rounds up to 2^31 is halved and Shift raised by one.
//   - M * acc (8): RequantRounding, two roundings in a row.
//     SaturatingRoundingDoublingHighMul rounds ties toward +Inf, as ARM
//     SQRDMULH does, then RoundingDivideByPOT rounds ties away from zero.
//     The result is within one step of round(acc * M) when |acc * M| is
//     at most 2^30 and acc << Shift fits int32, but it is not always the
//     nearest integer.
//   - Adding zero_point_out and clamping (8): exact, without int32 overflow.
//
// # Degenerate input
//
// ChooseParams never returns a zero, infinite or NaN scale. A range of zero
// width (alpha == beta == 0, or an all-zero weight channel) or one so small
// that the scale would fall below MinScale gets Scale = MinScale. A range that
// is NaN, infinite or has alpha > beta is an error. QuantizeMultiplier
// rejects M <= 0, NaN, Inf and M >= 2^31 - 0.5, and maps M < 2^-32 to the
// zero Multiplier, whose product is always 0.
//
// # Invariants
//
// No function modifies its input slices. Requantize may write its output
// over its input (out and acc may be the same slice). Params and Multiplier
// are small values, so copies never share state.
package affine
