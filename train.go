package kerasgo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/kerasgo/kerasgo/atomicfile"
	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/evaluation"
	"github.com/kerasgo/kerasgo/fit"
	"github.com/kerasgo/kerasgo/rowio"
	"github.com/kerasgo/kerasgo/tfmodel"
)

// Trainable reports whether the model carries the exporter's training
// signatures and metadata, and why not.
func (m *Model) Trainable() (bool, string) {
	if m.tf.Metadata() == nil {
		return false, fmt.Sprintf("%s: no kerasgo metadata; export the model with kerasgo export to train it (Evaluator evaluates it as it is)", m.Dir())
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
		return fit.Options{}, fmt.Errorf("%s: %w", why, tfmodel.ErrNotTrainable)
	}
	md := m.tf.Metadata()
	return fit.Options{
		Dim:    md.InputDim,
		Labels: fit.NewLabelParser(m.Classes(), m.MultiLabel()),
		Loss:   evaluation.Loss(md.Loss.ClassName),
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
// model directory it was opened from is not touched. dir is a SavedModel
// directory: to publish a new version of a TF Serving base path, use
// package promote, not a numbered directory inside the opened model.
func (m *Model) Save(ctx context.Context, dir string) error { return m.tf.Save(ctx, dir) }

// Restore puts back into the model the weights and optimizer state of a
// SavedModel that Save wrote from it (or the directory it was opened from).
func (m *Model) Restore(ctx context.Context, dir string) error { return m.tf.Restore(ctx, dir) }

// CheckpointDir is where Train keeps the checkpoint of a run saving to out
// (Options.CheckpointEvery), with the loop's state at
// fit.StatePath(CheckpointDir(out)); OpenCheckpoint resumes from it.
func CheckpointDir(out string) string { return filepath.Clean(out) + ".checkpoint" }

// OpenCheckpoint opens the checkpoint an interrupted Train to out left
// (CheckpointDir), and returns the model and the loop state to put in
// fit.Options.Resume; Train then continues where the run stopped.
func OpenCheckpoint(ctx context.Context, out string, opts Options) (*Model, *fit.State, error) {
	dir := CheckpointDir(out)
	st, err := fit.ReadState(fit.StatePath(dir))
	if err != nil {
		return nil, nil, fmt.Errorf("resuming: %w (no checkpoint from an earlier run with CheckpointEvery?)", err)
	}
	m, err := Open(ctx, dir, opts)
	if err != nil {
		return nil, nil, err
	}
	return m, &st, nil
}

// Train keeps training the model with fit.Run on the rows of train,
// validating on val (or opts.ValidationSplit of train), and saves the
// result to out, atomically, with its training record (fit.WriteRecord):
//
//   - with validation data, the best epoch's weights by opts.Monitor (the
//     model as it was when no epoch beat it), which Train also puts back
//     into m, so the model in memory is the one saved;
//   - without, the last weights;
//   - when ctx is canceled (res.Stopped is fit.StopInterrupted), the
//     weights of the last finished step, and the checkpoint stays for
//     OpenCheckpoint.
//
// With validation data, a finished run also records the class mix of the
// validation rows and of the saved model's predictions on them
// (evaluation.ClassMix), which kerasgo serve compares its traffic with.
//
// opts comes from FitOptions plus the caller's epochs, batch size and the
// rest; Train sets its BestDir (a temporary directory beside out, removed
// on return) and, with CheckpointEvery, its CheckpointDir. The directory
// m was opened from is never modified. Saving outlives a canceled ctx, so
// stopping never loses the work done.
//
// While it runs, Train holds out (atomicfile.ClaimPath): a second Train to
// the same out fails with atomicfile.ErrBusy, and the temporary
// directories a run killed before it finished left beside out are removed
// first. Files and directories get 0666 and 0777 less the umask.
func (m *Model) Train(ctx context.Context, train, val fit.Source, out string, opts fit.Options) (fit.Result, error) {
	out, err := filepath.Abs(out)
	if err != nil {
		return fit.Result{}, err
	}
	if src, err := filepath.Abs(m.Dir()); err == nil && src == out {
		return fit.Result{}, fmt.Errorf("training %s: the output must differ from the model's own directory, which training never modifies", m.Dir())
	}
	claim, err := atomicfile.ClaimPath(out)
	if err != nil {
		return fit.Result{}, fmt.Errorf("training into %s: %w", out, err)
	}
	defer claim.Release()
	opts.BestDir, opts.CheckpointDir = "", ""
	if opts.CheckpointEvery > 0 {
		opts.CheckpointDir = CheckpointDir(out)
	}
	if val != nil || opts.ValidationSplit > 0 {
		tmp, err := atomicfile.TempDir(out + ".best")
		if err != nil {
			return fit.Result{}, err
		}
		defer os.RemoveAll(tmp)
		opts.BestDir = filepath.Join(tmp, "model")
	}
	res, err := fit.Run(ctx, m, train, val, opts)
	if err != nil {
		return res, err
	}
	saveCtx := context.WithoutCancel(ctx)
	switch {
	case res.Stopped == fit.StopInterrupted:
		return res, m.Save(saveCtx, out)
	case res.BestEpoch >= 0:
		if err := fit.WriteRecord(opts.BestDir, res); err != nil {
			return res, err
		}
		if err := atomicfile.ReplaceDir(opts.BestDir, out); err != nil {
			return res, err
		}
		if last := len(res.History); last == 0 || res.History[last-1].Epoch != res.BestEpoch {
			if err := m.Restore(saveCtx, out); err != nil {
				return res, fmt.Errorf("putting the best epoch's weights back: %w", err)
			}
		}
	default:
		if err := m.Save(saveCtx, out); err != nil {
			return res, err
		}
		if err := fit.WriteRecord(out, res); err != nil {
			return res, err
		}
	}
	// The class mix the saved model was validated on, for a server to
	// compare its traffic with (evaluation.DiagnoseTraffic).
	if eval, _, what := res.Kept(); (val != nil || opts.ValidationSplit > 0) && eval.Rows > 0 {
		if err := evaluation.MixOf(eval, "kerasgo train: "+what).Write(out); err != nil {
			return res, err
		}
	}
	// A finished run supersedes any checkpoint of out, its own or an
	// interrupted earlier run's.
	os.RemoveAll(CheckpointDir(out))
	os.Remove(fit.StatePath(CheckpointDir(out)))
	return res, nil
}

// LabelledSource returns a fit.Source over the labelled file at path (libsvm,
// or JSONL rows with "label"/"labels"; raw-text JSONL rows go through the
// model's vectorizer). Each pass opens the file anew and fails with
// rowio.ErrChanged if the file changes while it is read.
func (m *Model) LabelledSource(path string) (fit.Source, error) {
	f := rowio.FormatOf(path)
	if !f.Labelled() {
		return nil, fmt.Errorf("%s: training and evaluation read libsvm (.libsvm, .svm) or JSONL (.jsonl) files, which carry labels: %w", path, rowio.ErrUnknownFormat)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("opening data: %w", err)
	}
	opts := rowio.ReaderOptions{Dim: m.InputDim(), Vectorizer: m.vec, Sparse: true}
	if f == rowio.FormatLibSVM {
		// Detect the index base once, not on every pass.
		var err error
		if opts.Base, err = rowio.LibSVMFileBase(path); err != nil {
			return nil, err
		}
	}
	return func() (rowio.RowReader, io.Closer, error) {
		file, err := rowio.OpenStable(path)
		if err != nil {
			return nil, nil, err
		}
		r, err := rowio.NewFormatReader(file, path, f, opts)
		if err != nil {
			file.Close()
			return nil, nil, err
		}
		return r, file, nil
	}, nil
}
