package rowio

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode"
	"unicode/utf8"

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
	s      *bufio.Scanner
	path   string
	opts   LibSVMOptions
	shift  int // subtracted from every index: 0 or 1
	line   int
	labels map[string]string // the label strings seen, so rows share them
}

// maxInternedLabels bounds LibSVMReader.labels: a file of classes has a few
// distinct labels, a regression file may have one a row.
const maxInternedLabels = 1024

// NewLibSVMReader returns a reader of r; path names the input in errors.
// With IndexAuto, r must be an io.ReadSeeker: it is scanned once for a zero
// index and rewound.
func NewLibSVMReader(r io.Reader, path string, opts LibSVMOptions) (*LibSVMReader, error) {
	if opts.Dim <= 0 {
		return nil, fmt.Errorf("libsvm reader for %s: feature count %d, want > 0", path, opts.Dim)
	}
	l := &LibSVMReader{path: path, opts: opts, labels: map[string]string{}}
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
		_, rest := nextField(line) // the label
		for len(rest) > 0 {
			var f []byte
			f, rest = nextField(rest)
			if bytes.HasPrefix(f, []byte("0:")) {
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
		label, rest := nextField(text)
		if label == nil {
			continue
		}
		return l.parse(row, label, rest)
	}
	if err := l.s.Err(); err != nil {
		return scanError(l.path, l.line, err)
	}
	return io.EOF
}

// parse reads a line's label field and the INDEX:VALUE fields after it.
// Written without bytes.Fields and strconv for the common shapes of fields:
// it is the inner loop of scoring a libsvm file, where bytes.Fields' slice a
// line, a label string a row and strconv put parsing at 9% of the CPU time
// of `kerasgo predict` (docs/benchmarks.md).
func (l *LibSVMReader) parse(row *Row, label, rest []byte) error {
	row.Line, row.ID = l.line, ""
	row.Labels = row.Labels[:0]
	for lab := range bytes.SplitSeq(label, []byte(",")) {
		if len(lab) == 0 {
			continue
		}
		if _, err := strconv.ParseFloat(string(lab), 64); err != nil {
			return &ParseError{Path: l.path, Line: l.line, Column: 1, Field: "label", Err: fmt.Errorf("%q is not a number: %w", lab, ErrFormat)}
		}
		row.Labels = append(row.Labels, l.intern(lab))
	}
	row.Indices, row.Values = row.Indices[:0], row.Values[:0]
	switch {
	case l.opts.Sparse:
		row.Features = row.Features[:0]
	default:
		row.Features = dense.Resize(row.Features, l.opts.Dim)
	}
	for col := 2; ; col++ {
		if idx, v, after, ok := plainEntry(rest); ok && idx >= l.shift && idx-l.shift < l.opts.Dim {
			rest = after
			if l.opts.Sparse {
				row.Indices = append(row.Indices, int32(idx-l.shift))
				row.Values = append(row.Values, v)
			} else {
				row.Features[idx-l.shift] = v
			}
			continue
		}
		var f []byte
		if f, rest = nextField(rest); f == nil {
			return nil
		}
		name, val, ok := bytes.Cut(f, []byte(":"))
		if !ok {
			return &ParseError{Path: l.path, Line: l.line, Column: col, Err: fmt.Errorf("%q is not INDEX:VALUE: %w", f, ErrFormat)}
		}
		if string(name) == "qid" {
			continue
		}
		idx, ok := smallUint(name)
		if !ok {
			var err error
			if idx, err = strconv.Atoi(string(name)); err != nil {
				return &ParseError{Path: l.path, Line: l.line, Column: col, Err: fmt.Errorf("index %q is not an integer: %w", name, ErrFormat)}
			}
		}
		idx -= l.shift
		if idx < 0 || idx >= l.opts.Dim {
			return &ParseError{Path: l.path, Line: l.line, Column: col, Field: string(name),
				Err: fmt.Errorf("feature index %s outside the model's %d features: %w", name, l.opts.Dim, ErrFormat)}
		}
		var v float32
		if n, ok := smallUint(val); ok && n < 1<<24 {
			v = float32(n) // exact: every integer below 2^24 is a float32
		} else {
			f, err := strconv.ParseFloat(string(val), 32)
			if err != nil && !errors.Is(err, strconv.ErrRange) {
				return &ParseError{Path: l.path, Line: l.line, Column: col, Field: string(name), Err: fmt.Errorf("value %q is not a number: %w", val, ErrFormat)}
			}
			v = float32(f)
		}
		if l.opts.Sparse {
			row.Indices = append(row.Indices, int32(idx))
			row.Values = append(row.Values, v)
		} else {
			row.Features[idx] = v
		}
	}
}

// intern returns lab as a string, the same string for every row with that
// label while the reader has seen at most maxInternedLabels distinct ones.
func (l *LibSVMReader) intern(lab []byte) string {
	if s, ok := l.labels[string(lab)]; ok {
		return s
	}
	s := string(lab)
	if len(l.labels) < maxInternedLabels {
		l.labels[s] = s
	}
	return s
}

// plainEntry reads the next field of b when it has the common shape of an
// INDEX:VALUE field: ASCII blanks, 1 to 9 digits, a colon, and a number of
// digits, '.', '-', '+', 'e' or 'E' that ends at an ASCII space or at the
// end of b. It returns the index, the value (integers below 2^24 exactly,
// others as strconv.ParseFloat rounds them to float32) and the rest of b
// after the field. For any other shape, or a value strconv refuses, ok is
// false and parse reads the field the general way, with its errors. One pass
// over the bytes instead of finding the field, splitting it and scanning
// each half again: the loop that reading a libsvm file spends its time in.
func plainEntry(b []byte) (idx int, v float32, rest []byte, ok bool) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	start := i
	for i < len(b) && b[i]-'0' <= 9 {
		idx = idx*10 + int(b[i]-'0')
		i++
	}
	if i == start || i-start > 9 || i == len(b) || b[i] != ':' {
		return 0, 0, b, false
	}
	i++
	from, n, digits, dot := i, 0, true, -1
	for ; i < len(b); i++ {
		c := b[i]
		if c-'0' <= 9 {
			n = n*10 + int(c-'0')
			continue
		}
		if c == '.' && dot < 0 {
			dot = i
			continue
		}
		if c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E' {
			digits = false
			continue
		}
		if !isASCIISpace(c) {
			return 0, 0, b, false
		}
		break
	}
	val := b[from:i]
	switch {
	case len(val) == 0:
		return 0, 0, b, false
	case digits && dot < 0 && len(val) <= 7: // below 10^7 < 2^24: exact
		return idx, float32(n), b[i:], true
	case digits && dot >= 0 && len(val) > 1 && len(val) <= 8:
		// A decimal of at most 7 digits (tf-idf weights, "0.6170"): n and
		// 10^k are exact in float32, and a float64 quotient rounded to
		// float32 is then the correctly rounded float32 of n/10^k (double
		// rounding is innocuous for division when 53 ≥ 2·24+2), which is
		// what strconv.ParseFloat(val, 32) returns (FuzzPlainEntry).
		return idx, float32(float64(n) / math.Pow10(i-dot-1)), b[i:], true
	}
	f, err := strconv.ParseFloat(string(val), 32)
	if err != nil {
		return 0, 0, b, false
	}
	return idx, float32(f), b[i:], true
}

// smallUint parses 1 to 9 decimal digits, nothing else.
func smallUint(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// nextField returns the first run of non-space bytes in b (nil when there
// is none) and the rest of b after it, splitting where bytes.Fields does.
func nextField(b []byte) (field, rest []byte) {
	start := -1
	for i := 0; i < len(b); {
		space, size := isASCIISpace(b[i]), 1
		if b[i] >= utf8.RuneSelf {
			var c rune
			c, size = utf8.DecodeRune(b[i:])
			space = unicode.IsSpace(c)
		}
		switch {
		case space && start >= 0:
			return b[start:i], b[i:]
		case !space && start < 0:
			start = i
		}
		i += size
	}
	if start < 0 {
		return nil, nil
	}
	return b[start:], nil
}

// isASCIISpace reports whether c is one of the ASCII bytes unicode.IsSpace
// holds for.
func isASCIISpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}
