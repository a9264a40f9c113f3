package rowio

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Format names an input format: the one table every command reads files by.
type Format string

// The input formats.
const (
	FormatCSV    Format = "csv"    // one feature per column; optional header and id column
	FormatTSV    Format = "tsv"    // the same, tab-separated
	FormatJSONL  Format = "jsonl"  // {"id", "x"} dense, {"indices", "values"} sparse, or {"text"} rows
	FormatNPY    Format = "npy"    // a 2-D float32/float64 NumPy array
	FormatLibSVM Format = "libsvm" // svmlight sparse rows with labels
	FormatText   Format = "text"   // raw text, one document a line
	// FormatPredictionLog is a request log: TFRecords of TF Serving's
	// PredictionLog, as kerasgo serve writes them. Its reader is
	// requestlog.NewRowReader (package serving/requestlog), outside this
	// package so that readers of plain files link no serving code.
	FormatPredictionLog Format = "predictionlog"
)

// Formats lists every format, in the order help texts show them.
var Formats = []Format{FormatCSV, FormatTSV, FormatJSONL, FormatNPY, FormatLibSVM, FormatText, FormatPredictionLog}

// ErrUnknownFormat is returned for a format name that is none of Formats.
var ErrUnknownFormat = errors.New("unknown format")

// ParseFormat returns the format named name; "auto" (or "") picks it from
// path's extension (FormatOf).
func ParseFormat(name, path string) (Format, error) {
	if name == "" || name == "auto" {
		return FormatOf(path), nil
	}
	for _, f := range Formats {
		if string(f) == name {
			return f, nil
		}
	}
	return "", fmt.Errorf("%w %q (want auto, csv, tsv, jsonl, npy, libsvm, text or predictionlog)", ErrUnknownFormat, name)
}

// FormatOf returns the format path's extension implies: .npy, .tsv/.tab,
// .jsonl/.ndjson, .libsvm/.svm/.svmlight, .txt, .tfrecord (a request log);
// anything else is CSV.
func FormatOf(path string) Format {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".tfrecord":
		return FormatPredictionLog
	case ".npy":
		return FormatNPY
	case ".tsv", ".tab":
		return FormatTSV
	case ".jsonl", ".ndjson":
		return FormatJSONL
	case ".libsvm", ".svm", ".svmlight":
		return FormatLibSVM
	case ".txt":
		return FormatText
	}
	return FormatCSV
}

// Labelled reports whether rows of the format carry labels (training and
// evaluation data).
func (f Format) Labelled() bool { return f == FormatLibSVM || f == FormatJSONL }

// ReaderOptions configure NewFormatReader.
type ReaderOptions struct {
	// Dim is the number of features per row (required for libsvm and JSONL).
	Dim int
	// IDColumn names the CSV/TSV column with example ids ("": "id" when
	// the header has one).
	IDColumn string
	// Vectorizer turns raw text (text files, JSONL {"text"} rows) into
	// features; nil keeps the text in Row.Text for a model that takes strings.
	Vectorizer Vectorizer
	// Sparse fills Row.Indices and Row.Values instead of Row.Features where
	// the format allows (libsvm, text).
	Sparse bool
	// Header says whether a CSV/TSV input begins with a header line
	// (HeaderAuto, the default: when a field of the first line is not a
	// number). A reader of a range that starts mid-file says HeaderAbsent.
	Header HeaderMode
	// Base says how a libsvm input numbers its features. IndexAuto (the
	// default) scans the input once for a zero index and rewinds it, which
	// needs r to be an io.ReadSeeker such as an *os.File; for a stream, say
	// which, or find out first with LibSVMFileBase.
	Base IndexBase
}

// NewFormatReader returns a reader of r in format f, the one way kerasgo
// makes its readers; path names the input in errors and is never opened.
func NewFormatReader(r io.Reader, path string, f Format, opts ReaderOptions) (RowReader, error) {
	if opts.Dim <= 0 && (f == FormatLibSVM || f == FormatJSONL) {
		return nil, fmt.Errorf("%s: %s input needs a model with a known input width", path, f)
	}
	switch f {
	case FormatCSV:
		return NewTableReader(r, path, TableOptions{Comma: ',', Header: opts.Header, IDColumn: opts.IDColumn, Width: opts.Dim}), nil
	case FormatTSV:
		return NewTableReader(r, path, TableOptions{Comma: '\t', Header: opts.Header, IDColumn: opts.IDColumn, Width: opts.Dim}), nil
	case FormatNPY:
		return NewNPYRowReader(r, path)
	case FormatJSONL:
		return NewJSONLReader(r, path, JSONLOptions{Dim: opts.Dim, Vectorizer: opts.Vectorizer})
	case FormatText:
		return NewTextReader(r, path, opts.Vectorizer, opts.Sparse && opts.Vectorizer != nil), nil
	case FormatLibSVM:
		return NewLibSVMReader(r, path, LibSVMOptions{Dim: opts.Dim, Base: opts.Base, Sparse: opts.Sparse})
	case FormatPredictionLog:
		return nil, fmt.Errorf("%s: a request log is read by requestlog.NewRowReader (package serving/requestlog): %w", path, ErrUnknownFormat)
	}
	return nil, fmt.Errorf("%s: %w %q", path, ErrUnknownFormat, f)
}

// LibSVMFileBase detects the index base of the libsvm file at path with a
// pass of its own (scikit-learn's "auto"), for a caller that will read the
// file through a stream (ReaderOptions.Base); "-" (standard input, which
// cannot be read twice) is taken as zero-based.
func LibSVMFileBase(path string) (IndexBase, error) {
	if path == "-" {
		return IndexZero, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return IndexAuto, fmt.Errorf("opening input: %w", err)
	}
	defer f.Close()
	base, err := DetectLibSVMBase(f)
	if err != nil {
		return IndexAuto, fmt.Errorf("scanning %s for its index base: %w", path, err)
	}
	return base, nil
}
