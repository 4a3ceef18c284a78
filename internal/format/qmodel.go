package format

// This file defines the content of a quantized model (.qmodel). The byte layout is specified in
// docs/format.md; the quantize pass fills a QModel and the integer executor runs one.
//
// Arithmetic contract of each node, which the integer executor implements bit-exactly. Every
// activation tensor T has QParams (scale s_T, zero point z_T, integer range [qmin_T, qmax_T]).
// MBQM(x, m, k) is affine.MultiplyByQuantizedMultiplier with multiplier m and shift k.
//
//   conv2d, linear, batchnorm (stored as a depthwise 1x1 conv2d):
//     acc[c] = Bias[c] + sum_k (x_k - z_in) * W[c][k]            exact int32; padding reads z_in
//     y      = clamp(z_out + MBQM(acc[c], Mult[c], Shift[c]), ClampMin, ClampMax)
//     with Mult/Shift encoding s_in * WeightScale[c] / s_out.
//   add (inputs a, b):
//     a' = MBQM((a - z_a) * 2^AddLeftShift, InputMult[0], InputShift[0])   rescales to s_a / (2 max(s_a, s_b))
//     b' = MBQM((b - z_b) * 2^AddLeftShift, InputMult[1], InputShift[1])
//     y  = clamp(z_out + MBQM(a' + b', Mult[0], Shift[0]), ClampMin, ClampMax)   Mult encodes 2 max(s_a, s_b) / (2^AddLeftShift s_out)
//   concat: input i is copied when its QParams equal the output's; otherwise
//     y = clamp(z_out + MBQM((x - z_i) * 2^AddLeftShift, InputMult[i], InputShift[i]), qmin_out, qmax_out)
//     with the multiplier encoding s_i / (s_out 2^AddLeftShift), so the result is rounded once
//   maxpool2d: max over the in-bounds cells of the window; output QParams equal the input's.
//   avgpool2d, global_avgpool: sum over the window (a padded cell counts as z_in when
//     CountIncludePad), then floor((sum + floor(count/2)) / count), i.e. round half up;
//     output QParams equal the input's.
//   relu, relu6, clip (left standalone): y = clamp(x, ClampMin, ClampMax); output QParams equal the input's.
//   flatten: the same integers in [N, C*H*W] order (PyTorch's flatten of NCHW).
//   A node with Float set (kept in float by --exclude) dequantizes its inputs, runs the float op
//   with the F32 arrays FloatParams names, and quantizes its output with the output's QParams
//   (round half to even, then clamp).

// QModelVersion is the version of the .qmodel content this build reads and writes.
const QModelVersion = 1

// QModel is the content of a .qmodel file.
type QModel struct {
	Version int    `json:"version"`
	Name    string `json:"name,omitempty"`
	// SourceHash is the content hash of the fused float model that was quantized.
	SourceHash string `json:"source_hash"`
	// Rounding is the rounding of quantization (x / scale): "half_to_even".
	Rounding string `json:"rounding"`
	// RequantRounding names the requantization arithmetic: "srdhm_half_away"
	// (saturating rounding doubling high multiply, then rounding right shift, ties away from zero).
	RequantRounding string `json:"requant_rounding"`
	// AddLeftShift is the left shift applied to the inputs of add and to the rescaled inputs of
	// concat before their multiplier (20).
	AddLeftShift int     `json:"add_left_shift"`
	Scheme       QScheme `json:"scheme"`

	Inputs  []QInput  `json:"inputs"`
	Outputs []string  `json:"outputs"`
	Nodes   []*QNode  `json:"nodes"`
	Tensors []QTensor `json:"tensors"` // every activation tensor, in graph order

	// Arrays are the weights, biases, multipliers and shifts, stored as safetensors tensors.
	Arrays map[string]*QArray `json:"-"`
}

// QScheme records the options the model was quantized with.
type QScheme struct {
	WeightBits          int      `json:"weight_bits"`
	WeightPerChannel    bool     `json:"weight_per_channel"`
	ActivationBits      int      `json:"activation_bits"`
	ActivationSigned    bool     `json:"activation_signed"`
	ActivationSymmetric bool     `json:"activation_symmetric"`
	Pow2Scales          bool     `json:"pow2_scales"`
	Excluded            []string `json:"excluded,omitempty"`
	CalibMethod         string   `json:"calib_method,omitempty"`
}

