package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/kerasgo/kerasgo"
	"github.com/kerasgo/kerasgo/atomicfile"
	"github.com/kerasgo/kerasgo/rowio"
	"github.com/kerasgo/kerasgo/score"
	"github.com/kerasgo/kerasgo/serving/requestlog"
)

type predictFlags struct {
	inputs       []string
	format       string
	output       string
	outputFormat string
	batchSize    int
	workers      int
	topK         int
	threshold    float32
	idColumn     string
	shard        string
	skipBadRows  bool
}

func predictCommand() *Command {
	return &Command{
		Name:      "predict",
		UsageLine: "kerasgo predict MODEL_DIR --input FILE [--input FILE]... [--output FILE|-] [flags]",
		Short:     "score data files with a SavedModel, streaming and in parallel",
		Long: `Predict streams rows from the input files, scores them in batches through
the model's serving signature with several batches in flight, and writes one
prediction per row in input order: the id (or row number), the predicted
label(s) (argmax for single-label models, every class at or above
--threshold for multi-label ones), the winning probability, and every class's
probability (or the --top-k best). Memory stays flat whatever the input size.

Inputs (--format auto picks by extension; "-" reads standard input):
  csv, tsv  one feature per column; optional header; --id-column (default "id")
  jsonl     {"id": …, "x": [...]} dense or {"indices": [...], "values": [...]} sparse
  npy       2-D float32/float64 NumPy array, streamed
  libsvm    svmlight sparse rows (.libsvm, .svm); zero- or one-based indices
            detected as scikit-learn does (files only; on stdin they are zero-based)
  text      raw text, one document a line (.txt), through the vectorizer the
            exporter stored with the model (JSONL {"text": ...} rows too)
  predictionlog  a request log kerasgo serve wrote (.tfrecord): the logged
            Predict requests' rows, with ids REQUEST_ID (REQUEST_ID#k for a
            request of several rows); stderr then says how often this model's
            top class differs from the answers logged

Bad input stops the run with the file, line and field; --skip-bad-rows counts
and reports such rows instead. --shard I/N scores every N-th batch starting at
batch I, so N processes split one file; row numbers stay those of the whole
file. The output file is written under a temporary name and renamed when
complete, so a failed run never leaves a file that looks finished.
A progress bar shows on a terminal (stderr), nowhere else.`,
		Setup: func(fs *pflag.FlagSet) func(context.Context, *Env, []string) error {
			f := &predictFlags{}
			fs.StringArrayVar(&f.inputs, "input", nil, "input file; repeat for several (- for stdin)")
			fs.StringVar(&f.format, "format", "auto", "input format: auto, csv, tsv, jsonl, npy, libsvm, text, predictionlog (a kerasgo serve request log, .tfrecord)")
			fs.StringVarP(&f.output, "output", "o", "-", "output file, - for stdout")
			fs.StringVar(&f.outputFormat, "output-format", "", "csv or jsonl (default: by --output's extension, else csv)")
			fs.IntVar(&f.batchSize, "batch-size", 500, "rows per model call")
			fs.IntVar(&f.workers, "workers", 0, "model calls running at once (default: CPUs, at most 4)")
			fs.IntVar(&f.topK, "top-k", 0, "write only the K most probable classes per row")
			fs.Float32Var(&f.threshold, "threshold", 0.5, "probability at which a multi-label model predicts a class")
			fs.StringVar(&f.idColumn, "id-column", "", `CSV/TSV column with example ids (default "id" when present)`)
			fs.StringVar(&f.shard, "shard", "", "I/N: score only every N-th batch, starting at batch I (0-based)")
			fs.BoolVar(&f.skipBadRows, "skip-bad-rows", false, "count and report unreadable rows instead of stopping")
			return f.run
		},
	}
}

func (f *predictFlags) scoreOptions() (score.Options, error) {
	opts := score.Options{BatchSize: f.batchSize, Workers: f.workers, SkipBadRows: f.skipBadRows}
	if f.batchSize <= 0 {
		return opts, usagef("--batch-size must be at least 1")
	}
	if f.workers < 0 {
		return opts, usagef("--workers must be 0 (automatic) or more")
	}
	if f.topK < 0 {
		return opts, usagef("--top-k must be 0 (every class) or more")
	}
	if f.threshold <= 0 || f.threshold > 1 {
		return opts, usagef("--threshold must be in (0, 1]")
	}
	if f.shard != "" {
		i, n, ok := strings.Cut(f.shard, "/")
		si, err1 := strconv.Atoi(i)
		sn, err2 := strconv.Atoi(n)
		if !ok || err1 != nil || err2 != nil || sn < 1 || si < 0 || si >= sn {
			return opts, usagef("--shard %q: want I/N with 0 <= I < N", f.shard)
		}
		opts.Shard, opts.Shards = si, sn
	}
	return opts, nil
}

