package tfmodel_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/kerasgo/kerasgo/convert"
	"github.com/kerasgo/kerasgo/tfmodel"
)

// Load a SavedModel, read what the exporter recorded, and score a batch.
func ExampleModel_Predict() {
	ctx := context.Background()
	m, err := tfmodel.Load(ctx, "../testdata/models/fortunes", tfmodel.DefaultOptions())
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	x, err := convert.ReadNPYFile("../testdata/golden/fortunes_inputs.npy")
	if err != nil {
		log.Fatal(err)
	}
	probs, err := m.Predict(ctx, x.Slice(0, 3))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.InputDim(), "features ->", probs.Cols, "probabilities per row;", probs.Rows, "rows")
	fmt.Println("label mode:", m.Metadata().LabelMode)
	// Output:
	// 256 features -> 20 probabilities per row; 3 rows
	// label mode: onehot
}

// Train a model from Go for one step, then save it as a SavedModel that
// TensorFlow loads back.
func ExampleModel_TrainStep() {
	ctx := context.Background()
	m, err := tfmodel.Load(ctx, "../testdata/models/fortunes", tfmodel.DefaultOptions())
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	x, _ := convert.ReadNPYFile("../testdata/golden/fortunes_train_x.npy")
	y, _ := convert.ReadNPYFile("../testdata/golden/fortunes_train_y.npy")
	if ok, why := m.Trainable(); !ok {
		log.Fatal(why)
	}
	before, _ := m.EvaluateStep(ctx, x, tfmodel.Labels{Matrix: y}, nil)
	for range 3 {
		if _, err := m.TrainStep(ctx, x, tfmodel.Labels{Matrix: y}, nil); err != nil {
			log.Fatal(err)
		}
	}
	after, _ := m.EvaluateStep(ctx, x, tfmodel.Labels{Matrix: y}, nil)
	fmt.Println("loss went down:", after.Loss < before.Loss)

	dir, _ := os.MkdirTemp("", "kerasgo-example-")
	defer os.RemoveAll(dir)
	if err := m.Save(ctx, filepath.Join(dir, "retrained")); err != nil {
		log.Fatal(err)
	}
	fmt.Println("saved")
	// Output:
	// loss went down: true
	// saved
}

// A model that kerasgo's exporter did not make (plain Keras model.export())
// loads and predicts, but cannot be trained from Go.
func ExampleModel_Trainable() {
	m, err := tfmodel.Load(context.Background(), "../testdata/models/fortunes_export", tfmodel.DefaultOptions())
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	ok, _ := m.Trainable()
	fmt.Println("trainable:", ok, "signatures:", m.SignatureKeys())
	// Output:
	// trainable: false signatures: [serve serving_default]
}
