package eval

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/infer"
)

// rangeColor marks the quantized range in the histograms.
var rangeColor = color.RGBA{R: 200, G: 30, B: 30, A: 255}

// PlotSamples is the number of samples whose float activations the histograms show.
const PlotSamples = 256

// WritePlots writes PNG plots to dir: for every quantized tensor with a float tensor of the same
// name, a histogram of its float values over the first PlotSamples samples with the quantized
// range [scale*(qmin-zero_point), scale*(qmax-zero_point)] marked; and, when the report has
// per-layer results, a bar chart of their SQNR. It returns the files written, in order.
func WritePlots(dir string, m *graph.Model, q *format.QModel, data Source, r *Report) (written []string, err error) {
	// gonum/plot v0.17 panics on some degenerate data ranges (a log axis whose minimum is 0),
	// so a panic while drawing becomes an error instead of crashing the command.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("eval: drawing the plots in %s failed: %v", dir, p)
		}
	}()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("eval: create the plot folder: %w", err)
	}

	values, err := floatValues(m, q, data)
	if err != nil {
		return nil, err
	}
	for i, qt := range q.Tensors {
		vals, ok := values[qt.Name]
		if !ok {
			continue
		}
		lo := float64(qt.Scale) * float64(qt.QMin-qt.ZeroPoint)
		hi := float64(qt.Scale) * float64(qt.QMax-qt.ZeroPoint)
		p, err := histogramPlot(qt.Name, vals, lo, hi)
		if err != nil {
			return written, err
		}
		path := filepath.Join(dir, fmt.Sprintf("hist-%02d-%s.png", i, fileSafe(qt.Name)))
		if err := savePNG(p, path, 6*vg.Inch, 4*vg.Inch); err != nil {
			return written, err
		}
		written = append(written, path)
	}

	if len(r.Layers) > 0 {
		p, err := sqnrPlot(r.Layers)
		if err != nil {
			return written, err
		}
		path := filepath.Join(dir, "sqnr.png")
		width := max(6*vg.Inch, vg.Length(len(r.Layers))*0.6*vg.Inch)
		if err := savePNG(p, path, width, 4*vg.Inch); err != nil {
			return written, err
		}
		written = append(written, path)
	}
	return written, nil
}

// floatValues runs the float model on the first PlotSamples samples and returns the values of
// every tensor the quantized model also has.
func floatValues(m *graph.Model, q *format.QModel, data Source) (map[string][]float64, error) {
	n := min(PlotSamples, data.Len())
	inputs, err := data.Batch(0, n)
	if err != nil {
		return nil, err
	}
	all, err := infer.Run(m, inputs, infer.Options{KeepAll: true})
	if err != nil {
		return nil, err
	}
	out := map[string][]float64{}
	for _, qt := range q.Tensors {
		t, ok := all[qt.Name]
		if !ok {
			continue
		}
		vals := make([]float64, 0, t.Len())
		for _, v := range t.Data {
			if f := float64(v); !math.IsNaN(f) && !math.IsInf(f, 0) {
				vals = append(vals, f)
			}
		}
		if len(vals) > 0 {
			out[qt.Name] = vals
		}
	}
	return out, nil
}

func histogramPlot(name string, vals []float64, lo, hi float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: float values and the quantized range [%.4g, %.4g]", name, lo, hi)
	p.X.Label.Text = "value"
	p.Y.Label.Text = "count (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}

	h, err := plotter.NewHist(plotter.Values(vals), 100)
	if err != nil {
		return nil, fmt.Errorf("eval: histogram of %s: %w", name, err)
	}
	h.LogY = true
	p.Add(h)

	top := 1.0
	for _, b := range h.Bins {
		top = max(top, b.Weight)
	}
	for _, x := range []float64{lo, hi} {
		line, err := plotter.NewLine(plotter.XYs{{X: x, Y: 1}, {X: x, Y: top}})
		if err != nil {
			return nil, err
		}
		line.Color = rangeColor
		line.Width = vg.Points(2)
		line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(line)
	}
	legend := plotter.DefaultLineStyle
	legend.Color = rangeColor
	p.Legend.Add("quantized range", &plotter.Line{LineStyle: legend})
	p.Legend.Top = true
	return p, nil
}

func sqnrPlot(layers []LayerReport) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "SQNR of each quantized tensor against float (dB, higher is better)"
	p.Y.Label.Text = "SQNR (dB)"

	vals := make(plotter.Values, len(layers))
	names := make([]string, len(layers))
	for i, l := range layers {
		names[i] = l.Name
		if l.SQNRdB != nil {
			vals[i] = *l.SQNRdB
		}
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(20))
	if err != nil {
		return nil, fmt.Errorf("eval: SQNR chart: %w", err)
	}
	p.Add(bars)
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = math.Pi / 4
	p.X.Tick.Label.XAlign = -1
	return p, nil
}

func savePNG(p *plot.Plot, path string, w, h vg.Length) error {
	wt, err := p.WriterTo(w, h, "png")
	if err != nil {
		return fmt.Errorf("eval: render %s: %w", path, err)
	}
	return format.WriteFileAtomic(path, func(out io.Writer) error {
		_, err := wt.WriteTo(out)
		return err
	})
}

// fileSafe replaces characters that do not belong in a file name.
func fileSafe(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, name)
}
