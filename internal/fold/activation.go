package fold

import (
	"fmt"

	"github.com/qtool-dev/qtool/internal/graph"
)

// visitActivation fuses a relu, relu6 or clip node into its producer when the producer is a
// conv2d, linear or add that nothing else reads. An activation the producer already applies
// is composed with the new one.
func (f *fuser) visitActivation(act *graph.Node) {
	in := act.Inputs[0]
	producer := f.m.NodeByName(in)
	if reason := f.fuseBlocker(in, producer, act); reason != "" {
		f.keep(act, reason)
		return
	}

	previous := producer.Attrs.Activation
	next := activationOf(act)
	composed, ok := compose(previous, next)
	if !ok {
		f.keep(act, fmt.Sprintf("input %q already applies %s, and applying %s after it gives a constant output",
			in, describeActivation(previous), describeActivation(next)))
		return
	}

	detail := ""
	if previous.Kind != graph.ActNone {
		detail = fmt.Sprintf("composed with the existing %s into %s", describeActivation(previous), describeActivation(composed))
	}
	change := Change{Action: ActionFused, Node: f.originalName[act], Op: act.Op, Into: f.originalName[producer], Detail: detail, carrier: producer}
	producer.Attrs.Activation = composed
	f.absorb(producer, act)
	f.apply(change)
}

// fuseBlocker returns why act cannot be fused into producer, which computes tensor in, or ""
// when it can.
func (f *fuser) fuseBlocker(in string, producer, act *graph.Node) string {
	switch {
	case producer == nil:
		return fmt.Sprintf("input %q is a graph input", in)
	case producer.Op != graph.OpConv2D && producer.Op != graph.OpLinear && producer.Op != graph.OpAdd:
		return fmt.Sprintf("input %q comes from %s; only conv2d, linear and add take a fused activation", in, producer.Op)
	}
	return f.otherReaders(in, act)
}

// activationOf returns the fused form of a relu, relu6 or clip node.
func activationOf(n *graph.Node) graph.Activation {
	switch n.Op {
	case graph.OpRelu:
		return graph.Activation{Kind: graph.ActRelu}
	case graph.OpRelu6:
		return graph.Activation{Kind: graph.ActRelu6}
	}
	return graph.Activation{Kind: graph.ActClip, Min: n.Attrs.Min, Max: n.Attrs.Max}
}

// compose returns one activation equal to applying first and then second. Clamping to
// [lo1, hi1] and then to [lo2, hi2] is the clamp to [max(lo1, lo2), min(hi1, hi2)] when that
// interval is not empty. compose returns false when the interval has lo >= hi, so that the
// output would be a constant; clip requires min < max. The result keeps the kind of first or
// second when its interval matches, so relu then relu6 is relu6, and is a clip otherwise.
func compose(first, second graph.Activation) (graph.Activation, bool) {
	lo1, hi1, _ := first.Bounds()
	lo2, hi2, _ := second.Bounds()
	lo, hi := max(lo1, lo2), min(hi1, hi2)
	if !(lo < hi) {
		return graph.Activation{}, false
	}
	for _, a := range []graph.Activation{first, second} {
		alo, ahi, ok := a.Bounds()
		if ok && alo == lo && ahi == hi {
			return a, true
		}
	}
	return graph.Activation{Kind: graph.ActClip, Min: lo, Max: hi}, true
}

// describeActivation returns relu, relu6 or clip(min, max).
func describeActivation(a graph.Activation) string {
	switch a.Kind {
	case graph.ActNone:
		return "no activation"
	case graph.ActClip:
		return fmt.Sprintf("clip(%g, %g)", a.Min, a.Max)
	}
	return string(a.Kind)
}
