package tfmodel

import (
	"context"
	"fmt"
	"math"
	"runtime"

	tf "github.com/galeone/tensorflow/tensorflow/go"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/sparse"
	"github.com/kerasgo/kerasgo/tensor"
)

// Labels are the targets of a training or evaluation batch. Set exactly one
// field; either form is converted to what the model's label mode needs.
type Labels struct {
	// Classes holds one class index per row (single-label data).
	Classes []int64
	// Matrix holds one row per example and one column per class: one-hot for
	// single-label data, multi-hot for multi-label data.
	Matrix dense.Matrix
}

// StepResult is what a training or evaluation step returns.
type StepResult struct {
	// Loss is the batch's loss as Keras computes it (the sample-weighted mean,
	// plus any regularisation losses when training).
	Loss float64
	// Probabilities are the model's outputs for the batch: for a training
	// step, the training-mode forward pass before the weights were updated.
	Probabilities dense.Matrix
}

// Trainable reports whether the model can be trained from Go and, when it
// cannot, why.
func (m *Model) Trainable() (bool, string) {
	if m.meta == nil {
		return false, "the model has no kerasgo metadata (export it with `kerasgo export` to add training signatures)"
	}
	for _, role := range []Role{RoleTrain, RoleEvaluate} {
		key := m.meta.Signatures[role]
		if _, ok := m.sigs[key]; key == "" || !ok {
			return false, fmt.Sprintf("the model has no %s signature %q", role, key)
		}
	}
	return true, ""
}

// TrainStep runs one optimizer step on a batch: it updates the weights and
// the optimizer's state, exactly as Keras' train_on_batch would. Steps are
// serialised, and predictions wait while a step runs. sampleWeight may be
// nil (every row weighs 1).
func (m *Model) TrainStep(ctx context.Context, x dense.Matrix, y Labels, sampleWeight []float32) (StepResult, error) {
	r, err := m.denseStep(ctx, RoleTrain, x, y, sampleWeight)
	if err != nil {
		return StepResult{}, fmt.Errorf("train step: %w", err)
	}
	return r, nil
}

// EvaluateStep computes the loss and probabilities of a batch without
// changing the model. It may run concurrently with predictions.
func (m *Model) EvaluateStep(ctx context.Context, x dense.Matrix, y Labels, sampleWeight []float32) (StepResult, error) {
	r, err := m.denseStep(ctx, RoleEvaluate, x, y, sampleWeight)
	if err != nil {
		return StepResult{}, fmt.Errorf("evaluate step: %w", err)
	}
	return r, nil
}

// TrainStepSparse is TrainStep for a sparse batch, through the exporter's
// train_step_sparse signature (its first layer as PredictSparse's).
func (m *Model) TrainStepSparse(ctx context.Context, x sparse.CSR, y Labels, sampleWeight []float32) (StepResult, error) {
	r, err := m.sparseStep(ctx, RoleTrainSparse, x, y, sampleWeight)
	if err != nil {
		return StepResult{}, fmt.Errorf("train step: %w", err)
	}
	return r, nil
}

// EvaluateStepSparse is EvaluateStep for a sparse batch.
func (m *Model) EvaluateStepSparse(ctx context.Context, x sparse.CSR, y Labels, sampleWeight []float32) (StepResult, error) {
	r, err := m.sparseStep(ctx, RoleEvaluateSparse, x, y, sampleWeight)
	if err != nil {
		return StepResult{}, fmt.Errorf("evaluate step: %w", err)
	}
	return r, nil
}

func (m *Model) denseStep(ctx context.Context, role Role, x dense.Matrix, y Labels, sampleWeight []float32) (StepResult, error) {
	if err := m.checkShape(x.Validate(), x.Rows, x.Cols); err != nil {
		return StepResult{}, err
	}
	return m.step(ctx, role, x.Rows, y, sampleWeight, func() (map[string]*tf.Tensor, int, error) {
		t, err := m.featureTensor(x, 0)
		return map[string]*tf.Tensor{m.meta.InputKey: t}, len(x.Data) * 4, err
	})
}

