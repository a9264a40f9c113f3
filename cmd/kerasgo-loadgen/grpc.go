package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_go_proto"
	"github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_shape_go_proto"
	"github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kerasgo/kerasgo/serving/oippb"
	"github.com/kerasgo/kerasgo/serving/tfservingpb"
)

const (
	// connectTimeout bounds the wait for every gRPC connection to be ready
	// before the warm-up starts.
	connectTimeout = 10 * time.Second
	// maxRecvBytes is the largest PredictResponse the gRPC clients accept
	// (grpc-go's default is 4 MiB, TF Serving's own client sets no limit).
	maxRecvBytes = 1 << 30
)

// protocol is the gRPC API the requests are sent to.
type protocol string

// The gRPC APIs the loadgen calls.
const (
	// protocolTFServing is TF Serving's PredictionService/Predict.
	protocolTFServing protocol = "tfserving"
	// protocolOIP is the Open Inference Protocol's
	// GRPCInferenceService/ModelInfer, with the inputs as
	// raw_input_contents, as Triton's client sends NumPy arrays.
	protocolOIP protocol = "oip"
)

// String returns the protocol's flag value.
func (p *protocol) String() string { return string(*p) }

// Set parses a -protocol value.
func (p *protocol) Set(s string) error {
	switch v := protocol(s); v {
	case protocolTFServing, protocolOIP:
		*p = v
		return nil
	}
	return fmt.Errorf("want %s or %s", protocolTFServing, protocolOIP)
}

// grpcConfig is the command line of the gRPC mode.
type grpcConfig struct {
	addr          string // host:port of the server
	protocol      protocol
	model         string // model_spec.name
	signature     string // model_spec.signature_name
	signatureSet  bool   // whether signature was given, so beats the body's
	input         string // the input key of bodies that do not name theirs
	tensorContent bool   // tensor_content bytes rather than float_val
	conns         int    // connections the clients share round-robin
}

// runGRPC converts cfg.body into one PredictRequest (or, with -protocol
// oip, one ModelInferRequest) and sends it from cfg.clients goroutines over
// cfg.grpc.conns connections, reporting as the HTTP fixed-body mode does:
// any status but OK is an error.
func runGRPC(ctx context.Context, cfg config, stdout io.Writer) error {
	g := cfg.grpc
	host, _, err := net.SplitHostPort(g.addr)
	if err != nil {
		return fmt.Errorf("-grpc %q: %w", g.addr, err)
	}
	if !isLoopback(host) {
		return fmt.Errorf("-grpc: %s is not a loopback address", g.addr)
	}
	if g.model == "" {
		return errors.New("-grpc needs -model")
	}
	if g.conns < 1 || g.conns > cfg.clients {
		return fmt.Errorf("-conns %d, want 1..%d (the clients)", g.conns, cfg.clients)
	}
	body, err := os.ReadFile(cfg.body)
	if err != nil {
		return err
	}
	req, err := predictRequest(body, g)
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.body, err)
	}
	// Every client sends the same message: protobuf-go messages are safe
	// to marshal concurrently while nobody modifies them.
	var call func(ctx context.Context, cc *grpc.ClientConn) error
	switch g.protocol {
	case protocolOIP:
		infer, err := inferRequest(req)
		if err != nil {
			return fmt.Errorf("%s: %w", cfg.body, err)
		}
		call = func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := oippb.NewGRPCInferenceServiceClient(cc).ModelInfer(ctx, infer)
			return err
		}
	default:
		call = func(ctx context.Context, cc *grpc.ClientConn) error {
			_, err := tfservingpb.NewPredictionServiceClient(cc).Predict(ctx, req)
			return err
		}
	}
	conns := make([]*grpc.ClientConn, g.conns)
	for i := range conns {
		if conns[i], err = dial(ctx, g.addr); err != nil {
			return err
		}
		defer conns[i].Close()
	}
	send := func(ctx context.Context, client int) error {
		ctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		return call(ctx, conns[client%len(conns)])
	}
	return fixed(ctx, send, cfg.clients, cfg.duration, cfg.warmup, stdout)
}

