// Package qinfer runs a quantized model (*format.QModel) with integer arithmetic only.
//
// # Overview
//
// New checks every node of the model against the arithmetic contract in internal/format's
// qmodel.go and prepares it once. internal/gemm packs the conv2d and linear weights, folds
// Bias[c] - z_in * sum_k W[c][k] into each channel's start value, and rejects a layer whose
// int32 accumulator could overflow. Run quantizes each float input once (affine.Params.
// Quantize: round half to even, then clamp), runs every node on integers, and dequantizes the
// graph outputs once. Between those two steps no floating-point operation touches the data,
// except in nodes with Float set, which dequantize their inputs, run the float op with
// internal/infer and quantize their output.
//
// # Layout
//
// Every activation is stored as bytes in NHWC order, one sample after another. A rank-2
// tensor [N, C] is stored as NHWC with H = W = 1. A uint8 tensor stores its integer value
// itself. An int8 tensor stores value + 128, the int8 bit pattern with its top bit flipped
// (x xor 0x80), so that the gemm kernels, which take uint8 activations, run int8 tensors
// unchanged with their zero point and clamp bounds raised by 128. Max, clamp, copy and the
// differences x - z that add and concat rescale are the same in both domains, and the
// round-half-up mean of avgpool shifts by exactly 128.
//
// # Determinism
//
// Every output integer is computed from its own inputs by exact integer arithmetic, so Run
// returns the same bits for any batch size and thread count. Nodes with Float set use
// internal/infer, which makes the same promise.
//
// # Invariants
//
// An Executor is immutable after New, and several goroutines may call Run at the same time.
// Run does not modify its input tensors, and the tensors it returns share no memory with the
// Executor or with each other.
package qinfer
