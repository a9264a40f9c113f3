package kerasgo

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/kerasgo/kerasgo/convert"
	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/fit"
	"github.com/kerasgo/kerasgo/tfmodel"
)

// Trainable reports whether the model carries the exporter's training
// signatures and metadata, and why not.
func (m *Model) Trainable() (bool, string) {
	if m.tf.Metadata() == nil {
		return false, fmt.Sprintf("%s: no kerasgo metadata; export the model with kerasgo export to evaluate or train it", m.Dir())
	}
	if ok, why := m.tf.Trainable(); !ok {
		return false, fmt.Sprintf("%s: %s", m.Dir(), why)
	}
	return true, ""
}

// FitOptions returns the fit options the model's metadata implies (input
// width, classes and label mode, loss); the caller adds epochs, batch size
// and the rest. It fails for a model Trainable rejects.
func (m *Model) FitOptions() (fit.Options, error) {
	if ok, why := m.Trainable(); !ok {
		return fit.Options{}, fmt.Errorf("%s", why)
	}
	md := m.tf.Metadata()
	return fit.Options{
		Dim:    md.InputDim,
		Labels: fit.NewLabels(md.Classes, md.LabelMode == tfmodel.LabelMultiLabel),
		Loss:   md.Loss.ClassName,
	}, nil
}

// TrainBatch runs one optimizer step (Keras' train_on_batch) and returns the
// batch loss and the training-mode probabilities: through the sparse
// training signature when the model has one. With EvaluateBatch and Save it
// makes a *Model a fit.Model.
func (m *Model) TrainBatch(ctx context.Context, b fit.Batch) (float64, dense.Matrix, error) {
	var r tfmodel.StepResult
	var err error
	if m.sparseSteps {
		r, err = m.tf.TrainStepSparse(ctx, b.X, tfmodel.Labels{Matrix: b.Y}, b.Weights)
	} else {
		r, err = m.tf.TrainStep(ctx, b.X.Dense(), tfmodel.Labels{Matrix: b.Y}, b.Weights)
	}
	return r.Loss, r.Probabilities, err
}

// EvaluateBatch returns the loss and probabilities of a batch without
// training (Keras' test_on_batch).
func (m *Model) EvaluateBatch(ctx context.Context, b fit.Batch) (float64, dense.Matrix, error) {
	var r tfmodel.StepResult
	var err error
	if m.sparseSteps {
		r, err = m.tf.EvaluateStepSparse(ctx, b.X, tfmodel.Labels{Matrix: b.Y}, b.Weights)
	} else {
		r, err = m.tf.EvaluateStep(ctx, b.X.Dense(), tfmodel.Labels{Matrix: b.Y}, b.Weights)
	}
	return r.Loss, r.Probabilities, err
}

// SetLearningRate sets the optimizer's learning rate for the next steps.
func (m *Model) SetLearningRate(ctx context.Context, lr float64) error {
	return m.tf.SetLearningRate(ctx, lr)
}

// Save writes the model with its current weights to dir, atomically; the
// model directory it was opened from is not touched.
func (m *Model) Save(ctx context.Context, dir string) error { return m.tf.Save(ctx, dir) }

// LabelledSource returns a fit.Source over the labelled file at path (libsvm,
// or JSONL rows with "label"/"labels"; raw-text JSONL rows go through the
// model's vectorizer). Each pass opens the file anew and fails with
// convert.ErrChanged if the file changes while it is read.
func (m *Model) LabelledSource(path string) (fit.Source, error) {
	f := convert.FormatOf(path)
	if !f.Labelled() {
		return nil, fmt.Errorf("%s: training and evaluation read libsvm (.libsvm, .svm) or JSONL (.jsonl) files, which carry labels: %w", path, convert.ErrUnknownFormat)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("opening data: %w", err)
	}
	opts := convert.ReaderOptions{Dim: m.InputDim(), Vectorizer: m.vec, Sparse: true}
	if f == convert.FormatLibSVM {
		// Detect the index base once, not on every pass.
		base, err := convert.LibSVMFileBase(path)
		if err != nil {
			return nil, err
		}
		return func() (convert.RowReader, io.Closer, error) {
			file, err := convert.OpenStable(path)
			if err != nil {
				return nil, nil, err
			}
			r, err := convert.NewLibSVMReader(file, path, convert.LibSVMOptions{Dim: opts.Dim, Base: base, Sparse: true})
			if err != nil {
				file.Close()
				return nil, nil, err
			}
			return r, file, nil
		}, nil
	}
	return func() (convert.RowReader, io.Closer, error) {
		file, err := convert.OpenStable(path)
		if err != nil {
			return nil, nil, err
		}
		r, err := convert.NewFormatReader(file, path, f, opts)
		if err != nil {
			file.Close()
			return nil, nil, err
		}
		return r, file, nil
	}, nil
}
