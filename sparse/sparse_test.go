package sparse_test

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/sparse"
)

func TestCSR(t *testing.T) {
	d, _ := dense.FromRows([][]float32{{0, 1, 0}, {0, 0, 0}, {2, 0, 3}})
	s := sparse.FromDense(d)
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if s.Rows != 3 || len(s.Indices) != 3 || fmt.Sprint(s.RowPtr) != "[0 1 1 3]" {
		t.Fatalf("%+v", s)
	}
	if fmt.Sprint(s.Dense().Data) != fmt.Sprint(d.Data) {
		t.Fatalf("round trip %v, want %v", s.Dense().Data, d.Data)
	}
	tail := s.Slice(1, 3)
	if err := tail.Validate(); err != nil || fmt.Sprint(tail.Dense().Data) != "[0 0 0 2 0 3]" {
		t.Fatalf("slice %+v: %v", tail, err)
	}
	built := sparse.New(3)
	built.AppendRow([]int32{1}, []float32{1})
	built.AppendRow(nil, nil)
	built.AppendRow([]int32{0, 2}, []float32{2, 3})
	if fmt.Sprint(built) != fmt.Sprint(s) {
		t.Fatalf("AppendRow built %+v, want %+v", built, s)
	}
	bad := map[string]sparse.CSR{
		"column out of range": {Rows: 1, Cols: 2, RowPtr: []int{0, 1}, Indices: []int32{2}, Values: []float32{1}},
		"pointer count":       {Rows: 2, Cols: 2, RowPtr: []int{0, 1}, Indices: []int32{0}, Values: []float32{1}},
		"values count":        {Rows: 1, Cols: 2, RowPtr: []int{0, 1}, Indices: []int32{0}, Values: nil},
		"decreasing":          {Rows: 2, Cols: 2, RowPtr: []int{0, 2, 1}, Indices: []int32{0}, Values: []float32{1}},
	}
	for name, m := range bad {
		if err := m.Validate(); !errors.Is(err, dense.ErrShape) {
			t.Errorf("%s: Validate = %v, want ErrShape", name, err)
		}
	}
}

func TestAppendNonZero(t *testing.T) {
	nan := float32(math.NaN())
	tests := map[string]struct {
		indices     []int32
		values      []float32
		row         []float32
		wantIndices string
		wantValues  string
		wantNil     bool
	}{
		"nil, all zeros":        {row: []float32{0, 0, 0}, wantIndices: "[]", wantValues: "[]", wantNil: true},
		"nil, empty row":        {row: nil, wantIndices: "[]", wantValues: "[]", wantNil: true},
		"nil, some non-zero":    {row: []float32{0, 1.5, 0, -2}, wantIndices: "[1 3]", wantValues: "[1.5 -2]"},
		"appends to existing":   {indices: []int32{7}, values: []float32{9}, row: []float32{3, 0}, wantIndices: "[7 0]", wantValues: "[9 3]"},
		"negative zero skipped": {row: []float32{float32(math.Copysign(0, -1)), 4}, wantIndices: "[1]", wantValues: "[4]"},
		"NaN kept":              {row: []float32{nan, 0}, wantIndices: "[0]", wantValues: "[NaN]"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			idx, val := sparse.AppendNonZero(tc.indices, tc.values, tc.row)
			if fmt.Sprint(idx) != tc.wantIndices || fmt.Sprint(val) != tc.wantValues {
				t.Fatalf("got %v %v, want %s %s", idx, val, tc.wantIndices, tc.wantValues)
			}
			if tc.wantNil && (idx != nil || val != nil) {
				t.Fatalf("got non-nil slices %#v %#v for nil input and nothing to add", idx, val)
			}
		})
	}
}

func TestAppendDenseRow(t *testing.T) {
	m := sparse.New(3)
	m.AppendDenseRow([]float32{0, 1, 0})
	m.AppendDenseRow([]float32{0, 0, 0})
	m.AppendDenseRow([]float32{2, 0, 3})
	want := sparse.New(3)
	want.AppendRow([]int32{1}, []float32{1})
	want.AppendRow(nil, nil)
	want.AppendRow([]int32{0, 2}, []float32{2, 3})
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(m) != fmt.Sprint(want) {
		t.Fatalf("AppendDenseRow built %+v, want %+v", m, want)
	}
}

func TestDensity(t *testing.T) {
	tests := []struct {
		name    string
		rows    [][]float32
		density float64
	}{
		{"presence flags", [][]float32{{0, 1, 0, 1}, {1, 0, 0, 0}}, 3.0 / 8},
		{"a count of 2", [][]float32{{0, 2, 0, 1}, {1, 0, 0, 0}}, 3.0 / 8},
		{"a negative one", [][]float32{{0, -1, 0, 0}}, 1.0 / 4},
		{"all zeros", [][]float32{{0, 0}, {0, 0}}, 0},
		{"no rows", nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := sparse.New(2)
			if tc.rows != nil {
				d, err := dense.FromRows(tc.rows)
				if err != nil {
					t.Fatal(err)
				}
				m = sparse.FromDense(d)
			}
			if got := m.Density(); got != tc.density {
				t.Errorf("Density() = %v, want %v", got, tc.density)
			}
		})
	}
}
