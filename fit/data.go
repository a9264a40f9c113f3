package fit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/rowio"
	"github.com/kerasgo/kerasgo/sparse"
)

// Source opens the training (or validation) data for one pass. Run calls
// each source once, before the first step, and keeps the parsed rows (in
// memory, or in a temporary file past Options.MemoryBudget) for every
// epoch; InferMultiLabel and the evaluation calls may open it again.
type Source func() (rowio.RowReader, io.Closer, error)

// Example is one labelled row, owned by the loop (not reused by the reader).
type Example struct {
	Line    int
	Indices []int32
	Values  []float32
	Classes []int // label class indices
}

// LabelParser turns the label fields of rows into class indices: a label is a
// class index ("3") or a class name ("perl").
type LabelParser struct {
	Classes    []string
	MultiLabel bool
	byName     map[string]int
}

// NewLabelParser returns a label parser for the given classes.
func NewLabelParser(classes []string, multiLabel bool) *LabelParser {
	l := &LabelParser{Classes: classes, MultiLabel: multiLabel, byName: make(map[string]int, len(classes))}
	for i, c := range classes {
		l.byName[c] = i
	}
	return l
}

// Parse converts one row's label fields; errors name no file (the caller adds it).
func (l *LabelParser) Parse(fields []string) ([]int, error) {
	if len(fields) == 0 {
		if l.MultiLabel {
			return nil, nil // a row with no labels is a valid multi-label example
		}
		return nil, errors.New("row has no label")
	}
	if !l.MultiLabel && len(fields) > 1 {
		return nil, fmt.Errorf("%d labels on a row of a single-label model", len(fields))
	}
	out := make([]int, 0, len(fields))
	for _, f := range fields {
		if i, ok := l.byName[f]; ok {
			out = append(out, i)
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v != float64(int(v)) || int(v) < 0 || int(v) >= len(l.Classes) {
			return nil, fmt.Errorf("label %q is neither a class name nor a class index 0..%d", f, len(l.Classes)-1)
		}
		out = append(out, int(v))
	}
	return out, nil
}

// example copies a row read from a file into an Example with parsed labels.
func (l *LabelParser) example(path string, row *rowio.Row) (Example, error) {
	classes, err := l.Parse(row.Labels)
	if err != nil {
		return Example{}, &rowio.ParseError{Path: path, Line: row.Line, Column: 1, Field: "label", Err: fmt.Errorf("%w: %w", err, rowio.ErrFormat)}
	}
	e := Example{Line: row.Line, Classes: classes}
	if len(row.Features) > 0 {
		e.Indices, e.Values = sparse.AppendNonZero(nil, nil, row.Features)
	} else {
		e.Indices = append([]int32(nil), row.Indices...)
		e.Values = append([]float32(nil), row.Values...)
	}
	return e, nil
}

// Batch is one training or evaluation batch.
type Batch struct {
	X sparse.CSR   // features
	Y dense.Matrix // one-hot (single-label) or multi-hot (multi-label) targets
	// Weights are per-row sample weights; nil means 1 for every row.
	Weights []float32
}

// batcher assembles Examples into Batches.
type batcher struct {
	dim, classes int
	weights      []float32 // per class, nil for none
	cur          Batch
}

func (b *batcher) add(e Example) {
	if b.cur.X.RowPtr == nil {
		b.cur = Batch{X: sparse.New(b.dim), Y: dense.Matrix{Cols: b.classes}}
	}
	b.cur.X.AppendRow(e.Indices, e.Values)
	row := make([]float32, b.classes)
	for _, c := range e.Classes {
		row[c] = 1
	}
	b.cur.Y.Data = append(b.cur.Y.Data, row...)
	b.cur.Y.Rows++
	if b.weights != nil {
		w := float32(1)
		if len(e.Classes) > 0 {
			// Multi-label rows take their rarest class's weight.
			w = 0
			for _, c := range e.Classes {
				w = max(w, b.weights[c])
			}
		}
		b.cur.Weights = append(b.cur.Weights, w)
	}
}

func (b *batcher) rows() int { return b.cur.X.Rows }

func (b *batcher) take() Batch {
	out := b.cur
	b.cur = Batch{}
	return out
}

// heldOut says whether the row at 0-based position i belongs to a
// validation split of fraction f: a fixed hash of the position, so the same
// rows are held out in every epoch and every run.
func heldOut(i int, f float64) bool {
	if f <= 0 {
		return false
	}
	h := uint64(i)*0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019
	h ^= h >> 31
	h *= 0xBF58476D1CE4E5B9
	h ^= h >> 29
	return float64(h%1_000_000) < f*1_000_000
}

// ClassWeights computes Keras/scikit-learn "balanced" class weights,
// n / (classes × count), from class counts; a class with no rows gets 1.
func ClassWeights(counts []int) []float32 {
	total := 0
	for _, c := range counts {
		total += c
	}
	w := make([]float32, len(counts))
	for i, c := range counts {
		w[i] = 1
		if c > 0 {
			w[i] = float32(float64(total) / float64(len(counts)*c))
		}
	}
	return w
}

// InferMultiLabel reads a labelled source and reports whether it is
// multi-label: some row carries no label or several. It is for models that
// say nothing of their labels (no kerasgo metadata): one label on every row
// reads as single-label (one-hot targets). It stops at the first row that
// decides.
func InferMultiLabel(ctx context.Context, src Source) (bool, error) {
	r, closer, err := src()
	if err != nil {
		return false, fmt.Errorf("opening data: %w", err)
	}
	defer closer.Close()
	var row rowio.Row
	for {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		err := r.Read(&row)
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if len(row.Labels) != 1 {
			return true, nil
		}
	}
}
