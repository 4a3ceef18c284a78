// Package fold rewrites a float model into the form that qtool quantizes. Every BatchNorm that
// follows a conv2d or linear layer is folded into that layer's weight and bias. Every relu,
// relu6 and clip is fused into the conv2d, linear or add that produces its input. Identity and
// dropout nodes are dropped.
//
// # Overview
//
// Fuse returns a new model and a Report that lists what was folded, fused, dropped and kept,
// with the reason for each node that stayed in place. A BatchNorm with channel statistics
// (running_mean, running_var, gamma, beta) and eps folds into the layer before it, per output
// channel c, as
//
//	W'[c] = W[c] * gamma[c] / sqrt(var[c] + eps)
//	b'[c] = (b[c] - mean[c]) * gamma[c] / sqrt(var[c] + eps) + beta[c]
//
// in float64, rounded to float32 once. A layer without bias is treated as b = 0 and gets a
// bias param. A BatchNorm without affine params uses gamma 1 and beta 0. The output channel is
// dimension 0 of the weight for every conv2d, whatever its groups (depthwise included), and
// for linear, whose BatchNorm then normalizes [N, C] features.
//
// # When a node stays
//
// A BatchNorm or activation is merged into its producer only when the producer's output has no
// other consumer and is not a graph output, because merging would change the values those other
// readers see. A BatchNorm is also kept after a producer that already applies a fused
// activation, since a clamp followed by an affine map is not an affine map. An activation that
// follows a node with an activation composes with it: clamping to [lo1, hi1] and then to
// [lo2, hi2] equals one clamp to the intersection [max(lo1, lo2), min(hi1, hi2)] whenever that
// interval has lo < hi. When it does not, the output would be a constant, and the activation is
// kept.
//
// # Names after fusion
//
// The producer's node survives with its op, attrs and params, and takes the name of the last
// node of the chain it absorbed: conv1 -> bn1 -> relu1 becomes one conv2d node named relu1
// whose params are still conv1.weight and conv1.bias. So every tensor name of the fused model
// carries the same values (up to float32 rounding) as the tensor of that name in the input
// model, and calibration ranges keyed by these names describe the same values in both. Graph
// outputs keep their names. Intermediate tensors such as conv1 and bn1 above no longer exist.
//
// An identity or dropout node X that reads Y is dropped in the same way when Y's producer can
// take X's name. When it cannot (Y is a graph input, Y has other consumers or Y is a graph
// output), X's consumers read Y instead, and a graph output named X is renamed Y. The report
// notes each such renamed output.
//
// # Parameters
//
// Before a BatchNorm is folded into a layer whose weight or bias key other nodes also use (a
// shared constant), the layer gets its own copy under the key "<node>.<role>", so the other
// users keep the original values. A created bias gets the key "<node>.bias". Here <node> is the
// layer's name in the input model, and a suffix .1, .2, ... is added when the key is in use.
// Params that no node references after fusion are removed from the model.
//
// # Invariants
//
// Fuse never modifies its input: the returned model has its own nodes, inputs, outputs and
// Params map. Unchanged parameter tensors are shared between the two models, and no tensor of
// either is written in place. Fuse reaches a fixed point: fusing its result again changes
// nothing, so a model fused twice and saved under the same file name gives the same bytes as
// the model fused once.
package fold
