// Package score runs the batch-scoring pipeline: read rows, group them into
// batches, predict several batches at once, and write the predictions in
// input order. Memory is bounded by the number of batches in flight, not by
// the size of the input.
//
// The package has no cgo: it scores through the Predictor interface, which
// *kerasgo.Model implements (with the sparse and text variants), so it is
// tested with fakes. kerasgo predict and the Beam pipeline (beam/beamscore)
// both score through Run.
package score

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/rowio"
	"github.com/kerasgo/kerasgo/sparse"
)

// Predictor maps a batch of feature rows to a batch of output rows.
// It must be safe for concurrent use.
type Predictor interface {
	Predict(ctx context.Context, x dense.Matrix) (dense.Matrix, error)
}

// SparsePredictor is a Predictor that also scores sparse batches
// (*kerasgo.Model does).
type SparsePredictor interface {
	Predictor
	PredictSparse(ctx context.Context, x sparse.CSR) (dense.Matrix, error)
}

// TextPredictor scores raw-text documents (*kerasgo.Model does, through its
// vectorizer or a graph that takes strings).
type TextPredictor interface {
	PredictText(ctx context.Context, texts []string) (dense.Matrix, error)
}

// Batching is how Run batches rows and which Predictor method scores them.
type Batching int

// The batchings.
const (
	// DenseBatches are dense matrices scored with Predict.
	DenseBatches Batching = iota
	// SparseBatches are CSR matrices scored with PredictSparse; the Predictor
	// must be a SparsePredictor. Rows read with Indices and Values stay
	// sparse; dense rows are reduced to their non-zero entries.
	SparseBatches
	// TextBatches are rows' raw Text scored with PredictText; the Predictor
	// must be a TextPredictor.
	TextBatches
)

// Options configure Run. The zero value is valid: every field has a default.
type Options struct {
	// BatchSize is the number of rows per Predict call. Default 500.
	BatchSize int
	// Workers is the number of Predict calls running at once. Default: the
	// number of CPUs, at most 4.
	Workers int
	// InFlight bounds the batches read but not yet written. Default 2×Workers.
	InFlight int
	// Dim is the number of features every row must have; 0 takes the first row's.
	Dim int
	// Path names the input in the errors Run makes itself (wrong row width).
	Path string
	// Batches says how rows are batched and scored: dense rows through
	// Predict (the default), CSR batches through PredictSparse, or raw text
	// through PredictText.
	Batches Batching
	// Shard and Shards split one input between Shards processes: this one
	// scores the batches whose index modulo Shards is Shard. Default 0 of 1.
	Shard, Shards int
	// SkipBadRows counts rows the reader rejects (a *rowio.ParseError)
	// instead of stopping, and passes each to OnBadRow when that is set.
	SkipBadRows bool
	OnBadRow    func(err error)
	// FirstRow is the number given to the first row when it has no id; rows
	// (skipped bad rows included) are numbered from it in input order
	// (default 1). Pass the previous Rows+BadRows+1 when scoring several
	// inputs into one output.
	FirstRow int
	// OnBatch, when set, is called after each batch is written, with the
	// running totals (for progress reporting).
	OnBatch func(Stats)
	// IDs says how rows without an id are named (default IDByRow).
	IDs RowIDs
}

// RowIDs says how Run names a row that carries no id of its own.
type RowIDs int

// The ways rows are named.
const (
	// IDByRow numbers rows in input order from Options.FirstRow, skipped bad
	// rows included, so ids match input positions.
	IDByRow RowIDs = iota
	// IDByLine names a row by the line it was read from (Row.Line): for a
	// range of a file read on its own, whose row count before it is unknown
	// but whose lines are the file's.
	IDByLine
)

// OriginWriter is a PredictionWriter that also takes where each row came
// from. Run calls WriteOrigin instead of Write on a sink that has it.
type OriginWriter interface {
	rowio.PredictionWriter
	// WriteOrigin writes the prediction of the row read from line (as the
	// reader numbered it).
	WriteOrigin(line int, id string, probs []float32) error
}

// Stats count what Run did.
type Stats struct {
	Rows    int // rows read (good ones, every shard)
	Scored  int // rows predicted and written (this shard)
	Batches int // batches written
	BadRows int // rows skipped with SkipBadRows
}

