package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCIGateExample runs examples/ci-gate.sh with a freshly built qtool: the 8-bit LeNet passes
// a 1 pp budget and the 2-bit one fails it with exit status 3.
func TestCIGateExample(t *testing.T) {
	if testing.Short() {
		t.Skip("builds qtool and runs the pipeline twice")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	root, _ := filepath.Abs("../..")
	bin := filepath.Join(t.TempDir(), "qtool")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	cases := []struct {
		name   string
		args   []string
		status int
		stdout string
	}{
		{"8 bits within budget", []string{"1"}, 0, "ci-gate: pass: top-1 drop"},
		{"2 bits over budget", []string{"1", "--bits", "2"}, 3, "ci-gate: FAIL: top-1 drop"},
		{"bad flag", []string{"1", "--weights", "diagonal"}, 2, "qtool failed before the evaluation"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command("bash", append([]string{"examples/ci-gate.sh"}, c.args...)...)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "QTOOL="+bin)
			out, _ := cmd.CombinedOutput()
			if got := cmd.ProcessState.ExitCode(); got != c.status {
				t.Errorf("exit status %d, want %d; output:\n%s", got, c.status, out)
			}
			if !strings.Contains(string(out), c.stdout) {
				t.Errorf("output lacks %q:\n%s", c.stdout, out)
			}
		})
	}
}
