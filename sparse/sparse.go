// Package sparse holds the compressed-sparse-row matrix (CSR) that carries
// bag-of-words batches, ~99% zeros, from the readers to TensorFlow's sparse
// signatures without materialising them; package dense holds the row-major
// matrix they convert to and from.
package sparse

import (
	"fmt"

	"github.com/kerasgo/kerasgo/dense"
)

// CSR is a sparse matrix in compressed sparse row form: row i's entries are
// Indices[RowPtr[i]:RowPtr[i+1]] (column numbers) with Values at the same
// positions. It carries bag-of-words batches, which are ~99% zeros, without
// materialising them.
type CSR struct {
	Rows, Cols int
	RowPtr     []int // len Rows+1, RowPtr[0] == 0, non-decreasing
	Indices    []int32
	Values     []float32
}

// New returns an empty matrix with cols columns, ready for AppendRow and AppendDenseRow.
func New(cols int) CSR {
	return CSR{Cols: cols, RowPtr: []int{0}}
}

// AppendRow adds a row given by its column indices and values.
func (m *CSR) AppendRow(indices []int32, values []float32) {
	m.Indices = append(m.Indices, indices...)
	m.Values = append(m.Values, values...)
	m.RowPtr = append(m.RowPtr, len(m.Indices))
	m.Rows++
}

// Validate checks the structure: pointer count and order, index range, and
// one value per index.
func (m CSR) Validate() error {
	if len(m.RowPtr) != m.Rows+1 || m.RowPtr[0] != 0 {
		return fmt.Errorf("%d row pointers for %d rows: %w", len(m.RowPtr), m.Rows, dense.ErrShape)
	}
	if len(m.Indices) != len(m.Values) || m.RowPtr[m.Rows] != len(m.Indices) {
		return fmt.Errorf("%d indices, %d values, last row pointer %d: %w", len(m.Indices), len(m.Values), m.RowPtr[m.Rows], dense.ErrShape)
	}
	for i := range m.Rows {
		if m.RowPtr[i] > m.RowPtr[i+1] {
			return fmt.Errorf("row pointers decrease at row %d: %w", i, dense.ErrShape)
		}
	}
	for k, c := range m.Indices {
		if c < 0 || int(c) >= m.Cols {
			return fmt.Errorf("entry %d: column %d outside 0..%d: %w", k, c, m.Cols-1, dense.ErrShape)
		}
	}
	return nil
}

// Slice returns rows [from, to) sharing the storage; its RowPtr is rebased
// to start at 0 (a new slice of len to-from+1).
func (m CSR) Slice(from, to int) CSR {
	lo, hi := m.RowPtr[from], m.RowPtr[to]
	ptr := make([]int, to-from+1)
	for i := range ptr {
		ptr[i] = m.RowPtr[from+i] - lo
	}
	return CSR{Rows: to - from, Cols: m.Cols, RowPtr: ptr, Indices: m.Indices[lo:hi:hi], Values: m.Values[lo:hi:hi]}
}

// Dense returns the matrix with its zeros filled in. Repeated indices in a
// row add up, as in a sparse tensor.
func (m CSR) Dense() dense.Matrix {
	d := dense.New(m.Rows, m.Cols)
	for i := range m.Rows {
		row := d.Row(i)
		for k := m.RowPtr[i]; k < m.RowPtr[i+1]; k++ {
			row[m.Indices[k]] += m.Values[k]
		}
	}
	return d
}

// Density is the share of the matrix's Rows×Cols entries that are stored,
// 0 for an empty matrix.
func (m CSR) Density() float64 {
	if m.Rows == 0 || m.Cols == 0 {
		return 0
	}
	return float64(len(m.Values)) / (float64(m.Rows) * float64(m.Cols))
}

// AppendDenseRow adds a row given by all its values, keeping the non-zero ones.
func (m *CSR) AppendDenseRow(row []float32) {
	m.Indices, m.Values = AppendNonZero(m.Indices, m.Values, row)
	m.RowPtr = append(m.RowPtr, len(m.Indices))
	m.Rows++
}

// FromDense keeps the non-zero entries of d.
func FromDense(d dense.Matrix) CSR {
	m := New(d.Cols)
	for i := range d.Rows {
		m.AppendDenseRow(d.Row(i))
	}
	return m
}

// AppendNonZero appends the column numbers and values of row's non-zero
// entries to indices and values, and returns the extended slices (as
// append does: nil stays nil when row is all zeros). NaN counts as non-zero.
func AppendNonZero(indices []int32, values []float32, row []float32) ([]int32, []float32) {
	for j, v := range row {
		if v != 0 {
			indices = append(indices, int32(j))
			values = append(values, v)
		}
	}
	return indices, values
}
