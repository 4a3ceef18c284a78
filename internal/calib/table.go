package calib

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"

	"github.com/qtool-dev/qtool/internal/format"
	"slices"
)

// FormatVersion is the format string of the calibration tables that this
// package writes and reads.
const FormatVersion = "qtool.calib/1"

// MaxTableSize is the largest table file ReadTable accepts, in bytes. An
// entry with a 25-character tensor name takes about 330 bytes, so this
// allows about 200,000 tensors.
const MaxTableSize = 64 << 20

// Table is a calibration table: the range of every calibrated tensor of one
// model.
type Table struct {
	Format    string           `json:"format"`
	ModelHash string           `json:"model_hash"` // content hash of the model the ranges belong to
	Images    int              `json:"images"`     // number of calibration images
	Tensors   map[string]Entry `json:"tensors"`    // keyed by tensor name
}

// Entry is the calibrated range of one tensor, with the method and counts
// behind it.
type Entry struct {
	Alpha    float64  `json:"alpha"`
	Beta     float64  `json:"beta"`
	Method   Method   `json:"method"`
	Settings Settings `json:"settings"` // Settings.Method equals Method
	Samples  int64    `json:"samples"`
	NaN      int64    `json:"nan_count"`
	Inf      int64    `json:"inf_count"`
}

// NewTable returns an empty table of the current format.
func NewTable(modelHash string, images int) *Table {
	return &Table{Format: FormatVersion, ModelHash: modelHash, Images: images, Tensors: map[string]Entry{}}
}

// NewEntry returns the table entry for a range chosen with settings s.
func NewEntry(r Range, s Settings) Entry {
	return Entry{Alpha: r.Alpha, Beta: r.Beta, Method: s.Method, Settings: s, Samples: r.Samples, NaN: r.NaN, Inf: r.Inf}
}

// Validate returns an error if the table would not pass ReadTable's checks.
func (t *Table) Validate() error {
	if err := t.check(); err != nil {
		return fmt.Errorf("calib: invalid table: %w", err)
	}
	return nil
}

// Write validates t and writes it to path as indented JSON. The bytes depend
// only on t: fields are in a fixed order, tensors are sorted by name, and
// floats are printed in their shortest form that parses back to the same
// float64. The file is written to a temporary file in the same folder and
// renamed to path when complete, so readers never see a partial table.
func (t *Table) Write(path string) error {
	if err := t.check(); err != nil {
		return fmt.Errorf("calib: write table %q: %w", path, err)
	}
	data, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return fmt.Errorf("calib: write table %q: %w", path, err)
	}
	data = append(data, '\n')

	// format.WriteFileAtomic also registers the temporary file, so that an interrupted
	// qtool removes it.
	if err := format.WriteFileAtomic(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}); err != nil {
		return fmt.Errorf("calib: %w", err)
	}
	return nil
}

// ReadTable reads and validates the table at path. It returns an error
// naming the file, and the tensor where there is one, if the file is larger
// than MaxTableSize, is not JSON, has another format version, has a missing
// or unknown field, or has an invalid entry: an unknown method or invalid
// settings, a non-finite alpha or beta, alpha > beta, or a negative count.
func ReadTable(path string) (*Table, error) {
	data, err := readLimited(path, MaxTableSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("calibration table %s not found; run qtool calibrate to write it, or check the path", path)
	}
	if err != nil {
		return nil, fmt.Errorf("calib: read table: %w", err)
	}
	t, err := decodeTable(data)
	if err != nil {
		return nil, fmt.Errorf("calib: table %q: %w", path, err)
	}
	return t, nil
}

// readLimited reads the file at path, or returns an error if it is larger
// than limit bytes.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%q is not a regular file", path)
	}
	if info.Size() > limit {
		return nil, fmt.Errorf("%q is %d bytes, more than the limit of %d bytes for a calibration table", path, info.Size(), limit)
	}

	// The file may grow after Stat, so the read is limited too.
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%q is more than the limit of %d bytes for a calibration table", path, limit)
	}
	return data, nil
}

// The file types mirror Table and Entry with pointers, so that a missing
// field is distinguished from a zero one.
type tableFile struct {
	Format    *string               `json:"format"`
	ModelHash *string               `json:"model_hash"`
	Images    *int                  `json:"images"`
	Tensors   map[string]*entryFile `json:"tensors"`
}

type entryFile struct {
	Alpha    *float64  `json:"alpha"`
	Beta     *float64  `json:"beta"`
	Method   *Method   `json:"method"`
	Settings *Settings `json:"settings"`
	Samples  *int64    `json:"samples"`
	NaN      *int64    `json:"nan_count"`
	Inf      *int64    `json:"inf_count"`
}

