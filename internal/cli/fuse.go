package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/qtool-dev/qtool/internal/fold"
	"github.com/qtool-dev/qtool/internal/graph"
)

func init() { extraCommands = append(extraCommands, newFuseCmd) }

type fuseOptions struct {
	streams *Streams
	global  *globalOptions

	model  string
	output string
	json   bool
}

func newFuseCmd(s *Streams, g *globalOptions) *cobra.Command {
	o := &fuseOptions{streams: s, global: g}
	cmd := &cobra.Command{
		Use:   "fuse MODEL.json -o OUT.json",
		Short: "Fold BatchNorm into conv2d and linear layers and fuse relu, relu6 and clip",
		Long: `fuse writes a float model in the form that qtool quantizes. Every BatchNorm after a
conv2d (any groups) or linear layer is folded into that layer's weight and bias, every relu,
relu6 and clip is fused into the conv2d, linear or add before it, and identity and dropout
nodes are dropped. A BatchNorm or activation stays in place when its producer's output has
another reader or is a graph output. The report says why for each such node.

The merged node keeps its weights and takes the name of the last node it absorbed
(conv1, bn1, relu1 become one conv2d named relu1), so graph outputs keep their names.

fuse writes the graph to OUT.json and the weights to OUT.npz beside it, creating the
folder if needed. Warnings, such as BatchNorm channels with zero running_var, go to stderr.`,
		Example: `  qtool fuse testdata/lenet-mnist/model.json -o out/lenet-fused.json
  qtool fuse model.json -o fused.json --json | jq '.changes[] | select(.action == "kept")'`,
		Args: oneArg("MODEL", "the float model's .json file"),
		RunE: func(_ *cobra.Command, args []string) error {
			o.model = args[0]
			return runFuse(o)
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "fused model's JSON file (required); the weights go to an .npz file of the same base name beside it")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the report as JSON instead of a table")
	return cmd
}

func runFuse(o *fuseOptions) error {
	if o.output == "" {
		return usageError("fuse: missing -o OUT.json, the file to write the fused model to")
	}
	if filepath.Ext(o.output) != ".json" {
		return usageError("fuse: output %q must be a .json file; the weights are written beside it as an .npz file", o.output)
	}
	weights := strings.TrimSuffix(o.output, ".json") + ".npz"

	m, err := graph.Load(o.model)
	if err != nil {
		return err
	}
	if err := checkFuseOutputs(o.model, m, o.output, weights); err != nil {
		return err
	}

	fused, report, err := fold.Fuse(m)
	if err != nil {
		return fmt.Errorf("%s: %w", o.model, err)
	}
	for _, w := range report.Warnings {
		o.global.log.Warnf("batchnorm %q channel %d: %s", w.Node, w.Channel, w.Message)
	}
	if err := os.MkdirAll(filepath.Dir(o.output), 0o755); err != nil {
		return fmt.Errorf("create the output folder: %w", err)
	}
	if err := fused.Save(o.output); err != nil {
		return fmt.Errorf("write the fused model: %w", err)
	}
	o.global.log.Infof("wrote %s and %s", o.output, weights)

	if o.json {
		return writeJSON(o.streams.Out, report)
	}
	printFuseReport(o.streams.Out, report)
	return nil
}

// checkFuseOutputs rejects an output path that would overwrite the input model's JSON file or
// its weights archive, which would leave the input model broken.
func checkFuseOutputs(modelPath string, m *graph.Model, outputs ...string) error {
	inputs := []string{modelPath, filepath.Join(m.Dir, m.Weights)}
	for _, out := range outputs {
		for _, in := range inputs {
			if sameFile(out, in) {
				return usageError("fuse: writing %s would overwrite the input model's file %s; choose another -o path", out, in)
			}
		}
	}
	return nil
}

// sameFile reports whether both paths exist and name the same file, through links included.
func sameFile(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}

// printFuseReport prints one row per folded, fused, dropped or kept node, then the copied
// params and a summary line.
func printFuseReport(w io.Writer, r *fold.Report) {
	if len(r.Changes) == 0 {
		fmt.Fprintln(w, "nothing to fold, fuse or drop")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ACTION\tNODE\tOP\tINTO\tRESULT\tDETAIL")
		for _, c := range r.Changes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Action, c.Node, c.Op, c.Into, c.Result, c.Detail)
		}
		tw.Flush()
	}
	for _, c := range r.CopiedParams {
		fmt.Fprintf(w, "copied shared param %q to %q for the %s of %s\n", c.From, c.To, c.Role, c.Node)
	}
	fmt.Fprintf(w, "%d folded, %d fused, %d dropped, %d kept, %d nodes before and %d after\n",
		r.Count(fold.ActionFolded), r.Count(fold.ActionFused), r.Count(fold.ActionDropped), r.Count(fold.ActionKept),
		r.NodesBefore, r.NodesAfter)
}
