package format

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/qtool-dev/qtool/internal/tensor"
)

// npzSeed returns a stored NPZ archive with one member per NPY file in members.
func npzSeed(f *testing.F, members map[string][]byte) []byte {
	f.Helper()
	var buf bytes.Buffer
	arrays := map[string]func(io.Writer) error{}
	for name, content := range members {
		arrays[name] = func(w io.Writer) error {
			_, err := w.Write(content)
			return err
		}
	}
	if err := WriteNPZ(&buf, arrays); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}

// deflatedSeed returns an archive with one deflated member.
func deflatedSeed(f *testing.F, name string, content []byte) []byte {
	f.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate})
	if err != nil {
		f.Fatal(err)
	}
	w.Write(content)
	if err := zw.Close(); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzNPZ writes arbitrary bytes to a file, opens it with OpenNPZ and reads every key. Neither
// may panic, and an array that Read returns must not have more elements than the file's bytes
// can inflate to. Deflate inflates at most 1032 times, because its longest match (258 bytes)
// takes at least 2 bits: a 1-bit length code and a 1-bit distance code.
//
// Mutated members rarely keep a valid CRC-32, so the same bytes are also stored as the one
// member of a well-formed archive. Reading that member must then give what DecodeNPY gives
// for the bytes: the same error or success, dtype, shape and values.
func FuzzNPZ(f *testing.F) {
	f32 := rawNPY("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f32le(1, 2, 3, 4, 5, 6))
	bigFortran := rawNPY("{'descr': '>f8', 'fortran_order': True, 'shape': (1, 2), }", make([]byte, 16))
	u8 := rawNPY("{'descr': '|u1', 'fortran_order': False, 'shape': (4,), }", []byte{1, 2, 3, 4})
	object := rawNPY("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", []byte("\x80\x02N."))

	f.Add(npzSeed(f, map[string][]byte{"conv1.weight": f32, "conv1.bias": u8}))
	f.Add(npzSeed(f, map[string][]byte{"x": bigFortran, "y": object}))
	f.Add(deflatedSeed(f, "w.npy", f32))
	f.Add(deflatedSeed(f, "w.npy", f32[:20]))
	f.Add(deflatedSeed(f, "w", append(bytes.Clone(f32), make([]byte, 1000)...)))
	f.Add(npzSeed(f, map[string][]byte{}))
	f.Add([]byte("PK\x05\x06" + string(make([]byte, 18))))
	f.Add([]byte{})
	// Plain NPY files, for the comparison with DecodeNPY.
	f.Add(f32)
	f.Add(bigFortran)

	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		readArchive(t, filepath.Join(dir, "fuzz.npz"), data)
		compareWithDecodeNPY(t, filepath.Join(dir, "member.npz"), data)
	})
}

// readArchive reads every member of the archive data.
func readArchive(t *testing.T, path string, data []byte) {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	z, err := OpenNPZ(path)
	if err != nil {
		return
	}
	defer z.Close()

	for _, key := range z.Keys() {
		if !z.Has(key) {
			t.Fatalf("Keys lists %q but Has rejects it", key)
		}
		a, err := z.Read(key)
		if err != nil {
			continue
		}
		n := tensor.Size(a.Shape)
		if n > 1032*len(data)+1 {
			t.Fatalf("member %q: decoded %d elements from an archive of %d bytes", key, n, len(data))
		}
		if _, ok := a.Data.([]float32); ok {
			if got, _ := a.Float32(); len(got) != n {
				t.Fatalf("member %q: %d values for shape %v", key, len(got), a.Shape)
			}
		}
	}
}

// compareWithDecodeNPY stores npy as the deflated member "m.npy" of an archive, reads it back
// and compares the result with DecodeNPY's.
func compareWithDecodeNPY(t *testing.T, path string, npy []byte) {
	var archive bytes.Buffer
	zw := zip.NewWriter(&archive)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "m.npy", Method: zip.Deflate})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(npy)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, archive.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	z, err := OpenNPZ(path)
	if err != nil {
		t.Fatalf("OpenNPZ of a well-formed archive: %v", err)
	}
	defer z.Close()

	fromArchive, archiveErr := z.Read("m")
	direct, directErr := DecodeNPY(npy)
	if (archiveErr == nil) != (directErr == nil) {
		t.Fatalf("NPZ.Read error %v, DecodeNPY error %v", archiveErr, directErr)
	}
	if directErr != nil {
		return
	}
	if fromArchive.DType != direct.DType || !slices.Equal(fromArchive.Shape, direct.Shape) {
		t.Fatalf("NPZ.Read gives %s %v, DecodeNPY %s %v", fromArchive.DType, fromArchive.Shape, direct.DType, direct.Shape)
	}
	// NaN is not DeepEqual to itself, so values that differ only there are compared as text.
	if !reflect.DeepEqual(fromArchive.Data, direct.Data) && fmt.Sprint(fromArchive.Data) != fmt.Sprint(direct.Data) {
		t.Fatal("NPZ.Read and DecodeNPY give different values")
	}
}
