package tfmodel_test

import (
	"context"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/sparse"
	"github.com/kerasgo/kerasgo/tensor"
	"github.com/kerasgo/kerasgo/tfmodel"
)

// copyDir copies a SavedModel so a test can damage it.
func copyDir(tb testing.TB, src string) string {
	tb.Helper()
	dst := filepath.Join(tb.TempDir(), filepath.Base(src))
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		tb.Fatal(err)
	}
	return dst
}

func TestLoadErrors(t *testing.T) {
	fortunes := filepath.Join(testdata, "models", "fortunes")
	tests := map[string]struct {
		dir     func(testing.TB) string
		tags    []string
		wantErr error
	}{
		"missing dir": {dir: func(testing.TB) string { return "/nonexistent/model" }, wantErr: fs.ErrNotExist},
		"empty dir":   {dir: func(tb testing.TB) string { return tb.TempDir() }, wantErr: tfmodel.ErrNotSavedModel},
		"garbage saved_model.pb": {dir: func(tb testing.TB) string {
			d := copyDir(tb, fortunes)
			if err := os.WriteFile(filepath.Join(d, "saved_model.pb"), []byte("\xff\xfenot a protobuf"), 0o644); err != nil {
				tb.Fatal(err)
			}
			return d
		}, wantErr: tfmodel.ErrNotSavedModel},
		"unknown tag": {dir: func(testing.TB) string { return fortunes }, tags: []string{"gpu"}, wantErr: tfmodel.ErrUnknownTag},
		"missing variables": {dir: func(tb testing.TB) string {
			d := copyDir(tb, fortunes)
			if err := os.RemoveAll(filepath.Join(d, "variables")); err != nil {
				tb.Fatal(err)
			}
			return d
		}, wantErr: tfmodel.ErrCorrupt},
		"truncated variables": {dir: func(tb testing.TB) string {
			d := copyDir(tb, fortunes)
			if err := os.Truncate(filepath.Join(d, "variables", "variables.data-00000-of-00001"), 1000); err != nil {
				tb.Fatal(err)
			}
			return d
		}, wantErr: tfmodel.ErrCorrupt},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			opts := tfmodel.DefaultOptions()
			if tc.tags != nil {
				opts.Tags = tc.tags
			}
			m, err := tfmodel.Load(context.Background(), tc.dir(t), opts)
			if err == nil {
				m.Close()
				t.Fatal("Load succeeded")
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Load error %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	g := readGolden(t)
	e := g.Models["fortunes"]
	m := loadModel(t, filepath.Join(testdata, e.Model), tfmodel.DefaultOptions())
	plain := loadModel(t, filepath.Join(testdata, "models", "fortunes_export"), tfmodel.DefaultOptions())
	ctx := context.Background()
	good := readNPY(t, e.Inputs).Slice(0, 4)
	nan := dense.New(2, 256)
	nan.Row(1)[7] = float32(math.NaN())
	onehot := readNPY(t, e.TrainY).Slice(0, 4)

	tests := map[string]struct {
		call    func() error
		wantErr error
		wantRow int
	}{
		"wrong feature count": {call: func() error { _, err := m.Predict(ctx, dense.New(2, 255)); return err }, wantErr: tfmodel.ErrShape},
		"inconsistent matrix": {call: func() error {
			_, err := m.Predict(ctx, dense.Matrix{Rows: 2, Cols: 256, Data: make([]float32, 10)})
			return err
		}, wantErr: tfmodel.ErrShape},
		"empty batch": {call: func() error { _, err := m.Predict(ctx, dense.New(0, 256)); return err }, wantErr: tfmodel.ErrEmptyBatch},
		// TensorFlow's own INVALID_ARGUMENT ("Expects arg[0] to be float but
		// double is provided"; "In[0] is not a matrix") is the caller's.
		"dtype TensorFlow refuses": {call: func() error {
			_, err := m.RunTensors(ctx, tfmodel.DefaultPredictSignature, map[string]tensor.Tensor{
				plainInput(t, m): {DType: tensor.Float64, Shape: []int64{1, 256}, Data: make([]float64, 256)}})
			return err
		}, wantErr: tfmodel.ErrInvalidArgument},
		"rank TensorFlow refuses": {call: func() error {
			_, err := m.RunTensors(ctx, tfmodel.DefaultPredictSignature, map[string]tensor.Tensor{
				plainInput(t, m): {DType: tensor.Float32, Shape: []int64{256}, Data: make([]float32, 256)}})
			return err
		}, wantErr: tfmodel.ErrInvalidArgument},
		"NaN feature": {call: func() error { _, err := m.Predict(ctx, nan); return err }, wantErr: tfmodel.ErrNonFinite, wantRow: 1},
		"label rows": {call: func() error {
			_, err := m.TrainStep(ctx, good, tfmodel.Labels{Matrix: onehot.Slice(0, 3)}, nil)
			return err
		}, wantErr: tfmodel.ErrLabels},
		"label classes": {call: func() error {
			_, err := m.TrainStep(ctx, good, tfmodel.Labels{Classes: []int64{0, 1, 2, 20}}, nil)
			return err
		}, wantErr: tfmodel.ErrLabels, wantRow: 3},
		"no labels": {call: func() error { _, err := m.TrainStep(ctx, good, tfmodel.Labels{}, nil); return err }, wantErr: tfmodel.ErrLabels},
		"sample weights": {call: func() error {
			_, err := m.TrainStep(ctx, good, tfmodel.Labels{Matrix: onehot}, []float32{1})
			return err
		}, wantErr: tfmodel.ErrShape},
		"train without training signature": {call: func() error {
			_, err := plain.TrainStep(ctx, good, tfmodel.Labels{Matrix: onehot}, nil)
			return err
		}, wantErr: tfmodel.ErrNotTrainable},
		"unknown signature": {call: func() error { _, err := m.Run(ctx, "nope", nil); return err }, wantErr: tfmodel.ErrUnknownSignature},
		"run wrong dtype": {call: func() error {
			_, err := m.Run(ctx, "serving_default", map[string]any{"features": [][]int64{{1}}})
			return err
		}, wantErr: tfmodel.ErrUnsupportedDType},
		"sparse column out of range": {call: func() error {
			_, err := m.PredictSparse(ctx, sparse.CSR{Rows: 1, Cols: 256, RowPtr: []int{0, 1}, Indices: []int32{256}, Values: []float32{1}})
			return err
		}, wantErr: tfmodel.ErrShape},
		"sparse width": {call: func() error {
			_, err := m.PredictSparse(ctx, sparse.FromDense(dense.New(1, 10)))
			return err
		}, wantErr: tfmodel.ErrShape},
		"sparse NaN": {call: func() error {
			_, err := m.PredictSparse(ctx, sparse.FromDense(nan))
			return err
		}, wantErr: tfmodel.ErrNonFinite, wantRow: 1},
		"sparse on a plain export": {call: func() error {
			_, err := plain.PredictSparse(ctx, sparse.FromDense(good))
			return err
		}, wantErr: tfmodel.ErrUnknownSignature},
		"canceled context": {call: func() error {
			c, cancel := context.WithCancel(ctx)
			cancel()
			_, err := m.Predict(c, good)
			return err
		}, wantErr: context.Canceled},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			var ie *tfmodel.InputError
			if tc.wantRow > 0 && (!errors.As(err, &ie) || ie.Row != tc.wantRow) {
				t.Fatalf("error %v does not locate row %d", err, tc.wantRow)
			}
		})
	}
	if ok, why := plain.Trainable(); ok || why == "" {
		t.Errorf("plain export Trainable() = %v, %q; want false with a reason", ok, why)
	}
}

