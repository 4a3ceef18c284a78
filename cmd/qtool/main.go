// Command qtool quantizes float CNNs to int8 with bit-exact integer arithmetic.
// See README.md for a guide; the commands live in internal/cli.
package main

import (
	"os"

	"github.com/qtool-dev/qtool/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.SystemStreams()))
}
