package tensorproto

import (
	"errors"
	"runtime"
	"testing"

	tensorpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_go_proto"
	shapepb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_shape_go_proto"
	typespb "github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"
	"github.com/kerasgo/kerasgo/tensor"
	"google.golang.org/protobuf/proto"
)

// FuzzFromProto feeds arbitrary TensorProto messages to the request-tensor
// conversion: it must not panic; a tensor it returns holds exactly the
// elements its shape declares; and it allocates no more than it reserved
// (with the limit a small server would have) plus a fixed allowance, so a
// huge declared shape with a small message is refused, not allocated.
func FuzzFromProto(f *testing.F) {
	seeds := []*tensorpb.TensorProto{
		{Dtype: typespb.DataType_DT_FLOAT, TensorShape: shape(2, 3), FloatVal: []float32{1, 2, 3, 4, 5, 6}},
		{Dtype: typespb.DataType_DT_FLOAT, TensorShape: shape(2, 3), FloatVal: []float32{1}},
		{Dtype: typespb.DataType_DT_FLOAT, TensorShape: shape(1 << 40), FloatVal: []float32{1}},
		{Dtype: typespb.DataType_DT_DOUBLE, TensorShape: shape(1, 2), TensorContent: make([]byte, 16)},
		{Dtype: typespb.DataType_DT_INT64, TensorShape: shape(3), TensorContent: make([]byte, 7)},
		{Dtype: typespb.DataType_DT_STRING, TensorShape: shape(2), StringVal: [][]byte{[]byte("a")}},
		{Dtype: typespb.DataType_DT_BOOL, TensorShape: shape(4), TensorContent: []byte{0, 1, 2, 0}},
		{Dtype: typespb.DataType_DT_INT32, TensorShape: &shapepb.TensorShapeProto{UnknownRank: true}},
		{Dtype: typespb.DataType_DT_HALF, TensorShape: shape(1)},
		{Dtype: typespb.DataType_DT_BFLOAT16, TensorShape: shape(1)},
		{Dtype: typespb.DataType_DT_INT8, TensorShape: shape(1 << 20), IntVal: []int32{300}},
		{Dtype: typespb.DataType_DT_UINT16, TensorShape: shape(2), TensorContent: []byte{1, 2, 3}},
		{Dtype: typespb.DataType_DT_UINT64, TensorShape: shape(2), Uint64Val: []uint64{1 << 63}},
		{Dtype: typespb.DataType_DT_FLOAT, TensorShape: shape(-1, 3)},
		{Dtype: typespb.DataType_DT_FLOAT, TensorShape: shape(1<<62, 1<<62)},
	}
	for _, tp := range seeds {
		b, err := proto.Marshal(tp)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	const limit = 8 << 20
	errLimit := errors.New("over the limit")
	f.Fuzz(func(t *testing.T, b []byte) {
		var tp tensorpb.TensorProto
		if proto.Unmarshal(b, &tp) != nil {
			return
		}
		var reserved int64
		reserve := func(n int64) error {
			if reserved+n > limit {
				return errLimit
			}
			reserved += n
			return nil
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		got, err := FromProto("x", &tp, reserve)
		runtime.ReadMemStats(&after)
		if allocated := int64(after.TotalAlloc - before.TotalAlloc); allocated > reserved+int64(len(b))+64<<10 {
			t.Errorf("allocated %d bytes, reserved %d, for a %d-byte message", allocated, reserved, len(b))
		}
		if err != nil {
			return
		}
		n := int64(1)
		for _, d := range got.Shape {
			n *= d
		}
		if length := int64(tensor.Len(got.Data)); length != n {
			t.Errorf("shape %v holds %d elements, data %d", got.Shape, n, length)
		}
	})
}

func shape(sizes ...int64) *shapepb.TensorShapeProto {
	s := &shapepb.TensorShapeProto{}
	for _, d := range sizes {
		s.Dim = append(s.Dim, &shapepb.TensorShapeProto_Dim{Size: d})
	}
	return s
}
