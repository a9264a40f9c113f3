// Package dense holds the row-major float32 matrix that kerasgo passes
// between readers, the TensorFlow runtime and the metrics.
//
// It has no dependencies beyond the standard library and no cgo, so every
// package that moves batches of rows around can share one type.
package dense

import (
	"errors"
	"fmt"
)

// ErrShape reports data whose length does not match the matrix's shape.
var ErrShape = errors.New("matrix shape mismatch")

// Matrix is a row-major matrix of float32: element (i, j) is Data[i*Cols+j].
type Matrix struct {
	Rows int
	Cols int
	Data []float32
}

// New returns a zeroed rows×cols matrix.
func New(rows, cols int) Matrix {
	return Matrix{Rows: rows, Cols: cols, Data: make([]float32, rows*cols)}
}

// FromRows copies equally long rows into a new matrix.
func FromRows(rows [][]float32) (Matrix, error) {
	if len(rows) == 0 {
		return Matrix{}, nil
	}
	m := New(len(rows), len(rows[0]))
	for i, r := range rows {
		if len(r) != m.Cols {
			return Matrix{}, fmt.Errorf("row %d has %d values, row 0 has %d: %w", i, len(r), m.Cols, ErrShape)
		}
		copy(m.Row(i), r)
	}
	return m, nil
}

// Validate checks that Data holds exactly Rows×Cols values.
func (m Matrix) Validate() error {
	if m.Rows < 0 || m.Cols < 0 || len(m.Data) != m.Rows*m.Cols {
		return fmt.Errorf("%d values for a %d×%d matrix: %w", len(m.Data), m.Rows, m.Cols, ErrShape)
	}
	return nil
}

// Row returns row i as a slice sharing the matrix's storage.
func (m Matrix) Row(i int) []float32 {
	return m.Data[i*m.Cols : (i+1)*m.Cols : (i+1)*m.Cols]
}

// Slice returns rows [from, to) as a matrix sharing the storage.
func (m Matrix) Slice(from, to int) Matrix {
	return Matrix{Rows: to - from, Cols: m.Cols, Data: m.Data[from*m.Cols : to*m.Cols : to*m.Cols]}
}

// At returns element (i, j).
func (m Matrix) At(i, j int) float32 { return m.Data[i*m.Cols+j] }
