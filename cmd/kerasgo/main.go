// Command kerasgo runs Keras models from Go through the TensorFlow C API:
// export, inspect, predict, train, evaluate, serve and version. Run
// `kerasgo help` for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/kerasgo/kerasgo/internal/cli"
	"github.com/kerasgo/kerasgo/tflog"
)

func main() {
	// TensorFlow's start-up lines were captured before main (see tflog);
	// hand stderr back and pass on the ones the user asked for.
	if _, err := tflog.Release(os.Stderr); err != nil {
		os.Stderr.WriteString("kerasgo: " + err.Error() + "\n")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
