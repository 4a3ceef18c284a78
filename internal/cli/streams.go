package cli

import (
	"io"
	"os"

	"golang.org/x/term"
)

// Streams are the standard streams a command writes to. Results go to Out; logs, warnings and
// progress go to Err. Tests inject buffers.
type Streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
	// ErrIsTerminal enables progress bars; they are drawn only on a terminal.
	ErrIsTerminal bool
}

// SystemStreams returns the process's standard streams.
func SystemStreams() *Streams {
	return &Streams{
		In:            os.Stdin,
		Out:           os.Stdout,
		Err:           os.Stderr,
		ErrIsTerminal: term.IsTerminal(int(os.Stderr.Fd())),
	}
}
