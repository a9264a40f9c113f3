// Package evaluation measures kerasgo's classifiers on labelled rows and
// sets each number beside the baseline it has to beat, with a plain-language
// diagnosis that quotes the numbers it rests on.
//
// It exists because the same Keras training code prints different
// "accuracy" numbers on different Keras versions: a sigmoid model trained
// with binary cross-entropy reported binary (element-wise) accuracy up to
// Keras 2.3, which a model predicting no class at all scores at 1 − 1/C.
// A Report therefore always carries the binary accuracy, the accuracy that
// fits the task (top-1 for one label a row, subset accuracy for multi-label)
// and the baselines: majority class, all-zeros, prior loss.
//
// An Accumulator takes batches of probabilities and targets and keeps only
// counts (O(C²) memory for single-label, O(C) for multi-label), so any
// number of rows can stream through it. The package uses no cgo.
package evaluation

import (
	"errors"
	"fmt"
	"math"

	"github.com/kerasgo/kerasgo/dense"
)

// Loss is a Keras loss, by its class name.
type Loss string

// The losses Options.Loss accepts.
const (
	BinaryCrossentropy            Loss = "BinaryCrossentropy"
	CategoricalCrossentropy       Loss = "CategoricalCrossentropy"
	SparseCategoricalCrossentropy Loss = "SparseCategoricalCrossentropy"
)

// DefaultThreshold is the probability above which an output counts as a
// positive prediction when Options.Threshold is zero (Keras' BinaryAccuracy
// default).
const DefaultThreshold = 0.5

// epsilon is Keras' backend.epsilon(), the clip applied to probabilities
// inside its cross-entropy losses.
const epsilon = 1e-7

var (
	// ErrOptions reports Options that NewAccumulator cannot work with.
	ErrOptions = errors.New("invalid metrics options")
	// ErrValue reports a batch holding a value that cannot be scored: a
	// probability outside [0, 1] or NaN, a target other than 0 or 1, a
	// single-label target row without exactly one 1, or a non-finite loss.
	ErrValue = errors.New("invalid value")
)

// Options describe the classifier being evaluated.
type Options struct {
	// Classes names the model's outputs in order; its length is the number
	// of classes C. Single-label models need at least two.
	Classes []string
	// MultiLabel is true when a row may carry any number of classes
	// (sigmoid outputs, multi-hot targets) and false when it carries
	// exactly one (one-hot targets).
	MultiLabel bool
	// Threshold is the probability above which an output counts as
	// predicted, compared strictly (p > Threshold) as Keras' BinaryAccuracy
	// does. Zero means DefaultThreshold; otherwise it must lie in (0, 1).
	Threshold float32
	// Loss is the Keras class name of the model's loss: BinaryCrossentropy,
	// CategoricalCrossentropy or SparseCategoricalCrossentropy. It decides
	// how the prior-loss baseline is computed, so that it is comparable
	// with the losses passed to Add.
	Loss Loss
}

// Accumulator gathers the counts behind a Report from batches of
// predictions. Its memory depends on the number of classes only, never on
// the number of rows. It is not safe for concurrent use.
type Accumulator struct {
	opts Options
	c    int

	rows     int
	lossSum  float64 // Σ batch loss × batch rows
	elemHits int     // outputs whose thresholded prediction equals the target
	exact    int     // single-label: argmax hits; multi-label: rows with every output right
	empty    int     // rows without any target label

	support   []int // rows (or labels) of each class in the targets
	predicted []int // predictions of each class: argmax (single-label) or thresholded
	tp        []int // correct predictions of each class
	confusion []int // single-label only: C×C, true class × predicted class
}

// NewAccumulator checks opts and returns an empty Accumulator. The caller's
// Options are copied, never modified.
func NewAccumulator(opts Options) (*Accumulator, error) {
	c := len(opts.Classes)
	switch {
	case c == 0:
		return nil, fmt.Errorf("no classes: %w", ErrOptions)
	case c == 1 && !opts.MultiLabel:
		return nil, fmt.Errorf("single-label model with one class (a one-output binary classifier is MultiLabel with one class): %w", ErrOptions)
	}
	thr := opts.Threshold
	if thr == 0 {
		thr = DefaultThreshold
	}
	if !(thr > 0 && thr < 1) {
		return nil, fmt.Errorf("threshold %v outside (0, 1): %w", opts.Threshold, ErrOptions)
	}
	switch opts.Loss {
	case BinaryCrossentropy, CategoricalCrossentropy:
	case SparseCategoricalCrossentropy:
		if opts.MultiLabel {
			return nil, fmt.Errorf("loss %s cannot train a multi-label model: %w", opts.Loss, ErrOptions)
		}
	default:
		return nil, fmt.Errorf("loss %q is not one of %s, %s, %s: %w", opts.Loss,
			BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy, ErrOptions)
	}
	own := opts
	own.Classes = append([]string(nil), opts.Classes...)
	own.Threshold = thr
	a := &Accumulator{
		opts:      own,
		c:         c,
		support:   make([]int, c),
		predicted: make([]int, c),
		tp:        make([]int, c),
	}
	if !opts.MultiLabel {
		a.confusion = make([]int, c*c)
	}
	return a, nil
}

