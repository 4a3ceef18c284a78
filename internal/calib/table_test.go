package calib

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// sampleTable returns a table with awkward floats: values without a short
// decimal form, extremes, a subnormal and a constant range.
func sampleTable() *Table {
	t := NewTable("sha256:0123abcd", 500)
	t.Tensors["conv1"] = NewEntry(Range{Alpha: -0.1, Beta: 1.0 / 3, Samples: 1 << 40, NaN: 2, Inf: 3}, DefaultSettings(MethodPercentile))
	t.Tensors["layer1.0.relu"] = NewEntry(Range{Alpha: 0, Beta: math.MaxFloat64, Samples: 7}, DefaultSettings(MethodEntropy))
	t.Tensors["fc"] = NewEntry(Range{Alpha: -math.SmallestNonzeroFloat64, Beta: 5e-324, Samples: 1}, Settings{Method: MethodEMA, Momentum: 0.9})
	t.Tensors["const"] = NewEntry(Range{Alpha: 3.5, Beta: 3.5, Samples: 1024}, symmetricMSE())
	t.Tensors["input"] = NewEntry(Range{Alpha: -123.456e10, Beta: 1e-300, Samples: 12}, DefaultSettings(MethodMinMax))
	return t
}

func TestTableRoundTripExact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "calib.json")
	want := sampleTable()
	if err := want.Write(path); err != nil {
		t.Fatal(err)
	}

	got, err := ReadTable(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadTable = %+v, want %+v", got, want)
	}
	for name, e := range want.Tensors {
		g := got.Tensors[name]
		if math.Float64bits(g.Alpha) != math.Float64bits(e.Alpha) {
			t.Errorf("%s: alpha bits %x, want %x", name, math.Float64bits(g.Alpha), math.Float64bits(e.Alpha))
		}
		if math.Float64bits(g.Beta) != math.Float64bits(e.Beta) {
			t.Errorf("%s: beta bits %x, want %x", name, math.Float64bits(g.Beta), math.Float64bits(e.Beta))
		}
	}
}

func TestTableWriteDeterministic(t *testing.T) {
	dir := t.TempDir()
	first := filepath.Join(dir, "a.json")
	second := filepath.Join(dir, "b.json")
	if err := sampleTable().Write(first); err != nil {
		t.Fatal(err)
	}
	if err := sampleTable().Write(second); err != nil {
		t.Fatal(err)
	}

	a, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(second)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("two writes of the same table differ:\n%s\n%s", a, b)
	}
	if !bytes.HasSuffix(a, []byte("}\n")) {
		t.Errorf("table does not end with a newline")
	}
	// Tensors appear sorted by name.
	if i, j := bytes.Index(a, []byte(`"conv1"`)), bytes.Index(a, []byte(`"fc"`)); i < 0 || j < 0 || i > j {
		t.Errorf("tensor conv1 at byte %d, fc at byte %d: want conv1 first", i, j)
	}
}

func TestTableWriteLeavesNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "calib.json")
	if err := sampleTable().Write(path); err != nil {
		t.Fatal(err)
	}
	// Overwriting replaces the file.
	if err := sampleTable().Write(path); err != nil {
		t.Fatal(err)
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "calib.json" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("folder contains %v, want only calib.json", names)
	}

	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o644 {
		t.Errorf("mode = %v, want -rw-r--r--", mode)
	}
}

func TestTableWriteErrors(t *testing.T) {
	dir := t.TempDir()

	invalid := sampleTable()
	entry := invalid.Tensors["conv1"]
	entry.Alpha, entry.Beta = 2, 1
	invalid.Tensors["conv1"] = entry

	nan := sampleTable()
	entry = nan.Tensors["fc"]
	entry.Beta = math.NaN()
	nan.Tensors["fc"] = entry

	cases := []struct {
		name  string
		table *Table
		path  string
		want  string
	}{
		{"alpha above beta", invalid, filepath.Join(dir, "bad.json"), `tensor "conv1": alpha 2 is greater than beta 1`},
		{"NaN beta", nan, filepath.Join(dir, "nan.json"), `tensor "fc": range [-5e-324, NaN] is not finite`},
		{"missing folder", sampleTable(), filepath.Join(dir, "missing", "calib.json"), "no such file or directory"},
		{"zero table", &Table{}, filepath.Join(dir, "zero.json"), "format is empty; create tables with NewTable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.table.Write(c.path)
			if err == nil {
				t.Fatal("Write returned no error")
			}
			if !strings.Contains(err.Error(), c.path) {
				t.Errorf("error = %q, want it to name the path %q", err, c.path)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %q, want it to contain %q", err, c.want)
			}
			if _, statErr := os.Stat(c.path); statErr == nil {
				t.Errorf("Write failed but created %s", c.path)
			}
		})
	}
}

