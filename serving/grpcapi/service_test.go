package grpcapi_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tensorpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_go_proto"
	shapepb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_shape_go_proto"
	typespb "github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/serving/grpcapi"
	"github.com/kerasgo/kerasgo/serving/tfservingpb"
	"github.com/kerasgo/kerasgo/serving/tfservingpb/examplepb"
	"github.com/kerasgo/kerasgo/tensor"
)

// fake is a rows model of 3 features whose prediction is the row's sum
// times its version, with TF Serving's half_plus_two classify and regress
// signatures on tf.Examples of one float feature "x" (0.5x + 2).
type fake struct {
	version float32
	delay   time.Duration
}

func (f *fake) Predict(ctx context.Context, x dense.Matrix) (dense.Matrix, error) {
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	y := dense.New(x.Rows, 1)
	for i := range x.Rows {
		var sum float32
		for _, v := range x.Row(i) {
			sum += v
		}
		y.Data[i] = sum * f.version
	}
	return y, nil
}

func (f *fake) Spec() serving.Spec {
	examples := map[string]tensor.Spec{"inputs": {Name: "tf_example:0", DType: tensor.String, Shape: []int64{-1}}}
	return serving.Spec{
		Signature: "serving_default", InputKey: "x", OutputKey: "y", InputDim: 3, Input: serving.InputRows,
		Signatures: map[string]tensor.Signature{
			"serving_default": {MethodName: "tensorflow/serving/predict",
				Inputs:  map[string]tensor.Spec{"x": {Name: "x:0", DType: tensor.Float32, Shape: []int64{-1, 3}}},
				Outputs: map[string]tensor.Spec{"y": {Name: "y:0", DType: tensor.Float32, Shape: []int64{-1, 1}}}},
			"classify_x_to_y": {MethodName: serving.MethodClassify, Inputs: examples,
				Outputs: map[string]tensor.Spec{"scores": {Name: "y:0", DType: tensor.Float32, Shape: []int64{-1, 1}}}},
			"regress_x_to_y": {MethodName: serving.MethodRegress, Inputs: examples,
				Outputs: map[string]tensor.Spec{"outputs": {Name: "y:0", DType: tensor.Float32, Shape: []int64{-1, 1}}}},
			"echo": {MethodName: "tensorflow/serving/predict",
				Inputs:  map[string]tensor.Spec{"a": {Name: "a:0", DType: tensor.Int64, Shape: nil}},
				Outputs: map[string]tensor.Spec{"a": {Name: "a:0", DType: tensor.Int64, Shape: nil}}},
		},
	}
}

// Run answers the echo signature with its input, and classify and regress
// with 0.5x + 2 of each serialized example's feature "x".
func (f *fake) Run(ctx context.Context, signature string, inputs map[string]tensor.Tensor) (map[string]tensor.Tensor, error) {
	if signature == "echo" {
		return map[string]tensor.Tensor{"a": inputs["a"]}, nil
	}
	in := inputs["inputs"].Data.([][]byte)
	out := make([]float32, len(in))
	for i, b := range in {
		var ex examplepb.Example
		if err := proto.Unmarshal(b, &ex); err != nil {
			return nil, fmt.Errorf("%w: example %d: %v", serving.ErrInvalidInput, i, err)
		}
		x := ex.GetFeatures().GetFeature()["x"].GetFloatList().GetValue()
		if len(x) != 1 {
			return nil, fmt.Errorf("%w: example %d has no feature x", serving.ErrInvalidInput, i)
		}
		out[i] = 0.5*x[0] + 2
	}
	name := "outputs"
	if signature == "classify_x_to_y" {
		name = "scores"
	}
	return map[string]tensor.Tensor{name: {DType: tensor.Float32, Shape: []int64{int64(len(in)), 1}, Data: out}}, nil
}

func (f *fake) Close() error { return nil }

