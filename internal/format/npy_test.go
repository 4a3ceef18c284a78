package format

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/internal/tensor"
)

func rawNPY(dict string, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	header := dict + "\n"
	binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

func f32le(v ...float32) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, v)
	return b.Bytes()
}

func TestDecodeNPYDtypes(t *testing.T) {
	var be bytes.Buffer
	binary.Write(&be, binary.BigEndian, []float32{1, 2, 3, 4, 5, 6})
	var f8 bytes.Buffer
	binary.Write(&f8, binary.LittleEndian, []float64{0.5, -1.25})
	var i8 bytes.Buffer
	binary.Write(&i8, binary.LittleEndian, []int64{7, 0, 9})

	cases := []struct {
		name  string
		file  []byte
		shape []int
		want  []float32
	}{
		{"float32 little-endian", rawNPY("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f32le(1, 2, 3, 4, 5, 6)), []int{2, 3}, []float32{1, 2, 3, 4, 5, 6}},
		{"float32 big-endian", rawNPY("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", be.Bytes()), []int{2, 3}, []float32{1, 2, 3, 4, 5, 6}},
		{"float32 Fortran order", rawNPY("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", f32le(1, 4, 2, 5, 3, 6)), []int{2, 3}, []float32{1, 2, 3, 4, 5, 6}},
		{"float64 rounded", rawNPY("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", f8.Bytes()), []int{2}, []float32{0.5, -1.25}},
		{"uint8", rawNPY("{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", []byte{0, 128, 255}), []int{3}, []float32{0, 128, 255}},
		{"keys in another order", rawNPY("{'shape': (1,), 'fortran_order': False, 'descr': '<f4'}", f32le(3.5)), []int{1}, []float32{3.5}},
		{"scalar", rawNPY("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", f32le(2)), []int{}, []float32{2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := DecodeNPY(c.file)
			if err != nil {
				t.Fatalf("DecodeNPY: %v", err)
			}
			if !tensor.EqualShape(a.Shape, c.shape) {
				t.Errorf("shape = %v, want %v", a.Shape, c.shape)
			}
			got, err := a.Float32()
			if err != nil {
				t.Fatalf("Float32: %v", err)
			}
			for i := range c.want {
				if got[i] != c.want[i] {
					t.Errorf("value %d = %v, want %v", i, got[i], c.want[i])
				}
			}
		})
	}

	a, err := DecodeNPY(rawNPY("{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", i8.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	labels, err := a.Ints()
	if err != nil || labels[0] != 7 || labels[2] != 9 {
		t.Errorf("int64 labels = %v, %v; want [7 0 9]", labels, err)
	}
}

func TestDecodeNPYRejects(t *testing.T) {
	huge := []byte("\x93NUMPY\x02\x00\xff\xff\xff\x7f")
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"wrong magic", []byte("PK\x03\x04 this is a zip file"), "magic"},
		{"future version", []byte("\x93NUMPY\x09\x00\x10\x00{}"), "version 9"},
		{"header larger than the limit", huge, "limit"},
		{"header longer than file", []byte("\x93NUMPY\x01\x00\x50\x00{'descr'"), "truncated"},
		{"object dtype", rawNPY("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", make([]byte, 8)), "object"},
		{"complex dtype", rawNPY("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", make([]byte, 8)), "unsupported dtype"},
		{"structured dtype", rawNPY("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", make([]byte, 4)), "descr"},
		{"truncated data", rawNPY("{'descr': '<f4', 'fortran_order': False, 'shape': (10,), }", f32le(1, 2)), "truncated"},
		{"element count overflow", rawNPY("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", nil), "more than"},
		{"negative dimension", rawNPY("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", nil), "invalid dimension"},
		{"missing shape", rawNPY("{'descr': '<f4', 'fortran_order': False}", nil), "missing key"},
		{"bad fortran value", rawNPY("{'descr': '<f4', 'fortran_order': 1, 'shape': (1,)}", f32le(1)), "fortran_order"},
		{"not a dict", rawNPY("['descr']", nil), "not a dictionary"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeNPY(c.file)
			if err == nil {
				t.Fatal("DecodeNPY returned no error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
		})
	}
}

func TestReadNPYNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.npy")
	os.WriteFile(path, []byte("garbage"), 0o644)
	_, err := ReadNPY(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("error %v does not name %s", err, path)
	}
}

func TestEncodeNPYRoundTrip(t *testing.T) {
	x := &tensor.Tensor{Shape: []int{2, 2}, Data: []float32{1, float32(math.Pi), -0, 1e-30}}
	var b bytes.Buffer
	if err := EncodeNPY(&b, x); err != nil {
		t.Fatal(err)
	}
	if (b.Len()-len(x.Data)*4)%64 != 0 {
		t.Errorf("header length %d is not a multiple of 64", b.Len()-16)
	}
	a, err := DecodeNPY(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := a.Float32()
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(x.Data[i]) {
			t.Errorf("value %d = %v, want %v", i, got[i], x.Data[i])
		}
	}
}

func TestNPZRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.npz")
	x := &tensor.Tensor{Shape: []int{3}, Data: []float32{1, 2, 3}}
	arrays := map[string]func(w io.Writer) error{
		"conv1.weight": func(w io.Writer) error { return EncodeNPY(w, x) },
	}
	if err := WriteFileAtomic(path, func(w io.Writer) error { return WriteNPZ(w, arrays) }); err != nil {
		t.Fatal(err)
	}
	z, err := OpenNPZ(path)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	a, err := z.Read("conv1.weight")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Float32(); got[2] != 3 {
		t.Errorf("member value = %v, want 3", got[2])
	}
	_, err = z.Read("missing")
	if err == nil || !strings.Contains(err.Error(), "conv1.weight") {
		t.Errorf("missing member error %v does not list the archive's keys", err)
	}
}

func FuzzDecodeNPY(f *testing.F) {
	f.Add(rawNPY("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f32le(1, 2, 3, 4, 5, 6)))
	f.Add(rawNPY("{'descr': '>f8', 'fortran_order': True, 'shape': (1, 1), }", make([]byte, 8)))
	f.Add(rawNPY("{'descr': '|u1', 'fortran_order': False, 'shape': (4,), }", []byte{1, 2, 3, 4}))
	f.Add([]byte("\x93NUMPY\x02\x00\x10\x00\x00\x00{'descr': '<i8'}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := DecodeNPY(data)
		if err != nil {
			return
		}
		if n := tensor.Size(a.Shape); n > len(data) {
			t.Fatalf("decoded %d elements from %d bytes", n, len(data))
		}
	})
}
