package cli

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	tensorpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_go_proto"
	shapepb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_shape_go_proto"
	typespb "github.com/galeone/tensorflow/tensorflow/go/core/framework/types_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/rowio"
	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/serving/tfservingpb"
	"github.com/kerasgo/kerasgo/servingmodel"
)

// TestServeMatchesKeras serves the real fortunes model with batching on and
// checks 64 concurrent single-row requests against Keras' golden outputs.
func TestServeMatchesKeras(t *testing.T) {
	x, err := rowio.ReadNPYFile(filepath.Join(testdata, "golden", "fortunes_inputs.npy"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := rowio.ReadNPYFile(filepath.Join(testdata, "golden", "fortunes_probabilities.npy"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := serving.New(context.Background(), serving.Config{
		Models: []serving.ModelConfig{{Name: "fortunes", BasePath: filepath.Join(testdata, "models", "fortunes")}},
		Batch:  serving.BatchOptions{MaxBatchSize: 16, BatchTimeout: 2 * time.Millisecond},
	}, servingmodel.Load)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	var wg sync.WaitGroup
	for i := range x.Rows {
		wg.Go(func() {
			body, _ := json.Marshal(map[string]any{"instances": [][]float32{x.Row(i)}})
			resp, err := http.Post(ts.URL+"/v1/models/fortunes:predict", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var out struct{ Predictions [][]float64 }
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || len(out.Predictions) != 1 {
				t.Errorf("row %d: %d %v", i, resp.StatusCode, err)
				return
			}
			for j, p := range out.Predictions[0] {
				if math.Abs(p-float64(want.At(i, j))) > 1e-5 {
					t.Errorf("row %d class %d: served %v, Keras %v", i, j, p, want.At(i, j))
					return
				}
			}
		})
	}
	wg.Wait()
	resp, err := http.Get(ts.URL + "/v1/models/fortunes/metadata")
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	if !strings.Contains(fmt.Sprint(meta), "serving_default") || !strings.Contains(fmt.Sprint(meta), "train_step") {
		t.Fatalf("metadata lacks the signatures: %v", meta)
	}
}

// watchWriter collects what a command writes, safe for the server's logger
// and the test at once. When re is set, fn runs once, inside the Write after
// which the collected text first matches re: tests wait on what a command
// says it did, never on a clock.
type watchWriter struct {
	re *regexp.Regexp
	fn func(match []string)

	mu    sync.Mutex
	b     bytes.Buffer
	fired bool
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.b.Write(p)
	var m []string
	if w.re != nil && !w.fired {
		if m = w.re.FindStringSubmatch(w.b.String()); m != nil {
			w.fired = true
		}
	}
	w.mu.Unlock()
	if m != nil {
		w.fn(m)
	}
	return len(p), nil
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestServeGracefulShutdown runs `kerasgo serve` on a port the system picks,
// scores a golden row as Keras did, and stops it as SIGTERM does: it drains
// and returns exit 0. It waits on the server's log and exit, not on timers:
// the test binary's -timeout bounds a hang.
func TestServeGracefulShutdown(t *testing.T) {
	x := goldenNPY(t, "fortunes_inputs.npy")
	want := goldenNPY(t, "fortunes_probabilities.npy")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listening := make(chan []string, 1)
	// serve loads the models, then listens, then logs the addresses.
	stderr := &watchWriter{re: regexp.MustCompile(`address="?(http://[^\s"]+)"? grpc_address="?([^\s"]+)`), fn: func(m []string) { listening <- m }}
	env := &Env{Stdin: strings.NewReader(""), Stdout: &watchWriter{}, Stderr: stderr, Getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, env, []string{"serve", "--model", "m=" + filepath.Join(testdata, "models", "fortunes"), "--rest-port", "0", "--grpc-port", "0"})
	}()
	var base, grpcAddr string
	select {
	case m := <-listening:
		base, grpcAddr = m[1], m[2]
	case code := <-done:
		t.Fatalf("serve exited with %d before listening: %s", code, stderr.String())
	}
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz: %d once listening", resp.StatusCode)
	}
	const rows = 2
	body, _ := json.Marshal(map[string]any{"instances": [][]float32{x.Row(0), x.Row(1)}})
	resp, err = http.Post(base+"/v1/models/m:predict", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Predictions [][]float64 }
	err = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("predict: %d %v", resp.StatusCode, err)
	}
	checkProbabilities(t, "served", out.Predictions, want.Slice(0, rows))
	checkProbabilities(t, "served over gRPC", predictGRPC(t, grpcAddr, "m", x.Slice(0, rows)), want.Slice(0, rows))
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "draining") || !strings.Contains(stderr.String(), "stopped") {
		t.Fatalf("log: %s", stderr.String())
	}
}

func TestServeConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "models.json")
	if err := os.WriteFile(bad, []byte(`{"models": [{"name": "m"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty-token")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		"no model":        {args: []string{"serve"}, wantCode: ExitUsage, wantErr: "--model-config FILE is required"},
		"bad model flag":  {args: []string{"serve", "--model", "nodir"}, wantCode: ExitUsage, wantErr: "want NAME=DIR"},
		"bad config file": {args: []string{"serve", "--model-config", bad}, wantCode: ExitFailure, wantErr: "needs a name and a base_path"},
		"missing model":   {args: []string{"serve", "--model", "m=" + filepath.Join(dir, "nope")}, wantCode: ExitFailure, wantErr: "listing versions"},
		"reload roots without a token": {args: []string{"serve", "--model", "m=" + dir, "--allow-reload-under", dir},
			wantCode: ExitUsage, wantErr: "go together"},
		"a reload token without roots": {args: []string{"serve", "--model", "m=" + dir, "--reload-token-file", bad},
			wantCode: ExitUsage, wantErr: "go together"},
		"an empty reload token": {args: []string{"serve", "--model", "m=" + dir, "--allow-reload-under", dir, "--reload-token-file", empty},
			wantCode: ExitUsage, wantErr: "is empty"},
		"a missing reload root": {args: []string{"serve", "--model", "m=" + dir, "--allow-reload-under", filepath.Join(dir, "nope"), "--reload-token-file", bad},
			wantCode: ExitUsage, wantErr: "reload root"},
	} {
		t.Run(name, func(t *testing.T) {
			code, _, errOut := runCLI(t, "", tc.args...)
			if code != tc.wantCode || !strings.Contains(errOut, tc.wantErr) {
				t.Fatalf("exit %d, %q", code, errOut)
			}
		})
	}
}

// predictGRPC sends rows to a model over TF Serving's gRPC Predict, as
// tensor_content, after the health service says the server is SERVING.
func predictGRPC(t *testing.T, addr, model string, x dense.Matrix) [][]float64 {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	health, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "tensorflow.serving.PredictionService"})
	if err != nil || health.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v, %v", health.GetStatus(), err)
	}
	content := make([]byte, 0, 4*len(x.Data))
	for _, v := range x.Data {
		content = binary.LittleEndian.AppendUint32(content, math.Float32bits(v))
	}
	resp, err := tfservingpb.NewPredictionServiceClient(conn).Predict(ctx, &tfservingpb.PredictRequest{
		ModelSpec: &tfservingpb.ModelSpec{Name: model},
		Inputs: map[string]*tensorpb.TensorProto{"features": {Dtype: typespb.DataType_DT_FLOAT, TensorContent: content,
			TensorShape: &shapepb.TensorShapeProto{Dim: []*shapepb.TensorShapeProto_Dim{{Size: int64(x.Rows)}, {Size: int64(x.Cols)}}}}},
	})
	if err != nil {
		t.Fatalf("gRPC predict: %v", err)
	}
	var y *tensorpb.TensorProto
	for _, out := range resp.GetOutputs() {
		y = out
	}
	if len(resp.GetOutputs()) != 1 || len(y.GetTensorShape().GetDim()) != 2 {
		t.Fatalf("gRPC predict: outputs %v", resp.GetOutputs())
	}
	cols := int(y.GetTensorShape().GetDim()[1].GetSize())
	out := make([][]float64, x.Rows)
	for i := range out {
		for _, v := range y.GetFloatVal()[i*cols : (i+1)*cols] {
			out[i] = append(out[i], float64(v))
		}
	}
	return out
}
