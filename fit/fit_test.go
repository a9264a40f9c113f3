package fit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/evaluation"
	"github.com/kerasgo/kerasgo/fit"
	"github.com/kerasgo/kerasgo/rowio"
)

// data makes n libsvm rows: row i has label i%classes and feature i%dim set
// to i+1, so the value identifies the row.
func data(n, classes, dim int) fit.Source {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%d %d:%d\n", i%classes, i%dim, i+1)
	}
	text := b.String()
	return func() (rowio.RowReader, io.Closer, error) {
		r, err := rowio.NewLibSVMReader(strings.NewReader(text), "train.svm", rowio.LibSVMOptions{Dim: dim, Base: rowio.IndexZero, Sparse: true})
		return r, io.NopCloser(nil), err
	}
}

// fake records what the loop feeds it. Evaluation losses come from valLoss,
// one per EvaluateBatch call; cancel, when set, is called after
// cancelAfter training steps.
type fake struct {
	trained     [][]float32 // per epoch call order: row ids trained
	weights     []float32
	evaluated   []float32
	valLoss     []float64
	evals       int
	steps       int
	saves       []string
	cancel      func()
	cancelAfter int
}

func rowIDs(b fit.Batch) []float32 { return slices.Clone(b.X.Values) }

func (f *fake) probs(b fit.Batch) dense.Matrix {
	p := dense.New(b.Y.Rows, b.Y.Cols)
	for i, v := range b.Y.Data {
		p.Data[i] = 0.1 + 0.8*v
	}
	return p
}

func (f *fake) TrainBatch(ctx context.Context, b fit.Batch) (float64, dense.Matrix, error) {
	if err := ctx.Err(); err != nil {
		return 0, dense.Matrix{}, fmt.Errorf("train step: %w", err)
	}
	f.steps++
	f.trained = append(f.trained, rowIDs(b))
	f.weights = append(f.weights, b.Weights...)
	if f.cancel != nil && f.steps == f.cancelAfter {
		f.cancel()
	}
	return 1 / float64(f.steps), f.probs(b), nil
}

func (f *fake) EvaluateBatch(ctx context.Context, b fit.Batch) (float64, dense.Matrix, error) {
	f.evaluated = append(f.evaluated, rowIDs(b)...)
	loss := 0.5
	if len(f.valLoss) > 0 {
		loss = f.valLoss[min(f.evals, len(f.valLoss)-1)]
	}
	f.evals++
	return loss, f.probs(b), nil
}

func (f *fake) Save(ctx context.Context, dir string) error {
	f.saves = append(f.saves, dir)
	return os.MkdirAll(dir, 0o755)
}

func options(dim int) fit.Options {
	return fit.Options{Dim: dim, Labels: fit.NewLabelParser([]string{"a", "b", "c"}, false), Loss: "BinaryCrossentropy", TrainPath: "train.svm", ValPath: "val.svm"}
}

func flat(batches [][]float32) []float32 {
	var out []float32
	for _, b := range batches {
		out = append(out, b...)
	}
	return out
}

