package evaluation_test

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/evaluation"
)

// binaryEntropy is the binary cross-entropy of predicting q for a class
// whose positive rate is q, with Keras' clipping.
func binaryEntropy(q float64) float64 {
	p := min(max(q, 1e-7), 1-1e-7)
	return -(q*math.Log(p) + (1-q)*math.Log(1-p))
}

func matrix(tb testing.TB, rows ...[]float32) dense.Matrix {
	tb.Helper()
	m, err := dense.FromRows(rows)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func ptr(v float64) *float64 { return &v }

type batch struct {
	probs, targets [][]float32
	loss           float64
}

func report(tb testing.TB, opts evaluation.Options, batches ...batch) evaluation.Report {
	tb.Helper()
	acc, err := evaluation.NewAccumulator(opts)
	if err != nil {
		tb.Fatal(err)
	}
	for _, b := range batches {
		probs, targets := dense.New(0, len(opts.Classes)), dense.New(0, len(opts.Classes))
		if len(b.probs) > 0 {
			probs, targets = matrix(tb, b.probs...), matrix(tb, b.targets...)
		}
		if err := acc.Add(probs, targets, b.loss); err != nil {
			tb.Fatal(err)
		}
	}
	return acc.Report()
}

func TestReport(t *testing.T) {
	for name, tc := range map[string]struct {
		opts    evaluation.Options
		batches []batch
		want    evaluation.Report
	}{
		// Hand-computed. Class d is never true nor predicted: its 0/0 scores
		// are 0 and it stays out of the macro F1. Row 1 ties a and b (argmax
		// takes a, the first); row 3 has p = 0.5 exactly, which is not above
		// the threshold.
		"single-label": {
			opts: evaluation.Options{Classes: []string{"a", "b", "c", "d"}, Loss: evaluation.BinaryCrossentropy},
			batches: []batch{
				{probs: [][]float32{{0.6, 0.3, 0.1, 0}, {0.4, 0.4, 0.2, 0}}, targets: [][]float32{{1, 0, 0, 0}, {0, 1, 0, 0}}, loss: 1},
				{probs: [][]float32{{0.1, 0.2, 0.7, 0}}, targets: [][]float32{{0, 0, 1, 0}}, loss: 0.5},
				{probs: [][]float32{{0.5, 0.2, 0.3, 0}}, targets: [][]float32{{0, 0, 1, 0}}, loss: 0.5},
			},
			want: evaluation.Report{
				Rows: 4, Classes: []string{"a", "b", "c", "d"}, LossName: "BinaryCrossentropy",
				Loss: 0.75, Threshold: 0.5,
				BinaryAccuracy:  14.0 / 16, // rows: 4, 3, 4, 3 of 4 outputs right
				MacroF1:         (0.5 + 0 + 2.0/3) / 3,
				Top1Accuracy:    ptr(0.5),
				Confusion:       [][]int{{1, 0, 0, 0}, {1, 0, 0, 0}, {1, 0, 1, 0}, {0, 0, 0, 0}},
				PredictedCounts: []int{3, 0, 1, 0},
				MostConfused:    []evaluation.ConfusedPair{{True: "b", Predicted: "a", Count: 1}, {True: "c", Predicted: "a", Count: 1}},
				PerClass: []evaluation.ClassMetrics{
					{Name: "a", Precision: 1.0 / 3, Recall: 1, F1: 0.5, Support: 1},
					{Name: "b", Precision: 0, Recall: 0, F1: 0, Support: 1},
					{Name: "c", Precision: 1, Recall: 0.5, F1: 2.0 / 3, Support: 2},
					{Name: "d", Support: 0},
				},
				Baselines: evaluation.Baselines{
					MajorityClass: "c", MajorityAccuracy: ptr(0.5),
					AllZerosBinaryAccuracy: 12.0 / 16,
					PriorLoss:              (2*binaryEntropy(0.25) + binaryEntropy(0.5) + binaryEntropy(0)) / 4,
					ClassCounts:            []int{1, 1, 2, 0},
					ImbalanceRatio:         2,
				},
			},
		},
		"single-label categorical prior": {
			opts: evaluation.Options{Classes: []string{"a", "b"}, Loss: evaluation.CategoricalCrossentropy, Threshold: 0.3},
			batches: []batch{{
				probs:   [][]float32{{0.9, 0.1}, {0.8, 0.2}, {0.7, 0.3}, {0.6, 0.4}},
				targets: [][]float32{{1, 0}, {1, 0}, {1, 0}, {0, 1}},
				loss:    0.4,
			}},
			want: evaluation.Report{
				Rows: 4, Classes: []string{"a", "b"}, LossName: "CategoricalCrossentropy",
				Loss: 0.4, Threshold: 0.3,
				BinaryAccuracy:  7.0 / 8, // 0.3 is not above 0.3; the last row predicts both classes
				MacroF1:         (2 * 3.0 / 7) / 2,
				Top1Accuracy:    ptr(0.75),
				Confusion:       [][]int{{3, 0}, {1, 0}},
				PredictedCounts: []int{4, 0},
				MostConfused:    []evaluation.ConfusedPair{{True: "b", Predicted: "a", Count: 1}},
				PerClass: []evaluation.ClassMetrics{
					{Name: "a", Precision: 0.75, Recall: 1, F1: 6.0 / 7, Support: 3},
					{Name: "b", Support: 1},
				},
				Baselines: evaluation.Baselines{
					MajorityClass: "a", MajorityAccuracy: ptr(0.75),
					AllZerosBinaryAccuracy: 0.5,
					PriorLoss:              -(0.75*math.Log(0.75) + 0.25*math.Log(0.25)),
					ClassCounts:            []int{3, 1},
					ImbalanceRatio:         3,
				},
			},
		},
		// Row 0 predicts y wrongly, row 3 misses y, rows 1 and 2 are exact
		// (row 2 has no labels and predicts none).
		"multi-label": {
			opts: evaluation.Options{Classes: []string{"x", "y", "z"}, MultiLabel: true, Loss: evaluation.BinaryCrossentropy},
			batches: []batch{
				{probs: [][]float32{{0.9, 0.6, 0.1}, {0.2, 0.8, 0.7}, {0.1, 0.1, 0.1}}, targets: [][]float32{{1, 0, 0}, {0, 1, 1}, {0, 0, 0}}, loss: 0.2},
				{probs: [][]float32{{0.7, 0.2, 0.4}}, targets: [][]float32{{1, 1, 0}}, loss: 0.6},
			},
			want: evaluation.Report{
				Rows: 4, Classes: []string{"x", "y", "z"}, MultiLabel: true, LossName: "BinaryCrossentropy",
				Loss: 0.3, Threshold: 0.5,
				BinaryAccuracy:  10.0 / 12,
				MacroF1:         (1 + 0.5 + 1) / 3,
				SubsetAccuracy:  ptr(0.5),
				HammingLoss:     ptr(2.0 / 12),
				MicroF1:         ptr(0.8), // 2·4 / (5 true + 5 predicted)
				PredictedCounts: []int{2, 2, 1},
				PerClass: []evaluation.ClassMetrics{
					{Name: "x", Precision: 1, Recall: 1, F1: 1, Support: 2},
					{Name: "y", Precision: 0.5, Recall: 0.5, F1: 0.5, Support: 2},
					{Name: "z", Precision: 1, Recall: 1, F1: 1, Support: 1},
				},
				Baselines: evaluation.Baselines{
					MajorityClass: "x", EmptySetAccuracy: ptr(0.25),
					AllZerosBinaryAccuracy: 7.0 / 12,
					PriorLoss:              (2*binaryEntropy(0.5) + binaryEntropy(0.25)) / 3,
					ClassCounts:            []int{2, 2, 1},
					ImbalanceRatio:         2,
				},
			},
		},
		// One output, nothing predicted: precision 0/0 and F1 0/(1+0).
		"multi-label one class": {
			opts:    evaluation.Options{Classes: []string{"spam"}, MultiLabel: true, Loss: evaluation.BinaryCrossentropy},
			batches: []batch{{probs: [][]float32{{0.2}, {0.1}}, targets: [][]float32{{1}, {0}}, loss: 0.5}},
			want: evaluation.Report{
				Rows: 2, Classes: []string{"spam"}, MultiLabel: true, LossName: "BinaryCrossentropy",
				Loss: 0.5, Threshold: 0.5, BinaryAccuracy: 0.5, MacroF1: 0,
				SubsetAccuracy: ptr(0.5), HammingLoss: ptr(0.5), MicroF1: ptr(0),
				PredictedCounts: []int{0},
				PerClass:        []evaluation.ClassMetrics{{Name: "spam", Support: 1}},
				Baselines: evaluation.Baselines{
					MajorityClass: "spam", EmptySetAccuracy: ptr(0.5), AllZerosBinaryAccuracy: 0.5,
					PriorLoss: binaryEntropy(0.5), ClassCounts: []int{1}, ImbalanceRatio: 1,
				},
			},
		},
		"no rows": {
			opts: evaluation.Options{Classes: []string{"a", "b"}, Loss: evaluation.SparseCategoricalCrossentropy},
			batches: []batch{{
				probs: nil, targets: nil, loss: 3, // an empty batch changes nothing
			}},
			want: evaluation.Report{
				Classes: []string{"a", "b"}, LossName: "SparseCategoricalCrossentropy", Threshold: 0.5,
				Top1Accuracy: ptr(0), Confusion: [][]int{{0, 0}, {0, 0}}, MostConfused: []evaluation.ConfusedPair{},
				PredictedCounts: []int{0, 0},
				PerClass:        []evaluation.ClassMetrics{{Name: "a"}, {Name: "b"}},
				Baselines:       evaluation.Baselines{MajorityClass: "a", MajorityAccuracy: ptr(0), ClassCounts: []int{0, 0}},
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			got := report(t, tc.opts, tc.batches...)
			assertReport(t, got, tc.want)
			if _, err := json.Marshal(got); err != nil {
				t.Errorf("report does not encode as JSON: %v", err)
			}
		})
	}
}

// assertReport compares two reports, floats within 1e-12.
func assertReport(tb testing.TB, got, want evaluation.Report) {
	tb.Helper()
	var g, w any
	for _, x := range []struct {
		r   evaluation.Report
		out *any
	}{{got, &g}, {want, &w}} {
		b, err := json.Marshal(x.r)
		if err != nil {
			tb.Fatal(err)
		}
		if err := json.Unmarshal(b, x.out); err != nil {
			tb.Fatal(err)
		}
	}
	if !equalTree(g, w) {
		gb, _ := json.MarshalIndent(got, "", " ")
		wb, _ := json.MarshalIndent(want, "", " ")
		tb.Errorf("report:\n%s\nwant:\n%s", gb, wb)
	}
}

func equalTree(got, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k := range w {
			if !equalTree(g[k], w[k]) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !equalTree(g[i], w[i]) {
				return false
			}
		}
		return true
	case float64:
		g, ok := got.(float64)
		return ok && math.Abs(g-w) <= 1e-12
	default:
		return reflect.DeepEqual(got, want)
	}
}

