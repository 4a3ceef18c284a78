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
				v = "(devel)"
				if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
					v = info.Main.Version
				}
			}
			fmt.Fprintf(s.Out, "qtool %s\ngo %s %s/%s\nkernel %s\nfloat kernel %s\n",
				v, runtime.Version(), runtime.GOOS, runtime.GOARCH, gemm.KernelPath(), gemm.FloatKernelPath())
			return nil
		},
	}
}