func TestRunUsesEveryRowOncePerEpoch(t *testing.T) {
	f := &fake{}
	opts := options(10)
	opts.Epochs, opts.BatchSize, opts.Seed = 3, 7, 1
	res, err := fit.Run(context.Background(), f, data(100, 3, 10), nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != fit.StopCompleted || len(res.History) != 3 || res.Steps != 3*15 {
		t.Fatalf("%+v", res)
	}
	for e := range 3 {
		epoch := flat(f.trained[e*15 : (e+1)*15])
		sorted := slices.Sorted(slices.Values(epoch))
		for i, v := range sorted {
			if v != float32(i+1) {
				t.Fatalf("epoch %d trained rows %v, want 1..100 once each", e+1, sorted)
			}
		}
		if slices.IsSorted(epoch) {
			t.Fatalf("epoch %d was not shuffled", e+1)
		}
	}
	if slices.Equal(flat(f.trained[:15]), flat(f.trained[15:30])) {
		t.Fatal("two epochs in the same order")
	}
	if got := res.History[0].Train.Rows; got != 100 {
		t.Fatalf("train metrics over %d rows, want 100", got)
	}
}

func TestRunValidationSplit(t *testing.T) {
	f := &fake{}
	opts := options(10)
	opts.Epochs, opts.BatchSize, opts.ValidationSplit = 2, 10, 0.2
	res, err := fit.Run(context.Background(), f, data(1000, 3, 10), nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Three evaluations: the model as loaded, then after each epoch.
	held := len(f.evaluated) / 3
	if held < 150 || held > 250 {
		t.Fatalf("%d rows held out of 1000 for a 0.2 split", held)
	}
	if !slices.Equal(f.evaluated[:held], f.evaluated[held:2*held]) || !slices.Equal(f.evaluated[:held], f.evaluated[2*held:]) {
		t.Fatal("a different validation split in each epoch")
	}
	trained := map[float32]bool{}
	for _, v := range flat(f.trained) {
		trained[v] = true
	}
	for _, v := range f.evaluated {
		if trained[v] {
			t.Fatalf("row %v was both trained on and held out", v)
		}
	}
	if res.History[1].Val == nil || res.History[1].Val.Rows != held {
		t.Fatalf("validation report %+v", res.History[1].Val)
	}
}

func TestRunEarlyStoppingKeepsBest(t *testing.T) {
	tests := map[string]struct {
		valLoss   []float64 // the model as loaded, then one per epoch
		epochs    int       // run
		stopped   fit.StopReason
		bestEpoch int
		saves     int
	}{
		"epoch 2 is best, patience runs out": {[]float64{1, 0.9, 0.5, 0.6, 0.7, 0.8, 0.9}, 4, fit.StopEarly, 2, 3},
		"no epoch beats the model as loaded": {[]float64{0.4, 0.5, 0.6, 0.7}, 2, fit.StopEarly, 0, 1},
		"the last epoch is best":             {[]float64{1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4}, 6, fit.StopCompleted, 6, 7},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := &fake{valLoss: tc.valLoss}
			opts := options(10)
			opts.Epochs, opts.BatchSize, opts.Patience = 6, 50, 2
			opts.BestDir = filepath.Join(t.TempDir(), "best")
			var start *float64
			opts.OnStart = func(r evaluation.Report) { start = &r.Loss }
			// 30 validation rows in batches of 50: one evaluation call each time.
			res, err := fit.Run(context.Background(), f, data(100, 3, 10), data(30, 3, 10), opts)
			if err != nil {
				t.Fatal(err)
			}
			if res.Stopped != tc.stopped || len(res.History) != tc.epochs || res.BestEpoch != tc.bestEpoch || res.BestValue != tc.valLoss[tc.bestEpoch] {
				t.Fatalf("stopped %q after %d epochs, best %d (%v)", res.Stopped, len(res.History), res.BestEpoch, res.BestValue)
			}
			if start == nil || *start != tc.valLoss[0] || res.Start == nil || res.Start.Loss != tc.valLoss[0] {
				t.Fatalf("start evaluation %v / %+v, want loss %v", start, res.Start, tc.valLoss[0])
			}
			if len(f.saves) != tc.saves || f.saves[0] != opts.BestDir {
				t.Fatalf("saves %v, want %d to the best dir", f.saves, tc.saves)
			}
		})
	}
}

