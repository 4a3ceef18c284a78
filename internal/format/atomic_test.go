package format

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWriteFileAtomicDiskFull(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "calib.json")
	os.WriteFile(path, []byte("previous"), 0o644)

	err := WriteFileAtomic(path, func(w io.Writer) error {
		w.Write([]byte("half"))
		return &os.PathError{Op: "write", Path: "tmp", Err: syscall.ENOSPC}
	})
	if err == nil || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v does not report ENOSPC for %s", err, path)
	}
	got, _ := os.ReadFile(path)
	if string(got) != "previous" {
		t.Errorf("file holds %q after the failed write, want the previous content", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d files after the failed write, want 1 (the temporary file must be removed)", len(entries))
	}
}

func TestWriteFileAtomicUnwritableFolder(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can write to read-only folders; the missing-folder case below still runs")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o500)
	defer os.Chmod(dir, 0o700)
	err := WriteFileAtomic(filepath.Join(dir, "x.json"), func(w io.Writer) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("error %v, want permission denied", err)
	}
}

func TestWriteFileAtomicMissingFolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "x.json")
	err := WriteFileAtomic(path, func(w io.Writer) error { return nil })
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("error %v does not name %s and the missing folder", err, path)
	}
}

func TestWriteFileAtomicReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.json")
	for _, content := range []string{"one", "two"} {
		if err := WriteFileAtomic(path, func(w io.Writer) error { _, err := w.Write([]byte(content)); return err }); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(path)
		if string(got) != content {
			t.Errorf("file holds %q, want %q", got, content)
		}
	}
}

func TestWriteFileAtomicParentIsAFile(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "file")
	os.WriteFile(parent, nil, 0o644)
	path := filepath.Join(parent, "x.json")
	err := WriteFileAtomic(path, func(w io.Writer) error { return nil })
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("error %v does not name %s and say the folder is not a directory", err, path)
	}
}

// TestWriteFilesAtomicSecondFails checks that when the second file of a pair fails, neither
// path changes and no temporary file remains.
func TestWriteFilesAtomicSecondFails(t *testing.T) {
	dir := t.TempDir()
	weights, graph := filepath.Join(dir, "fused.npz"), filepath.Join(dir, "fused.json")
	os.WriteFile(weights, []byte("old weights"), 0o644)
	os.WriteFile(graph, []byte("old graph"), 0o644)

	err := WriteFilesAtomic(
		AtomicFile{Path: weights, Write: func(w io.Writer) error { _, err := w.Write([]byte("new weights")); return err }},
		AtomicFile{Path: graph, Write: func(w io.Writer) error {
			return &os.PathError{Op: "write", Path: "tmp", Err: syscall.ENOSPC}
		}},
	)
	if err == nil || !strings.Contains(err.Error(), graph) {
		t.Fatalf("error %v does not name %s", err, graph)
	}
	for path, want := range map[string]string{weights: "old weights", graph: "old graph"} {
		if got, _ := os.ReadFile(path); string(got) != want {
			t.Errorf("%s holds %q after the failed write, want %q", path, got, want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("%d files after the failed write, want 2 (temporary files must be removed)", len(entries))
	}
}

// TestWriteFilesAtomicWritesAll checks that a pair that succeeds replaces both files.
func TestWriteFilesAtomicWritesAll(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte("old"), 0o644)
	err := WriteFilesAtomic(
		AtomicFile{Path: a, Write: func(w io.Writer) error { _, err := w.Write([]byte("new a")); return err }},
		AtomicFile{Path: b, Write: func(w io.Writer) error { _, err := w.Write([]byte("new b")); return err }},
	)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{a: "new a", b: "new b"} {
		if got, _ := os.ReadFile(path); string(got) != want {
			t.Errorf("%s holds %q, want %q", path, got, want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("%d files, want 2", len(entries))
	}
}

// TestWriteFilesAtomicRenameFails makes the second rename fail and checks that the first
// file is put back: its old content where it existed, no file where it did not.
func TestWriteFilesAtomicRenameFails(t *testing.T) {
	for _, existed := range []bool{true, false} {
		dir := t.TempDir()
		weights, graph := filepath.Join(dir, "fused.npz"), filepath.Join(dir, "fused.json")
		if existed {
			os.WriteFile(weights, []byte("old weights"), 0o644)
		}
		os.WriteFile(graph, []byte("old graph"), 0o644)

		calls := 0
		renameFile = func(from, to string) error {
			calls++
			if calls == 2 {
				return &os.LinkError{Op: "rename", Old: from, New: to, Err: syscall.EXDEV}
			}
			return os.Rename(from, to)
		}
		err := WriteFilesAtomic(
			AtomicFile{Path: weights, Write: func(w io.Writer) error { _, err := w.Write([]byte("new weights")); return err }},
			AtomicFile{Path: graph, Write: func(w io.Writer) error { _, err := w.Write([]byte("new graph")); return err }},
		)
		renameFile = os.Rename
		if err == nil || !strings.Contains(err.Error(), "write "+graph) || strings.Contains(err.Error(), ".tmp-") {
			t.Fatalf("existed=%v: error %v, want one that names %s and no temporary file", existed, err, graph)
		}
		got, readErr := os.ReadFile(weights)
		switch {
		case existed && string(got) != "old weights":
			t.Errorf("existed=%v: %s holds %q, want the old weights back", existed, weights, got)
		case !existed && readErr == nil:
			t.Errorf("existed=%v: %s exists after the failed pair write", existed, weights)
		}
		if got, _ := os.ReadFile(graph); string(got) != "old graph" {
			t.Errorf("existed=%v: %s holds %q, want the old graph", existed, graph, got)
		}
		want := 1
		if existed {
			want = 2
		}
		if entries, _ := os.ReadDir(dir); len(entries) != want {
			t.Errorf("existed=%v: %d files after the failed write, want %d", existed, len(entries), want)
		}
	}
}

// TestWriteFilesAtomicNoBackup checks that the error of a failed second rename, with no backup
// of the old first file, reports that the two files no longer match.
func TestWriteFilesAtomicNoBackup(t *testing.T) {
	dir := t.TempDir()
	weights, graph := filepath.Join(dir, "fused.npz"), filepath.Join(dir, "fused.json")
	os.WriteFile(weights, []byte("old weights"), 0o644)
	os.WriteFile(graph, []byte("old graph"), 0o644)

	calls := 0
	renameFile = func(from, to string) error {
		calls++
		if calls == 2 {
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: syscall.EXDEV}
		}
		return os.Rename(from, to)
	}
	linkFile = func(string, string) error { return syscall.EPERM }
	defer func() { renameFile, linkFile = os.Rename, os.Link }()

	err := WriteFilesAtomic(
		AtomicFile{Path: weights, Write: func(w io.Writer) error { _, err := w.Write([]byte("new weights")); return err }},
		AtomicFile{Path: graph, Write: func(w io.Writer) error { _, err := w.Write([]byte("new graph")); return err }},
	)
	if err == nil || !strings.Contains(err.Error(), weights+" is already the new file") {
		t.Fatalf("error %v does not say that %s no longer matches %s", err, weights, graph)
	}
}