// TestAllowNonFinite checks what Options.AllowNonFinite promises: NaN and
// ±Inf reach the model instead of being rejected, the call succeeds with one
// output row per input row, and the finite rows score as they do without
// the non-finite row beside them. What TensorFlow computes for the
// non-finite row itself is not asserted: it depends on the CPU's kernels
// (on an AVX-512 machine, TensorFlow's Eigen kernels give NaN and its oneDNN
// kernels a finite number; TF_ENABLE_ONEDNN_OPTS picks between them).
// plainInput is the one input of the model's prediction signature.
func plainInput(tb testing.TB, m *tfmodel.Model) string {
	tb.Helper()
	sig, ok := m.Signatures()[tfmodel.DefaultPredictSignature]
	if !ok || len(sig.Inputs) != 1 {
		tb.Fatalf("no one-input %s signature", tfmodel.DefaultPredictSignature)
	}
	return sig.InputNames()[0]
}

func TestAllowNonFinite(t *testing.T) {
	g := readGolden(t)
	e := g.Models["fortunes"]
	opts := tfmodel.DefaultOptions()
	opts.AllowNonFinite = true
	m := loadModel(t, filepath.Join(testdata, e.Model), opts)
	ctx := context.Background()
	keras := readNPY(t, e.Probabilities)

	// Golden rows 0 and 2 stay as they are; row 1, in the middle of the batch,
	// holds +Inf, NaN and -Inf among its features.
	x := dense.New(3, 256)
	copy(x.Data, readNPY(t, e.Inputs).Slice(0, 3).Data)
	x.Row(1)[0] = float32(math.Inf(1))
	x.Row(1)[7] = float32(math.NaN())
	x.Row(1)[255] = float32(math.Inf(-1))
	finite := []int{0, 2}

	tests := map[string]func(dense.Matrix) (dense.Matrix, error){
		"dense": func(x dense.Matrix) (dense.Matrix, error) { return m.Predict(ctx, x) },
		"sparse": func(x dense.Matrix) (dense.Matrix, error) {
			return m.PredictSparse(ctx, sparse.FromDense(x))
		},
	}
	for name, predict := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := predict(x)
			if err != nil {
				t.Fatalf("with AllowNonFinite: %v", err)
			}
			if got.Rows != x.Rows || got.Cols != keras.Cols || got.Validate() != nil {
				t.Fatalf("output %d×%d (%v), want %d×%d", got.Rows, got.Cols, got.Validate(), x.Rows, keras.Cols)
			}
			for _, i := range finite {
				// Alone, the row meets no non-finite value; a batch of another
				// size may sum in another order, hence the tolerance.
				alone, err := predict(x.Slice(i, i+1))
				if err != nil {
					t.Fatal(err)
				}
				if d := maxAbsDiff(t, got.Slice(i, i+1), alone); d > 1e-6 {
					t.Errorf("row %d beside a non-finite row: max |batch - alone| = %g, want <= 1e-6", i, d)
				}
				if d := maxAbsDiff(t, got.Slice(i, i+1), keras.Slice(i, i+1)); d > 1e-5 {
					t.Errorf("row %d beside a non-finite row: max |Go - Keras| = %g, want <= 1e-5", i, d)
				}
			}
		})
	}
}

