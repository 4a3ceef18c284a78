package cli

import (
	"fmt"
	"io"
	"os"
	"sort"
	"text/tabwriter"

	"github.com/go-viper/mapstructure/v2"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/qtool-dev/qtool/internal/calib"
	"github.com/qtool-dev/qtool/internal/dataset"
	"github.com/qtool-dev/qtool/internal/graph"
)

func init() { extraCommands = append(extraCommands, newCalibrateCmd) }

type calibrateOptions struct {
	streams *Streams
	global  *globalOptions

	model      string
	data       string
	output     string
	method     string
	percentile float64
	momentum   float64
	bins       int
	bits       int
	batch      int
	limit      int
	threads    int
	json       bool
}

func newCalibrateCmd(s *Streams, g *globalOptions) *cobra.Command {
	o := &calibrateOptions{streams: s, global: g}
	cmd := &cobra.Command{
		Use:   "calibrate MODEL --data X -o calib.json",
		Short: "Record the range of every activation over sample inputs",
		Long: `calibrate runs float inference over the calibration data and records the range
[alpha, beta] of every tensor (graph inputs and node outputs) with one observer per tensor:

  minmax      the smallest and largest finite value
  ema         min and max of each batch, averaged with --momentum (depends on batch order)
  percentile  the (100-p)th and p-th percentile of a histogram (--percentile, default 99.99)
  entropy     TensorRT's KL-divergence threshold over a 2048-bin histogram of |x|
  mse         the clipping range that minimises the mean squared quantization error

Calibrate the fused model (qtool fuse) that you will quantize: the table stores the model's
content hash and qtool quantize rejects a table made for another model. Every method but ema
gives the same table, byte for byte, for any --batch.

The config file may set a method per tensor:
  methods:
    fc2: minmax
    conv1: {method: percentile, percentile: 99.9}`,
		Example: `  qtool calibrate out/fused.json --data testdata/lenet-mnist/calib.npy --method entropy -o out/calib.json`,
		Args:    oneArg("MODEL", "the model's .json file, usually the fused one"),
		RunE: func(_ *cobra.Command, args []string) error {
			o.model = args[0]
			return runCalibrate(o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.data, "data", "", "calibration inputs: .npy [N,C,H,W] (float32 preprocessed, or uint8 raw), .npz keyed by input name, or a folder of PNG/JPEG images (see the config's preprocess block)")
	f.StringVarP(&o.output, "output", "o", "", "calibration table to write (JSON)")
	f.StringVar(&o.method, "method", "minmax", "range method: minmax, ema, percentile, entropy or mse")
	f.Float64Var(&o.percentile, "percentile", 0, "percentile method: the percentile p in (50, 100] (default 99.99)")
	f.Float64Var(&o.momentum, "momentum", 0, "ema method: weight of the running range in (0, 1) (default 0.99)")
	f.IntVar(&o.bins, "bins", 0, "histogram bins for percentile, entropy and mse (default 2048)")
	f.IntVar(&o.bits, "bits", 0, "entropy and mse: bit width of the target integer grid (default 8)")
	f.IntVar(&o.batch, "batch", 32, "samples per float inference; changes speed and memory, not the table")
	f.IntVar(&o.limit, "limit", 0, "use only the first N samples (0: all)")
	f.IntVar(&o.threads, "threads", 0, "goroutines for float inference (0: all cores)")
	f.BoolVar(&o.json, "json", false, "print the summary as JSON")
	return cmd
}

// methodSettings builds the settings of the global method from the flags that apply to it.
func (o *calibrateOptions) methodSettings() (calib.Settings, error) {
	s := calib.Settings{Method: calib.Method(o.method)}
	switch s.Method {
	case calib.MethodEMA:
		s.Momentum = o.momentum
	case calib.MethodPercentile:
		s.Percentile, s.Bins = o.percentile, o.bins
	case calib.MethodEntropy, calib.MethodMSE:
		s.Bins, s.Bits = o.bins, o.bits
	case calib.MethodMinMax:
	default:
		return s, usageError("--method %q is not a calibration method; use minmax, ema, percentile, entropy or mse", o.method)
	}
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return s, usageError("%v", err)
	}
	return s, nil
}

// perTensorSettings reads the config's methods map: tensor name to a method name, or to a map
// with the method and its settings.
func (o *calibrateOptions) perTensorSettings() (map[string]calib.Settings, error) {
	raw := o.global.viper.GetStringMap("methods")
	out := map[string]calib.Settings{}
	for name, v := range raw {
		var s calib.Settings
		switch x := v.(type) {
		case string:
			s.Method = calib.Method(x)
		case map[string]any:
			for key, val := range x {
				num, _ := toFloat(val)
				switch key {
				case "method":
					s.Method = calib.Method(fmt.Sprint(val))
				case "percentile":
					s.Percentile = num
				case "momentum":
					s.Momentum = num
				case "bins":
					s.Bins = int(num)
				case "bits":
					s.Bits = int(num)
				case "symmetric":
					s.Symmetric = fmt.Sprint(val) == "true"
				default:
					return nil, usageError("config %s: methods.%s: unknown setting %q", o.global.config, name, key)
				}
			}
		default:
			return nil, usageError("config %s: methods.%s must be a method name or a map of settings", o.global.config, name)
		}
		s = s.WithDefaults()
		if err := s.Validate(); err != nil {
			return nil, usageError("config %s: methods.%s: %v", o.global.config, name, err)
		}
		out[name] = s
	}
	return out, nil
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

func runCalibrate(o *calibrateOptions) error {
	if o.data == "" {
		return usageError("calibrate needs --data: the calibration inputs (.npy or .npz)")
	}
	if o.output == "" {
		return usageError("calibrate needs -o: the calibration table to write")
	}
	if o.batch <= 0 {
		return usageError("--batch must be positive, got %d", o.batch)
	}
	if o.limit < 0 || o.threads < 0 {
		return usageError("--limit and --threads must be 0 or more, got %d and %d", o.limit, o.threads)
	}
	settings, err := o.methodSettings()
	if err != nil {
		return err
	}
	perTensor, err := o.perTensorSettings()
	if err != nil {
		return err
	}

	m, err := graph.Load(o.model)
	if err != nil {
		return err
	}
	data, err := openData(m, o.data, o.global)
	if err != nil {
		return err
	}
	total := data.Len()
	if o.limit > 0 && o.limit < total {
		total = o.limit
	}
	o.global.log.Infof("calibrating %s on %d samples of %s with %s, batch %d", o.model, total, o.data, settings, o.batch)
	for _, name := range sortedKeys(perTensor) {
		o.global.log.Infof("  tensor %s: %s", name, perTensor[name])
	}

	bar := newProgress(o.streams, o.global, total, "calibrating")
	table, err := calib.Run(m, data, calib.RunOptions{
		Batch: o.batch, Limit: o.limit, Settings: settings, PerTensor: perTensor, Threads: o.threads,
		Progress: func(done int) { bar.Set(done) },
	})
	bar.Finish()
	if err != nil {
		return err
	}
	if err := table.Write(o.output); err != nil {
		return err
	}
	o.global.log.Infof("wrote %s", o.output)

	if o.json {
		return writeJSON(o.streams.Out, table)
	}
	printTable(o.streams.Out, m, table)
	return nil
}

// openData opens an .npy or .npz file, or a folder of images that the config's preprocess
// block describes.
func openData(m *graph.Model, path string, g *globalOptions) (calib.Source, error) {
	st, err := os.Stat(path)
	if err == nil && st.IsDir() {
		var opt dataset.ImageOptions
		strict := func(c *mapstructure.DecoderConfig) { c.ErrorUnused = true }
		if err := g.viper.UnmarshalKey("preprocess", &opt, strict); err != nil {
			return nil, usageError("config %s: preprocess: %v", g.config, err)
		}
		return dataset.OpenImages(m, path, opt)
	}
	return dataset.Open(m, path)
}

func printTable(w io.Writer, m *graph.Model, t *calib.Table) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TENSOR\tMETHOD\tALPHA\tBETA\tSAMPLES\tNAN\tINF")
	names := append([]string{}, inputNames(m)...)
	for _, n := range m.Nodes {
		names = append(names, n.Name)
	}
	for _, name := range names {
		e := t.Tensors[name]
		fmt.Fprintf(tw, "%s\t%s\t%.6g\t%.6g\t%d\t%d\t%d\n", name, e.Method, e.Alpha, e.Beta, e.Samples, e.NaN, e.Inf)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d tensors calibrated on %d samples\n", len(t.Tensors), t.Images)
}

func inputNames(m *graph.Model) []string {
	var names []string
	for _, in := range m.Inputs {
		names = append(names, in.Name)
	}
	return names
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// progress is a progress bar on stderr, or nothing when stderr is not a terminal or with --quiet.
type progress struct{ bar *progressbar.ProgressBar }

func newProgress(s *Streams, g *globalOptions, total int, what string) *progress {
	if !s.ErrIsTerminal || g.quiet {
		return &progress{}
	}
	return &progress{bar: progressbar.NewOptions(total,
		progressbar.OptionSetWriter(s.Err),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionSetItsString("samples"),
		progressbar.OptionShowIts(),
		progressbar.OptionClearOnFinish(),
	)}
}

// Set moves the bar to done samples.
func (p *progress) Set(done int) {
	if p.bar != nil {
		p.bar.Set(done)
	}
}

// Finish removes the bar from the terminal.
func (p *progress) Finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}
