package affine

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestQuantizeTensorPerChannel(t *testing.T) {
	// Shape [3, 2], axis 0: three output channels of two weights each.
	w := []float32{1, -2, 0, 0, 0.5, 0.25}
	input := append([]float32(nil), w...)

	q, params, err := QuantizeTensorPerChannel(w, []int{3, 2}, 0, int8SymNarrow)
	if err != nil {
		t.Fatalf("unexpected error %v", err)
	}
	if len(params) != 3 {
		t.Fatalf("got %d channel params, want 3", len(params))
	}

	wantScales := []float32{0.0157480333, MinScale, 0.00393700833} // 2/127, MinScale, 0.5/127 rounded up
	// 1 / (2/127) = 63.5 would be a tie, but the scale is rounded up to
	// float32, so the quotient is just below 63.5 and rounds to 63.
	wantQ := []int32{63, -127, 0, 0, 127, 63}
	for c, want := range wantScales {
		if params[c].Scale != want {
			t.Errorf("channel %d: scale = %.9g, want %.9g", c, params[c].Scale, want)
		}
		if params[c].ZeroPoint != 0 {
			t.Errorf("channel %d: zero point = %d, want 0", c, params[c].ZeroPoint)
		}
	}
	for i, want := range wantQ {
		if q[i] != want {
			t.Errorf("weight %d (%g): q = %d, want %d", i, w[i], q[i], want)
		}
		if w[i] != input[i] {
			t.Errorf("weight %d changed from %g to %g", i, input[i], w[i])
		}
	}

	// The all-zero channel must dequantize to exact zeros.
	for i := 2; i < 4; i++ {
		if x := params[1].Dequantize(q[i]); x != 0 {
			t.Errorf("all-zero channel, weight %d: dequantized to %g, want exactly 0", i, x)
		}
	}
}

func TestQuantizeTensorPerChannelAxis(t *testing.T) {
	// Shape [2, 3], axis 1 (or -1): channel c holds w[c] and w[3+c].
	w := []float32{1, 0, -4, -1, 0, 2}
	wantScales := []float32{0.00787401665, MinScale, 0.0314960666} // 1/127, MinScale, 4/127 rounded up
	wantQ := []int32{127, 0, -127, -127, 0, 63}                    // 2 / (4/127) is just below 63.5

	for _, axis := range []int{1, -1} {
		q, params, err := QuantizeTensorPerChannel(w, []int{2, 3}, axis, int8SymNarrow)
		if err != nil {
			t.Fatalf("axis %d: unexpected error %v", axis, err)
		}
		for c, want := range wantScales {
			if params[c].Scale != want {
				t.Errorf("axis %d, channel %d: scale = %.9g, want %.9g", axis, c, params[c].Scale, want)
			}
		}
		for i, want := range wantQ {
			if q[i] != want {
				t.Errorf("axis %d, weight %d: q = %d, want %d", axis, i, q[i], want)
			}
		}
	}
}

func TestQuantizeTensorPerChannelOIHW(t *testing.T) {
	// Shape [2, 1, 2, 2]: channel 0 is 1..4, channel 1 is all zero.
	w := []float32{1, 2, 3, 4, 0, 0, 0, 0}
	q, params, err := QuantizeTensorPerChannel(w, []int{2, 1, 2, 2}, 0, int8SymNarrow)
	if err != nil {
		t.Fatalf("unexpected error %v", err)
	}
	if q[3] != 127 {
		t.Errorf("largest weight of channel 0: q = %d, want 127", q[3])
	}
	if params[1].Scale != MinScale {
		t.Errorf("all-zero channel: scale = %g, want MinScale", params[1].Scale)
	}
	for i := 4; i < 8; i++ {
		if q[i] != 0 {
			t.Errorf("all-zero channel, weight %d: q = %d, want 0", i, q[i])
		}
	}
}