// inferRequest turns a PredictRequest into the Open Inference Protocol's
// ModelInferRequest that Triton's Python client builds for the same NumPy
// float32 arrays: the same model (no version), one FP32 input per tensor in
// name order, and the values as raw_input_contents, whichever field of the
// TensorProto held them. A PredictRequest that names a signature other than
// serving_default has no such request.
func inferRequest(req *tfservingpb.PredictRequest) (*oippb.ModelInferRequest, error) {
	if sig := req.GetModelSpec().GetSignatureName(); sig != "" && sig != "serving_default" {
		return nil, fmt.Errorf("signature %q: ModelInfer runs serving_default only", sig)
	}
	infer := &oippb.ModelInferRequest{ModelName: req.GetModelSpec().GetName()}
	for _, name := range slices.Sorted(maps.Keys(req.GetInputs())) {
		tp := req.GetInputs()[name]
		shape := make([]int64, len(tp.GetTensorShape().GetDim()))
		for i, d := range tp.GetTensorShape().GetDim() {
			shape[i] = d.GetSize()
		}
		raw := tp.GetTensorContent()
		if raw == nil {
			raw = floatTensor(shape, tp.GetFloatVal(), true).GetTensorContent()
		}
		infer.Inputs = append(infer.Inputs, &oippb.ModelInferRequest_InferInputTensor{Name: name, Datatype: "FP32", Shape: shape})
		infer.RawInputContents = append(infer.RawInputContents, raw)
	}
	return infer, nil
}

// dial opens one plaintext gRPC connection to addr and waits, at most
// connectTimeout, until it is ready, so that a server that is not there is
// an error rather than a run of failed requests.
func dial(ctx context.Context, addr string) (*grpc.ClientConn, error) {
	cc, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvBytes)))
	if err != nil {
		return nil, fmt.Errorf("gRPC client for %s: %w", addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	cc.Connect()
	for s := cc.GetState(); s != connectivity.Ready; s = cc.GetState() {
		if !cc.WaitForStateChange(ctx, s) {
			cc.Close()
			return nil, fmt.Errorf("connecting to %s (state %s): %w", addr, s, ctx.Err())
		}
	}
	return cc, nil
}

// restBody is a TF Serving REST predict body: rows ("instances") or
// columns ("inputs").
type restBody struct {
	SignatureName string          `json:"signature_name"`
	Instances     json.RawMessage `json:"instances"`
	Inputs        json.RawMessage `json:"inputs"`
}

// predictRequest converts a TF Serving REST predict body into the
// PredictRequest TF Serving's REST layer would build from it, for float32
// inputs: the same inputs, each a DT_FLOAT tensor of the body's shape
// ([rows, features] for a list of rows).
//
// Rows ({"instances": [[...], ...]}) and unnamed columns ({"inputs": [...]})
// feed the input g.input; rows of objects ({"instances": [{"x": [...]},
// ...]}) and named columns ({"inputs": {"x": [...]}}) name their inputs.
// Numbers are read as float64 and rounded to float32, as
// np.array(values, np.float32) does.
func predictRequest(body []byte, g grpcConfig) (*tfservingpb.PredictRequest, error) {
	var b restBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("decoding the predict body: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decoding the predict body: data after the object")
	}
	var cols map[string]any
	var err error
	switch {
	case b.Instances != nil && b.Inputs != nil:
		return nil, errors.New(`the body holds both "instances" and "inputs"`)
	case b.Instances != nil:
		cols, err = instanceColumns(b.Instances, g.input)
	case b.Inputs != nil:
		cols, err = inputColumns(b.Inputs, g.input)
	default:
		return nil, errors.New(`the body holds neither "instances" nor "inputs"`)
	}
	if err != nil {
		return nil, err
	}
	req := &tfservingpb.PredictRequest{
		ModelSpec: &tfservingpb.ModelSpec{Name: g.model, SignatureName: g.signature},
		Inputs:    make(map[string]*tensor_go_proto.TensorProto, len(cols)),
	}
	if b.SignatureName != "" && !g.signatureSet {
		req.ModelSpec.SignatureName = b.SignatureName
	}
	for name, v := range cols {
		shape, values, err := flatten(v, name)
		if err != nil {
			return nil, err
		}
		req.Inputs[name] = floatTensor(shape, values, g.tensorContent)
	}
	return req, nil
}

