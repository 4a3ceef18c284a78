package format

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/qtool-dev/qtool/internal/tensor"
)

// MaxMemberBytes bounds the uncompressed size of one NPZ member (8 GiB).
const MaxMemberBytes = 8 << 30

// NPZ is an open NPZ archive. Members are read by name straight from the archive, never
// extracted to disk.
type NPZ struct {
	path    string
	file    *os.File
	size    int64 // of the archive file, in bytes
	zip     *zip.Reader
	members map[string]*zip.File
}

// OpenNPZ opens an NPZ archive (a zip file of NPY members, stored or deflated).
func OpenNPZ(path string) (*NPZ, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, unwrapPath(err))
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s: %w", path, unwrapPath(err))
	}
	zr, err := zip.NewReader(f, st.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: not a valid NPZ (zip) archive: %v", path, err)
	}

	z := &NPZ{path: path, file: f, size: st.Size(), zip: zr, members: map[string]*zip.File{}}
	for _, m := range zr.File {
		key := strings.TrimSuffix(m.Name, ".npy")
		if _, dup := z.members[key]; dup {
			f.Close()
			return nil, fmt.Errorf("%s: member %q appears twice", path, m.Name)
		}
		z.members[key] = m
	}
	return z, nil
}

// Close closes the archive file.
func (z *NPZ) Close() error { return z.file.Close() }

// Keys returns the member names without their .npy suffix, sorted.
func (z *NPZ) Keys() []string {
	keys := make([]string, 0, len(z.members))
	for k := range z.members {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Has reports whether the archive contains key.
func (z *NPZ) Has(key string) bool {
	_, ok := z.members[key]
	return ok
}

// Read decodes the member key (with or without its .npy suffix). Errors name the archive and member.
//
// The sizes in a zip directory and in an NPY header are only claims, so Read allocates memory
// as data arrives. It parses the NPY header from the member's stream and checks that the data
// the header declares fits in the member's declared size. It then reads the data into a buffer
// that grows with the bytes actually decompressed. A small archive that claims gigabytes fails
// when its stream ends, having allocated about as much as it contained.
func (z *NPZ) Read(key string) (*Array, error) {
	key = strings.TrimSuffix(key, ".npy")
	m, ok := z.members[key]
	if !ok {
		return nil, fmt.Errorf("%s: no array %q in the archive (it contains %s)", z.path, key, strings.Join(z.Keys(), ", "))
	}
	if m.UncompressedSize64 > MaxMemberBytes {
		return nil, fmt.Errorf("%s: member %q claims %d bytes, more than the limit of %d", z.path, m.Name, m.UncompressedSize64, int64(MaxMemberBytes))
	}
	declared := int64(m.UncompressedSize64)

	rc, err := m.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: member %q: %v", z.path, m.Name, err)
	}
	defer rc.Close()

	h, err := ParseNPYHeader(rc, declared)
	if err != nil {
		return nil, fmt.Errorf("%s: member %q: %w", z.path, m.Name, err)
	}

	// The first allocation is at most the archive's size, and the buffer doubles as data arrives.
	var buf bytes.Buffer
	buf.Grow(int(min(h.DataBytes, z.size)))
	_, err = io.CopyN(&buf, rc, h.DataBytes)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%s: member %q is truncated: shape %s of %s needs %d data bytes, but the member ends after fewer",
				z.path, m.Name, tensor.ShapeString(h.Shape), h.DType, h.DataBytes)
		}
		return nil, fmt.Errorf("%s: member %q is corrupt: %v", z.path, m.Name, err)
	}
	// Reading to the end makes archive/zip compare the length and the CRC-32 with the directory.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return nil, fmt.Errorf("%s: member %q is corrupt: %v", z.path, m.Name, err)
	}

	a, err := decodeData(h, buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%s: member %q: %w", z.path, m.Name, err)
	}
	return a, nil
}

// WriteNPZ writes float arrays as a stored (uncompressed) NPZ archive with members in key order
// and zero timestamps, so that the same arrays always give the same bytes.
func WriteNPZ(w io.Writer, arrays map[string]func(io.Writer) error) error {
	keys := make([]string, 0, len(arrays))
	for k := range arrays {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	zw := zip.NewWriter(w)
	for _, k := range keys {
		mw, err := zw.CreateHeader(&zip.FileHeader{Name: k + ".npy", Method: zip.Store})
		if err != nil {
			return err
		}
		if err := arrays[k](mw); err != nil {
			return err
		}
	}
	return zw.Close()
}