func (m *Model) sparseStep(ctx context.Context, role Role, x sparse.CSR, y Labels, sampleWeight []float32) (StepResult, error) {
	if !m.HasRole(role) && m.meta != nil {
		return StepResult{}, fmt.Errorf("the model has no %s signature (re-export it with kerasgo export): %w", role, ErrUnknownSignature)
	}
	if err := m.checkSparse(x); err != nil {
		return StepResult{}, err
	}
	return m.step(ctx, role, x.Rows, y, sampleWeight, func() (map[string]*tf.Tensor, int, error) {
		return sparseFeeds(x)
	})
}

// step runs a training or evaluation signature (role names it in the
// metadata) with the features features makes, the labels and the weights.
func (m *Model) step(ctx context.Context, role Role, rows int, y Labels, sampleWeight []float32, features func() (map[string]*tf.Tensor, int, error)) (StepResult, error) {
	if ok, why := m.Trainable(); !ok {
		return StepResult{}, fmt.Errorf("%s: %w", why, ErrNotTrainable)
	}
	labels, err := m.labelTensor(y, rows)
	if err != nil {
		return StepResult{}, err
	}
	if sampleWeight == nil {
		sampleWeight = make([]float32, rows)
		for i := range sampleWeight {
			sampleWeight[i] = 1
		}
	}
	if len(sampleWeight) != rows {
		return StepResult{}, fmt.Errorf("%d sample weights for %d rows: %w", len(sampleWeight), rows, ErrShape)
	}
	feeds, size, err := features()
	if err != nil {
		return StepResult{}, err
	}
	weights, err := newTensor(tf.Float, sampleWeight, int64(len(sampleWeight)))
	if err != nil {
		return StepResult{}, err
	}
	exclusive := role == RoleTrain || role == RoleTrainSparse
	release, err := m.acquire(ctx, exclusive)
	if err != nil {
		return StepResult{}, err
	}
	defer release()
	md := m.meta
	sig := m.sigs[md.Signatures[role]]
	feeds[md.LabelsKey] = labels
	feeds[md.SampleWeightKey] = weights
	res, err := m.runLocked(sig, feeds, []string{"loss", "probabilities"})
	m.noteTensorBytes(size + len(sampleWeight)*4)
	if err != nil {
		return StepResult{}, err
	}
	loss, ok := res[0].Value().(float32)
	runtime.KeepAlive(res[0]) // see readMatrix
	if !ok {
		return StepResult{}, fmt.Errorf("loss is %v %v, want a float32 scalar: %w", res[0].DataType(), res[0].Shape(), ErrUnsupportedDType)
	}
	probs, err := readMatrix(res[1], dense.Matrix{}, 0)
	if err != nil {
		return StepResult{}, err
	}
	return StepResult{Loss: float64(loss), Probabilities: probs}, nil
}

// runLocked feeds and fetches a signature by key names. The caller holds m.mu.
func (m *Model) runLocked(sig tensor.Signature, feeds map[string]*tf.Tensor, fetches []string) ([]*tf.Tensor, error) {
	in := make(map[tf.Output]*tf.Tensor, len(feeds))
	for key, t := range feeds {
		spec, ok := sig.Inputs[key]
		if !ok {
			return nil, fmt.Errorf("signature %q has no input %q: %w", sig.Key, key, ErrUnknownSignature)
		}
		o, err := m.output(spec.Name)
		if err != nil {
			return nil, err
		}
		in[o] = t
	}
	out := make([]tf.Output, len(fetches))
	for i, key := range fetches {
		spec, ok := sig.Outputs[key]
		if !ok {
			return nil, fmt.Errorf("signature %q has no output %q: %w", sig.Key, key, ErrUnknownSignature)
		}
		o, err := m.output(spec.Name)
		if err != nil {
			return nil, err
		}
		out[i] = o
	}
	res, err := m.session.Run(in, out, nil)
	if isInvalidArgument(err) {
		return nil, fmt.Errorf("running signature %q: %w: %w", sig.Key, ErrInvalidArgument, err)
	}
	if err != nil {
		return nil, fmt.Errorf("running signature %q: %w", sig.Key, err)
	}
	return res, nil
}

