// Package dataset reads the sample inputs and labels that calibrate and eval feed to a model:
// an NPY array for a single-input model, or an NPZ archive keyed by input name.
//
// uint8 data goes through the input's declared preprocessing, and float data is taken as
// already preprocessed. Batches are cut from the arrays in order, so a run over batches of any
// size reads the same samples in the same order.
package dataset

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// Dataset is a set of samples for every input of a model.
type Dataset struct {
	Path   string
	inputs []graph.Input
	arrays map[string]*format.Array
	n      int
}

// Open reads path (.npy or .npz) and checks each array against the model's inputs: rank, the
// dimensions after the batch one, dtype, and the same sample count for every input.
func Open(m *graph.Model, path string) (*Dataset, error) {
	d := &Dataset{Path: path, inputs: m.Inputs, arrays: map[string]*format.Array{}}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("data %s: %v", path, unwrap(err))
	}
	if st.IsDir() {
		return nil, fmt.Errorf("data %s is a folder; give an .npy or .npz file", path)
	}

	switch strings.ToLower(filepath.Ext(path)) {
	case ".npy":
		if len(m.Inputs) != 1 {
			return nil, fmt.Errorf("data %s: the model has %d inputs; give an .npz archive with one array per input name (%s)", path, len(m.Inputs), inputNames(m))
		}
		arr, err := format.ReadNPY(path)
		if err != nil {
			return nil, fmt.Errorf("data %w", err)
		}
		d.arrays[m.Inputs[0].Name] = arr
	case ".npz":
		z, err := format.OpenNPZ(path)
		if err != nil {
			return nil, fmt.Errorf("data %w", err)
		}
		defer z.Close()
		for _, in := range m.Inputs {
			if !z.Has(in.Name) {
				return nil, fmt.Errorf("data %s: no array for input %q (the archive contains %s); name each array after its model input", path, in.Name, strings.Join(z.Keys(), ", "))
			}
			arr, err := z.Read(in.Name)
			if err != nil {
				return nil, fmt.Errorf("data %w", err)
			}
			d.arrays[in.Name] = arr
		}
	default:
		return nil, fmt.Errorf("data %s: unknown file type %q; give an .npy or .npz file", path, filepath.Ext(path))
	}

	d.n = -1
	for _, in := range m.Inputs {
		arr := d.arrays[in.Name]
		if err := checkArray(in, arr); err != nil {
			return nil, fmt.Errorf("data %s: %w", path, err)
		}
		if d.n >= 0 && arr.Shape[0] != d.n {
			return nil, fmt.Errorf("data %s: input %q has %d samples but another input has %d", path, in.Name, arr.Shape[0], d.n)
		}
		d.n = arr.Shape[0]
	}
	if d.n == 0 {
		return nil, fmt.Errorf("data %s contains no samples (shape %s); give at least one", path, tensor.ShapeString(d.arrays[m.Inputs[0].Name].Shape))
	}
	return d, nil
}

func unwrap(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func inputNames(m *graph.Model) string {
	names := make([]string, len(m.Inputs))
	for i, in := range m.Inputs {
		names[i] = in.Name
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func checkArray(in graph.Input, arr *format.Array) error {
	if err := in.CheckInputShape(arr.Shape); err != nil {
		return err
	}
	switch arr.DType {
	case format.Float32, format.Float64:
		vals, _ := arr.Float32()
		t := &tensor.Tensor{Shape: arr.Shape, Data: vals}
		if i := t.FirstNonFinite(); i >= 0 {
			sample := i / tensor.Size(arr.Shape[1:])
			if wide, ok := arr.Data.([]float64); ok && !math.IsInf(wide[i], 0) && !math.IsNaN(wide[i]) {
				return fmt.Errorf("input %q: sample %d has %g at index %v, beyond the float32 range of about ±3.4e38; remove or fix the sample", in.Name, sample, wide[i], tensor.Index(arr.Shape, i))
			}
			return fmt.Errorf("input %q: sample %d has %v at index %v; remove or fix non-finite samples", in.Name, sample, vals[i], tensor.Index(arr.Shape, i))
		}
	case format.Uint8:
		if in.Preprocess == nil {
			return fmt.Errorf("input %q: data is uint8 but the model declares no preprocess for it; add \"preprocess\" to the input in the model JSON or save the data as preprocessed float32", in.Name)
		}
	default:
		return fmt.Errorf("input %q: data has dtype %s; give float32 (preprocessed) or uint8 (raw, preprocessed by qtool)", in.Name, arr.DType)
	}
	return nil
}

// Len returns the number of samples.
func (d *Dataset) Len() int { return d.n }

// Batch returns samples [start, start+count) of every input as preprocessed float tensors.
func (d *Dataset) Batch(start, count int) (map[string]*tensor.Tensor, error) {
	if start < 0 || count <= 0 || start+count > d.n {
		return nil, fmt.Errorf("dataset: batch [%d, %d) is outside the %d samples", start, start+count, d.n)
	}
	out := map[string]*tensor.Tensor{}
	for _, in := range d.inputs {
		arr := d.arrays[in.Name]
		per := tensor.Size(arr.Shape[1:])
		shape := append([]int{count}, arr.Shape[1:]...)
		t := tensor.New(shape...)
		switch v := arr.Data.(type) {
		case []float32:
			copy(t.Data, v[start*per:(start+count)*per])
		case []float64:
			for i, x := range v[start*per : (start+count)*per] {
				t.Data[i] = float32(x)
			}
		case []uint8:
			for i, x := range v[start*per : (start+count)*per] {
				t.Data[i] = float32(x)
			}
			in.Preprocess.Apply(t.Data, shape)
		}
		out[in.Name] = t
	}
	return out, nil
}

// Labels reads class labels: an integer NPY array of shape [N] or [N, 1] with N samples.
func Labels(path string, n int) ([]int64, error) {
	arr, err := format.ReadNPY(path)
	if err != nil {
		return nil, fmt.Errorf("labels %w", err)
	}
	if len(arr.Shape) == 0 || len(arr.Shape) > 2 || (len(arr.Shape) == 2 && arr.Shape[1] != 1) {
		return nil, fmt.Errorf("labels %s: shape %s; expected [N] class indices", path, tensor.ShapeString(arr.Shape))
	}
	labels, err := arr.Ints()
	if err != nil {
		return nil, fmt.Errorf("labels %s: %v", path, err)
	}
	if len(labels) != n {
		return nil, fmt.Errorf("labels %s: %d labels for %d samples; give one label per sample", path, len(labels), n)
	}
	for i, l := range labels {
		if l < 0 || l > math.MaxInt32 {
			return nil, fmt.Errorf("labels %s: label %d at index %d is not a class index", path, l, i)
		}
	}
	return labels, nil
}
