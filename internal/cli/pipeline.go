package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/qtool-dev/qtool/internal/dataset"
	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/quant"
)

func init() { extraCommands = append(extraCommands, newPipelineCmd) }

type pipelineOptions struct {
	streams *Streams
	global  *globalOptions

	model      string
	out        string
	calibData  string
	evalData   string
	evalLabels string
	json       bool

	// calibrate
	method     string
	percentile float64
	momentum   float64
	bins       int
	batch      int
	limit      int
	threads    int

	// quantize
	weights              string
	activations          string
	symmetricActivations bool
	bits                 int
	widenWeightScale     bool
	pow2Scales           bool
	exclude              []string

	// eval
	evalLimit int
	perLayer  bool
	noTiming  bool
	maxDrop   percentagePoints
	plots     bool
}

func newPipelineCmd(s *Streams, g *globalOptions) *cobra.Command {
	o := &pipelineOptions{streams: s, global: g}
	cmd := &cobra.Command{
		Use:   "pipeline -c CONFIG.yaml",
		Short: "Run fuse, calibrate, quantize and eval in one go from a config file",
		Long: `pipeline runs the four steps on one model and writes every intermediate file to --out:

  fused.json, fused.npz   qtool fuse MODEL -o OUT/fused.json
  calib.json              qtool calibrate OUT/fused.json --data CALIB_DATA
  model.qmodel            qtool quantize OUT/fused.json --calib OUT/calib.json
  eval.json               qtool eval --float OUT/fused.json --quant OUT/model.qmodel --data EVAL_DATA
  plots/*.png             with --plots: activation histograms and per-layer SQNR

It prints each step's summary and ends with the eval table (or, with --json, prints only the
eval report as JSON). It exits with status 3 when the top-1 drop exceeds --max-drop-pp.

Every config key is a flag name with - written as _, and has a QTOOL_ environment variable:
calib_data, QTOOL_CALIB_DATA, --calib-data. Flags win over variables, which win over the file.
configs/example.yaml documents every key.`,
		Example: `  qtool pipeline -c configs/lenet-mnist.yaml
  qtool pipeline -c configs/lenet-mnist.yaml --method percentile --out out/percentile --plots`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return runPipeline(o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.model, "model", "", "float model JSON (required)")
	f.StringVar(&o.out, "out", "out", "folder for the fused model, calibration table, .qmodel, report and plots")
	f.StringVar(&o.calibData, "calib-data", "", "calibration inputs: .npy, .npz or a folder of images (required)")
	f.StringVar(&o.evalData, "eval-data", "", "test inputs: .npy or .npz (required)")
	f.StringVar(&o.evalLabels, "eval-labels", "", "test labels: integer .npy, one per test sample")
	f.BoolVar(&o.json, "json", false, "print only the eval report, as JSON")

	f.StringVar(&o.method, "method", "minmax", "range method: minmax, ema, percentile, entropy or mse")
	f.Float64Var(&o.percentile, "percentile", 0, "percentile method: the percentile p in (50, 100] (default 99.99)")
	f.Float64Var(&o.momentum, "momentum", 0, "ema method: weight of the running range in (0, 1) (default 0.99)")
	f.IntVar(&o.bins, "bins", 0, "histogram bins for percentile, entropy and mse (default 2048)")
	f.IntVar(&o.batch, "batch", 32, "samples per inference in calibrate and eval; changes speed, not results")
	f.IntVar(&o.limit, "limit", 0, "calibrate on the first N samples only (0: all)")
	f.IntVar(&o.threads, "threads", 0, "goroutines for inference (0: all cores)")

	f.StringVar(&o.weights, "weights", string(quant.PerChannel), "weight scales: per-channel or per-tensor")
	f.StringVar(&o.activations, "activations", string(quant.Uint8), "activation type: uint8 or int8")
	f.BoolVar(&o.symmetricActivations, "symmetric-activations", false, "fix activation zero points")
	f.IntVar(&o.bits, "bits", quant.DefaultBits, "bit width of weights and activations, 2 to 8")
	f.BoolVar(&o.widenWeightScale, "widen-weight-scale", false, "enlarge a channel's weight scale until its bias fits int32, instead of failing")
	f.BoolVar(&o.pow2Scales, "pow2-scales", false, "round every scale up to a power of two")
	f.StringSliceVar(&o.exclude, "exclude", nil, "conv2d and linear layers to keep in float, comma-separated")

	f.IntVar(&o.evalLimit, "eval-limit", 0, "evaluate the first N test samples only (0: all)")
	f.BoolVar(&o.perLayer, "per-layer", true, "compare every quantized tensor with the float tensor of the same name")
	f.BoolVar(&o.noTiming, "no-timing", false, "leave out the wall time per image")
	f.Var(&o.maxDrop, "max-drop-pp", "accuracy budget: exit with status 3 when the top-1 drop exceeds this many percentage points")
	f.BoolVar(&o.plots, "plots", false, "write PNG plots to OUT/plots: activation histograms with their quantized range, and per-layer SQNR")
	return cmd
}

func (o *pipelineOptions) check() error {
	switch {
	case o.model == "":
		return usageError("pipeline: missing the model (config key model, or --model)")
	case o.calibData == "":
		return usageError("pipeline: missing the calibration data (config key calib_data, or --calib-data)")
	case o.evalData == "":
		return usageError("pipeline: missing the test data (config key eval_data, or --eval-data)")
	case o.maxDrop.set && o.evalLabels == "":
		return usageError("pipeline: max_drop_pp needs eval_labels, because the drop is measured against the labels")
	case o.batch <= 0:
		return usageError("pipeline: --batch %d is invalid; use a positive number of samples", o.batch)
	case o.limit < 0:
		return usageError("pipeline: --limit %d is invalid; use 0 for all samples or a positive count", o.limit)
	case o.evalLimit < 0:
		return usageError("pipeline: --eval-limit %d is invalid; use 0 for all samples or a positive count", o.evalLimit)
	case o.threads < 0:
		return usageError("pipeline: --threads %d is invalid; use 0 for all cores or a positive count", o.threads)
	}
	return nil
}

// checkEvalData reads the test data and labels against the model before any step runs, so
// that a wrong eval_data or eval_labels fails at once instead of after calibration.
// NOTE: eval reads the data again later, so a large test set is read twice.
func (o *pipelineOptions) checkEvalData() error {
	m, err := graph.Load(o.model)
	if err != nil {
		return err
	}
	data, err := dataset.Open(m, o.evalData)
	if err != nil {
		return fmt.Errorf("pipeline: eval_data: %w", err)
	}
	if o.evalLabels == "" {
		return nil
	}
	if _, err := dataset.Labels(o.evalLabels, data.Len()); err != nil {
		return fmt.Errorf("pipeline: eval_labels does not fit eval_data %s: %w", o.evalData, err)
	}
	return nil
}

func runPipeline(o *pipelineOptions) error {
	if err := o.check(); err != nil {
		return err
	}
	if err := o.checkEvalData(); err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("create the output folder %s: %w", o.out, err)
	}
	fused := filepath.Join(o.out, "fused.json")
	table := filepath.Join(o.out, "calib.json")
	qmodel := filepath.Join(o.out, "model.qmodel")

	// With --json only the eval report goes to stdout, so that scripts can parse it.
	stepOut := o.streams.Out
	if o.json {
		stepOut = io.Discard
	}
	steps := &Streams{In: o.streams.In, Out: stepOut, Err: o.streams.Err, ErrIsTerminal: o.streams.ErrIsTerminal}
	header := func(name string) {
		if !o.json {
			fmt.Fprintf(o.streams.Out, "== %s ==\n", name)
		}
	}

	header("fuse")
	if err := runFuse(&fuseOptions{streams: steps, global: o.global, model: o.model, output: fused}); err != nil {
		return err
	}

	header("calibrate")
	err := runCalibrate(&calibrateOptions{streams: steps, global: o.global, model: fused, data: o.calibData, output: table,
		method: o.method, percentile: o.percentile, momentum: o.momentum, bins: o.bins, bits: o.bits,
		batch: o.batch, limit: o.limit, threads: o.threads})
	if err != nil {
		return err
	}

	header("quantize")
	err = runQuantize(&quantizeOptions{streams: steps, global: o.global, model: fused, calib: table, output: qmodel,
		weights: o.weights, activations: o.activations, symmetricActivations: o.symmetricActivations, bits: o.bits,
		widenWeightScale: o.widenWeightScale, pow2Scales: o.pow2Scales, exclude: o.exclude})
	if err != nil {
		return err
	}

	header("eval")
	ev := &evalOptions{streams: o.streams, global: o.global, floatModel: fused, quantModel: qmodel, data: o.evalData,
		labels: o.evalLabels, perLayer: o.perLayer, json: o.json, maxDrop: o.maxDrop, noTiming: o.noTiming,
		batch: o.batch, limit: o.evalLimit, threads: o.threads, reportPath: filepath.Join(o.out, "eval.json"),
		gateFlag: "--max-drop-pp"}
	if o.plots {
		ev.plotDir = filepath.Join(o.out, "plots")
	}
	return runEval(ev)
}