func TestQuantizeTensorPerChannelErrors(t *testing.T) {
	cases := []struct {
		name  string
		w     []float32
		shape []int
		axis  int
		text  []string
	}{
		{"shape mismatch", []float32{1, 2, 3}, []int{2, 2}, 0, []string{"shape [2 2] has 4 elements but the tensor has 3"}},
		{"negative dimension", []float32{}, []int{2, -1}, 0, []string{"negative dimension"}},
		{"axis too large", []float32{1, 2}, []int{2}, 1, []string{"channel axis 1 is out of range"}},
		{"axis too negative", []float32{1, 2}, []int{2}, -2, []string{"channel axis -2 is out of range"}},
		{"NaN weight", []float32{1, 2, float32(math.NaN()), 4}, []int{2, 2}, 0, []string{"value NaN at flat index 2 (channel 1)"}},
		{"Inf weight", []float32{float32(math.Inf(1)), 2}, []int{2}, 0, []string{"value +Inf at flat index 0 (channel 0)"}},
	}
	for _, tc := range cases {
		_, _, err := QuantizeTensorPerChannel(tc.w, tc.shape, tc.axis, int8SymNarrow)
		if err == nil {
			t.Errorf("%s: expected an error", tc.name)
			continue
		}
		if !strings.HasPrefix(err.Error(), "affine: ") {
			t.Errorf("%s: error %q lacks the package prefix", tc.name, err)
		}
		for _, want := range tc.text {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not contain %q", tc.name, err, want)
			}
		}
	}

	_, _, err := QuantizeTensorPerChannel([]float32{1}, []int{1}, 0, Scheme{Bits: 12})
	if err == nil || !strings.Contains(err.Error(), "bit width 12") {
		t.Errorf("invalid scheme: error %v, want one naming bit width 12", err)
	}
}

func TestChooseParamsPerChannel(t *testing.T) {
	params, err := ChooseParamsPerChannel([]float64{-1, 0, 2}, []float64{1, 0, 5}, uint8Asym)
	if err != nil {
		t.Fatalf("unexpected error %v", err)
	}
	if len(params) != 3 {
		t.Fatalf("got %d params, want 3", len(params))
	}
	for c, p := range params {
		checkZeroExact(t, fmt.Sprintf("channel %d", c), p)
	}
	if params[1].Scale != MinScale {
		t.Errorf("zero-width channel: scale = %g, want MinScale", params[1].Scale)
	}

	_, err = ChooseParamsPerChannel([]float64{0, 0}, []float64{1}, uint8Asym)
	if err == nil || !strings.Contains(err.Error(), "2 channel minimums but 1 maximums") {
		t.Errorf("length mismatch: error %v, want one naming both lengths", err)
	}

	_, err = ChooseParamsPerChannel([]float64{0, 3}, []float64{1, 2}, uint8Asym)
	if err == nil {
		t.Fatal("alpha > beta in channel 1: expected an error")
	}
	if !strings.HasPrefix(err.Error(), "affine: channel 1: range [3, 2]") {
		t.Errorf("error %q does not start with the channel and its range", err)
	}
}

func TestQuantizeTensor(t *testing.T) {
	q, p, err := QuantizeTensor([]float32{-1, 0, 3}, uint8Asym)
	if err != nil {
		t.Fatalf("unexpected error %v", err)
	}
	if p.Scale != 0.0156862754 || p.ZeroPoint != 64 {
		t.Errorf("params = %+v, want scale 0.0156862754 and zero point 64 as for [-1, 3]", p)
	}
	want := []int32{0, 64, 255}
	for i := range want {
		if q[i] != want[i] {
			t.Errorf("value %d: q = %d, want %d", i, q[i], want[i])
		}
	}

	q, p, err = QuantizeTensor(nil, uint8Asym)
	if err != nil {
		t.Fatalf("empty tensor: unexpected error %v", err)
	}
	if len(q) != 0 {
		t.Errorf("empty tensor: got %d values", len(q))
	}
	if p.Scale != MinScale {
		t.Errorf("empty tensor: scale = %g, want MinScale", p.Scale)
	}
}
