package quant

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/qtool-dev/qtool/internal/affine"
	"github.com/qtool-dev/qtool/internal/calib"
	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// AddLeftShift is the left shift applied to both inputs of add before they are rescaled to a
// common scale. The rescaled inputs keep 20 fractional bits, so each is rounded by about
// 2^-20 of the larger input step. (2^8 - 1) * 2^20 < 2^28, so both inputs and their sum fit int32.
const AddLeftShift = 20

// Quantize returns the quantized form of m, with activation ranges from table, and a summary.
// m must be loaded with its shapes inferred (graph.Load or InferShapes). See the package
// documentation for the scheme and the errors.
func Quantize(m *graph.Model, table *calib.Table, opt Options) (*format.QModel, *Summary, error) {
	opt = opt.withDefaults()
	if err := opt.Validate(); err != nil {
		return nil, nil, err
	}
	if m == nil || m.Shapes == nil {
		return nil, nil, errors.New("quant: the model has no inferred shapes; load it with graph.Load")
	}
	if table == nil {
		return nil, nil, errors.New("quant: no calibration table")
	}

	hash := m.Hash()
	if table.ModelHash != hash && !opt.AllowStale {
		return nil, nil, fmt.Errorf("quant: the calibration table is stale: it was made for model %s, but this model's hash is %s; re-run qtool calibrate on this model, or pass --allow-stale-calib", table.ModelHash, hash)
	}
	exclude, err := excludeSet(m, opt.Exclude)
	if err != nil {
		return nil, nil, err
	}

	b := &builder{
		m:       m,
		table:   table,
		opt:     opt,
		act:     opt.activationScheme(),
		weights: opt.weightScheme(),
		exclude: exclude,
		params:  map[string]affine.Params{},
		alias:   map[string]string{},
		sum:     &Summary{QuantizedLayers: []string{}, ExcludedLayers: []string{}, WidenedChannels: []WidenedChannel{}},
	}
	b.q = &format.QModel{
		Version:         format.QModelVersion,
		Name:            m.Name,
		SourceHash:      hash,
		Rounding:        string(affine.RoundHalfToEven),
		RequantRounding: affine.RequantRounding,
		AddLeftShift:    AddLeftShift,
		Scheme:          b.scheme(),
		Inputs:          []format.QInput{},
		Nodes:           []*format.QNode{},
		Tensors:         []format.QTensor{},
		Arrays:          map[string]*format.QArray{},
	}

	for _, in := range m.Inputs {
		if err := b.input(in); err != nil {
			return nil, nil, err
		}
	}
	for _, n := range m.Nodes {
		if err := b.node(n); err != nil {
			return nil, nil, err
		}
	}
	for _, out := range m.Outputs {
		b.q.Outputs = append(b.q.Outputs, b.resolve(out))
	}

	b.finishSummary()
	return b.q, b.sum, nil
}

// excludeSet checks the names of layers to keep in float.
func excludeSet(m *graph.Model, names []string) (map[string]bool, error) {
	set := map[string]bool{}
	for _, name := range names {
		n := m.NodeByName(name)
		if n == nil {
			return nil, fmt.Errorf("quant: excluded layer %q is not a node of the model; its conv2d and linear layers are %s", name, strings.Join(layerNames(m), ", "))
		}
		if n.Op != graph.OpConv2D && n.Op != graph.OpLinear {
			return nil, fmt.Errorf("quant: excluded layer %q is a %s node; only conv2d and linear layers can be kept in float", name, n.Op)
		}
		set[name] = true
	}
	return set, nil
}

func layerNames(m *graph.Model) []string {
	var names []string
	for _, n := range m.Nodes {
		if n.Op == graph.OpConv2D || n.Op == graph.OpLinear {
			names = append(names, n.Name)
		}
	}
	if len(names) == 0 {
		return []string{"(none)"}
	}
	return names
}

// builder accumulates the QModel while Quantize walks the graph.
type builder struct {
	m       *graph.Model
	table   *calib.Table
	opt     Options
	act     affine.Scheme // activation scheme
	weights affine.Scheme // weight scheme
	exclude map[string]bool

	q   *format.QModel
	sum *Summary
	// params maps every quantized tensor to its parameters.
	params map[string]affine.Params
	// alias maps the name of a dropped identity or dropout node to the tensor it passed on.
	alias map[string]string
}