// versionDir makes a complete-looking SavedModel directory base/n.
func versionDir(tb testing.TB, base string, n int) {
	tb.Helper()
	dir := filepath.Join(base, fmt.Sprint(n))
	if err := os.MkdirAll(filepath.Join(dir, "variables"), 0o755); err != nil {
		tb.Fatal(err)
	}
	for _, name := range []string{"saved_model.pb", "variables/variables.index"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// testToken is the reload token of the servers serve starts; authed adds
// it to a call's context.
const testToken = "test-token"

func authed(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+testToken)
}

// serve starts a Server on a base path holding version 1 and its gRPC
// services on an in-memory listener, reloadable from the temporary
// directory with testToken, and returns a client connection.
func serve(tb testing.TB, cfg serving.Config, delay time.Duration) (*grpc.ClientConn, string) {
	tb.Helper()
	policy, err := grpcapi.ReloadPolicy{Roots: []string{os.TempDir()}, Token: testToken}.Validate()
	if err != nil {
		tb.Fatal(err)
	}
	return serveWith(tb, cfg, delay, policy)
}

// serveWith is serve with the reload policy given.
func serveWith(tb testing.TB, cfg serving.Config, delay time.Duration, policy grpcapi.ReloadPolicy) (*grpc.ClientConn, string) {
	tb.Helper()
	base := tb.TempDir()
	versionDir(tb, base, 1)
	cfg.Models = []serving.ModelConfig{{Name: "m", BasePath: base}}
	load := func(ctx context.Context, dir string) (serving.Model, error) {
		var v float32
		fmt.Sscan(filepath.Base(dir), &v)
		return &fake{version: v, delay: delay}, nil
	}
	srv, err := serving.New(context.Background(), cfg, load)
	if err != nil {
		tb.Fatal(err)
	}
	ln := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	grpcapi.New(srv, policy).Register(gs)
	go gs.Serve(ln)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		conn.Close()
		gs.Stop()
		srv.Close()
	})
	return conn, base
}

func spec(name string, version int64, signature string) *tfservingpb.ModelSpec {
	s := &tfservingpb.ModelSpec{Name: name, SignatureName: signature}
	if version != 0 {
		s.VersionChoice = &tfservingpb.ModelSpec_Version{Version: wrapperspb.Int64(version)}
	}
	return s
}

func floats(shape []int64, vals ...float32) *tensorpb.TensorProto {
	return &tensorpb.TensorProto{Dtype: typespb.DataType_DT_FLOAT, TensorShape: dims(shape...), FloatVal: vals}
}

func dims(sizes ...int64) *shapepb.TensorShapeProto {
	s := &shapepb.TensorShapeProto{}
	for _, d := range sizes {
		s.Dim = append(s.Dim, &shapepb.TensorShapeProto_Dim{Size: d})
	}
	return s
}

func examples(xs ...float32) *tfservingpb.Input {
	list := &tfservingpb.ExampleList{}
	for _, x := range xs {
		list.Examples = append(list.Examples, &examplepb.Example{Features: &examplepb.Features{Feature: map[string]*examplepb.Feature{
			"x": {Kind: &examplepb.Feature_FloatList{FloatList: &examplepb.FloatList{Value: []float32{x}}}},
		}}})
	}
	return &tfservingpb.Input{Kind: &tfservingpb.Input_ExampleList{ExampleList: list}}
}

