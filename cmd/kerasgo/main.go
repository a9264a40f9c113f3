// Command kerasgo runs Keras models from Go through the TensorFlow C API:
// export, inspect, predict. Run `kerasgo help` for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/kerasgo/kerasgo/internal/cli"
)

func main() {
	quietTensorFlow()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// quietTensorFlow keeps TensorFlow's C++ start-up chatter (info lines on every
// model load) off stderr unless the user chose a level. The library reads
// TF_CPP_MIN_LOG_LEVEL while it is being loaded, before main runs, so the
// variable only takes effect through a re-exec with it set.
func quietTensorFlow() {
	if _, set := os.LookupEnv("TF_CPP_MIN_LOG_LEVEL"); set {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	env := append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2")
	// On success Exec does not return; on failure we run with the chatter.
	_ = syscall.Exec(exe, os.Args, env)
}
