package tfmodel_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/rowio"
	"github.com/kerasgo/kerasgo/sparse"
	"github.com/kerasgo/kerasgo/tfmodel"
)

// testdata is the repository's shared test data, made by scripts/make_testdata.py.
const testdata = "../testdata"

// goldenEntry is one model of testdata/golden/golden.json.
type goldenEntry struct {
	Model         string `json:"model"`
	Inputs        string `json:"inputs"`
	Probabilities string `json:"probabilities"`
	Classes       int    `json:"classes"`
	TrainX        string `json:"train_x"`
	TrainY        string `json:"train_y"`
	TrainLosses   string `json:"train_losses"`
	TrainWeights  string `json:"train_weights"`
	TrainSteps    int    `json:"train_steps"`
	TrainBatch    int    `json:"train_batch"`
}

type goldenIndex struct {
	TensorFlowVersion string                 `json:"tensorflow_version"`
	KerasVersion      string                 `json:"keras_version"`
	Models            map[string]goldenEntry `json:"models"`
	// TextModels take raw text (TextVectorization inside the graph).
	TextModels map[string]struct {
		Model         string `json:"model"`
		Texts         string `json:"texts"`
		Probabilities string `json:"probabilities"`
	} `json:"text_models"`
}

func readGolden(tb testing.TB) goldenIndex {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, "golden", "golden.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var g goldenIndex
	if err := json.Unmarshal(b, &g); err != nil {
		tb.Fatal(err)
	}
	if len(g.Models) < 3 {
		tb.Fatalf("golden.json lists %d models, want at least 3", len(g.Models))
	}
	return g
}

func readNPY(tb testing.TB, name string) dense.Matrix {
	tb.Helper()
	m, err := rowio.ReadNPYFile(filepath.Join(testdata, "golden", name))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func loadModel(tb testing.TB, dir string, opts tfmodel.Options) *tfmodel.Model {
	tb.Helper()
	m, err := tfmodel.Load(context.Background(), dir, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Error(err)
		}
	})
	return m
}

// maxAbsDiff returns the largest |got - want| over two same-shaped matrices.
// A NaN on either side counts as an infinite difference: a plain maximum
// would turn NaN and every "d > tolerance" after it would then pass.
func maxAbsDiff(tb testing.TB, got, want dense.Matrix) float64 {
	tb.Helper()
	if got.Rows != want.Rows || got.Cols != want.Cols {
		tb.Fatalf("shape %d×%d, want %d×%d", got.Rows, got.Cols, want.Rows, want.Cols)
	}
	var worst float64
	for i := range got.Data {
		d := math.Abs(float64(got.Data[i]) - float64(want.Data[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		worst = max(worst, d)
	}
	return worst
}

// TestPredictMatchesKeras checks every testdata model against the
// probabilities Keras computed for the golden inputs, at several chunk sizes.
func TestPredictMatchesKeras(t *testing.T) {
	g := readGolden(t)
	for _, name := range slices.Sorted(maps.Keys(g.Models)) {
		e := g.Models[name]
		x := readNPY(t, e.Inputs)
		want := readNPY(t, e.Probabilities)
		for _, batch := range []int{1, 7, 500} {
			t.Run(name+"/batch"+strconv.Itoa(batch), func(t *testing.T) {
				opts := tfmodel.DefaultOptions()
				opts.BatchSize = batch
				m := loadModel(t, filepath.Join(testdata, e.Model), opts)
				got, err := m.Predict(context.Background(), x)
				if err != nil {
					t.Fatal(err)
				}
				if d := maxAbsDiff(t, got, want); d > 1e-5 {
					t.Fatalf("max |Go - Keras| = %g, want <= 1e-5", d)
				}
			})
		}
	}
}

// TestPredictSparseMatchesKeras feeds the golden inputs as sparse batches
// through the exporter's predict_sparse signature.
func TestPredictSparseMatchesKeras(t *testing.T) {
	g := readGolden(t)
	for _, name := range []string{"fortunes", "debtags"} {
		e := g.Models[name]
		x := sparse.FromDense(readNPY(t, e.Inputs))
		want := readNPY(t, e.Probabilities)
		for _, batch := range []int{1, 7, 500} {
			t.Run(name+"/batch"+strconv.Itoa(batch), func(t *testing.T) {
				opts := tfmodel.DefaultOptions()
				opts.BatchSize = batch
				m := loadModel(t, filepath.Join(testdata, e.Model), opts)
				if !m.SparsePredictable() {
					t.Fatal("exported model lacks predict_sparse")
				}
				got, err := m.PredictSparse(context.Background(), x)
				if err != nil {
					t.Fatal(err)
				}
				if d := maxAbsDiff(t, got, want); d > 1e-5 {
					t.Fatalf("max |Go sparse - Keras| = %g, want <= 1e-5", d)
				}
			})
		}
	}
}

// TestPredictTextMatchesKeras feeds raw text to a SavedModel whose graph
// holds Keras' TextVectorization (string input), at several chunk sizes.
func TestPredictTextMatchesKeras(t *testing.T) {
	g := readGolden(t)
	e, ok := g.TextModels["fortunes_text"]
	if !ok {
		t.Fatal("golden.json lists no text model")
	}
	b, err := os.ReadFile(filepath.Join(testdata, "golden", e.Texts))
	if err != nil {
		t.Fatal(err)
	}
	texts := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	want := readNPY(t, e.Probabilities)
	for _, batch := range []int{1, 7, 500} {
		t.Run("batch"+strconv.Itoa(batch), func(t *testing.T) {
			opts := tfmodel.DefaultOptions()
			opts.BatchSize = batch
			m := loadModel(t, filepath.Join(testdata, e.Model), opts)
			if !m.TextInput() {
				t.Fatal("TextInput() = false for a string-input model")
			}
			got, err := m.PredictText(context.Background(), texts)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(t, got, want); d > 1e-5 {
				t.Fatalf("max |Go - Keras| = %g", d)
			}
			if _, err := m.Predict(context.Background(), dense.New(1, 1)); !errors.Is(err, tfmodel.ErrUnsupportedDType) {
				t.Fatalf("Predict on a string model = %v, want ErrUnsupportedDType", err)
			}
		})
	}
}
