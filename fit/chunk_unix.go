//go:build unix

package fit

import "syscall"

// newChunk returns an empty slice with room for size bytes, mapped outside
// the Go heap: the stored rows are long-lived and large, and on the Go heap
// they would double the collector's heap goal (GOGC=100), so the process
// would hold up to twice the memory budget. freeChunk returns the memory.
func newChunk(size int) ([]byte, error) {
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, err
	}
	return b[:0], nil
}

func freeChunk(b []byte) {
	if cap(b) > 0 {
		_ = syscall.Munmap(b[:cap(b)])
	}
}
