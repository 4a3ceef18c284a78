package eval

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func TestWritePlotsWritesValidPNGs(t *testing.T) {
	f := newLinearFixture(t, 300, 10)
	m, q, data := f.float, f.q, f.data
	report := &Report{Layers: []LayerReport{{Name: "x", SQNRdB: ptr(45.5)}, {Name: "fc", SQNRdB: nil}}}
	dir := t.TempDir()
	files, err := WritePlots(dir, m, q, data, report)
	if err != nil {
		t.Fatal(err)
	}
	// One histogram per quantized tensor that the float model also has, plus the SQNR chart.
	want := 1
	for _, qt := range q.Tensors {
		if _, ok := m.Shapes[qt.Name]; ok {
			want++
		}
	}
	if len(files) != want {
		t.Errorf("%d plots, want %d", len(files), want)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// A 6x4 inch chart with bars and text compresses to well over 5 KB; a blank one does not.
		if len(raw) < 5000 {
			t.Errorf("%s has %d bytes, too small for a drawn chart", filepath.Base(f), len(raw))
		}
		img, err := png.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Errorf("%s is not a valid PNG: %v", filepath.Base(f), err)
			continue
		}
		if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 250 {
			t.Errorf("%s is %dx%d pixels, want at least 400x250", filepath.Base(f), b.Dx(), b.Dy())
		}
	}
}
