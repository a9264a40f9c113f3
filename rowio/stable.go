package rowio

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// ErrChanged is returned when a file changes while it is being read.
var ErrChanged = errors.New("file changed while being read")

// StableFile is a file opened for one read to the end that refuses to end
// quietly if the file changed meanwhile: at end of file it compares the
// size and modification time with those at open, and returns an error
// wrapping ErrChanged instead of io.EOF when they differ. Training reads its
// data once and keeps what it read, so a file rewritten or appended to
// during that read would otherwise train on a mix of two files.
type StableFile struct {
	f    *os.File
	size int64
	mod  time.Time
}

// OpenStable opens path for reading.
func OpenStable(path string) (*StableFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &StableFile{f: f, size: st.Size(), mod: st.ModTime()}, nil
}

// Read reads from the file; see StableFile for what it returns at the end.
func (s *StableFile) Read(p []byte) (int, error) {
	n, err := s.f.Read(p)
	if errors.Is(err, io.EOF) {
		if cerr := s.check(); cerr != nil {
			return n, cerr
		}
	}
	return n, err
}

func (s *StableFile) check() error {
	st, err := os.Stat(s.f.Name())
	if err != nil {
		return fmt.Errorf("%w (%w)", ErrChanged, err)
	}
	if st.Size() != s.size || !st.ModTime().Equal(s.mod) {
		return fmt.Errorf("%w (size %d → %d bytes, modified %s → %s)", ErrChanged,
			s.size, st.Size(), s.mod.Format(time.RFC3339Nano), st.ModTime().Format(time.RFC3339Nano))
	}
	return nil
}

// Close closes the file.
func (s *StableFile) Close() error { return s.f.Close() }
