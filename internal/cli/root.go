// Package cli implements qtool's commands with cobra and viper.
//
// Each command has an options struct (streams first, then flag values), a constructor that
// binds its flags, and a run function that tests call directly. Settings resolve in this order:
// command-line flags, then QTOOL_* environment variables, then the --config file, then defaults.
// Main is the one place that maps errors to exit codes.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/qtool-dev/qtool/internal/format"
)

// Exit codes, as scripts rely on them.
const (
	ExitOK      = 0
	ExitFailure = 1 // bad input, I/O
	ExitUsage   = 2 // unknown command or flag, invalid flag value
	ExitGate    = 3 // a quality gate failed, such as eval --max-drop
)

// ExitError carries an exit code other than 1 to Main.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// usageError marks an error in the command line; Main prints the usage hint and exits with 2.
func usageError(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// globalOptions are the flags every command takes.
type globalOptions struct {
	config  string
	quiet   bool
	verbose bool
	viper   *viper.Viper
	log     *Logger
	// sources maps each flag whose value came from the config file or a QTOOL_* variable
	// to where it came from, so that an error about the flag can name it.
	sources map[string]string
}

// annotate appends to an error message that names a flag (--bits) where that flag's value
// came from, when it came from the config file or the environment rather than the command line.
func (g *globalOptions) annotate(err error) string {
	msg := err.Error()
	names := make([]string, 0, len(g.sources))
	for name := range g.sources {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if mentionsFlag(msg, name) {
			msg += fmt.Sprintf(" (the value of --%s came from %s)", name, g.sources[name])
		}
	}
	return msg
}

// mentionsFlag reports whether msg contains --name as a whole flag, not as the start of a
// longer one (--out in --output).
func mentionsFlag(msg, name string) bool {
	flag := "--" + name
	for rest := msg; ; {
		i := strings.Index(rest, flag)
		if i < 0 {
			return false
		}
		rest = rest[i+len(flag):]
		if rest == "" || !isFlagChar(rest[0]) {
			return true
		}
	}
}

func isFlagChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
}

// Main runs qtool with args and returns the process exit code.
func Main(args []string, s *Streams) int {
	defer handleSignals(s.Err)()

	root, g := newRootCmd(s)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}

	var exit *ExitError
	code := ExitFailure
	if errors.As(err, &exit) {
		code = exit.Code
	} else if isCobraUsageError(err) {
		code = ExitUsage
	}
	fmt.Fprintf(s.Err, "qtool: %s\n", g.annotate(err))
	if code == ExitUsage {
		fmt.Fprintln(s.Err, "Run 'qtool --help' or 'qtool COMMAND --help' for usage.")
	}
	return code
}

// handleSignals removes the temporary files of unfinished writes when SIGINT or SIGTERM
// arrives and exits with 128 plus the signal number (130 for SIGINT, 143 for SIGTERM), as
// shells report it. An interrupted command therefore leaves the previous output file or none.
// It returns a function that stops the handling.
func handleSignals(errOut io.Writer) func() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-stop:
			format.RemoveTempFiles()
			name, code := "SIGINT", 130
			if sig == syscall.SIGTERM {
				name, code = "SIGTERM", 143
			}
			fmt.Fprintf(errOut, "qtool: interrupted by %s; unfinished output files were removed\n", name)
			os.Exit(code)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(stop)
		close(done)
	}
}

// isCobraUsageError recognises the errors cobra and pflag return for a bad command line.
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, prefix := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "invalid argument",
		"flag needs an argument", "accepts ", "requires at least", "requires at most", "required flag", "bad flag syntax", "if any flags in the group"} {
		if strings.HasPrefix(msg, prefix) {
			return true
		}
	}
	return false
}

// NewRootCmd builds the qtool command tree writing to s.
func NewRootCmd(s *Streams) *cobra.Command {
	root, _ := newRootCmd(s)
	return root
}

// newRootCmd builds the command tree and returns its global options too.
func newRootCmd(s *Streams) (*cobra.Command, *globalOptions) {
	g := &globalOptions{viper: viper.New(), sources: map[string]string{}}
	root := &cobra.Command{
		Use:   "qtool",
		Short: "Post-training int8 quantization of CNNs, bit-exact and deterministic",
		Long: `qtool turns a float CNN (a JSON graph with NumPy weights) into an int8 model that runs on
integer multiply-accumulate hardware: fuse folds BatchNorm and activations, calibrate records
activation ranges, quantize writes the .qmodel file, eval compares integer and float inference.

Settings come from flags, then QTOOL_* environment variables (QTOOL_METHOD=entropy), then the
--config YAML file (method: entropy), then defaults.`,
		Example: `  qtool inspect testdata/lenet-mnist/model.json
  qtool pipeline -c configs/lenet-mnist.yaml`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.setup(cmd, s)
		},
	}
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &ExitError{Code: ExitUsage, Err: err}
	})

	pf := root.PersistentFlags()
	pf.StringVarP(&g.config, "config", "c", "", "YAML config file; its keys are the flag names with - written as _")
	pf.BoolVarP(&g.quiet, "quiet", "q", false, "print nothing on stderr but errors")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "print debug details on stderr")

	root.AddCommand(
		newVersionCmd(s),
		newInspectCmd(s, g),
	)
	for _, c := range extraCommands {
		root.AddCommand(c(s, g))
	}
	return root, g
}

