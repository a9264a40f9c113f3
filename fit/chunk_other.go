//go:build !unix

package fit

// newChunk returns an empty slice with room for size bytes (on the Go heap
// where anonymous mappings are not available).
func newChunk(size int) ([]byte, error) { return make([]byte, 0, size), nil }

func freeChunk([]byte) {}
