package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kerasgo/kerasgo/convert"
	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/internal/atomicfile"
	"github.com/kerasgo/kerasgo/tfmodel"
)

type predictFlags struct {
	inputs    []string
	format    string
	output    string
	batchSize int
	threshold float32
	idColumn  string
}

func predictCommand() *Command {
	return &Command{
		Name:      "predict",
		UsageLine: "kerasgo predict MODEL_DIR --input FILE... [--output FILE|-] [flags]",
		Short:     "score data files with a SavedModel, streaming",
		Long: `Predict streams rows from the input files, scores them in batches through
the model's serving signature and writes one CSV line per row: id, predicted
label(s), the winning probability and the probability of every class.

Inputs: CSV or TSV (one feature per column, optional header and id column),
NumPy .npy (2-D float32/float64), and libsvm/svmlight sparse rows (indices
zero- or one-based, detected as scikit-learn does). "-" reads CSV from
standard input.
The output file is written under a temporary name and renamed when complete.`,
		Setup: func(fs *pflag.FlagSet) func(context.Context, *Env, []string) error {
			f := &predictFlags{}
			fs.StringSliceVar(&f.inputs, "input", nil, "input files (repeat or comma-separate; - for stdin)")
			fs.StringVar(&f.format, "format", "auto", "input format: auto (by extension), csv, tsv, npy, libsvm")
			fs.StringVarP(&f.output, "output", "o", "-", "output file, - for stdout")
			fs.IntVar(&f.batchSize, "batch-size", 500, "rows per model call")
			fs.Float32Var(&f.threshold, "threshold", 0.5, "probability at which a multi-label model predicts a class")
			fs.StringVar(&f.idColumn, "id-column", "", `CSV/TSV column with example ids (default "id" when present)`)
			return f.run
		},
	}
}

func (f *predictFlags) run(ctx context.Context, env *Env, args []string) error {
	if len(args) != 1 {
		return usagef("want one MODEL_DIR, got %d arguments", len(args))
	}
	if len(f.inputs) == 0 {
		return usagef("--input is required")
	}
	if f.batchSize <= 0 {
		return usagef("--batch-size must be positive")
	}
	opts := tfmodel.DefaultOptions()
	opts.BatchSize = f.batchSize
	m, err := tfmodel.Load(ctx, args[0], opts)
	if err != nil {
		return err
	}
	defer m.Close()

	popts := convert.PredictionOptions{Threshold: f.threshold}
	if md := m.Metadata(); md != nil {
		popts.Classes = md.Classes
		popts.MultiLabel = md.LabelMode == tfmodel.LabelMultiLabel
	}
	var out io.Writer = env.Stdout
	var file *atomicfile.File
	if f.output != "-" {
		if file, err = atomicfile.Create(f.output); err != nil {
			return err
		}
		defer file.Abort()
		out = file
	}
	w := convert.NewCSVPredictionWriter(out, popts)
	rows := 0
	for _, in := range f.inputs {
		n, err := f.scoreFile(ctx, env, m, in, w)
		rows += n
		if err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if file != nil {
		if err := file.Commit(); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "kerasgo predict: wrote %d predictions to %s\n", rows, f.output)
	}
	return nil
}

// scoreFile streams one input through the model in batches.
func (f *predictFlags) scoreFile(ctx context.Context, env *Env, m *tfmodel.Model, path string, w *convert.CSVPredictionWriter) (int, error) {
	var r io.Reader = env.Stdin
	if path != "-" {
		file, err := os.Open(path)
		if err != nil {
			return 0, fmt.Errorf("opening input: %w", err)
		}
		defer file.Close()
		r = file
	}
	rr, err := f.reader(r, path, m.InputDim())
	if err != nil {
		return 0, err
	}
	dim := m.InputDim()
	batch := dense.Matrix{Cols: dim}
	ids := make([]string, 0, f.batchSize)
	var row convert.Row
	rows := 0
	flush := func() error {
		if batch.Rows == 0 {
			return nil
		}
		probs, err := m.Predict(ctx, batch)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for i, id := range ids {
			if err := w.Write(id, probs.Row(i)); err != nil {
				return err
			}
		}
		batch.Rows, batch.Data, ids = 0, batch.Data[:0], ids[:0]
		return nil
	}
	for {
		err := rr.Read(&row)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return rows, err
		}
		if dim >= 0 && len(row.Features) != dim {
			return rows, &convert.ParseError{Path: path, Line: row.Line, Err: fmt.Errorf("%d features, the model takes %d: %w", len(row.Features), dim, convert.ErrFormat)}
		}
		if batch.Cols < 0 {
			batch.Cols = len(row.Features)
		}
		rows++
		id := row.ID
		if id == "" {
			id = strconv.Itoa(rows)
		}
		ids = append(ids, id)
		batch.Data = append(batch.Data, row.Features...)
		batch.Rows++
		if batch.Rows == f.batchSize {
			if err := flush(); err != nil {
				return rows, err
			}
		}
	}
	return rows, flush()
}

func (f *predictFlags) reader(r io.Reader, path string, dim int) (convert.RowReader, error) {
	format := f.format
	if format == "auto" {
		switch strings.ToLower(filepath.Ext(path)) {
		case ".npy":
			format = "npy"
		case ".tsv", ".tab":
			format = "tsv"
		case ".libsvm", ".svm", ".svmlight":
			format = "libsvm"
		default:
			format = "csv"
		}
	}
	switch format {
	case "csv":
		return convert.NewTableReader(r, path, convert.TableOptions{Comma: ',', IDColumn: f.idColumn}), nil
	case "tsv":
		return convert.NewTableReader(r, path, convert.TableOptions{Comma: '\t', IDColumn: f.idColumn}), nil
	case "npy":
		return convert.NewNPYRowReader(r, path)
	case "libsvm":
		if dim < 0 {
			return nil, fmt.Errorf("%s: libsvm input needs a model with a known input width", path)
		}
		return convert.NewLibSVMReader(r, path, convert.LibSVMOptions{Dim: dim})
	}
	return nil, usagef("unknown --format %q (want auto, csv, tsv, npy or libsvm)", format)
}
