package tfmodel_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/kerasgo/kerasgo/rowio"
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

	x, err := rowio.ReadNPYFile("../testdata/golden/fortunes_inputs.npy")
	if err != nil {
		log.Fatal(err)
	}
	probs, err := m.Predict(ctx, x.Slice(0, 3))
	if err != nil {
		log.Fatal(err)
	}
	// The best class of each row, as Keras predicts it
	// (testdata/golden/fortunes_probabilities.npy).
	classes := m.Metadata().Classes
	for i := range probs.Rows {
		best := 0
		for j, p := range probs.Row(i) {
			if p > probs.At(i, best) {
				best = j
			}
		}
		fmt.Printf("%s %.2f\n", classes[best], probs.At(i, best))
	}
	// Output:
	// computers 0.08
	// disclaimer 0.14
	// people 0.14
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

	x, _ := rowio.ReadNPYFile("../testdata/golden/fortunes_train_x.npy")
	y, _ := rowio.ReadNPYFile("../testdata/golden/fortunes_train_y.npy")
	if ok, why := m.Trainable(); !ok {
		log.Fatal(why)
	}
	// Five steps on batches of 32 rows give Keras' own train_on_batch losses
	// (testdata/golden/fortunes_train_losses.npy).
	for step := range 5 {
		r, err := m.TrainStep(ctx, x.Slice(step*32, step*32+32), tfmodel.Labels{Matrix: y.Slice(step*32, step*32+32)}, nil)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("step %d: loss %.2f\n", step+1, r.Loss)
	}

	dir, _ := os.MkdirTemp("", "kerasgo-example-")
	defer os.RemoveAll(dir)
	if err := m.Save(ctx, filepath.Join(dir, "retrained")); err != nil {
		log.Fatal(err)
	}
	fmt.Println("saved")
	// Output:
	// step 1: loss 0.19
	// step 2: loss 0.15
	// step 3: loss 0.11
	// step 4: loss 0.07
	// step 5: loss 0.05
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
