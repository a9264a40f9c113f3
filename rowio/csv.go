package rowio

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// TableOptions configure a CSV or TSV reader.
type TableOptions struct {
	// Comma separates fields: ',' for CSV, '\t' for TSV.
	Comma rune
	// Header says whether the first line names the columns. HeaderAuto (the
	// default) treats the first line as a header when any field in it is not a number.
	Header HeaderMode
	// IDColumn names the column holding example ids. Empty means "id" when the
	// header has such a column, and no id column otherwise.
	IDColumn string
	// Width is the number of features every row must have; 0 takes the
	// first row's (a bad first row then makes the good ones look bad).
	Width int
}

// HeaderMode says how a table reader treats its first line.
type HeaderMode int

// Header modes.
const (
	HeaderAuto HeaderMode = iota
	HeaderPresent
	HeaderAbsent
)

// TableReader reads dense examples from CSV or TSV: one example a line, one
// feature a column, plus an optional id column. A UTF-8 byte-order mark and
// CRLF line ends are accepted.
type TableReader struct {
	r       *csv.Reader
	path    string
	opts    TableOptions
	started bool
	header  []string
	idCol   int // -1 when there is none
	cols    int // features per row, known after the first row
	pending []string
}

// NewTableReader returns a reader of r; path names the input in errors.
func NewTableReader(r io.Reader, path string, opts TableOptions) *TableReader {
	if opts.Comma == 0 {
		opts.Comma = ','
	}
	cr := csv.NewReader(skipBOM(r))
	cr.Comma = opts.Comma
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1 // counted here, to name the line and the expected width
	cols := -1
	if opts.Width > 0 {
		cols = opts.Width
	}
	return &TableReader{r: cr, path: path, opts: opts, idCol: -1, cols: cols}
}

// Header returns the column names, or nil when the input has no header.
// It is known after the first call to Read.
func (t *TableReader) Header() []string { return t.header }

func (t *TableReader) start() error {
	t.started = true
	rec, err := t.r.Read()
	if err == io.EOF {
		return io.EOF
	}
	if err != nil {
		return t.csvError(err)
	}
	isHeader := t.opts.Header == HeaderPresent
	if t.opts.Header == HeaderAuto {
		for _, f := range rec {
			if _, err := strconv.ParseFloat(strings.TrimSpace(f), 32); err != nil {
				isHeader = true
				break
			}
		}
	}
	if isHeader {
		t.header = append([]string(nil), rec...)
		want := t.opts.IDColumn
		if want == "" {
			want = "id"
		}
		for i, name := range t.header {
			if strings.TrimSpace(name) == want {
				t.idCol = i
			}
		}
		if t.idCol < 0 && t.opts.IDColumn != "" {
			return &ParseError{Path: t.path, Line: 1, Field: t.opts.IDColumn, Err: fmt.Errorf("no such column in header: %w", ErrFormat)}
		}
		t.cols = len(t.header)
		if t.idCol >= 0 {
			t.cols--
		}
		return nil
	}
	if t.opts.IDColumn != "" {
		return &ParseError{Path: t.path, Line: 1, Field: t.opts.IDColumn, Err: fmt.Errorf("id column named but the input has no header: %w", ErrFormat)}
	}
	t.pending = append([]string(nil), rec...)
	return nil
}

// Read fills row with the next example.
func (t *TableReader) Read(row *Row) error {
	if !t.started {
		if err := t.start(); err != nil {
			return err
		}
	}
	rec := t.pending
	t.pending = nil
	if rec == nil {
		var err error
		if rec, err = t.r.Read(); err != nil {
			if err == io.EOF {
				return io.EOF
			}
			return t.csvError(err)
		}
	}
	line, _ := t.r.FieldPos(0)
	width := len(rec)
	if t.idCol >= 0 {
		width--
	}
	if t.cols < 0 {
		t.cols = width
	}
	if width != t.cols {
		return &ParseError{Path: t.path, Line: line, Err: fmt.Errorf("%d feature fields, want %d: %w", width, t.cols, ErrFormat)}
	}
	row.Line = line
	row.ID = ""
	row.Features = row.Features[:0]
	for i, f := range rec {
		if i == t.idCol {
			row.ID = f
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 32)
		if err != nil {
			pe := &ParseError{Path: t.path, Line: line, Column: i + 1, Err: fmt.Errorf("%q is not a number: %w", f, ErrFormat)}
			if t.header != nil {
				pe.Field = t.header[i]
			}
			return pe
		}
		row.Features = append(row.Features, float32(v))
	}
	return nil
}

func (t *TableReader) csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		// encoding/csv counts columns in bytes; ParseError.Column counts fields.
		return &ParseError{Path: t.path, Line: pe.Line, Err: fmt.Errorf("byte %d: %w: %w", pe.Column, pe.Err, ErrFormat)}
	}
	return fmt.Errorf("reading %s: %w", t.path, err)
}

// skipBOM drops a leading UTF-8 byte-order mark.
func skipBOM(r io.Reader) io.Reader {
	br := bufio.NewReaderSize(r, 1<<16)
	if b, err := br.Peek(3); err == nil && string(b) == "\ufeff" {
		_, _ = br.Discard(3)
	}
	return br
}
