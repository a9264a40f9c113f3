// Package cli implements the kerasgo command: one file per subcommand, each
// with its own flag set, writing to the io.Writers it is given.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// Exit codes of Main.
const (
	ExitOK      = 0 // success
	ExitFailure = 1 // the command ran and failed (bad data, a model error, ...)
	ExitUsage   = 2 // the command line is wrong
	// ExitNotPromoted: train --into ran, and the new model was not better
	// than the served one, so nothing was published. Not a failure.
	ExitNotPromoted = 3
)

// Env is what a command may touch of the outside world.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads environment variables (os.Getenv in the real binary).
	Getenv func(string) string
	// Verbose is set by --verbose: the user wants TensorFlow's own log
	// lines, here and in the Python processes kerasgo starts.
	Verbose bool
}

// Command is one kerasgo subcommand.
type Command struct {
	Name      string
	UsageLine string // e.g. "kerasgo predict MODEL_DIR --input FILE..."
	Short     string // one line for the command list
	Long      string // shown by `kerasgo help NAME`
	// Setup binds the command's flags to a new options value in fs and
	// returns the function that runs the command with the remaining arguments.
	Setup func(fs *pflag.FlagSet) func(ctx context.Context, env *Env, args []string) error
}

// usageError marks an error in the command line: Main exits with ExitUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func commands() []*Command {
	return []*Command{exportCommand(), inspectCommand(), predictCommand(), trainCommand(), evaluateCommand(), serveCommand(), versionCommand()}
}

// verboseUsage documents --verbose, which every command accepts. The flag is
// read before main, when TensorFlow loads (tflog); here it is only
// accepted and documented.
const verboseUsage = "show TensorFlow's own log lines on stderr (also KERASGO_VERBOSE=1)"

// Main runs kerasgo with args (without the program name) and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	env := &Env{Stdin: os.Stdin, Stdout: stdout, Stderr: stderr, Getenv: os.Getenv}
	return run(ctx, env, args)
}

func run(ctx context.Context, env *Env, args []string) int {
	for len(args) > 0 && (args[0] == "--verbose" || args[0] == "--verbose=true") {
		env.Verbose = true
		args = args[1:]
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		printUsage(env.Stdout)
		return ExitOK
	}
	name := args[0]
	if name == "help" {
		switch len(args) {
		case 1:
			printUsage(env.Stdout)
			return ExitOK
		case 2:
			if c := find(args[1]); c != nil {
				printHelp(env.Stdout, c)
				return ExitOK
			}
			fmt.Fprintf(env.Stderr, "kerasgo help %s: unknown command. Run 'kerasgo help'.\n", args[1])
		default:
			fmt.Fprintf(env.Stderr, "usage: kerasgo help [command]\n")
		}
		return ExitUsage
	}
	c := find(name)
	if c == nil {
		fmt.Fprintf(env.Stderr, "kerasgo: unknown command %q\n\n", name)
		printUsage(env.Stderr)
		return ExitUsage
	}
	fs, runFn := flagSet(c)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			printHelp(env.Stdout, c)
			return ExitOK
		}
		fmt.Fprintf(env.Stderr, "kerasgo %s: %v\nusage: %s\n", c.Name, err, c.UsageLine)
		return ExitUsage
	}
	if v, err := fs.GetBool("verbose"); err == nil && v {
		env.Verbose = true
	}
	if err := runFn(ctx, env, fs.Args()); err != nil {
		fmt.Fprintf(env.Stderr, "kerasgo %s: %v\n", c.Name, err)
		var np *notPromotedError
		if errors.As(err, &np) {
			return ExitNotPromoted
		}
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(env.Stderr, "usage: %s\n", c.UsageLine)
			return ExitUsage
		}
		return ExitFailure
	}
	return ExitOK
}

// flagSet returns a new flag set for c, with the flags every command takes,
// and the function that runs c.
func flagSet(c *Command) (*pflag.FlagSet, func(context.Context, *Env, []string) error) {
	fs := pflag.NewFlagSet(c.Name, pflag.ContinueOnError)
	runFn := c.Setup(fs)
	fs.Bool("verbose", false, verboseUsage)
	return fs, runFn
}

func printHelp(w io.Writer, c *Command) {
	fmt.Fprintf(w, "usage: %s\n\n%s\n\nFlags:\n", c.UsageLine, strings.TrimSpace(c.Long))
	fs, _ := flagSet(c)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

func find(name string) *Command {
	for _, c := range commands() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "kerasgo runs Keras models from Go through the TensorFlow C API.")
	fmt.Fprintln(w, "\nUsage: kerasgo <command> [arguments]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.Name, c.Short)
	}
	fmt.Fprintln(w, "\nRun 'kerasgo help <command>' for a command's flags. Every command takes")
	fmt.Fprintln(w, "--verbose (or KERASGO_VERBOSE=1) to show TensorFlow's own log lines.")
}