func (b *builder) scheme() format.QScheme {
	var excluded []string
	for _, n := range b.m.Nodes {
		if b.exclude[n.Name] {
			excluded = append(excluded, n.Name)
		}
	}

	methods := map[string]bool{}
	for _, e := range b.table.Tensors {
		methods[string(e.Method)] = true
	}

	return format.QScheme{
		WeightBits:          b.opt.Bits,
		WeightPerChannel:    b.opt.Weights == PerChannel,
		ActivationBits:      b.opt.Bits,
		ActivationSigned:    b.act.Signed,
		ActivationSymmetric: b.act.Symmetric,
		Pow2Scales:          b.opt.Pow2Scales,
		Excluded:            excluded,
		CalibMethod:         strings.Join(slices.Sorted(maps.Keys(methods)), ","),
	}
}

// resolve returns the tensor that name refers to after identity and dropout nodes are dropped.
func (b *builder) resolve(name string) string {
	for {
		target, ok := b.alias[name]
		if !ok {
			return name
		}
		name = target
	}
}

// calibrated returns the parameters of a tensor whose range comes from the table.
func (b *builder) calibrated(name string) (affine.Params, error) {
	e, ok := b.table.Tensors[name]
	if !ok {
		return affine.Params{}, fmt.Errorf("quant: tensor %q is missing from the calibration table; re-run qtool calibrate on this model", name)
	}
	p, err := affine.ChooseParams(e.Alpha, e.Beta, b.act)
	if err != nil {
		return affine.Params{}, fmt.Errorf("quant: tensor %q: %w", name, err)
	}
	return p, nil
}

// addTensor records a tensor's parameters and its QTensor entry.
func (b *builder) addTensor(name string, p affine.Params) {
	b.params[name] = p

	dtype := string(Uint8)
	if b.act.Signed {
		dtype = string(Int8)
	}
	t := format.QTensor{
		Name:      name,
		Shape:     slices.Clone(b.m.Shapes[name]),
		DType:     dtype,
		Bits:      b.act.Bits,
		Scale:     p.Scale,
		ZeroPoint: p.ZeroPoint,
		QMin:      p.QMin,
		QMax:      p.QMax,
	}
	if b.opt.Pow2Scales {
		t.QFormat = p.QFormat(b.act.Bits, b.act.Signed)
	}
	b.q.Tensors = append(b.q.Tensors, t)
}

// addArray stores an array under name.
func (b *builder) addArray(name, dtype string, shape []int, data any) string {
	b.q.Arrays[name] = &format.QArray{DType: dtype, Shape: slices.Clone(shape), Data: data}
	return name
}

// inputParams returns the resolved name and parameters of input i of n.
func (b *builder) inputParams(n *graph.Node, i int) (string, affine.Params) {
	name := b.resolve(n.Inputs[i])
	return name, b.params[name]
}

func (b *builder) input(in graph.Input) error {
	qin := format.QInput{Name: in.Name, Shape: slices.Clone(in.Shape)}
	if p := in.Preprocess; p != nil {
		qin.Preprocess = &format.QPreprocess{Scale: p.Scale, Mean: slices.Clone(p.Mean), Std: slices.Clone(p.Std)}
	}
	b.q.Inputs = append(b.q.Inputs, qin)

	p, err := b.calibrated(in.Name)
	if err != nil {
		return err
	}
	b.addTensor(in.Name, p)
	return nil
}

func (b *builder) node(n *graph.Node) error {
	switch n.Op {
	case graph.OpConv2D, graph.OpLinear:
		if b.exclude[n.Name] {
			return b.floatLayer(n)
		}
		return b.integerLayer(n)
	case graph.OpBatchNorm:
		return b.batchNorm(n)
	case graph.OpAdd:
		return b.add(n)
	case graph.OpConcat:
		return b.concat(n)
	case graph.OpMaxPool2D, graph.OpAvgPool2D, graph.OpGlobalAvgPool, graph.OpFlatten:
		return b.sameParams(n)
	case graph.OpRelu, graph.OpRelu6, graph.OpClip:
		return b.standaloneClamp(n)
	case graph.OpIdentity, graph.OpDropout:
		return b.passThrough(n)
	}
	return fmt.Errorf("quant: node %q: op %q is not supported", n.Name, n.Op)
}

