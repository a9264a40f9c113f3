package tfmodel

import (
	"context"
	"fmt"
	"io"
	"sort"
	"unsafe"

	tf "github.com/galeone/tensorflow/tensorflow/go"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/sparse"
	"github.com/kerasgo/kerasgo/tensor"
)

// Predict runs the model's prediction signature on x (one example a row) and
// returns one row of outputs (for kerasgo exports: class probabilities) per
// input row. Inputs larger than Options.BatchSize are split into chunks.
//
// The prediction signature is the one the exporter's metadata names, else
// serving_default; it must have one float32 input and one float32 output.
// Models with several inputs or outputs are called with Run.
func (m *Model) Predict(ctx context.Context, x dense.Matrix) (dense.Matrix, error) {
	if m.predict.err != nil {
		return dense.Matrix{}, fmt.Errorf("predict: %w", m.predict.err)
	}
	if m.predict.text {
		return dense.Matrix{}, fmt.Errorf("predict: the model's input %q takes strings; use PredictText: %w", m.predict.input, ErrUnsupportedDType)
	}
	if err := m.checkShape(x.Validate(), x.Rows, x.Cols); err != nil {
		return dense.Matrix{}, fmt.Errorf("predict: %w", err)
	}
	sig := m.sigs[m.predict.signature]
	out, err := m.predictChunks(ctx, sig, m.predict.output, x.Rows, func(from, to int) (map[string]*tf.Tensor, int, error) {
		chunk := x.Slice(from, to)
		t, err := m.featureTensor(chunk, from)
		return map[string]*tf.Tensor{m.predict.input: t}, len(chunk.Data) * 4, err
	})
	if err != nil {
		return dense.Matrix{}, fmt.Errorf("predict: %w", err)
	}
	return out, nil
}

// TextInput reports whether the prediction signature takes strings: a model
// with its text preprocessing (a TextVectorization layer) inside the graph.
func (m *Model) TextInput() bool { return m.predict.err == nil && m.predict.text }

// PredictText runs a string-input prediction signature on texts, one
// document a row, and returns one output row per text.
func (m *Model) PredictText(ctx context.Context, texts []string) (dense.Matrix, error) {
	if m.predict.err != nil {
		return dense.Matrix{}, fmt.Errorf("predict text: %w", m.predict.err)
	}
	if !m.predict.text {
		return dense.Matrix{}, fmt.Errorf("predict text: the model's input %q takes numbers; vectorize the text or use Predict: %w", m.predict.input, ErrUnsupportedDType)
	}
	if len(texts) == 0 {
		return dense.Matrix{}, fmt.Errorf("predict text: %w", ErrEmptyBatch)
	}
	sig := m.sigs[m.predict.signature]
	rank := len(sig.Inputs[m.predict.input].Shape)
	out, err := m.predictChunks(ctx, sig, m.predict.output, len(texts), func(from, to int) (map[string]*tf.Tensor, int, error) {
		var value any = texts[from:to]
		size := 0
		for _, t := range texts[from:to] {
			size += len(t)
		}
		if rank == 2 {
			column := make([][]string, to-from)
			for i, t := range texts[from:to] {
				column[i] = []string{t}
			}
			value = column
		}
		t, err := tf.NewTensor(value)
		if err != nil {
			return nil, 0, fmt.Errorf("making string tensor: %w", err)
		}
		return map[string]*tf.Tensor{m.predict.input: t}, size, nil
	})
	if err != nil {
		return dense.Matrix{}, fmt.Errorf("predict text: %w", err)
	}
	return out, nil
}

// feedFunc makes the feeds for rows [from, to) and says how many bytes of
// tensors it allocated.
type feedFunc func(from, to int) (map[string]*tf.Tensor, int, error)

// predictChunks runs sig on rows in chunks of Options.BatchSize, feeding what
// feed makes, and gathers the output named outKey into one matrix.
func (m *Model) predictChunks(ctx context.Context, sig tensor.Signature, outKey string, rows int, feed feedFunc) (dense.Matrix, error) {
	release, err := m.acquire(ctx, false)
	if err != nil {
		return dense.Matrix{}, err
	}
	defer release()
	var result dense.Matrix
	for from := 0; from < rows; from += m.opts.BatchSize {
		if err := ctx.Err(); err != nil {
			return dense.Matrix{}, err
		}
		to := min(from+m.opts.BatchSize, rows)
		feeds, size, err := feed(from, to)
		if err != nil {
			return dense.Matrix{}, err
		}
		res, err := m.runLocked(sig, feeds, []string{outKey})
		m.noteTensorBytes(size)
		if err != nil {
			return dense.Matrix{}, fmt.Errorf("rows %d..%d: %w", from, to-1, err)
		}
		if result.Data == nil {
			// Size the result from the first chunk's output width.
			result, err = readMatrix(res[0], dense.Matrix{}, 0)
			if err == nil && result.Rows != to-from {
				err = fmt.Errorf("model returned %d rows for %d: %w", result.Rows, to-from, ErrShape)
			}
			if err == nil && rows > to-from {
				full := dense.New(rows, result.Cols)
				copy(full.Data, result.Data)
				result = full
			}
		} else {
			_, err = readMatrix(res[0], result, from)
		}
		if err != nil {
			return dense.Matrix{}, fmt.Errorf("rows %d..%d: %w", from, to-1, err)
		}
		m.noteTensorBytes((to - from) * result.Cols * 4)
	}
	return result, nil
}