// QInput is a graph input: its float preprocessing and the tensor its quantized values go to.
type QInput struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
	// Preprocess is copied from the float model: raw uint8 data is mapped to real values first.
	Preprocess *QPreprocess `json:"preprocess,omitempty"`
}

// QPreprocess mirrors graph.Preprocess.
type QPreprocess struct {
	Scale float64   `json:"scale"`
	Mean  []float64 `json:"mean,omitempty"`
	Std   []float64 `json:"std,omitempty"`
}

// QTensor is an activation tensor's quantization parameters.
type QTensor struct {
	Name      string  `json:"name"`
	Shape     []int   `json:"shape"` // batch dimension 1
	DType     string  `json:"dtype"` // "uint8" or "int8"
	Bits      int     `json:"bits"`
	Scale     float32 `json:"scale"`
	ZeroPoint int32   `json:"zero_point"`
	QMin      int32   `json:"qmin"`
	QMax      int32   `json:"qmax"`
	// QFormat is the fixed-point format (for example "Q3.4") when Scale is a power of two.
	QFormat string `json:"qformat,omitempty"`
}

// QNode is one integer op; see the arithmetic contract at the top of this file.
type QNode struct {
	Name   string   `json:"name"`
	Op     string   `json:"op"` // conv2d, linear, add, concat, maxpool2d, avgpool2d, global_avgpool, relu, relu6, clip, flatten
	Inputs []string `json:"inputs"`

	Stride          [2]int `json:"stride,omitempty"`
	Padding         [4]int `json:"padding,omitempty"`
	Dilation        [2]int `json:"dilation,omitempty"`
	Groups          int    `json:"groups,omitempty"`
	Kernel          [2]int `json:"kernel,omitempty"`
	CountIncludePad bool   `json:"count_include_pad,omitempty"`

	// Array names for conv2d and linear: Weight (I8, PyTorch layout), Bias (I32),
	// WeightScale (F32, one per output channel or one for the tensor), Mult and Shift (I32, one
	// per output channel). add uses Mult/Shift with one element for its output rescale.
	Weight      string `json:"weight,omitempty"`
	Bias        string `json:"bias,omitempty"`
	WeightScale string `json:"weight_scale,omitempty"`
	Mult        string `json:"mult,omitempty"`
	Shift       string `json:"shift,omitempty"`
	// InputMult and InputShift (I32, one per input) rescale the inputs of add and concat.
	InputMult  string `json:"input_mult,omitempty"`
	InputShift string `json:"input_shift,omitempty"`

	// ClampMin and ClampMax bound the output integers: the output range intersected with the
	// fused activation (ReLU clamps at the zero point, ReLU6 at quantize(6.0)).
	ClampMin int32 `json:"clamp_min"`
	ClampMax int32 `json:"clamp_max"`
	// Activation is the fused activation, for display ("relu", "relu6", "clip(0, 4)").
	Activation string `json:"activation,omitempty"`

	// Float marks a node kept in float; FloatParams maps roles (weight, bias) to F32 arrays and
	// ActMin/ActMax give its fused clamp in real units.
	Float       bool              `json:"float,omitempty"`
	FloatParams map[string]string `json:"float_params,omitempty"`
	ActMin      *float64          `json:"act_min,omitempty"`
	ActMax      *float64          `json:"act_max,omitempty"`
}

// QArray is a stored array: DType is a safetensors dtype ("I8", "U8", "I32", "F32") and Data
// the matching []int8, []uint8, []int32 or []float32, in C order.
type QArray struct {
	DType string
	Shape []int
	Data  any
}

// Tensor returns the QTensor named name, or nil.
func (q *QModel) Tensor(name string) *QTensor {
	for i := range q.Tensors {
		if q.Tensors[i].Name == name {
			return &q.Tensors[i]
		}
	}
	return nil
}
