package dense_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kerasgo/kerasgo/dense"
)

func TestFromRows(t *testing.T) {
	tests := map[string]struct {
		rows    [][]float32
		want    dense.Matrix
		wantErr error
	}{
		"empty":  {rows: nil, want: dense.Matrix{}},
		"2x3":    {rows: [][]float32{{1, 2, 3}, {4, 5, 6}}, want: dense.Matrix{Rows: 2, Cols: 3, Data: []float32{1, 2, 3, 4, 5, 6}}},
		"ragged": {rows: [][]float32{{1, 2}, {3}}, wantErr: dense.ErrShape},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := dense.FromRows(tc.rows)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				return
			}
			if got.Rows != tc.want.Rows || got.Cols != tc.want.Cols || fmt.Sprint(got.Data) != fmt.Sprint(tc.want.Data) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if err := got.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSliceSharesStorage(t *testing.T) {
	m := dense.New(3, 2)
	s := m.Slice(1, 3)
	s.Row(0)[1] = 7
	if m.At(1, 1) != 7 || s.Rows != 2 {
		t.Fatalf("slice does not share storage: %+v", m)
	}
	if err := (dense.Matrix{Rows: 2, Cols: 2, Data: make([]float32, 3)}).Validate(); !errors.Is(err, dense.ErrShape) {
		t.Fatalf("Validate = %v, want ErrShape", err)
	}
}

func ExampleMatrix_Row() {
	m, _ := dense.FromRows([][]float32{{1, 2}, {3, 4}})
	fmt.Println(m.Row(1), m.At(0, 1))
	// Output: [3 4] 2
}
