package quant

import (
	"fmt"

	"github.com/qtool-dev/qtool/internal/affine"
)

// Granularity is how many scales a weight tensor gets.
type Granularity string

// The weight granularities.
const (
	PerChannel Granularity = "per-channel" // one scale per output channel
	PerTensor  Granularity = "per-tensor"  // one scale for the whole weight
)

// ActivationType is the integer type of activation tensors.
type ActivationType string

// The activation types.
const (
	Uint8 ActivationType = "uint8"
	Int8  ActivationType = "int8"
)

// DefaultBits is the bit width of weights and activations when Options.Bits is 0.
const DefaultBits = 8

// Options select the quantization scheme. The zero value is the default scheme: per-channel
// int8 weights and asymmetric uint8 activations, 8 bits each.
type Options struct {
	// Weights is PerChannel or PerTensor; "" means PerChannel.
	Weights Granularity
	// Activations is Uint8 or Int8; "" means Uint8.
	Activations ActivationType
	// SymmetricActivations fixes each activation's zero point (0 for int8, 2^(bits-1) for uint8).
	SymmetricActivations bool
	// Bits is the width of weights and activations, affine.MinBits to affine.MaxBits; 0 means 8.
	Bits int
	// WidenWeightScale enlarges a channel's weight scale until its bias fits int32 with
	// |b_q| <= affine.BiasWidenLimit, instead of returning an error.
	WidenWeightScale bool
	// Pow2Scales rounds every scale up to a power of two, so every multiplier is a pure shift.
	Pow2Scales bool
	// Exclude names conv2d and linear layers to keep in float.
	Exclude []string
	// AllowStale accepts a calibration table made for a model with another content hash.
	AllowStale bool
}

// withDefaults returns o with its zero fields set to the defaults.
func (o Options) withDefaults() Options {
	if o.Weights == "" {
		o.Weights = PerChannel
	}
	if o.Activations == "" {
		o.Activations = Uint8
	}
	if o.Bits == 0 {
		o.Bits = DefaultBits
	}
	return o
}

// Validate returns an error naming the first invalid option, after defaults are applied.
func (o Options) Validate() error {
	o = o.withDefaults()
	if o.Weights != PerChannel && o.Weights != PerTensor {
		return fmt.Errorf("quant: weight granularity %q is invalid; use %s or %s", o.Weights, PerChannel, PerTensor)
	}
	if o.Activations != Uint8 && o.Activations != Int8 {
		return fmt.Errorf("quant: activation type %q is invalid; use %s or %s", o.Activations, Uint8, Int8)
	}
	if o.Bits < affine.MinBits || o.Bits > affine.MaxBits {
		return fmt.Errorf("quant: bit width %d is invalid; use %d to %d", o.Bits, affine.MinBits, affine.MaxBits)
	}
	return nil
}

// weightScheme returns the scheme of weights: signed, symmetric, narrow range
// ([-127, 127] for 8 bits).
func (o Options) weightScheme() affine.Scheme {
	return affine.Scheme{Bits: o.Bits, Signed: true, Symmetric: true, NarrowRange: true, Pow2Scale: o.Pow2Scales}
}

// activationScheme returns the scheme of activation tensors.
func (o Options) activationScheme() affine.Scheme {
	return affine.Scheme{Bits: o.Bits, Signed: o.Activations == Int8, Symmetric: o.SymmetricActivations, Pow2Scale: o.Pow2Scales}
}

// Summary reports what Quantize did.
type Summary struct {
	// QuantizedLayers are the conv2d, linear and batchnorm nodes stored with integer weights,
	// in graph order.
	QuantizedLayers []string `json:"quantized_layers"`
	// ExcludedLayers are the layers kept in float, in graph order.
	ExcludedLayers []string `json:"excluded_layers"`
	// FloatWeightBytes is 4 bytes per float32 value of the parameters the model's nodes use.
	FloatWeightBytes int64 `json:"float_weight_bytes"`
	// QuantizedWeightBytes is the size of every array the QModel stores: weights, biases,
	// weight scales, multipliers and shifts, and the float arrays of excluded layers.
	QuantizedWeightBytes int64 `json:"quantized_weight_bytes"`
	// CompressionRatio is FloatWeightBytes / QuantizedWeightBytes.
	CompressionRatio float64 `json:"compression_ratio"`
	// WidenedChannels are the channels whose weight scale was enlarged so their bias fits.
	WidenedChannels []WidenedChannel `json:"widened_channels"`
}

// WidenedChannel is a weight scale enlarged so that a channel's bias fits int32.
type WidenedChannel struct {
	Layer   string  `json:"layer"`
	Channel int     `json:"channel"`
	Bias    float32 `json:"bias"`
	// ScaleBefore and ScaleAfter are the weight scale chosen from the weights and the one stored.
	// For per-tensor weights they are the scale of the whole tensor.
	ScaleBefore float32 `json:"scale_before"`
	ScaleAfter  float32 `json:"scale_after"`
	// AllZero is set when the channel's weights are all zero. Such a channel is widened even
	// without Options.WidenWeightScale, because its scale carries no information.
	AllZero bool `json:"all_zero,omitempty"`
}
