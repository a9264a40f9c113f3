package kerasgo_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	tg "github.com/galeone/tfgo"

	"github.com/kerasgo/kerasgo/dense"
)

// BenchmarkPredictAgainstTfgo times one prediction call on the fortunes model
// (D=256, C=20) at batch 1, 32 and 500, side by side in one run: kerasgo's
// Predict (input checks and the tensor built from a dense.Matrix included)
// and tfgo's Exec with the tensor built from [][]float32 each call, as tfgo's
// users write it. Ratios go in docs/benchmarks.md; nothing is asserted.
func BenchmarkPredictAgainstTfgo(b *testing.B) {
	ctx := context.Background()
	dir := filepath.Join("testdata", "models", "fortunes")
	km := open(b, "fortunes")
	tm := tg.LoadModel(dir, []string{"serve"}, nil)
	in, out := tfgoServing(b, tm, km)
	x := golden(b, "fortunes_inputs.npy")
	for _, batch := range []int{1, 32, 500} {
		rows := dense.New(batch, x.Cols)
		for i := range batch {
			copy(rows.Row(i), x.Row(i%x.Rows))
		}
		b.Run(fmt.Sprintf("kerasgo/batch=%d", batch), func(b *testing.B) {
			for b.Loop() {
				if _, err := km.Predict(ctx, rows); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("tfgo/batch=%d", batch), func(b *testing.B) {
			for b.Loop() {
				t := tfgoTensor(b, rows)
				res := tm.Exec([]tf.Output{out}, map[tf.Output]*tf.Tensor{in: t})
				_ = res[0].Value()
			}
		})
	}
	texts := goldenTexts(b)
	b.Run("kerasgo/PredictText/batch=64", func(b *testing.B) {
		for b.Loop() {
			if _, err := km.PredictText(ctx, texts); err != nil {
				b.Fatal(err)
			}
		}
	})
}
