package tfmodel

import (
	"math"
	"testing"
)

// TestFirstNonFinite puts each kind of special value at the places the word
// and block reading could miss: the first and last value, an odd length's
// last value, both halves of a word, and either side of a block boundary.
func TestFirstNonFinite(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	finite := map[string]float32{
		"largest":   math.MaxFloat32,
		"-largest":  -math.MaxFloat32,
		"subnormal": math.SmallestNonzeroFloat32,
		"-0":        float32(math.Copysign(0, -1)),
	}
	specials := map[string]float32{"NaN": nan, "-NaN": -nan, "+Inf": inf, "-Inf": -inf}
	for _, n := range []int{1, 2, 3, 7, 8, 9, 4095, 4096, 4097, 10_001} {
		for _, at := range []int{0, 1, n / 2, 4095, 4096, n - 2, n - 1} {
			if at < 0 || at >= n {
				continue
			}
			for name, v := range specials {
				data := make([]float32, n)
				for i := range data {
					data[i] = float32(i%5) - 2.5
				}
				data[at] = v
				if at+1 < n {
					data[at+1] = nan // a later one must not be reported instead
				}
				if got := firstNonFinite(data); got != at {
					t.Errorf("%s at %d of %d: got %d", name, at, n, got)
				}
				// The same values from an odd offset, off the 8-byte boundary.
				if at > 0 {
					if got := firstNonFinite(data[1:]); got != at-1 {
						t.Errorf("%s at %d of %d, from value 1: got %d", name, at, n, got)
					}
				}
			}
		}
		for name, v := range finite {
			data := make([]float32, n)
			for i := range data {
				data[i] = v
			}
			if got := firstNonFinite(data); got != -1 {
				t.Errorf("%d × %s: got %d, want -1", n, name, got)
			}
		}
	}
	if got := firstNonFinite(nil); got != -1 {
		t.Errorf("empty: got %d, want -1", got)
	}
}
