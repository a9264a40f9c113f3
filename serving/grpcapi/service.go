// Package grpcapi serves TensorFlow Serving's gRPC API over a
// serving.Server: tensorflow.serving.PredictionService (Predict, Classify,
// Regress, MultiInference, GetModelMetadata) and ModelService
// (GetModelStatus, HandleReloadConfigRequest), sharing the REST API's
// models, versions, labels, batcher, memory bound and metrics. Clients
// built from TF Serving's protos, such as the tensorflow-serving-api Python
// package, work unchanged; errors carry the codes TF Serving gives them.
// Beside them it serves the Open Inference Protocol's
// inference.GRPCInferenceService (KServe v2, NVIDIA Triton's clients) on the
// same models.
package grpcapi

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	tensorpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_go_proto"
	shapepb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_shape_go_proto"
	metapb "github.com/galeone/tensorflow/tensorflow/go/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/kerasgo/kerasgo/errkind"
	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/serving/oippb"
	"github.com/kerasgo/kerasgo/serving/tensorproto"
	"github.com/kerasgo/kerasgo/serving/tfservingpb"
	"github.com/kerasgo/kerasgo/tensor"
)

// Service implements TF Serving's PredictionService and ModelService.
type Service struct {
	tfservingpb.UnimplementedPredictionServiceServer
	tfservingpb.UnimplementedModelServiceServer
	srv    *serving.Server
	reload ReloadPolicy
}

// New returns the gRPC services of srv. reload says who may change the
// served models over HandleReloadConfigRequest: its zero value, nobody.
func New(srv *serving.Server, reload ReloadPolicy) *Service {
	return &Service{srv: srv, reload: reload}
}

// Register adds TF Serving's two services and the Open Inference
// Protocol's (inference.GRPCInferenceService) to a gRPC server.
func (s *Service) Register(gs grpc.ServiceRegistrar) {
	tfservingpb.RegisterPredictionServiceServer(gs, s)
	tfservingpb.RegisterModelServiceServer(gs, s)
	oippb.RegisterGRPCInferenceServiceServer(gs, inference{s: s})
}

// reservationKey carries a call's memory reservation in its context.
type reservationKey struct{}

// WithReservation returns ctx carrying res: the reservation a gate in front
// of gRPC made for the call's message before gRPC read it (package
// serving/serve's). The call then charges what decoding adds to res instead
// of reserving anew, and leaves releasing it to the gate.
func WithReservation(ctx context.Context, res *serving.Reservation) context.Context {
	return context.WithValue(ctx, reservationKey{}, res)
}

// call runs one RPC: it reserves the request's memory (the message and
// what decoding it allocates; the message is already charged when a gate
// made the reservation, WithReservation), bounds it by the server's request
// timeout, counts it in the metrics as grpc_<api>, and turns its error into
// a gRPC status. fn returns the version it used, for the metrics.
func (s *Service) call(ctx context.Context, api string, req proto.Message, spec *tfservingpb.ModelSpec, fn func(context.Context, *serving.Reservation) (int64, error)) error {
	start := time.Now()
	var number int64
	err := func() error {
		res, gated := ctx.Value(reservationKey{}).(*serving.Reservation)
		if !gated {
			var err error
			if res, err = s.srv.Reserve(); err != nil {
				return err
			}
			defer res.Release()
			if err := res.Grow(int64(proto.Size(req))); err != nil {
				return err
			}
		}
		ctx, cancel := context.WithTimeout(ctx, s.srv.RequestTimeout())
		defer cancel()
		var err error
		number, err = fn(ctx, res)
		return err
	}()
	st := Status(err)
	s.srv.Observe(spec.GetName(), number, "grpc_"+api, st.Code().String(), time.Since(start))
	return st.Err()
}

