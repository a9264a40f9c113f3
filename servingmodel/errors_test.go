package servingmodel_test

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/servingmodel"
)

// TestServingErrors checks which failures the serving handler answers as the
// client's (400: serving.ErrInvalidInput) and which as the server's (500).
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
			_, err := m.(serving.TensorModel).Run(ctx, "train_step", map[string]serving.Tensor{
				"features":      {DType: "float32", Shape: []int64{1, 256}, Data: make([]float32, 256)},
				"labels":        {DType: "float32", Shape: []int64{1, 20}, Data: make([]float32, 20)},
				"sample_weight": {DType: "float32", Shape: []int64{1}, Data: []float32{1}},
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
			if err == nil || errors.Is(err, serving.ErrInvalidInput) != tc.wantInvalid {
				t.Fatalf("error %v: invalid input %v, want %v", err, errors.Is(err, serving.ErrInvalidInput), tc.wantInvalid)
			}
		})
	}
}
