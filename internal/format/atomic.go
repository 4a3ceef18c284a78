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
func WriteFileAtomic(path string, write func(io.Writer) error) (err error) {
	if st, statErr := os.Stat(path); statErr == nil && st.IsDir() {
		return fmt.Errorf("cannot write %s: it is a folder; give a file name", path)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, unwrapPath(err))
	}
	tmpName := tmp.Name()
	registerTemp(tmpName)
	defer func() {
		unregisterTemp(tmpName)
		if err != nil {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()

	if err = write(tmp); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, unwrapPath(err))
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, unwrapPath(err))
	}
	if err = os.Chmod(tmpName, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, unwrapPath(err))
	}
	if err = os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("write %s: %w", path, unwrapPath(err))
	}
	return nil
}
