package format

import (
	"os"
	"sync"
)

// The temporary files being written, so that a signal handler can remove them before exit.
// stopping is set once RemoveTempFiles has run; a file registered after that is removed at once.
var (
	tempMu    sync.Mutex
	tempFiles = map[string]bool{}
	stopping  bool
)

// commitMu is held while WriteFilesAtomic renames its files into place.
var commitMu sync.Mutex

func registerTemp(name string) {
	tempMu.Lock()
	defer tempMu.Unlock()
	if stopping {
		// The process is exiting after a signal: leave nothing behind and wait for the exit.
		os.Remove(name)
		tempMu.Unlock()
		select {}
	}
	tempFiles[name] = true
}

func unregisterTemp(name string) {
	tempMu.Lock()
	delete(tempFiles, name)
	tempMu.Unlock()
}

// RemoveTempFiles deletes every temporary file that WriteFileAtomic has not yet renamed. The
// CLI calls it when SIGINT or SIGTERM arrives, just before it exits, so an interrupted write
// leaves the previous file or none. It first waits for a WriteFilesAtomic that is renaming its
// files, so a group of files is replaced whole or not at all. It then keeps that lock until the
// exit, so no other write starts its renames, and a temporary file created later is removed at
// once.
func RemoveTempFiles() {
	commitMu.Lock() // held until the process exits
	tempMu.Lock()
	defer tempMu.Unlock()
	stopping = true
	for name := range tempFiles {
		os.Remove(name)
		delete(tempFiles, name)
	}
}
