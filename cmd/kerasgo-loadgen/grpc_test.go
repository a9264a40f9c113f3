package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_go_proto"
	"github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/kerasgo/kerasgo/serving/oippb"
	"github.com/kerasgo/kerasgo/serving/tfservingpb"
)

// TestPredictRequestMatchesOfficialClient checks the conversion against
// the PredictRequests TF Serving's own Python client builds for the same
// bodies (testdata/make_testdata.py).
func TestPredictRequestMatchesOfficialClient(t *testing.T) {
	bodies, err := filepath.Glob("testdata/*.json")
	if err != nil || len(bodies) == 0 {
		t.Fatalf("no fixtures in testdata (%v)", err)
	}
	for _, path := range bodies {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			want := &tfservingpb.PredictRequest{}
			if err := proto.Unmarshal(readFile(t, strings.TrimSuffix(path, ".json")+".pb"), want); err != nil {
				t.Fatal(err)
			}
			got, err := predictRequest(readFile(t, path), grpcConfig{model: "m", signature: "serving_default", input: "features", tensorContent: true})
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, want) {
				t.Errorf("got\n%s\nwant (the official client's)\n%s", prototext.Format(got), prototext.Format(want))
			}
		})
	}
}

// TestInferRequestMatchesOfficialClient checks the Open Inference
// Protocol's request against the ModelInferRequests Triton's own Python
// client builds for the same arrays (testdata/make_testdata.py).
func TestInferRequestMatchesOfficialClient(t *testing.T) {
	fixtures, err := filepath.Glob("testdata/*.oip.pb")
	if err != nil || len(fixtures) == 0 {
		t.Fatalf("no fixtures in testdata (%v)", err)
	}
	for _, path := range fixtures {
		name := strings.TrimSuffix(filepath.Base(path), ".oip.pb")
		t.Run(name, func(t *testing.T) {
			want := &oippb.ModelInferRequest{}
			if err := proto.Unmarshal(readFile(t, path), want); err != nil {
				t.Fatal(err)
			}
			for _, content := range []bool{true, false} {
				pr, err := predictRequest(readFile(t, filepath.Join("testdata", name+".json")), grpcConfig{model: "m", signature: "serving_default", input: "features", tensorContent: content})
				if err != nil {
					t.Fatal(err)
				}
				got, err := inferRequest(pr)
				if err != nil {
					t.Fatal(err)
				}
				if !proto.Equal(got, want) {
					t.Errorf("tensor_content %v: got\n%s\nwant (the official client's)\n%s", content, prototext.Format(got), prototext.Format(want))
				}
			}
		})
	}
}

// fakePredictionService is a PredictionService and a GRPCInferenceService
// that records the requests it gets and answers them with an empty response
// or with err.
type fakePredictionService struct {
	tfservingpb.UnimplementedPredictionServiceServer
	oippb.UnimplementedGRPCInferenceServiceServer
	err error

	mu     sync.Mutex
	reqs   []*tfservingpb.PredictRequest
	infers []*oippb.ModelInferRequest
}

func (f *fakePredictionService) ModelInfer(_ context.Context, req *oippb.ModelInferRequest) (*oippb.ModelInferResponse, error) {
	if err := record(f, &f.infers, req); err != nil {
		return nil, err
	}
	return &oippb.ModelInferResponse{ModelName: req.GetModelName()}, nil
}

func (f *fakePredictionService) Predict(_ context.Context, req *tfservingpb.PredictRequest) (*tfservingpb.PredictResponse, error) {
	if err := record(f, &f.reqs, req); err != nil {
		return nil, err
	}
	return &tfservingpb.PredictResponse{ModelSpec: req.GetModelSpec()}, nil
}

// record keeps req if *reqs holds fewer than 100 requests, and returns the
// error the service answers with.
func record[T any](f *fakePredictionService, reqs *[]T, req T) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(*reqs) < 100 {
		*reqs = append(*reqs, req)
	}
	return f.err
}

// recorded returns a copy of the requests kept in *reqs.
func recorded[T any](f *fakePredictionService, reqs *[]T) []T {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(*reqs)
}

// requests returns the first Predict requests the service got.
func (f *fakePredictionService) requests() []*tfservingpb.PredictRequest { return recorded(f, &f.reqs) }

// inferRequests returns the first ModelInfer requests the service got.
func (f *fakePredictionService) inferRequests() []*oippb.ModelInferRequest {
	return recorded(f, &f.infers)
}

