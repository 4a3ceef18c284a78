package quant

import (
	"fmt"
	"math"
	"slices"

	"github.com/qtool-dev/qtool/internal/affine"
	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/graph"
)

// layerWeights are the float weight and bias of a conv2d, linear or batchnorm layer, with the
// output channel on axis 0 of the weight.
type layerWeights struct {
	node   string
	op     graph.Op
	weight []float32
	shape  []int
	bias   []float32 // one per output channel; zeros when the layer has none
}

// quantizedLayer is the integer form of a layer: the arrays of a conv2d or linear QNode.
type quantizedLayer struct {
	weight []int8
	bias   []int32
	scales []float32 // one per output channel, or one for the tensor
	mult   []int32   // one per output channel
	shift  []int32   // one per output channel
}

// integerLayer adds a conv2d or linear layer with integer weights.
func (b *builder) integerLayer(n *graph.Node) error {
	in, inParams := b.inputParams(n, 0)
	out, err := b.calibrated(n.Name)
	if err != nil {
		return err
	}

	w := b.m.Param(n, "weight")
	l := layerWeights{node: n.Name, op: n.Op, weight: w.Data, shape: w.Shape, bias: make([]float32, w.Shape[0])}
	if bias := b.m.Param(n, "bias"); bias != nil {
		copy(l.bias, bias.Data)
	}
	ql, err := b.quantizeLayer(l, inParams, out)
	if err != nil {
		return err
	}

	lo, hi := clampRange(out, n.Attrs.Activation)
	node := &format.QNode{Name: n.Name, Op: string(n.Op), Inputs: []string{in}, ClampMin: lo, ClampMax: hi, Activation: describeActivation(n.Attrs.Activation)}
	if n.Op == graph.OpConv2D {
		node.Stride, node.Padding, node.Dilation, node.Groups = n.Attrs.Stride, n.Attrs.Padding, n.Attrs.Dilation, n.Attrs.Groups
	}
	b.addLayerArrays(node, ql, w.Shape)
	b.q.Nodes = append(b.q.Nodes, node)
	b.addTensor(n.Name, out)
	b.sum.QuantizedLayers = append(b.sum.QuantizedLayers, n.Name)
	return nil
}

// batchNorm adds a standalone batchnorm as a depthwise 1x1 conv2d with weight
// a[c] = gamma[c] / sqrt(var[c] + eps) and bias beta[c] - mean[c] * a[c]. On a [N, C] input,
// where a conv2d does not apply, it becomes a linear layer with the diagonal weight diag(a),
// which computes the same integers at the cost of C * C weight bytes.
func (b *builder) batchNorm(n *graph.Node) error {
	in, inParams := b.inputParams(n, 0)
	out, err := b.calibrated(n.Name)
	if err != nil {
		return err
	}

	mean := b.m.Param(n, "running_mean").Data
	variance := b.m.Param(n, "running_var").Data
	channels := len(mean)
	l := layerWeights{node: n.Name, op: n.Op, weight: make([]float32, channels), shape: []int{channels, 1, 1, 1}, bias: make([]float32, channels)}
	for c := range channels {
		gamma, beta := 1.0, 0.0
		if g := b.m.Param(n, "weight"); g != nil {
			gamma = float64(g.Data[c])
		}
		if bt := b.m.Param(n, "bias"); bt != nil {
			beta = float64(bt.Data[c])
		}
		v := float64(variance[c]) + n.Attrs.Eps
		if !(v > 0) {
			return fmt.Errorf("quant: batchnorm %q: channel %d has running_var + eps = %g; it must be positive, so check the exported statistics", n.Name, c, v)
		}
		a := gamma / math.Sqrt(v)
		l.weight[c] = float32(a)
		l.bias[c] = float32(beta - float64(mean[c])*a)
		if math.IsInf(float64(l.weight[c]), 0) || math.IsInf(float64(l.bias[c]), 0) {
			return fmt.Errorf("quant: batchnorm %q: channel %d scales by %g with offset %g, beyond float32; check the exported statistics", n.Name, c, a, beta-float64(mean[c])*a)
		}
	}

	node := &format.QNode{Name: n.Name, Op: string(graph.OpConv2D), Inputs: []string{in}, ClampMin: out.QMin, ClampMax: out.QMax}
	if len(b.m.Shapes[in]) == 2 {
		node.Op = string(graph.OpLinear)
		l.weight, l.shape = diagonal(l.weight), []int{channels, channels}
	} else {
		node.Stride, node.Dilation, node.Groups = [2]int{1, 1}, [2]int{1, 1}, channels
	}

	ql, err := b.quantizeLayer(l, inParams, out)
	if err != nil {
		return err
	}
	b.addLayerArrays(node, ql, l.shape)
	b.q.Nodes = append(b.q.Nodes, node)
	b.addTensor(n.Name, out)
	b.sum.QuantizedLayers = append(b.sum.QuantizedLayers, n.Name)
	return nil
}

