package cli

import (
	"fmt"
	"io"
)

// Logger writes status lines to stderr: Infof and Warnf unless --quiet, Debugf only with
// --verbose. Results never go through it.
type Logger struct {
	w       io.Writer
	quiet   bool
	verbose bool
}

// NewLogger returns a Logger writing to w.
func NewLogger(w io.Writer, quiet, verbose bool) *Logger {
	return &Logger{w: w, quiet: quiet, verbose: verbose && !quiet}
}

// Infof prints a status line.
func (l *Logger) Infof(format string, args ...any) {
	if l != nil && !l.quiet {
		fmt.Fprintf(l.w, format+"\n", args...)
	}
}

// Warnf prints a warning line prefixed with "warning: ".
func (l *Logger) Warnf(format string, args ...any) {
	if l != nil && !l.quiet {
		fmt.Fprintf(l.w, "warning: "+format+"\n", args...)
	}
}

// Debugf prints a line only with --verbose.
func (l *Logger) Debugf(format string, args ...any) {
	if l != nil && l.verbose {
		fmt.Fprintf(l.w, format+"\n", args...)
	}
}
