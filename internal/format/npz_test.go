package format

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// rawMember is one member of a hand-made zip archive whose directory may lie about the size.
type rawMember struct {
	name    string
	content []byte // the bytes that are really stored, deflated
	claim   uint64 // the uncompressed size written in the directory; 0 means len(content)
	badCRC  bool
}

// writeRawNPZ writes members with archive/zip's CreateRaw, which copies the sizes and CRC-32
// given into the directory unchecked, and returns the archive's path.
func writeRawNPZ(t *testing.T, members ...rawMember) string {
	t.Helper()
	var archive bytes.Buffer
	zw := zip.NewWriter(&archive)
	for _, m := range members {
		var deflated bytes.Buffer
		fw, _ := flate.NewWriter(&deflated, flate.BestCompression)
		fw.Write(m.content)
		fw.Close()

		claim := m.claim
		if claim == 0 {
			claim = uint64(len(m.content))
		}
		crc := crc32.ChecksumIEEE(m.content)
		if m.badCRC {
			crc ^= 1
		}
		w, err := zw.CreateRaw(&zip.FileHeader{
			Name: m.name, Method: zip.Deflate, CRC32: crc,
			CompressedSize64: uint64(deflated.Len()), UncompressedSize64: claim,
		})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(deflated.Bytes())
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "w.npz")
	if err := os.WriteFile(path, archive.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// readMember opens path and reads key, failing the test if the archive does not open.
func readMember(t *testing.T, path, key string) (*Array, error) {
	t.Helper()
	z, err := OpenNPZ(path)
	if err != nil {
		t.Fatalf("OpenNPZ: %v", err)
	}
	defer z.Close()
	return z.Read(key)
}

// TestNPZHugeClaimAllocatesLittle reads a member of a few hundred bytes whose zip directory
// and NPY header both claim 1 GiB. Read must fail when the stream ends, having allocated about
// as much as the archive held, not the 1 GiB it claimed.
func TestNPZHugeClaimAllocatesLittle(t *testing.T) {
	header := "{'descr': '<f4', 'fortran_order': False, 'shape': (268435456,), }"
	content := rawNPY(header, make([]byte, 256))
	claim := uint64(len(content) - 256 + 1<<30)
	path := writeRawNPZ(t, rawMember{name: "w.npy", content: content, claim: claim})
	if st, _ := os.Stat(path); st.Size() > 2048 {
		t.Fatalf("the archive has %d bytes, want a small one", st.Size())
	}

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := readMember(t, path, "w")
	runtime.ReadMemStats(&after)

	if err == nil {
		t.Fatal("Read accepted a member that holds 256 of 1 GiB data bytes")
	}
	for _, want := range []string{"w.npz", `member "w.npy"`, "truncated", "[268435456]", "1073741824 data bytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Errorf("Read allocated %d bytes for a member that holds %d", grew, len(content))
	}
}

func TestNPZHeaderClaimsMoreThanMember(t *testing.T) {
	header := "{'descr': '<f4', 'fortran_order': False, 'shape': (1000,), }"
	path := writeRawNPZ(t, rawMember{name: "w.npy", content: rawNPY(header, make([]byte, 40))})
	_, err := readMember(t, path, "w")
	if err == nil {
		t.Fatal("Read accepted an NPY header that declares 4000 data bytes in a member of 40")
	}
	for _, want := range []string{`member "w.npy"`, "truncated NPY file", "4000"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestNPZMemberOverLimit(t *testing.T) {
	path := writeRawNPZ(t, rawMember{name: "w.npy", content: []byte("x"), claim: MaxMemberBytes + 1})
	_, err := readMember(t, path, "w")
	if err == nil || !strings.Contains(err.Error(), "more than the limit") {
		t.Fatalf("error %v, want a member over the limit of %d bytes", err, int64(MaxMemberBytes))
	}
}

func TestNPZShapeOverflow(t *testing.T) {
	header := "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"
	// The zeros after the header keep the header away from the stream's end, where archive/zip
	// reports the short member instead of returning the last bytes.
	path := writeRawNPZ(t, rawMember{name: "w.npy", content: rawNPY(header, make([]byte, 4096)), claim: 1 << 32})
	_, err := readMember(t, path, "w")
	if err == nil {
		t.Fatal("Read accepted a shape of 2^64 elements")
	}
	for _, want := range []string{`member "w.npy"`, "more than 2147483647 elements"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestNPZHeaderOverLimit(t *testing.T) {
	dict := "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }" + strings.Repeat(" ", MaxNPYHeaderBytes)
	content := []byte("\x93NUMPY\x02\x00")
	content = append(content, byte(len(dict)), byte(len(dict)>>8), byte(len(dict)>>16), byte(len(dict)>>24))
	content = append(content, dict...)
	content = append(content, make([]byte, 4)...)
	path := writeRawNPZ(t, rawMember{name: "w.npy", content: content})
	_, err := readMember(t, path, "w")
	if err == nil || !strings.Contains(err.Error(), "more than the limit of 65536") {
		t.Fatalf("error %v, want an NPY header over the limit", err)
	}
}

func TestNPZChecksumMismatch(t *testing.T) {
	content := rawNPY("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", f32le(1, 2))
	path := writeRawNPZ(t, rawMember{name: "w.npy", content: content, badCRC: true})
	_, err := readMember(t, path, "w")
	if err == nil {
		t.Fatal("Read accepted a member whose CRC-32 does not match")
	}
	for _, want := range []string{`member "w.npy"`, "corrupt", "checksum"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestNPZTrailingBytesAfterData(t *testing.T) {
	content := rawNPY("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", f32le(1, 2))
	content = append(content, "extra"...)
	path := writeRawNPZ(t, rawMember{name: "w.npy", content: content})
	a, err := readMember(t, path, "w")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Float32(); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("values %v, want [1 2]", got)
	}
}

func TestNPZBigEndianFortranMember(t *testing.T) {
	// [[1, 2, 3], [4, 5, 6]] stored column by column as big-endian float64.
	var data []byte
	for _, v := range []float64{1, 4, 2, 5, 3, 6} {
		data = binary.BigEndian.AppendUint64(data, math.Float64bits(v))
	}
	content := rawNPY("{'descr': '>f8', 'fortran_order': True, 'shape': (2, 3), }", data)
	path := writeRawNPZ(t, rawMember{name: "w.npy", content: content})
	a, err := readMember(t, path, "w")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := a.Float32()
	want := []float32{1, 2, 3, 4, 5, 6}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("values %v, want %v", got, want)
		}
	}
}
