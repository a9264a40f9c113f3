package serving_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/tensor"
)

// echo is a TensorModel with TF Serving's synthetic json_tensor_test
// signatures; Run returns its inputs as its outputs.
type echo struct{ sig tensor.Signature }

func (e echo) Predict(context.Context, dense.Matrix) (dense.Matrix, error) {
	return dense.Matrix{}, nil
}
func (e echo) Spec() serving.Spec {
	return serving.Spec{Signature: "serving_default", Signatures: map[string]tensor.Signature{
		"serving_default": e.sig,
		"custom_signture": {MethodName: "tensorflow/serving/classify", Inputs: map[string]tensor.Spec{"inputs": {DType: tensor.String}}},
	}}
}
func (e echo) Close() error { return nil }
func (e echo) Run(_ context.Context, _ string, in map[string]tensor.Tensor) (map[string]tensor.Tensor, error) {
	return in, nil
}

// TestJSONTensorCases sends the requests of TF Serving's json_tensor_test.cc
// (testdata/serving/rest_cases.json, the j_* cases with an error) to a
// model with the test's signature, and expects its status and message.
func TestJSONTensorCases(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "serving", "rest_cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Cases []struct {
			ID            string          `json:"id"`
			Path          *string         `json:"path"`
			Request       json.RawMessage `json:"request"`
			Status        int             `json:"status"`
			ErrorContains *string         `json:"error_contains"`
		}
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	single := tensor.Signature{MethodName: "tensorflow/serving/predict", Inputs: map[string]tensor.Spec{"int_tensor": {DType: tensor.Int32}}}
	named := tensor.Signature{MethodName: "tensorflow/serving/predict", Inputs: map[string]tensor.Spec{
		"int_tensor": {DType: tensor.Int32}, "str_tensor": {DType: tensor.String}}}
	// The signature each case of json_tensor_test.cc uses.
	signatures := map[string]tensor.Signature{
		"j_row_ragged_size": single, "j_row_ragged_shape": single, "j_row_scalar_vs_list": single,
		"j_row_mixed_types": single, "j_both_instances_and_inputs": single,
		"j_row_object_then_list": named, "j_row_list_then_object": named,
		"j_classify_regress_int_then_float": single, "j_classify_regress_context_not_object": single,
	}
	checked := 0
	for _, c := range file.Cases {
		sig, ok := signatures[c.ID]
		if !ok {
			continue
		}
		checked++
		t.Run(c.ID, func(t *testing.T) {
			base := t.TempDir()
			versionDir(t, base, 1)
			srv, err := serving.New(context.Background(), serving.Config{Models: []serving.ModelConfig{{Name: "m", BasePath: base}}},
				func(context.Context, string) (serving.Model, error) { return echo{sig: sig}, nil })
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			verb := ":predict"
			if strings.Contains(*c.Path, ":classify") || strings.Contains(*c.Path, ":regress") {
				verb = ":classify"
			}
			req, _ := http.NewRequest(http.MethodPost, "/v1/models/m"+verb, strings.NewReader(string(c.Request)))
			rec := &recorder{header: http.Header{}}
			srv.Handler().ServeHTTP(rec, req)
			if rec.code != c.Status || (c.ErrorContains != nil && !strings.Contains(rec.body.String(), *c.ErrorContains)) {
				t.Fatalf("%d %s; TF Serving answers %d containing %v", rec.code, rec.body.String(), c.Status, *c.ErrorContains)
			}
		})
	}
	if checked != len(signatures) {
		t.Fatalf("%d of the %d json_tensor cases found in rest_cases.json", checked, len(signatures))
	}
}

// recorder is a minimal http.ResponseWriter.
type recorder struct {
	header http.Header
	code   int
	body   strings.Builder
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) { r.code = code }