// codeOf is the gRPC code TF Serving gives each kind of error. A server
// too loaded for the request is UNAVAILABLE, as TF Serving answers a full
// batching queue, which clients' retry policies retry with backoff; a
// request that could never fit is RESOURCE_EXHAUSTED, which they do not.
var codeOf = [...]codes.Code{
	errkind.Internal:           codes.Internal,
	errkind.InvalidInput:       codes.InvalidArgument,
	errkind.NotFound:           codes.NotFound,
	errkind.FailedPrecondition: codes.FailedPrecondition,
	errkind.TooLarge:           codes.ResourceExhausted,
	errkind.Overloaded:         codes.Unavailable,
	errkind.Unimplemented:      codes.Unimplemented,
	errkind.DeadlineExceeded:   codes.DeadlineExceeded,
	errkind.Canceled:           codes.Canceled,
}

// Status maps an error to the gRPC status TF Serving gives it: a gRPC
// status as it is, any other error by its errkind.Kind (codeOf).
func Status(err error) *status.Status {
	if err == nil {
		return status.New(codes.OK, "")
	}
	if st, ok := status.FromError(err); ok {
		return st
	}
	code := codes.Internal
	if k := errkind.Of(err); int(k) >= 0 && int(k) < len(codeOf) {
		code = codeOf[k]
	}
	return status.New(code, err.Error())
}

// acquire resolves a ModelSpec to a served version.
func (s *Service) acquire(spec *tfservingpb.ModelSpec) (*serving.ModelVersion, error) {
	if spec == nil {
		return nil, errkind.New(errkind.InvalidInput, "Missing ModelSpec")
	}
	return s.srv.Acquire(spec.GetName(), spec.GetVersion().GetValue(), spec.GetVersionLabel())
}

// replySpec is the ModelSpec of a response: the model, the version that
// answered and the signature.
func replySpec(mv *serving.ModelVersion, signature string) *tfservingpb.ModelSpec {
	return &tfservingpb.ModelSpec{
		Name:          mv.Name(),
		VersionChoice: &tfservingpb.ModelSpec_Version{Version: wrapperspb.Int64(mv.Number())},
		SignatureName: signature,
	}
}

// Predict runs a signature on the request's tensors.
func (s *Service) Predict(ctx context.Context, req *tfservingpb.PredictRequest) (*tfservingpb.PredictResponse, error) {
	var resp *tfservingpb.PredictResponse
	err := s.call(ctx, "Predict", req, req.GetModelSpec(), func(ctx context.Context, res *serving.Reservation) (int64, error) {
		mv, err := s.acquire(req.GetModelSpec())
		if err != nil {
			return 0, err
		}
		defer mv.Release()
		signature := req.GetModelSpec().GetSignatureName()
		if signature == "" {
			signature = mv.Spec().Signature
		}
		inputs := make(map[string]tensor.Tensor, len(req.GetInputs()))
		for alias, tp := range req.GetInputs() {
			t, err := tensorproto.FromProto(alias, tp, res.Grow)
			if err != nil {
				return mv.Number(), err
			}
			inputs[alias] = t
		}
		outputs, err := mv.Predict(ctx, signature, inputs)
		if err != nil {
			return mv.Number(), err
		}
		resp = &tfservingpb.PredictResponse{ModelSpec: replySpec(mv, signature), Outputs: map[string]*tensorpb.TensorProto{}}
		seen := map[string]bool{}
		for _, name := range req.GetOutputFilter() {
			if _, ok := outputs[name]; !ok {
				return mv.Number(), errkind.New(errkind.InvalidInput, "output tensor alias not found in signature: %s Outputs expected to be in the set {%s}.", name, strings.Join(slices.Sorted(maps.Keys(outputs)), ","))
			}
			if seen[name] {
				return mv.Number(), errkind.New(errkind.InvalidInput, "duplicate output tensor alias: %s", name)
			}
			seen[name] = true
		}
		for name, t := range outputs {
			if len(req.GetOutputFilter()) > 0 && !slices.Contains(req.GetOutputFilter(), name) {
				continue
			}
			if resp.Outputs[name], err = tensorproto.ToProto(t); err != nil {
				return mv.Number(), err
			}
		}
		logRequest(ctx, mv, "", signature, func() (*tfservingpb.PredictionLog, error) {
			return &tfservingpb.PredictionLog{LogType: &tfservingpb.PredictionLog_PredictLog{PredictLog: &tfservingpb.PredictLog{Request: req, Response: resp}}}, nil
		})
		return mv.Number(), nil
	})
	return resp, err
}

