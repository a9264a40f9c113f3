// Package tensorproto converts between kerasgo's tensors (package tensor)
// and TensorFlow's TensorProto, as TF Serving's gRPC API, its warmup
// records and its request logs carry them: requests are read by
// TensorFlow's Tensor::FromProto rules, with every element charged to the
// request's memory reservation before it is allocated, and answers are
// written in the typed fields TF Serving fills.
package tensorproto

import (
	"fmt"
	"math"
	"strings"

	tensorpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_go_proto"
	shapepb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_shape_go_proto"
	typespb "github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"
	"github.com/x448/float16"

	"github.com/kerasgo/kerasgo/errkind"
	"github.com/kerasgo/kerasgo/tensor"
)

// dtypeInfo gives the tensor.DType of a TensorFlow dtype kerasgo
// serves and the bytes an element takes in tensor_content (0: strings).
func dtypeInfo(dt typespb.DataType) (name tensor.DType, size int64, ok bool) {
	d := tensor.FromTFName(dtypeName(dt))
	return d, d.Width(), d.MakeData(0) != nil
}

// stringHeaderBytes is what each element of a string tensor holds besides
// its bytes, which stay in the request message: a slice header.
const stringHeaderBytes = 24

// FromProto converts a request's TensorProto into a Tensor as TensorFlow's
// Tensor::FromProto does: tensor_content, when set, holds exactly the
// elements, little-endian; otherwise the typed field (float_val, ...) holds
// them, and when it holds fewer than the shape, the last value fills the
// rest (none: zeros). Unlike TensorFlow, the elements are charged to the
// request's reservation (reserve) before they are allocated, so a huge shape with a
// small body is refused, not allocated.
func FromProto(alias string, tp *tensorpb.TensorProto, reserve func(bytes int64) error) (tensor.Tensor, error) {
	dtName, dtSize, ok := dtypeInfo(tp.GetDtype())
	if !ok {
		return tensor.Tensor{}, errkind.New(errkind.InvalidInput, "input %q: dtype %s is not supported (kerasgo serves DT_BOOL, DT_STRING, DT_HALF, DT_FLOAT, DT_DOUBLE, and the signed and unsigned integers of 8 to 64 bits)", alias, dtypeName(tp.GetDtype()))
	}
	shape, n, err := shapeOf(alias, tp.GetTensorShape())
	if err != nil {
		return tensor.Tensor{}, err
	}
	size := dtSize
	switch {
	case size == 0:
		size = stringHeaderBytes
	case size < 4 && dtName != tensor.Bool && len(tp.GetTensorContent()) == 0:
		size += 4 // int_val or half_val, filled to n int32s before the conversion
	}
	if n > math.MaxInt64/size {
		return tensor.Tensor{}, errkind.New(errkind.InvalidInput, "input %q: shape %s has too many elements", alias, formatShape(shape))
	}
	if err := reserve(n * size); err != nil {
		if errkind.Of(err) == errkind.TooLarge {
			return tensor.Tensor{}, errkind.New(errkind.InvalidInput, "input %q: shape %s declares %d elements, more than the server lets requests hold: %v", alias, formatShape(shape), n, err)
		}
		return tensor.Tensor{}, err
	}
	t := tensor.Tensor{DType: dtName, Shape: shape}
	if content := tp.GetTensorContent(); len(content) > 0 {
		if dtSize == 0 {
			return tensor.Tensor{}, errkind.New(errkind.InvalidInput, "input %q: a DT_STRING tensor carries its values in string_val, not tensor_content", alias)
		}
		if int64(len(content)) != n*dtSize {
			return tensor.Tensor{}, errkind.New(errkind.InvalidInput, "input %q: tensor_content holds %d bytes; shape %s of %s needs %d", alias, len(content), formatShape(shape), dtypeName(tp.GetDtype()), n*dtSize)
		}
		if t, err = tensor.DecodeRaw(dtName, shape, content); err != nil {
			return tensor.Tensor{}, errkind.New(errkind.InvalidInput, "input %q: tensor_content: %v", alias, err)
		}
		return t, nil
	}
	switch dtName {
	case tensor.Float16:
		bits := fill(tp.GetHalfVal(), n)
		h := make([]float16.Float16, n)
		for i, b := range bits {
			h[i] = float16.Frombits(uint16(b))
		}
		t.Data = h
	case tensor.Float32:
		t.Data = fill(tp.GetFloatVal(), n)
	case tensor.Float64:
		t.Data = fill(tp.GetDoubleVal(), n)
	case tensor.Int8:
		t.Data = Cast[int8](fill(tp.GetIntVal(), n))
	case tensor.Int16:
		t.Data = Cast[int16](fill(tp.GetIntVal(), n))
	case tensor.Int32:
		t.Data = fill(tp.GetIntVal(), n)
	case tensor.Int64:
		t.Data = fill(tp.GetInt64Val(), n)
	case tensor.Uint8:
		t.Data = Cast[uint8](fill(tp.GetIntVal(), n))
	case tensor.Uint16:
		t.Data = Cast[uint16](fill(tp.GetIntVal(), n))
	case tensor.Uint32:
		t.Data = fill(tp.GetUint32Val(), n)
	case tensor.Uint64:
		t.Data = fill(tp.GetUint64Val(), n)
	case tensor.Bool:
		t.Data = fill(tp.GetBoolVal(), n)
	case tensor.String:
		t.Data = fill(tp.GetStringVal(), n)
	}
	return t, nil
}