const validTableJSON = `{
  "format": "qtool.calib/1",
  "model_hash": "h1",
  "images": 10,
  "tensors": {
    "conv1": {"alpha": -1, "beta": 2, "method": "minmax", "settings": {"method": "minmax"}, "samples": 5, "nan_count": 0, "inf_count": 0}
  }
}`

// replaceJSON returns validTableJSON with old replaced by new, and fails the
// test if old is absent.
func replaceJSON(t *testing.T, old, new string) string {
	t.Helper()
	if !strings.Contains(validTableJSON, old) {
		t.Fatalf("test table has no %q", old)
	}
	return strings.Replace(validTableJSON, old, new, 1)
}

func TestReadTableRejectsBadFiles(t *testing.T) {
	cases := []struct {
		name    string
		content string
		want    string
	}{
		{"not JSON", "calibration", "not a calibration table: invalid character"},
		{"array", "[1, 2]", "not a calibration table: json: cannot unmarshal array"},
		{"missing format", `{"model_hash": "h"}`, `missing field "format"; is this a qtool calibration table?`},
		{"newer format", replaceJSON(t, `"qtool.calib/1"`, `"qtool.calib/2"`), `unknown format "qtool.calib/2"; this qtool reads "qtool.calib/1"`},
		{"unknown field", replaceJSON(t, `"images": 10,`, `"images": 10, "note": "x",`), `unknown field "note"`},
		{"unknown settings field", replaceJSON(t, `{"method": "minmax"}`, `{"method": "minmax", "clip": 1}`), `unknown field "clip"`},
		{"missing model hash", replaceJSON(t, `"model_hash": "h1",`, ``), `missing field "model_hash"`},
		{"empty model hash", replaceJSON(t, `"model_hash": "h1",`, `"model_hash": "",`), "model_hash is empty"},
		{"missing images", replaceJSON(t, `"images": 10,`, ``), `missing field "images"`},
		{"negative images", replaceJSON(t, `"images": 10,`, `"images": -1,`), "images -1 is negative"},
		{"missing tensors", `{"format": "qtool.calib/1", "model_hash": "h", "images": 1}`, `missing field "tensors"`},
		{"null entry", replaceJSON(t, `"conv1": {`, `"conv0": null, "conv1": {`), `tensor "conv0": entry is null`},
		{"missing alpha", replaceJSON(t, `"alpha": -1, `, ``), `tensor "conv1": missing field "alpha"`},
		{"missing inf count", replaceJSON(t, `, "inf_count": 0`, ``), `tensor "conv1": missing field "inf_count"`},
		{"missing settings", replaceJSON(t, `"settings": {"method": "minmax"}, `, ``), `tensor "conv1": missing field "settings"`},
		{"NaN alpha", replaceJSON(t, `"alpha": -1`, `"alpha": NaN`), "not a calibration table: invalid character 'N'"},
		{"alpha overflows", replaceJSON(t, `"alpha": -1`, `"alpha": -1e999`), "cannot unmarshal number -1e999"},
		{"alpha above beta", replaceJSON(t, `"alpha": -1`, `"alpha": 3`), `tensor "conv1": alpha 3 is greater than beta 2`},
		{"unknown method", replaceJSON(t, `"method": "minmax", "settings"`, `"method": "kl", "settings"`), `tensor "conv1": unknown method "kl"`},
		{"method differs from settings", replaceJSON(t, `"method": "minmax", "settings"`, `"method": "ema", "settings"`), `tensor "conv1": method "ema" differs from the settings' method "minmax"`},
		{"invalid settings", replaceJSON(t, `{"method": "minmax"}`, `{"method": "minmax", "bins": 10}`), `tensor "conv1": invalid settings: bins does not apply to method minmax`},
		{"zero samples", replaceJSON(t, `"samples": 5`, `"samples": 0`), `tensor "conv1": samples 0 is less than 1`},
		{"negative NaN count", replaceJSON(t, `"nan_count": 0`, `"nan_count": -4`), `tensor "conv1": nan_count -4 is negative`},
		{"fractional samples", replaceJSON(t, `"samples": 5`, `"samples": 5.5`), "cannot unmarshal number 5.5"},
		{"empty tensor name", replaceJSON(t, `"conv1": {`, `"": {`), "a tensor name is empty"},
		{"trailing data", validTableJSON + "{}", "invalid character '{' after top-level value"},
	}

	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".json")
			if err := os.WriteFile(path, []byte(c.content), 0o644); err != nil {
				t.Fatal(err)
			}
			table, err := ReadTable(path)
			if err == nil {
				t.Fatalf("ReadTable returned %+v and no error", table)
			}
			if !strings.HasPrefix(err.Error(), `calib: table "`+path+`": `) {
				t.Errorf("error = %q, want the prefix %q", err, `calib: table "`+path+`": `)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %q, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestReadTableAcceptsValid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "calib.json")
	if err := os.WriteFile(path, []byte(validTableJSON+"\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	table, err := ReadTable(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Entry{Alpha: -1, Beta: 2, Method: MethodMinMax, Settings: Settings{Method: MethodMinMax}, Samples: 5}
	if got := table.Tensors["conv1"]; got != want {
		t.Errorf("conv1 = %+v, want %+v", got, want)
	}
}

func TestReadTableFileErrors(t *testing.T) {
	dir := t.TempDir()

	large := filepath.Join(dir, "large.json")
	f, err := os.Create(large)
	if err != nil {
		t.Fatal(err)
	}
	// A sparse file: its size counts, not its content.
	if err := f.Truncate(MaxTableSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()

	cases := []struct {
		name string
		path string
		want string
	}{
		{"too large", large, `calib: read table: "` + large + `" is 67108865 bytes, more than the limit of 67108864 bytes`},
		{"folder", dir, `calib: read table: "` + dir + `" is not a regular file`},
		{"missing", filepath.Join(dir, "none.json"), `calibration table ` + filepath.Join(dir, "none.json") + ` not found; run qtool calibrate`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadTable(c.path)
			if err == nil {
				t.Fatal("ReadTable returned no error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %q, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestTableCheckModel(t *testing.T) {
	table := sampleTable()
	if err := table.CheckModel("sha256:0123abcd"); err != nil {
		t.Errorf("CheckModel(same hash) = %v", err)
	}

	err := table.CheckModel("sha256:ffff")
	if err == nil {
		t.Fatal("CheckModel(other hash) returned no error")
	}
	for _, want := range []string{`"sha256:0123abcd"`, `"sha256:ffff"`, "re-run qtool calibrate or pass --allow-stale-calib"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error = %q, want it to contain %s", err, want)
		}
	}
}

func TestTableValidate(t *testing.T) {
	if err := sampleTable().Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
	table := sampleTable()
	table.Images = -3
	err := table.Validate()
	if err == nil || err.Error() != "calib: invalid table: images -3 is negative" {
		t.Errorf("Validate() = %v, want calib: invalid table: images -3 is negative", err)
	}
}

func TestNewEntryFromRange(t *testing.T) {
	s := DefaultSettings(MethodPercentile)
	r := Range{Alpha: -1, Beta: 2, Samples: 10, NaN: 1, Inf: 2}
	want := Entry{Alpha: -1, Beta: 2, Method: MethodPercentile, Settings: s, Samples: 10, NaN: 1, Inf: 2}
	if got := NewEntry(r, s); got != want {
		t.Errorf("NewEntry = %+v, want %+v", got, want)
	}
}
