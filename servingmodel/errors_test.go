package servingmodel_test

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/errkind"
	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/servingmodel"
	"github.com/kerasgo/kerasgo/tensor"
)

// TestServingErrors checks which failures the serving handler answers as the
// client's (errkind.InvalidInput: 400, INVALID_ARGUMENT) and which as the
// server's (500, INTERNAL), by the kinds tfmodel and kerasgo give them.
func TestServingErrors(t *testing.T) {
	ctx := context.Background()
	tests := map[string]struct {
		call        func(m serving.Model) error
		wantInvalid bool
	}{
		"wrong width": {call: func(m serving.Model) error {
			_, err := m.Predict(ctx, dense.New(2, 10))
			return err
		}, wantInvalid: true},
		"non-finite value": {call: func(m serving.Model) error {
			x := dense.New(1, 256)
			x.Data[3] = float32(math.NaN())
			_, err := m.Predict(ctx, x)
			return err
		}, wantInvalid: true},
		"training signatures are refused": {call: func(m serving.Model) error {
			_, err := m.(serving.TensorModel).Run(ctx, "train_step", map[string]tensor.Tensor{
				"features":      {DType: tensor.Float32, Shape: []int64{1, 256}, Data: make([]float32, 256)},
				"labels":        {DType: tensor.Float32, Shape: []int64{1, 20}, Data: make([]float32, 20)},
				"sample_weight": {DType: tensor.Float32, Shape: []int64{1}, Data: []float32{1}},
			})
			return err
		}, wantInvalid: true},
		"a closed model is the server's failure": {call: func(m serving.Model) error {
			m.Close()
			_, err := m.Predict(ctx, dense.New(1, 256))
			return err
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := servingmodel.Load(ctx, filepath.Join("..", "testdata", "models", "fortunes"))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			err = tc.call(m)
			if err == nil || (errkind.Of(err) == errkind.InvalidInput) != tc.wantInvalid {
				t.Fatalf("error %v: kind %v, want invalid input %v", err, errkind.Of(err), tc.wantInvalid)
			}
		})
	}
}
