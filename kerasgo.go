// Package kerasgo runs Keras models from Go: Open a model exported by
// `kerasgo export` (or any SavedModel) once, with the text preprocessing it
// carries, then score dense rows, sparse rows or raw text (Predict,
// PredictSparse, PredictText), score whole files (Score, over package
// score's pipeline), keep training it (Train, over package fit's loop) and
// evaluate it (Evaluator). Package promote publishes a retrained model into
// a TF Serving base path; package servingmodel hands a model to the TF
// Serving-compatible server (package serving), which this package does not
// import.
//
// A *Model is safe for concurrent use: predictions run in parallel, training
// steps and saves take the model exclusively (see package tfmodel, the
// TensorFlow runtime underneath).
package kerasgo

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/errkind"
	"github.com/kerasgo/kerasgo/rowio"
	"github.com/kerasgo/kerasgo/sparse"
	"github.com/kerasgo/kerasgo/textvec"
	"github.com/kerasgo/kerasgo/tfmodel"
)

// ErrNoTextInput is returned by PredictText for a model that neither takes
// strings nor carries a text vectorizer.
var ErrNoTextInput = errkind.Sentinel(errkind.InvalidInput, "the model takes no text: it has no text preprocessing and its graph takes no strings")

// Input is how a model's examples reach TensorFlow.
type Input int

// The input modes, decided once by Open from the model's signatures and
// assets.
const (
	// InputDense: rows of float32 features through the serving signature.
	InputDense Input = iota
	// InputSparse: the exporter's sparse signatures take CSR batches, so
	// bag-of-words rows stay sparse all the way into TensorFlow.
	InputSparse
	// InputStrings: the graph takes strings (a TextVectorization inside the
	// SavedModel); raw text is fed as it is.
	InputStrings
)

func (i Input) String() string {
	switch i {
	case InputSparse:
		return "sparse"
	case InputStrings:
		return "strings"
	default:
		return "dense"
	}
}

// LabelMode says how many classes a row of a model's data may carry.
type LabelMode int

// The label modes.
const (
	// LabelModeAuto: from the model's kerasgo metadata; for a model without
	// any, inferred from the data where it matters (Evaluator).
	LabelModeAuto LabelMode = iota
	// LabelModeSingle: one class a row (softmax, or one sigmoid per class
	// with one-hot targets).
	LabelModeSingle
	// LabelModeMulti: any number of classes a row (sigmoid outputs,
	// multi-hot targets).
	LabelModeMulti
)

func (l LabelMode) String() string {
	switch l {
	case LabelModeSingle:
		return "single-label"
	case LabelModeMulti:
		return "multi-label"
	default:
		return "auto"
	}
}

// Options configure Open. Start from DefaultOptions.
type Options struct {
	// Runtime configures the TensorFlow session (tags, batch size, threads).
	Runtime tfmodel.Options
	// Classes names the outputs of a SavedModel without kerasgo metadata,
	// in output order, so predictions and evaluations carry names (without
	// them, Classes returns nil, prediction writers say class_0, class_1, …
	// and evaluations name classes by index). For a model with metadata
	// they must be its own classes, or be left nil.
	Classes []string
	// LabelMode says how many classes a row carries for a model without
	// kerasgo metadata (LabelModeAuto: inferred from the data). For a model
	// with metadata it must agree with it, or be LabelModeAuto.
	LabelMode LabelMode
}

// DefaultOptions returns the options Open uses unless told otherwise.
func DefaultOptions() Options {
	return Options{Runtime: tfmodel.DefaultOptions()}
}

// Model is a Keras model opened for use from Go, with its preprocessing.
type Model struct {
	tf    *tfmodel.Model
	input Input
	// vec is the text preprocessing stored with the model (nil: none). It
	// is safe for concurrent use (package textvec).
	vec rowio.Vectorizer
	// sparseSteps says training and evaluation steps take CSR batches: the
	// exporter's sparse training signatures are there.
	sparseSteps bool
	// classes and labels: from the metadata, or Options for a model
	// without (nil and LabelModeAuto when not given).
	classes []string
	labels  LabelMode
}

// Open loads the SavedModel in dir, its signatures and metadata, and the
// text preprocessing the exporter stored with it (a TextVectorization or a
// legacy Tokenizer), once. dir is one SavedModel directory; a TF Serving
// base path's versions are listed by promote.List (the newest is the one
// TF Serving's default policy serves).
func Open(ctx context.Context, dir string, opts Options) (*Model, error) {
	tm, err := tfmodel.Load(ctx, dir, opts.Runtime)
	if err != nil {
		return nil, err
	}
	m := &Model{tf: tm}
	switch {
	case tm.TextInput():
		m.input = InputStrings
	case tm.SparsePredictable():
		m.input = InputSparse
		m.sparseSteps = tm.HasRole(tfmodel.RoleTrainSparse) && tm.HasRole(tfmodel.RoleEvaluateSparse)
	}
	if m.vec, err = loadVectorizer(tm); err != nil {
		tm.Close()
		return nil, err
	}
	if m.classes, m.labels, err = classes(tm, opts); err != nil {
		tm.Close()
		return nil, err
	}
	return m, nil
}

