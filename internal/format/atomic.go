package format

import (
	"errors"
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
//
// The renames are separate system calls. A SIGINT or SIGTERM that arrives between them waits
// for the last one (RemoveTempFiles takes the same lock). If a rename fails, the files already
// renamed are put back from hard-link backups of the old files, or removed where there was no
// old file.
// NOTE: on a file system without hard links the old file cannot be put back, so a failed second
// rename leaves the new first file beside the old second one.
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
	commitMu.Lock()
	defer commitMu.Unlock()
	return commitFiles(files, staged)
}

// renameFile and linkFile are os.Rename and os.Link; tests replace them to make one fail.
var (
	renameFile = os.Rename
	linkFile   = os.Link
)

// commitFiles renames each staged file over its path. For more than one file it first links a
// backup of every existing path, and if a rename fails it puts the renamed paths back.
func commitFiles(files []AtomicFile, staged []string) error {
	backups := make([]string, len(files))
	existed := make([]bool, len(files))
	if len(files) > 1 {
		for i, f := range files {
			if _, err := os.Lstat(f.Path); err == nil {
				existed[i] = true
				backups[i] = linkBackup(f.Path)
			}
		}
	}
	defer func() {
		for _, b := range backups {
			if b != "" {
				os.Remove(b)
				unregisterTemp(b)
			}
		}
	}()

	for i, f := range files {
		if err := renameFile(staged[i], f.Path); err != nil {
			err = fmt.Errorf("write %s: %w", f.Path, unwrapPath(err))
			for j := range i {
				var undoErr error
				switch {
				case backups[j] != "":
					undoErr = os.Rename(backups[j], files[j].Path)
					backups[j] = ""
				case !existed[j]:
					undoErr = os.Remove(files[j].Path)
				default:
					undoErr = errors.New("no backup of the old file could be made")
				}
				if undoErr != nil {
					err = fmt.Errorf("%w; %s is already the new file, which does not match the old %s (%v); write them again",
						err, files[j].Path, f.Path, unwrapPath(undoErr))
				}
			}
			return err
		}
	}
	return nil
}

// linkBackup makes a hard link to path under a temporary name in its folder and returns that
// name, or "" if the link failed.
func linkBackup(path string) string {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".old-*")
	if err != nil {
		return ""
	}
	name := tmp.Name()
	tmp.Close()
	os.Remove(name)
	if err := linkFile(path, name); err != nil {
		return ""
	}
	registerTemp(name)
	return name
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
