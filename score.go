package kerasgo

import (
	"context"
	"fmt"
	"io"

	"github.com/kerasgo/kerasgo/rowio"
	"github.com/kerasgo/kerasgo/score"
)

// NewReader returns a reader of r (the file at path, "-" for standard input)
// in format f through rowio.NewFormatReader, set up for the model: opts'
// Dim, Vectorizer and Sparse are the model's (its input width, its text
// preprocessing for raw text, sparse rows when it scores them sparse); the
// caller's IDColumn, Header and Base stay.
func (m *Model) NewReader(r io.Reader, path string, f rowio.Format, opts rowio.ReaderOptions) (rowio.RowReader, error) {
	opts.Dim, opts.Vectorizer, opts.Sparse = m.InputDim(), nil, m.input == InputSparse
	switch {
	case f == rowio.FormatText && m.input == InputStrings:
		// The graph vectorizes: the documents are fed as strings.
	case f == rowio.FormatText && m.vec == nil:
		return nil, fmt.Errorf("%s: raw text needs the model's vectorizer, and %s has none (export it with kerasgo export --vectorizer, or a model that takes strings): %w",
			path, m.Dir(), ErrNoTextInput)
	default:
		opts.Vectorizer = m.vec
	}
	return rowio.NewFormatReader(r, path, f, opts)
}

// Batching returns how score.Run should batch rows of format f for the
// model: raw text as strings for a model whose graph takes them, bag-of-words
// rows (libsvm, text) as CSR batches for a model with sparse signatures,
// dense batches otherwise.
func (m *Model) Batching(f rowio.Format) score.Batching {
	switch {
	case f == rowio.FormatText && m.input == InputStrings:
		return score.TextBatches
	case (f == rowio.FormatLibSVM || f == rowio.FormatText) && m.input == InputSparse:
		return score.SparseBatches
	}
	return score.DenseBatches
}

// Score streams the rows of r (the file at path, in format f, read with
// NewReader and ropts) through the model into w with score.Run's bounded,
// ordered, parallel pipeline. opts' Dim, Path and Batches are set from the
// model and the format. Score
// flushes w before it returns, so every row it counts in Stats.Scored has
// reached the writer under w; committing or closing that file (for example
// an atomicfile.File) stays the caller's.
func (m *Model) Score(ctx context.Context, r io.Reader, path string, f rowio.Format, ropts rowio.ReaderOptions, w rowio.PredictionWriter, opts score.Options) (score.Stats, error) {
	rr, err := m.NewReader(r, path, f, ropts)
	if err != nil {
		return score.Stats{}, err
	}
	opts.Dim, opts.Path, opts.Batches = m.InputDim(), path, m.Batching(f)
	return score.Run(ctx, rr, m, w, opts)
}

// PredictionOptions returns the writer options that name the model's classes
// and label mode; threshold and topK are the caller's.
func (m *Model) PredictionOptions(threshold float32, topK int) rowio.PredictionOptions {
	return rowio.PredictionOptions{Classes: m.Classes(), MultiLabel: m.MultiLabel(), Threshold: threshold, TopK: topK}
}
