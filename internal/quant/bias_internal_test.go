package quant

import (
	"math"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/internal/affine"
	"github.com/qtool-dev/qtool/internal/graph"
)

// The scales here are below affine.MinScale, which ChooseParams never returns, so this test
// calls fitBias directly: input scale 0.5, weight scale 7.843e-10 and bias 5.0 need the bias
// integer 5 / (0.5 * 7.843e-10) = 1.275e10.
func TestFitBiasOverflowAndWiden(t *testing.T) {
	const scaleIn, scaleW = 0.5, 7.843e-10
	l := layerWeights{node: "fc", op: graph.OpLinear, weight: []float32{9.96e-8, -9.96e-8, 5e-8, 0}, shape: []int{1, 4}, bias: []float32{5}}
	like := affine.Params{Scale: scaleW, QMin: -127, QMax: 127}
	quantized := func() []int32 {
		q := make([]int32, len(l.weight))
		for i, w := range l.weight {
			q[i] = like.Quantize(w)
		}
		return q
	}

	b := &builder{opt: Options{}.withDefaults(), sum: &Summary{}}
	_, err := b.fitBias(l, scaleIn, []float32{scaleW}, quantized(), like)
	if err == nil {
		t.Fatal("fitBias accepted a bias that needs 1.275e10")
	}
	for _, want := range []string{`layer "fc" (linear)`, "channel 0", "is 5,", "12750", "does not fit int32", "--widen-weight-scale"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}

	b = &builder{opt: Options{WidenWeightScale: true}.withDefaults(), sum: &Summary{}}
	scales := []float32{scaleW}
	q := quantized()
	bias, err := b.fitBias(l, scaleIn, scales, q, like)
	if err != nil {
		t.Fatalf("fitBias with WidenWeightScale: %v", err)
	}
	if len(b.sum.WidenedChannels) != 1 {
		t.Fatalf("widened channels %+v, want one", b.sum.WidenedChannels)
	}
	w := b.sum.WidenedChannels[0]
	if w.Layer != "fc" || w.Channel != 0 || w.ScaleBefore != scaleW || w.ScaleAfter != scales[0] {
		t.Errorf("widened channel %+v, want fc channel 0 from %g to the stored %g", w, float32(scaleW), scales[0])
	}
	if want := 5 / (scaleIn * float64(affine.BiasWidenLimit)); float64(scales[0]) < want {
		t.Errorf("widened scale %g, want at least %g", scales[0], want)
	}
	if bias[0] > affine.BiasWidenLimit || bias[0] < affine.BiasWidenLimit-256 {
		t.Errorf("bias integer %d, want just below 2^30", bias[0])
	}
	if want := int32(math.RoundToEven(9.96e-8 / float64(scales[0]))); q[0] != want || q[1] != -want {
		t.Errorf("requantized weights %v, want ±%d", q, want)
	}
}
