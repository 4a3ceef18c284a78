package qinfer

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/qtool-dev/qtool/internal/affine"
	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// Options configure an Executor.
type Options struct {
	// Threads bounds the goroutines of each Run, and 0 or less means runtime.NumCPU(). The
	// results are the same for every value.
	Threads int
}

// Executor runs one quantized model. Build it with New.
type Executor struct {
	model   *format.QModel
	threads int

	tensors map[string]*tensorInfo
	inputs  []*tensorInfo
	outputs []*tensorInfo
	nodes   []*node
	// order lists every graph input and node output in execution order, for keepAll results.
	order []*tensorInfo
	// lastUse maps a tensor to the index of the last node that reads it.
	lastUse map[string]int
	isOut   map[string]bool
}

// tensorInfo is an activation tensor's geometry and quantization parameters.
type tensorInfo struct {
	name  string
	shape []int // [1, C, H, W] or [1, C], as in the QTensor
	// c, h and w are the NHWC geometry of one sample, with h = w = 1 for a rank-2 tensor.
	c, h, w int
	params  affine.Params // in the tensor's own integer domain
	// offset is added to each integer to store it as a byte: 128 for int8, 0 for uint8.
	offset int32
}

// sampleLen returns the number of bytes of one sample.
func (t *tensorInfo) sampleLen() int { return t.c * t.h * t.w }

// sameQuantization reports whether u stores the same real values with the same bytes as t.
func (t *tensorInfo) sameQuantization(u *tensorInfo) bool {
	return t.params == u.params && t.offset == u.offset
}

// node is a prepared node of the graph.
type node struct {
	q      *format.QNode
	inputs []*tensorInfo
	output *tensorInfo
	kernel kernel
}

// kernel computes one node for a batch. in[i] holds batch samples of the node's input i in the
// stored NHWC layout, and out has room for batch samples of its output.
type kernel interface {
	run(in [][]uint8, out []uint8, batch, threads int) error
}

// Result holds the tensors that Run returns. Every float tensor is NCHW (or [N, C]) with the
// batch size of the inputs.
type Result struct {
	// Outputs maps each graph output to its dequantized values.
	Outputs map[string]*tensor.Tensor
	// Activations maps every tensor, graph inputs and node outputs, to its dequantized values.
	// It is nil unless Run was called with keepAll.
	Activations map[string]*tensor.Tensor
	// Integers maps every tensor to its integers. It is nil unless Run was called with keepAll.
	Integers map[string]*IntTensor
}

// IntTensor is a quantized tensor: integers in NCHW order and the parameters that give their
// real values, scale * (q - zero_point).
type IntTensor struct {
	Shape  []int
	Data   []int32 // each value in [Params.QMin, Params.QMax]
	Params affine.Params
}

// Run executes the model on one batch. inputs maps each graph input name to a preprocessed
// float tensor in NCHW order whose shape matches the input's apart from the batch dimension.
// With keepAll, the result also holds every tensor, dequantized and as integers, for per-layer
// comparison; otherwise each tensor's memory is released after its last reader.
func (e *Executor) Run(inputs map[string]*tensor.Tensor, keepAll bool) (*Result, error) {
	batch, err := e.checkInputs(inputs)
	if err != nil {
		return nil, err
	}

	values := make(map[string][]uint8, len(e.order))
	for _, in := range e.inputs {
		values[in.name] = quantizeNCHW(inputs[in.name].Data, in, batch)
	}

	for i, n := range e.nodes {
		ins := make([][]uint8, len(n.inputs))
		for j, t := range n.inputs {
			ins[j] = values[t.name]
		}
		out := make([]uint8, batch*n.output.sampleLen())
		if err := n.kernel.run(ins, out, batch, e.threads); err != nil {
			return nil, fmt.Errorf("qinfer: node %q (%s): %w", n.q.Name, n.q.Op, err)
		}
		values[n.output.name] = out

		if !keepAll {
			for _, t := range n.inputs {
				if e.lastUse[t.name] == i && !e.isOut[t.name] {
					delete(values, t.name)
				}
			}
		}
	}

	res := &Result{Outputs: make(map[string]*tensor.Tensor, len(e.outputs))}
	for _, t := range e.outputs {
		res.Outputs[t.name] = dequantizeNCHW(values[t.name], t, batch)
	}
	if keepAll {
		res.Activations = make(map[string]*tensor.Tensor, len(e.order))
		res.Integers = make(map[string]*IntTensor, len(e.order))
		for _, t := range e.order {
			res.Activations[t.name] = dequantizeNCHW(values[t.name], t, batch)
			res.Integers[t.name] = integersNCHW(values[t.name], t, batch)
		}
	}
	return res, nil
}

// checkInputs checks that every graph input has data of its shape and that all share one batch
// size, which it returns.
func (e *Executor) checkInputs(inputs map[string]*tensor.Tensor) (int, error) {
	batch := -1
	for _, in := range e.inputs {
		x, ok := inputs[in.name]
		if !ok || x == nil {
			return 0, fmt.Errorf("qinfer: missing data for input %q", in.name)
		}
		if len(x.Shape) != len(in.shape) || x.Shape[0] < 1 || !tensor.EqualShape(x.Shape[1:], in.shape[1:]) {
			return 0, fmt.Errorf("qinfer: input %q expects shape %s with any batch size, but the data has shape %s",
				in.name, tensor.ShapeString(append([]int{-1}, in.shape[1:]...)), tensor.ShapeString(x.Shape))
		}
		if len(x.Data) != tensor.Size(x.Shape) {
			return 0, fmt.Errorf("qinfer: input %q has %d values for shape %s", in.name, len(x.Data), tensor.ShapeString(x.Shape))
		}
		if batch >= 0 && x.Shape[0] != batch {
			return 0, fmt.Errorf("qinfer: input %q has batch size %d but another input has %d", in.name, x.Shape[0], batch)
		}
		batch = x.Shape[0]
	}
	return batch, nil
}

// Model returns the model that the Executor runs. The caller must not modify it.
func (e *Executor) Model() *format.QModel { return e.model }

// forSamples calls fn for every sample of a batch on up to threads goroutines. Each call gets
// the thread budget left for work inside one sample: threads/batch when the batch is smaller
// than threads, otherwise 1.
func forSamples(batch, threads int, fn func(sample, inner int)) {
	workers := max(1, min(threads, batch))
	inner := max(1, threads/max(batch, 1))
	if workers == 1 {
		for s := range batch {
			fn(s, inner)
		}
		return
	}

	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := w * batch / workers; s < (w+1)*batch/workers; s++ {
				fn(s, inner)
			}
		}()
	}
	wg.Wait()
}

// defaultThreads returns the thread count that Options.Threads selects.
func defaultThreads(threads int) int {
	if threads <= 0 {
		return runtime.NumCPU()
	}
	return threads
}
