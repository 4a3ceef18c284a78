package calib

import (
	"errors"
	"fmt"
	"strings"
)

// Method names a range observer.
type Method string

// The calibration methods. Each observer's defaults sit beside its type.
const (
	MethodMinMax     Method = "minmax"
	MethodEMA        Method = "ema"
	MethodPercentile Method = "percentile"
	MethodEntropy    Method = "entropy"
	MethodMSE        Method = "mse"
)

// Methods returns every method in a fixed order.
func Methods() []Method {
	return []Method{MethodMinMax, MethodEMA, MethodPercentile, MethodEntropy, MethodMSE}
}

// Limits on the settings. Bits follows the bit widths that qtool quantizes to.
const (
	MinBins = 16
	MaxBins = 1 << 16
	MinBits = 2
	MaxBits = 8
)

// Settings are the parameters of one method. A field that does not apply to
// Method must be zero, so that a stray flag or table field is reported
// instead of ignored.
type Settings struct {
	Method Method `json:"method"`

	// Momentum is the weight of the running range in ema (0 < Momentum < 1).
	Momentum float64 `json:"momentum,omitempty"`

	// Percentile is p in percentile: beta is the p-th percentile and alpha the
	// (100-p)-th (50 < p <= 100).
	Percentile float64 `json:"percentile,omitempty"`

	// Bins is the histogram's maximum number of bins in percentile, entropy
	// and mse.
	Bins int `json:"bins,omitempty"`

	// Bits is the bit width of the target integer grid in entropy and mse.
	Bits int `json:"bits,omitempty"`

	// Symmetric selects a symmetric target grid in mse: [-t, t] with zero
	// point 0 and 2^(Bits-1)-1 steps on each side. Otherwise mse targets an
	// asymmetric grid of 2^Bits-1 steps.
	Symmetric bool `json:"symmetric,omitempty"`
}

// DefaultSettings returns the default settings of m. An unknown method gets
// Settings{Method: m}, which Validate rejects.
func DefaultSettings(m Method) Settings {
	switch m {
	case MethodMinMax:
		return Settings{Method: m}
	case MethodEMA:
		return Settings{Method: m, Momentum: DefaultMomentum}
	case MethodPercentile:
		return Settings{Method: m, Percentile: DefaultPercentile, Bins: DefaultPercentileBins}
	case MethodEntropy:
		return Settings{Method: m, Bins: DefaultEntropyBins, Bits: DefaultEntropyBits}
	case MethodMSE:
		return Settings{Method: m, Bins: DefaultMSEBins, Bits: DefaultMSEBits, Symmetric: DefaultMSESymmetric}
	}
	return Settings{Method: m}
}

// WithDefaults returns s with every zero field that applies to s.Method set
// to its default. Symmetric is left as it is because its default is false.
func (s Settings) WithDefaults() Settings {
	d := DefaultSettings(s.Method)
	if s.Method == MethodEMA && s.Momentum == 0 {
		s.Momentum = d.Momentum
	}
	if s.Method == MethodPercentile && s.Percentile == 0 {
		s.Percentile = d.Percentile
	}
	if d.Bins != 0 && s.Bins == 0 {
		s.Bins = d.Bins
	}
	if d.Bits != 0 && s.Bits == 0 {
		s.Bits = d.Bits
	}
	return s
}

// Validate returns an error if s.Method is unknown, a parameter of the
// method is out of range, or a parameter of another method is set.
func (s Settings) Validate() error {
	if err := s.check(); err != nil {
		return fmt.Errorf("calib: invalid settings: %w", err)
	}
	return nil
}

// String formats s for logs, for example "percentile(percentile=99.99, bins=2048)".
func (s Settings) String() string {
	var params []string
	if s.Momentum != 0 {
		params = append(params, fmt.Sprintf("momentum=%g", s.Momentum))
	}
	if s.Percentile != 0 {
		params = append(params, fmt.Sprintf("percentile=%g", s.Percentile))
	}
	if s.Bins != 0 {
		params = append(params, fmt.Sprintf("bins=%d", s.Bins))
	}
	if s.Bits != 0 {
		params = append(params, fmt.Sprintf("bits=%d", s.Bits))
	}
	if s.Symmetric {
		params = append(params, "symmetric=true")
	}
	return fmt.Sprintf("%s(%s)", s.Method, strings.Join(params, ", "))
}

// check is Validate without the package prefix, so that ReadTable can name
// the file and tensor first.
func (s Settings) check() error {
	switch s.Method {
	case MethodMinMax, MethodEMA, MethodPercentile, MethodEntropy, MethodMSE:
	case "":
		return errors.New("method is missing; use minmax, ema, percentile, entropy or mse")
	default:
		return fmt.Errorf("unknown method %q; use minmax, ema, percentile, entropy or mse", s.Method)
	}

	usesMomentum := s.Method == MethodEMA
	usesPercentile := s.Method == MethodPercentile
	usesBins := s.Method == MethodPercentile || s.Method == MethodEntropy || s.Method == MethodMSE
	usesBits := s.Method == MethodEntropy || s.Method == MethodMSE
	usesSymmetric := s.Method == MethodMSE

	if err := checkUnused(s, usesMomentum, usesPercentile, usesBins, usesBits, usesSymmetric); err != nil {
		return err
	}

	// The negated comparisons also reject NaN.
	if usesMomentum && !(s.Momentum > 0 && s.Momentum < 1) {
		return fmt.Errorf("momentum %g is outside (0, 1)", s.Momentum)
	}
	if usesPercentile && !(s.Percentile > 50 && s.Percentile <= 100) {
		return fmt.Errorf("percentile %g is outside (50, 100]", s.Percentile)
	}
	if usesBits && (s.Bits < MinBits || s.Bits > MaxBits) {
		return fmt.Errorf("bits %d is outside [%d, %d]", s.Bits, MinBits, MaxBits)
	}
	if usesBins {
		minBins := MinBins
		if s.Method == MethodEntropy {
			// The threshold search needs more histogram bins than
			// quantized levels, and the histogram may use only half of
			// its bins (see histogram.go).
			minBins = max(minBins, 2*entropyLevels(s.Bits))
		}
		if s.Bins < minBins || s.Bins > MaxBins {
			return fmt.Errorf("bins %d is outside [%d, %d] for %s", s.Bins, minBins, MaxBins, s.Method)
		}
	}
	return nil
}

func checkUnused(s Settings, momentum, percentile, bins, bits, symmetric bool) error {
	var unused []string
	if !momentum && s.Momentum != 0 {
		unused = append(unused, "momentum")
	}
	if !percentile && s.Percentile != 0 {
		unused = append(unused, "percentile")
	}
	if !bins && s.Bins != 0 {
		unused = append(unused, "bins")
	}
	if !bits && s.Bits != 0 {
		unused = append(unused, "bits")
	}
	if !symmetric && s.Symmetric {
		unused = append(unused, "symmetric")
	}
	switch len(unused) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("%s does not apply to method %s; remove it", unused[0], s.Method)
	default:
		return fmt.Errorf("%s do not apply to method %s; remove them", strings.Join(unused, ", "), s.Method)
	}
}
