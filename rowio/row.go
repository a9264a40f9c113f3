package rowio

// Row is one example read from a data file.
type Row struct {
	// Line is the 1-based line (for binary formats, the row) the example came from.
	Line int
	// ID is the example's id column or field; empty when the file has none.
	ID string
	// Features holds the dense feature values. Readers in sparse mode leave
	// it empty and fill Indices and Values instead.
	Features []float32
	// Indices and Values hold the non-zero features of a sparse row
	// (column numbers, zero-based, and their values).
	Indices []int32
	Values  []float32
	// Labels holds the example's labels as written in the file, for rows
	// that carry them: libsvm's label field (split at commas), a JSONL row's
	// "label" or "labels"; empty otherwise.
	Labels []string
	// Text holds a raw-text document read for a model that takes strings
	// (a TextReader without a vectorizer); empty otherwise.
	Text string
}

// RowReader is implemented by every reader in this package. Read fills row
// with the next example, reusing its slices, and returns io.EOF after the last.
type RowReader interface {
	Read(row *Row) error
}