// classes returns the class names and label mode of the model: its
// metadata's, checked against what opts gives, or opts' for a model
// without metadata.
func classes(tm *tfmodel.Model, opts Options) ([]string, LabelMode, error) {
	if opts.LabelMode < LabelModeAuto || opts.LabelMode > LabelModeMulti {
		return nil, 0, fmt.Errorf("%s: unknown label mode %d", tm.Dir(), opts.LabelMode)
	}
	md := tm.Metadata()
	if md == nil {
		if n := tm.OutputDim(); opts.Classes != nil && n > 0 && len(opts.Classes) != n {
			return nil, 0, fmt.Errorf("%s: %d class names for a model with %d outputs", tm.Dir(), len(opts.Classes), n)
		}
		return slices.Clone(opts.Classes), opts.LabelMode, nil
	}
	mode := LabelModeSingle
	if md.LabelMode == tfmodel.LabelMultiLabel {
		mode = LabelModeMulti
	}
	switch {
	case opts.Classes != nil && !slices.Equal(opts.Classes, md.Classes):
		return nil, 0, fmt.Errorf("%s: the class names given differ from the model's own (%d classes in its metadata)", tm.Dir(), len(md.Classes))
	case opts.LabelMode != LabelModeAuto && opts.LabelMode != mode:
		return nil, 0, fmt.Errorf("%s: label mode %s given, the model's metadata says %s", tm.Dir(), opts.LabelMode, mode)
	}
	return md.Classes, mode, nil
}

// loadVectorizer loads the text preprocessing stored with the model, or
// returns nil when it has none.
func loadVectorizer(m *tfmodel.Model) (rowio.Vectorizer, error) {
	var v rowio.Vectorizer
	switch {
	case m.TokenizerPath() != "":
		path := m.TokenizerPath()
		t, err := textvec.LoadTokenizer(path)
		if err != nil {
			return nil, err
		}
		if t, err = t.WithMode(m.Metadata().TokenizerMode); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		v = t
	case m.VectorizerPath() != "":
		path := m.VectorizerPath()
		cfg, err := textvec.LoadConfig(path)
		if err != nil {
			return nil, err
		}
		tv, err := textvec.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		v = tv
	default:
		return nil, nil
	}
	if v.Width() != m.InputDim() {
		return nil, fmt.Errorf("%s: the model's text preprocessing makes %d features, the model takes %d", m.Dir(), v.Width(), m.InputDim())
	}
	return v, nil
}

// Close frees the TensorFlow session once in-flight calls finish. It is
// idempotent.
func (m *Model) Close() error { return m.tf.Close() }

// Runtime returns the TensorFlow runtime underneath: signatures, metadata,
// and Run for any signature.
func (m *Model) Runtime() *tfmodel.Model { return m.tf }

// Dir returns the directory the model was opened from.
func (m *Model) Dir() string { return m.tf.Dir() }

// Input returns how examples reach TensorFlow.
func (m *Model) Input() Input { return m.input }

// InputDim returns the number of features per row (0 for a model that
// takes strings).
func (m *Model) InputDim() int { return max(m.tf.InputDim(), 0) }

// Classes returns the class names, in output order: the metadata's, or
// Options.Classes for a model without metadata (nil when neither names them).
func (m *Model) Classes() []string { return slices.Clone(m.classes) }

// LabelMode returns how many classes a row carries: the metadata's mode,
// or Options.LabelMode for a model without metadata.
func (m *Model) LabelMode() LabelMode { return m.labels }

// MultiLabel reports whether a row may carry several classes.
func (m *Model) MultiLabel() bool { return m.labels == LabelModeMulti }

// Vectorizer returns the text preprocessing stored with the model, or nil.
// It is safe for concurrent use.
func (m *Model) Vectorizer() rowio.Vectorizer { return m.vec }

// TakesText reports whether PredictText works: the graph takes strings, or
// the model carries a vectorizer.
func (m *Model) TakesText() bool { return m.input == InputStrings || m.vec != nil }

