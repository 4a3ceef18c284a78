package format

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFileAtomic writes a file through a temporary file in the same folder, synced and renamed
// over path only when write succeeded, so that readers see the old file or the complete new one,
// never a partial one. On failure the temporary file is removed.
func WriteFileAtomic(path string, write func(io.Writer) error) error {
	return WriteFilesAtomic(AtomicFile{Path: path, Write: write})
}

// AtomicFile is one file of WriteFilesAtomic: its path and the function that writes its content.
type AtomicFile struct {
	Path  string
	Write func(io.Writer) error
}

// WriteFilesAtomic writes files that belong together, such as a model's JSON graph and its
// weights. Every file is first written in full to a synced temporary file in its folder. Only
// when all of them succeeded are they renamed over their paths, in the order given. If any
// write fails, every temporary file is removed and no path changes.
func WriteFilesAtomic(files ...AtomicFile) (err error) {
	staged := make([]string, 0, len(files))
	defer func() {
		for _, tmpName := range staged {
			unregisterTemp(tmpName)
			if err != nil {
				os.Remove(tmpName)
			}
		}
	}()

	for _, f := range files {
		tmpName, stageErr := stageFile(f.Path, f.Write)
		if tmpName != "" {
			staged = append(staged, tmpName)
		}
		if stageErr != nil {
			return stageErr
		}
	}
	for i, f := range files {
		if err = os.Rename(staged[i], f.Path); err != nil {
			return fmt.Errorf("write %s: %w", f.Path, unwrapPath(err))
		}
	}
	return nil
}

// stageFile writes a temporary file beside path with write and syncs it. It returns the
// temporary file's name, registered for removal on a signal, whenever the file was created.
func stageFile(path string, write func(io.Writer) error) (string, error) {
	if st, statErr := os.Stat(path); statErr == nil && st.IsDir() {
		return "", fmt.Errorf("cannot write %s: it is a folder; give a file name", path)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("cannot write %s: %w", path, unwrapPath(err))
	}
	tmpName := tmp.Name()
	registerTemp(tmpName)

	if err := write(tmp); err != nil {
		tmp.Close()
		return tmpName, fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return tmpName, fmt.Errorf("write %s: %w", path, unwrapPath(err))
	}
	if err := tmp.Close(); err != nil {
		return tmpName, fmt.Errorf("write %s: %w", path, unwrapPath(err))
	}
	if err := os.Chmod(tmpName, 0o644); err != nil {
		return tmpName, fmt.Errorf("write %s: %w", path, unwrapPath(err))
	}
	return tmpName, nil
}