// TestRunGroupedFile trains on a file sorted by label: every batch must still
// mix the classes, as a uniformly random order does, and the grouping is
// reported.
func TestRunGroupedFile(t *testing.T) {
	var text strings.Builder
	for c := range 3 {
		for i := range 300 {
			fmt.Fprintf(&text, "%d %d:%d\n", c, c, c*300+i+1)
		}
	}
	src := func() (rowio.RowReader, io.Closer, error) {
		r, err := rowio.NewLibSVMReader(strings.NewReader(text.String()), "sorted.svm", rowio.LibSVMOptions{Dim: 10, Base: rowio.IndexZero, Sparse: true})
		return r, io.NopCloser(nil), err
	}
	f := &fake{}
	opts := options(10)
	opts.Epochs, opts.BatchSize, opts.Seed = 2, 30, 3
	var data fit.Data
	opts.OnData = func(d fit.Data) { data = d }
	if _, err := fit.Run(context.Background(), f, src, nil, opts); err != nil {
		t.Fatal(err)
	}
	if !data.Order.Grouped() || data.TrainRows != 900 || !slices.Equal(data.ClassCounts, []int{300, 300, 300}) {
		t.Fatalf("data %+v, want 900 rows reported grouped", data)
	}
	for i, b := range f.trained {
		var seen [3]bool
		for _, v := range b {
			seen[(int(v)-1)/300] = true
		}
		if !seen[0] || !seen[1] || !seen[2] {
			// 30 random rows of three equal classes all miss one with
			// probability 3 × (2/3)^30 ≈ 2e-5 a batch; the seed is fixed.
			t.Fatalf("batch %d holds rows of fewer than three classes: %v", i, b)
		}
	}
}

func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fake{cancel: cancel, cancelAfter: 5}
	opts := options(10)
	opts.Epochs, opts.BatchSize = 3, 10
	res, err := fit.Run(ctx, f, data(100, 3, 10), nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stopped != fit.StopInterrupted || res.Steps != 5 || f.steps != 5 {
		t.Fatalf("stopped %q after %d steps (%d run)", res.Stopped, res.Steps, f.steps)
	}
}

func TestRunCheckpointAndResume(t *testing.T) {
	dir := t.TempDir()
	opts := options(10)
	opts.Epochs, opts.BatchSize, opts.Seed = 2, 10, 7
	opts.CheckpointEvery, opts.CheckpointDir = 4, filepath.Join(dir, "ckpt")

	whole := &fake{}
	if _, err := fit.Run(context.Background(), whole, data(100, 3, 10), nil, opts); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	first := &fake{cancel: cancel, cancelAfter: 13}
	if _, err := fit.Run(ctx, first, data(100, 3, 10), nil, opts); err != nil {
		t.Fatal(err)
	}
	st, err := fit.ReadState(fit.StatePath(opts.CheckpointDir))
	if err != nil {
		t.Fatal(err)
	}
	if st.Epoch != 2 || st.Step != 2 || len(st.History) != 1 {
		t.Fatalf("state %+v, want epoch 2 step 2 after 12 of 20 steps", st)
	}
	opts.Resume = &st
	rest := &fake{}
	if _, err := fit.Run(context.Background(), rest, data(100, 3, 10), nil, opts); err != nil {
		t.Fatal(err)
	}
	// The resumed run trains exactly the batches the checkpointed run had not.
	replayed := append(slices.Clone(first.trained[:12]), rest.trained...)
	if len(replayed) != len(whole.trained) {
		t.Fatalf("%d batches across the two runs, %d in one", len(replayed), len(whole.trained))
	}
	for i := range replayed {
		if !slices.Equal(replayed[i], whole.trained[i]) {
			t.Fatalf("batch %d differs after resuming", i)
		}
	}
}

