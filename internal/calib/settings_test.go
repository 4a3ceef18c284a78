package calib

import (
	"math"
	"strings"
	"testing"
)

func TestDefaultSettingsValid(t *testing.T) {
	for _, m := range Methods() {
		s := DefaultSettings(m)
		if s.Method != m {
			t.Errorf("DefaultSettings(%q).Method = %q", m, s.Method)
		}
		if err := s.Validate(); err != nil {
			t.Errorf("DefaultSettings(%q).Validate() = %v", m, err)
		}
	}
}

func TestDefaultSettingsValues(t *testing.T) {
	cases := []struct {
		method Method
		want   Settings
	}{
		{MethodMinMax, Settings{Method: MethodMinMax}},
		{MethodEMA, Settings{Method: MethodEMA, Momentum: 0.99}},
		{MethodPercentile, Settings{Method: MethodPercentile, Percentile: 99.99, Bins: 2048}},
		{MethodEntropy, Settings{Method: MethodEntropy, Bins: 2048, Bits: 8}},
		{MethodMSE, Settings{Method: MethodMSE, Bins: 2048, Bits: 8}},
	}
	for _, c := range cases {
		if got := DefaultSettings(c.method); got != c.want {
			t.Errorf("DefaultSettings(%q) = %+v, want %+v", c.method, got, c.want)
		}
	}
}

func TestSettingsValidateRejects(t *testing.T) {
	cases := []struct {
		name     string
		settings Settings
		want     string
	}{
		{"missing method", Settings{}, "method is missing"},
		{"unknown method", Settings{Method: "kl"}, `unknown method "kl"`},
		{"momentum 0", Settings{Method: MethodEMA}, "momentum 0 is outside (0, 1)"},
		{"momentum 1", Settings{Method: MethodEMA, Momentum: 1}, "momentum 1 is outside (0, 1)"},
		{"momentum NaN", Settings{Method: MethodEMA, Momentum: math.NaN()}, "momentum NaN is outside (0, 1)"},
		{"percentile 50", Settings{Method: MethodPercentile, Percentile: 50, Bins: 2048}, "percentile 50 is outside (50, 100]"},
		{"percentile 100.5", Settings{Method: MethodPercentile, Percentile: 100.5, Bins: 2048}, "percentile 100.5 is outside (50, 100]"},
		{"percentile bins 15", Settings{Method: MethodPercentile, Percentile: 99, Bins: 15}, "bins 15 is outside [16, 65536] for percentile"},
		{"mse bins too many", Settings{Method: MethodMSE, Bins: 1<<16 + 1, Bits: 8}, "bins 65537 is outside [16, 65536] for mse"},
		{"entropy bins below 2 levels", Settings{Method: MethodEntropy, Bins: 255, Bits: 8}, "bins 255 is outside [256, 65536] for entropy"},
		{"bits 1", Settings{Method: MethodMSE, Bins: 2048, Bits: 1}, "bits 1 is outside [2, 8]"},
		{"bits 16", Settings{Method: MethodEntropy, Bins: 2048, Bits: 16}, "bits 16 is outside [2, 8]"},
		{"bins on minmax", Settings{Method: MethodMinMax, Bins: 2048}, "bins does not apply to method minmax"},
		{"several unused fields", Settings{Method: MethodEMA, Momentum: 0.9, Percentile: 99, Symmetric: true}, "percentile, symmetric do not apply to method ema; remove them"},
		{"symmetric on entropy", Settings{Method: MethodEntropy, Bins: 2048, Bits: 8, Symmetric: true}, "symmetric does not apply to method entropy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.settings.Validate()
			if err == nil {
				t.Fatalf("Validate(%+v) returned no error", c.settings)
			}
			if !strings.HasPrefix(err.Error(), "calib: invalid settings: ") {
				t.Errorf("error = %q, want the prefix %q", err, "calib: invalid settings: ")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %q, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestSettingsValidateAccepts(t *testing.T) {
	cases := []Settings{
		{Method: MethodEMA, Momentum: 1e-9},
		{Method: MethodPercentile, Percentile: 100, Bins: 16},
		{Method: MethodEntropy, Bins: 16, Bits: 2},
		{Method: MethodMSE, Bins: 1 << 16, Bits: 2, Symmetric: true},
	}
	for _, s := range cases {
		if err := s.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", s, err)
		}
	}
}

func TestSettingsWithDefaults(t *testing.T) {
	cases := []struct {
		in, want Settings
	}{
		{Settings{Method: MethodMinMax}, Settings{Method: MethodMinMax}},
		{Settings{Method: MethodEMA}, Settings{Method: MethodEMA, Momentum: 0.99}},
		{Settings{Method: MethodPercentile, Percentile: 99.9}, Settings{Method: MethodPercentile, Percentile: 99.9, Bins: 2048}},
		{Settings{Method: MethodMSE, Symmetric: true}, Settings{Method: MethodMSE, Bins: 2048, Bits: 8, Symmetric: true}},
		{Settings{Method: MethodEntropy, Bins: 4096}, Settings{Method: MethodEntropy, Bins: 4096, Bits: 8}},
	}
	for _, c := range cases {
		if got := c.in.WithDefaults(); got != c.want {
			t.Errorf("%+v.WithDefaults() = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestSettingsString(t *testing.T) {
	cases := []struct {
		settings Settings
		want     string
	}{
		{DefaultSettings(MethodMinMax), "minmax()"},
		{DefaultSettings(MethodPercentile), "percentile(percentile=99.99, bins=2048)"},
		{symmetricMSE(), "mse(bins=2048, bits=8, symmetric=true)"},
	}
	for _, c := range cases {
		if got := c.settings.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
	}
}