// SparsePredictable reports whether the model has the exporter's sparse
// prediction signature, which PredictSparse needs.
func (m *Model) SparsePredictable() bool {
	return m.HasRole(RolePredictSparse)
}

// PredictSparse is Predict for a sparse batch (bag-of-words rows), through
// the exporter's predict_sparse signature: only the non-zero entries are
// copied to TensorFlow. Its first layer is a CSR × dense product in exports
// that record SparseProductCSR; others make the batch dense in the graph, as
// Keras' Dense layer does (SparseFromEntries tells which). The result equals
// Predict on x.Dense() up to float rounding.
func (m *Model) PredictSparse(ctx context.Context, x sparse.CSR) (dense.Matrix, error) {
	sig, ok := m.roleSignature(RolePredictSparse)
	if !ok {
		return dense.Matrix{}, fmt.Errorf("predict: the model has no predict_sparse signature (export it with kerasgo export): %w", ErrUnknownSignature)
	}
	if err := m.checkSparse(x); err != nil {
		return dense.Matrix{}, fmt.Errorf("predict: %w", err)
	}
	out, err := m.predictChunks(ctx, sig, m.meta.OutputKey, x.Rows, func(from, to int) (map[string]*tf.Tensor, int, error) {
		return sparseFeeds(x.Slice(from, to))
	})
	if err != nil {
		return dense.Matrix{}, fmt.Errorf("predict: %w", err)
	}
	return out, nil
}

// SparseFromEntries reports whether PredictSparse computes the first layer
// from a batch's entries alone (a CSR product), at a cost that grows with
// them, rather than from the batch made dense, which costs what a dense batch
// does.
func (m *Model) SparseFromEntries() bool {
	return m.meta != nil && m.meta.SparseProduct == SparseProductCSR && m.HasRole(RolePredictSparse)
}

// sparseFeeds turns a CSR batch into the indices, values and dense_shape
// tensors of a tf.SparseTensor.
func sparseFeeds(x sparse.CSR) (map[string]*tf.Tensor, int, error) {
	coords := make([]int64, 0, 2*len(x.Indices))
	for i := range x.Rows {
		for k := x.RowPtr[i]; k < x.RowPtr[i+1]; k++ {
			coords = append(coords, int64(i), int64(x.Indices[k]))
		}
	}
	indices, err := newTensor(tf.Int64, coords, int64(len(x.Indices)), 2)
	if err != nil {
		return nil, 0, err
	}
	shape, err := newTensor(tf.Int64, []int64{int64(x.Rows), int64(x.Cols)}, 2)
	if err != nil {
		return nil, 0, err
	}
	values, err := newTensor(tf.Float, x.Values, int64(len(x.Values)))
	if err != nil {
		return nil, 0, err
	}
	return map[string]*tf.Tensor{"indices": indices, "values": values, "dense_shape": shape}, len(coords)*8 + len(x.Values)*4, nil
}

// checkShape checks a batch's structure (invalid, the result of its
// Validate), that it has rows, and its width against the signature.
func (m *Model) checkShape(invalid error, rows, cols int) error {
	if invalid != nil {
		return fmt.Errorf("%w: %w", ErrShape, invalid)
	}
	if rows == 0 {
		return ErrEmptyBatch
	}
	if dim := m.InputDim(); dim >= 0 && cols != dim {
		return fmt.Errorf("%d features per row, the model takes %d: %w", cols, dim, ErrShape)
	}
	return nil
}

// checkSparse validates a sparse batch like checkFeatures a dense one.
func (m *Model) checkSparse(x sparse.CSR) error {
	if err := m.checkShape(x.Validate(), x.Rows, x.Cols); err != nil {
		return err
	}
	if !m.opts.AllowNonFinite {
		if k := firstNonFinite(x.Values); k >= 0 {
			row := sort.Search(x.Rows, func(i int) bool { return x.RowPtr[i+1] > k })
			return &InputError{Row: row, Col: int(x.Indices[k]), Err: fmt.Errorf("%v: %w", x.Values[k], ErrNonFinite)}
		}
	}
	return nil
}

