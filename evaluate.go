package kerasgo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/evaluation"
	"github.com/kerasgo/kerasgo/fit"
	"github.com/kerasgo/kerasgo/rowio"
	"github.com/kerasgo/kerasgo/sparse"
	"github.com/kerasgo/kerasgo/tfmodel"
)

// inferRows is how many rows of the data decide whether a model without
// metadata ends in a softmax.
const inferRows = 256

// Evaluator returns what evaluating the model on src takes: the model as a
// fit.Model, and the options for fit.Evaluate (the caller adds the batch
// size). An exported model evaluates through its evaluate step, with its
// metadata's classes, label mode and loss, and inferred is "".
//
// Any other SavedModel says nothing of its labels or loss, so what Options
// did not give is inferred and inferred says how: the classes are
// Options.Classes, else the output's indices ("0", "1", …); the labels
// follow Options.LabelMode, else are multi-hot when some row of src carries
// no label or several, and one-hot otherwise; the loss is what Keras computes for such
// outputs, categorical cross-entropy when every row of the model's
// probabilities on the first rows of src sums to 1 (a softmax), binary
// cross-entropy otherwise. Such a model is scored by its predictions: it
// cannot be trained.
func (m *Model) Evaluator(ctx context.Context, src fit.Source) (model fit.Model, opts fit.Options, inferred string, err error) {
	if m.tf.Metadata() != nil {
		opts, err := m.FitOptions()
		return m, opts, "", err
	}
	dim, classes := m.InputDim(), m.tf.OutputDim()
	if dim <= 0 || classes <= 0 {
		return nil, fit.Options{}, "", fmt.Errorf("%s: no kerasgo metadata, and its prediction signature does not take rows of a known width to rows of class probabilities; export it with kerasgo export", m.Dir())
	}
	multi, modeFrom := m.labels == LabelModeMulti, "given"
	if m.labels == LabelModeAuto {
		if multi, err = fit.InferMultiLabel(ctx, src); err != nil {
			return nil, fit.Options{}, "", err
		}
		modeFrom = "inferred from the data"
	}
	softmax, err := m.endsInSoftmax(ctx, src)
	if err != nil {
		return nil, fit.Options{}, "", err
	}
	names, named := m.Classes(), "named as given"
	if names == nil {
		names, named = make([]string, classes), "named by index"
		for i := range names {
			names[i] = strconv.Itoa(i)
		}
	}
	loss, mode, activation := evaluation.BinaryCrossentropy, "one label a row: one-hot targets", "sigmoid"
	if multi {
		mode = "some rows carry no label or several: multi-hot targets"
	}
	if softmax {
		loss, activation = evaluation.CategoricalCrossentropy, "softmax"
	}
	inferred = fmt.Sprintf("%s has no kerasgo metadata; labels %s: %s; %d classes %s; %s outputs (inferred from the data) scored with %s", m.Dir(), modeFrom, mode, classes, named, activation, loss)
	opts = fit.Options{Dim: dim, Labels: fit.NewLabelParser(names, multi), Loss: loss}
	return predictionEvaluator{m: m, loss: loss}, opts, inferred, nil
}

// endsInSoftmax predicts the first rows of src and reports whether every
// row of probabilities sums to 1.
func (m *Model) endsInSoftmax(ctx context.Context, src fit.Source) (bool, error) {
	r, closer, err := src()
	if err != nil {
		return false, fmt.Errorf("opening data: %w", err)
	}
	defer closer.Close()
	x := sparse.New(m.InputDim())
	var row rowio.Row
	for x.Rows < inferRows {
		err := r.Read(&row)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return false, err
		}
		if len(row.Features) > 0 {
			idx, vals := sparse.AppendNonZero(nil, nil, row.Features)
			x.AppendRow(idx, vals)
		} else {
			x.AppendRow(row.Indices, row.Values)
		}
	}
	if x.Rows == 0 {
		return false, nil
	}
	probs, err := m.PredictSparse(ctx, x)
	if err != nil {
		return false, err
	}
	for i := range probs.Rows {
		var sum float64
		for _, p := range probs.Row(i) {
			sum += float64(p)
		}
		if math.Abs(sum-1) > 1e-3 {
			return false, nil
		}
	}
	return true, nil
}

// predictionEvaluator scores a model without kerasgo metadata by its
// predictions, computing the loss as Keras would.
type predictionEvaluator struct {
	m    *Model
	loss evaluation.Loss
}

func (p predictionEvaluator) EvaluateBatch(ctx context.Context, b fit.Batch) (float64, dense.Matrix, error) {
	probs, err := p.m.PredictSparse(ctx, b.X)
	if err != nil {
		return 0, dense.Matrix{}, err
	}
	loss, err := evaluation.BatchLoss(p.loss, probs, b.Y)
	return loss, probs, err
}

func (p predictionEvaluator) TrainBatch(context.Context, fit.Batch) (float64, dense.Matrix, error) {
	_, why := p.m.Trainable()
	return 0, dense.Matrix{}, fmt.Errorf("%s: %w", why, tfmodel.ErrNotTrainable)
}

func (p predictionEvaluator) Save(context.Context, string) error {
	_, why := p.m.Trainable()
	return fmt.Errorf("%s: %w", why, tfmodel.ErrNotTrainable)
}
