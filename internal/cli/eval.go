package cli

import (
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/qtool-dev/qtool/internal/dataset"
	"github.com/qtool-dev/qtool/internal/eval"
	"github.com/qtool-dev/qtool/internal/fold"
	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/gemm"
	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/qinfer"
)

func init() { extraCommands = append(extraCommands, newEvalCmd) }

type evalOptions struct {
	streams *Streams
	global  *globalOptions

	floatModel string
	quantModel string
	data       string
	labels     string
	perLayer   bool
	json       bool
	maxDrop    percentagePoints
	noTiming   bool
	batch      int
	limit      int
	threads    int
	plotDir    string

	// reportPath, when set, also receives the report as JSON (qtool pipeline writes eval.json).
	reportPath string
	// gateFlag names the budget's flag in the gate message: --max-drop, or the pipeline's
	// --max-drop-pp.
	gateFlag string
}

func newEvalCmd(s *Streams, g *globalOptions) *cobra.Command {
	o := &evalOptions{streams: s, global: g}
	cmd := &cobra.Command{
		Use:   "eval --float MODEL.json --quant MODEL.qmodel --data X [--labels Y]",
		Short: "Compare integer-only inference of a .qmodel with the float model",
		Long: `eval runs the float model and the quantized model on the same inputs, in batches, and
prints to stdout: the sample count, float and int8 top-1 accuracy (and top-5 for more than
five classes) in percent, the top-1 drop in percentage points, the agreement of the two
models' top classes, the error of each graph output, and the wall time per image of each
path. The quantized model runs on integers only, from the input quantization to the output
dequantization.

Without --labels only the agreement and the output error are reported. --per-layer also
compares every quantized tensor with the float tensor of the same name (SQNR in dB, cosine
similarity, maximum absolute error) and lists the tensors that have no float counterpart.
Give the fused model (qtool fuse) or the model it came from: fusing keeps the names of the
last fused node, so both name the same tensors. An SQNR of "exact" (null in JSON) means the
tensors are equal.

--json prints one object: samples, classes, float_top1, int8_top1, float_top5, int8_top5,
drop_pp, agreement, outputs, layers and skipped (with --per-layer), float_ms_per_image and
int8_ms_per_image (unless --no-timing). With --no-timing the output is the same bytes on
every run, whatever --batch and --threads.

--max-drop PP exits with status 3 when the top-1 drop exceeds PP percentage points.`,
		Example: `  qtool eval --float out/fused.json --quant out/model.qmodel \
    --data testdata/lenet-mnist/test_x.npy --labels testdata/lenet-mnist/test_y.npy
  qtool eval --float out/fused.json --quant out/model.qmodel --data x.npy --labels y.npy \
    --json --no-timing --max-drop 0.5 | jq .drop_pp`,
		Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			return runEval(o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.floatModel, "float", "", "float model JSON, fused or not (required)")
	f.StringVar(&o.quantModel, "quant", "", "quantized model, a .qmodel file (required)")
	f.StringVar(&o.data, "data", "", "test inputs: .npy [N,C,H,W] (float32 preprocessed, or uint8 raw) or .npz keyed by input name (required)")
	f.StringVar(&o.labels, "labels", "", "class labels: integer .npy [N], one per sample of --data")
	f.BoolVar(&o.perLayer, "per-layer", false, "also compare every quantized tensor with the float tensor of the same name")
	f.BoolVar(&o.json, "json", false, "print the report as JSON")
	f.Var(&o.maxDrop, "max-drop", "exit with status 3 when the top-1 drop exceeds this many percentage points (needs --labels)")
	f.BoolVar(&o.noTiming, "no-timing", false, "leave out the wall time per image, so the output is the same on every run")
	f.IntVar(&o.batch, "batch", eval.DefaultBatch, "samples per inference; changes speed and memory, not the results")
	f.IntVar(&o.limit, "limit", 0, "use only the first N samples (0: all)")
	f.IntVar(&o.threads, "threads", 0, "goroutines for each model's inference (0: all cores)")
	f.StringVar(&o.plotDir, "plot", "", "write PNG plots to this folder: a histogram of each activation with its quantized range, and per-layer SQNR (with --per-layer)")
	return cmd
}

// percentagePoints is the value of --max-drop: unset, or a finite number >= 0.
type percentagePoints struct {
	value float64
	set   bool
}

func (p *percentagePoints) String() string {
	if !p.set {
		return ""
	}
	return strconv.FormatFloat(p.value, 'g', -1, 64)
}

func (p *percentagePoints) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return fmt.Errorf("%q is not a number of percentage points >= 0", s)
	}
	p.value, p.set = v, true
	return nil
}