func TestPredict(t *testing.T) {
	conn, _ := serve(t, serving.Config{}, 0)
	client := tfservingpb.NewPredictionServiceClient(conn)
	for _, tc := range []struct {
		name   string
		input  *tensorpb.TensorProto
		want   []float32
		wantSh []int64
	}{
		{"typed values", floats([]int64{2, 3}, 1, 2, 3, 4, 5, 6), []float32{6, 15}, []int64{2, 1}},
		{"one value fills the shape", floats([]int64{2, 3}, 1), []float32{3, 3}, []int64{2, 1}},
		{"no values are zeros", floats([]int64{1, 3}), []float32{0}, []int64{1, 1}},
		{"tensor_content", &tensorpb.TensorProto{Dtype: typespb.DataType_DT_FLOAT, TensorShape: dims(1, 3),
			TensorContent: []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40}}, []float32{6}, []int64{1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := client.Predict(context.Background(), &tfservingpb.PredictRequest{
				ModelSpec: spec("m", 0, ""), Inputs: map[string]*tensorpb.TensorProto{"x": tc.input}})
			if err != nil {
				t.Fatal(err)
			}
			y := resp.GetOutputs()["y"]
			if got := y.GetFloatVal(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("y = %v, want %v", got, tc.want)
			}
			var shape []int64
			for _, d := range y.GetTensorShape().GetDim() {
				shape = append(shape, d.GetSize())
			}
			if fmt.Sprint(shape) != fmt.Sprint(tc.wantSh) || y.GetDtype() != typespb.DataType_DT_FLOAT || len(y.GetTensorContent()) > 0 {
				t.Errorf("y has shape %v, dtype %v, %d content bytes; want %v DT_FLOAT in float_val", shape, y.GetDtype(), len(y.GetTensorContent()), tc.wantSh)
			}
			if ms := resp.GetModelSpec(); ms.GetName() != "m" || ms.GetVersion().GetValue() != 1 || ms.GetSignatureName() != "serving_default" {
				t.Errorf("model_spec = %v, want m, version 1, serving_default", ms)
			}
		})
	}
}

