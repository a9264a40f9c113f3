package evaluation

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// FindingKind names what a Finding is about; its value is the JSON "kind".
type FindingKind string

// Kinds of Finding.
const (
	// KindBinaryAccuracyTrap: the binary accuracy is close to what a model
	// predicting no class scores, or far above the accuracy that fits the task.
	KindBinaryAccuracyTrap FindingKind = "binary_accuracy_trap"
	// KindImbalance: the accuracy is about the majority baseline, or the
	// classes differ in size by more than ImbalanceRatioLimit.
	KindImbalance FindingKind = "imbalance"
	// KindOverfitting: the training data scores much better than the
	// evaluation data.
	KindOverfitting FindingKind = "overfitting"
	// KindPlateau: the validation loss stopped moving.
	KindPlateau FindingKind = "plateau"
	// KindNoBetterThanPrior: the loss is not below the prior-loss baseline
	// and the accuracy that fits the task is not above its baseline either:
	// the model learned nothing the class counts do not tell.
	KindNoBetterThanPrior FindingKind = "no_better_than_prior"
	// KindConfidentlyWrong: the loss is not below the prior-loss baseline
	// although the accuracy is well above its baseline: the model ranks
	// classes usefully but is confidently wrong on some rows.
	KindConfidentlyWrong FindingKind = "confidently_wrong"
	// KindPredictionCollapse: one or a few classes receive far more
	// predictions than their share of the rows.
	KindPredictionCollapse FindingKind = "prediction_collapse"
	// KindNeverPredicted: classes that occur in the data are never predicted.
	KindNeverPredicted FindingKind = "classes_never_predicted"
	// KindWorseThanStart: the model scores worse than the model training
	// started from, on the same rows.
	KindWorseThanStart FindingKind = "worse_than_start"
	// KindClassMixShift: the evaluation rows' class mix differs from the
	// training rows'.
	KindClassMixShift FindingKind = "class_mix_shift"
	// KindOK: none of the checks above fired.
	KindOK FindingKind = "ok"
	// KindNoData: the report has no rows, so nothing can be judged.
	KindNoData FindingKind = "no_data"
	// KindKerasAccuracyNote: the note on what Keras' "accuracy" means, given
	// only when the report shows binary accuracy next to a different
	// accuracy a Keras user may have seen under that name.
	KindKerasAccuracyNote FindingKind = "keras_accuracy_note"
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
	// CollapseFactor and CollapseExcess: a class collapses predictions onto
	// itself when its share of the predictions is at least CollapseFactor
	// times its share of the true labels and exceeds it by CollapseExcess.
	CollapseFactor = 2
	CollapseExcess = 0.1
	// WorseLossChange is the relative rise of the loss over the starting
	// model's above which training made the model worse (as does a fall of
	// the fitting accuracy by more than BaselineMargin).
	WorseLossChange = 0.02
	// ClassMixDistance is the total variation distance between the training
	// and evaluation class distributions above which they differ.
	ClassMixDistance = 0.2
)

// Inputs is what Diagnose knows besides the evaluation.
type Inputs struct {
	// Train is the same model's Report on its training rows (nil: unknown).
	Train *Report
	// Start is the Report, on the same rows as the evaluation, of the model
	// training started from (nil: none).
	Start *Report
	// History is the training history, oldest epoch first.
	History []HistoryEntry
}

// KerasAccuracyNote is the text of the KindKerasAccuracyNote finding.
const KerasAccuracyNote = `Which function Keras' "accuracy" metric means depends on the version: ` +
	`up to Keras 2.3 (and tf.keras before TF 2.2) it followed the loss, so binary cross-entropy got binary accuracy; ` +
	`since TF 2.2 and in Keras 3 it follows the output shape, so a model with more than one output gets categorical (top-1) accuracy. ` +
	`The same training code therefore prints different numbers on different versions.`

