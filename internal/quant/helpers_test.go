package quant_test

import (
	"math"
	"testing"

	"github.com/qtool-dev/qtool/internal/calib"
	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// buildModel parses a model JSON document, attaches params and infers shapes.
func buildModel(t testing.TB, doc string, params map[string]*tensor.Tensor) *graph.Model {
	t.Helper()
	m, err := graph.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("graph.Parse: %v", err)
	}
	m.Params = params
	if err := m.InferShapes(); err != nil {
		t.Fatalf("InferShapes: %v", err)
	}
	return m
}

// tableFor returns a calibration table for m with the given ranges ([alpha, beta] per tensor).
func tableFor(m *graph.Model, ranges map[string][2]float64) *calib.Table {
	table := calib.NewTable(m.Hash(), 1)
	settings := calib.DefaultSettings(calib.MethodMinMax)
	for name, r := range ranges {
		table.Tensors[name] = calib.NewEntry(calib.Range{Alpha: r[0], Beta: r[1], Samples: 1}, settings)
	}
	return table
}

func values(shape []int, v ...float32) *tensor.Tensor {
	t, err := tensor.FromData(v, shape...)
	if err != nil {
		panic(err)
	}
	return t
}

func filled(x float32, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	for i := range t.Data {
		t.Data[i] = x
	}
	return t
}

func node(t testing.TB, q *format.QModel, name string) *format.QNode {
	t.Helper()
	for _, n := range q.Nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("the quantized model has no node %q", name)
	return nil
}

func tensorOf(t testing.TB, q *format.QModel, name string) *format.QTensor {
	t.Helper()
	qt := q.Tensor(name)
	if qt == nil {
		t.Fatalf("the quantized model has no tensor %q", name)
	}
	return qt
}

func array[T any](t testing.TB, q *format.QModel, name string) []T {
	t.Helper()
	a := q.Arrays[name]
	if a == nil {
		t.Fatalf("the quantized model has no array %q", name)
	}
	v, ok := a.Data.([]T)
	if !ok {
		t.Fatalf("array %q holds %T", name, a.Data)
	}
	return v
}

func isPow2(x float64) bool {
	frac, _ := math.Frexp(x)
	return frac == 0.5
}
