package grpcapi

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/kerasgo/kerasgo/errkind"
	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/serving/oippb"
	"github.com/kerasgo/kerasgo/serving/tensorproto"
	"github.com/kerasgo/kerasgo/serving/tfservingpb"
	"github.com/kerasgo/kerasgo/tensor"
)

// inference answers the Open Inference Protocol's gRPC API (KServe v2,
// inference.GRPCInferenceService, as NVIDIA Triton's clients call it),
// through the same calls, memory bound and metrics as TF Serving's.
// Outputs always travel as raw_output_contents, which Triton's client
// reads; inputs come as raw_input_contents or typed contents.
type inference struct {
	oippb.UnimplementedGRPCInferenceServiceServer
	s *Service
}

func (in inference) ServerLive(context.Context, *oippb.ServerLiveRequest) (*oippb.ServerLiveResponse, error) {
	return &oippb.ServerLiveResponse{Live: true}, nil
}

func (in inference) ServerReady(context.Context, *oippb.ServerReadyRequest) (*oippb.ServerReadyResponse, error) {
	_, ok := in.s.srv.Ready()
	return &oippb.ServerReadyResponse{Ready: ok}, nil
}

func (in inference) ServerMetadata(context.Context, *oippb.ServerMetadataRequest) (*oippb.ServerMetadataResponse, error) {
	return &oippb.ServerMetadataResponse{Name: serving.ServerName, Version: serving.ServerVersion()}, nil
}

// acquire resolves a model name and version ("" for the latest).
func (in inference) acquire(name, version string) (*serving.ModelVersion, error) {
	var n int64
	if version != "" {
		var err error
		if n, err = strconv.ParseInt(version, 10, 64); err != nil || n <= 0 {
			return nil, errkind.New(errkind.InvalidInput, "version %q is not a positive number", version)
		}
	}
	return in.s.srv.Acquire(name, n, "")
}

func (in inference) ModelReady(ctx context.Context, req *oippb.ModelReadyRequest) (*oippb.ModelReadyResponse, error) {
	mv, err := in.acquire(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, Status(err).Err()
	}
	mv.Release()
	return &oippb.ModelReadyResponse{Ready: true}, nil
}

func (in inference) ModelMetadata(ctx context.Context, req *oippb.ModelMetadataRequest) (*oippb.ModelMetadataResponse, error) {
	mv, err := in.acquire(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, Status(err).Err()
	}
	defer mv.Release()
	numbers, err := in.s.srv.Versions(mv.Name(), 0)
	if err != nil {
		return nil, Status(err).Err()
	}
	resp := &oippb.ModelMetadataResponse{Name: mv.Name(), Platform: serving.Platform}
	for _, n := range numbers {
		resp.Versions = append(resp.Versions, strconv.FormatInt(n, 10))
	}
	inputs, outputs := mv.IOMetadata()
	for _, t := range inputs {
		resp.Inputs = append(resp.Inputs, &oippb.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.DataType, Shape: t.Shape})
	}
	for _, t := range outputs {
		resp.Outputs = append(resp.Outputs, &oippb.ModelMetadataResponse_TensorMetadata{Name: t.Name, Datatype: t.DataType, Shape: t.Shape})
	}
	return resp, nil
}

func (in inference) ModelInfer(ctx context.Context, req *oippb.ModelInferRequest) (*oippb.ModelInferResponse, error) {
	var resp *oippb.ModelInferResponse
	spec := &tfservingpb.ModelSpec{Name: req.GetModelName()}
	err := in.s.call(ctx, "ModelInfer", req, spec, func(ctx context.Context, res *serving.Reservation) (int64, error) {
		mv, err := in.acquire(req.GetModelName(), req.GetModelVersion())
		if err != nil {
			return 0, err
		}
		defer mv.Release()
		inputs, err := inferInputs(req, res)
		if err != nil {
			return mv.Number(), err
		}
		outputs, err := mv.Predict(ctx, "", inputs)
		if err != nil {
			return mv.Number(), err
		}
		names := make([]string, 0, len(req.GetOutputs()))
		for _, o := range req.GetOutputs() {
			if _, ok := outputs[o.GetName()]; !ok {
				return mv.Number(), errkind.New(errkind.InvalidInput, "unexpected inference output %q for model %q", o.GetName(), mv.Name())
			}
			names = append(names, o.GetName())
		}
		if len(names) == 0 {
			names = slices.Sorted(maps.Keys(outputs))
		}
		resp = &oippb.ModelInferResponse{ModelName: mv.Name(), ModelVersion: strconv.FormatInt(mv.Number(), 10), Id: req.GetId()}
		for _, name := range names {
			t := outputs[name]
			raw, err := tensor.AppendRaw(nil, t)
			if err != nil {
				return mv.Number(), err
			}
			if err := res.Grow(int64(len(raw))); err != nil {
				return mv.Number(), err
			}
			resp.Outputs = append(resp.Outputs, &oippb.ModelInferResponse_InferOutputTensor{Name: name, Datatype: t.DType.OIPDataType(), Shape: t.Shape})
			resp.RawOutputContents = append(resp.RawOutputContents, raw)
		}
		logRequest(ctx, mv, req.GetId(), mv.Spec().Signature, func() (*tfservingpb.PredictionLog, error) {
			return serving.PredictLog(inputs, outputs)
		})
		return mv.Number(), nil
	})
	return resp, err
}

