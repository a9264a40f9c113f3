package tfmodel

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"reflect"
	"runtime"
	"slices"

	tf "github.com/galeone/tensorflow/tensorflow/go"
	"github.com/x448/float16"

	"github.com/kerasgo/kerasgo/tensor"
)

// RunTensors calls the signature key with tensors of any shape and returns
// every output. Dtypes and shapes are left to TensorFlow, as TF Serving
// leaves them: a [3] tensor may feed an input declared [-1, 1] when the
// graph allows it, and serialized tf.Examples feed a classify input whose
// signature records another dtype (TF Serving's half_plus_three does).
func (m *Model) RunTensors(ctx context.Context, key string, inputs map[string]tensor.Tensor) (map[string]tensor.Tensor, error) {
	sig, ok := m.sigs[key]
	if !ok {
		return nil, fmt.Errorf("run %q: %w", key, ErrUnknownSignature)
	}
	given := slices.Collect(maps.Keys(inputs))
	res, names, err := m.runFed(ctx, key, sig, given, func(name string) (*tf.Tensor, error) {
		return m.newTensorOf(inputs[name])
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]tensor.Tensor, len(names))
	for i, name := range names {
		t, err := tensorFrom(res[i])
		if err != nil {
			return nil, fmt.Errorf("run %q: output %q: %w", key, name, err)
		}
		out[name] = t
	}
	runtime.KeepAlive(res) // see readMatrix
	return out, nil
}

// newTensorOf copies t into a TensorFlow tensor.
func (m *Model) newTensorOf(t tensor.Tensor) (*tf.Tensor, error) {
	n := t.Elements()
	var flat any
	switch d := t.Data.(type) {
	case []float32, []float64, []int8, []int16, []int32, []int64, []uint8, []uint16, []uint32, []uint64, []bool:
		flat = d
	case []float16.Float16:
		if int64(len(d)) != n {
			return nil, fmt.Errorf("%d elements for shape %v: %w", len(d), t.Shape, ErrShape)
		}
		return m.half.fromBits(d, t.Shape)
	case [][]byte:
		s := make([]string, len(d))
		for i, b := range d {
			s[i] = string(b)
		}
		flat = s
	default:
		return nil, fmt.Errorf("data of type %T: %w", t.Data, ErrUnsupportedDType)
	}
	if got := int64(reflect.ValueOf(flat).Len()); got != n {
		return nil, fmt.Errorf("%d elements for shape %v: %w", got, t.Shape, ErrShape)
	}
	if s, ok := flat.([]string); ok {
		// The bindings reshape only fixed-size elements: build strings nested.
		flat = nest(reflect.ValueOf(s), t.Shape).Interface()
	}
	tt, err := tf.NewTensor(flat)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrUnsupportedDType)
	}
	if !slices.Equal(tt.Shape(), t.Shape) {
		if err := tt.Reshape(append([]int64{}, t.Shape...)); err != nil {
			return nil, fmt.Errorf("shape %v: %v: %w", t.Shape, err, ErrShape)
		}
	}
	return tt, nil
}

// tensorFrom copies a TensorFlow tensor into a Tensor.
func tensorFrom(t *tf.Tensor) (tensor.Tensor, error) {
	dtype, shape := dtypeFromTF(t.DataType()), append([]int64{}, t.Shape()...)
	switch {
	case dtype == tensor.String:
		s := flatten[string](reflect.ValueOf(t.Value()), nil)
		b := make([][]byte, len(s))
		for i := range s {
			b[i] = []byte(s[i])
		}
		return tensor.Tensor{DType: dtype, Shape: shape, Data: b}, nil
	case dtype == tensor.Uint32: // WriteContentsTo refuses the 32- and 64-bit unsigned types
		return tensor.Tensor{DType: dtype, Shape: shape, Data: flatten[uint32](reflect.ValueOf(t.Value()), nil)}, nil
	case dtype == tensor.Uint64:
		return tensor.Tensor{DType: dtype, Shape: shape, Data: flatten[uint64](reflect.ValueOf(t.Value()), nil)}, nil
	case dtype.Width() > 0:
		// A fixed-width tensor's memory is the little-endian raw layout on
		// the little-endian machines TensorFlow's wheels are built for.
		var raw bytes.Buffer
		raw.Grow(int(dtype.Width() * tensor.Tensor{Shape: shape}.Elements()))
		if _, err := t.WriteContentsTo(&raw); err != nil {
			return tensor.Tensor{}, fmt.Errorf("dtype %s: %v: %w", dtype, err, ErrUnsupportedDType)
		}
		return tensor.DecodeRaw(dtype, shape, raw.Bytes())
	}
	return tensor.Tensor{}, fmt.Errorf("dtype %s: %w", dtype, ErrUnsupportedDType)
}

// nest returns the flat slice v as nested slices of the given shape (a
// scalar for an empty shape).
func nest(v reflect.Value, shape []int64) reflect.Value {
	if len(shape) == 0 {
		return v.Index(0)
	}
	if len(shape) == 1 {
		return v
	}
	per := int(v.Len()) / max(int(shape[0]), 1)
	inner := nest(v.Slice(0, min(per, v.Len())), shape[1:])
	out := reflect.MakeSlice(reflect.SliceOf(inner.Type()), int(shape[0]), int(shape[0]))
	for i := range int(shape[0]) {
		out.Index(i).Set(nest(v.Slice(i*per, (i+1)*per), shape[1:]))
	}
	return out
}

// flatten appends the elements of a scalar or (nested) slice value to dst,
// in row-major order.
func flatten[T any](v reflect.Value, dst []T) []T {
	if v.Kind() != reflect.Slice {
		return append(dst, v.Interface().(T))
	}
	for i := range v.Len() {
		dst = flatten(v.Index(i), dst)
	}
	return dst
}
