package tfmodel_test

import (
	"context"
	"errors"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kerasgo/kerasgo/rowio"
	"github.com/kerasgo/kerasgo/sparse"
	"github.com/kerasgo/kerasgo/tfmodel"
)

// trainLikeKeras runs the golden training batches through TrainStep and
// returns the losses.
func trainLikeKeras(tb testing.TB, m *tfmodel.Model, e goldenEntry) []float64 {
	return trainGolden(tb, m, e, false)
}

// trainGolden is trainLikeKeras, with sparse feeding the batches through the
// sparse training signature.
func trainGolden(tb testing.TB, m *tfmodel.Model, e goldenEntry, sparseBatches bool) []float64 {
	tb.Helper()
	x, y := readNPY(tb, e.TrainX), readNPY(tb, e.TrainY)
	var losses []float64
	for s := range e.TrainSteps {
		from, to := s*e.TrainBatch, (s+1)*e.TrainBatch
		labels := tfmodel.Labels{Matrix: y.Slice(from, to)}
		var r tfmodel.StepResult
		var err error
		if sparseBatches {
			r, err = m.TrainStepSparse(context.Background(), sparse.FromDense(x.Slice(from, to)), labels, nil)
		} else {
			r, err = m.TrainStep(context.Background(), x.Slice(from, to), labels, nil)
		}
		if err != nil {
			tb.Fatal(err)
		}
		losses = append(losses, r.Loss)
	}
	return losses
}

