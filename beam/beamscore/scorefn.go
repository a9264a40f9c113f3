package beamscore

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"

	"github.com/kerasgo/kerasgo"
	"github.com/kerasgo/kerasgo/rowio"
	"github.com/kerasgo/kerasgo/score"
)

// models holds the models this worker process has loaded, by directory.
// It is package state on purpose, the one exception to the project's rule:
// a runner makes DoFn instances per bundle and thread and may never call
// Teardown (non-local runners do not promise it), so a model loaded per
// instance would be loaded again and again and never closed. Loaded once
// per process, it lives until the worker exits, which frees it.
var models = struct {
	sync.Mutex
	byDir map[string]*kerasgo.Model
}{byDir: map[string]*kerasgo.Model{}}

// loadModel returns the process's model for dir, loading it on first use.
func loadModel(ctx context.Context, dir string) (*kerasgo.Model, error) {
	models.Lock()
	defer models.Unlock()
	if m, ok := models.byDir[dir]; ok {
		return m, nil
	}
	m, err := kerasgo.Open(ctx, dir, kerasgo.DefaultOptions())
	if err != nil {
		return nil, err
	}
	models.byDir[dir] = m
	return m, nil
}

// scoreFn scores a Split and writes its output file (and dead-letter file).
type scoreFn struct {
	Config Config

	model   *kerasgo.Model
	rows    beam.Counter
	badRows beam.Counter
}

// Setup loads the model (once per process), so a model that does not load
// fails the worker before any row, with the loader's error.
func (f *scoreFn) Setup(ctx context.Context) error {
	m, err := loadModel(ctx, f.Config.Model)
	if err != nil {
		return fmt.Errorf("beam scoring: %w", err)
	}
	f.model = m
	f.rows = beam.NewCounter("kerasgo", CounterRows)
	f.badRows = beam.NewCounter("kerasgo", CounterBadRows)
	return nil
}

// ProcessElement scores one split through score.Run, the batching loop of
// kerasgo predict, in batches of Config.BatchSize: the split is the unit of
// work the runner spreads, and TensorFlow sees whole batches within it.
// Rows are named by their line in the file, and each output row carries its
// origin (originWriter).
func (f *scoreFn) ProcessElement(ctx context.Context, sp Split) error {
	ext := f.Config.OutputFormat
	out := &originWriter{file: sp.Path, jsonl: ext == rowio.OutputJSONL}
	out.inner = rowio.NewPredictionWriter(&out.row, ext, f.model.PredictionOptions(f.Config.Threshold, f.Config.TopK))
	var dead bytes.Buffer
	format := rowio.Format(sp.Format)
	opts := score.Options{
		BatchSize: f.Config.BatchSize, Workers: 1, Dim: f.model.InputDim(), Path: sp.Path,
		Batches: f.model.Batching(format), SkipBadRows: f.Config.SkipBadRows, IDs: score.IDByLine,
		OnBadRow: func(err error) {
			var pe *rowio.ParseError
			errors.As(err, &pe) // Run passes only parse errors
			line, _ := json.Marshal(struct {
				File  string `json:"file"`
				Line  int    `json:"line"`
				Error string `json:"error"`
			}{sp.Path, pe.Line, err.Error()})
			dead.Write(append(line, '\n'))
			f.badRows.Inc(ctx, 1)
		},
	}
	err := withFile(ctx, sp.Path, func(r io.Reader) error {
		if err := skip(r, sp.Start); err != nil {
			return fmt.Errorf("%s: %w", sp.Path, err)
		}
		rr, err := f.reader(io.LimitReader(r, sp.End-sp.Start), sp)
		if err != nil {
			return err
		}
		_, err = score.Run(ctx, splitReader{rr, sp}, f.model, out, opts)
		return err
	})
	if err != nil {
		return err
	}
	f.rows.Inc(ctx, int64(out.rows))
	if err := writeFile(ctx, outputName(f.Config.Output, sp, string(ext)), out.buf.Bytes()); err != nil {
		return err
	}
	if dead.Len() > 0 {
		return writeFile(ctx, outputName(f.Config.Output, sp, "deadletter.jsonl"), dead.Bytes())
	}
	return nil
}

