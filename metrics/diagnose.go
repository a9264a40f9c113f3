package metrics

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Kinds of Finding.
const (
	// KindBinaryAccuracyTrap: the binary accuracy is close to what a model
	// predicting no class scores, or far above the accuracy that fits the task.
	KindBinaryAccuracyTrap = "binary_accuracy_trap"
	// KindImbalance: the accuracy is about the majority baseline, or the
	// classes differ in size by more than ImbalanceRatioLimit.
	KindImbalance = "imbalance"
	// KindOverfitting: the training data scores much better than the
	// evaluation data.
	KindOverfitting = "overfitting"
	// KindPlateau: the validation loss stopped moving.
	KindPlateau = "plateau"
	// KindNoBetterThanPrior: the loss is not below the prior-loss baseline.
	KindNoBetterThanPrior = "no_better_than_prior"
	// KindOK: none of the checks above fired.
	KindOK = "ok"
	// KindNoData: the report has no rows, so nothing can be judged.
	KindNoData = "no_data"
	// KindKerasAccuracyNote: the fixed note on what Keras' "accuracy" means.
	KindKerasAccuracyNote = "keras_accuracy_note"
)

// Limits the diagnosis uses.
const (
	// BaselineMargin is how close (absolute) a metric may come to its
	// baseline before it counts as no better than the baseline.
	BaselineMargin = 0.02
	// BinaryGapLimit is how far binary accuracy may exceed the task's
	// accuracy before it counts as misleading.
	BinaryGapLimit = 0.1
	// ImbalanceRatioLimit is the largest-over-smallest class count above
	// which the classes count as imbalanced.
	ImbalanceRatioLimit = 10
	// OverfitGap is how much higher the training accuracy may be than the
	// evaluation accuracy.
	OverfitGap = 0.1
	// OverfitLossRatio: a training loss below this fraction of the
	// evaluation loss counts as overfitting.
	OverfitLossRatio = 0.7
	// PlateauEpochs is how many final epochs the plateau check looks at.
	PlateauEpochs = 3
	// PlateauChange is the relative change of the validation loss over the
	// last PlateauEpochs below which training counts as stalled.
	PlateauChange = 0.01
)

// KerasAccuracyNote is the text of the KindKerasAccuracyNote finding.
const KerasAccuracyNote = `Which function Keras' "accuracy" metric means depends on the version: ` +
	`up to Keras 2.3 (and tf.keras before TF 2.2) it followed the loss, so binary cross-entropy got binary accuracy; ` +
	`since TF 2.2 and in Keras 3 it follows the output shape, so a model with more than one output gets categorical (top-1) accuracy. ` +
	`The same training code therefore prints different numbers on different versions.`

// Epoch is one line of a training history.
type Epoch struct {
	TrainLoss float64 // mean training loss of the epoch
	ValLoss   float64 // validation loss after the epoch
	ValMetric float64 // the validation metric the trainer printed (e.g. Keras' "accuracy")
}

// Finding is one sentence or two of diagnosis; Text quotes the numbers it
// rests on.
type Finding struct {
	Kind string `json:"kind"`
	Text string `json:"text"`
}

