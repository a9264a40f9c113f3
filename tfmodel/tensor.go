package tfmodel

import (
	"bytes"
	"fmt"
	"runtime"
	"unsafe"

	tf "github.com/galeone/tensorflow/tensorflow/go"

	"github.com/kerasgo/kerasgo/dense"
)

// bytesOf views a slice of numbers as its bytes, without copying.
func bytesOf[T float32 | int64](s []T) []byte {
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(zero)))
}

// newTensor copies data into a new TensorFlow-allocated tensor of type dt, so
// C never holds a pointer into Go memory.
func newTensor[T float32 | int64](dt tf.DataType, data []T, shape ...int64) (*tf.Tensor, error) {
	t, err := tf.ReadTensor(dt, shape, bytes.NewReader(bytesOf(data)))
	if err != nil {
		return nil, fmt.Errorf("making %v tensor %v: %w", dtypeFromTF(dt), shape, err)
	}
	return t, nil
}

// byteSink copies written bytes into a fixed buffer.
type byteSink struct {
	buf []byte
	n   int
}

func (s *byteSink) Write(p []byte) (int, error) {
	if len(p) > len(s.buf)-s.n {
		return 0, fmt.Errorf("tensor has more data than expected: %w", ErrShape)
	}
	s.n += copy(s.buf[s.n:], p)
	return len(p), nil
}

// readMatrix copies a rank-2 float32 tensor into dst starting at row offset;
// dst must have the tensor's column count. With dst.Data nil it allocates a
// matrix of rows×(tensor columns) first. It returns the (possibly new) matrix.
func readMatrix(t *tf.Tensor, dst dense.Matrix, offset int) (dense.Matrix, error) {
	if t.DataType() != tf.Float {
		return dst, fmt.Errorf("output is %v, want float32: %w", t.DataType(), ErrUnsupportedDType)
	}
	shape := t.Shape()
	var rows, cols int
	switch len(shape) {
	case 1:
		rows, cols = int(shape[0]), 1
	case 2:
		rows, cols = int(shape[0]), int(shape[1])
	default:
		return dst, fmt.Errorf("output has shape %v, want rank 2: %w", shape, ErrShape)
	}
	if dst.Data == nil {
		dst = dense.New(offset+rows, cols)
	}
	if cols != dst.Cols || offset+rows > dst.Rows {
		return dst, fmt.Errorf("output chunk %v does not fit rows %d.. of a %d×%d result: %w", shape, offset, dst.Rows, dst.Cols, ErrShape)
	}
	part := dst.Data[offset*cols : (offset+rows)*cols]
	sink := &byteSink{buf: bytesOf(part)}
	_, err := t.WriteContentsTo(sink)
	// The bindings free tensors in finalizers and do not keep t alive across
	// their C calls: without this, a collection during WriteContentsTo can
	// free the tensor while C reads it (seen as a SIGSEGV under load).
	runtime.KeepAlive(t)
	if err != nil {
		return dst, fmt.Errorf("reading output: %w", err)
	}
	return dst, nil
}