// Classify runs a classification signature on tf.Examples.
func (s *Service) Classify(ctx context.Context, req *tfservingpb.ClassificationRequest) (*tfservingpb.ClassificationResponse, error) {
	var resp *tfservingpb.ClassificationResponse
	err := s.call(ctx, "Classify", req, req.GetModelSpec(), func(ctx context.Context, _ *serving.Reservation) (int64, error) {
		mv, err := s.acquire(req.GetModelSpec())
		if err != nil {
			return 0, err
		}
		defer mv.Release()
		examples, err := serializedExamples(req.GetInput())
		if err != nil {
			return mv.Number(), err
		}
		result, err := classify(ctx, mv, req.GetModelSpec().GetSignatureName(), examples)
		if err != nil {
			return mv.Number(), err
		}
		resp = &tfservingpb.ClassificationResponse{ModelSpec: replySpec(mv, signatureOrDefault(req.GetModelSpec())), Result: result}
		logRequest(ctx, mv, "", signatureOrDefault(req.GetModelSpec()), func() (*tfservingpb.PredictionLog, error) {
			return &tfservingpb.PredictionLog{LogType: &tfservingpb.PredictionLog_ClassifyLog{ClassifyLog: &tfservingpb.ClassifyLog{Request: req, Response: resp}}}, nil
		})
		return mv.Number(), nil
	})
	return resp, err
}

// Regress runs a regression signature on tf.Examples.
func (s *Service) Regress(ctx context.Context, req *tfservingpb.RegressionRequest) (*tfservingpb.RegressionResponse, error) {
	var resp *tfservingpb.RegressionResponse
	err := s.call(ctx, "Regress", req, req.GetModelSpec(), func(ctx context.Context, _ *serving.Reservation) (int64, error) {
		mv, err := s.acquire(req.GetModelSpec())
		if err != nil {
			return 0, err
		}
		defer mv.Release()
		examples, err := serializedExamples(req.GetInput())
		if err != nil {
			return mv.Number(), err
		}
		result, err := regress(ctx, mv, req.GetModelSpec().GetSignatureName(), examples)
		if err != nil {
			return mv.Number(), err
		}
		resp = &tfservingpb.RegressionResponse{ModelSpec: replySpec(mv, signatureOrDefault(req.GetModelSpec())), Result: result}
		logRequest(ctx, mv, "", signatureOrDefault(req.GetModelSpec()), func() (*tfservingpb.PredictionLog, error) {
			return &tfservingpb.PredictionLog{LogType: &tfservingpb.PredictionLog_RegressLog{RegressLog: &tfservingpb.RegressLog{Request: req, Response: resp}}}, nil
		})
		return mv.Number(), nil
	})
	return resp, err
}