// sameParams adds a pooling or flatten node, whose output keeps its input's parameters.
func (b *builder) sameParams(n *graph.Node) error {
	in, p := b.inputParams(n, 0)
	node := &format.QNode{Name: n.Name, Op: string(n.Op), Inputs: []string{in}, ClampMin: p.QMin, ClampMax: p.QMax}
	switch n.Op {
	case graph.OpMaxPool2D:
		node.Kernel, node.Stride, node.Padding = n.Attrs.Kernel, n.Attrs.Stride, n.Attrs.Padding
	case graph.OpAvgPool2D:
		node.Kernel, node.Stride, node.Padding = n.Attrs.Kernel, n.Attrs.Stride, n.Attrs.Padding
		node.CountIncludePad = n.Attrs.CountIncludePad
	}
	b.q.Nodes = append(b.q.Nodes, node)
	b.addTensor(n.Name, p)
	return nil
}

// standaloneClamp adds a relu, relu6 or clip that fuse left in place: a clamp of the input
// integers, with the input's parameters.
func (b *builder) standaloneClamp(n *graph.Node) error {
	in, p := b.inputParams(n, 0)
	act := graph.Activation{Kind: graph.ActKind(n.Op)}
	if n.Op == graph.OpClip {
		act = graph.Activation{Kind: graph.ActClip, Min: n.Attrs.Min, Max: n.Attrs.Max}
	}
	lo, hi := clampRange(p, act)

	node := &format.QNode{Name: n.Name, Op: string(n.Op), Inputs: []string{in}, ClampMin: lo, ClampMax: hi, Activation: describeActivation(act)}
	b.q.Nodes = append(b.q.Nodes, node)
	b.addTensor(n.Name, p)
	return nil
}

// passThrough drops an identity or dropout node, so that its readers read its input. A graph
// output keeps its name through a clip over the full integer range, which copies the values.
func (b *builder) passThrough(n *graph.Node) error {
	in, p := b.inputParams(n, 0)
	if !b.m.IsOutput(n.Name) {
		b.alias[n.Name] = in
		return nil
	}
	node := &format.QNode{Name: n.Name, Op: string(graph.OpClip), Inputs: []string{in}, ClampMin: p.QMin, ClampMax: p.QMax}
	b.q.Nodes = append(b.q.Nodes, node)
	b.addTensor(n.Name, p)
	return nil
}

// add adds an elementwise sum. Each input is rescaled to s_i / (2 max(s_a, s_b)) after a left
// shift by AddLeftShift, and the sum to the output scale, as format.QModel documents.
func (b *builder) add(n *graph.Node) error {
	out, err := b.calibrated(n.Name)
	if err != nil {
		return err
	}
	nameA, pa := b.inputParams(n, 0)
	nameB, pb := b.inputParams(n, 1)
	twiceMax := 2 * math.Max(float64(pa.Scale), float64(pb.Scale))

	inputMults := make([]int32, 2)
	inputShifts := make([]int32, 2)
	for i, p := range []affine.Params{pa, pb} {
		m, err := b.multiplier(float64(p.Scale) / twiceMax)
		if err != nil {
			return fmt.Errorf("quant: node %q (add): input %d: %w", n.Name, i, err)
		}
		inputMults[i], inputShifts[i] = m.Mult, m.Shift
	}
	m, err := b.multiplier(twiceMax / (math.Ldexp(1, AddLeftShift) * float64(out.Scale)))
	if err != nil {
		return fmt.Errorf("quant: node %q (add): output: %w", n.Name, err)
	}

	lo, hi := clampRange(out, n.Attrs.Activation)
	node := &format.QNode{
		Name:       n.Name,
		Op:         string(graph.OpAdd),
		Inputs:     []string{nameA, nameB},
		Mult:       b.addArray(n.Name+".mult", format.DTypeI32, []int{1}, []int32{m.Mult}),
		Shift:      b.addArray(n.Name+".shift", format.DTypeI32, []int{1}, []int32{m.Shift}),
		InputMult:  b.addArray(n.Name+".input_mult", format.DTypeI32, []int{2}, inputMults),
		InputShift: b.addArray(n.Name+".input_shift", format.DTypeI32, []int{2}, inputShifts),
		ClampMin:   lo,
		ClampMax:   hi,
		Activation: describeActivation(n.Attrs.Activation),
	}
	b.q.Nodes = append(b.q.Nodes, node)
	b.addTensor(n.Name, out)
	return nil
}

