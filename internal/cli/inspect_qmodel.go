package cli

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/tensor"
)

func init() { inspectQModel = runInspectQModel }

// qmodelReport describes a .qmodel file as inspect prints it.
type qmodelReport struct {
	File            string           `json:"file"`
	Version         int              `json:"version"`
	Name            string           `json:"name,omitempty"`
	SourceHash      string           `json:"source_hash"`
	Rounding        string           `json:"rounding"`
	RequantRounding string           `json:"requant_rounding"`
	AddLeftShift    int              `json:"add_left_shift"`
	Scheme          format.QScheme   `json:"scheme"`
	Inputs          []format.QInput  `json:"inputs"`
	Outputs         []string         `json:"outputs"`
	Nodes           []*format.QNode  `json:"nodes"`
	Tensors         []format.QTensor `json:"tensors"`
	Arrays          []arrayReport    `json:"arrays"`
}

// arrayReport describes one stored array.
type arrayReport struct {
	Name  string `json:"name"`
	DType string `json:"dtype"`
	Shape []int  `json:"shape"`
	Bytes int    `json:"bytes"`
}

func runInspectQModel(o *inspectOptions) error {
	q, err := format.ReadQModel(o.path)
	if err != nil {
		return err
	}

	r := &qmodelReport{
		File: o.path, Version: q.Version, Name: q.Name, SourceHash: q.SourceHash, Rounding: q.Rounding,
		RequantRounding: q.RequantRounding, AddLeftShift: q.AddLeftShift, Scheme: q.Scheme,
		Inputs: q.Inputs, Outputs: q.Outputs, Nodes: q.Nodes, Tensors: q.Tensors, Arrays: []arrayReport{},
	}
	for _, name := range slices.Sorted(maps.Keys(q.Arrays)) {
		a := q.Arrays[name]
		size := 4
		if a.DType == format.DTypeI8 || a.DType == format.DTypeU8 {
			size = 1
		}
		r.Arrays = append(r.Arrays, arrayReport{Name: name, DType: a.DType, Shape: a.Shape, Bytes: size * tensor.Size(a.Shape)})
	}

	if o.json {
		return writeJSON(o.streams.Out, r)
	}
	r.print(o.streams.Out)
	return nil
}

func (r *qmodelReport) print(w io.Writer) {
	s := r.Scheme
	weights := "per-tensor"
	if s.WeightPerChannel {
		weights = "per-channel"
	}
	activations := "uint8"
	if s.ActivationSigned {
		activations = "int8"
	}
	excluded := "none"
	if len(s.Excluded) > 0 {
		excluded = strings.Join(s.Excluded, ", ")
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "file\t%s\n", r.File)
	fmt.Fprintf(tw, "version\t%d\n", r.Version)
	if r.Name != "" {
		fmt.Fprintf(tw, "model\t%s\n", r.Name)
	}
	fmt.Fprintf(tw, "source hash\t%s\n", r.SourceHash)
	fmt.Fprintf(tw, "rounding\t%s (quantize), %s (requantize), add left shift %d\n", r.Rounding, r.RequantRounding, r.AddLeftShift)
	fmt.Fprintf(tw, "weights\t%d-bit %s, symmetric\n", s.WeightBits, weights)
	fmt.Fprintf(tw, "activations\t%d-bit %s, %s\n", s.ActivationBits, activations, describeSymmetry(s.ActivationSymmetric))
	fmt.Fprintf(tw, "power-of-two scales\t%v\n", s.Pow2Scales)
	fmt.Fprintf(tw, "kept in float\t%s\n", excluded)
	if s.CalibMethod != "" {
		fmt.Fprintf(tw, "calibration\t%s\n", s.CalibMethod)
	}
	fmt.Fprintf(tw, "outputs\t%s\n", strings.Join(r.Outputs, ", "))
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tOP\tINPUTS\tACTIVATION\tCLAMP\tARRAYS")
	for _, n := range r.Nodes {
		op := n.Op
		if n.Float {
			op += " (float)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t[%d, %d]\t%s\n", n.Name, op, strings.Join(n.Inputs, ","), n.Activation, n.ClampMin, n.ClampMax, strings.Join(nodeArrays(n), ","))
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TENSOR\tDTYPE\tSHAPE\tSCALE\tZERO POINT\tRANGE\tQFORMAT")
	for _, t := range r.Tensors {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t[%d, %d]\t%s\n", t.Name, t.DType, tensor.ShapeString(t.Shape), formatScale(t.Scale), t.ZeroPoint, t.QMin, t.QMax, t.QFormat)
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ARRAY\tDTYPE\tSHAPE\tBYTES")
	total := 0
	for _, a := range r.Arrays {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", a.Name, a.DType, tensor.ShapeString(a.Shape), a.Bytes)
		total += a.Bytes
	}
	tw.Flush()
	fmt.Fprintf(w, "%d nodes, %d tensors, %d arrays of %d bytes\n", len(r.Nodes), len(r.Tensors), len(r.Arrays), total)
}

// nodeArrays returns the names of the arrays a node uses.
func nodeArrays(n *format.QNode) []string {
	var names []string
	for _, name := range []string{n.Weight, n.Bias, n.WeightScale, n.Mult, n.Shift, n.InputMult, n.InputShift} {
		if name != "" {
			names = append(names, name)
		}
	}
	for _, role := range slices.Sorted(maps.Keys(n.FloatParams)) {
		names = append(names, n.FloatParams[role])
	}
	return names
}

// formatScale returns a float32 scale in its shortest form, followed by (2^k) when it is a
// power of two.
func formatScale(s float32) string {
	text := strconv.FormatFloat(float64(s), 'g', -1, 32)
	if frac, exp := math.Frexp(float64(s)); frac == 0.5 {
		text += fmt.Sprintf(" (2^%d)", exp-1)
	}
	return text
}