// MultiInference runs several classification and regression signatures of
// one model on the same tf.Examples.
func (s *Service) MultiInference(ctx context.Context, req *tfservingpb.MultiInferenceRequest) (*tfservingpb.MultiInferenceResponse, error) {
	var resp *tfservingpb.MultiInferenceResponse
	var first *tfservingpb.ModelSpec
	if len(req.GetTasks()) > 0 {
		first = req.GetTasks()[0].GetModelSpec()
	}
	err := s.call(ctx, "MultiInference", req, first, func(ctx context.Context, _ *serving.Reservation) (int64, error) {
		if len(req.GetTasks()) == 0 {
			return 0, errkind.New(errkind.InvalidInput, "Tasks is empty")
		}
		seen := map[string]bool{}
		for _, task := range req.GetTasks() {
			spec := task.GetModelSpec()
			if spec.GetName() != first.GetName() {
				return 0, errkind.New(errkind.InvalidInput, "All ModelSpecs in a MultiInferenceRequest must access the same model name.")
			}
			sig := signatureOrDefault(spec)
			if seen[sig] {
				return 0, errkind.New(errkind.InvalidInput, "Duplicate evaluation of signature: %s", sig)
			}
			seen[sig] = true
		}
		mv, err := s.acquire(first)
		if err != nil {
			return 0, err
		}
		defer mv.Release()
		for _, task := range req.GetTasks() {
			if m := task.GetMethodName(); m != serving.MethodClassify && m != serving.MethodRegress {
				return mv.Number(), status.Errorf(codes.Unimplemented, "Unsupported signature method_name: %s", m)
			}
			if sig := signatureOrDefault(task.GetModelSpec()); !mv.HasSignature(sig) {
				return mv.Number(), errkind.New(errkind.InvalidInput, "Requested signature not found in model graph: %s", sig)
			}
		}
		// Serialized once, for every task.
		examples, err := serializedExamples(req.GetInput())
		if err != nil {
			return mv.Number(), err
		}
		resp = &tfservingpb.MultiInferenceResponse{}
		for _, task := range req.GetTasks() {
			sig := task.GetModelSpec().GetSignatureName()
			out := &tfservingpb.InferenceResult{ModelSpec: replySpec(mv, signatureOrDefault(task.GetModelSpec()))}
			// The methods were checked above: classify or regress.
			if task.GetMethodName() == serving.MethodClassify {
				r, err := classify(ctx, mv, sig, examples)
				if err != nil {
					return mv.Number(), err
				}
				out.Result = &tfservingpb.InferenceResult_ClassificationResult{ClassificationResult: r}
			} else {
				r, err := regress(ctx, mv, sig, examples)
				if err != nil {
					return mv.Number(), err
				}
				out.Result = &tfservingpb.InferenceResult_RegressionResult{RegressionResult: r}
			}
			resp.Results = append(resp.Results, out)
		}
		logRequest(ctx, mv, "", signatureOrDefault(first), func() (*tfservingpb.PredictionLog, error) {
			return &tfservingpb.PredictionLog{LogType: &tfservingpb.PredictionLog_MultiInferenceLog{MultiInferenceLog: &tfservingpb.MultiInferenceLog{Request: req, Response: resp}}}, nil
		})
		return mv.Number(), nil
	})
	return resp, err
}

// RequestIDKey is the gRPC metadata key of a request's id: the client's,
// if it sends one, or a new one, sent back in the response's header
// metadata when the model logs requests (serving.RequestIDHeader over
// HTTP).
const RequestIDKey = "x-request-id"

// logRequest writes a request and its answer to the model's request log
// (serving.ModelVersion.Log) under the request's id: given (the Open
// Inference Protocol's own id), else the client's RequestIDKey, else a new
// one, which the response's header metadata carries.
func logRequest(ctx context.Context, mv *serving.ModelVersion, given, signature string, record func() (*tfservingpb.PredictionLog, error)) {
	if !mv.Logs() {
		return
	}
	if given == "" {
		if ids := metadata.ValueFromIncomingContext(ctx, RequestIDKey); len(ids) > 0 {
			given = ids[0]
		}
	}
	id := serving.RequestID(given)
	_ = grpc.SetHeader(ctx, metadata.Pairs(RequestIDKey, id)) // fails only outside a gRPC server (a direct call)
	mv.Log(id, signature, record)
}

func signatureOrDefault(spec *tfservingpb.ModelSpec) string {
	if sig := spec.GetSignatureName(); sig != "" {
		return sig
	}
	return "serving_default"
}

// GetModelMetadata answers the signature_def metadata, the only field TF
// Serving has.
func (s *Service) GetModelMetadata(ctx context.Context, req *tfservingpb.GetModelMetadataRequest) (*tfservingpb.GetModelMetadataResponse, error) {
	var resp *tfservingpb.GetModelMetadataResponse
	err := s.call(ctx, "GetModelMetadata", req, req.GetModelSpec(), func(context.Context, *serving.Reservation) (int64, error) {
		if len(req.GetMetadataField()) == 0 {
			return 0, errkind.New(errkind.InvalidInput, "GetModelMetadataRequest must specify at least one metadata_field")
		}
		for _, f := range req.GetMetadataField() {
			if f != "signature_def" {
				return 0, errkind.New(errkind.InvalidInput, "Metadata field %s is not supported", f)
			}
		}
		mv, err := s.acquire(req.GetModelSpec())
		if err != nil {
			return 0, err
		}
		defer mv.Release()
		sigs := &tfservingpb.SignatureDefMap{SignatureDef: map[string]*metapb.SignatureDef{}}
		for name, sig := range mv.Spec().Signatures {
			sigs.SignatureDef[name] = &metapb.SignatureDef{Inputs: tensorInfos(sig.Inputs), Outputs: tensorInfos(sig.Outputs), MethodName: sig.MethodName}
		}
		packed, err := anypb.New(sigs)
		if err != nil {
			return mv.Number(), fmt.Errorf("packing the signature_def map: %w", err)
		}
		spec := replySpec(mv, "")
		resp = &tfservingpb.GetModelMetadataResponse{ModelSpec: spec, Metadata: map[string]*anypb.Any{"signature_def": packed}}
		return mv.Number(), nil
	})
	return resp, err
}

