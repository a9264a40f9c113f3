package kerasgo_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo"
	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/errkind"
	"github.com/kerasgo/kerasgo/evaluation"
	"github.com/kerasgo/kerasgo/fit"
	"github.com/kerasgo/kerasgo/tfmodel"
)

// TestEvaluatorWithoutMetadata evaluates a TF1 SavedModel that carries no
// kerasgo metadata on the labelled rows behind the golden inputs: the label
// mode and loss are inferred (one label a row, softmax outputs), and the
// report's loss and top-1 accuracy are those of TensorFlow's own outputs
// (the golden probabilities) scored as Keras scores them.
func TestEvaluatorWithoutMetadata(t *testing.T) {
	ctx := context.Background()
	m := open(t, "tf1_softmax")
	want := golden(t, "tf1_softmax_probabilities.npy")
	data := firstLines(t, filepath.Join("testdata", "features", "fortunes", "test.libsvm"), want.Rows)
	src, err := m.LabelledSource(data)
	if err != nil {
		t.Fatal(err)
	}
	model, opts, inferred, err := m.Evaluator(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(inferred, "one-hot") || !strings.Contains(inferred, "softmax") || opts.Loss != evaluation.CategoricalCrossentropy || opts.Labels.MultiLabel {
		t.Fatalf("inferred %q, loss %s, multi-label %v; want one-hot, softmax, CategoricalCrossentropy", inferred, opts.Loss, opts.Labels.MultiLabel)
	}
	opts.BatchSize, opts.ValPath = 16, data
	rep, err := fit.Evaluate(ctx, model, src, opts)
	if err != nil {
		t.Fatal(err)
	}
	targets := dense.New(want.Rows, want.Cols)
	labels := libsvmLabels(t, data)
	hits := 0
	for i, c := range labels {
		targets.Row(i)[c] = 1
		if argmax(want.Row(i)) == c {
			hits++
		}
	}
	wantLoss, err := evaluation.BatchLoss(evaluation.CategoricalCrossentropy, want, targets)
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Abs(rep.Loss - wantLoss); !(d <= 1e-5) {
		t.Errorf("loss %v, Keras' categorical cross-entropy of TensorFlow's outputs %v", rep.Loss, wantLoss)
	}
	if w := float64(hits) / float64(want.Rows); rep.Top1Accuracy == nil || math.Abs(*rep.Top1Accuracy-w) > 1e-9 {
		t.Errorf("top-1 accuracy %v, want %v", rep.Top1Accuracy, w)
	}

	// Two labels on a row make the data multi-label.
	multi := filepath.Join(t.TempDir(), "multi.libsvm")
	b, _ := os.ReadFile(data)
	if err := os.WriteFile(multi, []byte(strings.Replace(string(b), "0 ", "0,1 ", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if src, err = m.LabelledSource(multi); err != nil {
		t.Fatal(err)
	}
	if _, opts, _, err = m.Evaluator(ctx, src); err != nil || !opts.Labels.MultiLabel {
		t.Errorf("two labels on a row: multi-label %v, %v; want true", opts.Labels.MultiLabel, err)
	}

	// An exported model keeps its metadata's options, and infers nothing.
	if _, _, inferred, err := open(t, "fortunes").Evaluator(ctx, src); err != nil || inferred != "" {
		t.Errorf("exported model: inferred %q, %v; want nothing", inferred, err)
	}
}

func firstLines(tb testing.TB, path string, n int) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	lines := strings.SplitAfterN(string(b), "\n", n+1)
	out := filepath.Join(tb.TempDir(), filepath.Base(path))
	if err := os.WriteFile(out, []byte(strings.Join(lines[:n], "")), 0o644); err != nil {
		tb.Fatal(err)
	}
	return out
}

func libsvmLabels(tb testing.TB, path string) []int {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var out []int
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var c int
		if _, err := fmt.Sscan(strings.Fields(line)[0], &c); err != nil {
			tb.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func argmax(row []float32) int {
	best := 0
	for j, v := range row {
		if v > row[best] {
			best = j
		}
	}
	return best
}

// TestOpenWithClasses: a SavedModel without kerasgo metadata opened with
// class names and a label mode carries them into predictions' writer
// options and evaluations; names that do not fit the model are refused.
func TestOpenWithClasses(t *testing.T) {
	ctx := context.Background()
	names := open(t, "fortunes").Classes() // the classes tf1_softmax was trained on
	dir := filepath.Join("testdata", "models", "tf1_softmax")
	opts := kerasgo.DefaultOptions()
	opts.Classes, opts.LabelMode = names, kerasgo.LabelModeSingle
	m, err := kerasgo.Open(ctx, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.FitOptions(); !errors.Is(err, tfmodel.ErrNotTrainable) || errkind.Of(err) != errkind.FailedPrecondition {
		t.Errorf("FitOptions on a model without training signatures: %v (kind %v), want ErrNotTrainable, a failed precondition", err, errkind.Of(err))
	}
	if got := m.PredictionOptions(0, 3).Classes; !slices.Equal(got, names) {
		t.Errorf("prediction options name %v, want %v", got, names)
	}
	data := firstLines(t, filepath.Join("testdata", "features", "fortunes", "test.libsvm"), 50)
	src, err := m.LabelledSource(data)
	if err != nil {
		t.Fatal(err)
	}
	_, fo, inferred, err := m.Evaluator(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fo.Labels.Classes, names) || fo.Labels.MultiLabel || !strings.Contains(inferred, "labels given") || !strings.Contains(inferred, "named as given") {
		t.Errorf("evaluator classes %v, multi-label %v, inferred %q", fo.Labels.Classes, fo.Labels.MultiLabel, inferred)
	}

	bad := map[string]kerasgo.Options{
		"too few names":               {Classes: names[:3]},
		"unknown label mode":          {LabelMode: kerasgo.LabelMode(7)},
		"other names than metadata's": {Classes: append([]string{"x"}, names[1:]...)},
		"mode against metadata":       {LabelMode: kerasgo.LabelModeMulti},
	}
	for name, o := range bad {
		t.Run(name, func(t *testing.T) {
			d := dir
			if strings.Contains(name, "metadata") {
				d = filepath.Join("testdata", "models", "fortunes")
			}
			if m, err := kerasgo.Open(ctx, d, o); err == nil {
				m.Close()
				t.Errorf("Open(%s) with %+v succeeded", d, o)
			}
		})
	}
}
