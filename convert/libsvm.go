package convert

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/kerasgo/kerasgo/dense"
)

// IndexBase says how a libsvm file numbers its features.
type IndexBase int

// Index bases, after scikit-learn's load_svmlight_file(zero_based=...).
const (
	// IndexAuto: zero-based when any feature index in the file is 0, else
	// one-based. It needs a first pass, so the input must be an io.Seeker.
	IndexAuto IndexBase = iota
	IndexZero
	IndexOne
)

// LibSVMOptions configure a libsvm/svmlight reader.
type LibSVMOptions struct {
	// Dim is the number of features per row; every index must be below it.
	Dim int
	// Base says how features are numbered; see IndexAuto.
	Base IndexBase
	// Sparse fills Row.Indices and Row.Values (zero-based) and leaves
	// Row.Features empty, instead of expanding each row to Dim values.
	Sparse bool
}

// LibSVMReader reads sparse rows in libsvm/svmlight format, one example a
// line: `LABEL[,LABEL...] [qid:N] INDEX:VALUE ... [# comment]`, following
// scikit-learn's load_svmlight_file: comma-separated multi-label lists, qid
// ignored, comments and blank lines skipped. Rows come back dense (Dim
// values), and the labels as text in Row.Labels.
type LibSVMReader struct {
	s     *bufio.Scanner
	path  string
	opts  LibSVMOptions
	shift int // subtracted from every index: 0 or 1
	line  int
}

// NewLibSVMReader returns a reader of r; path names the input in errors.
// With IndexAuto, r must be an io.ReadSeeker: it is scanned once for a zero
// index and rewound.
func NewLibSVMReader(r io.Reader, path string, opts LibSVMOptions) (*LibSVMReader, error) {
	if opts.Dim <= 0 {
		return nil, fmt.Errorf("libsvm reader for %s: feature count %d, want > 0", path, opts.Dim)
	}
	l := &LibSVMReader{path: path, opts: opts}
	switch opts.Base {
	case IndexOne:
		l.shift = 1
	case IndexAuto:
		rs, ok := r.(io.ReadSeeker)
		if !ok {
			return nil, fmt.Errorf("libsvm reader for %s: cannot detect zero- or one-based indices on a stream; say which", path)
		}
		base, err := DetectLibSVMBase(rs)
		if err != nil {
			return nil, fmt.Errorf("scanning %s for the index base: %w", path, err)
		}
		if _, err := rs.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("rewinding %s: %w", path, err)
		}
		if base == IndexOne {
			l.shift = 1
		}
	}
	l.s = newLineScanner(r)
	return l, nil
}

// DetectLibSVMBase reads a libsvm input to its end and returns IndexZero
// when any feature index is 0, else IndexOne (scikit-learn's "auto").
func DetectLibSVMBase(r io.Reader) (IndexBase, error) {
	zero, err := hasZeroIndex(r)
	if err != nil {
		return IndexAuto, err
	}
	if zero {
		return IndexZero, nil
	}
	return IndexOne, nil
}

// hasZeroIndex reports whether any feature of the input has index 0.
func hasZeroIndex(r io.Reader) (bool, error) {
	s := newLineScanner(r)
	for s.Scan() {
		line, _, _ := bytes.Cut(s.Bytes(), []byte("#"))
		for i, f := range bytes.Fields(line) {
			if i > 0 && bytes.HasPrefix(f, []byte("0:")) {
				return true, nil
			}
		}
	}
	return false, s.Err()
}

// Read fills row with the next example: Features holds Dim values, Labels
// the label field split at commas.
func (l *LibSVMReader) Read(row *Row) error {
	for l.s.Scan() {
		l.line++
		text, _, _ := bytes.Cut(l.s.Bytes(), []byte("#"))
		fields := bytes.Fields(text)
		if len(fields) == 0 {
			continue
		}
		return l.parse(row, fields)
	}
	if err := l.s.Err(); err != nil {
		return scanError(l.path, l.line, err)
	}
	return io.EOF
}

func (l *LibSVMReader) parse(row *Row, fields [][]byte) error {
	row.Line, row.ID = l.line, ""
	row.Labels = row.Labels[:0]
	for _, lab := range bytes.Split(fields[0], []byte(",")) {
		if len(lab) == 0 {
			continue
		}
		if _, err := strconv.ParseFloat(string(lab), 64); err != nil {
			return &ParseError{Path: l.path, Line: l.line, Column: 1, Field: "label", Err: fmt.Errorf("%q is not a number: %w", lab, ErrFormat)}
		}
		row.Labels = append(row.Labels, string(lab))
	}
	row.Indices, row.Values = row.Indices[:0], row.Values[:0]
	switch {
	case l.opts.Sparse:
		row.Features = row.Features[:0]
	default:
		row.Features = dense.Resize(row.Features, l.opts.Dim)
	}
	for i, f := range fields[1:] {
		col := i + 2
		name, val, ok := bytes.Cut(f, []byte(":"))
		if !ok {
			return &ParseError{Path: l.path, Line: l.line, Column: col, Err: fmt.Errorf("%q is not INDEX:VALUE: %w", f, ErrFormat)}
		}
		if string(name) == "qid" {
			continue
		}
		idx, err := strconv.Atoi(string(name))
		if err != nil {
			return &ParseError{Path: l.path, Line: l.line, Column: col, Err: fmt.Errorf("index %q is not an integer: %w", name, ErrFormat)}
		}
		idx -= l.shift
		if idx < 0 || idx >= l.opts.Dim {
			return &ParseError{Path: l.path, Line: l.line, Column: col, Field: string(name),
				Err: fmt.Errorf("feature index %s outside the model's %d features: %w", name, l.opts.Dim, ErrFormat)}
		}
		v, err := strconv.ParseFloat(string(val), 32)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return &ParseError{Path: l.path, Line: l.line, Column: col, Field: string(name), Err: fmt.Errorf("value %q is not a number: %w", val, ErrFormat)}
		}
		if l.opts.Sparse {
			row.Indices = append(row.Indices, int32(idx))
			row.Values = append(row.Values, float32(v))
		} else {
			row.Features[idx] = float32(v)
		}
	}
	return nil
}
