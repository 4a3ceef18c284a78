package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/tensor"
)

type inspectOptions struct {
	streams *Streams
	global  *globalOptions

	path string
	json bool
}

// inspectQModel prints a .qmodel file; the quantize command sets it.
var inspectQModel func(o *inspectOptions) error

func newInspectCmd(s *Streams, g *globalOptions) *cobra.Command {
	o := &inspectOptions{streams: s, global: g}
	cmd := &cobra.Command{
		Use:   "inspect MODEL",
		Short: "Print a model's nodes, ops, shapes, parameter counts and MACs",
		Long: `inspect prints the graph of a float model (.json) or a quantized model (.qmodel):
every node with its op, inputs, output shape (batch 1), parameter count, multiply-accumulates
and fused activation, then the totals. For a .qmodel it also prints every tensor's dtype,
shape, scale and zero point.`,
		Example: `  qtool inspect testdata/lenet-mnist/model.json
  qtool inspect --json out/model.qmodel | jq .tensors`,
		Args: oneArg("MODEL", "a .json model or a .qmodel file"),
		RunE: func(_ *cobra.Command, args []string) error {
			o.path = args[0]
			return runInspect(o)
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON instead of a table")
	return cmd
}

func runInspect(o *inspectOptions) error {
	if strings.HasSuffix(o.path, ".qmodel") {
		if inspectQModel == nil {
			return fmt.Errorf("%s: reading .qmodel files is not built in", o.path)
		}
		return inspectQModel(o)
	}
	m, err := graph.Load(o.path)
	if err != nil {
		return err
	}
	report := describeModel(m)
	if o.json {
		return writeJSON(o.streams.Out, report)
	}
	report.printTable(o.streams.Out)
	return nil
}

type nodeReport struct {
	Name       string   `json:"name"`
	Op         string   `json:"op"`
	Inputs     []string `json:"inputs"`
	Shape      []int    `json:"shape"`
	Params     int      `json:"params"`
	MACs       int64    `json:"macs"`
	Activation string   `json:"activation,omitempty"`
}

type modelReport struct {
	Name    string       `json:"name,omitempty"`
	Hash    string       `json:"hash"`
	Inputs  []nodeReport `json:"inputs"`
	Nodes   []nodeReport `json:"nodes"`
	Outputs []string     `json:"outputs"`
	Params  int          `json:"total_params"`
	MACs    int64        `json:"total_macs"`
}

func describeModel(m *graph.Model) *modelReport {
	r := &modelReport{Name: m.Name, Hash: m.Hash(), Outputs: m.Outputs}
	for _, in := range m.Inputs {
		r.Inputs = append(r.Inputs, nodeReport{Name: in.Name, Op: "input", Shape: in.Shape})
	}
	for _, n := range m.Nodes {
		nr := nodeReport{Name: n.Name, Op: string(n.Op), Inputs: n.Inputs, Shape: m.Shapes[n.Name],
			Params: m.ParamCount(n), MACs: m.MACs(n), Activation: describeActivation(n.Attrs.Activation)}
		r.Params += nr.Params
		r.MACs += nr.MACs
		r.Nodes = append(r.Nodes, nr)
	}
	return r
}

func describeActivation(a graph.Activation) string {
	if a.Kind == graph.ActClip {
		return fmt.Sprintf("clip(%g, %g)", a.Min, a.Max)
	}
	return string(a.Kind)
}

func (r *modelReport) printTable(w io.Writer) {
	if r.Name != "" {
		fmt.Fprintf(w, "model %s\n", r.Name)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tOP\tINPUTS\tSHAPE\tPARAMS\tMACS\tACTIVATION")
	for _, in := range r.Inputs {
		fmt.Fprintf(tw, "%s\tinput\t\t%s\t\t\t\n", in.Name, tensor.ShapeString(in.Shape))
	}
	for _, n := range r.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", n.Name, n.Op, strings.Join(n.Inputs, ","),
			tensor.ShapeString(n.Shape), n.Params, n.MACs, n.Activation)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d nodes, %d parameters, %d MACs per sample, outputs %s\n", len(r.Nodes), r.Params, r.MACs, strings.Join(r.Outputs, ", "))
}

// writeJSON prints v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
