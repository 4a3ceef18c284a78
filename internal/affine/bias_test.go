package affine

import (
	"math"
	"strings"
	"testing"
)

func TestQuantizeBias(t *testing.T) {
	bias := []float32{1, -2.5, 0, 0.375, 0.625, -0.625}
	scaleW := []float32{0.25, 0.5, 1, 0.5, 0.5, 0.5}
	input := append([]float32(nil), bias...)
	// Bias scales are 0.5 * scaleW: 0.125, 0.25, 0.5, 0.25, 0.25, 0.25.
	// 0.375 / 0.25 = 1.5 and 0.625 / 0.25 = 2.5 are ties, rounded to even.
	want := []int32{8, -10, 0, 2, 2, -2}

	q, err := QuantizeBias(bias, 0.5, scaleW)
	if err != nil {
		t.Fatalf("unexpected error %v", err)
	}
	for c := range want {
		if q[c] != want[c] {
			t.Errorf("channel %d: bias %g quantized to %d, want %d", c, bias[c], q[c], want[c])
		}
		if bias[c] != input[c] {
			t.Errorf("channel %d: input bias changed from %g to %g", c, input[c], bias[c])
		}
	}
}

func TestQuantizeBiasPerTensorScale(t *testing.T) {
	q, err := QuantizeBias([]float32{1, -1, 3}, 0.5, []float32{0.5})
	if err != nil {
		t.Fatalf("unexpected error %v", err)
	}
	want := []int32{4, -4, 12}
	for c := range want {
		if q[c] != want[c] {
			t.Errorf("channel %d: got %d, want %d", c, q[c], want[c])
		}
	}
}

func TestQuantizeBiasOverflow(t *testing.T) {
	// 5 / (0.5 * 7.843e-10) = 1.275e10, far beyond int32.
	bias := []float32{0.1, 5.0}
	scaleW := []float32{0.01, 7.843e-10}

	_, err := QuantizeBias(bias, 0.5, scaleW)
	if err == nil {
		t.Fatal("expected an error for a bias that does not fit int32")
	}
	msg := err.Error()
	for _, want := range []string{"affine: ", "channel 1", "is 5,", "12750222904", "does not fit int32", "widen the weight scale"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}

	widened := WidenScaleForBias(bias[1], 0.5, scaleW[1])
	if widened <= scaleW[1] {
		t.Errorf("widened scale %g is not above %g", widened, scaleW[1])
	}
	scaleW[1] = widened

	q, err := QuantizeBias(bias, 0.5, scaleW)
	if err != nil {
		t.Fatalf("after widening: unexpected error %v", err)
	}
	if math.Abs(float64(q[1])) > BiasWidenLimit {
		t.Errorf("after widening: |b_q| = %d exceeds BiasWidenLimit", q[1])
	}
	if q[1] < BiasWidenLimit-2 {
		t.Errorf("after widening: b_q = %d, want close to BiasWidenLimit for the smallest scale", q[1])
	}
}

func TestWidenScaleForBiasIsSmallest(t *testing.T) {
	cases := []struct {
		name                  string
		bias, scaleIn, scaleW float32
	}{
		{"5 at 0.5 * 7.843e-10", 5, 0.5, 7.843e-10},
		{"-5 at 0.5 * 7.843e-10", -5, 0.5, 7.843e-10},
		{"1e6 at 1e-3 * 1e-7", 1e6, 1e-3, 1e-7},
		{"all-zero channel with MinScale weights", 3, 0.02, MinScale},
		{"huge bias", 3e38, 1, 1e-30},
	}
	for _, tc := range cases {
		s := WidenScaleForBias(tc.bias, tc.scaleIn, tc.scaleW)
		if s < tc.scaleW {
			t.Errorf("%s: widened scale %g is below the original %g", tc.name, s, tc.scaleW)
		}
		if !biasFits(tc.bias, tc.scaleIn, s) {
			t.Errorf("%s: bias does not fit BiasWidenLimit at the widened scale %g", tc.name, s)
		}
		smaller := math.Nextafter32(s, 0)
		if smaller >= tc.scaleW && biasFits(tc.bias, tc.scaleIn, smaller) {
			t.Errorf("%s: the next smaller scale %g also fits, so %g is not the smallest", tc.name, smaller, s)
		}
	}
}

func TestWidenScaleForBiasUnchanged(t *testing.T) {
	cases := []struct {
		name                  string
		bias, scaleIn, scaleW float32
	}{
		{"already fits", 1, 0.5, 0.01},
		{"zero bias", 0, 0.5, MinScale},
		{"NaN bias", float32(math.NaN()), 0.5, 0.01},
		{"Inf bias", float32(math.Inf(1)), 0.5, 0.01},
		{"zero input scale", 1, 0, 0.01},
		{"negative weight scale", 1, 0.5, -0.01},
		{"no float32 scale is large enough", 3e38, 1e-38, 1},
	}
	for _, tc := range cases {
		if s := WidenScaleForBias(tc.bias, tc.scaleIn, tc.scaleW); s != tc.scaleW {
			t.Errorf("%s: got %g, want the unchanged scale %g", tc.name, s, tc.scaleW)
		}
	}
}

func TestQuantizeBiasErrors(t *testing.T) {
	cases := []struct {
		name    string
		bias    []float32
		scaleIn float32
		scaleW  []float32
		text    []string
	}{
		{"NaN bias", []float32{1, float32(math.NaN())}, 0.5, []float32{1, 1}, []string{"channel 1", "value NaN is not finite"}},
		{"Inf bias", []float32{float32(math.Inf(-1))}, 0.5, []float32{1}, []string{"channel 0", "-Inf"}},
		{"zero input scale", []float32{1}, 0, []float32{1}, []string{"input scale 0"}},
		{"NaN input scale", []float32{1}, float32(math.NaN()), []float32{1}, []string{"input scale NaN"}},
		{"zero weight scale", []float32{1, 2}, 0.5, []float32{1, 0}, []string{"channel 1", "weight scale 0"}},
		{"scale count mismatch", []float32{1, 2, 3}, 0.5, []float32{1, 1}, []string{"2 weight scales for 3 bias values"}},
		{"negative overflow", []float32{-3e9}, 1, []float32{1}, []string{"channel 0", "-3000000000", "does not fit int32"}},
		{"MinInt32 is rejected", []float32{-2147483648}, 1, []float32{1}, []string{"does not fit int32"}},
	}
	for _, tc := range cases {
		_, err := QuantizeBias(tc.bias, tc.scaleIn, tc.scaleW)
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
}