// Integer is the element types the typed fields convert between.
type Integer interface {
	int8 | int16 | int32 | uint8 | uint16 | uint32
}

// Cast converts each value to T as a Go conversion does, which is
// TensorFlow's rule for int_val too: a value T cannot hold wraps.
func Cast[T, S Integer](src []S) []T {
	out := make([]T, len(src))
	for i, v := range src {
		out[i] = T(v)
	}
	return out
}

// shapeOf reads a request tensor's shape: no shape is a scalar; an unknown
// rank or a negative dimension is invalid.
func shapeOf(alias string, sp *shapepb.TensorShapeProto) ([]int64, int64, error) {
	if sp.GetUnknownRank() {
		return nil, 0, errkind.New(errkind.InvalidInput, "input %q: a request tensor needs a known shape", alias)
	}
	shape := make([]int64, len(sp.GetDim()))
	n := int64(1)
	for i, d := range sp.GetDim() {
		size := d.GetSize()
		if size < 0 {
			return nil, 0, errkind.New(errkind.InvalidInput, "input %q: dimension %d has size %d", alias, i, size)
		}
		if size > 0 && n > math.MaxInt64/size {
			return nil, 0, errkind.New(errkind.InvalidInput, "input %q: shape has more than %d elements", alias, int64(math.MaxInt64))
		}
		shape[i] = size
		n *= size
	}
	return shape, n, nil
}

// fill returns n elements from a typed field by TensorFlow's rule: the
// values as given, the last repeated when there are fewer, zeros when there
// are none, the first n when there are more.
func fill[T any](vals []T, n int64) []T {
	out := make([]T, n)
	if len(vals) == 0 {
		return out
	}
	copied := copy(out, vals)
	for i := copied; i < len(out); i++ {
		out[i] = vals[len(vals)-1]
	}
	return out
}

// ToProto converts a tensor to a TensorProto with typed fields, as
// TF Serving answers (tensor_content only for outputs it cannot type).
func ToProto(t tensor.Tensor) (*tensorpb.TensorProto, error) {
	tp := &tensorpb.TensorProto{TensorShape: &shapepb.TensorShapeProto{}}
	for _, d := range t.Shape {
		tp.TensorShape.Dim = append(tp.TensorShape.Dim, &shapepb.TensorShapeProto_Dim{Size: d})
	}
	switch data := t.Data.(type) {
	case []float32:
		tp.Dtype, tp.FloatVal = typespb.DataType_DT_FLOAT, data
	case []float64:
		tp.Dtype, tp.DoubleVal = typespb.DataType_DT_DOUBLE, data
	case []float16.Float16:
		tp.Dtype, tp.HalfVal = typespb.DataType_DT_HALF, make([]int32, len(data))
		for i, v := range data {
			tp.HalfVal[i] = int32(v.Bits())
		}
	case []int8:
		tp.Dtype, tp.IntVal = typespb.DataType_DT_INT8, Cast[int32](data)
	case []int16:
		tp.Dtype, tp.IntVal = typespb.DataType_DT_INT16, Cast[int32](data)
	case []int32:
		tp.Dtype, tp.IntVal = typespb.DataType_DT_INT32, data
	case []int64:
		tp.Dtype, tp.Int64Val = typespb.DataType_DT_INT64, data
	case []uint8:
		tp.Dtype, tp.IntVal = typespb.DataType_DT_UINT8, Cast[int32](data)
	case []uint16:
		tp.Dtype, tp.IntVal = typespb.DataType_DT_UINT16, Cast[int32](data)
	case []uint32:
		tp.Dtype, tp.Uint32Val = typespb.DataType_DT_UINT32, data
	case []uint64:
		tp.Dtype, tp.Uint64Val = typespb.DataType_DT_UINT64, data
	case []bool:
		tp.Dtype, tp.BoolVal = typespb.DataType_DT_BOOL, data
	case [][]byte:
		tp.Dtype, tp.StringVal = typespb.DataType_DT_STRING, data
	default:
		return nil, fmt.Errorf("output of dtype %s (%T) has no TensorProto form", t.DType, t.Data)
	}
	return tp, nil
}

// DataType is the TensorFlow dtype of a tensor.DType (one of its constants,
// or the lower-case name without DT_ of any other, as tfmodel reads them).
func DataType(name tensor.DType) typespb.DataType {
	return typespb.DataType(typespb.DataType_value[name.TFName()])
}

// dtypeName names a dtype the fork's 2.10 protos may not know (FLOAT8 and
// the 4- and 2-bit types arrive as bare numbers).
func dtypeName(dt typespb.DataType) string {
	if name, ok := typespb.DataType_name[int32(dt)]; ok {
		return name
	}
	return fmt.Sprintf("DataType(%d)", int32(dt))
}

func formatShape(shape []int64) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, ",") + "]"
}
