package servingmodel_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/serving/grpcapi"
	"github.com/kerasgo/kerasgo/servingmodel"
)

// BenchmarkLoneRequest splits the time of one single-row predict on the
// fortunes model (256 features, 20 classes) with nothing else in flight:
//
//   - model: the model call alone (servingmodel's Predict on one row);
//   - handler/unbatched and handler/adaptive: the REST handler in process
//     (decode, admission, batcher, model, encode; no network), with
//     batching off (--max-batch-size 1) and with the adaptive batcher, whose
//     difference is the batcher's own cost (a lone client's request runs on
//     its own goroutine, with no hand-off to a batching thread);
//   - grpc-service/adaptive: TF Serving's gRPC Predict method in process
//     (no transport), on a tensor_content tensor;
//   - loopback/adaptive: the REST handler behind net/http over loopback TCP,
//     from a keep-alive client in the same process.
//
// The body's decode alone is serving's BenchmarkDecode (rows/1x256).
func BenchmarkLoneRequest(b *testing.B) {
	ctx := context.Background()
	dir := filepath.Join("..", "testdata", "models", "fortunes")
	row := make([]float32, 256)
	for i := 0; i < len(row); i += 8 {
		row[i] = 1
	}
	var js strings.Builder
	js.WriteString(`{"instances": [[`)
	for i, v := range row {
		if i > 0 {
			js.WriteString(", ")
		}
		fmt.Fprint(&js, v)
	}
	js.WriteString(`]]}`)
	body := []byte(js.String())

	m, err := servingmodel.Load(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	x := dense.Matrix{Rows: 1, Cols: 256, Data: row}
	b.Run("model", func(b *testing.B) {
		for b.Loop() {
			if _, err := m.Predict(ctx, x); err != nil {
				b.Fatal(err)
			}
		}
	})

	for _, c := range []struct {
		name  string
		batch serving.BatchOptions
	}{{"unbatched", serving.BatchOptions{MaxBatchSize: 1}}, {"adaptive", serving.BatchOptions{MaxBatchSize: 64}}} {
		srv, err := serving.New(ctx, serving.Config{
			Models: []serving.ModelConfig{{Name: "m", BasePath: dir}},
			Batch:  c.batch,
		}, servingmodel.Load)
		if err != nil {
			b.Fatal(err)
		}
		h := srv.Handler()
		b.Run("handler/"+c.name, func(b *testing.B) {
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/models/m:predict", bytes.NewReader(body)))
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
		if c.name != "adaptive" {
			srv.Close()
			continue
		}
		req := matrixRequest("m", x)
		svc := grpcapi.New(srv, grpcapi.ReloadPolicy{})
		b.Run("grpc-service/"+c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := svc.Predict(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
		ts := httptest.NewServer(h)
		b.Run("loopback/"+c.name, func(b *testing.B) {
			for b.Loop() {
				resp, err := ts.Client().Post(ts.URL+"/v1/models/m:predict", "application/json", bytes.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
		ts.Close()
		srv.Close()
	}
}
