package dataset

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/internal/graph"
	"github.com/qtool-dev/qtool/internal/testutil"
)

func leNet(t *testing.T) (*graph.Model, string) {
	t.Helper()
	dir := filepath.Join(testutil.RepoRoot(t), "testdata", "lenet-mnist")
	m, err := graph.Load(filepath.Join(dir, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	return m, dir
}

func TestUint8DataIsPreprocessed(t *testing.T) {
	m, dir := leNet(t)
	d, err := Open(m, filepath.Join(dir, "calib.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 500 {
		t.Fatalf("Len = %d, want 500", d.Len())
	}
	b, err := d.Batch(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	x := b["image"].Data
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range x {
		lo, hi = min(lo, float64(v)), max(hi, float64(v))
	}
	// (0/255 - 0.1307)/0.3081 and (255/255 - 0.1307)/0.3081.
	if math.Abs(lo-(-0.4242129)) > 1e-6 || math.Abs(hi-2.8214865) > 1e-6 {
		t.Errorf("preprocessed range [%v, %v], want [-0.4242129, 2.8214865]", lo, hi)
	}
}

func TestImageFolderMatchesNPY(t *testing.T) {
	m, dir := leNet(t)
	d, err := Open(m, filepath.Join(dir, "calib.npy"))
	if err != nil {
		t.Fatal(err)
	}
	raw := d.arrays["image"].Data.([]uint8)

	imgDir := t.TempDir()
	for i := range 5 {
		img := image.NewGray(image.Rect(0, 0, 28, 28))
		for p := range 28 * 28 {
			img.SetGray(p%28, p/28, color.Gray{Y: raw[i*784+p]})
		}
		f, _ := os.Create(filepath.Join(imgDir, string(rune('a'+i))+".png"))
		png.Encode(f, img)
		f.Close()
	}
	os.WriteFile(filepath.Join(imgDir, "notes.txt"), []byte("not an image"), 0o644)

	folder, err := OpenImages(m, imgDir, ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if folder.Len() != 5 {
		t.Fatalf("Len = %d, want 5 (the .txt file is skipped)", folder.Len())
	}
	got, err := folder.Batch(0, 5)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := d.Batch(0, 5)
	if diff := testutil.MaxAbsDiff(t, got["image"].Data, want["image"].Data); diff != 0 {
		t.Errorf("images differ from the NPY samples by up to %g, want 0", diff)
	}
}

func TestImageFolderRejectsBadFile(t *testing.T) {
	m, _ := leNet(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "broken.png"), []byte("\x89PNG\r\n\x1a\nshort"), 0o644)
	folder, err := OpenImages(m, dir, ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = folder.Batch(0, 1)
	if err == nil || !strings.Contains(err.Error(), "broken.png") {
		t.Errorf("error %v does not name broken.png", err)
	}
}

func TestLabelsCountMismatch(t *testing.T) {
	_, dir := leNet(t)
	_, err := Labels(filepath.Join(dir, "test_y.npy"), 1999)
	if err == nil || !strings.Contains(err.Error(), "2000 labels for 1999 samples") {
		t.Errorf("error %v does not report the count mismatch", err)
	}
}