// decodeTable parses and validates a table. The format version is checked
// before the strict parse, so that a table of a newer format is reported as
// such and not as a file with unknown fields.
func decodeTable(data []byte) (*Table, error) {
	var header struct {
		Format *string `json:"format"`
	}
	if err := json.Unmarshal(data, &header); err != nil {
		return nil, fmt.Errorf("not a calibration table: %w", err)
	}
	if header.Format == nil {
		return nil, errors.New("missing field \"format\"; is this a qtool calibration table?")
	}
	if *header.Format != FormatVersion {
		return nil, fmt.Errorf("unknown format %q; this qtool reads %q", *header.Format, FormatVersion)
	}

	var file tableFile
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&file); err != nil {
		return nil, fmt.Errorf("invalid table: %w", err)
	}
	if _, err := decoder.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the table")
	}

	t, err := file.table()
	if err != nil {
		return nil, err
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	return t, nil
}

// table converts f to a Table, or returns an error naming the first missing
// field.
func (f *tableFile) table() (*Table, error) {
	switch {
	case f.ModelHash == nil:
		return nil, errors.New("missing field \"model_hash\"")
	case f.Images == nil:
		return nil, errors.New("missing field \"images\"")
	case f.Tensors == nil:
		return nil, errors.New("missing field \"tensors\"")
	}

	t := &Table{Format: *f.Format, ModelHash: *f.ModelHash, Images: *f.Images, Tensors: make(map[string]Entry, len(f.Tensors))}
	for _, name := range slices.Sorted(maps.Keys(f.Tensors)) {
		e := f.Tensors[name]
		if e == nil {
			return nil, fmt.Errorf("tensor %q: entry is null", name)
		}
		entry, err := e.entry()
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		t.Tensors[name] = entry
	}
	return t, nil
}

func (e *entryFile) entry() (Entry, error) {
	fields := []struct {
		name    string
		missing bool
	}{
		{"alpha", e.Alpha == nil},
		{"beta", e.Beta == nil},
		{"method", e.Method == nil},
		{"settings", e.Settings == nil},
		{"samples", e.Samples == nil},
		{"nan_count", e.NaN == nil},
		{"inf_count", e.Inf == nil},
	}
	for _, field := range fields {
		if field.missing {
			return Entry{}, fmt.Errorf("missing field %q", field.name)
		}
	}
	return Entry{Alpha: *e.Alpha, Beta: *e.Beta, Method: *e.Method, Settings: *e.Settings, Samples: *e.Samples, NaN: *e.NaN, Inf: *e.Inf}, nil
}

// check returns the first problem of t, with tensors in name order.
func (t *Table) check() error {
	if t.Format == "" {
		return errors.New("format is empty; create tables with NewTable")
	}
	if t.Format != FormatVersion {
		return fmt.Errorf("unknown format %q; this qtool writes %q", t.Format, FormatVersion)
	}
	if t.ModelHash == "" {
		return errors.New("model_hash is empty")
	}
	if t.Images < 0 {
		return fmt.Errorf("images %d is negative", t.Images)
	}
	if t.Tensors == nil {
		return errors.New("tensors is missing")
	}
	for _, name := range slices.Sorted(maps.Keys(t.Tensors)) {
		if name == "" {
			return errors.New("a tensor name is empty")
		}
		if err := t.Tensors[name].check(); err != nil {
			return fmt.Errorf("tensor %q: %w", name, err)
		}
	}
	return nil
}

func (e Entry) check() error {
	if !slices.Contains(Methods(), e.Method) {
		return fmt.Errorf("unknown method %q; use minmax, ema, percentile, entropy or mse", e.Method)
	}
	if err := e.Settings.check(); err != nil {
		return fmt.Errorf("invalid settings: %w", err)
	}
	if e.Method != e.Settings.Method {
		return fmt.Errorf("method %q differs from the settings' method %q", e.Method, e.Settings.Method)
	}
	if math.IsNaN(e.Alpha) || math.IsInf(e.Alpha, 0) || math.IsNaN(e.Beta) || math.IsInf(e.Beta, 0) {
		return fmt.Errorf("range [%g, %g] is not finite", e.Alpha, e.Beta)
	}
	if e.Alpha > e.Beta {
		return fmt.Errorf("alpha %g is greater than beta %g", e.Alpha, e.Beta)
	}
	if e.Samples < 1 {
		return fmt.Errorf("samples %d is less than 1", e.Samples)
	}
	if e.NaN < 0 {
		return fmt.Errorf("nan_count %d is negative", e.NaN)
	}
	if e.Inf < 0 {
		return fmt.Errorf("inf_count %d is negative", e.Inf)
	}
	return nil
}

// CheckModel returns an error if the table was made for a model with
// another content hash.
func (t *Table) CheckModel(hash string) error {
	if t.ModelHash != hash {
		return fmt.Errorf("calib: the calibration table is stale: it was made for model hash %q, but the model's hash is %q; re-run qtool calibrate or pass --allow-stale-calib", t.ModelHash, hash)
	}
	return nil
}