func (f *predictFlags) run(ctx context.Context, env *Env, args []string) error {
	if len(args) != 1 {
		return usagef("want one MODEL_DIR, got %d arguments", len(args))
	}
	if len(f.inputs) == 0 {
		return usagef("--input is required")
	}
	sopts, err := f.scoreOptions()
	if err != nil {
		return err
	}
	outFormat, err := rowio.ParseOutputFormat(f.outputFormat, f.output)
	if err != nil {
		return usagef("--output-format: %v", err)
	}
	for _, in := range f.inputs {
		if _, err := rowio.ParseFormat(f.format, in); err != nil {
			return usagef("--format: %v", err)
		}
	}

	mopts := kerasgo.DefaultOptions()
	mopts.Runtime.BatchSize = f.batchSize
	m, err := kerasgo.Open(ctx, args[0], mopts)
	if err != nil {
		return err
	}
	defer m.Close()
	popts := m.PredictionOptions(f.threshold, f.topK)
	var out io.Writer = env.Stdout
	var file *atomicfile.File
	if f.output != "-" {
		if file, err = atomicfile.Create(f.output); err != nil {
			return err
		}
		defer file.Abort()
		out = file
	}
	w := rowio.NewPredictionWriter(out, outFormat, popts)

	var total score.Stats
	start := time.Now()
	for _, in := range f.inputs {
		sopts.FirstRow = total.Rows + total.BadRows + 1
		st, err := f.scoreFile(ctx, env, m, in, w, sopts)
		total.Rows += st.Rows
		total.Scored += st.Scored
		total.BadRows += st.BadRows
		if err != nil {
			return err
		}
	}
	// Model.Score (score.Run) flushed w after each input.
	if file != nil {
		if err := file.Commit(); err != nil {
			return err
		}
	}
	secs := time.Since(start).Seconds()
	fmt.Fprintf(env.Stderr, "kerasgo predict: scored %d rows in %.1fs (%.0f rows/s)", total.Scored, secs, float64(total.Scored)/secs)
	if total.BadRows > 0 {
		fmt.Fprintf(env.Stderr, "; skipped %d bad rows", total.BadRows)
	}
	if file != nil {
		fmt.Fprintf(env.Stderr, "; wrote %s", f.output)
	}
	fmt.Fprintln(env.Stderr)
	return nil
}

// scoreFile streams one input through the scoring pipeline.
func (f *predictFlags) scoreFile(ctx context.Context, env *Env, m *kerasgo.Model, path string, w rowio.PredictionWriter, opts score.Options) (score.Stats, error) {
	var r io.Reader = env.Stdin
	var size int64 = -1
	if path != "-" {
		file, err := os.Open(path)
		if err != nil {
			return score.Stats{}, fmt.Errorf("opening input: %w", err)
		}
		defer file.Close()
		if st, err := file.Stat(); err == nil {
			size = st.Size()
		}
		r = file
	}
	bar := newProgress(env.Stderr, path, size)
	if bar != nil {
		pr := progressbar.NewReader(r, bar)
		r = &pr
		start := time.Now()
		opts.OnBatch = func(st score.Stats) {
			bar.Describe(fmt.Sprintf("%s: %d rows, %.0f rows/s", filepath.Base(path), st.Scored, float64(st.Scored)/time.Since(start).Seconds()))
		}
		defer bar.Finish()
	}
	opts.OnBadRow = func(err error) { fmt.Fprintf(env.Stderr, "kerasgo predict: skipping bad row: %v\n", err) }
	format, _ := rowio.ParseFormat(f.format, path) // checked in run
	if format == rowio.FormatPredictionLog {
		return scoreRequestLog(ctx, env, m, r, path, w, opts)
	}
	ropts := rowio.ReaderOptions{IDColumn: f.idColumn}
	if format == rowio.FormatLibSVM {
		// The reader gets a stream (standard input, or the file behind a
		// progress bar): the index base is found first, in a pass of its own.
		var err error
		if ropts.Base, err = rowio.LibSVMFileBase(path); err != nil {
			return score.Stats{}, err
		}
	}
	return m.Score(ctx, r, path, format, ropts, w, opts)
}

// scoreRequestLog scores the rows of a request log again and reports how
// often the model's top class differs from the answers the log holds.
func scoreRequestLog(ctx context.Context, env *Env, m *kerasgo.Model, r io.Reader, path string, w rowio.PredictionWriter, opts score.Options) (score.Stats, error) {
	// Logged rows are dense (a Predict request's float32 matrix) or texts.
	ropts := rowio.ReaderOptions{Dim: m.InputDim()}
	opts.Batches = score.DenseBatches
	if m.Input() == kerasgo.InputStrings {
		opts.Batches = score.TextBatches
	} else {
		ropts.Vectorizer = m.Vectorizer()
	}
	lr := requestlog.NewRowReader(r, path, ropts)
	compared := requestlog.NewComparison(w, lr)
	opts.Dim, opts.Path = m.InputDim(), path
	st, err := score.Run(ctx, lr, m, compared, opts)
	if err != nil {
		return st, err
	}
	note := ""
	if lr.Skipped > 0 {
		note += fmt.Sprintf(" (%d records that are not Predict requests of one tensor skipped)", lr.Skipped)
	}
	if lr.Torn {
		note += " (a torn last record skipped)"
	}
	fmt.Fprintf(env.Stderr, "kerasgo predict: %s: %s%s\n", path, compared.Report(m.Classes()), note)
	return st, nil
}

// newProgress returns a progress bar over an input's bytes when stderr is a
// terminal, and nil otherwise.
func newProgress(stderr io.Writer, path string, size int64) *progressbar.ProgressBar {
	if !isTerminal(stderr) {
		return nil
	}
	return progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription(filepath.Base(path)),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

// isTerminal reports whether w is a terminal (progress bars show only there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