func (p *percentagePoints) Type() string { return "PP" }

func (o *evalOptions) check() error {
	switch {
	case o.floatModel == "":
		return usageError("eval: missing --float MODEL.json, the float model to compare with")
	case o.quantModel == "":
		return usageError("eval: missing --quant MODEL.qmodel, the quantized model to evaluate")
	case o.data == "":
		return usageError("eval: missing --data, the test inputs (.npy or .npz)")
	case o.batch <= 0 || o.limit < 0 || o.threads < 0:
		return usageError("eval: --batch must be positive, --limit and --threads non-negative (got %d, %d and %d)", o.batch, o.limit, o.threads)
	case o.maxDrop.set && o.labels == "":
		return usageError("eval: --max-drop needs --labels, because the drop is measured against the labels")
	}
	return nil
}

func runEval(o *evalOptions) error {
	if err := o.check(); err != nil {
		return err
	}
	log := o.global.log

	m, err := graph.Load(o.floatModel)
	if err != nil {
		return err
	}
	q, err := format.ReadQModel(o.quantModel)
	if err != nil {
		return err
	}
	if err := eval.CheckInputs(m, q); err != nil {
		return fmt.Errorf("%s and %s: %w", o.floatModel, o.quantModel, err)
	}
	o.checkSource(m, q)

	data, err := dataset.Open(m, o.data)
	if err != nil {
		return err
	}
	var labels []int64
	if o.labels != "" {
		if labels, err = dataset.Labels(o.labels, data.Len()); err != nil {
			return err
		}
	}
	ex, err := qinfer.New(q, qinfer.Options{Threads: o.threads})
	if err != nil {
		return fmt.Errorf("%s: %w", o.quantModel, err)
	}

	total := data.Len()
	if o.limit > 0 && o.limit < total {
		total = o.limit
	}
	log.Infof("evaluating %d samples of %s: float %s against int8 %s, batch %d", total, o.data, o.floatModel, o.quantModel, o.batch)
	log.Debugf("int8 kernels: %s", gemm.KernelPath())

	bar := newProgress(o.streams, o.global, total, "evaluating")
	report, err := eval.Compare(m, ex, data, eval.Options{
		Batch: o.batch, Limit: o.limit, Threads: o.threads, Labels: labels,
		PerLayer: o.perLayer, Timing: !o.noTiming,
		Progress: func(done int) { bar.Set(done) },
	})
	bar.Finish()
	if err != nil {
		return err
	}

	if o.json {
		err = writeJSON(o.streams.Out, report)
	} else {
		err = report.WriteTable(o.streams.Out)
	}
	if err != nil {
		return err
	}
	if o.reportPath != "" {
		if err := format.WriteFileAtomic(o.reportPath, func(w io.Writer) error { return writeJSON(w, report) }); err != nil {
			return err
		}
		log.Infof("wrote %s", o.reportPath)
	}
	if o.plotDir != "" {
		files, err := eval.WritePlots(o.plotDir, m, q, data, report)
		if err != nil {
			return err
		}
		log.Infof("wrote %d plots to %s", len(files), o.plotDir)
	}
	return o.checkGate(report)
}

// checkSource warns when the quantized model was not made from this float model or its fused
// form, because the comparison is then probably meaningless.
func (o *evalOptions) checkSource(m *graph.Model, q *format.QModel) {
	log := o.global.log
	hash := m.Hash()
	if q.SourceHash == hash {
		return
	}
	fused, _, err := fold.Fuse(m)
	if err == nil && fused.Hash() == q.SourceHash {
		log.Debugf("%s was quantized from the fused form of %s", o.quantModel, o.floatModel)
		return
	}
	log.Warnf("%s was quantized from a float model with hash %s, but %s has hash %s and is not its unfused source; check that you give the float model that was quantized",
		o.quantModel, q.SourceHash, o.floatModel, hash)
}

// checkGate returns an ExitGate error when --max-drop is set and the drop exceeds it.
func (o *evalOptions) checkGate(r *eval.Report) error {
	if !o.maxDrop.set || r.DropPP == nil || *r.DropPP <= o.maxDrop.value {
		return nil
	}
	gateFlag := o.gateFlag
	if gateFlag == "" {
		gateFlag = "--max-drop"
	}
	return &ExitError{Code: ExitGate, Err: fmt.Errorf(
		"quality gate failed: the int8 top-1 drop is %.2f pp (float %.2f%%, int8 %.2f%%), %.2f pp more than %s %s",
		*r.DropPP, *r.FloatTop1, *r.Int8Top1, *r.DropPP-o.maxDrop.value, gateFlag, o.maxDrop.String())}
}