// Add scores one batch. probs holds the model's probabilities, targets the
// true labels as one-hot (single-label) or multi-hot (multi-label) rows of
// the same shape, and batchLoss the model's mean loss over the batch; the
// Report's loss weighs each batch by its rows. A batch with an invalid value
// is rejected whole (the error wraps ErrValue or dense.ErrShape) and leaves
// the Accumulator unchanged.
func (a *Accumulator) Add(probs, targets dense.Matrix, batchLoss float64) error {
	if err := a.check(probs, targets, batchLoss); err != nil {
		return err
	}
	if probs.Rows == 0 {
		return nil
	}
	thr := a.opts.Threshold
	for i := range probs.Rows {
		p, y := probs.Row(i), targets.Row(i)
		rowExact, labels := true, 0
		for j, pj := range p {
			pred := pj > thr
			truth := y[j] == 1
			if truth {
				labels++
			}
			if pred == truth {
				a.elemHits++
			} else {
				rowExact = false
			}
			if a.opts.MultiLabel {
				if truth {
					a.support[j]++
				}
				if pred {
					a.predicted[j]++
					if truth {
						a.tp[j]++
					}
				}
			}
		}
		if labels == 0 {
			a.empty++
		}
		if a.opts.MultiLabel {
			if rowExact {
				a.exact++
			}
			continue
		}
		t, k := dense.Argmax(y), dense.Argmax(p)
		a.support[t]++
		a.predicted[k]++
		a.confusion[t*a.c+k]++
		if t == k {
			a.tp[t]++
			a.exact++
		}
	}
	a.rows += probs.Rows
	a.lossSum += batchLoss * float64(probs.Rows)
	return nil
}

// check validates a whole batch before Add changes anything.
func (a *Accumulator) check(probs, targets dense.Matrix, batchLoss float64) error {
	if err := probs.Validate(); err != nil {
		return fmt.Errorf("probabilities: %w", err)
	}
	if err := targets.Validate(); err != nil {
		return fmt.Errorf("targets: %w", err)
	}
	if probs.Cols != a.c {
		return fmt.Errorf("probabilities have %d columns for %d classes: %w", probs.Cols, a.c, dense.ErrShape)
	}
	if targets.Rows != probs.Rows || targets.Cols != probs.Cols {
		return fmt.Errorf("targets are %d×%d, probabilities %d×%d: %w",
			targets.Rows, targets.Cols, probs.Rows, probs.Cols, dense.ErrShape)
	}
	if math.IsNaN(batchLoss) || math.IsInf(batchLoss, 0) {
		return fmt.Errorf("batch loss %v: %w", batchLoss, ErrValue)
	}
	for i := range probs.Rows {
		labels := 0
		for j, v := range probs.Row(i) {
			if !(v >= 0 && v <= 1) {
				return fmt.Errorf("row %d (batch row %d), class %d: probability %v outside [0, 1] (a logit?): %w",
					a.rows+i, i, j, v, ErrValue)
			}
		}
		for j, v := range targets.Row(i) {
			switch v {
			case 1:
				labels++
			case 0:
			default:
				return fmt.Errorf("row %d (batch row %d), class %d: target %v is neither 0 nor 1: %w",
					a.rows+i, i, j, v, ErrValue)
			}
		}
		if !a.opts.MultiLabel && labels != 1 {
			return fmt.Errorf("row %d (batch row %d): %d target labels in a single-label model: %w",
				a.rows+i, i, labels, ErrValue)
		}
	}
	return nil
}

// BatchLoss is a batch's mean loss as Keras computes it for probabilities
// (not logits): BinaryCrossentropy averages every output's
// −(y·log p + (1−y)·log(1−p)); CategoricalCrossentropy and
// SparseCategoricalCrossentropy normalise each row to sum to 1 and sum
// −y·log p over it. Probabilities are clipped to [1e-7, 1 − 1e-7] as
// Keras clips them. It scores models that carry no loss of their own.
func BatchLoss(loss Loss, probs, targets dense.Matrix) (float64, error) {
	if probs.Rows != targets.Rows || probs.Cols != targets.Cols || len(probs.Data) != probs.Rows*probs.Cols || len(targets.Data) != len(probs.Data) {
		return 0, fmt.Errorf("probabilities %d×%d, targets %d×%d: %w", probs.Rows, probs.Cols, targets.Rows, targets.Cols, dense.ErrShape)
	}
	if probs.Rows == 0 {
		return 0, nil
	}
	var sum float64
	for i := range probs.Rows {
		p, y := probs.Row(i), targets.Row(i)
		switch loss {
		case BinaryCrossentropy:
			var row float64
			for j := range p {
				q := clip(float64(p[j]))
				row -= float64(y[j])*math.Log(q) + (1-float64(y[j]))*math.Log(1-q)
			}
			sum += row / float64(len(p))
		case CategoricalCrossentropy, SparseCategoricalCrossentropy:
			var total float64
			for _, v := range p {
				total += float64(v)
			}
			for j := range p {
				if y[j] != 0 {
					sum -= float64(y[j]) * math.Log(clip(float64(p[j])/total))
				}
			}
		default:
			return 0, fmt.Errorf("loss %q: want %s, %s or %s", loss, BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy)
		}
	}
	return sum / float64(probs.Rows), nil
}