// inferInputs reads a request's tensors: from raw_input_contents, one entry
// an input in order, or from each input's typed contents.
func inferInputs(req *oippb.ModelInferRequest, res *serving.Reservation) (map[string]tensor.Tensor, error) {
	raw := req.GetRawInputContents()
	if len(raw) > 0 && len(raw) != len(req.GetInputs()) {
		return nil, errkind.New(errkind.InvalidInput, "%d raw_input_contents for %d inputs: want one each", len(raw), len(req.GetInputs()))
	}
	inputs := make(map[string]tensor.Tensor, len(req.GetInputs()))
	for i, in := range req.GetInputs() {
		name := in.GetName()
		dtype, n, err := serving.OIPInputHeader(inputs, name, in.GetDatatype(), in.GetShape())
		if err != nil {
			return nil, err
		}
		if err := res.Grow(n * 8); err != nil {
			return nil, err
		}
		var t tensor.Tensor
		if len(raw) > 0 {
			if in.GetContents() != nil {
				return nil, errkind.New(errkind.InvalidInput, "input %q has contents beside raw_input_contents", name)
			}
			var err error
			if t, err = tensor.DecodeRaw(dtype, in.GetShape(), raw[i]); err != nil {
				return nil, errkind.New(errkind.InvalidInput, "input %q: %v", name, err)
			}
		} else {
			data, err := typedContents(in.GetContents(), dtype)
			if err != nil {
				return nil, errkind.New(errkind.InvalidInput, "input %q: %v", name, err)
			}
			if got := int64(tensor.Len(data)); got != n {
				return nil, errkind.New(errkind.InvalidInput, "input %q: %d %s contents for shape %v, which holds %d", name, got, in.GetDatatype(), in.GetShape(), n)
			}
			t = tensor.Tensor{DType: dtype, Shape: in.GetShape(), Data: data}
		}
		inputs[name] = t
	}
	if len(inputs) == 0 {
		return nil, errkind.New(errkind.InvalidInput, "the request has no inputs")
	}
	return inputs, nil
}

// typedContents returns an input's elements from the contents field its
// datatype uses: INT8 to INT32 in int_contents, UINT8 to UINT32 in
// uint_contents, each value checked to fit; FP16 has no such field.
func typedContents(c *oippb.InferTensorContents, dtype tensor.DType) (any, error) {
	switch dtype {
	case tensor.Float32:
		return c.GetFp32Contents(), nil
	case tensor.Float64:
		return c.GetFp64Contents(), nil
	case tensor.Int8:
		return narrow[int8](c.GetIntContents())
	case tensor.Int16:
		return narrow[int16](c.GetIntContents())
	case tensor.Int32:
		return c.GetIntContents(), nil
	case tensor.Int64:
		return c.GetInt64Contents(), nil
	case tensor.Uint8:
		return narrow[uint8](c.GetUintContents())
	case tensor.Uint16:
		return narrow[uint16](c.GetUintContents())
	case tensor.Uint32:
		return c.GetUintContents(), nil
	case tensor.Uint64:
		return c.GetUint64Contents(), nil
	case tensor.Bool:
		return c.GetBoolContents(), nil
	case tensor.String:
		return c.GetBytesContents(), nil
	}
	return nil, fmt.Errorf("%s has no typed contents field: send it in raw_input_contents", dtype.OIPDataType())
}

// narrow converts each value to T, refusing one that T cannot hold.
func narrow[T, S tensorproto.Integer](src []S) ([]T, error) {
	out := tensorproto.Cast[T](src)
	for i, v := range src {
		if S(out[i]) != v || (v < 0) != (out[i] < 0) {
			return nil, fmt.Errorf("element %d, %d, does not fit %T", i, v, out[i])
		}
	}
	return out, nil
}
