package evaluation_test

import (
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo/evaluation"
)

func findKind(fs []evaluation.Finding, kind evaluation.FindingKind) *evaluation.Finding {
	for i := range fs {
		if fs[i].Kind == kind {
			return &fs[i]
		}
	}
	return nil
}

func assertContains(tb testing.TB, text, want string) {
	tb.Helper()
	if !strings.Contains(text, want) {
		tb.Errorf("%q does not contain %q", text, want)
	}
}

// goodSingle is a single-label report on which no check fires.
func goodSingle() evaluation.Report {
	return evaluation.Report{
		Rows: 100, Classes: []string{"a", "b", "c", "d"}, LossName: evaluation.BinaryCrossentropy,
		Loss: 0.2, Threshold: 0.5, BinaryAccuracy: 0.95, MacroF1: 0.85, Top1Accuracy: ptr(0.9),
		Baselines: evaluation.Baselines{
			MajorityClass: "a", MajorityAccuracy: ptr(0.4), AllZerosBinaryAccuracy: 0.75,
			PriorLoss: 0.55, ClassCounts: []int{40, 30, 20, 10}, ImbalanceRatio: 4,
		},
	}
}

// goodMulti is a multi-label report on which no check fires.
func goodMulti() evaluation.Report {
	return evaluation.Report{
		Rows: 100, Classes: []string{"a", "b", "c", "d"}, MultiLabel: true, LossName: evaluation.BinaryCrossentropy,
		Loss: 0.2, Threshold: 0.5, BinaryAccuracy: 0.9, MacroF1: 0.7,
		SubsetAccuracy: ptr(0.6), HammingLoss: ptr(0.1), MicroF1: ptr(0.8),
		Baselines: evaluation.Baselines{
			MajorityClass: "a", EmptySetAccuracy: ptr(0.05), AllZerosBinaryAccuracy: 0.6,
			PriorLoss: 0.6, ClassCounts: []int{60, 50, 30, 20}, ImbalanceRatio: 3,
		},
	}
}

// epochs makes a history from validation losses; metric values are
// optional.
func epochs(valLoss []float64, valMetric ...float64) []evaluation.HistoryEntry {
	h := make([]evaluation.HistoryEntry, len(valLoss))
	for i, v := range valLoss {
		h[i] = evaluation.HistoryEntry{TrainLoss: v * 0.9, ValLoss: v}
		if i < len(valMetric) {
			h[i].ValMetric = valMetric[i]
		}
	}
	return h
}

var threeDecimals = regexp.MustCompile(`\d\.\d{3}`)

