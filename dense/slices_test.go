package dense_test

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/kerasgo/kerasgo/dense"
)

func TestResize(t *testing.T) {
	tests := map[string]struct {
		in        []float32
		n         int
		wantReuse bool // the result shares in's array
	}{
		"nil to zero":         {in: nil, n: 0, wantReuse: false},
		"nil grows":           {in: nil, n: 3},
		"shrinks and clears":  {in: []float32{1, 2, 3, 4}, n: 2, wantReuse: true},
		"same length clears":  {in: []float32{1, 2, 3}, n: 3, wantReuse: true},
		"within capacity":     {in: append(make([]float32, 0, 8), 5, 6), n: 6, wantReuse: true},
		"past capacity":       {in: []float32{1, 2}, n: 5},
		"empty, capacity > 0": {in: make([]float32, 0, 4), n: 0, wantReuse: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			// Dirty the whole backing array, so stale values past len would show.
			full := tc.in[:cap(tc.in)]
			for i := range full {
				full[i] = float32(i + 1)
			}
			got := dense.Resize(tc.in, tc.n)
			if len(got) != tc.n {
				t.Fatalf("len %d, want %d", len(got), tc.n)
			}
			if i := slices.IndexFunc(got, func(v float32) bool { return v != 0 }); i >= 0 {
				t.Fatalf("element %d is %v, want every element zero: %v", i, got[i], got)
			}
			reused := cap(got) > 0 && cap(tc.in) > 0 && &got[:cap(got)][0] == &full[0]
			if reused != tc.wantReuse {
				t.Fatalf("reused the array: %v, want %v", reused, tc.wantReuse)
			}
		})
	}
	// Generic: other element types too.
	if got := dense.Resize([]float64{1, 2, 3}, 2); fmt.Sprint(got) != "[0 0]" {
		t.Errorf("Resize float64 = %v", got)
	}
}

func TestArgmax(t *testing.T) {
	nan := float32(math.NaN())
	tests := map[string]struct {
		row  []float32
		want int
	}{
		"empty":           {nil, -1},
		"one":             {[]float32{0.3}, 0},
		"max last":        {[]float32{0.1, 0.2, 0.3, 0.4}, 3},
		"max first":       {[]float32{0.9, 0.2, 0.3}, 0},
		"all equal":       {[]float32{0.25, 0.25, 0.25, 0.25}, 0},
		"all zero":        {[]float32{0, 0, 0}, 0},
		"tie in the back": {[]float32{0.1, 0.2, 0.35, 0.35}, 2},
		"negative":        {[]float32{-3, -1, -2}, 1},
		"infinity":        {[]float32{1, float32(math.Inf(1)), 2}, 1},
		"NaN passed over": {[]float32{0.1, nan, 0.5}, 2},
		"NaN first":       {[]float32{nan, 0.9}, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := dense.Argmax(tc.row); got != tc.want {
				t.Errorf("Argmax(%v) = %d, want %d", tc.row, got, tc.want)
			}
		})
	}
}
