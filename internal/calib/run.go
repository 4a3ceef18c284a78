package calib

import (
	"fmt"

	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/infer"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// Source supplies preprocessed input batches; *dataset.Dataset is one.
type Source interface {
	Len() int
	Batch(start, count int) (map[string]*tensor.Tensor, error)
}

// RunOptions configure a calibration run.
type RunOptions struct {
	// Batch is the number of samples per float inference (default 32). It changes speed and
	// memory only: every method but ema gives the same table for any batch size.
	Batch int
	// Limit uses only the first Limit samples when positive.
	Limit int
	// Settings is the method for every tensor without an entry in PerTensor.
	Settings Settings
	// PerTensor overrides the method for named tensors.
	PerTensor map[string]Settings
	// Threads bounds the float executor's goroutines; 0 means all cores.
	Threads int
	// Progress, when set, is called after each batch with the samples done so far.
	Progress func(done int)
}

// Run feeds every tensor of the model (graph inputs and node outputs) over the data set to
// one observer each and returns the calibration table. Memory holds the observers and one
// batch's tensors, whatever the number of samples.
func Run(m *graph.Model, data Source, opt RunOptions) (*Table, error) {
	batch := opt.Batch
	if batch <= 0 {
		batch = 32
	}
	total := data.Len()
	if opt.Limit > 0 && opt.Limit < total {
		total = opt.Limit
	}

	names := tensorNames(m)
	for name := range opt.PerTensor {
		if _, ok := m.Shapes[name]; !ok {
			return nil, fmt.Errorf("calib: a method is set for tensor %q, which the model does not have; tensor names are the input and node names that qtool inspect prints", name)
		}
	}
	observers := make(map[string]Observer, len(names))
	settings := make(map[string]Settings, len(names))
	for _, name := range names {
		s := opt.Settings
		if per, ok := opt.PerTensor[name]; ok {
			s = per
		}
		s = s.WithDefaults()
		obs, err := NewObserver(name, s)
		if err != nil {
			return nil, err
		}
		observers[name], settings[name] = obs, s
	}

	for start := 0; start < total; start += batch {
		count := min(batch, total-start)
		inputs, err := data.Batch(start, count)
		if err != nil {
			return nil, err
		}
		values, err := infer.Run(m, inputs, infer.Options{KeepAll: true, Threads: opt.Threads})
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			observers[name].Observe(values[name].Data)
		}
		if opt.Progress != nil {
			opt.Progress(start + count)
		}
	}

	table := NewTable(m.Hash(), total)
	for _, name := range names {
		r, err := observers[name].Range()
		if err != nil {
			return nil, err
		}
		table.Tensors[name] = NewEntry(r, settings[name])
	}
	return table, nil
}

// tensorNames lists the graph inputs and node outputs in graph order.
func tensorNames(m *graph.Model) []string {
	var names []string
	for _, in := range m.Inputs {
		names = append(names, in.Name)
	}
	for _, n := range m.Nodes {
		names = append(names, n.Name)
	}
	return names
}
