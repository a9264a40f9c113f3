package serving_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kerasgo/kerasgo/serving"
)

// TestOpenInferenceProtocol drives the Open Inference Protocol's REST
// routes on a fake model (row sums; see fake.Predict): every route, JSON
// tensors flat and nested, the binary tensor data extension both ways, and
// errors as {"error": ...} with the exact Content-Type KServe's client
// requires. Compatibility with the official clients is
// scripts/tests/test_open_inference.py.
func TestOpenInferenceProtocol(t *testing.T) {
	base, l := oneModel(t, 2)
	_, ts := newServer(t, serving.Config{Models: []serving.ModelConfig{{Name: "m", BasePath: base}},
		Batch: serving.BatchOptions{MaxBatchSize: 8}}, l)
	cases := []struct {
		name, method, path, body string
		status                   int
		want                     string // a substring of the JSON answer
	}{
		{"server metadata", "GET", "/v2", "", 200, `"extensions":["binary_tensor_data"]`},
		{"server metadata, slash", "GET", "/v2/", "", 200, `"name":"kerasgo"`},
		{"live", "GET", "/v2/health/live", "", 200, `{"live":true}`},
		{"ready", "GET", "/v2/health/ready", "", 200, `{"ready":true}`},
		{"model metadata", "GET", "/v2/models/m", "", 200, `"versions":["1"]`},
		{"model metadata by version", "GET", "/v2/models/m/versions/1", "", 200, `"platform":"tensorflow_savedmodel"`},
		{"model ready", "GET", "/v2/models/m/ready", "", 200, `{"name":"m","ready":true}`},
		{"unknown model", "GET", "/v2/models/nope/ready", "", 404, `"error":`},
		{"unknown version", "GET", "/v2/models/m/versions/7", "", 404, `"error":`},
		{"version not a number", "GET", "/v2/models/m/versions/x/ready", "", 400, `version \"x\"`},
		{"infer, flat data", "POST", "/v2/models/m/infer",
			`{"id": "a1", "inputs": [{"name": "features", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]}`,
			200, `"id":"a1","outputs":[{"name":"probabilities","datatype":"FP32","shape":[2,3],"data":[1.0,3.0,6.0,1.0,7.0,14.0]}]`},
		{"infer, nested data", "POST", "/v2/models/m/versions/1/infer",
			`{"inputs": [{"name": "features", "shape": [1, 2], "datatype": "FP32", "data": [[0.5, 0.25]]}]}`,
			200, `"data":[1.0,0.75,1.5]`},
		{"infer, an output by name", "POST", "/v2/models/m/infer",
			`{"inputs": [{"name": "features", "shape": [1, 2], "datatype": "FP32", "data": [1, 1]}], "outputs": [{"name": "probabilities"}]}`,
			200, `"model_name":"m","model_version":"1","outputs"`},
		{"infer, unknown output", "POST", "/v2/models/m/infer",
			`{"inputs": [{"name": "features", "shape": [1, 2], "datatype": "FP32", "data": [1, 1]}], "outputs": [{"name": "logits"}]}`,
			400, `unexpected inference output \"logits\"`},
		{"infer, a datatype kerasgo does not feed", "POST", "/v2/models/m/infer",
			`{"inputs": [{"name": "features", "shape": [1, 2], "datatype": "BF16", "data": [1, 1]}]}`,
			400, `datatype \"BF16\"`},
		{"infer, data that does not fill the shape", "POST", "/v2/models/m/infer",
			`{"inputs": [{"name": "features", "shape": [2, 2], "datatype": "FP32", "data": [1, 1]}]}`,
			400, `2 elements of data for shape [2 2]`},
		{"infer, no inputs", "POST", "/v2/models/m/infer", `{"inputs": []}`, 400, `non-empty list of inputs`},
		{"infer, not JSON", "POST", "/v2/models/m/infer", `{"inputs": [`, 400, `JSON Parse error`},
		{"infer by GET", "GET", "/v2/models/m/infer", "", 404, `no such endpoint`},
		{"unknown route", "GET", "/v2/repository/index", "", 404, `no such endpoint`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, ts.URL+c.path, strings.NewReader(c.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status || !strings.Contains(string(b), c.want) {
				t.Fatalf("%d %s, want %d and %s", resp.StatusCode, b, c.status, c.want)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want exactly application/json", ct)
			}
			if !json.Valid(b) {
				t.Errorf("not JSON: %s", b)
			}
		})
	}

	t.Run("binary tensor data", func(t *testing.T) {
		head := `{"inputs":[{"name":"features","shape":[1,2],"datatype":"FP32","parameters":{"binary_data_size":8}}],"parameters":{"binary_data_output":true}}`
		body := []byte(head)
		for _, v := range []float32{2, 3} {
			body = binary.LittleEndian.AppendUint32(body, math.Float32bits(v))
		}
		req, _ := http.NewRequest("POST", ts.URL+"/v2/models/m/infer", bytes.NewReader(body))
		req.Header.Set("Inference-Header-Content-Length", strconv.Itoa(len(head)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		n, err := strconv.Atoi(resp.Header.Get("Inference-Header-Content-Length"))
		if resp.StatusCode != 200 || err != nil || n > len(b) {
			t.Fatalf("%d, header %q: %q", resp.StatusCode, resp.Header.Get("Inference-Header-Content-Length"), b)
		}
		var got struct {
			Outputs []struct {
				Shape      []int64
				Parameters struct {
					BinaryDataSize int `json:"binary_data_size"`
				}
			}
		}
		if err := json.Unmarshal(b[:n], &got); err != nil || len(got.Outputs) != 1 || got.Outputs[0].Parameters.BinaryDataSize != 12 || len(b)-n != 12 {
			t.Fatalf("JSON part %s (%v), %d bytes after it", b[:n], err, len(b)-n)
		}
		var y []float32
		for i := n; i < len(b); i += 4 {
			y = append(y, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
		}
		if want := []float32{1, 5, 10}; !slices.Equal(y, want) {
			t.Errorf("outputs %v, want %v", y, want)
		}
	})
	t.Run("binary data no input claims", func(t *testing.T) {
		head := `{"inputs":[{"name":"features","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`
		req, _ := http.NewRequest("POST", ts.URL+"/v2/models/m/infer", strings.NewReader(head+"xxxx"))
		req.Header.Set("Inference-Header-Content-Length", strconv.Itoa(len(head)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 400 || !strings.Contains(string(b), "4 bytes of binary data") {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	})
}