// TestArgmaxTies checks that ties go to the first index, as numpy.argmax.
func TestArgmaxTies(t *testing.T) {
	for name, tc := range map[string]struct {
		probs []float32
		want  string
	}{
		"all equal":   {[]float32{0.25, 0.25, 0.25, 0.25}, "a"},
		"all zero":    {[]float32{0, 0, 0, 0}, "a"},
		"tie in back": {[]float32{0.1, 0.2, 0.35, 0.35}, "c"},
		"max last":    {[]float32{0.1, 0.2, 0.3, 0.4}, "d"},
	} {
		t.Run(name, func(t *testing.T) {
			classes := []string{"a", "b", "c", "d"}
			r := report(t, evaluation.Options{Classes: classes, Loss: evaluation.CategoricalCrossentropy},
				batch{probs: [][]float32{tc.probs}, targets: [][]float32{{0, 0, 0, 1}}})
			for j, n := range r.Confusion[3] {
				if n == 1 && classes[j] != tc.want || n == 0 && classes[j] == tc.want {
					t.Errorf("confusion row %v, want the prediction %s", r.Confusion[3], tc.want)
				}
			}
		})
	}
}

// TestAllZerosModel is the product question: a sigmoid model that predicts
// nothing on 20 classes scores binary accuracy 1 − 1/20 and is flagged.
func TestAllZerosModel(t *testing.T) {
	const classes, rows = 20, 200
	names := make([]string, classes)
	for j := range names {
		names[j] = string(rune('A' + j))
	}
	acc, err := evaluation.NewAccumulator(evaluation.Options{Classes: names, Loss: evaluation.BinaryCrossentropy})
	if err != nil {
		t.Fatal(err)
	}
	targets := dense.New(rows, classes)
	for i := range rows {
		targets.Row(i)[(i*7)%classes] = 1
	}
	probs := dense.New(rows, classes)
	loss := binaryEntropy(0) * (classes - 1) / classes // Keras' BCE of 0 against a one-hot row
	loss += -math.Log(1e-7) / classes
	for _, b := range [][2]int{{0, 64}, {64, 128}, {128, rows}} {
		if err := acc.Add(probs.Slice(b[0], b[1]), targets.Slice(b[0], b[1]), loss); err != nil {
			t.Fatal(err)
		}
	}
	r := acc.Report()
	if r.BinaryAccuracy != 0.95 {
		t.Errorf("binary accuracy %v, want exactly 0.95", r.BinaryAccuracy)
	}
	if r.Baselines.AllZerosBinaryAccuracy != 0.95 {
		t.Errorf("all-zeros baseline %v, want exactly 0.95", r.Baselines.AllZerosBinaryAccuracy)
	}
	if *r.Top1Accuracy != 0.05 { // argmax of a zero row is class 0: 10 of 200 rows
		t.Errorf("top-1 accuracy %v, want 0.05", *r.Top1Accuracy)
	}
	f := findKind(diagnose(r), evaluation.KindBinaryAccuracyTrap)
	if f == nil {
		t.Fatalf("no %s finding in %v", evaluation.KindBinaryAccuracyTrap, diagnose(r))
	}
	for _, s := range []string{"Binary accuracy is 0.950", "scores 0.950", "(1 − 1/20)", "which here is 0.050", "Keras up to 2.3"} {
		assertContains(t, f.Text, s)
	}
	if findKind(diagnose(r), evaluation.KindNoBetterThanPrior) == nil {
		t.Errorf("loss %.3f ≥ prior %.3f but no %s finding", r.Loss, r.Baselines.PriorLoss, evaluation.KindNoBetterThanPrior)
	}
}