// HistoryEntry is one epoch of a training history, as a trainer logged it.
type HistoryEntry struct {
	TrainLoss float64 // mean training loss of the epoch
	ValLoss   float64 // validation loss after the epoch
	ValMetric float64 // the validation metric the trainer printed (e.g. Keras' "accuracy")
}

// Finding is one sentence or two of diagnosis; Text quotes the numbers it
// rests on.
type Finding struct {
	Kind FindingKind `json:"kind"`
	Text string      `json:"text"`
}

// Diagnose explains eval in plain language. Without in.Train, the last
// epoch of in.History stands in for the overfitting check. The findings come
// in the order of the Kind constants; KindKerasAccuracyNote, when given, is
// last.
//
// No finding states a cause another number of the same report refutes: the
// checks share one set of facts (facts), each claim is guarded by the facts
// it rests on, and TestFindingsAgree checks the rules below on every
// scenario and on random reports:
//   - "learned nothing" (KindNoBetterThanPrior) needs the fitting accuracy
//     (and micro F1, for multi-label data) at its baseline; a loss above the
//     prior with an accuracy well above the baseline is KindConfidentlyWrong;
//   - KindOK stands alone;
//   - the Keras note comes only with binary accuracy that differs from the
//     fitting accuracy.
func Diagnose(eval Report, in Inputs) []Finding {
	if eval.Rows == 0 {
		return []Finding{{Kind: KindNoData, Text: "No rows were evaluated, so there is nothing to judge."}}
	}
	fx := newFacts(eval, in)
	var out []Finding
	for _, check := range []func(facts) (Finding, bool){
		binaryTrap, imbalance, overfitting, plateau, noBetterThanPrior, confidentlyWrong,
		predictionCollapse, neverPredicted, worseThanStart, classMixShift,
	} {
		if f, ok := check(fx); ok {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		out = append(out, fine(eval))
	}
	if fx.kerasNote(out) {
		out = append(out, Finding{Kind: KindKerasAccuracyNote, Text: KerasAccuracyNote})
	}
	return out
}

// facts are the comparisons every check reads, computed once.
type facts struct {
	r       Report
	in      Inputs
	exact   float64 // the accuracy that fits the task
	name    string  // its name
	base    float64 // its learned-nothing baseline
	what    string  // what scores the baseline
	atBase  bool    // exact (and micro F1) no better than the baselines
	lossBad bool    // loss not below the prior loss
}

func newFacts(r Report, in Inputs) facts {
	fx := facts{r: r, in: in, lossBad: !(r.Loss < r.Baselines.PriorLoss)}
	fx.exact, fx.name = r.ExactAccuracy()
	fx.base, fx.what = r.ExactBaseline()
	fx.atBase = fx.exact <= fx.base+BaselineMargin
	if r.MultiLabel && r.MicroF1 != nil {
		// Predicting no label scores micro F1 0; a micro F1 well above that
		// is learning even when few rows get every label right.
		fx.atBase = fx.atBase && *r.MicroF1 <= BaselineMargin
	}
	return fx
}

// kerasNote reports whether the Keras note belongs with the findings: when
// the binary-accuracy trap fired, or binary accuracy differs from the
// fitting accuracy by more than BaselineMargin (a Keras user may have seen
// either as "accuracy").
func (fx facts) kerasNote(out []Finding) bool {
	for _, f := range out {
		if f.Kind == KindBinaryAccuracyTrap {
			return true
		}
	}
	return math.Abs(fx.r.BinaryAccuracy-fx.exact) > BaselineMargin
}

func binaryTrap(fx facts) (Finding, bool) {
	r, history := fx.r, fx.in.History
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

func imbalance(fx facts) (Finding, bool) {
	r := fx.r
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

func overfitting(fx facts) (Finding, bool) {
	r, train, history := fx.r, fx.in.Train, fx.in.History
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

func plateau(fx facts) (Finding, bool) {
	history := fx.in.History
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

func noBetterThanPrior(fx facts) (Finding, bool) {
	r := fx.r
	if !fx.lossBad || !fx.atBase {
		return Finding{}, false
	}
	text := fmt.Sprintf("The loss %s is not below %s, the %s of predicting each class's frequency in this data for every row, and %s %s is no better than %s, the score of %s",
		f3(r.Loss), f3(r.Baselines.PriorLoss), r.LossName, fx.name, f3(fx.exact), f3(fx.base), fx.what)
	if r.MultiLabel && r.MicroF1 != nil {
		text += fmt.Sprintf(" (micro F1 %s)", f3(*r.MicroF1))
	}
	return Finding{Kind: KindNoBetterThanPrior, Text: text + ": the model has learned nothing the label counts do not already tell."}, true
}

func confidentlyWrong(fx facts) (Finding, bool) {
	r := fx.r
	if !fx.lossBad || fx.atBase {
		return Finding{}, false
	}
	text := fmt.Sprintf("The loss %s is not below %s, the %s of predicting each class's frequency for every row, although %s %s is well above %s, the score of %s. "+
		"So the model has learned, but it is confidently wrong on some rows, and cross-entropy punishes a confident miss far more than it rewards a hit: its probabilities are poorly calibrated. "+
		"Judge it by accuracy and F1; early stopping on the validation loss or regularization usually fixes the loss",
		f3(r.Loss), f3(r.Baselines.PriorLoss), r.LossName, fx.name, f3(fx.exact), f3(fx.base), fx.what)
	if t := fx.in.Train; t != nil && t.Rows > 0 && t.Loss < r.Loss {
		text += fmt.Sprintf(" (the training loss is %s, typical of overfitting)", f3(t.Loss))
	}
	return Finding{Kind: KindConfidentlyWrong, Text: text + "."}, true
}

// predictionCollapse finds classes that receive far more predictions than
// their share of the true labels.
func predictionCollapse(fx facts) (Finding, bool) {
	r := fx.r
	pred, sup := r.PredictedCounts, r.Baselines.ClassCounts
	if len(pred) != len(r.Classes) || len(sup) != len(r.Classes) {
		return Finding{}, false
	}
	n := float64(r.Rows)
	var parts []string
	for j := range pred {
		ps, ts := float64(pred[j])/n, float64(sup[j])/n
		if ps < CollapseFactor*ts || ps-ts < CollapseExcess {
			continue
		}
		part := fmt.Sprintf("%s receives %s%% of the predictions (%d of %d rows) but holds %s%% of the labels (%d)",
			quote(r.Classes[j]), pct(ps), pred[j], r.Rows, pct(ts), sup[j])
		if !r.MultiLabel && len(r.Confusion) == len(r.Classes) {
			// True classes whose rows mostly go to this one.
			var drawn []string
			for t, row := range r.Confusion {
				if t != j && sup[t] > 0 && 2*row[j] > sup[t] {
					drawn = append(drawn, r.Classes[t])
				}
			}
			if len(drawn) > 0 {
				part += fmt.Sprintf("; most rows of %d other classes go to it (%s)", len(drawn), listNames(drawn, 6))
			}
		}
		parts = append(parts, part)
	}
	if len(parts) == 0 {
		return Finding{}, false
	}
	return Finding{Kind: KindPredictionCollapse, Text: "The predictions collapse onto a few classes: " + strings.Join(parts, "; ") +
		". The accuracy on those classes is inflated and the classes they absorb are lost; class weights (--class-weight auto) or more epochs with a lower learning rate usually spread them out."}, true
}

// neverPredicted lists the classes that have rows but are never predicted.
func neverPredicted(fx facts) (Finding, bool) {
	r := fx.r
	pred, sup := r.PredictedCounts, r.Baselines.ClassCounts
	if len(pred) != len(r.Classes) || len(sup) != len(r.Classes) {
		return Finding{}, false
	}
	var names []string
	rows := 0
	for j := range pred {
		if pred[j] == 0 && sup[j] > 0 {
			names = append(names, fmt.Sprintf("%s (%d)", r.Classes[j], sup[j]))
			rows += sup[j]
		}
	}
	if len(names) == 0 {
		return Finding{}, false
	}
	unit := "rows"
	if r.MultiLabel {
		unit = "labels"
	}
	verb, them, its := "are", "them", "their recall is"
	if len(names) == 1 {
		verb, them, its = "is", "it", "its recall is"
	}
	return Finding{Kind: KindNeverPredicted, Text: fmt.Sprintf(
		"%d of %d classes %s never predicted although the data has %s of %s: %s, %s%% of the %s; %s 0.",
		len(names), len(r.Classes), verb, unit, them, listNames(names, 8), pct(ratio(float64(rows), float64(totalLabels(r)))), unit, its)}, true
}

// worseThanStart compares the model with the one training started from.
func worseThanStart(fx facts) (Finding, bool) {
	s := fx.in.Start
	if s == nil || s.Rows != fx.r.Rows || s.MultiLabel != fx.r.MultiLabel {
		return Finding{}, false
	}
	startExact, _ := s.ExactAccuracy()
	lossWorse := fx.r.Loss > s.Loss*(1+WorseLossChange)
	accWorse := fx.exact < startExact-BaselineMargin
	if !lossWorse && !accWorse {
		return Finding{}, false
	}
	return Finding{Kind: KindWorseThanStart, Text: fmt.Sprintf(
		"Training made the model worse on these rows: %s went from %s (the model training started from) to %s, and the loss from %s to %s. "+
			"The training rows may differ from these, the learning rate may be too high for a model that was already trained, or the model already fitted what the data can teach.",
		fx.name, f3(startExact), f3(fx.exact), f3(s.Loss), f3(fx.r.Loss))}, true
}

// classMixShift compares the class distributions of the training and the
// evaluation rows.
func classMixShift(fx facts) (Finding, bool) {
	t := fx.in.Train
	if t == nil || t.Rows == 0 || len(t.Baselines.ClassCounts) != len(fx.r.Baselines.ClassCounts) {
		return Finding{}, false
	}
	ec, tc := fx.r.Baselines.ClassCounts, t.Baselines.ClassCounts
	eTotal, tTotal := float64(totalLabels(fx.r)), float64(totalLabels(*t))
	if eTotal == 0 || tTotal == 0 {
		return Finding{}, false
	}
	dist, worst := 0.0, 0
	for j := range ec {
		d := math.Abs(float64(ec[j])/eTotal - float64(tc[j])/tTotal)
		dist += d / 2
		if d > math.Abs(float64(ec[worst])/eTotal-float64(tc[worst])/tTotal) {
			worst = j
		}
	}
	if !(dist > ClassMixDistance) {
		return Finding{}, false
	}
	return Finding{Kind: KindClassMixShift, Text: fmt.Sprintf(
		"The evaluation rows have a different class mix from the training rows (total variation distance %s, over %s): %s is %s%% of the evaluation labels and %s%% of the training labels. "+
			"Accuracy on one does not carry over to the other, and the baselines differ between them.",
		f3(dist), f3(ClassMixDistance), quote(fx.r.Classes[worst]), pct(float64(ec[worst])/eTotal), pct(float64(tc[worst])/tTotal))}, true
}

// totalLabels is the number of labels in the report's rows (the rows, for
// single-label data).
func totalLabels(r Report) int {
	n := 0
	for _, k := range r.Baselines.ClassCounts {
		n += k
	}
	return n
}

// listNames joins up to limit names, then says how many more there are.
func listNames(names []string, limit int) string {
	if len(names) <= limit {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:limit], ", ") + fmt.Sprintf(" and %d more", len(names)-limit)
}

// pct formats a share as a percentage with one decimal.
func pct(v float64) string { return strconv.FormatFloat(100*v, 'f', 1, 64) }

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
