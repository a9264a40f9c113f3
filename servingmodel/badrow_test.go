package servingmodel_test

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/serving/grpcapi"
	"github.com/kerasgo/kerasgo/serving/tfservingpb"
	"github.com/kerasgo/kerasgo/servingmodel"
)

// TestNonFiniteRowInABatch sends two golden rows and one holding a NaN at
// once, over gRPC, merged into one model call (the fixed policy's batch of
// three). The exporter's model refuses non-finite values: the two good
// requests still get Keras' predictions, and the bad one alone gets
// INVALID_ARGUMENT naming its own row and column. A plain Keras export is
// served as TF Serving serves it: the NaN reaches the model, whose answer
// comes back (what the graph's kernels make of a NaN is theirs to say).
func TestNonFiniteRowInABatch(t *testing.T) {
	ctx := context.Background()
	x := readGolden(t, "fortunes_inputs.npy")
	tests := map[string]struct {
		model, golden string
		// badErr is what the bad request's error says; "" wants the model's
		// answer.
		badErr string
	}{
		"exporter model": {model: "fortunes", golden: "fortunes_probabilities.npy", badErr: "row 0, column 5: NaN: non-finite input value"},
		"plain export":   {model: "fortunes_export", golden: "fortunes_export_probabilities.npy"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			want := readGolden(t, tc.golden)
			srv, err := serving.New(ctx, serving.Config{
				Models: []serving.ModelConfig{{Name: "m", BasePath: filepath.Join("..", "testdata", "models", tc.model)}},
				Batch:  serving.BatchOptions{MaxBatchSize: 3, Policy: serving.BatchFixed, BatchTimeout: time.Minute, Threads: 1},
			}, servingmodel.Load)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			svc := grpcapi.New(srv, grpcapi.ReloadPolicy{})
			predict := func(row []float32) (*tfservingpb.PredictResponse, error) {
				return svc.Predict(ctx, matrixRequest("m", dense.Matrix{Rows: 1, Cols: len(row), Data: row}))
			}
			bad := append([]float32(nil), x.Row(2)...)
			bad[5] = float32(math.NaN())
			var wg sync.WaitGroup
			for i := range 2 {
				wg.Go(func() {
					resp, err := predict(x.Row(i))
					if err != nil {
						t.Errorf("good row %d: %v", i, err)
						return
					}
					for j, v := range resp.Outputs[outputKey(resp)].GetFloatVal() {
						if d := math.Abs(float64(v - want.At(i, j))); !(d <= kerasTol) {
							t.Errorf("good row %d, class %d: %v, Keras %v", i, j, v, want.At(i, j))
							return
						}
					}
				})
			}
			wg.Go(func() {
				resp, err := predict(bad)
				switch {
				case tc.badErr != "":
					if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tc.badErr) {
						t.Errorf("bad row: %v, want INVALID_ARGUMENT with %q", err, tc.badErr)
					}
				case err != nil:
					t.Errorf("bad row: %v, want the model's answer", err)
				case len(resp.Outputs[outputKey(resp)].GetFloatVal()) != want.Cols:
					t.Errorf("bad row: %v, want %d values", resp.Outputs, want.Cols)
				}
			})
			wg.Wait()
		})
	}
}

// outputKey returns the only output's key of resp.
func outputKey(resp *tfservingpb.PredictResponse) string {
	for k := range resp.Outputs {
		return k
	}
	return ""
}
