package cli

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/qtool-dev/qtool/internal/affine"
	"github.com/qtool-dev/qtool/internal/calib"
	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/quant"
)

func init() { extraCommands = append(extraCommands, newQuantizeCmd) }

type quantizeOptions struct {
	streams *Streams
	global  *globalOptions

	model                string
	calib                string
	output               string
	weights              string
	activations          string
	symmetricActivations bool
	bits                 int
	widenWeightScale     bool
	pow2Scales           bool
	exclude              []string
	allowStaleCalib      bool
	json                 bool
}

func newQuantizeCmd(s *Streams, g *globalOptions) *cobra.Command {
	o := &quantizeOptions{streams: s, global: g}
	cmd := &cobra.Command{
		Use:   "quantize MODEL --calib calib.json -o model.qmodel",
		Short: "Write the int8 model: weights, biases, scales and multipliers",
		Long: `quantize turns a float model and its calibration table into a .qmodel file
(docs/format.md): int8 weights (symmetric, [-127, 127]), int32 biases with scale
s_in * s_w, one scale and zero point per activation tensor, and the fixed-point
multipliers that rescale every layer's int32 accumulators.

Quantize the model that you calibrated, normally the output of qtool fuse: the table
stores the model's content hash, and a table made for another model is an error unless
--allow-stale-calib. A bias that does not fit int32 is an error naming the layer and
channel; --widen-weight-scale enlarges that channel's weight scale until it fits.`,
		Example: `  qtool quantize out/fused.json --calib out/calib.json -o out/model.qmodel
  qtool quantize out/fused.json --calib out/calib.json -o out/model.qmodel --weights per-tensor --bits 6 --exclude fc2`,
		Args: oneArg("MODEL", "the fused model's .json file"),
		RunE: func(_ *cobra.Command, args []string) error {
			o.model = args[0]
			return runQuantize(o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.calib, "calib", "", "calibration table from qtool calibrate (JSON, required)")
	f.StringVarP(&o.output, "output", "o", "", "quantized model to write (.qmodel, required)")
	f.StringVar(&o.weights, "weights", string(quant.PerChannel), "weight scales: per-channel (one per output channel) or per-tensor")
	f.StringVar(&o.activations, "activations", string(quant.Uint8), "activation type: uint8 or int8")
	f.BoolVar(&o.symmetricActivations, "symmetric-activations", false, "fix activation zero points (0 for int8, 2^(bits-1) for uint8)")
	f.IntVar(&o.bits, "bits", quant.DefaultBits, fmt.Sprintf("bit width of weights and activations, %d to %d", affine.MinBits, affine.MaxBits))
	f.BoolVar(&o.widenWeightScale, "widen-weight-scale", false, "enlarge a channel's weight scale until its bias fits int32, instead of failing")
	f.BoolVar(&o.pow2Scales, "pow2-scales", false, "round every scale up to a power of two, so every rescale is a shift")
	f.StringSliceVar(&o.exclude, "exclude", nil, "conv2d and linear layers to keep in float, comma-separated")
	f.BoolVar(&o.allowStaleCalib, "allow-stale-calib", false, "accept a calibration table made for a model with another content hash")
	f.BoolVar(&o.json, "json", false, "print the summary as JSON")
	return cmd
}

// options checks the flag values and returns the quantization options.
func (o *quantizeOptions) options() (quant.Options, error) {
	if o.calib == "" {
		return quant.Options{}, usageError("quantize needs --calib: the calibration table from qtool calibrate")
	}
	if o.output == "" {
		return quant.Options{}, usageError("quantize needs -o: the .qmodel file to write")
	}
	if o.weights != string(quant.PerChannel) && o.weights != string(quant.PerTensor) {
		return quant.Options{}, usageError("--weights %q is invalid; use %s or %s", o.weights, quant.PerChannel, quant.PerTensor)
	}
	if o.activations != string(quant.Uint8) && o.activations != string(quant.Int8) {
		return quant.Options{}, usageError("--activations %q is invalid; use %s or %s", o.activations, quant.Uint8, quant.Int8)
	}
	if o.bits < affine.MinBits || o.bits > affine.MaxBits {
		return quant.Options{}, usageError("--bits %d is invalid; use %d to %d", o.bits, affine.MinBits, affine.MaxBits)
	}

	var exclude []string
	for _, name := range o.exclude {
		if name = strings.TrimSpace(name); name != "" {
			exclude = append(exclude, name)
		}
	}
	return quant.Options{
		Weights:              quant.Granularity(o.weights),
		Activations:          quant.ActivationType(o.activations),
		SymmetricActivations: o.symmetricActivations,
		Bits:                 o.bits,
		WidenWeightScale:     o.widenWeightScale,
		Pow2Scales:           o.pow2Scales,
		Exclude:              exclude,
		AllowStale:           o.allowStaleCalib,
	}, nil
}

// quantizeReport is the summary that quantize prints.
type quantizeReport struct {
	Model     string `json:"model"`
	Output    string `json:"output"`
	FileBytes int64  `json:"file_bytes"`
	*quant.Summary
}

func runQuantize(o *quantizeOptions) error {
	opt, err := o.options()
	if err != nil {
		return err
	}

	m, err := graph.Load(o.model)
	if err != nil {
		return err
	}
	warnIfUnfused(o.global.log, o.model, m)
	table, err := calib.ReadTable(o.calib)
	if err != nil {
		return err
	}
	o.global.log.Infof("quantizing %s with %s: %d-bit %s weights, %d-bit %s %s activations%s",
		o.model, o.calib, opt.Bits, opt.Weights, opt.Bits, describeSymmetry(opt.SymmetricActivations), opt.Activations, describePow2(opt.Pow2Scales))
	if table.ModelHash != m.Hash() && opt.AllowStale {
		o.global.log.Warnf("the calibration table %s was made for model %s, not %s (%s); using it because of --allow-stale-calib", o.calib, table.ModelHash, m.Hash(), o.model)
	}

	q, sum, err := quant.Quantize(m, table, opt)
	if err != nil {
		return fmt.Errorf("quantize %s with %s: %w", o.model, o.calib, err)
	}
	for _, w := range sum.WidenedChannels {
		o.global.log.Warnf("layer %s channel %d: widened the weight scale from %g to %g so that bias %g fits int32", w.Layer, w.Channel, w.ScaleBefore, w.ScaleAfter, w.Bias)
	}
	if err := format.WriteQModel(o.output, q); err != nil {
		return err
	}
	st, err := os.Stat(o.output)
	if err != nil {
		return err
	}
	o.global.log.Infof("wrote %s", o.output)

	report := &quantizeReport{Model: o.model, Output: o.output, FileBytes: st.Size(), Summary: sum}
	if o.json {
		return writeJSON(o.streams.Out, report)
	}
	report.print(o.streams.Out)
	return nil
}

// warnIfUnfused suggests qtool fuse when the model still has nodes that fusing would remove:
// each one then costs its own requantization and rounding.
func warnIfUnfused(log *Logger, path string, m *graph.Model) {
	count := 0
	for _, n := range m.Nodes {
		switch n.Op {
		case graph.OpBatchNorm, graph.OpRelu, graph.OpRelu6, graph.OpClip, graph.OpIdentity, graph.OpDropout:
			count++
		}
	}
	if count > 0 {
		log.Warnf("%s has %d batchnorm, activation or identity nodes; run qtool fuse first so that they fold into the layers before them", path, count)
	}
}

func describeSymmetry(symmetric bool) string {
	if symmetric {
		return "symmetric"
	}
	return "asymmetric"
}

func describePow2(pow2 bool) string {
	if pow2 {
		return ", power-of-two scales"
	}
	return ""
}

func (r *quantizeReport) print(w io.Writer) {
	fmt.Fprintf(w, "quantized %s to %s\n", r.Model, r.Output)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(label, value, note string) {
		line := label + "\t" + value
		if note != "" {
			line += "\t" + note
		}
		fmt.Fprintln(tw, line)
	}
	row("layers quantized", strconv.Itoa(len(r.QuantizedLayers)), strings.Join(r.QuantizedLayers, ", "))
	row("layers kept in float", strconv.Itoa(len(r.ExcludedLayers)), strings.Join(r.ExcludedLayers, ", "))
	row("float weights", fmt.Sprintf("%d bytes", r.FloatWeightBytes), "")
	row("quantized arrays", fmt.Sprintf("%d bytes", r.QuantizedWeightBytes), fmt.Sprintf("%.2fx smaller", r.CompressionRatio))
	row(".qmodel file", fmt.Sprintf("%d bytes", r.FileBytes), fmt.Sprintf("%.2fx smaller than the float weights", float64(r.FloatWeightBytes)/float64(max(r.FileBytes, 1))))
	row("widened channels", strconv.Itoa(len(r.WidenedChannels)), "")
	tw.Flush()

	if len(r.WidenedChannels) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tCHANNEL\tBIAS\tSCALE BEFORE\tSCALE AFTER\tALL-ZERO WEIGHTS")
	for _, c := range r.WidenedChannels {
		fmt.Fprintf(tw, "%s\t%d\t%g\t%g\t%g\t%v\n", c.Layer, c.Channel, c.Bias, c.ScaleBefore, c.ScaleAfter, c.AllZero)
	}
	tw.Flush()
}