// startFake serves f on a free loopback port until the test ends and
// returns its address.
func startFake(tb testing.TB, f *fakePredictionService) string {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := grpc.NewServer()
	tfservingpb.RegisterPredictionServiceServer(srv, f)
	oippb.RegisterGRPCInferenceServiceServer(srv, f)
	go srv.Serve(lis)
	tb.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// writeBody writes body to a file in a temporary directory.
func writeBody(tb testing.TB, body string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "body.json")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

func readFile(tb testing.TB, path string) []byte {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// floatTensorValue is a DT_FLOAT tensor decoded.
type floatTensorValue struct {
	shape  []int64
	values []float32
}

// decodeFloatTensor decodes a DT_FLOAT TensorProto, checking that its
// values sit in tensor_content when content is set and in float_val
// otherwise.
func decodeFloatTensor(tb testing.TB, tp *tensor_go_proto.TensorProto, content bool) floatTensorValue {
	tb.Helper()
	if tp.GetDtype() != types_go_proto.DataType_DT_FLOAT {
		tb.Fatalf("dtype %v, want DT_FLOAT", tp.GetDtype())
	}
	var v floatTensorValue
	for _, d := range tp.GetTensorShape().GetDim() {
		v.shape = append(v.shape, d.GetSize())
	}
	if content {
		if len(tp.GetFloatVal()) != 0 || len(tp.GetTensorContent())%4 != 0 {
			tb.Fatalf("want only tensor_content: %d float_val, %d bytes of tensor_content", len(tp.GetFloatVal()), len(tp.GetTensorContent()))
		}
		for b := tp.GetTensorContent(); len(b) > 0; b = b[4:] {
			v.values = append(v.values, math.Float32frombits(binary.LittleEndian.Uint32(b)))
		}
	} else {
		if len(tp.GetTensorContent()) != 0 {
			tb.Fatalf("want only float_val: %d bytes of tensor_content", len(tp.GetTensorContent()))
		}
		v.values = tp.GetFloatVal()
	}
	return v
}

// report is the JSON line of the fixed-body modes.
type report struct {
	Clients    int     `json:"clients"`
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"first_error"`
	RPS        float64 `json:"rps"`
	P50MS      float64 `json:"p50_ms"`
	P99MS      float64 `json:"p99_ms"`
}

func decodeReport(tb testing.TB, out []byte) report {
	tb.Helper()
	var r report
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		tb.Fatalf("report %q: %v", out, err)
	}
	return r
}

// TestGRPCLoad sends bodies to a fake PredictionService and checks the
// requests it got, decoded, and the report.
func TestGRPCLoad(t *testing.T) {
	rows := `[[1, 2.5, -3], [4, 0.1, 6]]`
	rowsValue := floatTensorValue{shape: []int64{2, 3}, values: []float32{1, 2.5, -3, 4, 0.1, 6}}
	tests := map[string]struct {
		body      string
		signature string // the -signature flag when set
		input     string // -input; "features" when empty
		floatVal  bool   // -tensor-content=false
		clients   int
		conns     int
		wantSig   string
		want      map[string]floatTensorValue
	}{
		"rows, tensor_content": {
			body: `{"instances": ` + rows + `}`, wantSig: "serving_default",
			want: map[string]floatTensorValue{"features": rowsValue},
		},
		"rows, float_val": {
			body: `{"instances": ` + rows + `}`, floatVal: true, wantSig: "serving_default",
			want: map[string]floatTensorValue{"features": rowsValue},
		},
		"rows feed -input": {
			body: `{"instances": ` + rows + `}`, input: "x", wantSig: "serving_default",
			want: map[string]floatTensorValue{"x": rowsValue},
		},
		"one row of a wide input": {
			body: `{"instances": [[0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]]}`, wantSig: "serving_default",
			want: map[string]floatTensorValue{"features": {shape: []int64{1, 20}, values: []float32{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}},
		},
		"row objects name their inputs": {
			body:    `{"instances": [{"a": [1, 2], "b": 3}, {"b": 4, "a": [5, 6]}]}`,
			input:   "ignored",
			wantSig: "serving_default",
			want: map[string]floatTensorValue{
				"a": {shape: []int64{2, 2}, values: []float32{1, 2, 5, 6}},
				"b": {shape: []int64{2}, values: []float32{3, 4}},
			},
		},
		"named columns": {
			body: `{"inputs": {"features": ` + rows + `, "scale": 2}}`, wantSig: "serving_default",
			want: map[string]floatTensorValue{"features": rowsValue, "scale": {shape: nil, values: []float32{2}}},
		},
		"unnamed columns, rank 3": {
			body: `{"inputs": [[[1], [2]], [[3], [4]]]}`, floatVal: true, wantSig: "serving_default",
			want: map[string]floatTensorValue{"features": {shape: []int64{2, 2, 1}, values: []float32{1, 2, 3, 4}}},
		},
		"the body's signature_name": {
			body: `{"signature_name": "predict", "instances": ` + rows + `}`, wantSig: "predict",
			want: map[string]floatTensorValue{"features": rowsValue},
		},
		"-signature beats the body's": {
			body: `{"signature_name": "predict", "instances": ` + rows + `}`, signature: "other", wantSig: "other",
			want: map[string]floatTensorValue{"features": rowsValue},
		},
		"16 clients, one connection": {
			body: `{"instances": ` + rows + `}`, clients: 16, conns: 1, wantSig: "serving_default",
			want: map[string]floatTensorValue{"features": rowsValue},
		},
		"16 clients, a connection each": {
			body: `{"instances": ` + rows + `}`, clients: 16, conns: 16, wantSig: "serving_default",
			want: map[string]floatTensorValue{"features": rowsValue},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			fake := &fakePredictionService{}
			cfg := config{
				body: writeBody(t, tt.body), clients: max(tt.clients, 1), duration: 200 * time.Millisecond, warmup: 50 * time.Millisecond,
				grpc: grpcConfig{
					addr: startFake(t, fake), model: "m", signature: "serving_default", input: "features",
					tensorContent: !tt.floatVal, conns: max(tt.conns, 1),
				},
			}
			if tt.signature != "" {
				cfg.grpc.signature, cfg.grpc.signatureSet = tt.signature, true
			}
			if tt.input != "" {
				cfg.grpc.input = tt.input
			}
			var out bytes.Buffer
			if err := run(t.Context(), cfg, &out); err != nil {
				t.Fatal(err)
			}
			r := decodeReport(t, out.Bytes())
			if r.Clients != cfg.clients || r.Requests == 0 || r.Errors != 0 || r.FirstError != "" || r.RPS <= 0 || r.P99MS < r.P50MS {
				t.Errorf("report %+v, want %d clients, requests and no errors", r, cfg.clients)
			}
			reqs := fake.requests()
			if len(reqs) == 0 {
				t.Fatal("the service got no request")
			}
			for _, req := range reqs {
				if got := req.GetModelSpec(); got.GetName() != "m" || got.GetSignatureName() != tt.wantSig || got.GetVersionChoice() != nil {
					t.Fatalf("model spec %v, want model m, signature %q, no version", got, tt.wantSig)
				}
				if len(req.GetInputs()) != len(tt.want) {
					t.Fatalf("inputs %v, want %d", slices.Sorted(mapsKeys(req.GetInputs())), len(tt.want))
				}
				for key, want := range tt.want {
					tp, ok := req.GetInputs()[key]
					if !ok {
						t.Fatalf("no input %q among %v", key, slices.Sorted(mapsKeys(req.GetInputs())))
					}
					got := decodeFloatTensor(t, tp, !tt.floatVal)
					if !slices.Equal(got.shape, want.shape) || !slices.Equal(got.values, want.values) {
						t.Fatalf("input %q: shape %v values %v, want %v %v", key, got.shape, got.values, want.shape, want.values)
					}
				}
			}
		})
	}
}

// TestGRPCLoadOpenInference checks -protocol oip: every client's call is a
// ModelInfer with the body's tensors as raw FP32 inputs in name order, and
// none reaches Predict.
func TestGRPCLoadOpenInference(t *testing.T) {
	raw := func(values ...float32) []byte {
		return floatTensor(nil, values, true).GetTensorContent()
	}
	tests := map[string]struct {
		body       string
		clients    int
		wantInputs []*oippb.ModelInferRequest_InferInputTensor
		wantRaw    [][]byte
	}{
		"rows": {
			body:       `{"instances": [[1, 2.5], [-3, 4]]}`,
			wantInputs: []*oippb.ModelInferRequest_InferInputTensor{{Name: "features", Datatype: "FP32", Shape: []int64{2, 2}}},
			wantRaw:    [][]byte{raw(1, 2.5, -3, 4)},
		},
		"named columns, 8 clients": {
			body: `{"inputs": {"b": [[5]], "a": [1, 2]}}`, clients: 8,
			wantInputs: []*oippb.ModelInferRequest_InferInputTensor{
				{Name: "a", Datatype: "FP32", Shape: []int64{2}},
				{Name: "b", Datatype: "FP32", Shape: []int64{1, 1}},
			},
			wantRaw: [][]byte{raw(1, 2), raw(5)},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			fake := &fakePredictionService{}
			cfg := config{
				body: writeBody(t, tt.body), clients: max(tt.clients, 1), duration: 200 * time.Millisecond, warmup: 50 * time.Millisecond,
				grpc: grpcConfig{addr: startFake(t, fake), protocol: protocolOIP, model: "m", input: "features", tensorContent: true, conns: 1},
			}
			var out bytes.Buffer
			if err := run(t.Context(), cfg, &out); err != nil {
				t.Fatal(err)
			}
			if r := decodeReport(t, out.Bytes()); r.Requests == 0 || r.Errors != 0 {
				t.Errorf("report %+v, want requests and no errors", r)
			}
			if n := len(fake.requests()); n != 0 {
				t.Errorf("Predict got %d requests, want none", n)
			}
			reqs := fake.inferRequests()
			if len(reqs) == 0 {
				t.Fatal("ModelInfer got no request")
			}
			want := &oippb.ModelInferRequest{ModelName: "m", Inputs: tt.wantInputs, RawInputContents: tt.wantRaw}
			for _, req := range reqs {
				if !proto.Equal(req, want) {
					t.Fatalf("got\n%s\nwant\n%s", prototext.Format(req), prototext.Format(want))
				}
			}
		})
	}
}

// mapsKeys returns an iterator over the keys of the request's inputs.
func mapsKeys(m map[string]*tensor_go_proto.TensorProto) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestGRPCErrorsCounted checks that a non-OK status is an error of the
// report, with the first one's message.
func TestGRPCErrorsCounted(t *testing.T) {
	fake := &fakePredictionService{err: status.Error(codes.InvalidArgument, "bad input")}
	cfg := config{
		body: writeBody(t, `{"instances": [[1]]}`), clients: 2, duration: 100 * time.Millisecond,
		grpc: grpcConfig{addr: startFake(t, fake), model: "m", input: "features", tensorContent: true, conns: 1},
	}
	var out bytes.Buffer
	if err := run(t.Context(), cfg, &out); err != nil {
		t.Fatal(err)
	}
	r := decodeReport(t, out.Bytes())
	if r.Requests != 0 || r.Errors == 0 || !strings.Contains(r.FirstError, "InvalidArgument") || !strings.Contains(r.FirstError, "bad input") {
		t.Errorf("report %+v, want only errors, the first InvalidArgument: bad input", r)
	}
}

// TestGRPCRefused checks the command lines and bodies refused before any
// request is sent.
func TestGRPCRefused(t *testing.T) {
	// No server listens: a refusal must come before dialing.
	const addr = "127.0.0.1:1"
	tests := map[string]struct {
		body    string
		edit    func(*config)
		wantErr string
	}{
		"not loopback":          {edit: func(c *config) { c.grpc.addr = "10.1.2.3:8500" }, wantErr: "not a loopback address"},
		"no port":               {edit: func(c *config) { c.grpc.addr = "127.0.0.1" }, wantErr: "missing port"},
		"no model":              {edit: func(c *config) { c.grpc.model = "" }, wantErr: "-grpc needs -model"},
		"with -url":             {edit: func(c *config) { c.url = "http://127.0.0.1:1/" }, wantErr: "neither -url nor -mix"},
		"more conns":            {edit: func(c *config) { c.grpc.conns = 3 }, wantErr: "-conns 3, want 1..2"},
		"no body file":          {edit: func(c *config) { c.body = "/nonexistent/body.json" }, wantErr: "no such file"},
		"not JSON":              {body: `{"instances": [[1, 2]]`, wantErr: "decoding the predict body"},
		"unknown member":        {body: `{"instance": [[1]]}`, wantErr: "unknown field"},
		"trailing data":         {body: `{"instances": [[1]]} {}`, wantErr: "data after the object"},
		"both":                  {body: `{"instances": [[1]], "inputs": [[1]]}`, wantErr: `both "instances" and "inputs"`},
		"neither":               {body: `{"signature_name": "x"}`, wantErr: `neither "instances" nor "inputs"`},
		"instances not a list":  {body: `{"instances": {"features": [[1]]}}`, wantErr: "expected a list of instances"},
		"no instances":          {body: `{"instances": []}`, wantErr: "no instances"},
		"ragged rows":           {body: `{"instances": [[1, 2], [3]]}`, wantErr: `input "features"[1]: a list of 1, expected shape [2 2]`},
		"too deep":              {body: `{"instances": [[1, 2], [3, [4]]]}`, wantErr: `input "features"[1][1]: a list of 1`},
		"not deep enough":       {body: `{"instances": [[1, 2], 3]}`, wantErr: `input "features"[1]: a number, expected a list`},
		"a string":              {body: `{"instances": [[1, "2"]]}`, wantErr: `input "features"[0][1]: a string, only numbers`},
		"a base64 object":       {body: `{"inputs": {"x": [{"b64": "AA=="}]}}`, wantErr: `input "x"[0]: an object, only numbers`},
		"null":                  {body: `{"instances": [[1, null]]}`, wantErr: "null, only numbers"},
		"out of float32 range":  {body: `{"instances": [[1e39]]}`, wantErr: "out of float32 range"},
		"objects, other keys":   {body: `{"instances": [{"a": 1}, {"b": 2}]}`, wantErr: `instances[1]: expected an object of the inputs ["a"]`},
		"objects, then a row":   {body: `{"instances": [{"a": 1}, [2]]}`, wantErr: `instances[1]: expected an object`},
		"an empty object":       {body: `{"instances": [{}]}`, wantErr: "instances[0]: no inputs"},
		"empty named columns":   {body: `{"inputs": {}}`, wantErr: "inputs: no inputs"},
		"named columns, ragged": {body: `{"inputs": {"x": [[1], [2, 3]]}}`, wantErr: `input "x"[1]: a list of 2`},
		"oip with another -signature": {
			edit:    func(c *config) { c.grpc.protocol, c.grpc.signature, c.grpc.signatureSet = protocolOIP, "predict", true },
			wantErr: `signature "predict": ModelInfer runs serving_default only`,
		},
		"oip without -grpc": {
			edit: func(c *config) {
				c.grpc.protocol, c.grpc.addr, c.url = protocolOIP, "", "http://127.0.0.1:1/v2/models/m/infer"
			},
			wantErr: "-protocol oip needs -grpc",
		},
		"oip, the body's signature": {
			body:    `{"signature_name": "predict", "instances": [[1]]}`,
			edit:    func(c *config) { c.grpc.protocol = protocolOIP },
			wantErr: `signature "predict": ModelInfer runs serving_default only`,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			body := tt.body
			if body == "" {
				body = `{"instances": [[1]]}`
			}
			cfg := config{
				body: writeBody(t, body), clients: 2, duration: time.Second,
				grpc: grpcConfig{addr: addr, model: "m", input: "features", tensorContent: true, conns: 1},
			}
			if tt.edit != nil {
				tt.edit(&cfg)
			}
			err := run(t.Context(), cfg, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestGRPCNoServer checks that a server that is not there is one error
// after the connect timeout's wait, not a run of failed requests.
func TestGRPCNoServer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	cfg := config{
		body: writeBody(t, `{"instances": [[1]]}`), clients: 1, duration: time.Second,
		grpc: grpcConfig{addr: addr, model: "m", input: "features", tensorContent: true, conns: 1},
	}
	var out bytes.Buffer
	err = run(ctx, cfg, &out)
	if err == nil || !strings.Contains(err.Error(), "connecting to "+addr) || out.Len() != 0 {
		t.Errorf("got %v and %q, want a connection error and no report", err, out.String())
	}
}

// FuzzPredictRequest checks that any body either is refused or converts to
// tensors whose shapes hold their values, in both encodings.
func FuzzPredictRequest(f *testing.F) {
	bodies, _ := filepath.Glob("testdata/*.json")
	for _, path := range bodies {
		f.Add(readFile(f, path))
	}
	for _, body := range []string{
		`{"instances": [[1, 2], [3]]}`, `{"inputs": 1}`, `{"inputs": [[[]]]}`, `{"instances": [{"a": [[1]], "b": []}]}`,
		`{"instances": [[1e39]]}`, `{"inputs": {"x": [true]}}`,
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, content := range []bool{true, false} {
			req, err := predictRequest(body, grpcConfig{model: "m", input: "features", tensorContent: content})
			if err != nil {
				continue
			}
			if len(req.GetInputs()) == 0 {
				t.Fatalf("%q: no inputs", body)
			}
			for key, tp := range req.GetInputs() {
				v := decodeFloatTensor(t, tp, content)
				n := int64(1)
				for _, d := range v.shape {
					n *= d
				}
				if int64(len(v.values)) != n {
					t.Fatalf("%q: input %q has shape %v and %d values", body, key, v.shape, len(v.values))
				}
			}
		}
	})
}
