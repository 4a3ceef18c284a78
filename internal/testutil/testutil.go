// Package testutil builds small models and NPY files on disk for tests.
package testutil

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/tensor"
)

// WriteNPY writes a float32 tensor as an NPY file.
func WriteNPY(t testing.TB, path string, x *tensor.Tensor) {
	t.Helper()
	var buf bytes.Buffer
	if err := format.EncodeNPY(&buf, x); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// RawNPY builds an NPY file from a header dictionary and raw data bytes, for tests of dtypes,
// byte orders and malformed headers.
func RawNPY(dict string, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	header := dict + "\n"
	binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

// Random returns a tensor of the given shape with values uniform in [lo, hi), from a seeded source.
func Random(rng *rand.Rand, lo, hi float32, shape ...int) *tensor.Tensor {
	x := tensor.New(shape...)
	for i := range x.Data {
		x.Data[i] = lo + (hi-lo)*rng.Float32()
	}
	return x
}

// ModelDir writes model.json and one NPY file per parameter into a new temporary folder and
// returns the JSON path.
func ModelDir(t testing.TB, modelJSON string, params map[string]*tensor.Tensor) string {
	t.Helper()
	dir := t.TempDir()
	for key, x := range params {
		WriteNPY(t, filepath.Join(dir, key+".npy"), x)
	}
	path := filepath.Join(dir, "model.json")
	if err := os.WriteFile(path, []byte(modelJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// CopyDir copies the regular files of src into a new temporary folder and returns it.
func CopyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		out.Close()
	}
	return dst
}

// RepoRoot returns the repository root, found from the test's working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's folder")
		}
		dir = parent
	}
}

// MaxAbsDiff returns max |a[i] - b[i]| and fails the test when lengths differ.
func MaxAbsDiff(t testing.TB, a, b []float32) float64 {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("length %d != %d", len(a), len(b))
	}
	m := 0.0
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		if d < 0 {
			d = -d
		}
		m = max(m, d)
	}
	return m
}

// Sprint formats a shape for messages.
func Sprint(shape []int) string { return fmt.Sprint(shape) }