func (o Options) withDefaults() (Options, error) {
	if o.BatchSize == 0 {
		o.BatchSize = 500
	}
	if o.Workers == 0 {
		o.Workers = min(runtime.NumCPU(), 4)
	}
	if o.InFlight == 0 {
		o.InFlight = 2 * o.Workers
	}
	if o.Shards == 0 {
		o.Shards = 1
	}
	if o.FirstRow == 0 {
		o.FirstRow = 1
	}
	switch {
	case o.BatchSize < 0:
		return o, fmt.Errorf("batch size %d, want > 0", o.BatchSize)
	case o.Workers < 0:
		return o, fmt.Errorf("workers %d, want > 0", o.Workers)
	case o.InFlight < o.Workers:
		return o, fmt.Errorf("in-flight batches %d, want at least the %d workers", o.InFlight, o.Workers)
	case o.Batches == SparseBatches && o.Dim <= 0:
		return o, fmt.Errorf("sparse scoring needs the feature count (Dim)")
	case o.Shards < 1 || o.Shard < 0 || o.Shard >= o.Shards:
		return o, fmt.Errorf("shard %d/%d, want 0 <= shard < shards", o.Shard, o.Shards)
	}
	return o, nil
}

// batch is one unit of work; result is closed over by the writer.
type batch struct {
	x     dense.Matrix // dense batches
	sx    sparse.CSR   // sparse batches (Options.Batches == SparseBatches)
	text  []string     // raw-text batches (Options.Batches == TextBatches)
	ids   []string
	lines []int // the line each row was read from
	done  chan struct{}
	out   dense.Matrix
	err   error
}

// Run streams rows from src through p into sink, in input order, and
// returns what it did. It stops at the first error (reading, predicting or
// writing) and returns it. Before it returns it flushes sink, so every row
// counted in Stats.Scored has reached the writer under sink (a failed flush
// is Run's error); rows already written stay written after an error, so
// callers write to a temporary file (package atomicfile) and keep it only
// on success. Closing the file under sink stays the caller's.
func Run(ctx context.Context, src rowio.RowReader, p Predictor, sink rowio.PredictionWriter, opts Options) (Stats, error) {
	stats, err := run(ctx, src, p, sink, opts)
	if ferr := sink.Flush(); ferr != nil && err == nil {
		err = fmt.Errorf("scoring: writing predictions: %w", ferr)
	}
	return stats, err
}

// run is Run without the final flush.
func run(ctx context.Context, src rowio.RowReader, p Predictor, sink rowio.PredictionWriter, opts Options) (Stats, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Stats{}, fmt.Errorf("scoring: %w", err)
	}
	predict := func(ctx context.Context, b *batch) (dense.Matrix, error) { return p.Predict(ctx, b.x) }
	if opts.Batches == SparseBatches {
		sp, ok := p.(SparsePredictor)
		if !ok {
			return Stats{}, fmt.Errorf("scoring: sparse batches need a predictor with PredictSparse")
		}
		predict = func(ctx context.Context, b *batch) (dense.Matrix, error) { return sp.PredictSparse(ctx, b.sx) }
	}
	if opts.Batches == TextBatches {
		tp, ok := p.(TextPredictor)
		if !ok {
			return Stats{}, fmt.Errorf("scoring: text batches need a predictor with PredictText")
		}
		predict = func(ctx context.Context, b *batch) (dense.Matrix, error) { return tp.PredictText(ctx, b.text) }
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// On every return: stop the reader and the workers, then wait for them,
	// so nothing touches src, p or the stats after Run returns.
	defer func() {
		cancel()
		wg.Wait()
	}()

	ordered := make(chan *batch, opts.InFlight) // in input order, to the writer
	work := make(chan *batch, opts.InFlight)    // to the workers
	var stats Stats
	var readErr error

	// Reader: groups rows into batches. It owns stats.Rows and BadRows until
	// it closes ordered.
	wg.Go(func() {
		defer close(ordered)
		defer close(work)
		readErr = read(ctx, src, opts, &stats, func(b *batch) bool {
			select {
			case ordered <- b:
			case <-ctx.Done():
				return false
			}
			select {
			case work <- b:
				return true
			case <-ctx.Done():
				return false
			}
		})
	})

	for range opts.Workers {
		wg.Go(func() {
			for b := range work {
				b.out, b.err = predict(ctx, b)
				close(b.done)
			}
		})
	}
	ow, _ := sink.(OriginWriter)
	written := Stats{}
	for b := range ordered {
		select {
		case <-b.done:
		case <-ctx.Done():
			return written, fmt.Errorf("scoring: %w", ctx.Err())
		}
		if b.err != nil {
			return written, fmt.Errorf("scoring %s: rows %s..%s (lines %d-%d): %w", opts.Path, b.ids[0], b.ids[len(b.ids)-1], b.lines[0], b.lines[len(b.lines)-1], b.err)
		}
		if b.out.Rows != len(b.ids) {
			return written, fmt.Errorf("scoring: %d outputs for %d rows", b.out.Rows, len(b.ids))
		}
		for i, id := range b.ids {
			var err error
			if ow != nil {
				err = ow.WriteOrigin(b.lines[i], id, b.out.Row(i))
			} else {
				err = sink.Write(id, b.out.Row(i))
			}
			if err != nil {
				return written, err
			}
		}
		written.Scored += len(b.ids)
		written.Batches++
		if opts.OnBatch != nil {
			opts.OnBatch(written)
		}
	}
	// ordered is closed: the reader has finished and its counts are final.
	written.Rows, written.BadRows = stats.Rows, stats.BadRows
	if readErr != nil {
		return written, readErr
	}
	if err := ctx.Err(); err != nil {
		return written, fmt.Errorf("scoring: %w", err)
	}
	return written, nil
}

