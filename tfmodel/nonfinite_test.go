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

// TestFiniteCopy holds featureTensor's reader to a plain copy and to
// firstNonFinite: every value arrives, and it notes a NaN or ±Inf wherever
// it is, from aligned and odd offsets and in reads of any size.
func TestFiniteCopy(t *testing.T) {
	nan := float32(math.NaN())
	for _, n := range []int{1, 2, 3, 8, 9, 4097} {
		for _, at := range []int{-1, 0, 1, n / 2, n - 2, n - 1} {
			if at >= n || (at < -1) {
				continue
			}
			data := make([]float32, n+1)
			for i := range data {
				data[i] = float32(i%7) - 3
			}
			if at >= 0 {
				data[1+at] = nan
			}
			for _, from := range []int{0, 1} { // 1: off the 8-byte boundary
				src := data[from : from+n]
				want := firstNonFinite(src) >= 0
				for _, chunk := range []int{4, 12, 4 * n} {
					c := &finiteCopy{src: src}
					var got []byte
					buf := make([]byte, chunk)
					for {
						k, err := c.Read(buf)
						got = append(got, buf[:k]...)
						if err != nil {
							break
						}
					}
					if len(got) != 4*n {
						t.Fatalf("n %d, from %d, reads of %d: %d bytes, want %d", n, from, chunk, len(got), 4*n)
					}
					for i, v := range src {
						if g := math.Float32frombits(uint32(got[4*i]) | uint32(got[4*i+1])<<8 | uint32(got[4*i+2])<<16 | uint32(got[4*i+3])<<24); g != v && !(g != g && v != v) {
							t.Fatalf("n %d, from %d, reads of %d: value %d is %v, want %v", n, from, chunk, i, g, v)
						}
					}
					if c.nonFinite != want {
						t.Errorf("n %d, NaN at %d, from %d, reads of %d: nonFinite %v, want %v", n, at, from, chunk, c.nonFinite, want)
					}
				}
			}
		}
	}
}