func TestClassifyRegress(t *testing.T) {
	conn, _ := serve(t, serving.Config{}, 0)
	client := tfservingpb.NewPredictionServiceClient(conn)
	ctx := context.Background()
	c, err := client.Classify(ctx, &tfservingpb.ClassificationRequest{ModelSpec: spec("m", 0, "classify_x_to_y"), Input: examples(1, 4)})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.GetResult().GetClassifications(); len(got) != 2 || got[0].GetClasses()[0].GetScore() != 2.5 || got[1].GetClasses()[0].GetScore() != 4 {
		t.Errorf("classifications = %v, want scores 2.5 and 4", got)
	}
	r, err := client.Regress(ctx, &tfservingpb.RegressionRequest{ModelSpec: spec("m", 0, "regress_x_to_y"), Input: examples(2)})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.GetResult().GetRegressions(); len(got) != 1 || got[0].GetValue() != 3 {
		t.Errorf("regressions = %v, want 3", got)
	}
	// A context's features reach every example; the example's own win.
	ctxInput := &tfservingpb.Input{Kind: &tfservingpb.Input_ExampleListWithContext{ExampleListWithContext: &tfservingpb.ExampleListWithContext{
		Examples: []*examplepb.Example{{}, examples(6).GetExampleList().GetExamples()[0]},
		Context:  examples(10).GetExampleList().GetExamples()[0],
	}}}
	r, err = client.Regress(ctx, &tfservingpb.RegressionRequest{ModelSpec: spec("m", 0, "regress_x_to_y"), Input: ctxInput})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.GetResult().GetRegressions(); len(got) != 2 || got[0].GetValue() != 7 || got[1].GetValue() != 5 {
		t.Errorf("regressions with context = %v, want 7 (context x=10) and 5 (own x=6)", got)
	}
	m, err := client.MultiInference(ctx, &tfservingpb.MultiInferenceRequest{Input: examples(2), Tasks: []*tfservingpb.InferenceTask{
		{ModelSpec: spec("m", 0, "classify_x_to_y"), MethodName: serving.MethodClassify},
		{ModelSpec: spec("m", 0, "regress_x_to_y"), MethodName: serving.MethodRegress},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res := m.GetResults(); len(res) != 2 || res[0].GetClassificationResult().GetClassifications()[0].GetClasses()[0].GetScore() != 3 ||
		res[1].GetRegressionResult().GetRegressions()[0].GetValue() != 3 {
		t.Errorf("multi-inference results = %v", res)
	}
}

// TestErrorCodes sends the requests TF Serving refuses, and others kerasgo
// must refuse without allocating what they declare.
func TestErrorCodes(t *testing.T) {
	conn, _ := serve(t, serving.Config{MaxInflightBytes: 4 << 20}, 0)
	client := tfservingpb.NewPredictionServiceClient(conn)
	models := tfservingpb.NewModelServiceClient(conn)
	x := map[string]*tensorpb.TensorProto{"x": floats([]int64{1, 3}, 1, 2, 3)}
	predict := func(req *tfservingpb.PredictRequest) error {
		_, err := client.Predict(context.Background(), req)
		return err
	}
	for _, tc := range []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"unknown model", func() error { return predict(&tfservingpb.PredictRequest{ModelSpec: spec("nope", 0, ""), Inputs: x}) }, codes.NotFound},
		{"unknown version", func() error { return predict(&tfservingpb.PredictRequest{ModelSpec: spec("m", 7, ""), Inputs: x}) }, codes.NotFound},
		{"unknown label", func() error {
			return predict(&tfservingpb.PredictRequest{ModelSpec: &tfservingpb.ModelSpec{Name: "m", VersionChoice: &tfservingpb.ModelSpec_VersionLabel{VersionLabel: "stable"}}, Inputs: x})
		}, codes.InvalidArgument},
		{"missing model spec", func() error { return predict(&tfservingpb.PredictRequest{Inputs: x}) }, codes.InvalidArgument},
		{"unknown signature", func() error { return predict(&tfservingpb.PredictRequest{ModelSpec: spec("m", 0, "nope"), Inputs: x}) }, codes.FailedPrecondition},
		{"no inputs", func() error { return predict(&tfservingpb.PredictRequest{ModelSpec: spec("m", 0, "")}) }, codes.InvalidArgument},
		{"unknown input", func() error {
			return predict(&tfservingpb.PredictRequest{ModelSpec: spec("m", 0, "echo"), Inputs: map[string]*tensorpb.TensorProto{"b": floats(nil, 1)}})
		}, codes.InvalidArgument},
		{"wrong width", func() error {
			return predict(&tfservingpb.PredictRequest{ModelSpec: spec("m", 0, ""), Inputs: map[string]*tensorpb.TensorProto{"x": floats([]int64{1, 4}, 1)}})
		}, codes.InvalidArgument},
		{"unsupported dtype", func() error {
			return predict(&tfservingpb.PredictRequest{ModelSpec: spec("m", 0, ""), Inputs: map[string]*tensorpb.TensorProto{"x": {Dtype: typespb.DataType_DT_BFLOAT16, TensorShape: dims(1, 3)}}})
		}, codes.InvalidArgument},
		{"content shorter than shape", func() error {
			return predict(&tfservingpb.PredictRequest{ModelSpec: spec("m", 0, ""), Inputs: map[string]*tensorpb.TensorProto{"x": {Dtype: typespb.DataType_DT_FLOAT, TensorShape: dims(1, 3), TensorContent: make([]byte, 8)}}})
		}, codes.InvalidArgument},
		{"huge shape, small body", func() error {
			return predict(&tfservingpb.PredictRequest{ModelSpec: spec("m", 0, ""), Inputs: map[string]*tensorpb.TensorProto{"x": floats([]int64{1 << 40, 3}, 1)}})
		}, codes.InvalidArgument},
		{"negative dimension", func() error {
			return predict(&tfservingpb.PredictRequest{ModelSpec: spec("m", 0, ""), Inputs: map[string]*tensorpb.TensorProto{"x": floats([]int64{-1, 3}, 1)}})
		}, codes.InvalidArgument},
		{"unknown output filter", func() error {
			return predict(&tfservingpb.PredictRequest{ModelSpec: spec("m", 0, ""), Inputs: x, OutputFilter: []string{"z"}})
		}, codes.InvalidArgument},
		{"classify, unknown signature", func() error {
			_, err := client.Classify(context.Background(), &tfservingpb.ClassificationRequest{ModelSpec: spec("m", 0, "nope"), Input: examples(1)})
			return err
		}, codes.InvalidArgument},
		{"regress, classification signature", func() error {
			_, err := client.Regress(context.Background(), &tfservingpb.RegressionRequest{ModelSpec: spec("m", 0, "classify_x_to_y"), Input: examples(1)})
			return err
		}, codes.InvalidArgument},
		{"classify, no examples", func() error {
			_, err := client.Classify(context.Background(), &tfservingpb.ClassificationRequest{ModelSpec: spec("m", 0, "classify_x_to_y"), Input: &tfservingpb.Input{}})
			return err
		}, codes.InvalidArgument},
		{"metadata, no field", func() error {
			_, err := client.GetModelMetadata(context.Background(), &tfservingpb.GetModelMetadataRequest{ModelSpec: spec("m", 0, "")})
			return err
		}, codes.InvalidArgument},
		{"status, unknown model", func() error {
			_, err := models.GetModelStatus(context.Background(), &tfservingpb.GetModelStatusRequest{ModelSpec: spec("nope", 0, "")})
			return err
		}, codes.NotFound},
		{"reload without a model_config_list", func() error {
			_, err := models.HandleReloadConfigRequest(authed(context.Background()), &tfservingpb.ReloadConfigRequest{})
			return err
		}, codes.InvalidArgument},
		{"reload, all versions policy", func() error {
			_, err := models.HandleReloadConfigRequest(authed(context.Background()), reloadRequest(&tfservingpb.ModelConfig{Name: "m", BasePath: "/x",
				ModelVersionPolicy: &tfservingpb.FileSystemStoragePathSourceConfig_ServableVersionPolicy{PolicyChoice: &tfservingpb.FileSystemStoragePathSourceConfig_ServableVersionPolicy_All_{}}}))
			return err
		}, codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if got := status.Code(err); got != tc.want {
				t.Errorf("code %v (%v), want %v", got, err, tc.want)
			}
		})
	}
}

