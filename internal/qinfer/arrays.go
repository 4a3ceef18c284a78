package qinfer

import (
	"fmt"

	"github.com/qtool-dev/qtool/internal/affine"
	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// lookupArray returns the array that a node field names, checking its dtype and, when want is
// not negative, its element count. role is the field name, for errors.
func lookupArray(q *format.QModel, role, name, dtype string, want int) (*format.QArray, error) {
	if name == "" {
		return nil, fmt.Errorf("no %s array is named", role)
	}
	a, ok := q.Arrays[name]
	if !ok || a == nil {
		return nil, fmt.Errorf("%s array %q is missing from the model", role, name)
	}
	if a.DType != dtype {
		return nil, fmt.Errorf("%s array %q has dtype %s; expected %s", role, name, a.DType, dtype)
	}
	n, err := tensor.CheckedSize(a.Shape, format.MaxElements)
	if err != nil {
		return nil, fmt.Errorf("%s array %q: %v", role, name, err)
	}
	if want >= 0 && n != want {
		return nil, fmt.Errorf("%s array %q has %d elements (shape %s); expected %d", role, name, n, tensor.ShapeString(a.Shape), want)
	}
	return a, nil
}

// int8Array returns the data of an I8 array with want elements.
func int8Array(q *format.QModel, role, name string, want int) ([]int8, error) {
	a, err := lookupArray(q, role, name, "I8", want)
	if err != nil {
		return nil, err
	}
	data, ok := a.Data.([]int8)
	if !ok || len(data) != want {
		return nil, fmt.Errorf("%s array %q does not hold %d int8 values", role, name, want)
	}
	return data, nil
}

// int32Array returns the data of an I32 array with want elements.
func int32Array(q *format.QModel, role, name string, want int) ([]int32, error) {
	a, err := lookupArray(q, role, name, "I32", want)
	if err != nil {
		return nil, err
	}
	data, ok := a.Data.([]int32)
	if !ok || len(data) != want {
		return nil, fmt.Errorf("%s array %q does not hold %d int32 values", role, name, want)
	}
	return data, nil
}

// float32Array returns an F32 array as a tensor of its own shape, sharing its data.
func float32Array(q *format.QModel, role, name string) (*tensor.Tensor, error) {
	a, err := lookupArray(q, role, name, "F32", -1)
	if err != nil {
		return nil, err
	}
	data, ok := a.Data.([]float32)
	if !ok || len(data) != tensor.Size(a.Shape) {
		return nil, fmt.Errorf("%s array %q does not hold %d float32 values", role, name, tensor.Size(a.Shape))
	}
	return &tensor.Tensor{Shape: a.Shape, Data: data}, nil
}

// multipliers reads the Mult and Shift arrays named multName and shiftName, want elements each,
// and validates every pair.
func multipliers(q *format.QModel, multRole, multName, shiftRole, shiftName string, want int) ([]affine.Multiplier, error) {
	mult, err := int32Array(q, multRole, multName, want)
	if err != nil {
		return nil, err
	}
	shift, err := int32Array(q, shiftRole, shiftName, want)
	if err != nil {
		return nil, err
	}
	out := make([]affine.Multiplier, want)
	for i := range out {
		out[i] = affine.Multiplier{Mult: mult[i], Shift: shift[i]}
		if err := out[i].Validate(); err != nil {
			return nil, fmt.Errorf("%s %q and %s %q, element %d: %v", multRole, multName, shiftRole, shiftName, i, err)
		}
	}
	return out, nil
}
