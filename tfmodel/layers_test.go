package tfmodel_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/rowio"
	"github.com/kerasgo/kerasgo/sparse"
	"github.com/kerasgo/kerasgo/tfmodel"
)

// TestLayersMatchKeras ports models that carry the layers real models do:
// for each variant (scripts/tests/keras_variants.py) Keras builds, trains
// and saves a .keras file in the test itself, the exporter ports it (scripts/make_layer_case.py), and
// the Go runtime must predict within 1e-5 of Keras, take five train steps
// within 1e-4 of Keras' train_on_batch (losses and every variable, batch
// statistics included), and save a model TensorFlow loads and predicts with.
func TestLayersMatchKeras(t *testing.T) {
	py := os.Getenv("KERASGO_PYTHON")
	if py == "" {
		t.Fatal("KERASGO_PYTHON is not set: run the tests with `make test` (or eval \"$(scripts/setup_tf.sh --env)\")")
	}
	for _, tc := range []struct {
		variant string
		sparse  bool // labels are class indices
		csr     bool // the sparse signatures' first layer is a CSR product (one Dense layer reads the input)
	}{{"batchnorm_first", false, false}, {"l1l2", false, true}, {"softmax_scce", true, true}} {
		t.Run(tc.variant, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cmd := exec.Command(py, filepath.Join("..", "scripts", "make_layer_case.py"), "--variant", tc.variant, "--out", dir)
			cmd.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("make_layer_case.py: %v\n%s", err, out)
			}
			read := func(name string) dense.Matrix {
				m, err := rowio.ReadNPYFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			x, want, losses := read("x.npy"), read("probabilities.npy"), read("losses.npy")
			tx, ty := read("train_x.npy"), read("train_y.npy")
			m := loadModel(t, filepath.Join(dir, "exported"), tfmodel.DefaultOptions())
			ctx := context.Background()
			got, err := m.Predict(ctx, x)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(t, got, want); d > 1e-5 {
				t.Errorf("predict: max |Go - Keras| = %g, want <= 1e-5", d)
			}
			if got := m.SparseFromEntries(); got != tc.csr {
				t.Errorf("SparseFromEntries() = %v, want %v (metadata sparse_product %q)", got, tc.csr, m.Metadata().SparseProduct)
			}
			if m.SparsePredictable() {
				for _, rows := range []string{"flags", "counts", "tfidf"} {
					got, err := m.PredictSparse(ctx, sparse.FromDense(read(rows+"_x.npy")))
					if err != nil {
						t.Fatal(err)
					}
					if d := maxAbsDiff(t, got, read(rows+"_probabilities.npy")); d > 1e-5 {
						t.Errorf("predict_sparse on %s: max |Go - Keras| = %g, want <= 1e-5", rows, d)
					}
				}
			}
			wantW, err := rowio.ReadNPZFile(filepath.Join(dir, "weights.npz"))
			if err != nil {
				t.Fatal(err)
			}
			// Keras' steps through the dense train signature, and through the
			// sparse one (the CSR product and its gradient) on a second copy.
			trainLikeKeras := func(m *tfmodel.Model, route string) {
				batch := tx.Rows / len(losses.Data)
				for step := range losses.Data {
					from, to := step*batch, (step+1)*batch
					labels := tfmodel.Labels{Matrix: ty.Slice(from, to)}
					if tc.sparse {
						labels = tfmodel.Labels{Classes: make([]int64, to-from)}
						for i := range labels.Classes {
							labels.Classes[i] = int64(ty.Data[from+i])
						}
					}
					var r tfmodel.StepResult
					var err error
					if route == "sparse" {
						r, err = m.TrainStepSparse(ctx, sparse.FromDense(tx.Slice(from, to)), labels, nil)
					} else {
						r, err = m.TrainStep(ctx, tx.Slice(from, to), labels, nil)
					}
					if err != nil {
						t.Fatalf("%s step %d: %v", route, step, err)
					}
					if d := math.Abs(r.Loss - float64(losses.Data[step])); !(d <= 1e-4) {
						t.Errorf("%s step %d loss %.7f, Keras %.7f", route, step, r.Loss, losses.Data[step])
					}
				}
				weights, err := m.Weights(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for k, w := range wantW {
					g, ok := weights[k]
					if !ok {
						t.Errorf("variable %s: not in the export's get_weights", k)
						continue
					}
					if d := maxAbsDiff(t, g, w); d > 1e-4 {
						t.Errorf("%s steps: variable %s: max |Go - Keras| = %g, want <= 1e-4", route, k, d)
					}
				}
			}
			if m.HasRole(tfmodel.RoleTrainSparse) {
				trainLikeKeras(loadModel(t, filepath.Join(dir, "exported"), tfmodel.DefaultOptions()), "sparse")
			}
			trainLikeKeras(m, "dense")
			saved := filepath.Join(dir, "saved")
			if err := m.Save(ctx, saved); err != nil {
				t.Fatal(err)
			}
			trained, err := m.Predict(ctx, x)
			if err != nil {
				t.Fatal(err)
			}
			rows := make([][]float32, trained.Rows)
			for i := range rows {
				rows[i] = trained.Row(i)
			}
			b, err := json.Marshal(rows)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "go.json"), b, 0o644); err != nil {
				t.Fatal(err)
			}
			runPython(t, `
import json, sys, numpy as np, tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
x, want = np.load(sys.argv[2]), np.asarray(json.load(open(sys.argv[3])), np.float32)
got = m.signatures["serving_default"](features=tf.constant(x))["probabilities"].numpy()
d = float(np.max(np.abs(got - want)))
assert d <= 1e-5, f"TensorFlow's prediction of the saved model differs from Go's by {d}"
`, saved, filepath.Join(dir, "x.npy"), filepath.Join(dir, "go.json"))
		})
	}
}