// reader returns the row reader of a split: the model's, with the libsvm
// index base the split step found for the whole file, and no header for
// CSV/TSV: a range that starts mid-file must not take a row for a header.
func (f *scoreFn) reader(r io.Reader, sp Split) (rowio.RowReader, error) {
	opts := rowio.ReaderOptions{Header: rowio.HeaderAbsent, Base: rowio.IndexZero}
	if sp.OneBased {
		opts.Base = rowio.IndexOne
	}
	return f.model.NewReader(r, sp.Path, rowio.Format(sp.Format), opts)
}

// splitReader numbers a split reader's rows, and locates its errors, by
// the file's lines: the reader counts from the split's start.
type splitReader struct {
	r  rowio.RowReader
	sp Split
}

func (s splitReader) Read(row *rowio.Row) error {
	err := s.r.Read(row)
	if err == nil {
		row.Line += s.sp.FirstLine - 1
		return nil
	}
	var pe *rowio.ParseError
	if errors.As(err, &pe) {
		located := *pe
		located.Line += s.sp.FirstLine - 1
		return &located
	}
	return err
}

// skip advances r by n bytes.
func skip(r io.Reader, n int64) error {
	if s, ok := r.(io.Seeker); ok {
		_, err := s.Seek(n, io.SeekStart)
		return err
	}
	_, err := io.CopyN(io.Discard, r, n)
	return err
}

// originWriter writes kerasgo predict's output format with the row's origin
// in front: CSV columns file and line before id, or JSONL fields "file" and
// "line" first.
type originWriter struct {
	file  string
	jsonl bool
	inner rowio.PredictionWriter // writes to row
	buf   bytes.Buffer           // the split's whole output
	rows  int
	row   bytes.Buffer // the inner writer's output for one row
}

// Write writes a row of unknown origin (score.Run calls WriteOrigin).
func (w *originWriter) Write(id string, probs []float32) error { return w.WriteOrigin(0, id, probs) }

// Flush does nothing: each row is flushed into buf as it is written.
func (w *originWriter) Flush() error { return nil }

// WriteOrigin writes one row: the inner writer's text for it (after its
// CSV header, for the first row) with the origin in front.
func (w *originWriter) WriteOrigin(line int, id string, probs []float32) error {
	if err := w.inner.Write(id, probs); err != nil {
		return err
	}
	if err := w.inner.Flush(); err != nil {
		return err
	}
	text := w.row.Bytes()
	if !w.jsonl {
		if w.rows == 0 {
			header, rest, _ := bytes.Cut(text, []byte("\n"))
			w.buf.WriteString("file,line,")
			w.buf.Write(header)
			w.buf.WriteByte('\n')
			text = rest
		}
		w.buf.WriteString(csvField(w.file))
		w.buf.WriteByte(',')
		w.buf.WriteString(strconv.Itoa(line))
		w.buf.WriteByte(',')
		w.buf.Write(text)
	} else {
		file, _ := json.Marshal(w.file)
		w.buf.WriteString(`{"file":`)
		w.buf.Write(file)
		w.buf.WriteString(`,"line":`)
		w.buf.WriteString(strconv.Itoa(line))
		w.buf.WriteByte(',')
		w.buf.Write(bytes.TrimPrefix(text, []byte("{")))
	}
	w.row.Reset()
	w.rows++
	return nil
}

// csvField is s as one CSV field, quoted by encoding/csv's rules.
func csvField(s string) string {
	var b strings.Builder
	w := csv.NewWriter(&b)
	_ = w.Write([]string{s}) // a strings.Builder does not fail
	w.Flush()
	return strings.TrimSuffix(b.String(), "\n")
}

// writeFile writes data to name on its Beam filesystem, under a temporary
// name renamed into place where the filesystem can rename (a local disk), so
// a retried split replaces its file whole; object stores (gs://) make an
// object visible only once it is complete.
func writeFile(ctx context.Context, name string, data []byte) error {
	fs, err := filesystem.New(ctx, name)
	if err != nil {
		return err
	}
	defer fs.Close()
	renamer, canRename := fs.(filesystem.Renamer)
	target := name
	if canRename {
		target = tempName(name)
	}
	w, err := fs.OpenWrite(ctx, target)
	if err != nil {
		return fmt.Errorf("writing %s: %w", target, err)
	}
	if _, err := w.Write(data); err != nil {
		w.Close()
		return fmt.Errorf("writing %s: %w", target, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", target, err)
	}
	if canRename {
		if err := renamer.Rename(ctx, target, name); err != nil {
			return fmt.Errorf("renaming %s to %s: %w", target, name, err)
		}
	}
	return nil
}
