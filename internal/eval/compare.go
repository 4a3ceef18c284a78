package eval

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/infer"
	"github.com/qtool-dev/qtool/internal/qinfer"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// DefaultBatch is the number of samples per inference when Options.Batch is 0.
const DefaultBatch = 64

// Source supplies preprocessed input batches; *dataset.Dataset is one.
type Source interface {
	Len() int
	Batch(start, count int) (map[string]*tensor.Tensor, error)
}

// Options configure Compare.
type Options struct {
	// Batch is the number of samples per inference; 0 means DefaultBatch. It changes speed and
	// memory, not the report.
	Batch int
	// Limit uses only the first Limit samples when positive.
	Limit int
	// Threads bounds the float executor's goroutines; 0 means all cores. The integer
	// executor's thread count is fixed when it is built.
	Threads int
	// Labels holds one class index per sample of the source, or nil to compare the two models
	// with each other only (agreement and output error).
	Labels []int64
	// PerLayer compares every quantized tensor with the float tensor of the same name.
	PerLayer bool
	// Timing measures the wall time of each executor.
	Timing bool
	// Progress, when set, is called after each batch with the samples done so far.
	Progress func(done int)
}

// CheckInputs returns an error unless the float model and the quantized model have inputs of
// the same names and shapes (any batch size).
func CheckInputs(m *graph.Model, q *format.QModel) error {
	if len(m.Inputs) != len(q.Inputs) {
		return fmt.Errorf("eval: the float model has %d inputs but the quantized model has %d; give the float model that was quantized", len(m.Inputs), len(q.Inputs))
	}
	for _, qi := range q.Inputs {
		var fi *graph.Input
		for i := range m.Inputs {
			if m.Inputs[i].Name == qi.Name {
				fi = &m.Inputs[i]
			}
		}
		if fi == nil {
			return fmt.Errorf("eval: the quantized model's input %q is not an input of the float model; give the float model that was quantized", qi.Name)
		}
		if len(fi.Shape) != len(qi.Shape) || !tensor.EqualShape(fi.Shape[1:], qi.Shape[1:]) {
			return fmt.Errorf("eval: input %q has shape %s in the float model but %s in the quantized model",
				qi.Name, tensor.ShapeString(fi.Shape), tensor.ShapeString(qi.Shape))
		}
	}
	return nil
}

// plan is the tensor selection that Compare fixes before the first batch.
type plan struct {
	outputs []string // the quantized model's outputs; the first one is classified
	classes int
	layers  []string // tensors compared per layer
	skipped []SkippedTensor
	// floatKeepAll requests every tensor from the float executor, because some compared
	// tensor is not a float graph output.
	floatKeepAll bool
}

func newPlan(m *graph.Model, q *format.QModel, perLayer bool) (*plan, error) {
	if len(q.Outputs) == 0 {
		return nil, errors.New("eval: the quantized model has no outputs")
	}
	p := &plan{outputs: q.Outputs, floatKeepAll: perLayer}
	for _, name := range q.Outputs {
		if reason := mismatch(m, q, name); reason != "" {
			return nil, fmt.Errorf("eval: output %q of the quantized model cannot be compared: %s", name, reason)
		}
		if !m.IsOutput(name) {
			p.floatKeepAll = true
		}
	}
	p.classes = tensor.Size(q.Tensor(q.Outputs[0]).Shape[1:])

	if perLayer {
		for _, qt := range q.Tensors {
			if reason := mismatch(m, q, qt.Name); reason != "" {
				p.skipped = append(p.skipped, SkippedTensor{Name: qt.Name, Reason: reason})
				continue
			}
			p.layers = append(p.layers, qt.Name)
		}
	}
	return p, nil
}

// mismatch returns why the quantized tensor name has no float counterpart, or "".
func mismatch(m *graph.Model, q *format.QModel, name string) string {
	qt := q.Tensor(name)
	if qt == nil {
		return "the quantized model has no parameters for it"
	}
	shape, ok := m.Shapes[name]
	if !ok {
		return "the float model has no tensor of this name"
	}
	if !tensor.EqualShape(shape[1:], qt.Shape[1:]) {
		return fmt.Sprintf("the float tensor has shape %s but the quantized one %s", tensor.ShapeString(shape), tensor.ShapeString(qt.Shape))
	}
	return ""
}

