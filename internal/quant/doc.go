// Package quant turns a float model and its calibration table into a quantized model
// (format.QModel): int8 weights, int32 biases, per-tensor activation parameters, and the
// fixed-point multipliers that the integer executor applies as internal/format/qmodel.go states.
//
// # Overview
//
// Quantize walks the graph once, in order. Every activation tensor whose values a node
// computes anew (graph inputs and the outputs of conv2d, linear, batchnorm, add and concat) gets
// its range [alpha, beta] from the calibration table and its parameters from
// affine.ChooseParams. Nodes that only move or select values (maxpool2d, avgpool2d,
// global_avgpool, flatten, and a standalone relu, relu6 or clip) keep their input's
// parameters, so they need no rescaling. identity and dropout nodes disappear: their readers
// read the input instead, and a graph output that an identity produces becomes a clip over the
// full integer range.
//
// For each conv2d and linear layer, with input scale s_in, weight scale s_w[c] of output
// channel c and output scale s_out:
//
//	w_q[c]  = clamp(round(w[c] / s_w[c]), -(2^(bits-1) - 1), 2^(bits-1) - 1)   zero point 0
//	b_q[c]  = round(b[c] / (s_in * s_w[c]))                                    int32, zero point 0
//	M[c]    = s_in * s_w[c] / s_out  as  Mult[c] * 2^(Shift[c] - 31)
//
// A standalone batchnorm becomes a depthwise 1x1 conv2d with w[c] = gamma[c] / sqrt(var[c] + eps)
// and b[c] = beta[c] - mean[c] * w[c], or a linear layer with the diagonal weight diag(w) on
// [N, C] features. The weight is a signed int8 like any other, so a negative gamma works. A fused activation becomes the clamp [ClampMin, ClampMax] of the output integers.
//
// # Checks
//
// Quantize returns an error, naming the layer or tensor and the numbers, when the calibration
// table was made for another model (unless Options.AllowStale), when a tensor it needs is missing
// from the table, when a bias does not fit int32 (unless Options.WidenWeightScale), and when a
// channel's worst-case accumulator K * max|x - z_in| * max|w_q| + |b_q| exceeds 2^31 - 1.
//
// # Invariants
//
// Quantize does not modify the model or the table. The QModel it returns shares no memory with
// them. The result depends only on the model, the table and the options, so the same inputs give
// byte-identical .qmodel files.
package quant
