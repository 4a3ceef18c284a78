package affine

import (
	"fmt"
	"math"
)

// ChooseParamsPerChannel returns ChooseParams(mins[c], maxs[c], s) for every
// channel c. Errors name the channel.
func ChooseParamsPerChannel(mins, maxs []float64, s Scheme) ([]Params, error) {
	if len(mins) != len(maxs) {
		return nil, fmt.Errorf("affine: %d channel minimums but %d maximums; pass one of each per channel", len(mins), len(maxs))
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}

	params := make([]Params, len(mins))
	for c := range mins {
		p, err := chooseParams(mins[c], maxs[c], s)
		if err != nil {
			return nil, fmt.Errorf("affine: channel %d: %w", c, err)
		}
		params[c] = p
	}
	return params, nil
}

// QuantizeTensorPerChannel quantizes the row-major tensor w of the given
// shape with one Params per index along axis, the output channel axis of a
// weight (0 for OIHW convolution weights). A negative axis counts from the
// end, as in NumPy. Each channel's range is its own minimum and maximum, so
// an all-zero channel gets Scale MinScale and quantizes to exact zero points.
//
// It returns the integers in the layout of w and the parameters of each
// channel. It returns an error if the shape does not match len(w), if axis
// is out of range, if a weight is NaN or infinite, or if s is invalid.
func QuantizeTensorPerChannel(w []float32, shape []int, axis int, s Scheme) ([]int32, []Params, error) {
	layout, err := channelLayoutOf(len(w), shape, axis)
	if err != nil {
		return nil, nil, err
	}

	mins, maxs, err := channelRanges(w, layout)
	if err != nil {
		return nil, nil, err
	}
	params, err := ChooseParamsPerChannel(mins, maxs, s)
	if err != nil {
		return nil, nil, err
	}

	q := make([]int32, len(w))
	for i, x := range w {
		q[i] = params[layout.channelOf(i)].Quantize(x)
	}
	return q, params, nil
}

// QuantizeTensor quantizes x with one Params for the whole tensor, chosen
// from its minimum and maximum, or from [0, 0] if x is empty. It returns an error if a value is NaN or
// infinite or if s is invalid.
func QuantizeTensor(x []float32, s Scheme) ([]int32, Params, error) {
	q, params, err := QuantizeTensorPerChannel(x, []int{1, len(x)}, 0, s)
	if err != nil {
		return nil, Params{}, err
	}
	return q, params[0], nil
}

// channelLayout describes a row-major tensor as [outer, channels, inner].
type channelLayout struct {
	channels int
	inner    int
}

// channelOf returns the channel of flat index i.
func (l channelLayout) channelOf(i int) int {
	return (i / l.inner) % l.channels
}

func channelLayoutOf(size int, shape []int, axis int) (channelLayout, error) {
	rank := len(shape)
	if axis < -rank || axis >= rank {
		return channelLayout{}, fmt.Errorf("affine: channel axis %d is out of range for shape %v; use 0 to %d, or a negative axis counted from the end", axis, shape, rank-1)
	}
	if axis < 0 {
		axis += rank
	}

	count := 1
	inner := 1
	for d, n := range shape {
		if n < 0 {
			return channelLayout{}, fmt.Errorf("affine: shape %v has a negative dimension", shape)
		}
		count *= n
		if d > axis {
			inner *= n
		}
	}
	if count != size {
		return channelLayout{}, fmt.Errorf("affine: shape %v has %d elements but the tensor has %d; check the shape stored with the weights", shape, count, size)
	}
	if inner == 0 {
		inner = 1 // empty tensor: channelOf is never called
	}
	return channelLayout{channels: shape[axis], inner: inner}, nil
}

// channelRanges returns each channel's minimum and maximum, 0 and 0 for an
// empty channel, or an error naming the first NaN or infinite value.
func channelRanges(w []float32, layout channelLayout) (mins, maxs []float64, err error) {
	mins = make([]float64, layout.channels)
	maxs = make([]float64, layout.channels)
	seen := make([]bool, layout.channels)

	for i, x := range w {
		v := float64(x)
		c := layout.channelOf(i)
		if !isFinite(v) {
			return nil, nil, fmt.Errorf("affine: value %g at flat index %d (channel %d) is not finite; check the weights or the BatchNorm folding that produced them", v, i, c)
		}
		if !seen[c] {
			mins[c], maxs[c], seen[c] = v, v, true
			continue
		}
		mins[c] = math.Min(mins[c], v)
		maxs[c] = math.Max(maxs[c], v)
	}
	return mins, maxs, nil
}