// The densities (shares of non-zero features) under which a batch is faster
// through a sparse signature than through the dense one. Measured with
// tfmodel's BenchmarkPredict and BenchmarkPredictSparse at D=10,000, 500
// units, 500 rows on 2-core machines (docs/benchmarks.md): at 1% non-zero,
// dense 17–23 ms, a CSR predict_sparse 5.4–5.7 ms, crossing the dense
// signature at 5–6% non-zero, and a densifying predict_sparse (exports whose
// first layer is not one Dense layer) 14.5–15.4 ms. The sparse signatures'
// cost grows with the entries, the dense one's does not; the limits sit below
// the crossovers, as a CPU with faster dense kernels moves them down.
const (
	// sparseEntriesBelow: a first layer computed from the entries
	// (tfmodel.SparseFromEntries).
	sparseEntriesBelow = 0.025
	// sparseBelow: a sparse signature that makes the batch dense.
	sparseBelow = 0.01
	// denseFromSparseMax is the most bytes PredictSparse spends on a dense
	// copy of a batch too dense for the sparse signatures.
	denseFromSparseMax = 64 << 20
	// densityProbe is how many of a dense batch's first values Predict
	// counts to guess whether the batch is sparse enough to convert; the
	// conversion then measures the whole batch. Without the probe, rows 4.5%
	// non-zero (the fortunes model's) were counted through half of a
	// 500-row batch before the count stopped.
	densityProbe = 1 << 14
)

// sparseFaster reports whether a batch scores faster through the model's
// sparse signatures than through its dense one.
func (m *Model) sparseFaster(x sparse.CSR) bool {
	if m.tf.SparseFromEntries() {
		return x.Density() < sparseEntriesBelow
	}
	return x.Density() < sparseBelow
}

// Predict scores rows of features (one example a row) and returns one row of
// outputs per example. Batches that are mostly zeros go through the sparse
// signatures when the model has them and they are faster.
func (m *Model) Predict(ctx context.Context, x dense.Matrix) (dense.Matrix, error) {
	if m.input == InputSparse && len(x.Data) > 0 && fewNonZeros(x.Data[:min(len(x.Data), densityProbe)], max(sparseEntriesBelow, sparseBelow)) {
		if xs := sparse.FromDense(x); m.sparseFaster(xs) {
			return m.tf.PredictSparse(ctx, xs)
		}
	}
	return m.tf.Predict(ctx, x)
}

// fewNonZeros reports whether at most share of data is non-zero. The count
// stops as soon as the non-zeros pass the limit, so a dense batch costs a
// look at its first few hundred values, not a pass over all of them (the
// full pass was 6% of Predict's CPU time at 500×256, 3% non-zero).
func fewNonZeros(data []float32, share float64) bool {
	limit, nonZero := int(share*float64(len(data))), 0
	// Counted without a branch per value (a value's magnitude bits plus
	// 0x7fffffff carry into bit 31 unless they are all zero, so -0 counts as
	// zero), which mispredicts at bag-of-words densities; the limit is
	// checked once per block.
	const block = 256
	for len(data) > 0 {
		n := min(block, len(data))
		for _, v := range data[:n] {
			nonZero += int((math.Float32bits(v)&0x7fffffff + 0x7fffffff) >> 31)
		}
		if nonZero > limit {
			return false
		}
		data = data[n:]
	}
	return true
}

// PredictSparse scores sparse rows: through the sparse signatures when the
// model has them, else, or when the batch is dense enough to score faster
// as dense rows (and its dense copy takes at most 64 MiB), as dense rows.
func (m *Model) PredictSparse(ctx context.Context, x sparse.CSR) (dense.Matrix, error) {
	if m.input == InputSparse {
		// Validate last: only a batch about to be densified needs it here
		// (Dense panics on a malformed CSR); tfmodel validates the others.
		if m.sparseFaster(x) || x.Rows*x.Cols*4 > denseFromSparseMax || x.Validate() != nil {
			return m.tf.PredictSparse(ctx, x)
		}
	}
	return m.tf.Predict(ctx, x.Dense())
}

// PredictText scores raw-text documents: as strings when the graph takes
// them, else through the model's vectorizer and the sparse (or dense)
// signature. It returns ErrNoTextInput for a model that takes no text.
func (m *Model) PredictText(ctx context.Context, texts []string) (dense.Matrix, error) {
	if m.input == InputStrings {
		return m.tf.PredictText(ctx, texts)
	}
	if m.vec == nil {
		return dense.Matrix{}, fmt.Errorf("%s: %w", m.Dir(), ErrNoTextInput)
	}
	x := sparse.New(m.vec.Width())
	var idx []int32
	var val []float32
	for _, t := range texts {
		idx, val = m.vec.VectorizeSparse(t, idx[:0], val[:0])
		x.AppendRow(idx, val)
	}
	return m.PredictSparse(ctx, x)
}
