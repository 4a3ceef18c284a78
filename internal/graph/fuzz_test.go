package graph

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/qtool-dev/qtool/internal/testutil"
)

// FuzzLoad feeds arbitrary model JSON to Load next to the real weights of the synthetic models:
// Load must return a model or an error, never panic, and a loaded model
// must have a shape for every tensor.
func FuzzLoad(f *testing.F) {
	root := testutil.RepoRoot(f)
	var dirs []string
	for _, name := range []string{"synthetic/dwconv-bn-relu6", "synthetic/residual-bn-noaffine", "synthetic/concat-pool-bn1d"} {
		dir := filepath.Join(root, "testdata", name)
		raw, err := os.ReadFile(filepath.Join(dir, "model.json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, uint8(len(dirs)))
		dirs = append(dirs, dir)
	}
	work := f.TempDir()
	for i, dir := range dirs {
		copied := testutil.CopyDir(f, dir)
		os.Rename(copied, filepath.Join(work, string(rune('a'+i))))
	}

	f.Fuzz(func(t *testing.T, raw []byte, which uint8) {
		dir := filepath.Join(work, string(rune('a'+int(which)%len(dirs))))
		path := filepath.Join(dir, "fuzz.json")
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := Load(path)
		if err != nil {
			return
		}
		for _, n := range m.Nodes {
			if m.Shapes[n.Name] == nil {
				t.Fatalf("node %q has no shape", n.Name)
			}
		}
		if _, err := m.MarshalJSON(); err != nil {
			t.Fatalf("MarshalJSON of a loaded model: %v", err)
		}
	})
}

// FuzzParse checks the graph checks alone, without parameters: no panic on any input, and a
// parsed graph writes back to JSON that parses to the same graph.
func FuzzParse(f *testing.F) {
	root := testutil.RepoRoot(f)
	for _, name := range []string{"lenet-mnist", "synthetic/dwconv-bn-relu6", "synthetic/residual-bn-noaffine", "synthetic/concat-pool-bn1d"} {
		raw, err := os.ReadFile(filepath.Join(root, "testdata", name, "model.json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := Parse(raw)
		if err != nil {
			return
		}
		doc, err := m.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON: %v", err)
		}
		again, err := Parse(doc)
		if err != nil {
			t.Fatalf("the written graph does not parse: %v\n%s", err, doc)
		}
		if len(again.Nodes) != len(m.Nodes) {
			t.Fatalf("round trip changed the node count from %d to %d", len(m.Nodes), len(again.Nodes))
		}
	})
}
