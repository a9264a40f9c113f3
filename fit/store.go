package fit

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// DefaultMemoryBudget is how many bytes of parsed rows training keeps in
// memory before it moves them to a temporary file (Options.MemoryBudget).
// Rows are stored compactly: a bag-of-words row of 100 words takes about
// 130 bytes, so 300,000 such rows take about 40 MB and 2,000,000 fit.
const DefaultMemoryBudget = 256 << 20

// ErrMemoryBudget is returned when even the row index (8 bytes a row) does
// not fit the memory budget.
var ErrMemoryBudget = errors.New("memory budget exceeded")

// chunkSize is the size of the in-memory blocks rows are packed into: fixed
// blocks instead of one growing slice, so memory never holds two copies.
const chunkSize = 1 << 20

// budget is the memory the row stores of one training run share.
type budget struct {
	limit, used int64
}

func (b *budget) take(n int64) bool {
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}

// rowStore holds the rows of a data file, parsed and encoded once, so every
// epoch can visit them in any order without parsing the file again. Rows stay
// in memory while the shared budget allows, and move to an unlinked temporary
// file (read back with pread) past it. Why not shuffle the source file by
// byte offsets: that would parse every row again every epoch and tie the
// order to a file the user may change; the encoded rows are read with one
// call each and parse errors can only happen once, in the first pass.
type rowStore struct {
	budget  *budget
	tempDir string
	// createTemp makes the spill file; os.CreateTemp unless a test injects
	// failures.
	createTemp func(dir, pattern string) (spillFile, error)

	// In memory: chunks, and pos[i] = chunk<<32 | offset of row i.
	chunks [][]byte
	// Spilled: the file, a buffered writer appending to it, its size, and
	// pos[i] = file offset of row i.
	file    spillFile
	w       *bufio.Writer
	size    int64
	pos     []int64
	posCost int64 // bytes of pos charged to the budget

	enc []byte // scratch for encoding one row
}

// spillFile is the temporary file rows move to (an *os.File).
type spillFile interface {
	io.Writer
	io.ReaderAt
	io.Closer
	Name() string
}

func createTemp(dir, pattern string) (spillFile, error) { return os.CreateTemp(dir, pattern) }

func newRowStore(b *budget, tempDir string, create func(string, string) (spillFile, error)) *rowStore {
	if create == nil {
		create = createTemp
	}
	return &rowStore{budget: b, tempDir: tempDir, createTemp: create}
}

// rows returns how many rows the store holds.
func (s *rowStore) rows() int { return len(s.pos) }

// spilled reports whether the rows live in a temporary file.
func (s *rowStore) spilled() bool { return s.file != nil }

// bytes returns the size of the encoded rows.
func (s *rowStore) bytes() int64 {
	if s.file != nil {
		return s.size
	}
	var n int64
	for _, c := range s.chunks {
		n += int64(len(c))
	}
	return n
}

// Flags of an encoded row.
const (
	allOnes   = 1 << iota // every value is 1 (bag-of-words): no values stored
	ascending             // indices ascend: deltas stored as uvarints
)

// encode appends e's encoding to dst. Sparse text rows compress well, and
// every byte saved is a byte of the memory budget: line, non-zeros, classes
// and flags; the indices as deltas from the previous one (uvarints when
// they ascend, as they do in libsvm files, else zig-zag varints); the values
// as little-endian float32 bits unless all are 1; the classes as uvarints.
func encode(dst []byte, e *Example) []byte {
	flags := byte(allOnes | ascending)
	for k, v := range e.Values {
		if v != 1 {
			flags &^= allOnes
		}
		if k > 0 && e.Indices[k] <= e.Indices[k-1] {
			flags &^= ascending
		}
	}
	dst = binary.AppendUvarint(dst, uint64(e.Line))
	dst = binary.AppendUvarint(dst, uint64(len(e.Indices)))
	dst = binary.AppendUvarint(dst, uint64(len(e.Classes)))
	dst = append(dst, flags)
	prev := int64(0)
	for _, i := range e.Indices {
		if flags&ascending != 0 {
			dst = binary.AppendUvarint(dst, uint64(int64(i)-prev))
		} else {
			dst = binary.AppendVarint(dst, int64(i)-prev)
		}
		prev = int64(i)
	}
	if flags&allOnes == 0 {
		for _, v := range e.Values {
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
		}
	}
	for _, c := range e.Classes {
		dst = binary.AppendUvarint(dst, uint64(c))
	}
	return dst
}

var errCorruptRow = errors.New("corrupt row in the training store")

// decode fills e from src, reusing e's slices.
func decode(src []byte, e *Example) error {
	var n [3]uint64
	for k := range n {
		v, w := binary.Uvarint(src)
		if w <= 0 {
			return errCorruptRow
		}
		n[k], src = v, src[w:]
	}
	if len(src) == 0 || n[1] > uint64(len(src)) || n[2] > uint64(len(src)) {
		return errCorruptRow
	}
	flags, src := src[0], src[1:]
	nnz, ncls := int(n[1]), int(n[2])
	e.Line = int(n[0])
	e.Indices, e.Values, e.Classes = e.Indices[:0], e.Values[:0], e.Classes[:0]
	prev := int64(0)
	for range nnz {
		var d int64
		var w int
		if flags&ascending != 0 {
			var u uint64
			u, w = binary.Uvarint(src)
			d = int64(u)
		} else {
			d, w = binary.Varint(src)
		}
		if w <= 0 {
			return errCorruptRow
		}
		prev += d
		e.Indices = append(e.Indices, int32(prev))
		src = src[w:]
	}
	if flags&allOnes != 0 {
		for range nnz {
			e.Values = append(e.Values, 1)
		}
	} else {
		if len(src) < 4*nnz {
			return errCorruptRow
		}
		for k := range nnz {
			e.Values = append(e.Values, math.Float32frombits(binary.LittleEndian.Uint32(src[4*k:])))
		}
		src = src[4*nnz:]
	}
	for range ncls {
		v, w := binary.Uvarint(src)
		if w <= 0 {
			return errCorruptRow
		}
		e.Classes = append(e.Classes, int(v))
		src = src[w:]
	}
	return nil
}