func TestDiagnose(t *testing.T) {
	for name, tc := range map[string]struct {
		eval    evaluation.Report
		change  func(r *evaluation.Report)
		train   func(r *evaluation.Report) // changes a copy of eval used as the training report
		history []evaluation.HistoryEntry
		kinds   []evaluation.FindingKind
		texts   map[evaluation.FindingKind][]string
	}{
		"ok": {
			eval:  goodSingle(),
			kinds: []evaluation.FindingKind{evaluation.KindOK},
			texts: map[evaluation.FindingKind][]string{evaluation.KindOK: {"Top-1 accuracy 0.900 is above 0.400", `always answering "a"`, "loss 0.200", "0.550", "0.950", "0.750"}},
		},
		"ok multi-label": {
			eval:  goodMulti(),
			kinds: []evaluation.FindingKind{evaluation.KindOK},
			texts: map[evaluation.FindingKind][]string{evaluation.KindOK: {"Subset accuracy 0.600 is above 0.050", "predicting no label", "0.900", "0.600"}},
		},
		"binary accuracy near all-zeros": {
			eval:   goodSingle(),
			change: func(r *evaluation.Report) { r.BinaryAccuracy, r.Top1Accuracy = 0.755, ptr(0.45) },
			kinds:  []evaluation.FindingKind{evaluation.KindBinaryAccuracyTrap},
			texts:  map[evaluation.FindingKind][]string{evaluation.KindBinaryAccuracyTrap: {"Binary accuracy is 0.755", "scores 0.750", "(1 − 1/4)", "4 outputs", "which here is 0.450", "TF 2.2"}},
		},
		"binary accuracy far above top-1": {
			eval:   goodSingle(),
			change: func(r *evaluation.Report) { r.BinaryAccuracy, r.Top1Accuracy = 0.97, ptr(0.8) },
			kinds:  []evaluation.FindingKind{evaluation.KindBinaryAccuracyTrap},
			texts:  map[evaluation.FindingKind][]string{evaluation.KindBinaryAccuracyTrap: {"0.970", "0.750", "0.800"}},
		},
		"history metric at all-zeros": {
			eval:    goodSingle(),
			history: epochs([]float64{0.5, 0.4, 0.3}, 0.74, 0.75, 0.76),
			kinds:   []evaluation.FindingKind{evaluation.KindBinaryAccuracyTrap},
			texts:   map[evaluation.FindingKind][]string{evaluation.KindBinaryAccuracyTrap: {"ended at 0.760", "within 0.020"}},
		},
		"multi-label near all-zeros": {
			eval: goodMulti(),
			change: func(r *evaluation.Report) {
				r.BinaryAccuracy, r.SubsetAccuracy, r.MicroF1 = 0.61, ptr(0.06), ptr(0.1)
				r.Baselines.AllZerosBinaryAccuracy = 0.6
			},
			kinds: []evaluation.FindingKind{evaluation.KindBinaryAccuracyTrap, evaluation.KindImbalance},
			texts: map[evaluation.FindingKind][]string{
				evaluation.KindBinaryAccuracyTrap: {"0.610", "scores 0.600", "(1 − 1.600/4)", "subset accuracy 0.060", "micro F1 0.100"},
				evaluation.KindImbalance:          {"Subset accuracy is 0.060, within 0.020 of 0.050", "predicting no label", "hardly better than"},
			},
		},
		"close to majority": {
			eval:   goodSingle(),
			change: func(r *evaluation.Report) { r.Top1Accuracy = ptr(0.41); r.BinaryAccuracy = 0.5 },
			kinds:  []evaluation.FindingKind{evaluation.KindImbalance},
			texts:  map[evaluation.FindingKind][]string{evaluation.KindImbalance: {"Top-1 accuracy is 0.410, within 0.020 of 0.400", `always answering "a"`, "hardly better than"}},
		},
		"below majority": {
			eval:   goodSingle(),
			change: func(r *evaluation.Report) { r.Top1Accuracy = ptr(0.3); r.BinaryAccuracy = 0.35 },
			kinds:  []evaluation.FindingKind{evaluation.KindImbalance},
			texts:  map[evaluation.FindingKind][]string{evaluation.KindImbalance: {"0.300, below 0.400", "worse than"}},
		},
		"imbalance ratio": {
			eval: goodSingle(),
			change: func(r *evaluation.Report) {
				r.Baselines.ClassCounts, r.Baselines.ImbalanceRatio = []int{400, 30, 0, 10}, 40
			},
			kinds: []evaluation.FindingKind{evaluation.KindImbalance},
			texts: map[evaluation.FindingKind][]string{evaluation.KindImbalance: {"largest class has 400 rows and the smallest 10 (ratio 40.000, over 10)", "macro F1", "0.850"}},
		},
		"ratio of exactly 10": {
			eval:   goodSingle(),
			change: func(r *evaluation.Report) { r.Baselines.ImbalanceRatio = 10 },
			kinds:  []evaluation.FindingKind{evaluation.KindOK},
		},
		"overfitting accuracy": {
			eval:   goodSingle(),
			change: func(r *evaluation.Report) { r.Top1Accuracy = ptr(0.85) },
			train:  func(r *evaluation.Report) { r.Top1Accuracy, r.Loss = ptr(0.99), 0.19 },
			kinds:  []evaluation.FindingKind{evaluation.KindOverfitting},
			texts:  map[evaluation.FindingKind][]string{evaluation.KindOverfitting: {"0.990 on the training rows and 0.850 on the evaluation rows (0.140 apart, over 0.100)"}},
		},
		"overfitting loss": {
			eval:  goodSingle(),
			train: func(r *evaluation.Report) { r.Loss = 0.1 },
			kinds: []evaluation.FindingKind{evaluation.KindOverfitting},
			texts: map[evaluation.FindingKind][]string{evaluation.KindOverfitting: {"training loss 0.100 is below 0.700 × the evaluation loss 0.200 (= 0.140)"}},
		},
		"overfitting small gap": {
			eval:  goodSingle(),
			train: func(r *evaluation.Report) { r.Top1Accuracy, r.Loss = ptr(0.99), 0.15 },
			kinds: []evaluation.FindingKind{evaluation.KindOK},
		},
		"overfitting from history": {
			eval:    goodSingle(),
			history: []evaluation.HistoryEntry{{TrainLoss: 0.4, ValLoss: 0.5}, {TrainLoss: 0.2, ValLoss: 0.4}, {TrainLoss: 0.05, ValLoss: 0.3}},
			kinds:   []evaluation.FindingKind{evaluation.KindOverfitting},
			texts:   map[evaluation.FindingKind][]string{evaluation.KindOverfitting: {"last epoch the training loss 0.050 is below 0.700 × the validation loss 0.300 (= 0.210)"}},
		},
		"plateau": {
			eval:    goodSingle(),
			history: epochs([]float64{0.5, 0.3, 0.201, 0.200, 0.2002}, 0.9, 0.92, 0.95, 0.96, 0.96),
			kinds:   []evaluation.FindingKind{evaluation.KindPlateau},
			texts:   map[evaluation.FindingKind][]string{evaluation.KindPlateau: {"last 3 epochs is 0.201, 0.200, 0.200", "moved 0.498% (under 1%)", "metric read 0.950, 0.960, 0.960"}},
		},
		"still improving": {
			eval:    goodSingle(),
			history: epochs([]float64{0.5, 0.4, 0.3}),
			kinds:   []evaluation.FindingKind{evaluation.KindOK},
		},
		"too short for a plateau": {
			eval:    goodSingle(),
			history: epochs([]float64{0.2, 0.2}),
			kinds:   []evaluation.FindingKind{evaluation.KindOK},
		},
		"no validation in history": {
			eval: goodSingle(),
			history: []evaluation.HistoryEntry{
				{TrainLoss: 0.3, ValLoss: math.NaN(), ValMetric: math.NaN()},
				{TrainLoss: 0.3, ValLoss: math.NaN(), ValMetric: math.NaN()},
				{TrainLoss: 0.3, ValLoss: math.NaN(), ValMetric: math.NaN()},
			},
			kinds: []evaluation.FindingKind{evaluation.KindOK},
		},
		"no better than prior": {
			eval:   goodSingle(),
			change: func(r *evaluation.Report) { r.Loss, r.Top1Accuracy, r.BinaryAccuracy = 0.6, ptr(0.41), 0.5 },
			kinds:  []evaluation.FindingKind{evaluation.KindImbalance, evaluation.KindNoBetterThanPrior},
			texts:  map[evaluation.FindingKind][]string{evaluation.KindNoBetterThanPrior: {"loss 0.600 is not below 0.550", "BinaryCrossentropy", "top-1 accuracy 0.410 is no better than 0.400", "learned nothing"}},
		},
		// The case that once printed "learned nothing" beside a top-1 far
		// above the majority baseline.
		"loss above prior, accuracy well above baseline": {
			eval:   goodSingle(),
			change: func(r *evaluation.Report) { r.Loss = 0.6 },
			train:  func(r *evaluation.Report) { r.Loss, r.Top1Accuracy = 0.05, ptr(0.99) },
			kinds:  []evaluation.FindingKind{evaluation.KindOverfitting, evaluation.KindConfidentlyWrong},
			texts: map[evaluation.FindingKind][]string{evaluation.KindConfidentlyWrong: {"loss 0.600 is not below 0.550", "top-1 accuracy 0.900 is well above 0.400",
				"confidently wrong", "training loss is 0.050"}},
		},
		"multi-label: loss above prior, micro F1 above baseline": {
			eval:   goodMulti(),
			change: func(r *evaluation.Report) { r.Loss, r.SubsetAccuracy = 0.7, ptr(0.06) },
			kinds:  []evaluation.FindingKind{evaluation.KindImbalance, evaluation.KindConfidentlyWrong},
		},
		// The product question: 20 classes, Keras printed .95 then .96 and stopped.
		"question": {
			eval: goodSingle(),
			change: func(r *evaluation.Report) {
				r.Classes = make([]string, 20)
				r.BinaryAccuracy, r.Top1Accuracy = 0.951, ptr(0.3)
				r.Baselines.AllZerosBinaryAccuracy = 0.95
			},
			history: epochs([]float64{0.199, 0.1985, 0.1984}, 0.95, 0.96, 0.96),
			kinds:   []evaluation.FindingKind{evaluation.KindBinaryAccuracyTrap, evaluation.KindImbalance, evaluation.KindPlateau},
			texts: map[evaluation.FindingKind][]string{
				evaluation.KindBinaryAccuracyTrap: {"Binary accuracy is 0.951", "scores 0.950 on this data (1 − 1/20)", "which here is 0.300"},
				evaluation.KindPlateau:            {"0.199, 0.199, 0.198", "0.950, 0.960, 0.960"},
			},
		},
		"no rows": {
			eval:  evaluation.Report{Classes: []string{"a", "b"}},
			kinds: []evaluation.FindingKind{evaluation.KindNoData},
		},
	} {
		t.Run(name, func(t *testing.T) {
			eval := tc.eval
			if tc.change != nil {
				tc.change(&eval)
			}
			var train *evaluation.Report
			if tc.train != nil {
				tr := eval
				tc.train(&tr)
				train = &tr
			}
			got := evaluation.Diagnose(eval, evaluation.Inputs{Train: train, History: tc.history})
			kinds := make([]evaluation.FindingKind, len(got))
			for i, f := range got {
				kinds[i] = f.Kind
			}
			// The Keras note has rules of its own (TestKerasAccuracyNote).
			kinds = slices.DeleteFunc(kinds, func(k evaluation.FindingKind) bool { return k == evaluation.KindKerasAccuracyNote })
			if want := tc.kinds; !slices.Equal(kinds, want) {
				t.Fatalf("kinds %v, want %v\n%v", kinds, want, got)
			}
			for _, f := range got {
				if f.Kind != evaluation.KindKerasAccuracyNote && f.Kind != evaluation.KindNoData && !threeDecimals.MatchString(f.Text) {
					t.Errorf("%s quotes no number: %q", f.Kind, f.Text)
				}
			}
			for kind, subs := range tc.texts {
				f := findKind(got, kind)
				for _, s := range subs {
					assertContains(t, f.Text, s)
				}
			}
		})
	}
}