// labelTensor converts labels to the tensor the model's label mode needs.
func (m *Model) labelTensor(y Labels, rows int) (*tf.Tensor, error) {
	classes := len(m.meta.Classes)
	if (y.Classes == nil) == (y.Matrix.Data == nil) {
		return nil, fmt.Errorf("set exactly one of Labels.Classes and Labels.Matrix: %w", ErrLabels)
	}
	if y.Classes != nil {
		if len(y.Classes) != rows {
			return nil, fmt.Errorf("%d labels for %d rows: %w", len(y.Classes), rows, ErrLabels)
		}
		for i, c := range y.Classes {
			if c < 0 || int(c) >= classes {
				return nil, &InputError{Row: i, Col: -1, Err: fmt.Errorf("class %d outside 0..%d: %w", c, classes-1, ErrLabels)}
			}
		}
		if m.meta.LabelMode == LabelSparse {
			return newTensor(tf.Int64, y.Classes, int64(rows))
		}
		onehot := dense.New(rows, classes)
		for i, c := range y.Classes {
			onehot.Row(i)[c] = 1
		}
		return newTensor(tf.Float, onehot.Data, int64(rows), int64(classes))
	}
	if err := y.Matrix.Validate(); err != nil {
		return nil, fmt.Errorf("labels: %w: %w", ErrLabels, err)
	}
	if y.Matrix.Rows != rows || y.Matrix.Cols != classes {
		return nil, fmt.Errorf("labels are %d×%d, want %d×%d (rows × classes): %w", y.Matrix.Rows, y.Matrix.Cols, rows, classes, ErrLabels)
	}
	if i := firstNonFinite(y.Matrix.Data); i >= 0 {
		return nil, &InputError{Row: i / classes, Col: i % classes, Err: fmt.Errorf("label %v: %w", y.Matrix.Data[i], ErrNonFinite)}
	}
	if m.meta.LabelMode != LabelSparse {
		return newTensor(tf.Float, y.Matrix.Data, int64(rows), int64(classes))
	}
	idx := make([]int64, rows)
	for i := range rows {
		row, hot := y.Matrix.Row(i), -1
		for j, v := range row {
			switch {
			case v == 1 && hot < 0:
				hot = j
			case v != 0:
				hot = -2
			}
		}
		if hot < 0 {
			return nil, &InputError{Row: i, Col: -1, Err: fmt.Errorf("not a one-hot row: %w", ErrLabels)}
		}
		idx[i] = int64(hot)
	}
	return newTensor(tf.Int64, idx, int64(rows))
}

// SetLearningRate sets the optimizer's learning rate for the following
// training steps (and for a model saved afterwards).
func (m *Model) SetLearningRate(ctx context.Context, rate float64) error {
	if ok, why := m.Trainable(); !ok {
		return fmt.Errorf("set learning rate: %s: %w", why, ErrNotTrainable)
	}
	key := m.meta.Signatures[RoleSetLearningRate]
	sig, ok := m.sigs[key]
	if !ok {
		return fmt.Errorf("set learning rate: no signature %q: %w", key, ErrUnknownSignature)
	}
	if rate <= 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
		return fmt.Errorf("set learning rate: %v is not a positive number", rate)
	}
	t, err := tf.NewTensor(float32(rate))
	if err != nil {
		return fmt.Errorf("set learning rate: %w", err)
	}
	release, err := m.acquire(ctx, true)
	if err != nil {
		return fmt.Errorf("set learning rate: %w", err)
	}
	defer release()
	if _, err := m.runLocked(sig, map[string]*tf.Tensor{"learning_rate": t}, []string{"learning_rate"}); err != nil {
		return fmt.Errorf("set learning rate: %w", err)
	}
	return nil
}

// Weights returns the model's weights by name (the Keras variable path with
// "/" as "__"), read through the exporter's get_weights signature. Vectors
// (biases) come back as single-column matrices.
func (m *Model) Weights(ctx context.Context) (map[string]dense.Matrix, error) {
	if m.meta == nil || m.meta.Signatures[RoleWeights] == "" {
		return nil, fmt.Errorf("weights: the model has no get_weights signature: %w", ErrUnknownSignature)
	}
	sig, ok := m.roleSignature(RoleWeights)
	if !ok {
		return nil, fmt.Errorf("weights: no signature %q: %w", m.meta.Signatures[RoleWeights], ErrUnknownSignature)
	}
	release, err := m.acquire(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	defer release()
	names := sig.OutputNames()
	res, err := m.runLocked(sig, nil, names)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	out := make(map[string]dense.Matrix, len(names))
	for i, name := range names {
		w, err := readMatrix(res[i], dense.Matrix{}, 0)
		if err != nil {
			return nil, fmt.Errorf("weights: %s: %w", name, err)
		}
		out[name] = w
	}
	return out, nil
}
