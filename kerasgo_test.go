package kerasgo_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kerasgo/kerasgo"
	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/rowio"
	"github.com/kerasgo/kerasgo/sparse"
)

// kerasTol is how far kerasgo's probabilities may be from Keras' (README).
const kerasTol = 1e-5

func open(tb testing.TB, name string) *kerasgo.Model {
	tb.Helper()
	m, err := kerasgo.Open(context.Background(), filepath.Join("testdata", "models", name), kerasgo.DefaultOptions())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

func golden(tb testing.TB, name string) dense.Matrix {
	tb.Helper()
	m, err := rowio.ReadNPYFile(filepath.Join("testdata", "golden", name))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// goldenTexts are the documents whose Keras vectors are fortunes_inputs.npy.
func goldenTexts(tb testing.TB) []string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden", "fortunes_text_inputs.txt"))
	if err != nil {
		tb.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func checkClose(tb testing.TB, what string, got, want dense.Matrix) {
	tb.Helper()
	if got.Rows != want.Rows || got.Cols != want.Cols {
		tb.Fatalf("%s: %d×%d, Keras %d×%d", what, got.Rows, got.Cols, want.Rows, want.Cols)
	}
	for i, v := range got.Data {
		if d := math.Abs(float64(v - want.Data[i])); !(d <= kerasTol) {
			tb.Fatalf("%s: value %d: %v, Keras %v", what, i, v, want.Data[i])
		}
	}
}

func TestInputModes(t *testing.T) {
	tests := map[string]struct {
		input     kerasgo.Input
		takesText bool
	}{
		"fortunes":        {kerasgo.InputSparse, true},  // exporter's sparse signatures and vectorizer
		"fortunes_text":   {kerasgo.InputStrings, true}, // TextVectorization inside the graph
		"fortunes_export": {kerasgo.InputDense, false},  // plain Keras model.export()
		"tf1_softmax":     {kerasgo.InputDense, false},  // TF1 SavedModelBuilder
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m := open(t, name)
			if m.Input() != tc.input || m.TakesText() != tc.takesText {
				t.Fatalf("input %v, takes text %v; want %v, %v", m.Input(), m.TakesText(), tc.input, tc.takesText)
			}
		})
	}
}

// TestPredictMatchesKeras feeds the golden rows dense, sparse and as the raw
// texts they came from, on the model with a vectorizer and on the model whose
// graph takes strings.
func TestPredictMatchesKeras(t *testing.T) {
	ctx := context.Background()
	x := golden(t, "fortunes_inputs.npy")
	want := golden(t, "fortunes_probabilities.npy")
	m := open(t, "fortunes")
	tests := map[string]func() (dense.Matrix, error){
		"dense":            func() (dense.Matrix, error) { return m.Predict(ctx, x) },
		"sparse":           func() (dense.Matrix, error) { return m.PredictSparse(ctx, sparse.FromDense(x)) },
		"text, vectorizer": func() (dense.Matrix, error) { return m.PredictText(ctx, goldenTexts(t)) },
	}
	for name, predict := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := predict()
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, name, got, want)
		})
	}
	t.Run("text, string graph", func(t *testing.T) {
		got, err := open(t, "fortunes_text").PredictText(ctx, goldenTexts(t))
		if err != nil {
			t.Fatal(err)
		}
		checkClose(t, "string graph", got, golden(t, "fortunes_text_probabilities.npy"))
	})
	t.Run("no text input", func(t *testing.T) {
		if _, err := open(t, "tf1_softmax").PredictText(ctx, []string{"x"}); !errors.Is(err, kerasgo.ErrNoTextInput) {
			t.Fatalf("PredictText = %v, want ErrNoTextInput", err)
		}
	})
}

// TestPredictTextConcurrent shares one model, and so one vectorizer, between
// goroutines (run under -race by make test): the vectorizers' contract.
func TestPredictTextConcurrent(t *testing.T) {
	m := open(t, "fortunes")
	texts := goldenTexts(t)
	want := golden(t, "fortunes_probabilities.npy")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			i := g % len(texts)
			got, err := m.PredictText(context.Background(), texts[i:i+1])
			if err != nil {
				errs <- err
				return
			}
			for j, v := range got.Row(0) {
				if d := math.Abs(float64(v - want.At(i, j))); !(d <= kerasTol) {
					errs <- errors.New("a concurrent prediction differs from Keras")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestTrainKeepsTheBestInMemory: when no epoch beats the model as loaded
// (a learning rate far too high), Train saves the model as loaded and puts
// it back into memory: the model then predicts Keras' own probabilities
// for it again, and its saved copy does too.
func TestTrainKeepsTheBestInMemory(t *testing.T) {
	ctx := context.Background()
	m := open(t, "fortunes")
	opts, err := m.FitOptions()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetLearningRate(ctx, 1.0); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join("testdata", "features", "fortunes")
	train, err := m.LabelledSource(filepath.Join(data, "train.libsvm"))
	if err != nil {
		t.Fatal(err)
	}
	val, err := m.LabelledSource(filepath.Join(data, "test.libsvm"))
	if err != nil {
		t.Fatal(err)
	}
	opts.Epochs, opts.BatchSize, opts.Seed = 2, 64, 1
	out := filepath.Join(t.TempDir(), "retrained")
	res, err := m.Train(ctx, train, val, out, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.BestEpoch != 0 {
		t.Fatalf("best epoch %d at learning rate 1.0 (val losses %v then %v); the test needs runs that get worse", res.BestEpoch, res.Start.Loss, res.History)
	}
	x, keras := golden(t, "fortunes_inputs.npy"), golden(t, "fortunes_probabilities.npy")
	got, err := m.Predict(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	checkClose(t, "the model in memory after Train", got, keras)
	saved, err := kerasgo.Open(ctx, out, kerasgo.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer saved.Close()
	if got, err = saved.Predict(ctx, x); err != nil {
		t.Fatal(err)
	}
	checkClose(t, "the saved model", got, keras)
}
