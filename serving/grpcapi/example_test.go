package grpcapi_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	tensorpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/serving/grpcapi"
	"github.com/kerasgo/kerasgo/serving/tfservingpb"
)

// A serving.Server answers TF Serving's gRPC API once its services are
// registered on a grpc.Server (with grpcapi's codec, for messages of
// many features); REST (srv.Handler()) can run beside it. The
// loader here is a stand-in: a real service passes servingmodel.Load.
func Example() {
	base, _ := os.MkdirTemp("", "models")
	defer os.RemoveAll(base)
	os.MkdirAll(filepath.Join(base, "1", "variables"), 0o755) // what a complete SavedModel holds
	for _, name := range []string{"saved_model.pb", "variables/variables.index"} {
		os.WriteFile(filepath.Join(base, "1", name), []byte("x"), 0o644)
	}
	load := func(ctx context.Context, dir string) (serving.Model, error) { return &fake{version: 1}, nil }

	ctx := context.Background()
	srv, err := serving.New(ctx, serving.Config{Models: []serving.ModelConfig{{Name: "m", BasePath: base}}}, load)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	gs := grpc.NewServer(grpc.ForceServerCodecV2(grpcapi.NewCodec()))
	grpcapi.New(srv, grpcapi.ReloadPolicy{}).Register(gs)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go gs.Serve(ln)
	defer gs.Stop()

	conn, _ := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer conn.Close()
	resp, err := tfservingpb.NewPredictionServiceClient(conn).Predict(ctx, &tfservingpb.PredictRequest{
		ModelSpec: &tfservingpb.ModelSpec{Name: "m"},
		Inputs:    map[string]*tensorpb.TensorProto{"x": floats([]int64{2, 3}, 1, 2, 3, 4, 5, 6)},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.GetOutputs()["y"].GetFloatVal(), resp.GetModelSpec().GetVersion().GetValue())
	// Output: [6 15] 1
}
