package kerasgo_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/kerasgo/kerasgo"
	"github.com/kerasgo/kerasgo/fit"
	"github.com/kerasgo/kerasgo/sparse"
)

// TestWithoutSparseSignatures opens an export whose metadata names no sparse
// signatures, as the exporter writes for models whose first layer does not
// take the raw features (BatchNormalization or Dropout first): prediction
// and training take the dense signatures without being told, and still
// match Keras (its outputs, and its five train_on_batch losses).
func TestWithoutSparseSignatures(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fortunes")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "models", "fortunes"))); err != nil {
		t.Fatal(err)
	}
	metaPath := filepath.Join(dir, "assets", "kerasgo.json")
	var meta map[string]any
	b, err := os.ReadFile(metaPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	sigs := meta["signatures"].(map[string]any)
	for _, role := range []string{"predict_sparse", "train_sparse", "evaluate_sparse"} {
		delete(sigs, role)
	}
	if b, err = json.Marshal(meta); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(metaPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m, err := kerasgo.Open(ctx, dir, kerasgo.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	x := golden(t, "fortunes_inputs.npy")
	got, err := m.PredictSparse(ctx, sparse.FromDense(x))
	if err != nil {
		t.Fatal(err)
	}
	checkClose(t, "sparse rows, dense signature", got, golden(t, "fortunes_probabilities.npy"))

	tx, ty, want := golden(t, "fortunes_train_x.npy"), golden(t, "fortunes_train_y.npy"), golden(t, "fortunes_train_losses.npy")
	const batch = 32 // scripts/make_testdata.py's TRAIN_BATCH
	for step := range want.Data {
		from, to := step*batch, (step+1)*batch
		loss, _, err := m.TrainBatch(ctx, fit.Batch{X: sparse.FromDense(tx.Slice(from, to)), Y: ty.Slice(from, to)})
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if d := math.Abs(loss - float64(want.Data[step])); !(d <= 1e-4) {
			t.Errorf("step %d loss %.7f, Keras %.7f", step, loss, want.Data[step])
		}
	}
}