func TestClose(t *testing.T) {
	g := readGolden(t)
	e := g.Models["fortunes"]
	m, err := tfmodel.Load(context.Background(), filepath.Join(testdata, e.Model), tfmodel.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	x := readNPY(t, e.Inputs)
	// 100 predictions in flight while Close runs: each succeeds or sees ErrClosed.
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Go(func() {
			_, err := m.Predict(context.Background(), x)
			errs <- err
		})
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, tfmodel.ErrClosed) {
			t.Fatalf("prediction during Close: %v", err)
		}
	}
	if _, err := m.Predict(context.Background(), x); !errors.Is(err, tfmodel.ErrClosed) {
		t.Fatalf("Predict after Close = %v, want ErrClosed", err)
	}
	if err := m.Save(context.Background(), t.TempDir()+"/m"); !errors.Is(err, tfmodel.ErrClosed) {
		t.Fatalf("Save after Close = %v, want ErrClosed", err)
	}
}

// TestConcurrentUse runs predictions from 128 goroutines under -race, each
// checked against Keras' answer for its row, then predictions while the
// collector runs non-stop, then predictions interleaved with training steps.
func TestConcurrentUse(t *testing.T) {
	g := readGolden(t)
	e := g.Models["fortunes"]
	m := loadModel(t, filepath.Join(testdata, e.Model), tfmodel.DefaultOptions())
	ctx := context.Background()
	x := readNPY(t, e.Inputs)
	want := readNPY(t, e.Probabilities)
	var wg sync.WaitGroup
	for i := range 128 {
		wg.Go(func() {
			row := i % x.Rows
			got, err := m.Predict(ctx, x.Slice(row, row+1))
			if err != nil {
				t.Error(err)
				return
			}
			if got.Rows != 1 || got.Cols != want.Cols {
				t.Errorf("goroutine %d: output %d×%d, want 1×%d", i, got.Rows, got.Cols, want.Cols)
				return
			}
			// Shapes checked: maxAbsDiff cannot call Fatal off the test goroutine.
			if d := maxAbsDiff(t, got, want.Slice(row, row+1)); d > 1e-5 {
				t.Errorf("goroutine %d: row %d: max |Go - Keras| = %g, want <= 1e-5", i, row, d)
			}
		})
	}
	wg.Wait()

	// Predictions while the collector runs non-stop: output tensors must stay
	// alive while C reads them. Before readMatrix kept them alive, 64 clients
	// on the D=10,000 model crashed `kerasgo serve` with a SIGSEGV in
	// TF_TensorByteSize; this small model's short C calls rarely hit that
	// window, so this exercises the path rather than reproducing the crash.
	stop := make(chan struct{})
	var gc sync.WaitGroup
	gc.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				runtime.GC()
			}
		}
	})
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if _, err := m.Predict(ctx, x.Slice(0, 1)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	gc.Wait()

	// Training and predicting at once: no race, no error.
	tx, ty := readNPY(t, e.TrainX), readNPY(t, e.TrainY)
	for i := range 16 {
		wg.Go(func() {
			var err error
			if i%4 == 0 {
				_, err = m.TrainStep(ctx, tx.Slice(0, 32), tfmodel.Labels{Matrix: ty.Slice(0, 32)}, nil)
			} else {
				_, err = m.Predict(ctx, x)
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}