func TestMetadataAndStatus(t *testing.T) {
	conn, _ := serve(t, serving.Config{}, 0)
	meta, err := tfservingpb.NewPredictionServiceClient(conn).GetModelMetadata(context.Background(),
		&tfservingpb.GetModelMetadataRequest{ModelSpec: spec("m", 0, ""), MetadataField: []string{"signature_def"}})
	if err != nil {
		t.Fatal(err)
	}
	var sigs tfservingpb.SignatureDefMap
	if err := meta.GetMetadata()["signature_def"].UnmarshalTo(&sigs); err != nil {
		t.Fatal(err)
	}
	def := sigs.GetSignatureDef()["serving_default"]
	x := def.GetInputs()["x"]
	if x.GetName() != "x:0" || x.GetDtype() != typespb.DataType_DT_FLOAT || len(x.GetTensorShape().GetDim()) != 2 || x.GetTensorShape().GetDim()[1].GetSize() != 3 {
		t.Errorf("serving_default input x = %v", x)
	}
	if len(sigs.GetSignatureDef()) != 4 || sigs.GetSignatureDef()["regress_x_to_y"].GetMethodName() != serving.MethodRegress {
		t.Errorf("signature_def map = %v", sigs.GetSignatureDef())
	}
	st, err := tfservingpb.NewModelServiceClient(conn).GetModelStatus(context.Background(), &tfservingpb.GetModelStatusRequest{ModelSpec: spec("m", 0, "")})
	if err != nil {
		t.Fatal(err)
	}
	if v := st.GetModelVersionStatus(); len(v) != 1 || v[0].GetVersion() != 1 || v[0].GetState() != tfservingpb.ModelVersionStatus_AVAILABLE {
		t.Errorf("model_version_status = %v", v)
	}
}