// read fills batches from src and hands each to emit; it skips the batches
// of other shards. It returns the first read error (or nil at EOF).
func read(ctx context.Context, src rowio.RowReader, opts Options, stats *Stats, emit func(*batch) bool) error {
	dim := opts.Dim
	var row rowio.Row
	index := 0 // batch index in the whole input, across shards
	var cur *batch
	newBatch := func() *batch {
		b := &batch{ids: make([]string, 0, opts.BatchSize), done: make(chan struct{})}
		if opts.Batches == TextBatches {
			b.text = make([]string, 0, opts.BatchSize)
		} else if opts.Batches == SparseBatches {
			b.sx = sparse.New(dim)
		} else {
			b.x = dense.Matrix{Cols: dim, Data: make([]float32, 0, opts.BatchSize*max(dim, 1))}
		}
		return b
	}
	flush := func() bool {
		if cur == nil || len(cur.ids) == 0 {
			return true
		}
		b := cur
		cur = nil
		mine := index%opts.Shards == opts.Shard
		index++
		if !mine {
			return true
		}
		return emit(b)
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil // the writer reports the cancellation
		}
		err := src.Read(&row)
		if errors.Is(err, io.EOF) {
			flush()
			return nil
		}
		var pe *rowio.ParseError
		if err == nil && opts.Batches != TextBatches && dim > 0 && (len(row.Features) != dim && !(opts.Batches == SparseBatches && len(row.Features) == 0)) {
			err = &rowio.ParseError{Path: opts.Path, Line: row.Line, Err: fmt.Errorf("%d features, want %d: %w", len(row.Features), dim, rowio.ErrFormat)}
		}
		if err != nil {
			// A line over the reader's limit cannot be skipped: its scanner
			// cannot go past it, and asking again returns the same error.
			if opts.SkipBadRows && errors.As(err, &pe) && !errors.Is(err, bufio.ErrTooLong) {
				stats.BadRows++
				if opts.OnBadRow != nil {
					opts.OnBadRow(err)
				}
				continue
			}
			return err
		}
		if dim == 0 {
			dim = len(row.Features)
		}
		if cur == nil {
			cur = newBatch()
		}
		id := row.ID
		switch {
		case id != "":
		case opts.IDs == IDByLine:
			id = strconv.Itoa(row.Line)
		default:
			// Skipped rows keep their numbers, so ids match input positions.
			id = strconv.Itoa(opts.FirstRow + stats.Rows + stats.BadRows)
		}
		stats.Rows++
		cur.ids = append(cur.ids, id)
		cur.lines = append(cur.lines, row.Line)
		switch {
		case opts.Batches == TextBatches:
			cur.text = append(cur.text, row.Text)
		case opts.Batches != SparseBatches:
			cur.x.Data = append(cur.x.Data, row.Features...)
			cur.x.Rows++
		case len(row.Features) > 0: // a dense row in a sparse run
			cur.sx.AppendDenseRow(row.Features)
		default:
			cur.sx.AppendRow(row.Indices, row.Values)
		}
		if len(cur.ids) == opts.BatchSize && !flush() {
			return nil
		}
	}
}
