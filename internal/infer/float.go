// Package infer runs float32 inference of a graph.Model, batched, and can return every
// intermediate tensor for calibration and per-layer comparison.
//
// Every sample of a batch is computed by the same sequence of floating-point operations,
// whatever the batch size or the number of threads, so results are bit-identical across both.
package infer

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// Options control a float run.
type Options struct {
	// KeepAll returns every tensor of the graph, not just the outputs.
	KeepAll bool
	// Threads bounds the goroutines used across the batch; 0 means runtime.NumCPU().
	Threads int
}

// Run executes the model on one batch. inputs maps each graph input name to a preprocessed
// float tensor whose shape matches the input's (any batch size). It returns the outputs, or
// every tensor with KeepAll, keyed by name. Input tensors are not modified.
func Run(m *graph.Model, inputs map[string]*tensor.Tensor, opt Options) (map[string]*tensor.Tensor, error) {
	values := map[string]*tensor.Tensor{}
	batch := -1
	for _, in := range m.Inputs {
		t, ok := inputs[in.Name]
		if !ok {
			return nil, fmt.Errorf("infer: missing data for input %q", in.Name)
		}
		if err := in.CheckInputShape(t.Shape); err != nil {
			return nil, fmt.Errorf("infer: %w", err)
		}
		if batch >= 0 && t.Shape[0] != batch {
			return nil, fmt.Errorf("infer: input %q has batch %d but other inputs have %d", in.Name, t.Shape[0], batch)
		}
		batch = t.Shape[0]
		values[in.Name] = t
	}

	threads := opt.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	remaining := remainingUses(m)
	for _, n := range m.Nodes {
		ins := make([]*tensor.Tensor, len(n.Inputs))
		for i, name := range n.Inputs {
			ins[i] = values[name]
		}
		out, err := runNode(m, n, ins, threads)
		if err != nil {
			return nil, fmt.Errorf("infer: node %q (%s): %w", n.Name, n.Op, err)
		}
		values[n.Name] = out

		if !opt.KeepAll {
			for _, name := range n.Inputs {
				remaining[name]--
				if remaining[name] == 0 && !m.IsOutput(name) {
					delete(values, name)
				}
			}
		}
	}

	if opt.KeepAll {
		return values, nil
	}
	outs := map[string]*tensor.Tensor{}
	for _, name := range m.Outputs {
		outs[name] = values[name]
	}
	return outs, nil
}

func remainingUses(m *graph.Model) map[string]int {
	uses := map[string]int{}
	for _, n := range m.Nodes {
		for _, in := range n.Inputs {
			uses[in]++
		}
	}
	return uses
}

func runNode(m *graph.Model, n *graph.Node, in []*tensor.Tensor, threads int) (*tensor.Tensor, error) {
	x := in[0]
	a := n.Attrs
	var out *tensor.Tensor
	switch n.Op {
	case graph.OpConv2D:
		out = conv2D(x, m.Param(n, "weight"), m.Param(n, "bias"), a, threads)
	case graph.OpLinear:
		out = linear(x, m.Param(n, "weight"), m.Param(n, "bias"), threads)
	case graph.OpBatchNorm:
		out = batchNorm(x, m.Param(n, "running_mean"), m.Param(n, "running_var"), m.Param(n, "weight"), m.Param(n, "bias"), a.Eps)
	case graph.OpRelu:
		out = clamp(x, 0, math.Inf(1))
	case graph.OpRelu6:
		out = clamp(x, 0, 6)
	case graph.OpClip:
		out = clamp(x, a.Min, a.Max)
	case graph.OpMaxPool2D:
		out = maxPool(x, a)
	case graph.OpAvgPool2D:
		out = avgPool(x, a)
	case graph.OpGlobalAvgPool:
		out = globalAvgPool(x)
	case graph.OpAdd:
		out = add(in[0], in[1])
	case graph.OpConcat:
		out = concat(in)
	case graph.OpFlatten:
		return x.Reshape(x.Shape[0], tensor.Size(x.Shape[1:]))
	case graph.OpIdentity, graph.OpDropout:
		return x, nil
	default:
		return nil, fmt.Errorf("op is not supported by the float executor")
	}
	if lo, hi, ok := a.Activation.Bounds(); ok {
		clampInPlace(out.Data, lo, hi)
	}
	return out, nil
}

// parallel runs fn(i) for i in [0, n) on up to threads goroutines.
func parallel(n, threads int, fn func(i int)) {
	if threads <= 1 || n <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(threads, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
