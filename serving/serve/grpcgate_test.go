package serve_test

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	tensorpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_go_proto"
	shapepb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_shape_go_proto"
	typespb "github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/serving/serve"
	"github.com/kerasgo/kerasgo/serving/tfservingpb"
	"github.com/kerasgo/kerasgo/tensor"
)

// holding is a rows model of 3 features whose Predict waits until release
// is closed, telling entered each time it starts.
type holding struct {
	entered chan struct{}
	release chan struct{}
}

func (h *holding) Predict(ctx context.Context, x dense.Matrix) (dense.Matrix, error) {
	h.entered <- struct{}{}
	select {
	case <-h.release:
	case <-ctx.Done():
		return dense.Matrix{}, ctx.Err()
	}
	return dense.New(x.Rows, 1), nil
}

func (h *holding) Spec() serving.Spec {
	return serving.Spec{Signature: "serving_default", InputKey: "x", OutputKey: "y", InputDim: 3, Input: serving.InputRows,
		Signatures: map[string]tensor.Signature{"serving_default": {MethodName: "tensorflow/serving/predict",
			Inputs:  map[string]tensor.Spec{"x": {Name: "x:0", DType: tensor.Float32, Shape: []int64{-1, 3}}},
			Outputs: map[string]tensor.Spec{"y": {Name: "y:0", DType: tensor.Float32, Shape: []int64{-1, 1}}}}}}
}

func (h *holding) Close() error { return nil }

// startServer runs serve.Run on loopback ports for a server whose requests
// in flight may hold limit bytes, and returns its gRPC address.
func startServer(t *testing.T, m serving.Model, limit int64) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	base := t.TempDir()
	for _, f := range []string{"1/saved_model.pb", "1/variables/variables.index"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(base, f)), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(base, f), nil, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	cfg := serving.Config{Models: []serving.ModelConfig{{Name: "m", BasePath: base}}, MaxInflightBytes: limit,
		Batch: serving.BatchOptions{MaxBatchSize: 1}}
	srv, err := serving.New(ctx, cfg, func(context.Context, string) (serving.Model, error) { return m, nil })
	if err != nil {
		t.Fatal(err)
	}
	opts := serve.DefaultOptions()
	opts.RESTPort, opts.GRPCPort, opts.Logger = 0, 0, slog.New(slog.DiscardHandler)
	addr := make(chan net.Addr, 1)
	opts.OnListen = func(_, grpcAddr net.Addr) { addr <- grpcAddr }
	done := make(chan error, 1)
	go func() { done <- serve.Run(ctx, srv, opts) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		srv.Close()
	})
	select {
	case a := <-addr:
		return a.String()
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	return ""
}

// call sends a raw gRPC Predict call over HTTP/2 without TLS whose body is
// only the five-byte prefix declaring a message of length bytes, then
// nothing: an answer can only come from a server that decided before
// reading the message.
func call(t *testing.T, addr string, length uint32) (codes.Code, string) {
	t.Helper()
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: protocols}, Timeout: 10 * time.Second}
	body, w := io.Pipe()
	defer w.Close()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/tensorflow.serving.PredictionService/Predict", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	go func() {
		var prefix [5]byte
		binary.BigEndian.PutUint32(prefix[1:], length)
		w.Write(prefix[:]) // and nothing more until the answer
	}()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("call declaring %d bytes: %v", length, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	st := resp.Header.Get("Grpc-Status")
	if st == "" {
		st = resp.Trailer.Get("Grpc-Status")
	}
	code, err := strconv.Atoi(st)
	if err != nil {
		t.Fatalf("no grpc-status in the answer (headers %v, trailers %v)", resp.Header, resp.Trailer)
	}
	return codes.Code(code), resp.Header.Get("Grpc-Message")
}

// TestGRPCAdmissionBeforeRead: a gRPC call is admitted by the size its
// message declares before the message is read, in the admission REST
// shares: one that could never fit is RESOURCE_EXHAUSTED, one that does not
// fit beside the calls in flight UNAVAILABLE, both answered while the
// client has sent nothing but the five-byte prefix.
func TestGRPCAdmissionBeforeRead(t *testing.T) {
	const limit = 16 << 20
	m := &holding{entered: make(chan struct{}, 1), release: make(chan struct{})}
	addr := startServer(t, m, limit)

	if code, msg := call(t, addr, limit); code != codes.ResourceExhausted {
		t.Errorf("a message of the whole limit, alone: %v %q, want RESOURCE_EXHAUSTED", code, msg)
	}

	// A call of 1 MiB held in the model.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows := (1 << 20) / 12
	held := make(chan error, 1)
	go func() {
		req := &tfservingpb.PredictRequest{ModelSpec: &tfservingpb.ModelSpec{Name: "m"}, Inputs: map[string]*tensorpb.TensorProto{
			"x": {Dtype: typespb.DataType_DT_FLOAT, TensorContent: make([]byte, rows*12),
				TensorShape: &shapepb.TensorShapeProto{Dim: []*shapepb.TensorShapeProto_Dim{{Size: int64(rows)}, {Size: 3}}}}}}
		_, err := tfservingpb.NewPredictionServiceClient(conn).Predict(context.Background(), req)
		held <- err
	}()
	select {
	case <-m.entered:
	case err := <-held:
		t.Fatalf("the 1 MiB call ended before the model: %v", err)
	}

	for _, tc := range []struct {
		name   string
		length uint32
		want   codes.Code
	}{
		{"does not fit beside the held call", 4 << 20, codes.Unavailable},
		{"could never fit", 8 << 20, codes.ResourceExhausted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, msg := call(t, addr, tc.length); code != tc.want {
				t.Errorf("declaring %d bytes: %v %q, want %v", tc.length, code, msg, tc.want)
			}
		})
	}
	close(m.release)
	if err := <-held; err != nil {
		t.Fatalf("the held call: %v", err)
	}
	// Released: a 3 MiB call (9 MiB while read, 3 MiB more as float32 rows),
	// which would not have fitted beside the held one, is answered.
	rows = (3 << 20) / 12
	req := &tfservingpb.PredictRequest{ModelSpec: &tfservingpb.ModelSpec{Name: "m"}, Inputs: map[string]*tensorpb.TensorProto{
		"x": {Dtype: typespb.DataType_DT_FLOAT, TensorContent: make([]byte, rows*12),
			TensorShape: &shapepb.TensorShapeProto{Dim: []*shapepb.TensorShapeProto_Dim{{Size: int64(rows)}, {Size: 3}}}}}}
	if _, err := tfservingpb.NewPredictionServiceClient(conn).Predict(context.Background(), req, grpc.MaxCallSendMsgSize(8<<20)); err != nil {
		t.Errorf("after the held call ended, a 4 MiB call: %v", err)
	}
	if _, err := tfservingpb.NewPredictionServiceClient(conn).Predict(context.Background(), &tfservingpb.PredictRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("a call without a model spec: %v, want INVALID_ARGUMENT", err)
	}
}