// diagonal returns the row-major C x C matrix with v on its diagonal.
func diagonal(v []float32) []float32 {
	m := make([]float32, len(v)*len(v))
	for c, x := range v {
		m[c*len(v)+c] = x
	}
	return m
}

// floatLayer adds a conv2d or linear layer kept in float: F32 weight and bias arrays, and the
// fused activation as real bounds. Its output is quantized with calibrated parameters.
func (b *builder) floatLayer(n *graph.Node) error {
	in, _ := b.inputParams(n, 0)
	out, err := b.calibrated(n.Name)
	if err != nil {
		return err
	}

	act := n.Attrs.Activation
	lo, hi := clampRange(out, act)
	node := &format.QNode{Name: n.Name, Op: string(n.Op), Inputs: []string{in}, Float: true, FloatParams: map[string]string{},
		ClampMin: lo, ClampMax: hi, Activation: describeActivation(act)}
	if n.Op == graph.OpConv2D {
		node.Stride, node.Padding, node.Dilation, node.Groups = n.Attrs.Stride, n.Attrs.Padding, n.Attrs.Dilation, n.Attrs.Groups
	}
	if actLo, actHi, ok := act.Bounds(); ok {
		if !math.IsInf(actLo, -1) {
			node.ActMin = &actLo
		}
		if !math.IsInf(actHi, 1) {
			node.ActMax = &actHi
		}
	}

	for _, role := range []string{"weight", "bias"} {
		if t := b.m.Param(n, role); t != nil {
			node.FloatParams[role] = b.addArray(n.Name+"."+role, format.DTypeF32, t.Shape, slices.Clone(t.Data))
		}
	}
	b.q.Nodes = append(b.q.Nodes, node)
	b.addTensor(n.Name, out)
	b.sum.ExcludedLayers = append(b.sum.ExcludedLayers, n.Name)
	return nil
}

// addLayerArrays stores a quantized layer's arrays under "<node>.<role>" and names them in node.
func (b *builder) addLayerArrays(node *format.QNode, ql *quantizedLayer, shape []int) {
	channels := shape[0]
	node.Weight = b.addArray(node.Name+".weight", format.DTypeI8, shape, ql.weight)
	node.Bias = b.addArray(node.Name+".bias", format.DTypeI32, []int{channels}, ql.bias)
	node.WeightScale = b.addArray(node.Name+".weight_scale", format.DTypeF32, []int{len(ql.scales)}, ql.scales)
	node.Mult = b.addArray(node.Name+".mult", format.DTypeI32, []int{channels}, ql.mult)
	node.Shift = b.addArray(node.Name+".shift", format.DTypeI32, []int{channels}, ql.shift)
}

// quantizeLayer quantizes a layer's weights (symmetric, per channel or per tensor), widens
// weight scales where a bias needs it, quantizes the bias, computes each channel's multiplier,
// and checks the accumulator headroom.
func (b *builder) quantizeLayer(l layerWeights, in, out affine.Params) (*quantizedLayer, error) {
	channels := l.shape[0]

	var q []int32
	var params []affine.Params
	var err error
	if b.opt.Weights == PerChannel {
		q, params, err = affine.QuantizeTensorPerChannel(l.weight, l.shape, 0, b.weights)
	} else {
		var p affine.Params
		q, p, err = affine.QuantizeTensor(l.weight, b.weights)
		params = []affine.Params{p}
	}
	if err != nil {
		return nil, fmt.Errorf("quant: layer %q (%s): weight: %w", l.node, l.op, err)
	}
	scales := make([]float32, len(params))
	for i, p := range params {
		scales[i] = p.Scale
	}

	bias, err := b.fitBias(l, in.Scale, scales, q, params[0])
	if err != nil {
		return nil, err
	}

	ql := &quantizedLayer{weight: make([]int8, len(q)), bias: bias, scales: scales, mult: make([]int32, channels), shift: make([]int32, channels)}
	for i, v := range q {
		ql.weight[i] = int8(v)
	}
	for c := range channels {
		sw := scales[min(c, len(scales)-1)]
		m, err := b.multiplier(float64(in.Scale) * float64(sw) / float64(out.Scale))
		if err != nil {
			return nil, fmt.Errorf("quant: layer %q (%s): channel %d: %w", l.node, l.op, c, err)
		}
		ql.mult[c], ql.shift[c] = m.Mult, m.Shift
	}

	if err := checkHeadroom(l, q, bias, in); err != nil {
		return nil, err
	}
	return ql, nil
}

