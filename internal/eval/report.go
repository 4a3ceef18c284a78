package eval

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"
)

// Report is the comparison of a float model and its quantized form on one data set, and its
// JSON form is what qtool eval --json prints. Accuracy fields are percentages and are nil
// without labels. The top-5 fields are nil unless the model has more than five classes, and
// the timing fields are nil when timing is off.
type Report struct {
	Samples   int      `json:"samples"`
	Classes   int      `json:"classes"`
	FloatTop1 *float64 `json:"float_top1,omitempty"`
	Int8Top1  *float64 `json:"int8_top1,omitempty"`
	FloatTop5 *float64 `json:"float_top5,omitempty"`
	Int8Top5  *float64 `json:"int8_top5,omitempty"`
	// DropPP is FloatTop1 - Int8Top1 in percentage points.
	DropPP *float64 `json:"drop_pp,omitempty"`
	// Agreement is the percentage of samples whose top class is the same in both models.
	Agreement float64 `json:"agreement"`
	// Outputs compares each graph output of the quantized model with the float model's.
	Outputs []LayerReport `json:"outputs"`
	// Layers compares every quantized tensor that has a float tensor of the same name and
	// shape, in graph order. It is nil unless the per-layer comparison was requested.
	Layers []LayerReport `json:"layers,omitempty"`
	// Skipped lists the quantized tensors left out of Layers and why.
	Skipped []SkippedTensor `json:"skipped,omitempty"`

	FloatMsPerImage *float64 `json:"float_ms_per_image,omitempty"`
	Int8MsPerImage  *float64 `json:"int8_ms_per_image,omitempty"`
}

// LayerReport holds the error metrics of one tensor over all samples.
type LayerReport struct {
	Name string `json:"name"`
	// SQNRdB is nil (JSON null) when the SQNR is infinite: +Inf when the quantized tensor equals
	// the float one (MaxAbsErr 0), -Inf when the float tensor is all zero and the quantized one
	// is not.
	SQNRdB    *float64 `json:"sqnr_db"`
	Cosine    float64  `json:"cosine"`
	MaxAbsErr float64  `json:"max_abs_err"`
	// NonFinite counts element pairs left out because one side was NaN or infinite.
	NonFinite int64 `json:"non_finite,omitempty"`
}

// SkippedTensor is a quantized tensor without a float counterpart.
type SkippedTensor struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// newLayerReport summarizes the accumulated stats of one tensor.
func newLayerReport(name string, s *TensorStats) LayerReport {
	r := LayerReport{Name: name, Cosine: s.Cosine(), MaxAbsErr: s.MaxAbsErr(), NonFinite: s.NonFinite}
	if db := s.SQNR(); !math.IsInf(db, 0) {
		r.SQNRdB = &db
	}
	return r
}

// sqnrText formats an SQNR for the table, "exact" for +Inf and "-inf" for -Inf.
func (r LayerReport) sqnrText() string {
	switch {
	case r.SQNRdB != nil:
		return fmt.Sprintf("%.2f", *r.SQNRdB)
	case r.MaxAbsErr == 0:
		return "exact"
	}
	return "-inf"
}

// WriteTable prints the report for people: the summary, then the per-layer table if present.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "samples\t%d\n", r.Samples)
	percent := func(label string, v *float64) {
		if v != nil {
			fmt.Fprintf(tw, "%s\t%.2f%%\n", label, *v)
		}
	}
	percent("float top-1", r.FloatTop1)
	percent("int8 top-1", r.Int8Top1)
	percent("float top-5", r.FloatTop5)
	percent("int8 top-5", r.Int8Top5)
	if r.DropPP != nil {
		fmt.Fprintf(tw, "top-1 drop\t%.2f pp\n", *r.DropPP)
	}
	fmt.Fprintf(tw, "agreement\t%.2f%%\n", r.Agreement)
	for _, o := range r.Outputs {
		fmt.Fprintf(tw, "output %s\tSQNR %s dB, cosine %.6f, max abs err %.4g\n", o.Name, o.sqnrText(), o.Cosine, o.MaxAbsErr)
	}
	if r.FloatMsPerImage != nil && r.Int8MsPerImage != nil {
		fmt.Fprintf(tw, "float time\t%.4f ms/image\n", *r.FloatMsPerImage)
		fmt.Fprintf(tw, "int8 time\t%.4f ms/image\n", *r.Int8MsPerImage)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if r.Layers == nil {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TENSOR\tSQNR_DB\tCOSINE\tMAX_ABS_ERR")
	for _, l := range r.Layers {
		fmt.Fprintf(tw, "%s\t%s\t%.6f\t%.4g\n", l.Name, l.sqnrText(), l.Cosine, l.MaxAbsErr)
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(tw, "%s\tskipped: %s\t\t\n", s.Name, s.Reason)
	}
	return tw.Flush()
}