func diagnose(r evaluation.Report) []evaluation.Finding {
	return evaluation.Diagnose(r, evaluation.Inputs{})
}

func TestNewAccumulatorErrors(t *testing.T) {
	for name, opts := range map[string]evaluation.Options{
		"no classes":               {Loss: evaluation.BinaryCrossentropy},
		"one single-label class":   {Classes: []string{"a"}, Loss: evaluation.BinaryCrossentropy},
		"threshold 1":              {Classes: []string{"a", "b"}, Threshold: 1, Loss: evaluation.BinaryCrossentropy},
		"negative threshold":       {Classes: []string{"a", "b"}, Threshold: -0.5, Loss: evaluation.BinaryCrossentropy},
		"NaN threshold":            {Classes: []string{"a", "b"}, Threshold: float32(math.NaN()), Loss: evaluation.BinaryCrossentropy},
		"no loss":                  {Classes: []string{"a", "b"}},
		"function name":            {Classes: []string{"a", "b"}, Loss: "binary_crossentropy"},
		"sparse labels multilabel": {Classes: []string{"a", "b"}, MultiLabel: true, Loss: evaluation.SparseCategoricalCrossentropy},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := evaluation.NewAccumulator(opts); !errors.Is(err, evaluation.ErrOptions) {
				t.Errorf("error %v, want ErrOptions", err)
			}
		})
	}
}