// instanceColumns turns the "instances" list into one value per input: the
// list itself under input, or, for a list of objects, the list of each
// object's value for every key (all objects must hold the same keys).
func instanceColumns(raw json.RawMessage, input string) (map[string]any, error) {
	var rows []any
	if err := json.Unmarshal(raw, &rows); err != nil {
		return nil, fmt.Errorf("instances: expected a list of instances: %w", err)
	}
	if len(rows) == 0 {
		return nil, errors.New("instances: no instances")
	}
	first, named := rows[0].(map[string]any)
	if !named {
		return map[string]any{input: rows}, nil
	}
	keys := sortedKeys(first)
	if len(keys) == 0 {
		return nil, errors.New("instances[0]: no inputs")
	}
	cols := make(map[string]any, len(keys))
	for _, k := range keys {
		col := make([]any, len(rows))
		for i, r := range rows {
			obj, ok := r.(map[string]any)
			if !ok || !slices.Equal(sortedKeys(obj), keys) {
				return nil, fmt.Errorf("instances[%d]: expected an object of the inputs %q, as instances[0]", i, keys)
			}
			col[i] = obj[k]
		}
		cols[k] = col
	}
	return cols, nil
}

// inputColumns turns the "inputs" value into one value per input: an
// object's members, or the whole value under input.
func inputColumns(raw json.RawMessage, input string) (map[string]any, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("inputs: %w", err)
	}
	obj, named := v.(map[string]any)
	if !named {
		return map[string]any{input: v}, nil
	}
	if len(obj) == 0 {
		return nil, errors.New("inputs: no inputs")
	}
	return obj, nil
}

// sortedKeys returns the keys of m in order.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// flatten returns the shape of v, nested JSON lists of numbers decoded by
// encoding/json, and its numbers in row-major order as float32. The shape
// comes from the first element at each depth; every list must match it.
// name is the input, for errors.
func flatten(v any, name string) ([]int64, []float32, error) {
	var shape []int64
	for x := v; ; {
		list, ok := x.([]any)
		if !ok {
			break
		}
		shape = append(shape, int64(len(list)))
		if len(list) == 0 {
			break
		}
		x = list[0]
	}
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	values := make([]float32, 0, n)
	var path []int
	var walk func(x any) error
	walk = func(x any) error {
		depth := len(path)
		if list, ok := x.([]any); ok {
			if depth == len(shape) || int64(len(list)) != shape[depth] {
				return fmt.Errorf("input %q%s: a list of %d, expected shape %v", name, indexPath(path), len(list), shape)
			}
			for i, e := range list {
				path = append(path, i)
				if err := walk(e); err != nil {
					return err
				}
				path = path[:depth]
			}
			return nil
		}
		f, ok := x.(float64)
		switch {
		case depth != len(shape):
			return fmt.Errorf("input %q%s: %s, expected a list (shape %v)", name, indexPath(path), jsonKind(x), shape)
		case !ok:
			return fmt.Errorf("input %q%s: %s, only numbers (float32) are supported", name, indexPath(path), jsonKind(x))
		case math.IsInf(float64(float32(f)), 0):
			return fmt.Errorf("input %q%s: %g is out of float32 range", name, indexPath(path), f)
		}
		values = append(values, float32(f))
		return nil
	}
	if err := walk(v); err != nil {
		return nil, nil, err
	}
	return shape, values, nil
}

// indexPath formats list indices as "[i][j]".
func indexPath(path []int) string {
	var sb strings.Builder
	for _, i := range path {
		sb.WriteString("[" + strconv.Itoa(i) + "]")
	}
	return sb.String()
}

// jsonKind names the JSON type of a value encoding/json decoded.
func jsonKind(x any) string {
	switch x.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return "a string"
	case map[string]any:
		return "an object"
	default:
		return "a list"
	}
}

// floatTensor builds a DT_FLOAT TensorProto. With content the values are
// tensor_content, little-endian (the byte order of every platform TF
// Serving runs on), as tf.make_tensor_proto encodes a NumPy array;
// otherwise they are the typed field float_val.
func floatTensor(shape []int64, values []float32, content bool) *tensor_go_proto.TensorProto {
	dims := make([]*tensor_shape_go_proto.TensorShapeProto_Dim, len(shape))
	for i, d := range shape {
		dims[i] = &tensor_shape_go_proto.TensorShapeProto_Dim{Size: d}
	}
	t := &tensor_go_proto.TensorProto{
		Dtype:       types_go_proto.DataType_DT_FLOAT,
		TensorShape: &tensor_shape_go_proto.TensorShapeProto{Dim: dims},
	}
	if !content {
		t.FloatVal = values
		return t
	}
	t.TensorContent = make([]byte, 0, 4*len(values))
	for _, f := range values {
		t.TensorContent = binary.LittleEndian.AppendUint32(t.TensorContent, math.Float32bits(f))
	}
	return t
}
