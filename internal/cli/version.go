package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/qtool-dev/qtool/internal/gemm"
)

// Version is set at build time with -ldflags "-X github.com/qtool-dev/qtool/internal/cli.Version=v1.2.3";
// otherwise the module version from the build info is used.
var Version = ""

func newVersionCmd(s *Streams) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print qtool's version, Go version and the integer and float kernel paths in use",
		Example: "  qtool version",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			v := Version
			if v == "" {
				v = buildVersion()
			}
			fmt.Fprintf(s.Out, "qtool %s\ngo %s %s/%s\nkernel %s\nfloat kernel %s\n",
				v, runtime.Version(), runtime.GOOS, runtime.GOARCH, gemm.KernelPath(), gemm.FloatKernelPath())
			return nil
		},
	}
}

// buildVersion returns the module version from the build info, or "(devel)" followed by the
// git commit that go build or go install recorded, with "+dirty" when the work tree had changes.
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	if info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	v := "(devel)"
	var revision, modified string
	for _, setting := range info.Settings {
		switch setting.Key {
		case "vcs.revision":
			revision = setting.Value
		case "vcs.modified":
			modified = setting.Value
		}
	}
	if revision != "" {
		v += " " + revision[:min(12, len(revision))]
		if modified == "true" {
			v += "+dirty"
		}
	}
	return v
}
