package fold

import (
	"fmt"
	"math"
	"strings"

	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// visitBatchNorm checks a batchnorm's statistics and folds it into its producer when the
// producer is a conv2d or linear that nothing else reads.
func (f *fuser) visitBatchNorm(bn *graph.Node) error {
	if err := f.checkStatistics(bn); err != nil {
		return err
	}

	in := bn.Inputs[0]
	producer := f.m.NodeByName(in)
	if reason := f.foldBlocker(in, producer, bn); reason != "" {
		f.keep(bn, reason)
		return nil
	}

	detail, err := f.foldBatchNorm(producer, bn)
	if err != nil {
		return err
	}
	change := Change{Action: ActionFolded, Node: f.originalName[bn], Op: bn.Op, Into: f.originalName[producer], Detail: detail, carrier: producer}
	f.absorb(producer, bn)
	f.apply(change)
	return nil
}

// foldBlocker returns why bn cannot be folded into producer, which computes tensor in, or ""
// when it can.
func (f *fuser) foldBlocker(in string, producer, bn *graph.Node) string {
	switch {
	case producer == nil:
		return fmt.Sprintf("input %q is a graph input", in)
	case producer.Op != graph.OpConv2D && producer.Op != graph.OpLinear:
		return fmt.Sprintf("input %q comes from %s; only conv2d and linear take a folded BatchNorm", in, producer.Op)
	case producer.Attrs.Activation.Kind != graph.ActNone:
		return fmt.Sprintf("input %q already applies a fused %s, and a BatchNorm cannot be folded across a clamp",
			in, describeActivation(producer.Attrs.Activation))
	}
	return f.otherReaders(in, bn)
}

// checkStatistics rejects a batchnorm whose eps or channel statistics make it meaningless: a
// running_var that is negative, NaN or infinite, or a non-finite mean, gamma or beta.
func (f *fuser) checkStatistics(bn *graph.Node) error {
	name := f.originalName[bn]
	eps := bn.Attrs.Eps
	if !(eps >= 0) || math.IsInf(eps, 1) {
		return fmt.Errorf("fold: batchnorm %q: eps %v must be finite and non-negative", name, eps)
	}

	variance := f.m.Param(bn, "running_var")
	first, bad := -1, 0
	for c, v := range variance.Data {
		if !(v >= 0) || math.IsInf(float64(v), 1) {
			if first < 0 {
				first = c
			}
			bad++
		}
	}
	if first >= 0 {
		more := ""
		if bad > 1 {
			more = fmt.Sprintf(" (%d of %d channels are invalid)", bad, variance.Len())
		}
		return fmt.Errorf("fold: batchnorm %q channel %d: running_var is %v; a variance must be finite and non-negative, so check the exported running statistics%s",
			name, first, variance.Data[first], more)
	}

	for _, role := range []string{"running_mean", "weight", "bias"} {
		t := f.m.Param(bn, role)
		if t == nil {
			continue
		}
		if i := t.FirstNonFinite(); i >= 0 {
			return fmt.Errorf("fold: batchnorm %q channel %d: %s is %v; BatchNorm statistics must be finite",
				name, i, roleName(role), t.Data[i])
		}
	}
	return nil
}

// roleName returns the PyTorch name of a batchnorm param role, for messages.
func roleName(role string) string {
	switch role {
	case "weight":
		return "weight (gamma)"
	case "bias":
		return "bias (beta)"
	}
	return role
}

// foldBatchNorm replaces layer's weight and bias params by the folded ones, per output channel
//
//	W'[c] = W[c] * s[c],  b'[c] = (b[c] - mean[c]) * s[c] + beta[c],  s[c] = gamma[c] / sqrt(var[c] + eps)
//
// computed in float64 and rounded to float32 once. It returns a note for the report.
func (f *fuser) foldBatchNorm(layer, bn *graph.Node) (string, error) {
	w := f.m.Param(layer, "weight")
	bias := f.m.Param(layer, "bias")
	mean := f.m.Param(bn, "running_mean")
	variance := f.m.Param(bn, "running_var")
	gamma := f.m.Param(bn, "weight")
	beta := f.m.Param(bn, "bias")
	eps := bn.Attrs.Eps

	channels := w.Shape[0]
	if mean.Len() != channels || variance.Len() != channels {
		return "", fmt.Errorf("fold: batchnorm %q has %d channels but %s %q has %d output channels",
			f.originalName[bn], variance.Len(), layer.Op, f.originalName[layer], channels)
	}
	rowLen := w.Len() / channels

	folded := tensor.New(w.Shape...)
	foldedBias := tensor.New(channels)
	var warnings []Warning
	for c := range channels {
		g := 1.0
		if gamma != nil {
			g = float64(gamma.Data[c])
		}
		shift := 0.0
		if beta != nil {
			shift = float64(beta.Data[c])
		}
		b := 0.0
		if bias != nil {
			b = float64(bias.Data[c])
		}
		v := float64(variance.Data[c])
		scale := g / math.Sqrt(v+eps)

		row := folded.Data[c*rowLen : (c+1)*rowLen]
		for i, x := range w.Data[c*rowLen : (c+1)*rowLen] {
			row[i] = float32(float64(x) * scale)
		}
		foldedBias.Data[c] = float32((b-float64(mean.Data[c]))*scale + shift)

		if !allFinite(row) || !allFinite(foldedBias.Data[c:c+1]) {
			return "", fmt.Errorf("fold: batchnorm %q channel %d: the folded weight or bias of %s %q overflows float32, because gamma/sqrt(running_var + eps) = %.4g (gamma %v, running_var %v, eps %v); check this channel's running_var and eps",
				f.originalName[bn], c, layer.Op, f.originalName[layer], scale, float32(g), variance.Data[c], eps)
		}
		if v == 0 {
			warnings = append(warnings, Warning{
				Node:    f.originalName[bn],
				Channel: c,
				Message: fmt.Sprintf("running_var is 0, so the channel had no variance in training (a dead channel), and its folded weights are scaled by gamma/sqrt(eps) = %.4g", scale),
			})
		}
	}

	weightKey := f.ownParam(layer, "weight")
	biasKey := f.ownParam(layer, "bias")
	layer.Params["weight"] = weightKey
	layer.Params["bias"] = biasKey
	f.m.Params[weightKey] = folded
	f.m.Params[biasKey] = foldedBias
	f.report.Warnings = append(f.report.Warnings, warnings...)

	return foldNote(bias == nil, gamma == nil, biasKey), nil
}

// foldNote describes the defaults a fold used, for the report.
func foldNote(createdBias, noAffine bool, biasKey string) string {
	var notes []string
	if createdBias {
		notes = append(notes, fmt.Sprintf("added bias %q", biasKey))
	}
	if noAffine {
		notes = append(notes, "used gamma 1 and beta 0 (no affine params)")
	}
	return strings.Join(notes, ", ")
}

func allFinite(v []float32) bool {
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return false
		}
	}
	return true
}
