package fold

import (
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// Fuse returns a copy of m with BatchNorms folded, activations fused and identity and dropout
// nodes dropped, with its shapes inferred, and a report of what changed and what stayed. m is
// not modified. The error names the batchnorm and channel when a BatchNorm's statistics are
// invalid (a negative, NaN or infinite running_var) or its folded weights overflow float32.
func Fuse(m *graph.Model) (*graph.Model, *Report, error) {
	f := &fuser{
		m:             cloneModel(m),
		originalName:  map[*graph.Node]string{},
		originalIndex: map[string]int{},
		report: &Report{
			NodesBefore:  len(m.Nodes),
			Changes:      []Change{},
			CopiedParams: []ParamCopy{},
			Warnings:     []Warning{},
		},
	}
	for i, n := range f.m.Nodes {
		f.originalName[n] = n.Name
		f.originalIndex[n.Name] = i
	}

	// Each sweep removes at least one node or ends the loop, so it runs at most
	// len(m.Nodes)+1 times. A later sweep matters only when a drop leaves a producer with one
	// consumer, which an earlier node in the same sweep saw with two.
	var done []Change
	for {
		f.changed = false
		f.keptChanges = nil
		if err := f.sweep(); err != nil {
			return nil, nil, err
		}
		done = append(done, f.appliedChanges...)
		f.appliedChanges = nil
		if !f.changed {
			break
		}
	}

	f.finishReport(append(done, f.keptChanges...))
	f.removeUnusedParams()
	if err := f.m.InferShapes(); err != nil {
		return nil, nil, fmt.Errorf("fold: the fused graph is invalid, which is a bug in qtool fuse: %w", err)
	}
	f.report.NodesAfter = len(f.m.Nodes)
	return f.m, f.report, nil
}

// fuser holds the model being rewritten and what has happened to it.
type fuser struct {
	m             *graph.Model
	originalName  map[*graph.Node]string // node -> its name in the input model
	originalIndex map[string]int         // input model name -> position in the input model
	report        *Report

	changed        bool
	appliedChanges []Change // folded, fused and dropped nodes of the current sweep
	keptChanges    []Change // nodes kept in the current sweep
}

// sweep visits every node once, in execution order. Only the visited node is ever removed, so
// iterating over a snapshot of the node list is safe.
func (f *fuser) sweep() error {
	for _, n := range slices.Clone(f.m.Nodes) {
		var err error
		switch n.Op {
		case graph.OpBatchNorm:
			err = f.visitBatchNorm(n)
		case graph.OpRelu, graph.OpRelu6, graph.OpClip:
			f.visitActivation(n)
		case graph.OpIdentity, graph.OpDropout:
			f.visitPassThrough(n)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// visitPassThrough drops an identity or dropout node x. Its producer takes x's name when
// nothing else reads the producer. Otherwise x's consumers and graph outputs read x's input.
func (f *fuser) visitPassThrough(x *graph.Node) {
	in := x.Inputs[0]
	producer := f.m.NodeByName(in)
	change := Change{Action: ActionDropped, Node: f.originalName[x], Op: x.Op, Into: f.nameInInput(in, producer), carrier: producer}

	if producer != nil && f.otherReaders(in, x) == "" {
		f.absorb(producer, x)
		f.apply(change)
		return
	}

	f.remove(x)
	for _, n := range f.m.Nodes {
		for i, name := range n.Inputs {
			if name == x.Name {
				n.Inputs[i] = in
			}
		}
	}
	for i, name := range f.m.Outputs {
		if name == x.Name {
			f.m.Outputs[i] = in
			change.Detail = fmt.Sprintf("graph output %q is renamed %q", x.Name, in)
		}
	}
	f.apply(change)
}

// otherReaders returns why tensor name cannot be merged into its single reader: another node
// reads it or it is a graph output. It returns "" when reader is its only use.
func (f *fuser) otherReaders(name string, reader *graph.Node) string {
	for _, n := range f.m.Nodes {
		if n == reader {
			continue
		}
		if slices.Contains(n.Inputs, name) {
			return fmt.Sprintf("input %q also feeds %q", name, n.Name)
		}
	}
	if f.m.IsOutput(name) {
		return fmt.Sprintf("input %q is a graph output", name)
	}
	return ""
}

// absorb removes node absorbed and gives its name to producer, which now computes absorbed's
// output. The caller has checked that absorbed is producer's only reader.
func (f *fuser) absorb(producer, absorbed *graph.Node) {
	f.remove(absorbed)
	producer.Name = absorbed.Name
}

func (f *fuser) remove(removed *graph.Node) {
	f.m.Nodes = slices.DeleteFunc(f.m.Nodes, func(n *graph.Node) bool { return n == removed })
}

func (f *fuser) apply(c Change) {
	f.changed = true
	f.appliedChanges = append(f.appliedChanges, c)
}

func (f *fuser) keep(n *graph.Node, reason string) {
	f.keptChanges = append(f.keptChanges, Change{Action: ActionKept, Node: f.originalName[n], Op: n.Op, Detail: reason, carrier: n})
}

// nameInInput returns the input model's name of tensor name, which producer computes (nil for
// a graph input, whose name never changes).
func (f *fuser) nameInInput(name string, producer *graph.Node) string {
	if producer == nil {
		return name
	}
	return f.originalName[producer]
}

// finishReport sorts the changes by node position in the input model and fills in the tensor
// names of the fused model.
func (f *fuser) finishReport(changes []Change) {
	for i := range changes {
		if changes[i].carrier != nil {
			changes[i].Result = changes[i].carrier.Name
		} else {
			changes[i].Result = changes[i].Into
		}
	}
	sort.SliceStable(changes, func(i, j int) bool {
		return f.originalIndex[changes[i].Node] < f.originalIndex[changes[j].Node]
	})
	if changes == nil {
		changes = []Change{} // so that JSON shows an empty list
	}
	f.report.Changes = changes
}

// ownParam returns the key under which node n may store a new tensor for role without
// affecting any other node: its current key when no other use of that key exists, otherwise a
// new unique key, recorded in the report.
func (f *fuser) ownParam(n *graph.Node, role string) string {
	key, ok := n.Params[role]
	if ok && f.keyUses(key) == 1 {
		return key
	}
	fresh := f.uniqueKey(fmt.Sprintf("%s.%s", f.originalName[n], role))
	if ok {
		f.report.CopiedParams = append(f.report.CopiedParams, ParamCopy{Node: f.originalName[n], Role: role, From: key, To: fresh})
	}
	return fresh
}

// keyUses counts the (node, role) pairs that reference param key.
func (f *fuser) keyUses(key string) int {
	uses := 0
	for _, n := range f.m.Nodes {
		for _, k := range n.Params {
			if k == key {
				uses++
			}
		}
	}
	return uses
}

// uniqueKey returns base, or base with the smallest suffix ".1", ".2", ... that no param and
// no node's param reference uses.
func (f *fuser) uniqueKey(base string) string {
	inUse := func(k string) bool {
		if _, ok := f.m.Params[k]; ok {
			return true
		}
		return f.keyUses(k) > 0
	}
	key := base
	for i := 1; inUse(key); i++ {
		key = fmt.Sprintf("%s.%d", base, i)
	}
	return key
}

func (f *fuser) removeUnusedParams() {
	used := map[string]bool{}
	for _, n := range f.m.Nodes {
		for _, key := range n.Params {
			used[key] = true
		}
	}
	maps.DeleteFunc(f.m.Params, func(key string, _ *tensor.Tensor) bool { return !used[key] })
}

// cloneModel copies everything Fuse rewrites: nodes, inputs, outputs and the Params map. The
// parameter tensors themselves are shared, so they must never be written in place.
func cloneModel(m *graph.Model) *graph.Model {
	c := &graph.Model{
		Name:    m.Name,
		Weights: m.Weights,
		Dir:     m.Dir,
		Outputs: slices.Clone(m.Outputs),
		Params:  maps.Clone(m.Params),
	}
	if c.Params == nil {
		c.Params = map[string]*tensor.Tensor{}
	}
	for _, in := range m.Inputs {
		in.Shape = slices.Clone(in.Shape)
		if p := in.Preprocess; p != nil {
			copied := *p
			copied.Mean = slices.Clone(p.Mean)
			copied.Std = slices.Clone(p.Std)
			in.Preprocess = &copied
		}
		c.Inputs = append(c.Inputs, in)
	}
	for _, n := range m.Nodes {
		copied := *n
		copied.Inputs = slices.Clone(n.Inputs)
		copied.Params = maps.Clone(n.Params)
		if copied.Params == nil {
			copied.Params = map[string]string{}
		}
		c.Nodes = append(c.Nodes, &copied)
	}
	return c
}
