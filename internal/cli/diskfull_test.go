//go:build linux

package cli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// fileSizeLimit is the RLIMIT_FSIZE of the child process in bytes. Each output file of LeNet
// (fused weights, calibration table, .qmodel) is larger.
const fileSizeLimit = 1024

// TestWriteBeyondFileSizeLimit simulates a full disk for fuse, calibrate and quantize. A child
// process lowers its RLIMIT_FSIZE, so a write past 1 KiB fails with EFBIG where a full disk
// would give ENOSPC, and runs each command on the LeNet fixture. Each must exit with 1, name the
// output file, and leave the previous output and no temporary file behind.
func TestWriteBeyondFileSizeLimit(t *testing.T) {
	if dir := os.Getenv("QTOOL_TEST_FSIZE_CHILD"); dir != "" {
		runUnderFileSizeLimit(t, dir)
		return
	}

	fixture := buildLeNetFixture(t)
	// fuse writes out.npz first and out.json after it, so its error names out.npz.
	outputs := map[string][]string{"fuse": {"out.npz", "out.json"}, "calibrate": {"out-calib.json"}, "quantize": {"out.qmodel"}}
	for _, names := range outputs {
		for _, name := range names {
			writeFile(t, fixture, name, "previous output\n")
		}
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestWriteBeyondFileSizeLimit$")
	cmd.Env = append(os.Environ(), "QTOOL_TEST_FSIZE_CHILD="+fixture)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child process: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}

	// The child prints one line per command: the command, the exit code and stderr, tab-separated.
	results := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		fields := strings.SplitN(line, "\t", 3)
		if len(fields) == 3 {
			results[fields[0]] = fields[1:]
		}
	}
	for command, files := range outputs {
		t.Run(command, func(t *testing.T) {
			result, ok := results[command]
			if !ok {
				t.Fatalf("the child did not run %s; its stdout: %s", command, stdout.String())
			}
			code, message := result[0], result[1]
			if code != strconv.Itoa(ExitFailure) {
				t.Errorf("exit code %s, want 1; stderr: %s", code, message)
			}
			if !strings.Contains(message, files[0]) {
				t.Errorf("error does not name %s: %s", files[0], message)
			}
			if !strings.Contains(message, "file too large") {
				t.Errorf("error does not give the failed write's cause: %s", message)
			}
			for _, name := range files {
				if raw, _ := os.ReadFile(filepath.Join(fixture, name)); string(raw) != "previous output\n" {
					t.Errorf("%s changed: %q", name, raw)
				}
			}
		})
	}
	entries, _ := os.ReadDir(fixture)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// runUnderFileSizeLimit lowers RLIMIT_FSIZE and runs fuse, calibrate and quantize on the
// fixture folder dir, printing each result for the parent.
func runUnderFileSizeLimit(t *testing.T, dir string) {
	limit := syscall.Rlimit{Cur: fileSizeLimit, Max: fileSizeLimit}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatalf("setrlimit: %v", err)
	}
	runs := map[string][]string{
		"fuse":      fuseArgs(dir),
		"calibrate": calibrateArgs(dir, lenetCalibData),
		"quantize":  quantizeArgs(dir, lenetTable),
	}
	for name, args := range runs {
		code, _, stderr := runCLI(t, append(args, "--quiet")...)
		fmt.Printf("%s\t%d\t%s\n", name, code, strings.ReplaceAll(strings.TrimSpace(stderr), "\n", " | "))
	}
}
