package kerasgo_test

// Coming from tfgo (github.com/galeone/tfgo): the same model run through
// tfgo and through kerasgo gives Keras' numbers, and what tfgo's issue
// tracker asks for — errors instead of panics (#57), use from many
// goroutines (#76), several models without leaks (#34) — holds in kerasgo.

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	tg "github.com/galeone/tfgo"

	"github.com/kerasgo/kerasgo"
	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/sparse"
	"github.com/kerasgo/kerasgo/tfmodel"
)

// tfgoOutput returns the graph output a signature tensor ("op:index")
// names, the way tfgo's users write it: model.Op(name, index).
func tfgoOutput(tb testing.TB, m *tg.Model, tensor string) tf.Output {
	tb.Helper()
	op, idx, ok := strings.Cut(tensor, ":")
	if !ok {
		idx = "0"
	}
	i, err := strconv.Atoi(idx)
	if err != nil {
		tb.Fatalf("tensor name %q: %v", tensor, err)
	}
	return m.Op(op, i)
}

// tfgoTensor copies a matrix into the [][]float32 tf.NewTensor takes.
func tfgoTensor(tb testing.TB, x dense.Matrix) *tf.Tensor {
	tb.Helper()
	rows := make([][]float32, x.Rows)
	for i := range rows {
		rows[i] = x.Row(i)
	}
	t, err := tf.NewTensor(rows)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// tfgoServing returns the feed and fetch of the serving_default signature,
// with the op names read from the signature, not guessed: on the bundled
// fortunes model the usual guess, StatefulPartitionedCall:0, is
// evaluate_step's loss.
func tfgoServing(tb testing.TB, tm *tg.Model, km *kerasgo.Model) (in, out tf.Output) {
	tb.Helper()
	sig, ok := km.Runtime().Signatures()["serving_default"]
	if !ok {
		tb.Fatal("no serving_default signature")
	}
	inSpec, okIn := sig.Inputs["features"]
	outSpec, okOut := sig.Outputs["probabilities"]
	if !okIn || !okOut {
		tb.Fatalf("serving_default takes %v and returns %v, not features and probabilities", sig.InputNames(), sig.OutputNames())
	}
	tb.Logf("serving_default: features = %s, probabilities = %s", inSpec.Name, outSpec.Name)
	return tfgoOutput(tb, tm, inSpec.Name), tfgoOutput(tb, tm, outSpec.Name)
}

// panics reports whether f panics, and with what.
func panics(f func()) (v any, ok bool) {
	defer func() {
		if v = recover(); v != nil {
			ok = true
		}
	}()
	f()
	return nil, false
}

func TestTfgoAndKerasgoAgreeWithKeras(t *testing.T) {
	dir := filepath.Join("testdata", "models", "fortunes")
	x, want := golden(t, "fortunes_inputs.npy"), golden(t, "fortunes_probabilities.npy")

	km := open(t, "fortunes")
	got, err := km.Predict(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	checkClose(t, "kerasgo", got, want)

	tm := tg.LoadModel(dir, []string{"serve"}, nil)
	in, out := tfgoServing(t, tm, km)
	res := tm.Exec([]tf.Output{out}, map[tf.Output]*tf.Tensor{in: tfgoTensor(t, x)})
	rows, ok := res[0].Value().([][]float32)
	if !ok {
		t.Fatalf("tfgo returned a %T, not [][]float32", res[0].Value())
	}
	fromTfgo, err := dense.FromRows(rows)
	if err != nil {
		t.Fatal(err)
	}
	checkClose(t, "tfgo", fromTfgo, want)
}

func TestTfgoIssues(t *testing.T) {
	ctx := context.Background()
	fortunes := filepath.Join("testdata", "models", "fortunes")
	x, want := golden(t, "fortunes_inputs.npy"), golden(t, "fortunes_probabilities.npy")

	tests := map[string]func(t *testing.T){
		// tfgo panics on every failure; kerasgo returns errors callers match
		// with errors.Is.
		"tfgo#57 errors instead of panics": func(t *testing.T) {
			km := open(t, "fortunes")
			tm := tg.LoadModel(fortunes, []string{"serve"}, nil)
			in, out := tfgoServing(t, tm, km)
			narrow := dense.New(1, 10)
			for i := range narrow.Data {
				narrow.Data[i] = 1
			}
			cases := map[string]struct {
				kerasgo func(t *testing.T) error
				want    error
				tfgo    func(t *testing.T) // must panic
			}{
				"missing directory": {
					kerasgo: func(t *testing.T) error {
						_, err := kerasgo.Open(ctx, filepath.Join(t.TempDir(), "missing"), kerasgo.DefaultOptions())
						return err
					},
					want: fs.ErrNotExist,
					tfgo: func(t *testing.T) {
						tg.LoadModel(filepath.Join(t.TempDir(), "missing"), []string{"serve"}, nil)
					},
				},
				"not a SavedModel": {
					kerasgo: func(t *testing.T) error {
						_, err := kerasgo.Open(ctx, t.TempDir(), kerasgo.DefaultOptions())
						return err
					},
					want: tfmodel.ErrNotSavedModel,
					tfgo: func(t *testing.T) { tg.LoadModel(t.TempDir(), []string{"serve"}, nil) },
				},
				"wrong input width": {
					kerasgo: func(*testing.T) error {
						_, err := km.Predict(ctx, narrow)
						return err
					},
					want: tfmodel.ErrShape,
					tfgo: func(t *testing.T) {
						tm.Exec([]tf.Output{out}, map[tf.Output]*tf.Tensor{in: tfgoTensor(t, narrow)})
					},
				},
				"unknown signature or op": {
					kerasgo: func(*testing.T) error {
						_, err := km.Runtime().Run(ctx, "no_such_signature", nil)
						return err
					},
					want: tfmodel.ErrUnknownSignature,
					tfgo: func(*testing.T) { tm.Op("no_such_op", 0) },
				},
			}
			for name, tc := range cases {
				t.Run(name, func(t *testing.T) {
					if err := tc.kerasgo(t); !errors.Is(err, tc.want) {
						t.Errorf("kerasgo: error %v, want one matching %v", err, tc.want)
					}
					if v, ok := panics(func() { tc.tfgo(t) }); !ok {
						t.Error("tfgo did not panic")
					} else {
						t.Logf("tfgo panicked: %v", v)
					}
				})
			}
		},

		// One *kerasgo.Model from many goroutines, through each way in.
		"tfgo#76 concurrent use": func(t *testing.T) {
			km := open(t, "fortunes")
			texts := goldenTexts(t)
			csr := sparse.FromDense(x)
			calls := []func() (dense.Matrix, error){
				func() (dense.Matrix, error) { return km.Predict(ctx, x) },
				func() (dense.Matrix, error) { return km.PredictSparse(ctx, csr) },
				func() (dense.Matrix, error) { return km.PredictText(ctx, texts) },
			}
			const goroutines = 32
			got := make([]dense.Matrix, goroutines)
			errs := make([]error, goroutines)
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() { got[g], errs[g] = calls[g%len(calls)]() })
			}
			wg.Wait()
			for g := range goroutines {
				if errs[g] != nil {
					t.Fatalf("goroutine %d: %v", g, errs[g])
				}
				checkClose(t, "goroutine "+strconv.Itoa(g), got[g], want)
			}
		},

		// Open and Close in a loop, and two models side by side. Close frees
		// the session now (tfgo has no Close: only a finalizer, whenever the
		// garbage collector runs it). RSS over load/close cycles is measured
		// by tfmodel's TestNoLeak, without -race.
		"tfgo#34 several models": func(t *testing.T) {
			closeTwice := func(t *testing.T, m *kerasgo.Model) {
				t.Helper()
				for range 2 {
					if err := m.Close(); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := m.Predict(ctx, x.Slice(0, 1)); !errors.Is(err, tfmodel.ErrClosed) {
					t.Fatalf("predict after Close: error %v, want %v", err, tfmodel.ErrClosed)
				}
			}
			for range 20 {
				m, err := kerasgo.Open(ctx, fortunes, kerasgo.DefaultOptions())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := m.Predict(ctx, x.Slice(0, 1)); err != nil {
					t.Fatal(err)
				}
				closeTwice(t, m)
			}
			both := map[string]*kerasgo.Model{}
			for _, name := range []string{"fortunes", "debtags"} {
				m, err := kerasgo.Open(ctx, filepath.Join("testdata", "models", name), kerasgo.DefaultOptions())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { m.Close() })
				both[name] = m
			}
			// Both models predict at the same time.
			inputs, got, errs := map[string]dense.Matrix{}, map[string]dense.Matrix{}, map[string]error{}
			for name := range both {
				inputs[name] = golden(t, name+"_inputs.npy")
			}
			var mu sync.Mutex
			var wg sync.WaitGroup
			for name, m := range both {
				wg.Go(func() {
					p, err := m.Predict(ctx, inputs[name])
					mu.Lock()
					defer mu.Unlock()
					got[name], errs[name] = p, err
				})
			}
			wg.Wait()
			for name := range both {
				if errs[name] != nil {
					t.Fatalf("%s: %v", name, errs[name])
				}
				checkClose(t, name, got[name], golden(t, name+"_probabilities.npy"))
			}
			for _, m := range both {
				closeTwice(t, m)
			}
		},
	}
	for name, test := range tests {
		t.Run(name, test)
	}
}