func TestClassWeights(t *testing.T) {
	w := fit.ClassWeights([]int{10, 30, 0})
	want := []float32{40.0 / 30, 40.0 / 90, 1}
	// Abs(NaN) <= tol is false, so a NaN weight fails too; so does a short slice.
	if !slices.EqualFunc(w, want, func(x, y float32) bool { return math.Abs(float64(x-y)) <= 1e-6 }) {
		t.Fatalf("weights %v, want %v", w, want)
	}
	f := &fake{}
	opts := options(10)
	opts.BatchSize, opts.KeepOrder, opts.ClassWeights = 10, true, []float32{1, 2, 3}
	if _, err := fit.Run(context.Background(), f, data(9, 3, 10), nil, opts); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.weights, []float32{1, 2, 3, 1, 2, 3, 1, 2, 3}) {
		t.Fatalf("sample weights %v", f.weights)
	}
	// Balanced weights from the training rows' class counts (3, 2, 2 of 7).
	f = &fake{}
	opts.ClassWeights, opts.BalanceClasses = nil, true
	if _, err := fit.Run(context.Background(), f, data(7, 3, 10), nil, opts); err != nil {
		t.Fatal(err)
	}
	a, b := float32(7.0/9), float32(7.0/6)
	if want := []float32{a, b, b, a, b, b, a}; !slices.EqualFunc(f.weights, want, func(x, y float32) bool { return math.Abs(float64(x-y)) < 1e-6 }) {
		t.Fatalf("balanced sample weights %v, want %v", f.weights, want)
	}
}

func TestLabelsParse(t *testing.T) {
	single := fit.NewLabelParser([]string{"cat", "dog", "7"}, false)
	multi := fit.NewLabelParser([]string{"cat", "dog", "emu"}, true)
	tests := map[string]struct {
		l       *fit.LabelParser
		in      []string
		want    []int
		wantErr bool
	}{
		"index":                 {l: single, in: []string{"1"}, want: []int{1}},
		"name":                  {l: single, in: []string{"dog"}, want: []int{1}},
		"name that is a number": {l: single, in: []string{"7"}, want: []int{2}},
		"float index":           {l: single, in: []string{"2.0"}, want: []int{2}},
		"out of range":          {l: single, in: []string{"3"}, wantErr: true},
		"unknown name":          {l: single, in: []string{"emu"}, wantErr: true},
		"two on single":         {l: single, in: []string{"0", "1"}, wantErr: true},
		"none on single":        {l: single, in: nil, wantErr: true},
		"multi":                 {l: multi, in: []string{"0", "emu"}, want: []int{0, 2}},
		"none on multi":         {l: multi, in: nil, want: nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := tc.l.Parse(tc.in)
			if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
				t.Fatalf("Parse(%q) = %v, %v", tc.in, got, err)
			}
		})
	}
}

func TestRunBadLabel(t *testing.T) {
	src := func() (rowio.RowReader, io.Closer, error) {
		r, err := rowio.NewLibSVMReader(strings.NewReader("0 1:1\n9 2:1\n"), "train.svm", rowio.LibSVMOptions{Dim: 10, Base: rowio.IndexZero, Sparse: true})
		return r, io.NopCloser(nil), err
	}
	_, err := fit.Run(context.Background(), &fake{}, src, nil, options(10))
	var pe *rowio.ParseError
	if !errors.As(err, &pe) || pe.Line != 2 || pe.Field != "label" || pe.Path != "train.svm" {
		t.Fatalf("error %v, want train.svm line 2 field label", err)
	}
}

func TestInferMultiLabel(t *testing.T) {
	for name, tc := range map[string]struct {
		text string
		want bool
	}{
		"one label a row":           {"0 1:1\n2 3:1\n1 0:1\n", false},
		"two labels on a later row": {"0 1:1\n2 3:1\n1,2 0:1\n", true},
		"empty file":                {"", false},
	} {
		t.Run(name, func(t *testing.T) {
			src := func() (rowio.RowReader, io.Closer, error) {
				r, err := rowio.NewLibSVMReader(strings.NewReader(tc.text), "x.svm", rowio.LibSVMOptions{Dim: 4, Base: rowio.IndexZero, Sparse: true})
				return r, io.NopCloser(nil), err
			}
			got, err := fit.InferMultiLabel(context.Background(), src)
			if err != nil || got != tc.want {
				t.Fatalf("InferMultiLabel = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