// add stores e.
func (s *rowStore) add(e *Example) error {
	if len(s.pos) == cap(s.pos) {
		newCap := max(1024, 2*cap(s.pos))
		cost := int64(8 * newCap)
		ok := s.budget.take(cost)
		if !ok && s.file == nil {
			// Make room: the rows go to disk, the index stays.
			if err := s.spill(); err != nil {
				return err
			}
			ok = s.budget.take(cost)
		}
		if !ok {
			return fmt.Errorf("%w: the index of %d rows needs %d MiB", ErrMemoryBudget, len(s.pos)+1, max(1, cost>>20))
		}
		grown := make([]int64, len(s.pos), newCap)
		copy(grown, s.pos)
		s.budget.used -= s.posCost
		s.pos, s.posCost = grown, cost
	}
	s.enc = encode(s.enc[:0], e)
	if s.file != nil {
		return s.appendFile(s.enc)
	}
	last := len(s.chunks) - 1
	if last < 0 || len(s.chunks[last])+len(s.enc) > cap(s.chunks[last]) {
		size := max(chunkSize, len(s.enc))
		if !s.budget.take(int64(size)) {
			if err := s.spill(); err != nil {
				return err
			}
			return s.appendFile(s.enc)
		}
		chunk, err := newChunk(size)
		if err != nil {
			s.budget.used -= int64(size)
			return fmt.Errorf("allocating %d bytes for training rows: %w", size, err)
		}
		s.chunks = append(s.chunks, chunk)
		last++
	}
	s.pos = append(s.pos, int64(last)<<32|int64(len(s.chunks[last])))
	s.chunks[last] = append(s.chunks[last], s.enc...)
	return nil
}

func (s *rowStore) appendFile(rec []byte) error {
	s.pos = append(s.pos, s.size)
	if _, err := s.w.Write(rec); err != nil {
		return fmt.Errorf("writing rows to %s: %w", s.file.Name(), err)
	}
	s.size += int64(len(rec))
	return nil
}

// spill moves the rows held in memory to a temporary file, which is unlinked
// at once so that nothing is left behind however the process ends.
func (s *rowStore) spill() error {
	f, err := s.createTemp(s.tempDir, "kerasgo-train-rows-*")
	if err != nil {
		return fmt.Errorf("moving training rows to disk: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return fmt.Errorf("moving training rows to disk: %w", err)
	}
	s.file, s.w = f, bufio.NewWriterSize(f, 1<<20)
	var base int64
	starts := make([]int64, len(s.chunks))
	for c, chunk := range s.chunks {
		starts[c] = base
		base += int64(len(chunk))
	}
	for i, p := range s.pos {
		s.pos[i] = starts[p>>32] + p&0xffffffff
	}
	for c, chunk := range s.chunks {
		if _, err := s.w.Write(chunk); err != nil {
			return fmt.Errorf("writing rows to %s: %w", f.Name(), err)
		}
		s.budget.used -= int64(cap(chunk))
		freeChunk(chunk)
		s.chunks[c] = nil
	}
	s.chunks = nil
	s.size = base
	return nil
}

// finish flushes a spilled store; call it once every row is added.
func (s *rowStore) finish() error {
	if s.w == nil {
		return nil
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("writing rows to %s: %w", s.file.Name(), err)
	}
	s.w = nil
	return nil
}

// rowReader reads rows back from a store; each goroutine needs its own.
type rowReader struct {
	s   *rowStore
	buf []byte
}

// row decodes row i into e.
func (r *rowReader) row(i int, e *Example) error {
	s := r.s
	var rec []byte
	if s.file == nil {
		p := s.pos[i]
		c, off := p>>32, p&0xffffffff
		end := int64(len(s.chunks[c]))
		if i+1 < len(s.pos) && s.pos[i+1]>>32 == c {
			end = s.pos[i+1] & 0xffffffff
		}
		rec = s.chunks[c][off:end]
	} else {
		end := s.size
		if i+1 < len(s.pos) {
			end = s.pos[i+1]
		}
		n := int(end - s.pos[i])
		if cap(r.buf) < n {
			r.buf = make([]byte, n)
		}
		rec = r.buf[:n]
		if _, err := s.file.ReadAt(rec, s.pos[i]); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
			return fmt.Errorf("reading rows back from %s: %w", s.file.Name(), err)
		}
	}
	return decode(rec, e)
}

// close releases the store's memory and file.
func (s *rowStore) close() error {
	for _, c := range s.chunks {
		s.budget.used -= int64(cap(c))
		freeChunk(c)
	}
	s.budget.used -= s.posCost
	s.chunks, s.pos, s.posCost = nil, nil, 0
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	s.file, s.w = nil, nil
	return err
}
