package learningcurve

import (
	"fmt"
	"math"
	"strconv"

	"github.com/kerasgo/kerasgo/evaluation"
	"github.com/kerasgo/kerasgo/fit"
)

// FromHistory returns the learning-curve panels of a training run: loss, the accuracy
// that fits the task and binary accuracy, from epoch 0 (start, the model as
// loaded, when it was evaluated) on, each with the score of a model that
// learned nothing as a horizontal line: the prior loss, the majority (or
// empty-set) accuracy, and the binary accuracy of predicting no class.
func FromHistory(start *evaluation.Report, h []fit.Epoch) []Panel {
	n := len(h) + 1
	series := func() []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = math.NaN()
		}
		return v
	}
	trainLoss, valLoss := series(), series()
	trainAcc, valAcc := series(), series()
	trainBin, valBin := series(), series()
	var ref *evaluation.Report // whose baselines are drawn: validation, else training
	if start != nil {
		valLoss[0], valBin[0] = start.Loss, start.BinaryAccuracy
		valAcc[0], _ = start.ExactAccuracy()
		ref = start
	}
	for _, e := range h {
		if e.Epoch < 1 || e.Epoch >= n {
			continue
		}
		trainLoss[e.Epoch], trainBin[e.Epoch] = e.TrainLoss, e.Train.BinaryAccuracy
		trainAcc[e.Epoch], _ = e.Train.ExactAccuracy()
		if e.Val != nil {
			valLoss[e.Epoch], valBin[e.Epoch] = e.Val.Loss, e.Val.BinaryAccuracy
			valAcc[e.Epoch], _ = e.Val.ExactAccuracy()
			ref = e.Val
		} else if ref == nil {
			ref = &e.Train
		}
	}
	accName, baseName := "top-1 accuracy", "always the majority class"
	if ref != nil && ref.MultiLabel {
		accName, baseName = "subset accuracy", "predicting no label"
	}
	var lossBase, accBase, binBase []Baseline
	if ref != nil {
		b, _ := ref.ExactBaseline()
		lossBase = []Baseline{{Name: "predicting class frequencies", Value: ref.Baselines.PriorLoss}}
		accBase = []Baseline{{Name: baseName, Value: b}}
		binBase = []Baseline{{Name: fmt.Sprintf("predicting no class (1 − %s/%d)", labelsPerRow(*ref), len(ref.Classes)), Value: ref.Baselines.AllZerosBinaryAccuracy}}
	}
	pair := func(train, val []float64) []Series {
		return []Series{{Name: "train", Values: train}, {Name: "validation", Values: val}}
	}
	return []Panel{
		{Title: "loss", YLabel: "loss", Series: pair(trainLoss, valLoss), Baselines: lossBase},
		{Title: accName, YLabel: accName, Series: pair(trainAcc, valAcc), Baselines: accBase},
		{Title: "binary accuracy (Keras ≤ 2.3's \"accuracy\")", YLabel: "binary accuracy", Series: pair(trainBin, valBin), Baselines: binBase},
	}
}

// labelsPerRow formats the mean labels per row of a report ("1" for
// single-label data).
func labelsPerRow(r evaluation.Report) string {
	if !r.MultiLabel || r.Rows == 0 {
		return "1"
	}
	total := 0
	for _, k := range r.Baselines.ClassCounts {
		total += k
	}
	return strconv.FormatFloat(float64(total)/float64(r.Rows), 'f', 2, 64)
}
