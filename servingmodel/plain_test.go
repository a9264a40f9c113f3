package servingmodel_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/rowio"
	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/serving/grpcapi"
	"github.com/kerasgo/kerasgo/servingmodel"
)

// kerasTol is how far served probabilities may be from Keras' (README).
const kerasTol = 1e-5

// TestPlainKerasModelBatched serves the fortunes model as plain Keras
// model.export() wrote it (no kerasgo metadata) and sends its golden rows
// concurrently, in each of TF Serving's request formats, over gRPC and by
// the Open Inference Protocol: every answer is Keras' own prediction for
// its rows, and every row went through the batcher (kerasgo_batch_rows
// counts them all), as an exporter model's do. The requests TF Serving
// shapes otherwise (its own half_plus_two cases) are TestTFServingCases'.
func TestPlainKerasModelBatched(t *testing.T) {
	ctx := context.Background()
	x := readGolden(t, "fortunes_inputs.npy")
	want := readGolden(t, "fortunes_export_probabilities.npy")
	reg := prometheus.NewRegistry()
	srv, err := serving.New(ctx, serving.Config{
		Models:   []serving.ModelConfig{{Name: "plain", BasePath: filepath.Join("..", "testdata", "models", "fortunes_export")}},
		Batch:    serving.BatchOptions{MaxBatchSize: 16},
		Registry: reg,
	}, servingmodel.Load)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	svc := grpcapi.New(srv, grpcapi.ReloadPolicy{})

	row := func(i int) string {
		v := make([]string, x.Cols)
		for j := range v {
			v[j] = strconv.FormatFloat(float64(x.At(i, j)), 'g', -1, 32)
		}
		return "[" + strings.Join(v, ",") + "]"
	}
	join := func(from, to int, f func(i int) string) string {
		var parts []string
		for i := from; i < to; i++ {
			parts = append(parts, f(i))
		}
		return strings.Join(parts, ",")
	}
	// rest posts body and returns the answer's rows under key.
	rest := func(t *testing.T, body, key string) [][]float32 {
		resp, err := http.Post(ts.URL+"/v1/models/plain:predict", "application/json", strings.NewReader(body))
		if err != nil {
			t.Error(err)
			return nil
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		var out map[string][][]float32
		if err == nil {
			err = json.Unmarshal(raw, &out)
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("status %d, %v: %.200s", resp.StatusCode, err, raw)
		}
		return out[key]
	}
	// Each format sends rows [from, to) and returns their probabilities.
	formats := map[string]func(t *testing.T, from, to int) [][]float32{
		"instances, rows": func(t *testing.T, from, to int) [][]float32 {
			return rest(t, `{"instances": [`+join(from, to, row)+`]}`, "predictions")
		},
		"instances, named": func(t *testing.T, from, to int) [][]float32 {
			named := func(i int) string { return `{"features": ` + row(i) + `}` }
			return rest(t, `{"instances": [`+join(from, to, named)+`]}`, "predictions")
		},
		"inputs, named": func(t *testing.T, from, to int) [][]float32 {
			return rest(t, `{"inputs": {"features": [`+join(from, to, row)+`]}}`, "outputs")
		},
		"inputs, list, signature named": func(t *testing.T, from, to int) [][]float32 {
			return rest(t, `{"signature_name": "serving_default", "inputs": [`+join(from, to, row)+`]}`, "outputs")
		},
		"Open Inference Protocol, REST": func(t *testing.T, from, to int) [][]float32 {
			body := fmt.Sprintf(`{"inputs": [{"name": "features", "shape": [%d, %d], "datatype": "FP32", "data": [%s]}]}`,
				to-from, x.Cols, join(from, to, func(i int) string { r := row(i); return r[1 : len(r)-1] }))
			resp, err := http.Post(ts.URL+"/v2/models/plain/infer", "application/json", strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return nil
			}
			defer resp.Body.Close()
			var out struct {
				Outputs []struct {
					Shape []int
					Data  []float32
				}
			}
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || len(out.Outputs) != 1 {
				t.Errorf("status %d, %v, %d outputs", resp.StatusCode, err, len(out.Outputs))
				return nil
			}
			return split(out.Outputs[0].Data, want.Cols)
		},
		"gRPC, tensor_content": func(t *testing.T, from, to int) [][]float32 {
			resp, err := svc.Predict(ctx, matrixRequest("plain", x.Slice(from, to)))
			if err != nil {
				t.Error(err)
				return nil
			}
			return split(resp.Outputs["output_0"].GetFloatVal(), want.Cols)
		},
	}
	sent := 0
	for name, format := range formats {
		t.Run(name, func(t *testing.T) {
			var wg sync.WaitGroup
			for at, k := 0, 0; at < x.Rows; k++ {
				from, to := at, min(at+1+k%3, x.Rows) // requests of 1 to 3 rows
				sent += to - from
				wg.Go(func() {
					got := format(t, from, to)
					if len(got) != to-from {
						t.Errorf("rows %d-%d: %d answers", from, to, len(got))
						return
					}
					for i, p := range got {
						for j, v := range p {
							if d := math.Abs(float64(v - want.At(from+i, j))); !(d <= kerasTol) {
								t.Errorf("row %d, class %d: %v, Keras %v", from+i, j, v, want.At(from+i, j))
								return
							}
						}
					}
				})
				at = to
			}
			wg.Wait()
		})
	}
	if got := batchedRows(t, reg); got != sent {
		t.Errorf("the batcher merged %d rows, want all %d sent", got, sent)
	}
}

// split cuts y into rows of cols values.
func split(y []float32, cols int) [][]float32 {
	var rows [][]float32
	for len(y) >= cols {
		rows, y = append(rows, y[:cols]), y[cols:]
	}
	return rows
}

func readGolden(tb testing.TB, name string) dense.Matrix {
	tb.Helper()
	m, err := rowio.ReadNPYFile(filepath.Join("..", "testdata", "golden", name))
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// batchedRows is the sum of the kerasgo_batch_rows histogram: the rows the
// batcher sent to the model.
func batchedRows(t *testing.T, reg *prometheus.Registry) int {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "kerasgo_batch_rows" {
			sum := 0.0
			for _, m := range f.GetMetric() {
				sum += m.GetHistogram().GetSampleSum()
			}
			return int(sum)
		}
	}
	t.Fatal("no kerasgo_batch_rows metric")
	return 0
}