// concat adds a channel concatenation whose inputs are rescaled to the output's parameters:
// each x - z_i is shifted left by AddLeftShift and multiplied by s_i / (s_out * 2^AddLeftShift),
// so that the fixed-point product keeps 20 extra bits and the result is rounded once.
func (b *builder) concat(n *graph.Node) error {
	out, err := b.calibrated(n.Name)
	if err != nil {
		return err
	}

	inputs := make([]string, len(n.Inputs))
	mults := make([]int32, len(n.Inputs))
	shifts := make([]int32, len(n.Inputs))
	for i := range n.Inputs {
		name, p := b.inputParams(n, i)
		m, err := b.multiplier(float64(p.Scale) / float64(out.Scale) / (1 << AddLeftShift))
		if err != nil {
			return fmt.Errorf("quant: node %q (concat): input %q: %w", n.Name, name, err)
		}
		inputs[i], mults[i], shifts[i] = name, m.Mult, m.Shift
	}

	node := &format.QNode{
		Name:       n.Name,
		Op:         string(graph.OpConcat),
		Inputs:     inputs,
		InputMult:  b.addArray(n.Name+".input_mult", format.DTypeI32, []int{len(inputs)}, mults),
		InputShift: b.addArray(n.Name+".input_shift", format.DTypeI32, []int{len(inputs)}, shifts),
		ClampMin:   out.QMin,
		ClampMax:   out.QMax,
	}
	b.q.Nodes = append(b.q.Nodes, node)
	b.addTensor(n.Name, out)
	return nil
}

// multiplier returns the fixed-point form of a real multiplier: a pure rounding shift with
// power-of-two scales, the nearest Multiplier otherwise.
func (b *builder) multiplier(m float64) (affine.Multiplier, error) {
	if b.opt.Pow2Scales {
		return affine.Pow2Multiplier(m)
	}
	return affine.QuantizeMultiplier(m)
}

// clampRange returns the output integers' clamp: [QMin, QMax] intersected with the quantized
// bounds of a fused activation. ReLU's lower bound 0 quantizes exactly to the zero point.
func clampRange(p affine.Params, act graph.Activation) (lo, hi int32) {
	lo, hi = p.QMin, p.QMax
	actLo, actHi, ok := act.Bounds()
	if !ok {
		return lo, hi
	}
	if !math.IsInf(actLo, -1) {
		lo = max(lo, p.Quantize(float32(actLo)))
	}
	if !math.IsInf(actHi, 1) {
		hi = min(hi, p.Quantize(float32(actHi)))
	}
	return lo, hi
}

// describeActivation returns an activation as inspect shows it: "relu", "relu6", "clip(0, 4)".
func describeActivation(a graph.Activation) string {
	if a.Kind == graph.ActClip {
		return fmt.Sprintf("clip(%g, %g)", a.Min, a.Max)
	}
	return string(a.Kind)
}

// finishSummary fills the byte counts of the summary.
func (b *builder) finishSummary() {
	seen := map[string]bool{}
	for _, n := range b.m.Nodes {
		for _, key := range n.Params {
			if t := b.m.Params[key]; t != nil && !seen[key] {
				seen[key] = true
				b.sum.FloatWeightBytes += 4 * int64(t.Len())
			}
		}
	}

	for _, a := range b.q.Arrays {
		size := int64(4)
		if a.DType == format.DTypeI8 || a.DType == format.DTypeU8 {
			size = 1
		}
		b.sum.QuantizedWeightBytes += size * int64(tensor.Size(a.Shape))
	}
	if b.sum.QuantizedWeightBytes > 0 {
		b.sum.CompressionRatio = float64(b.sum.FloatWeightBytes) / float64(b.sum.QuantizedWeightBytes)
	}
}