// Compare runs the float model m and the integer executor ex on the same samples of data, in
// batches, and returns the report. Every metric is accumulated in float64 in sample order, so
// the report, apart from the timing, is the same for any batch size and thread count.
func Compare(m *graph.Model, ex *qinfer.Executor, data Source, opt Options) (*Report, error) {
	q := ex.Model()
	if err := CheckInputs(m, q); err != nil {
		return nil, err
	}
	p, err := newPlan(m, q, opt.PerLayer)
	if err != nil {
		return nil, err
	}

	batch := opt.Batch
	if batch <= 0 {
		batch = DefaultBatch
	}
	total := data.Len()
	if opt.Limit > 0 && opt.Limit < total {
		total = opt.Limit
	}
	if opt.Labels != nil && len(opt.Labels) < total {
		return nil, fmt.Errorf("eval: %d labels for %d samples; give one label per sample", len(opt.Labels), total)
	}

	cls := NewClassification(p.classes, opt.Labels != nil)
	outStats := make([]TensorStats, len(p.outputs))
	layerStats := make([]TensorStats, len(p.layers))
	var floatTime, int8Time time.Duration

	for start := 0; start < total; start += batch {
		count := min(batch, total-start)
		inputs, err := data.Batch(start, count)
		if err != nil {
			return nil, err
		}

		began := time.Now()
		floatValues, err := infer.Run(m, inputs, infer.Options{KeepAll: p.floatKeepAll, Threads: opt.Threads})
		floatTime += time.Since(began)
		if err != nil {
			return nil, err
		}
		began = time.Now()
		res, err := ex.Run(inputs, opt.PerLayer)
		int8Time += time.Since(began)
		if err != nil {
			return nil, err
		}

		var labels []int64
		if opt.Labels != nil {
			labels = opt.Labels[start : start+count]
		}
		if err := cls.Add(floatValues[p.outputs[0]].Data, res.Outputs[p.outputs[0]].Data, labels); err != nil {
			return nil, err
		}
		for i, name := range p.outputs {
			if err := outStats[i].Add(floatValues[name].Data, res.Outputs[name].Data); err != nil {
				return nil, fmt.Errorf("eval: output %q: %w", name, err)
			}
		}
		for i, name := range p.layers {
			if err := layerStats[i].Add(floatValues[name].Data, res.Activations[name].Data); err != nil {
				return nil, fmt.Errorf("eval: tensor %q: %w", name, err)
			}
		}
		if opt.Progress != nil {
			opt.Progress(start + count)
		}
	}

	r := &Report{Samples: total, Classes: p.classes, Agreement: cls.Percent(cls.Agree), Outputs: []LayerReport{}}
	if cls.Labeled {
		r.FloatTop1, r.Int8Top1 = ptr(cls.Percent(cls.FloatTop1)), ptr(cls.Percent(cls.Int8Top1))
		r.DropPP = ptr(cls.DropPP())
		if cls.HasTop5() {
			r.FloatTop5, r.Int8Top5 = ptr(cls.Percent(cls.FloatTop5)), ptr(cls.Percent(cls.Int8Top5))
		}
	}
	for i, name := range p.outputs {
		r.Outputs = append(r.Outputs, newLayerReport(name, &outStats[i]))
	}
	if opt.PerLayer {
		r.Layers = []LayerReport{}
		for i, name := range p.layers {
			r.Layers = append(r.Layers, newLayerReport(name, &layerStats[i]))
		}
		r.Skipped = p.skipped
	}
	if opt.Timing && total > 0 {
		r.FloatMsPerImage = ptr(msPerImage(floatTime, total))
		r.Int8MsPerImage = ptr(msPerImage(int8Time, total))
	}
	return r, nil
}

func ptr(v float64) *float64 { return &v }

// msPerImage returns the wall time per image in milliseconds, rounded to 0.1 microseconds.
func msPerImage(d time.Duration, images int) float64 {
	ms := float64(d.Nanoseconds()) / 1e6 / float64(images)
	return math.Round(ms*1e4) / 1e4
}