// TestTrainStepsMatchKeras runs the same five steps Keras' train_on_batch ran
// from the same exported state, and compares losses and weights.
func TestTrainStepsMatchKeras(t *testing.T) {
	g := readGolden(t)
	for _, tc := range []struct {
		name   string
		sparse bool
	}{{"fortunes", false}, {"debtags", false}, {"fortunes", true}, {"debtags", true}} {
		name := tc.name
		label := name
		if tc.sparse {
			label += "/sparse"
		}
		t.Run(label, func(t *testing.T) {
			e := g.Models[name]
			m := loadModel(t, filepath.Join(testdata, e.Model), tfmodel.DefaultOptions())
			ctx := context.Background()
			x, y := readNPY(t, e.TrainX), readNPY(t, e.TrainY)
			before, err := m.EvaluateStep(ctx, x, tfmodel.Labels{Matrix: y}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.sparse {
				sb, err := m.EvaluateStepSparse(ctx, sparse.FromDense(x), tfmodel.Labels{Matrix: y}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !(math.Abs(sb.Loss-before.Loss) <= 1e-6) { // NaN fails too
					t.Fatalf("sparse evaluation loss %v, dense %v", sb.Loss, before.Loss)
				}
			}
			losses := trainGolden(t, m, e, tc.sparse)
			want := readNPY(t, e.TrainLosses)
			for i, l := range losses {
				if d := math.Abs(l - float64(want.Data[i])); !(d <= 1e-4) { // NaN fails too
					t.Errorf("step %d loss %.7f, Keras %.7f", i, l, want.Data[i])
				}
			}
			after, err := m.EvaluateStep(ctx, x, tfmodel.Labels{Matrix: y}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !(after.Loss < before.Loss) {
				t.Errorf("loss on the training batches went from %.5f to %.5f, want lower", before.Loss, after.Loss)
			}
			weights, err := m.Weights(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wantW, err := rowio.ReadNPZFile(filepath.Join(testdata, "golden", e.TrainWeights))
			if err != nil {
				t.Fatal(err)
			}
			if len(weights) != len(wantW) || len(weights) == 0 {
				t.Fatalf("%d weights, Keras has %d", len(weights), len(wantW))
			}
			for k, w := range wantW {
				if d := maxAbsDiff(t, weights[k], w); d > 1e-4 {
					t.Errorf("weight %s: max |Go - Keras| = %g, want <= 1e-4", k, d)
				}
			}
		})
	}
}

func TestLabelForms(t *testing.T) {
	g := readGolden(t)
	e := g.Models["fortunes"]
	m := loadModel(t, filepath.Join(testdata, e.Model), tfmodel.DefaultOptions())
	x, y := readNPY(t, e.TrainX).Slice(0, 8), readNPY(t, e.TrainY).Slice(0, 8)
	classes := make([]int64, y.Rows)
	for i := range y.Rows {
		for j, v := range y.Row(i) {
			if v == 1 {
				classes[i] = int64(j)
			}
		}
	}
	ctx := context.Background()
	a, err := m.EvaluateStep(ctx, x, tfmodel.Labels{Matrix: y}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.EvaluateStep(ctx, x, tfmodel.Labels{Classes: classes}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Loss != b.Loss {
		t.Fatalf("one-hot loss %v, class-index loss %v", a.Loss, b.Loss)
	}
	// Zero sample weights on all but the first row give the first row's loss / 8.
	w := make([]float32, 8)
	w[0] = 1
	c, err := m.EvaluateStep(ctx, x, tfmodel.Labels{Classes: classes}, w)
	if err != nil {
		t.Fatal(err)
	}
	one, err := m.EvaluateStep(ctx, x.Slice(0, 1), tfmodel.Labels{Classes: classes[:1]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Abs(c.Loss - one.Loss/8); !(d <= 1e-6) { // NaN fails too
		t.Fatalf("weighted loss %v, want %v", c.Loss, one.Loss/8)
	}
}

// TestSaveRoundTrip trains in Go, saves, and checks that TensorFlow (Python)
// loads the result and scores exactly as Go does, and that Go can load it
// again and keep training.
func TestSaveRoundTrip(t *testing.T) {
	g := readGolden(t)
	e := g.Models["fortunes"]
	m := loadModel(t, filepath.Join(testdata, e.Model), tfmodel.DefaultOptions())
	trainLikeKeras(t, m, e)
	ctx := context.Background()
	x := readNPY(t, e.Inputs)
	goProbs, err := m.Predict(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "retrained")
	if err := m.Save(ctx, out); err != nil {
		t.Fatal(err)
	}
	assertSavedModelFiles(t, out)

	// TensorFlow loads it: tf.saved_model.load and keras.layers.TFSMLayer.
	pyOut := filepath.Join(t.TempDir(), "py.npy")
	runPython(t, `
import sys, numpy as np, tensorflow as tf, keras
model_dir, x_path, out_path = sys.argv[1:]
x = np.load(x_path)
p1 = tf.saved_model.load(model_dir).signatures["serving_default"](features=tf.constant(x))["probabilities"].numpy()
p2 = keras.layers.TFSMLayer(model_dir, call_endpoint="serving_default")(x)["probabilities"].numpy()
assert np.array_equal(p1, p2), "TFSMLayer and tf.saved_model.load disagree"
np.save(out_path, p1)
`, out, filepath.Join(testdata, "golden", e.Inputs), pyOut)
	pyProbs, err := rowio.ReadNPYFile(pyOut)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(t, pyProbs, goProbs); d > 1e-5 {
		t.Fatalf("TensorFlow on the saved model vs Go: max diff %g, want <= 1e-5", d)
	}
	orig := readNPY(t, e.Probabilities)
	if d := maxAbsDiff(t, goProbs, orig); d == 0 {
		t.Fatal("training changed nothing: probabilities equal the untrained model's")
	}

	// Go loads it again, scores the same and keeps training.
	m2 := loadModel(t, out, tfmodel.DefaultOptions())
	again, err := m2.Predict(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(t, again, goProbs); d > 1e-6 {
		t.Fatalf("reloaded model scores differently: %g", d)
	}
	before, _ := m2.Weights(ctx)
	trainLikeKeras(t, m2, e)
	after, _ := m2.Weights(ctx)
	if maxAbsDiff(t, before["probabilities__kernel"], after["probabilities__kernel"]) == 0 {
		t.Fatal("training the reloaded model changed no weight")
	}
}

func assertSavedModelFiles(tb testing.TB, dir string) {
	tb.Helper()
	for _, f := range []string{"saved_model.pb", "variables/variables.index", "assets/kerasgo.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			tb.Errorf("saved model lacks %s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "fingerprint.pb")); !errors.Is(err, os.ErrNotExist) {
		tb.Errorf("stale fingerprint.pb copied: %v", err)
	}
	entries, err := os.ReadDir(filepath.Dir(dir))
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			tb.Errorf("temporary directory left behind: %s", e.Name())
		}
	}
}

// runPython runs a script with the TensorFlow virtualenv's interpreter, which
// `make test` names in KERASGO_PYTHON.
func runPython(tb testing.TB, script string, args ...string) {
	tb.Helper()
	py := os.Getenv("KERASGO_PYTHON")
	if py == "" {
		tb.Fatal("KERASGO_PYTHON is not set: run the tests with `make test` (or eval \"$(scripts/setup_tf.sh --env)\")")
	}
	cmd := exec.Command(py, append([]string{"-c", script}, args...)...)
	cmd.Env = append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("python: %v\n%s", err, out)
	}
}

func TestSaveFailureKeepsExistingModel(t *testing.T) {
	g := readGolden(t)
	e := g.Models["fortunes"]
	m := loadModel(t, filepath.Join(testdata, e.Model), tfmodel.DefaultOptions())
	out := filepath.Join(t.TempDir(), "model")
	ctx := context.Background()
	if err := m.Save(ctx, out); err != nil {
		t.Fatal(err)
	}
	index, err := os.ReadFile(filepath.Join(out, "variables", "variables.index"))
	if err != nil {
		t.Fatal(err)
	}
	trainLikeKeras(t, m, e)
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := m.Save(canceled, out); !errors.Is(err, context.Canceled) {
		t.Fatalf("Save with a canceled context = %v, want context.Canceled", err)
	}
	after, err := os.ReadFile(filepath.Join(out, "variables", "variables.index"))
	if err != nil || string(after) != string(index) {
		t.Fatalf("existing model changed by a failed save (err %v)", err)
	}
	assertSavedModelFiles(t, out)
	// The old model still loads and scores as the untrained one.
	m2 := loadModel(t, out, tfmodel.DefaultOptions())
	got, err := m2.Predict(ctx, readNPY(t, e.Inputs))
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(t, got, readNPY(t, e.Probabilities)); d > 1e-5 {
		t.Fatalf("kept model scores differently from Keras: %g", d)
	}
}

// TestSaveModelWithoutMetadata saves a TF1-era export (a tf.compat.v1 Saver's
// saver_def) and a plain Keras export, and loads both back.
func TestSaveModelWithoutMetadata(t *testing.T) {
	g := readGolden(t)
	for _, name := range []string{"tf1_softmax", "fortunes_export"} {
		t.Run(name, func(t *testing.T) {
			e := g.Models[name]
			m := loadModel(t, filepath.Join(testdata, e.Model), tfmodel.DefaultOptions())
			out := filepath.Join(t.TempDir(), name)
			if err := m.Save(context.Background(), out); err != nil {
				t.Fatal(err)
			}
			m2 := loadModel(t, out, tfmodel.DefaultOptions())
			got, err := m2.Predict(context.Background(), readNPY(t, e.Inputs))
			if err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(t, got, readNPY(t, e.Probabilities)); d > 1e-5 {
				t.Fatalf("saved copy scores %g away from the original's golden outputs", d)
			}
		})
	}
}

// TestRestore: weights saved before training, restored after it, give back
// Keras' own predictions of the untrained model, and the next training
// steps give Keras' train_on_batch losses again (the optimizer state is
// restored too). A SavedModel of another graph is refused.
func TestRestore(t *testing.T) {
	g := readGolden(t)
	e := g.Models["fortunes"]
	m := loadModel(t, filepath.Join(testdata, e.Model), tfmodel.DefaultOptions())
	ctx := context.Background()
	saved := filepath.Join(t.TempDir(), "before")
	if err := m.Save(ctx, saved); err != nil {
		t.Fatal(err)
	}
	trainLikeKeras(t, m, e)
	x := readNPY(t, e.Inputs)
	keras := readNPY(t, e.Probabilities)
	trained, err := m.Predict(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	if maxAbsDiff(t, trained, keras) < 1e-4 {
		t.Fatal("training changed nothing the test could see")
	}
	if err := m.Restore(ctx, saved); err != nil {
		t.Fatal(err)
	}
	restored, err := m.Predict(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(t, restored, keras); d > 1e-5 {
		t.Errorf("restored model vs Keras' predictions of it: max diff %g, want <= 1e-5", d)
	}
	losses := trainLikeKeras(t, m, e)
	want := readNPY(t, e.TrainLosses)
	for i, l := range losses {
		if d := math.Abs(l - float64(want.Data[i])); !(d <= 1e-4) {
			t.Errorf("step %d after Restore: loss %.7f, Keras %.7f", i, l, want.Data[i])
		}
	}
	other := filepath.Join(testdata, g.Models["debtags"].Model)
	if err := m.Restore(ctx, other); !errors.Is(err, tfmodel.ErrOtherGraph) {
		t.Errorf("Restore from another model's SavedModel: %v, want ErrOtherGraph", err)
	}
	if err := m.Restore(ctx, filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Restore from a missing directory succeeded")
	}
	m.Close()
	if err := m.Restore(ctx, saved); !errors.Is(err, tfmodel.ErrClosed) {
		t.Errorf("Restore after Close: %v, want ErrClosed", err)
	}
}

// TestSaveModes: a saved model's directories and files get the modes a
// normal tool gives under the umask, so a server running as another user
// reads a version published under 022.
func TestSaveModes(t *testing.T) {
	g := readGolden(t)
	m := loadModel(t, filepath.Join(testdata, g.Models["fortunes"].Model), tfmodel.DefaultOptions())
	for _, umask := range []int{0o022, 0o027} {
		old := syscall.Umask(umask)
		out := filepath.Join(t.TempDir(), "saved")
		err := m.Save(context.Background(), out)
		syscall.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		err = filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			want := fs.FileMode(0o666 &^ umask)
			if d.IsDir() {
				want = fs.FileMode(0o777 &^ umask)
			}
			if info.Mode().Perm() != want {
				t.Errorf("umask %03o: %s has mode %v, want %v", umask, path, info.Mode().Perm(), want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