func tensorInfos(specs map[string]tensor.Spec) map[string]*metapb.TensorInfo {
	out := make(map[string]*metapb.TensorInfo, len(specs))
	for alias, t := range specs {
		info := &metapb.TensorInfo{Encoding: &metapb.TensorInfo_Name{Name: t.Name}, Dtype: tensorproto.DataType(t.DType), TensorShape: &shapepb.TensorShapeProto{}}
		switch {
		case t.NoShape:
			info.TensorShape = nil
		case t.Shape == nil:
			info.TensorShape.UnknownRank = true
		}
		for _, d := range t.Shape {
			info.TensorShape.Dim = append(info.TensorShape.Dim, &shapepb.TensorShapeProto_Dim{Size: d})
		}
		out[alias] = info
	}
	return out
}

// GetModelStatus lists the loaded versions of a model, or the one asked.
func (s *Service) GetModelStatus(ctx context.Context, req *tfservingpb.GetModelStatusRequest) (*tfservingpb.GetModelStatusResponse, error) {
	var resp *tfservingpb.GetModelStatusResponse
	err := s.call(ctx, "GetModelStatus", req, req.GetModelSpec(), func(context.Context, *serving.Reservation) (int64, error) {
		spec := req.GetModelSpec()
		if spec == nil {
			return 0, errkind.New(errkind.InvalidInput, "Missing ModelSpec")
		}
		versions, err := s.srv.Versions(spec.GetName(), spec.GetVersion().GetValue())
		if err != nil {
			return 0, err
		}
		resp = &tfservingpb.GetModelStatusResponse{}
		for _, n := range versions {
			resp.ModelVersionStatus = append(resp.ModelVersionStatus, &tfservingpb.ModelVersionStatus{
				Version: n, State: tfservingpb.ModelVersionStatus_AVAILABLE,
				Status: &tfservingpb.StatusProto{ErrorCode: metapb.Code_OK},
			})
		}
		return 0, nil
	})
	return resp, err
}

// HandleReloadConfigRequest serves exactly the request's model config
// from now on (serving.Server.Reload) and answers once its models are
// loaded; on failure the previous config stays served. The ReloadPolicy
// decides first: with reloading off, PERMISSION_DENIED; without the
// policy's bearer token, UNAUTHENTICATED; a base path outside its roots,
// PERMISSION_DENIED. None of them changes anything.
func (s *Service) HandleReloadConfigRequest(ctx context.Context, req *tfservingpb.ReloadConfigRequest) (*tfservingpb.ReloadConfigResponse, error) {
	var resp *tfservingpb.ReloadConfigResponse
	err := s.call(ctx, "HandleReloadConfigRequest", req, nil, func(ctx context.Context, _ *serving.Reservation) (int64, error) {
		if err := s.reload.authorize(ctx); err != nil {
			return 0, err
		}
		models, err := ModelConfigs(req.GetConfig())
		if err != nil {
			return 0, err
		}
		if models, err = s.reload.confine(models); err != nil {
			return 0, err
		}
		// Loading may outlast the request timeout, and a client that
		// gives up must not leave a half-applied config.
		if err := s.srv.Reload(context.WithoutCancel(ctx), models); err != nil {
			return 0, err
		}
		resp = &tfservingpb.ReloadConfigResponse{Status: &tfservingpb.StatusProto{ErrorCode: metapb.Code_OK}}
		return 0, nil
	})
	return resp, err
}
