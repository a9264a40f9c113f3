package rowio

import (
	"bufio"
	"io"
	"strings"

	"github.com/kerasgo/kerasgo/dense"
)

// Vectorizer turns raw text into the model's features (textvec.Vectorizer
// and textvec.Tokenizer implement it). It must be safe for concurrent use:
// one is loaded with a model and shared by every reader and request.
type Vectorizer interface {
	// Width is the number of features per document.
	Width() int
	// VectorizeSparse returns the document's non-zero features, reusing the
	// given slices.
	VectorizeSparse(text string, indices []int32, values []float32) ([]int32, []float32)
}

// SetText fills row with the features v gives text: Indices and Values when
// sparse, else Features with every value.
func SetText(row *Row, v Vectorizer, text string, sparse bool) {
	row.Indices, row.Values = v.VectorizeSparse(text, row.Indices[:0], row.Values[:0])
	if sparse {
		row.Features = row.Features[:0]
		return
	}
	row.Features = dense.Resize(row.Features, v.Width())
	for k, i := range row.Indices {
		row.Features[i] = row.Values[k]
	}
	row.Indices, row.Values = row.Indices[:0], row.Values[:0]
}

// TextReader reads raw text, one document a line (an empty line is an empty
// document), and vectorizes each with the model's vectorizer. CRLF line ends
// and a byte-order mark are accepted.
type TextReader struct {
	s      *bufio.Scanner
	path   string
	v      Vectorizer
	sparse bool
	line   int
}

// NewTextReader returns a reader of r; path names the input in errors.
// With sparse, rows come back as Indices and Values. With a nil v, rows
// carry the raw document in Row.Text, for models that take strings.
func NewTextReader(r io.Reader, path string, v Vectorizer, sparse bool) *TextReader {
	return &TextReader{s: newLineScanner(r), path: path, v: v, sparse: sparse}
}

// Read fills row with the next document's features; ID is left empty, so
// predictions are numbered by line.
func (t *TextReader) Read(row *Row) error {
	if !t.s.Scan() {
		if err := t.s.Err(); err != nil {
			return scanError(t.path, t.line, err)
		}
		return io.EOF
	}
	t.line++
	row.Line, row.ID, row.Labels = t.line, "", row.Labels[:0]
	text := strings.TrimSuffix(t.s.Text(), "\r")
	if t.v == nil {
		row.Text = text
		row.Features, row.Indices, row.Values = row.Features[:0], row.Indices[:0], row.Values[:0]
		return nil
	}
	row.Text = ""
	SetText(row, t.v, text, t.sparse)
	return nil
}
