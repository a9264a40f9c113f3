package kerasgo_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/kerasgo/kerasgo"
	"github.com/kerasgo/kerasgo/fit"
	"github.com/kerasgo/kerasgo/rowio"
	"github.com/kerasgo/kerasgo/score"
)

// An HTTP handler that scores raw text: the model carries its text
// preprocessing (here Keras' TextVectorization), loaded once by Open and
// shared by every request.
func Example_textHandler() {
	m, err := kerasgo.Open(context.Background(), "testdata/models/fortunes", kerasgo.DefaultOptions())
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	classes := m.Classes()
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		text, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		p, err := m.PredictText(r.Context(), []string{string(text)})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		best := 0
		for j, v := range p.Row(0) {
			if v > p.At(0, best) {
				best = j
			}
		}
		fmt.Fprintf(w, "%s %.2f\n", classes[best], p.At(0, best))
	})

	// Served here without a network.
	doc := `When one woman was asked how long she had been going to symphony concerts, she paused to calculate and replied, "Forty-seven years -- and I find I mind it less and less." -- Louise Andrews Kent`
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/classify", strings.NewReader(doc)))
	fmt.Print(rec.Body.String())
	// Output: men-women 0.77
}

// A batch job over a file: every row of a libsvm file scored into CSV, with
// bounded memory and several batches in flight.
func Example_scoreFile() {
	ctx := context.Background()
	m, err := kerasgo.Open(ctx, "testdata/models/fortunes", kerasgo.DefaultOptions())
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	path := "testdata/features/fortunes/test.libsvm"
	in, err := os.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer in.Close()
	var out bytes.Buffer
	w := rowio.NewCSVPredictionWriter(&out, m.PredictionOptions(0.5, 3))
	// Score flushes w before it returns.
	stats, err := m.Score(ctx, in, path, rowio.FormatOf(path), rowio.ReaderOptions{}, w, score.Options{})
	if err != nil {
		log.Fatal(err)
	}
	header, _, _ := strings.Cut(out.String(), "\n")
	fmt.Println(stats.Scored, "rows scored in", m.Input(), "batches")
	fmt.Println(header)
	// Output:
	// 1255 rows scored in sparse batches
	// id,label,score,top1_label,top1_p,top2_label,top2_p,top3_label,top3_p
}

// A retraining loop with validation: the model is trained on new labelled
// rows, and the best epoch (or the model as loaded, if no epoch beats it) is
// saved and put back into the model in memory.
func Example_retrain() {
	ctx := context.Background()
	m, err := kerasgo.Open(ctx, "testdata/models/fortunes", kerasgo.DefaultOptions())
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	opts, err := m.FitOptions()
	if err != nil {
		log.Fatal(err)
	}
	train, err := m.LabelledSource("testdata/features/fortunes/train.libsvm")
	if err != nil {
		log.Fatal(err)
	}
	val, err := m.LabelledSource("testdata/features/fortunes/test.libsvm")
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "retrain")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	opts.Epochs, opts.BatchSize, opts.Seed = 2, 64, 1
	res, err := m.Train(ctx, train, val, filepath.Join(dir, "retrained"), opts)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d training rows (grouped by label: %v), %d epochs, %s\n",
		res.Data.TrainRows, res.Data.Order.Grouped(), len(res.History), res.Stopped)

	// The model in memory is the one saved: the kept epoch's loss again.
	again, err := fit.Evaluate(ctx, m, val, opts)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("the model in memory scores as the one kept:", math.Abs(again.Loss-res.BestValue) < 1e-6)
	// Output:
	// 5042 training rows (grouped by label: true), 2 epochs, completed
	// the model in memory scores as the one kept: true
}
