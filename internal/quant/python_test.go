package quant_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/qtool-dev/qtool/internal/format"
	"github.com/qtool-dev/qtool/internal/quant"
	"github.com/qtool-dev/qtool/internal/testutil"
)

// pythonSnippet returns the Python code between the snippet markers of docs/format.md.
func pythonSnippet(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "docs", "format.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<!-- python-snippet-begin -->")
	if !ok {
		t.Fatal("docs/format.md has no <!-- python-snippet-begin --> marker")
	}
	block, _, ok := strings.Cut(rest, "<!-- python-snippet-end -->")
	if !ok {
		t.Fatal("docs/format.md has no <!-- python-snippet-end --> marker")
	}
	block = strings.TrimSpace(block)
	block = strings.TrimPrefix(block, "```python")
	return strings.TrimSuffix(block, "```")
}

// TestFormatDocPythonSnippet runs the snippet of docs/format.md on the quantized LeNet and
// compares the int8 weights it prints with the Go reader's.
func TestFormatDocPythonSnippet(t *testing.T) {
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import numpy").Run(); err != nil {
		t.Skipf("skipped: %s cannot import numpy (%v); install python3-numpy to run this test", python, err)
	}

	l := loadLeNet(t)
	q, _, err := quant.Quantize(l.fused, l.fusedTable, quant.Options{})
	if err != nil {
		t.Fatalf("Quantize: %v", err)
	}
	path, _ := writeQModel(t, q)
	script := filepath.Join(t.TempDir(), "read_qmodel.py")
	if err := os.WriteFile(script, []byte(pythonSnippet(t)), 0o644); err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command(python, script, path).CombinedOutput()
	if err != nil {
		t.Fatalf("the snippet failed: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")

	var layers []*format.QNode
	for _, n := range q.Nodes {
		if n.Weight != "" {
			layers = append(layers, n)
		}
	}
	if len(lines) != len(layers) {
		t.Fatalf("the snippet printed %d lines, want one per layer (%d)", len(lines), len(layers))
	}
	for i, n := range layers {
		fields := strings.Fields(lines[i])
		want := q.Arrays[n.Weight]
		if fields[0] != n.Name {
			t.Errorf("line %d names %q, want %q", i, fields[0], n.Name)
			continue
		}
		if shape := strings.Trim(strings.ReplaceAll(testutil.Sprint(want.Shape), " ", "x"), "[]"); fields[1] != shape {
			t.Errorf("%s: shape %s, want %s", n.Name, fields[1], shape)
		}
		values := want.Data.([]int8)
		if len(fields)-2 != len(values) {
			t.Errorf("%s: %d values, want %d", n.Name, len(fields)-2, len(values))
			continue
		}
		for j, v := range values {
			got, err := strconv.Atoi(fields[2+j])
			if err != nil || got != int(v) {
				t.Errorf("%s: value %d is %s, want %d", n.Name, j, fields[2+j], v)
				break
			}
		}
	}

	// The snippet's checksum check rejects a corrupted file.
	data, _ := os.ReadFile(path)
	data[len(data)-1] ^= 1
	os.WriteFile(path, data, 0o644)
	out, err = exec.Command(python, script, path).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "checksum mismatch") {
		t.Errorf("the snippet read a corrupted file: %v\n%s", err, out)
	}
}
