package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/qtool-dev/qtool/internal/format"
)

// TestInterruptedWriteLeavesPreviousFile runs a child process that writes a new version of a
// file through format.WriteFileAtomic and stops halfway; the parent interrupts it and checks
// that the previous file is intact and no temporary file remains.
func TestInterruptedWriteLeavesPreviousFile(t *testing.T) {
	if path := os.Getenv("QTOOL_TEST_INTERRUPT_CHILD"); path != "" {
		defer handleSignals(os.Stderr)()
		format.WriteFileAtomic(path, func(w io.Writer) error {
			w.Write([]byte("partial new content"))
			fmt.Println("writing")
			select {} // wait for the signal
		})
		return
	}

	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "model.qmodel")
			os.WriteFile(path, []byte("previous"), 0o644)

			cmd := exec.Command(os.Args[0], "-test.run=^TestInterruptedWriteLeavesPreviousFile$")
			cmd.Env = append(os.Environ(), "QTOOL_TEST_INTERRUPT_CHILD="+path)
			stdout, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, _ := bufio.NewReader(stdout).ReadString('\n')
			if line != "writing\n" {
				t.Fatalf("child printed %q, want \"writing\"", line)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 2 {
				t.Fatalf("%d files while writing, want the old file and a temporary one", len(entries))
			}

			cmd.Process.Signal(sig)
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			select {
			case err := <-waited:
				want := 128 + int(sig)
				if code := cmd.ProcessState.ExitCode(); code != want {
					t.Errorf("child exit code %d (%v), want %d", code, err, want)
				}
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatal("child did not exit after the signal")
			}

			got, _ := os.ReadFile(path)
			if string(got) != "previous" {
				t.Errorf("file holds %q, want the previous content", got)
			}
			entries, _ = os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("%d files after the interrupt, want only the previous file", len(entries))
			}
		})
	}
}