// Diagnose explains eval in plain language. train, when not nil, is the
// same model's Report on its training rows; history, when not empty, is
// its training history, oldest epoch first. Without train, the last epoch
// of history stands in for the overfitting check. The findings come in the
// order of the Kind constants, then KindKerasAccuracyNote, always last.
func Diagnose(eval Report, train *Report, history []Epoch) []Finding {
	note := Finding{Kind: KindKerasAccuracyNote, Text: KerasAccuracyNote}
	if eval.Rows == 0 {
		return []Finding{{Kind: KindNoData, Text: "No rows were evaluated, so there is nothing to judge."}, note}
	}
	var out []Finding
	for _, check := range []func(Report, *Report, []Epoch) (Finding, bool){
		binaryTrap, imbalance, overfitting, plateau, noBetterThanPrior,
	} {
		if f, ok := check(eval, train, history); ok {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		out = append(out, fine(eval))
	}
	return append(out, note)
}

func binaryTrap(r Report, _ *Report, history []Epoch) (Finding, bool) {
	zeros := r.Baselines.AllZerosBinaryAccuracy
	exact, _ := r.ExactAccuracy()
	nearZeros := math.Abs(r.BinaryAccuracy-zeros) <= BaselineMargin
	gap := !r.MultiLabel && r.BinaryAccuracy-exact > BinaryGapLimit
	var last float64
	historyNearZeros := false
	if len(history) > 0 {
		last = history[len(history)-1].ValMetric
		historyNearZeros = math.Abs(last-zeros) <= BaselineMargin && math.Abs(last-exact) > BaselineMargin
	}
	if !nearZeros && !gap && !historyNearZeros {
		return Finding{}, false
	}
	c := len(r.Classes)
	var b strings.Builder
	fmt.Fprintf(&b, "Binary accuracy is %s, and a model that predicts no class at all scores %s on this data (1 − %s/%d), "+
		"because binary accuracy counts each of the %d outputs of a row separately and most of them are 0.",
		f3(r.BinaryAccuracy), f3(zeros), meanLabels(r), c, c)
	if r.MultiLabel {
		fmt.Fprintf(&b, ` Keras up to 2.3 printed it as "accuracy" for binary cross-entropy; since TF 2.2 and in Keras 3 "accuracy" on %d outputs means categorical (argmax) accuracy, which does not fit multi-label targets: read subset accuracy %s and micro F1 %s instead.`,
			c, f3(exact), f3(deref(r.MicroF1)))
	} else {
		fmt.Fprintf(&b, ` Keras up to 2.3 printed it as "accuracy" for sigmoid outputs trained with binary cross-entropy; since TF 2.2 and in Keras 3 the same code reports categorical (top-1) accuracy, which here is %s.`,
			f3(exact))
	}
	if historyNearZeros {
		fmt.Fprintf(&b, ` The metric in the training history ended at %s, within %s of that no-class score: if it was Keras' "accuracy" under binary cross-entropy, it was binary accuracy.`,
			f3(last), f3(BaselineMargin))
	}
	return Finding{Kind: KindBinaryAccuracyTrap, Text: b.String()}, true
}

func imbalance(r Report, _ *Report, _ []Epoch) (Finding, bool) {
	exact, name := r.ExactAccuracy()
	base, what := r.ExactBaseline()
	var parts []string
	if exact <= base+BaselineMargin {
		rel, verdict := "within "+f3(BaselineMargin)+" of", "hardly better than"
		if exact < base-BaselineMargin {
			rel, verdict = "below", "worse than"
		}
		parts = append(parts, fmt.Sprintf("%s is %s, %s %s, the score of %s: the model does %s ignoring its input.",
			upper(name), f3(exact), rel, f3(base), what, verdict))
	}
	if ratio := r.Baselines.ImbalanceRatio; ratio > ImbalanceRatioLimit {
		largest, smallest := countRange(r.Baselines.ClassCounts)
		parts = append(parts, fmt.Sprintf("The largest class has %d rows and the smallest %d (ratio %s, over %d), so accuracy mostly reflects the large classes; macro F1, which weighs every class alike, is %s.",
			largest, smallest, f3(ratio), ImbalanceRatioLimit, f3(r.MacroF1)))
	}
	if len(parts) == 0 {
		return Finding{}, false
	}
	return Finding{Kind: KindImbalance, Text: strings.Join(parts, " ")}, true
}

func overfitting(r Report, train *Report, history []Epoch) (Finding, bool) {
	var parts []string
	switch {
	case train != nil && train.Rows > 0:
		te, name := train.ExactAccuracy()
		ee, _ := r.ExactAccuracy()
		if train.MultiLabel == r.MultiLabel && te-ee > OverfitGap {
			parts = append(parts, fmt.Sprintf("%s is %s on the training rows and %s on the evaluation rows (%s apart, over %s): the model fits the data it was trained on much better than new data.",
				upper(name), f3(te), f3(ee), f3(te-ee), f3(OverfitGap)))
		}
		if train.Loss < OverfitLossRatio*r.Loss {
			parts = append(parts, fmt.Sprintf("The training loss %s is below %s × the evaluation loss %s (= %s).",
				f3(train.Loss), f3(OverfitLossRatio), f3(r.Loss), f3(OverfitLossRatio*r.Loss)))
		}
	case len(history) > 0:
		e := history[len(history)-1]
		if e.TrainLoss < OverfitLossRatio*e.ValLoss {
			parts = append(parts, fmt.Sprintf("In the last epoch the training loss %s is below %s × the validation loss %s (= %s): the model fits the data it was trained on much better than new data.",
				f3(e.TrainLoss), f3(OverfitLossRatio), f3(e.ValLoss), f3(OverfitLossRatio*e.ValLoss)))
		}
	}
	if len(parts) == 0 {
		return Finding{}, false
	}
	return Finding{Kind: KindOverfitting, Text: strings.Join(parts, " ")}, true
}

func plateau(_ Report, _ *Report, history []Epoch) (Finding, bool) {
	if len(history) < PlateauEpochs {
		return Finding{}, false
	}
	last := history[len(history)-PlateauEpochs:]
	lo, hi := last[0].ValLoss, last[0].ValLoss
	for _, e := range last[1:] {
		lo, hi = min(lo, e.ValLoss), max(hi, e.ValLoss)
	}
	change := ratio(hi-lo, math.Abs(last[0].ValLoss))
	if !(change < PlateauChange) { // false for NaN losses too
		return Finding{}, false
	}
	losses, metrics := make([]string, len(last)), make([]string, len(last))
	anyMetric := false
	for i, e := range last {
		losses[i], metrics[i] = f3(e.ValLoss), f3(e.ValMetric)
		anyMetric = anyMetric || e.ValMetric != 0
	}
	for _, e := range last {
		anyMetric = anyMetric && !math.IsNaN(e.ValMetric) && !math.IsInf(e.ValMetric, 0)
	}
	text := fmt.Sprintf("The validation loss over the last %d epochs is %s: it moved %s%% (under %s%%), so more epochs of the same training are unlikely to help.",
		PlateauEpochs, strings.Join(losses, ", "), f3(100*change), strconv.FormatFloat(100*PlateauChange, 'g', -1, 64))
	if anyMetric {
		text += fmt.Sprintf(" The validation metric read %s.", strings.Join(metrics, ", "))
	}
	return Finding{Kind: KindPlateau, Text: text}, true
}

func noBetterThanPrior(r Report, _ *Report, _ []Epoch) (Finding, bool) {
	if r.Loss < r.Baselines.PriorLoss {
		return Finding{}, false
	}
	return Finding{Kind: KindNoBetterThanPrior, Text: fmt.Sprintf(
		"The loss %s is not below %s, the %s of predicting each class's frequency in this data for every row: the model has learned nothing the label counts do not already tell.",
		f3(r.Loss), f3(r.Baselines.PriorLoss), r.LossName)}, true
}

func fine(r Report) Finding {
	exact, name := r.ExactAccuracy()
	base, what := r.ExactBaseline()
	return Finding{Kind: KindOK, Text: fmt.Sprintf(
		"%s %s is above %s, the score of %s; the loss %s is below the prior-loss baseline %s, and binary accuracy %s is clear of the %s a model predicting no class scores: no warning sign.",
		upper(name), f3(exact), f3(base), what, f3(r.Loss), f3(r.Baselines.PriorLoss),
		f3(r.BinaryAccuracy), f3(r.Baselines.AllZerosBinaryAccuracy))}
}

// meanLabels formats the mean number of labels per row: "1" for
// single-label data.
func meanLabels(r Report) string {
	if !r.MultiLabel {
		return "1"
	}
	total := 0
	for _, k := range r.Baselines.ClassCounts {
		total += k
	}
	return f3(ratio(float64(total), float64(r.Rows)))
}

// countRange returns the largest count and the smallest non-zero one.
func countRange(counts []int) (largest, smallest int) {
	for _, k := range counts {
		largest = max(largest, k)
		if k > 0 && (smallest == 0 || k < smallest) {
			smallest = k
		}
	}
	return largest, smallest
}

// f3 formats a number with three decimals.
func f3(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }

func quote(s string) string { return `"` + s + `"` }

func upper(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
