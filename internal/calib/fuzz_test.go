package calib

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzReadTable checks that ReadTable returns an error or a valid table for
// any file, and that a table it accepts survives a write and a read.
func FuzzReadTable(f *testing.F) {
	f.Add([]byte(validTableJSON))
	f.Add([]byte(`{"format": "qtool.calib/1", "model_hash": "h", "images": 0, "tensors": {}}`))
	f.Add([]byte(`{"format": "qtool.calib/1", "model_hash": "h", "images": 3, "tensors": {"a": {"alpha": 1e-320, "beta": 1e308, "method": "mse", "settings": {"method": "mse", "bins": 16, "bits": 2, "symmetric": true}, "samples": 9007199254740993, "nan_count": 1, "inf_count": 2}}}`))
	f.Add([]byte(`{"format": "qtool.calib/2"}`))
	f.Add([]byte(`{"format": "qtool.calib/1", "tensors": {"x": null}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(""))

	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content []byte) {
		path := filepath.Join(dir, "in.json")
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		table, err := ReadTable(path)
		if err != nil {
			if table != nil {
				t.Errorf("ReadTable returned a table and the error %v", err)
			}
			return
		}
		if err := table.Validate(); err != nil {
			t.Fatalf("ReadTable accepted a table that Validate rejects: %v", err)
		}

		out := filepath.Join(dir, "out.json")
		if err := table.Write(out); err != nil {
			t.Fatalf("Write of an accepted table: %v", err)
		}
		again, err := ReadTable(out)
		if err != nil {
			t.Fatalf("ReadTable of a written table: %v", err)
		}
		if !reflect.DeepEqual(again, table) {
			t.Errorf("round trip changed the table:\n%+v\n%+v", table, again)
		}

		first, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := again.Write(out); err != nil {
			t.Fatal(err)
		}
		second, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second) {
			t.Errorf("rewriting a read table changed its bytes")
		}
	})
}
