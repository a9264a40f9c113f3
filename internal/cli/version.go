package cli

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/pflag"

	"github.com/kerasgo/kerasgo/tfmodel"
)

func versionCommand() *Command {
	return &Command{
		Name:      "version",
		UsageLine: "kerasgo version",
		Short:     "print the kerasgo, TensorFlow C library and Go versions",
		Long: `Version prints kerasgo's version (the module version, or the commit it was
built from), the version of the TensorFlow C library it runs on, and the Go
toolchain and platform it was built with.`,
		Setup: func(*pflag.FlagSet) func(context.Context, *Env, []string) error {
			return runVersion
		},
	}
}

func runVersion(_ context.Context, env *Env, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected arguments %q", args)
	}
	fmt.Fprintf(env.Stdout, "kerasgo %s\n", kerasgoVersion())
	fmt.Fprintf(env.Stdout, "TensorFlow C library %s\n", tfmodel.TensorFlowVersion())
	fmt.Fprintf(env.Stdout, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// kerasgoVersion is the main module's version from the build information:
// a release tag, or a pseudo-version naming the commit (with "+dirty" for
// uncommitted changes), or the commit itself when the go command recorded
// no version.
func kerasgoVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown: built without module information)"
	}
	v := info.Main.Version
	if v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	if rev == "" {
		return "(devel)"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return "(devel) commit " + rev + modified
}
