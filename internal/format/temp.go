package format

import (
	"os"
	"sync"
)

// The temporary files being written, so that a signal handler can remove them before exit.
var (
	tempMu    sync.Mutex
	tempFiles = map[string]bool{}
)

// commitMu is held while WriteFilesAtomic renames its files into place.
var commitMu sync.Mutex

func registerTemp(name string) {
	tempMu.Lock()
	tempFiles[name] = true
	tempMu.Unlock()
}

func unregisterTemp(name string) {
	tempMu.Lock()
	delete(tempFiles, name)
	tempMu.Unlock()
}

// RemoveTempFiles deletes every temporary file that WriteFileAtomic has not yet renamed. The
// CLI calls it when SIGINT or SIGTERM arrives, so an interrupted write leaves the previous file
// or none.
func RemoveTempFiles() {
	// Let a WriteFilesAtomic that is renaming its files finish, so that a group of files is
	// replaced whole or not at all.
	commitMu.Lock()
	defer commitMu.Unlock()
	tempMu.Lock()
	defer tempMu.Unlock()
	for name := range tempFiles {
		os.Remove(name)
		delete(tempFiles, name)
	}
}
