package kerasgo

import (
	"math"
	"testing"
)

// TestFewNonZeros holds the branch-free count to its definition: more than
// share × len(data) values that compare unequal to zero.
func TestFewNonZeros(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(-1))
	denormal := math.Float32frombits(1)
	negZero := float32(math.Copysign(0, -1))
	with := func(n int, at map[int]float32) []float32 {
		d := make([]float32, n)
		for i, v := range at {
			d[i] = v
		}
		return d
	}
	cases := []struct {
		name  string
		data  []float32
		share float64
		want  bool
	}{
		{"empty", nil, 0.01, true},
		{"all zeros, -0 among them", with(1000, map[int]float32{3: negZero, 999: negZero}), 0, true},
		{"10 of 1000 at 1%", with(1000, map[int]float32{0: 1, 100: 2, 200: 3, 300: 4, 400: 5, 500: 6, 600: 7, 700: 8, 800: 9, 999: 10}), 0.01, true},
		{"11 of 1000 at 1%, the last in a short block", with(1000, map[int]float32{0: 1, 100: 2, 200: 3, 300: 4, 400: 5, 500: 6, 600: 7, 700: 8, 800: 9, 998: 10, 999: 11}), 0.01, false},
		{"NaN, -Inf and the smallest denormal count", with(100, map[int]float32{1: nan, 2: inf, 3: denormal}), 0.02, false},
		{"negative values count", with(100, map[int]float32{1: -1, 2: -0.5}), 0.02, true},
		{"one past the limit in the first block", with(300, map[int]float32{0: -1, 1: 1, 2: 1, 3: 1}), 0.01, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := 0
			for _, v := range c.data {
				if v != 0 {
					n++
				}
			}
			if want := n <= int(c.share*float64(len(c.data))); want != c.want {
				t.Fatalf("case is wrong: %d non-zeros of %d at %v", n, len(c.data), c.share)
			}
			if got := fewNonZeros(c.data, c.share); got != c.want {
				t.Errorf("fewNonZeros = %v, want %v", got, c.want)
			}
		})
	}
}
