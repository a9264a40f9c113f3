package tfmodel_test

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/sparse"
	"github.com/kerasgo/kerasgo/tfmodel"
)

// benchModel loads the model `make bench` exports: the question's
// architecture at D=10,000, C=20 (KERASGO_BENCH_MODEL names its directory).
func benchModel(b *testing.B) *tfmodel.Model {
	b.Helper()
	dir := os.Getenv("KERASGO_BENCH_MODEL")
	if dir == "" {
		b.Skip("KERASGO_BENCH_MODEL is not set: run `make bench`, which exports the D=10,000 model first")
	}
	return loadModel(b, dir, tfmodel.DefaultOptions())
}

// bagOfWords makes rows×dim binary features with about 1% of them set, the
// density of a 10,000-word bag-of-words vector of a short text.
func bagOfWords(rows, dim int, seed uint64) dense.Matrix {
	r := rand.New(rand.NewPCG(seed, 0))
	m := dense.New(rows, dim)
	for i := range m.Data {
		if r.IntN(100) == 0 {
			m.Data[i] = 1
		}
	}
	return m
}

// denseRows makes rows×dim features, every one of them set (uniform in
// [0, 1)): rows no sparse route can take.
func denseRows(rows, dim int, seed uint64) dense.Matrix {
	r := rand.New(rand.NewPCG(seed, 0))
	m := dense.New(rows, dim)
	for i := range m.Data {
		m.Data[i] = r.Float32()
	}
	return m
}

// BenchmarkPredict times one Predict call per iteration at each batch size,
// on dense rows.
func BenchmarkPredict(b *testing.B) {
	m := benchModel(b)
	ctx := context.Background()
	for _, batch := range []int{1, 32, 500} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			x := denseRows(batch, m.InputDim(), 1)
			for b.Loop() {
				if _, err := m.Predict(ctx, x); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkTrainStep times one optimizer step on 500 dense rows per iteration.
func BenchmarkTrainStep(b *testing.B) {
	m := benchModel(b)
	ctx := context.Background()
	const batch = 500
	x := denseRows(batch, m.InputDim(), 2)
	classes := make([]int64, batch)
	for i := range classes {
		classes[i] = int64(i % len(m.Metadata().Classes))
	}
	for b.Loop() {
		if _, err := m.TrainStep(ctx, x, tfmodel.Labels{Classes: classes}, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkPredictSparse times one PredictSparse call per iteration on the
// same rows as BenchmarkPredict, as a CSR batch: presence flags, word counts
// at the same positions (80% 1, 10% 2, 10% 3) and tf-idf-like weights.
func BenchmarkPredictSparse(b *testing.B) {
	m := benchModel(b)
	if !m.SparsePredictable() {
		b.Skip("the bench model has no predict_sparse signature")
	}
	ctx := context.Background()
	for _, values := range []string{"flags", "counts", "tfidf"} {
		for _, batch := range []int{1, 32, 500} {
			b.Run(values+"/batch="+strconv.Itoa(batch), func(b *testing.B) {
				x := withValues(sparse.FromDense(bagOfWords(batch, m.InputDim(), 1)), values)
				for b.Loop() {
					if _, err := m.PredictSparse(ctx, x); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}

// withValues gives x's entries the values of a kind of bag-of-words rows:
// "flags" (1), "counts" (80% 1, 10% 2, 10% 3) or "tfidf" (0.5 to 2).
func withValues(x sparse.CSR, kind string) sparse.CSR {
	for i := range x.Values {
		switch {
		case kind == "tfidf":
			x.Values[i] = 0.5 + float32(i%7)/4
		case kind == "counts" && i%10 == 0:
			x.Values[i] = 3
		case kind == "counts" && i%5 == 0:
			x.Values[i] = 2
		}
	}
	return x
}

// BenchmarkTrainStepSparse times one TrainStepSparse call per iteration on
// BenchmarkTrainStep's rows as a CSR batch of flags and of counts.
func BenchmarkTrainStepSparse(b *testing.B) {
	m := benchModel(b)
	if !m.HasRole(tfmodel.RoleTrainSparse) {
		b.Skip("the bench model has no train_step_sparse signature")
	}
	ctx := context.Background()
	const batch = 500
	classes := make([]int64, batch)
	for i := range classes {
		classes[i] = int64(i % len(m.Metadata().Classes))
	}
	for _, values := range []string{"flags", "counts"} {
		b.Run(values, func(b *testing.B) {
			x := withValues(sparse.FromDense(bagOfWords(batch, m.InputDim(), 2)), values)
			for b.Loop() {
				if _, err := m.TrainStepSparse(ctx, x, tfmodel.Labels{Classes: classes}, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
