package evaluation_test

import (
	"fmt"
	"os"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/evaluation"
)

// A sigmoid model trained with binary cross-entropy that has learned
// little: every output stays below 0.5, so its binary accuracy equals that
// of a model predicting nothing.
func Example() {
	acc, err := evaluation.NewAccumulator(evaluation.Options{
		Classes: []string{"art", "linux", "science", "work"},
		Loss:    evaluation.BinaryCrossentropy,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	probs, _ := dense.FromRows([][]float32{
		{0.40, 0.20, 0.10, 0.10},
		{0.35, 0.30, 0.10, 0.20},
		{0.30, 0.20, 0.15, 0.10},
		{0.20, 0.25, 0.10, 0.10},
		{0.30, 0.35, 0.20, 0.10},
		{0.30, 0.20, 0.25, 0.10},
		{0.25, 0.10, 0.30, 0.20},
		{0.30, 0.10, 0.10, 0.20},
	})
	targets, _ := dense.FromRows([][]float32{
		{1, 0, 0, 0}, {1, 0, 0, 0}, {1, 0, 0, 0}, {1, 0, 0, 0},
		{0, 1, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1},
	})
	if err := acc.Add(probs, targets, 0.43); err != nil {
		fmt.Println(err)
		return
	}
	r := acc.Report()
	if err := r.WriteText(os.Stdout, evaluation.Diagnose(r, evaluation.Inputs{})); err != nil {
		fmt.Println(err)
	}
	// Output:
	// 8 rows, 4 classes, one label per row, threshold 0.5
	//
	// metric               model  baseline
	// loss                 0.430     0.502  predicting each class's frequency (BinaryCrossentropy)
	// top-1 accuracy       0.625     0.500  always answering "art"
	// macro F1             0.542
	// binary accuracy      0.750     0.750  predicting no class (1 − 1/4)
	// classes: most frequent "art" (4 of 8 rows), largest/smallest count 4.000
	//
	// per class, largest first:
	// class   precision  recall      f1  support
	// art         0.600   0.750   0.667        4
	// linux       0.500   0.500   0.500        2
	// science     1.000   1.000   1.000        1
	// work        0.000   0.000   0.000        1
	//
	// most confused (true → predicted: rows):
	//   art → linux: 1
	//   linux → art: 1
	//   work → art: 1
	//
	// findings:
	// - binary_accuracy_trap: Binary accuracy is 0.750, and a model that predicts no
	//   class at all scores 0.750 on this data (1 − 1/4), because binary accuracy
	//   counts each of the 4 outputs of a row separately and most of them are 0. Keras
	//   up to 2.3 printed it as "accuracy" for sigmoid outputs trained with binary
	//   cross-entropy; since TF 2.2 and in Keras 3 the same code reports categorical
	//   (top-1) accuracy, which here is 0.625.
	// - classes_never_predicted: 1 of 4 classes is never predicted although the data
	//   has rows of it: work (1), 12.5% of the rows; its recall is 0.
	// - keras_accuracy_note: Which function Keras' "accuracy" metric means depends on
	//   the version: up to Keras 2.3 (and tf.keras before TF 2.2) it followed the
	//   loss, so binary cross-entropy got binary accuracy; since TF 2.2 and in Keras 3
	//   it follows the output shape, so a model with more than one output gets
	//   categorical (top-1) accuracy. The same training code therefore prints
	//   different numbers on different versions.
}

// A served model validated on rows it mostly answered "art" or "work" now
// answers "work" for nearly every request of the last window.
func ExampleDiagnoseTraffic() {
	mix := evaluation.ClassMix{
		Classes:   []string{"art", "linux", "work"},
		Rows:      600,
		Labels:    []int{250, 100, 250},
		Predicted: []int{260, 90, 250},
	}
	window := evaluation.Traffic{Rows: 500, Predicted: []int{20, 10, 470}}
	for _, f := range evaluation.DiagnoseTraffic(mix, window) {
		fmt.Println(f.Kind)
	}
	dist, _ := evaluation.MixDistance(mix, window)
	fmt.Printf("distance %.3f\n", dist)
	// Output:
	// prediction_collapse
	// class_mix_shift
	// distance 0.523
}
