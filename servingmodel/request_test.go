package servingmodel_test

import (
	"encoding/binary"
	"math"

	tensorpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_go_proto"
	shapepb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_shape_go_proto"
	typespb "github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/serving/tfservingpb"
)

// matrixRequest is TF Serving's PredictRequest for model with x as its
// "features" input: a float32 tensor in tensor_content, as TF Serving's
// Python client sends a numpy array (tf.make_tensor_proto).
func matrixRequest(model string, x dense.Matrix) *tfservingpb.PredictRequest {
	content := make([]byte, 0, 4*len(x.Data))
	for _, v := range x.Data {
		content = binary.LittleEndian.AppendUint32(content, math.Float32bits(v))
	}
	return &tfservingpb.PredictRequest{
		ModelSpec: &tfservingpb.ModelSpec{Name: model},
		Inputs: map[string]*tensorpb.TensorProto{"features": {
			Dtype:         typespb.DataType_DT_FLOAT,
			TensorShape:   &shapepb.TensorShapeProto{Dim: []*shapepb.TensorShapeProto_Dim{{Size: int64(x.Rows)}, {Size: int64(x.Cols)}}},
			TensorContent: content,
		}},
	}
}
