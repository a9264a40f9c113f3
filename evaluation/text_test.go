package evaluation_test

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/evaluation"
)

// manyClasses is a single-label report over 25 classes, class j on j+1 rows,
// every row predicted as class 0.
func manyClasses(tb testing.TB) evaluation.Report {
	tb.Helper()
	names := make([]string, 25)
	for j := range names {
		names[j] = fmt.Sprintf("class-%02d", j)
	}
	acc, err := evaluation.NewAccumulator(evaluation.Options{Classes: names, Loss: evaluation.CategoricalCrossentropy})
	if err != nil {
		tb.Fatal(err)
	}
	for j := range names {
		probs, targets := dense.New(j+1, len(names)), dense.New(j+1, len(names))
		for i := range j + 1 {
			probs.Row(i)[0] = 0.9
			targets.Row(i)[j] = 1
		}
		if err := acc.Add(probs, targets, 2); err != nil {
			tb.Fatal(err)
		}
	}
	return acc.Report()
}

func TestWriteTextSingleLabel(t *testing.T) {
	r := manyClasses(t)
	var b strings.Builder
	if err := r.WriteText(&b, evaluation.Diagnose(r, evaluation.Inputs{})); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, s := range []string{
		"325 rows, 25 classes, one label per row",
		"top-1 accuracy       0.003     0.077  always answering \"class-24\"",
		"binary accuracy      0.920     0.960  predicting no class (1 − 1/25)",
		"(5 smaller classes not shown)",
		"class-24     0.000   0.000   0.000       25\n",
		"class-24 → class-00: 25\n",
		"- binary_accuracy_trap: ",
		"- imbalance: ",
		"- keras_accuracy_note: ",
	} {
		assertContains(t, out, s)
	}
	if regexp.MustCompile(`(?m)^class-04 `).MatchString(out) {
		t.Errorf("the smallest classes are listed:\n%s", out)
	}
	if n := strings.Count(out, " → "); n != evaluation.MostConfusedPairs+1 { // + the heading
		t.Errorf("%d confused pairs, want %d:\n%s", n-1, evaluation.MostConfusedPairs, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if n := len([]rune(line)); n > 100 {
			t.Errorf("line of %d characters: %q", n, line)
		}
	}
}

func TestWriteTextMultiLabel(t *testing.T) {
	r := report(t, evaluation.Options{Classes: []string{"x", "y", "z"}, MultiLabel: true, Loss: evaluation.BinaryCrossentropy},
		batch{
			probs:   [][]float32{{0.9, 0.6, 0.1}, {0.2, 0.8, 0.7}, {0.1, 0.1, 0.1}, {0.7, 0.2, 0.4}},
			targets: [][]float32{{1, 0, 0}, {0, 1, 1}, {0, 0, 0}, {1, 1, 0}},
			loss:    0.3,
		})
	var b strings.Builder
	if err := r.WriteText(&b, nil); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, s := range []string{
		"4 rows, 3 classes, any number of labels per row",
		"subset accuracy      0.500     0.250  predicting no label",
		"micro F1             0.800     0.000  predicting no label",
		"hamming loss         0.167     0.417  predicting no label",
		"binary accuracy      0.833     0.583  predicting no class (1 − 1.250/3)",
	} {
		assertContains(t, out, s)
	}
	for _, s := range []string{"most confused", "findings"} {
		if strings.Contains(out, s) {
			t.Errorf("multi-label text without findings has %q:\n%s", s, out)
		}
	}
}

type failWriter struct{ after int }

var errWrite = errors.New("disk full")

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errWrite
	}
	f.after--
	return len(p), nil
}

func TestWriteTextError(t *testing.T) {
	r := manyClasses(t)
	for _, after := range []int{0, 3, 20} {
		if err := r.WriteText(&failWriter{after: after}, evaluation.Diagnose(r, evaluation.Inputs{})); !errors.Is(err, errWrite) {
			t.Errorf("after %d writes: error %v, want %v", after, err, errWrite)
		}
	}
}