func TestKerasAccuracyNote(t *testing.T) {
	tests := map[string]struct {
		change   func(r *evaluation.Report)
		wantNote bool
	}{
		// Binary accuracy 0.950 beside top-1 0.900: either may have been
		// printed as "accuracy".
		"binary and top-1 accuracy differ": {wantNote: true},
		"the binary-accuracy trap":         {change: func(r *evaluation.Report) { r.BinaryAccuracy, r.Top1Accuracy = 0.755, ptr(0.45) }, wantNote: true},
		// A solved task: both accuracies read alike, so the note is noise.
		"a solved task": {change: func(r *evaluation.Report) { r.BinaryAccuracy, r.Top1Accuracy = 0.995, ptr(0.99) }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := goodSingle()
			if tc.change != nil {
				tc.change(&r)
			}
			f := findKind(evaluation.Diagnose(r, evaluation.Inputs{}), evaluation.KindKerasAccuracyNote)
			if (f != nil) != tc.wantNote {
				t.Fatalf("note given: %v, want %v", f != nil, tc.wantNote)
			}
			if f == nil {
				return
			}
			for _, s := range []string{"Keras 2.3", "TF 2.2", "Keras 3", "binary accuracy", "categorical"} {
				assertContains(t, f.Text, s)
			}
		})
	}
}