func TestNewAccumulatorCopiesOptions(t *testing.T) {
	classes := []string{"a", "b"}
	opts := evaluation.Options{Classes: classes, Loss: evaluation.BinaryCrossentropy}
	acc, err := evaluation.NewAccumulator(opts)
	if err != nil {
		t.Fatal(err)
	}
	classes[0] = "changed"
	if opts.Threshold != 0 {
		t.Errorf("caller's threshold became %v", opts.Threshold)
	}
	if r := acc.Report(); r.Classes[0] != "a" || r.Threshold != 0.5 {
		t.Errorf("report classes %v threshold %v", r.Classes, r.Threshold)
	}
}

func TestAddErrors(t *testing.T) {
	two := [][]float32{{0.2, 0.8}}
	for name, tc := range map[string]struct {
		multi          bool
		probs, targets dense.Matrix
		loss           float64
		want           error
	}{
		"wrong columns":        {probs: dense.New(1, 3), targets: dense.New(1, 3), want: dense.ErrShape},
		"target shape":         {probs: matrix(t, two...), targets: dense.New(2, 2), want: dense.ErrShape},
		"broken matrix":        {probs: dense.Matrix{Rows: 2, Cols: 2, Data: []float32{1}}, targets: dense.New(2, 2), want: dense.ErrShape},
		"NaN probability":      {probs: matrix(t, []float32{float32(math.NaN()), 0.5}), targets: matrix(t, []float32{1, 0}), want: evaluation.ErrValue},
		"probability above 1":  {probs: matrix(t, []float32{1.5, 0}), targets: matrix(t, []float32{1, 0}), want: evaluation.ErrValue},
		"negative probability": {probs: matrix(t, []float32{-2, 0}), targets: matrix(t, []float32{1, 0}), want: evaluation.ErrValue},
		"soft target":          {probs: matrix(t, two...), targets: matrix(t, []float32{0.9, 0.1}), want: evaluation.ErrValue},
		"two labels":           {probs: matrix(t, two...), targets: matrix(t, []float32{1, 1}), want: evaluation.ErrValue},
		"no label":             {probs: matrix(t, two...), targets: matrix(t, []float32{0, 0}), want: evaluation.ErrValue},
		"NaN loss":             {probs: matrix(t, two...), targets: matrix(t, []float32{0, 1}), loss: math.NaN(), want: evaluation.ErrValue},
		"infinite loss":        {probs: matrix(t, two...), targets: matrix(t, []float32{0, 1}), loss: math.Inf(1), want: evaluation.ErrValue},
		"multi-label target 2": {multi: true, probs: matrix(t, two...), targets: matrix(t, []float32{2, 0}), want: evaluation.ErrValue},
	} {
		t.Run(name, func(t *testing.T) {
			acc, err := evaluation.NewAccumulator(evaluation.Options{Classes: []string{"a", "b"}, MultiLabel: tc.multi, Loss: evaluation.BinaryCrossentropy})
			if err != nil {
				t.Fatal(err)
			}
			good := matrix(t, []float32{0.7, 0.3}, []float32{0.4, 0.6})
			if err := acc.Add(good, matrix(t, []float32{1, 0}, []float32{1, 0}), 0.5); err != nil {
				t.Fatal(err)
			}
			before := acc.Report()
			if err := acc.Add(tc.probs, tc.targets, tc.loss); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			assertReport(t, acc.Report(), before)
		})
	}
}

// TestReportIsACopy checks that changing a Report or adding more rows does
// not change an earlier Report.
func TestReportIsACopy(t *testing.T) {
	acc, err := evaluation.NewAccumulator(evaluation.Options{Classes: []string{"a", "b"}, Loss: evaluation.BinaryCrossentropy})
	if err != nil {
		t.Fatal(err)
	}
	add := func() {
		if err := acc.Add(matrix(t, []float32{0.3, 0.7}), matrix(t, []float32{1, 0}), 1); err != nil {
			t.Fatal(err)
		}
	}
	add()
	r := acc.Report()
	r.Confusion[0][1] = 99
	r.Baselines.ClassCounts[0] = 99
	add()
	again := acc.Report()
	if again.Confusion[0][1] != 2 || again.Baselines.ClassCounts[0] != 2 || again.Rows != 2 {
		t.Errorf("second report: confusion %v, counts %v, rows %d", again.Confusion, again.Baselines.ClassCounts, again.Rows)
	}
}