// extraCommands lets each command file register its constructor.
var extraCommands []func(*Streams, *globalOptions) *cobra.Command

// setup reads the config file and applies config and environment values to every flag the
// user did not set, so that flags win over QTOOL_* variables, which win over the file.
func (g *globalOptions) setup(cmd *cobra.Command, s *Streams) error {
	v := g.viper
	v.SetEnvPrefix("QTOOL")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()

	if g.config == "" {
		g.config = os.Getenv("QTOOL_CONFIG")
	}
	if g.config != "" {
		v.SetConfigFile(g.config)
		if err := v.ReadInConfig(); err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				return fmt.Errorf("config %s: %v", g.config, pe.Err)
			}
			return fmt.Errorf("config %s: %v", g.config, err)
		}
	}

	var applyErr error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if applyErr != nil || f.Changed || f.Name == "config" || f.Name == "help" {
			return
		}
		key := strings.ReplaceAll(f.Name, "-", "_")
		if !v.IsSet(key) {
			return
		}
		source := fmt.Sprintf("key %s of config %s", key, g.config)
		if env := "QTOOL_" + strings.ToUpper(key); os.Getenv(env) != "" {
			source = env
		}
		val := configString(v.Get(key))
		if err := f.Value.Set(val); err != nil {
			applyErr = usageError("%s: invalid value %q for --%s: %s", source, val, f.Name, parseReason(f, err))
			return
		}
		g.sources[f.Name] = source
	})
	if applyErr != nil {
		return applyErr
	}
	if g.config != "" {
		if err := checkConfigKeys(v, cmd); err != nil {
			return err
		}
	}

	g.log = NewLogger(s.Err, g.quiet, g.verbose)
	return nil
}

// oneArg accepts exactly one positional argument and names it in the error otherwise, for
// example "fuse needs the MODEL argument: the float model's .json file".
func oneArg(name, description string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == 0:
			return usageError("%s needs the %s argument: %s", cmd.Name(), name, description)
		case len(args) > 1:
			return usageError("%s takes one %s argument (%s), got %d: %s",
				cmd.Name(), name, description, len(args), strings.Join(args, " "))
		}
		return nil
	}
}

// parseReason turns a flag parse error into words: strconv's errors become the expected type.
func parseReason(f *pflag.Flag, err error) string {
	var numErr *strconv.NumError
	if !errors.As(err, &numErr) {
		return err.Error()
	}
	switch f.Value.Type() {
	case "int", "int32", "int64", "uint", "uint64":
		return "expected a whole number"
	case "float32", "float64":
		return "expected a number"
	case "bool":
		return "expected true or false"
	}
	return "expected a " + f.Value.Type()
}

// configString renders a config value the way the flag parser reads it: lists become
// comma-separated.
func configString(val any) string {
	switch x := val.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, p := range x {
			parts[i] = fmt.Sprint(p)
		}
		return strings.Join(parts, ",")
	case []string:
		return strings.Join(x, ",")
	}
	return fmt.Sprint(val)
}

// configOnlyKeys are config keys without a flag (maps and nested settings).
var configOnlyKeys = map[string]bool{"methods": true, "preprocess": true}

// checkConfigKeys rejects config keys that are no command's flag, so a typo is not silently
// ignored.
func checkConfigKeys(v *viper.Viper, cmd *cobra.Command) error {
	known := map[string]bool{}
	collect := func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) { known[strings.ReplaceAll(f.Name, "-", "_")] = true })
	}
	for _, c := range cmd.Root().Commands() {
		collect(c)
	}
	collect(cmd.Root())

	var unknown []string
	for _, key := range v.AllKeys() {
		top := strings.SplitN(key, ".", 2)[0]
		if !known[top] && !configOnlyKeys[top] {
			unknown = append(unknown, top)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return usageError("config %s: unknown key %q; keys are flag names with - written as _ (see configs/example.yaml)", v.ConfigFileUsed(), unknown[0])
	}
	return nil
}
