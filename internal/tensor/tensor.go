// Package tensor holds the dense float32 array that the float executor, the folding pass and the
// calibration observers pass between them.
//
// A Tensor owns its Data slice in C (row-major) order. Functions that return a Tensor never
// alias their inputs unless their documentation says so.
package tensor

import (
	"fmt"
	"math"
	"strings"
)

// Tensor is a dense float32 array in C order.
type Tensor struct {
	Shape []int
	Data  []float32
}

// New returns a zero tensor of the given shape.
func New(shape ...int) *Tensor {
	return &Tensor{Shape: append([]int(nil), shape...), Data: make([]float32, Size(shape))}
}

// FromData wraps data, which must hold Size(shape) elements, without copying it.
func FromData(data []float32, shape ...int) (*Tensor, error) {
	if len(data) != Size(shape) {
		return nil, fmt.Errorf("tensor: %d values do not fill shape %s (%d elements)", len(data), ShapeString(shape), Size(shape))
	}
	return &Tensor{Shape: append([]int(nil), shape...), Data: data}, nil
}

// Size returns the number of elements of a shape: the product of its dimensions, 1 for a scalar.
func Size(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// CheckedSize returns the element count of shape, or an error when a dimension is negative or the
// product overflows limit. Readers use it before allocating memory for data a file claims to hold.
func CheckedSize(shape []int, limit int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d in shape %s", d, ShapeString(shape))
		}
		if d != 0 && n > limit/d {
			return 0, fmt.Errorf("shape %s has more than %d elements", ShapeString(shape), limit)
		}
		n *= d
	}
	return n, nil
}

// Clone returns a deep copy of t.
func (t *Tensor) Clone() *Tensor {
	return &Tensor{Shape: append([]int(nil), t.Shape...), Data: append([]float32(nil), t.Data...)}
}

// Len returns the number of elements.
func (t *Tensor) Len() int { return len(t.Data) }

// Reshape returns a tensor that shares t's data with a new shape of the same size.
func (t *Tensor) Reshape(shape ...int) (*Tensor, error) {
	if Size(shape) != len(t.Data) {
		return nil, fmt.Errorf("tensor: cannot reshape %s to %s", ShapeString(t.Shape), ShapeString(shape))
	}
	return &Tensor{Shape: append([]int(nil), shape...), Data: t.Data}, nil
}

// FirstNonFinite returns the index of the first NaN or Inf element, or -1 when all are finite.
func (t *Tensor) FirstNonFinite() int {
	for i, v := range t.Data {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return i
		}
	}
	return -1
}

// Index returns the multi-dimensional index of flat element i, for error messages.
func Index(shape []int, i int) []int {
	idx := make([]int, len(shape))
	for d := len(shape) - 1; d >= 0; d-- {
		if shape[d] > 0 {
			idx[d] = i % shape[d]
			i /= shape[d]
		}
	}
	return idx
}

// ShapeString formats a shape as [1 2 3], the form every error message uses.
func ShapeString(shape []int) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// EqualShape reports whether two shapes are identical.
func EqualShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