// TestVersionSwapUnderLoad adds version 2 while 16 clients call Predict:
// no call fails, and the answers move from version 1 to version 2.
func TestVersionSwapUnderLoad(t *testing.T) {
	conn, base := serve(t, serving.Config{PollInterval: 10 * time.Millisecond, Batch: serving.BatchOptions{MaxBatchSize: 8, BatchTimeout: time.Millisecond}}, time.Millisecond)
	client := tfservingpb.NewPredictionServiceClient(conn)
	req := &tfservingpb.PredictRequest{ModelSpec: spec("m", 0, ""), Inputs: map[string]*tensorpb.TensorProto{"x": floats([]int64{1, 3}, 1, 1, 1)}}
	var (
		stop          atomic.Bool
		calls, failed atomic.Int64
		sawV2         atomic.Bool
		wg            sync.WaitGroup
	)
	for range 16 {
		wg.Go(func() {
			for !stop.Load() {
				resp, err := client.Predict(context.Background(), req)
				calls.Add(1)
				if err != nil {
					if failed.Add(1) == 1 {
						t.Errorf("call failed during the swap: %v", err)
					}
					continue
				}
				switch y := resp.GetOutputs()["y"].GetFloatVal()[0]; {
				case y == 6 && resp.GetModelSpec().GetVersion().GetValue() == 2:
					sawV2.Store(true)
				case y != 3 && y != 6:
					t.Errorf("y = %v, want 3 (version 1) or 6 (version 2)", y)
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	versionDir(t, base, 2)
	deadline := time.Now().Add(10 * time.Second)
	for !sawV2.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if !sawV2.Load() {
		t.Fatal("version 2 never answered")
	}
	if failed.Load() > 0 || calls.Load() < 100 {
		t.Errorf("%d of %d calls failed (want 0 of at least 100)", failed.Load(), calls.Load())
	}
}

func reloadRequest(configs ...*tfservingpb.ModelConfig) *tfservingpb.ReloadConfigRequest {
	return &tfservingpb.ReloadConfigRequest{Config: &tfservingpb.ModelServerConfig{Config: &tfservingpb.ModelServerConfig_ModelConfigList{
		ModelConfigList: &tfservingpb.ModelConfigList{Config: configs}}}}
}

// TestReloadConfig applies new model configs over gRPC: a model added
// answers as soon as the call returns, a removed one stops answering, and a
// config that fails to load changes nothing.
func TestReloadConfig(t *testing.T) {
	conn, base := serve(t, serving.Config{}, 0)
	client := tfservingpb.NewPredictionServiceClient(conn)
	models := tfservingpb.NewModelServiceClient(conn)
	ctx := authed(context.Background())
	other := t.TempDir()
	versionDir(t, other, 3)
	predict := func(name string) (float32, error) {
		resp, err := client.Predict(ctx, &tfservingpb.PredictRequest{ModelSpec: spec(name, 0, ""), Inputs: map[string]*tensorpb.TensorProto{"x": floats([]int64{1, 3}, 1, 1, 1)}})
		if err != nil {
			return 0, err
		}
		return resp.GetOutputs()["y"].GetFloatVal()[0], nil
	}

	resp, err := models.HandleReloadConfigRequest(ctx, reloadRequest(&tfservingpb.ModelConfig{Name: "m", BasePath: base}, &tfservingpb.ModelConfig{Name: "n", BasePath: other}))
	if err != nil || resp.GetStatus().GetErrorCode() != 0 {
		t.Fatalf("adding model n: %v (status %v)", err, resp.GetStatus())
	}
	if y, err := predict("n"); err != nil || y != 9 {
		t.Errorf("model n right after the reload: y = %v, %v; want 9 (version 3)", y, err)
	}
	if y, err := predict("m"); err != nil || y != 3 {
		t.Errorf("model m kept: y = %v, %v; want 3", y, err)
	}

	_, err = models.HandleReloadConfigRequest(ctx, reloadRequest(&tfservingpb.ModelConfig{Name: "n", BasePath: other}, &tfservingpb.ModelConfig{Name: "bad", BasePath: t.TempDir()}))
	if status.Code(err) == codes.OK {
		t.Error("a config whose model has no version was applied")
	}
	if _, err := predict("m"); err != nil {
		t.Errorf("model m after a failed reload: %v; the old config must stay", err)
	}

	if _, err := models.HandleReloadConfigRequest(ctx, reloadRequest(&tfservingpb.ModelConfig{Name: "n", BasePath: other})); err != nil {
		t.Fatalf("removing model m: %v", err)
	}
	if _, err := predict("m"); status.Code(err) != codes.NotFound {
		t.Errorf("model m after its removal: %v, want NOT_FOUND", err)
	}
}
