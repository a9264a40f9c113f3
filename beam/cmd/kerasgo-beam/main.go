// Command kerasgo-beam scores files with a kerasgo model on Apache Beam:
// locally on Prism (the default runner), or on Flink, Spark or Dataflow
// with a worker image that holds libtensorflow (see beam/README.md).
//
//	kerasgo-beam --model MODEL_DIR --input 'data/*.libsvm' --output out/pred [--runner prism]
//
// Every range of lines becomes one output file, OUTPUT-<file hash>-<first
// line>.csv (or .jsonl), whose rows start with their origin: file and line.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/x/beamx"

	"github.com/kerasgo/kerasgo/beam/beamscore"
	"github.com/kerasgo/kerasgo/rowio"
	"github.com/kerasgo/kerasgo/tflog"
)

// inputs collects repeated --input flags.
type inputs []string

func (in *inputs) String() string     { return strings.Join(*in, ",") }
func (in *inputs) Set(v string) error { *in = append(*in, v); return nil }

func main() {
	// TensorFlow's start-up lines, as in kerasgo: kept unless asked for.
	if _, err := tflog.Release(os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "kerasgo-beam:", err)
	}
	var cfg beamscore.Config
	var in inputs
	flag.StringVar(&cfg.Model, "model", "", "SavedModel directory, readable on every worker")
	flag.Var(&in, "input", "input file glob; repeat for several")
	flag.StringVar(&cfg.Format, "format", "auto", "input format: auto, libsvm, jsonl, csv, tsv (no header), text")
	flag.StringVar(&cfg.Output, "output", "", "output file prefix")
	var outputFormat string
	flag.StringVar(&outputFormat, "output-format", "csv", "csv or jsonl")
	flag.IntVar(&cfg.TopK, "top-k", 0, "write only the K most probable classes per row")
	var threshold float64
	flag.Float64Var(&threshold, "threshold", 0.5, "probability at which a multi-label model predicts a class")
	flag.BoolVar(&cfg.SkipBadRows, "skip-bad-rows", false, "write unreadable rows to dead-letter files instead of failing")
	flag.IntVar(&cfg.BatchSize, "batch-size", 500, "rows per model call")
	flag.IntVar(&cfg.LinesPerSplit, "lines-per-split", 20000, "lines in one unit of work")
	flag.Parse()
	beam.Init()
	cfg.Inputs, cfg.Threshold, cfg.OutputFormat = in, float32(threshold), rowio.OutputFormat(outputFormat)

	ctx := context.Background()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "kerasgo-beam:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg beamscore.Config) error {
	// The model must load before the job starts; on a remote runner, the
	// launcher needs the same directory as the workers for this check.
	if err := beamscore.Check(ctx, cfg); err != nil {
		return err
	}
	p, s := beam.NewPipelineWithRoot()
	if err := beamscore.Build(s, cfg); err != nil {
		return err
	}
	slog.Info("kerasgo-beam: running", "model", cfg.Model, "inputs", cfg.Inputs, "output", cfg.Output)
	return beamx.Run(ctx, p)
}