// featureTensor copies a dense batch, whose first row is row first of the
// caller's input, into a new float32 tensor. Unless the options allow them,
// it looks for NaN and ±Inf in the same pass over the values (see
// finiteCopy) and returns an *InputError for the first one.
func (m *Model) featureTensor(x dense.Matrix, first int) (*tf.Tensor, error) {
	if m.opts.AllowNonFinite {
		return newTensor(tf.Float, x.Data, int64(x.Rows), int64(x.Cols))
	}
	c := &finiteCopy{src: x.Data}
	t, err := tf.ReadTensor(tf.Float, []int64{int64(x.Rows), int64(x.Cols)}, c)
	if err != nil {
		return nil, fmt.Errorf("making float32 tensor [%d %d]: %w", x.Rows, x.Cols, err)
	}
	if c.nonFinite {
		i := firstNonFinite(x.Data)
		return nil, &InputError{Row: first + i/x.Cols, Col: i % x.Cols, Err: fmt.Errorf("%v: %w", x.Data[i], ErrNonFinite)}
	}
	return t, nil
}

// finiteCopy is the reader a tensor's buffer is filled from: it copies src
// and notes whether any value is NaN or ±Inf, reading both as 64-bit words
// (see nonFiniteIn), one pass where a check and a copy took two.
type finiteCopy struct {
	src       []float32
	nonFinite bool
}

func (c *finiteCopy) Read(p []byte) (int, error) {
	if len(c.src) == 0 {
		return 0, io.EOF
	}
	n := min(len(p)/4, len(c.src))
	src := c.src[:n]
	c.src = c.src[n:]
	dst := unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(p))), n)
	if n%2 != 0 || uintptr(unsafe.Pointer(unsafe.SliceData(src)))%8 != 0 || uintptr(unsafe.Pointer(unsafe.SliceData(dst)))%8 != 0 {
		copy(dst, src)
		c.nonFinite = c.nonFinite || nonFiniteIn(src)
		return n * 4, nil
	}
	from := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(src))), n/2)
	to := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(dst))), n/2)
	var a, b uint64
	i := 0
	for ; i+2 <= len(from); i += 2 {
		x, y := from[i], from[i+1]
		to[i], to[i+1] = x, y
		a |= carry(x)
		b |= carry(y)
	}
	for ; i < len(from); i++ {
		to[i] = from[i]
		a |= carry(from[i])
	}
	c.nonFinite = c.nonFinite || (a|b)&signs2 != 0
	return n * 4, nil
}

// firstNonFinite returns the index of the first NaN or ±Inf in data, or -1.
// It looks at blocks of values with nonFiniteIn and scans a block value by
// value only when that finds one.
func firstNonFinite(data []float32) int {
	const block = 4096
	for from := 0; from < len(data); from += block {
		part := data[from:min(from+block, len(data))]
		if !nonFiniteIn(part) {
			continue
		}
		for i, v := range part {
			// v-v is 0 for every finite v and NaN for NaN and ±Inf.
			if v-v != 0 {
				return from + i
			}
		}
	}
	return -1
}

// Two float32 values side by side in a 64-bit word: the masks of their
// exponents, of the lowest exponent bit and of their signs.
const (
	exponents2 = 0x7f800000_7f800000
	expLowBit2 = 0x00800000_00800000
	signs2     = 0x80000000_80000000
)

// carry sets the sign bit of each float32 of a word whose exponent bits
// are all ones (NaN, ±Inf), and may set others below them: test the result
// with signs2.
func carry(w uint64) uint64 { return w&exponents2 + expLowBit2 }

// nonFiniteIn reports whether data holds a NaN or ±Inf. A float32 is not
// finite exactly when its exponent bits are all ones, the one exponent that
// carries into the sign bit when its lowest bit is added. So it reads the
// values two to a 64-bit word, with four words in flight and no branch per
// value: three times faster than comparing value by value (Predict checks
// every input value).
func nonFiniteIn(data []float32) bool {
	if len(data) > 0 && uintptr(unsafe.Pointer(unsafe.SliceData(data)))%8 != 0 {
		// Words are read from an 8-byte boundary (checkptr insists).
		if v := data[0]; v-v != 0 {
			return true
		}
		data = data[1:]
	}
	w := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(data))), len(data)/2)
	var a, b, c, d uint64
	i := 0
	for ; i+4 <= len(w); i += 4 {
		a |= carry(w[i])
		b |= carry(w[i+1])
		c |= carry(w[i+2])
		d |= carry(w[i+3])
	}
	for ; i < len(w); i++ {
		a |= carry(w[i])
	}
	if (a|b|c|d)&signs2 != 0 {
		return true
	}
	if len(data)%2 == 1 {
		v := data[len(data)-1]
		return v-v != 0
	}
	return false
}
