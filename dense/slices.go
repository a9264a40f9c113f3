package dense

// Resize returns s with length n and every element zero, reusing s's array
// when its capacity allows, else allocating a new one. Readers use it to
// refill a row they are handed back.
func Resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// Argmax returns the index of the largest value of row, the first one on
// ties (as numpy.argmax does), or -1 for an empty row. A NaN is never larger
// than another value, so NaNs are passed over unless row[0] is one (then 0).
func Argmax(row []float32) int {
	if len(row) == 0 {
		return -1
	}
	best := 0
	for j := 1; j < len(row); j++ {
		if row[j] > row[best] {
			best = j
		}
	}
	return best
}
