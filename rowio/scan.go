package rowio

import (
	"bufio"
	"io"
)

// maxLineBytes is the longest line the line-based readers accept; a longer
// one is reported as malformed input (see scanError).
const maxLineBytes = 1 << 30

// newLineScanner returns the line scanner of the line-based readers (libsvm,
// JSONL, text): a leading byte-order mark skipped, a 64 KiB buffer to start
// with, grown up to maxLineBytes for long lines.
func newLineScanner(r io.Reader) *bufio.Scanner {
	s := bufio.NewScanner(skipBOM(r))
	s.Buffer(make([]byte, 0, 1<<16), maxLineBytes)
	return s
}