// fitBias quantizes the layer's bias with scale scaleIn * scales[c]. Where a scale is widened
// first (see widenScales), it updates scales and requantizes q, the weights, in place. like
// supplies the weights' integer range.
func (b *builder) fitBias(l layerWeights, scaleIn float32, scales []float32, q []int32, like affine.Params) ([]int32, error) {
	if b.widenScales(l, scaleIn, scales) {
		requantize(l.weight, q, scales, len(l.weight)/l.shape[0], like)
	}

	bias, err := affine.QuantizeBias(l.bias, scaleIn, scales)
	if err != nil {
		return nil, fmt.Errorf("quant: layer %q (%s): %w (qtool quantize --widen-weight-scale does this)", l.node, l.op, err)
	}
	return bias, nil
}

// widenScales enlarges weight scales so that each channel's bias fits int32 with
// |b_q| <= affine.BiasWidenLimit: every scale with Options.WidenWeightScale, and otherwise only
// the scales of all-zero weights. It records each change and reports whether any scale changed.
func (b *builder) widenScales(l layerWeights, scaleIn float32, scales []float32) bool {
	channels := l.shape[0]
	inner := len(l.weight) / channels
	tensorZero := allZero(l.weight)

	changed := false
	for c := range channels {
		i := min(c, len(scales)-1)
		zero := tensorZero
		if len(scales) > 1 {
			zero = allZero(l.weight[c*inner : (c+1)*inner])
		}
		if !b.opt.WidenWeightScale && !zero {
			continue
		}

		wider := affine.WidenScaleForBias(l.bias[c], scaleIn, scales[i])
		if b.opt.Pow2Scales {
			wider = roundUpPow2(wider)
		}
		if wider <= scales[i] {
			continue
		}
		b.sum.WidenedChannels = append(b.sum.WidenedChannels, WidenedChannel{
			Layer: l.node, Channel: c, Bias: l.bias[c], ScaleBefore: scales[i], ScaleAfter: wider, AllZero: zero,
		})
		scales[i] = wider
		changed = true
	}
	return changed
}

// requantize quantizes the weights again with the given scales (one per channel of inner
// values, or one for all), in place of q. like supplies the integer range.
func requantize(w []float32, q []int32, scales []float32, inner int, like affine.Params) {
	for i, x := range w {
		p := like
		p.ZeroPoint = 0
		p.Scale = scales[min(i/inner, len(scales)-1)]
		q[i] = p.Quantize(x)
	}
}

// checkHeadroom returns an error if a channel's accumulator can leave int32:
// K * max|x - z_in| * max|w_q[c]| + |b_q[c]| > 2^31 - 1, where K is the number of products per
// output value. Padding reads z_in and contributes 0.
func checkHeadroom(l layerWeights, q []int32, bias []int32, in affine.Params) error {
	channels := l.shape[0]
	inner := len(q) / channels
	maxInput := int64(max(in.ZeroPoint-in.QMin, in.QMax-in.ZeroPoint))

	for c := range channels {
		var maxWeight int64
		for _, v := range q[c*inner : (c+1)*inner] {
			maxWeight = max(maxWeight, abs64(int64(v)))
		}
		biasMag := abs64(int64(bias[c]))
		total := int64(inner)*maxInput*maxWeight + biasMag
		if total > math.MaxInt32 {
			return fmt.Errorf("quant: layer %q (%s): channel %d can overflow the int32 accumulator: %d products x max |x - z| %d x max |w| %d + |bias| %d = %d > 2147483647; use fewer bits, pass --widen-weight-scale, or keep the layer in float with --exclude",
				l.node, l.op, c, inner, maxInput, maxWeight, biasMag, total)
		}
	}
	return nil
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func allZero(v []float32) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}

// roundUpPow2 returns the smallest power of two >= x, for finite x > 0 whose power of two
// fits float32.
func roundUpPow2(x float32) float32 {
	frac, exp := math.Frexp(float64(x))
	if frac == 0.5 {
		return x
	}
	return float32(math.Ldexp(1, exp))
}
