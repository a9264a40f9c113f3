package serving_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerasgo/kerasgo/evaluation"
	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/serving/requestlog"
	"github.com/kerasgo/kerasgo/serving/tfservingpb"
)

// post sends a JSON body with a request id header (none if id is "") and
// returns the status and the id the answer carries.
func post(t *testing.T, url, body, id string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if id != "" {
		req.Header.Set(serving.RequestIDHeader, id)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get(serving.RequestIDHeader)
}

// readLog reads every record under prefix.
func readLog(t *testing.T, prefix string) []*tfservingpb.PredictionLog {
	t.Helper()
	files, err := requestlog.Files(prefix)
	if err != nil {
		t.Fatal(err)
	}
	var out []*tfservingpb.PredictionLog
	for _, f := range files {
		if _, torn, err := requestlog.Read(f, func(l *tfservingpb.PredictionLog) error {
			out = append(out, l)
			return nil
		}); err != nil || torn {
			t.Fatalf("%s: torn %v, %v", f, torn, err)
		}
	}
	return out
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue metrics
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// TestRequestLogging sends predicts over TF Serving's REST API and the
// Open Inference Protocol's to a model that logs every request, and reads
// back what each logged: the id the client gave (or the one the answer
// carried), the version that answered, the request's tensor and the
// answer's.
func TestRequestLogging(t *testing.T) {
	base, l := oneModel(t, 2)
	prefix := filepath.Join(t.TempDir(), "logs", "m")
	reg := prometheus.NewRegistry()
	srv, ts := newServer(t, serving.Config{Registry: reg, Models: []serving.ModelConfig{{Name: "m", BasePath: base,
		Logging: serving.LoggingConfig{FilenamePrefix: prefix, SamplingRate: 1}}}}, l)
	predict := ts.URL + "/v1/models/m:predict"
	sent := []struct {
		url, body, id string
		wantID        string // "" : a new one
	}{
		{predict, `{"instances": [[1, 2], [3, 4]]}`, "label-me-1", "label-me-1"},
		{predict, `{"inputs": [[5, 6]]}`, "", ""},
		{predict, `{"instances": [[7, 8]]}`, "not an id", ""},
		{ts.URL + "/v2/models/m/infer", `{"id": "oip-7", "inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 2], "data": [9, 10]}]}`, "", "oip-7"},
	}
	var ids []string
	for _, s := range sent {
		code, id := post(t, s.url, s.body, s.id)
		if code != 200 || id == "" || (s.wantID != "" && id != s.wantID) || (s.wantID == "" && id == s.id) {
			t.Fatalf("%s: %d, id %q; want 200 and id %q (given %q)", s.body, code, id, s.wantID, s.id)
		}
		ids = append(ids, id)
	}
	srv.Close() // writes what the log holds
	logs := readLog(t, prefix)
	wantRows := [][]float32{{1, 2, 3, 4}, {5, 6}, {7, 8}, {9, 10}}
	if len(logs) != len(sent) {
		t.Fatalf("%d records, want %d", len(logs), len(sent))
	}
	for i, rec := range logs {
		meta := rec.GetLogMetadata()
		spec := meta.GetModelSpec()
		if meta.GetRequestOrigin() != ids[i] || spec.GetName() != "m" || spec.GetVersion().GetValue() != 1 || spec.GetSignatureName() != "serving_default" ||
			meta.GetSamplingConfig().GetSamplingRate() != 1 || meta.GetTimestampSecs() == 0 {
			t.Errorf("record %d: metadata %v; want id %q, model m version 1", i, meta, ids[i])
		}
		in := rec.GetPredictLog().GetRequest().GetInputs()["features"]
		out := rec.GetPredictLog().GetResponse().GetOutputs()["probabilities"]
		rows := len(wantRows[i]) / 2
		var want []float32
		for r := range rows {
			s := wantRows[i][2*r] + wantRows[i][2*r+1]
			want = append(want, 1, s, 2*s) // the fake's answer: version, sum, 2*sum
		}
		if !slices.Equal(in.GetFloatVal(), wantRows[i]) || in.GetTensorShape().GetDim()[0].GetSize() != int64(rows) ||
			!slices.Equal(out.GetFloatVal(), want) {
			t.Errorf("record %d: input %v, output %v; want %v and %v", i, in, out, wantRows[i], want)
		}
	}
	if n := counter(t, reg, "kerasgo_request_log_records_total", map[string]string{"model": "m"}); n != float64(len(sent)) {
		t.Errorf("kerasgo_request_log_records_total %v, want %d", n, len(sent))
	}
}

// TestRequestLogSampling: a sampling rate of 0 logs nothing, yet answers
// carry their ids; a model without logging carries none.
func TestRequestLogSampling(t *testing.T) {
	base, l := oneModel(t, 2)
	dir := t.TempDir()
	srv, ts := newServer(t, serving.Config{Models: []serving.ModelConfig{
		{Name: "none", BasePath: base, Logging: serving.LoggingConfig{FilenamePrefix: filepath.Join(dir, "none"), SamplingRate: 0}},
		{Name: "off", BasePath: base},
	}}, l)
	for range 20 {
		if code, id := post(t, ts.URL+"/v1/models/none:predict", `{"instances": [[1, 2]]}`, ""); code != 200 || id == "" {
			t.Fatalf("%d, id %q", code, id)
		}
	}
	if code, id := post(t, ts.URL+"/v1/models/off:predict", `{"instances": [[1, 2]]}`, "x"); code != 200 || id != "" {
		t.Fatalf("a model that does not log: %d, id %q", code, id)
	}
	srv.Close()
	if logs := readLog(t, filepath.Join(dir, "none")); len(logs) != 0 {
		t.Errorf("%d records at sampling rate 0", len(logs))
	}
}

// TestRequestLogFullDisk: when the disk refuses the log's writes (here a
// file-size limit, as a full disk refuses them), every request is still
// answered, and the records dropped are counted. Not parallel: the limit
// is the process's.
func TestRequestLogFullDisk(t *testing.T) {
	base, l := oneModel(t, 2)
	prefix := filepath.Join(t.TempDir(), "m")
	reg := prometheus.NewRegistry()
	srv, ts := newServer(t, serving.Config{Registry: reg, Models: []serving.ModelConfig{{Name: "m", BasePath: base,
		Logging: serving.LoggingConfig{FilenamePrefix: prefix, SamplingRate: 1}}}}, l)
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	limited := old
	limited.Cur = 2000
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limited); err != nil {
		t.Skipf("cannot limit file sizes here: %v", err)
	}
	defer func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
			t.Fatal(err)
		}
	}()
	for i := range 100 {
		if code, _ := post(t, ts.URL+"/v1/models/m:predict", `{"instances": [[1, 2], [3, 4], [5, 6]]}`, ""); code != 200 {
			t.Fatalf("request %d: %d while the disk refuses the log", i, code)
		}
	}
	srv.Close()
	written := counter(t, reg, "kerasgo_request_log_records_total", nil)
	failed := counter(t, reg, "kerasgo_request_log_dropped_total", map[string]string{"reason": "write_failed"})
	if written == 0 || failed == 0 || written+failed+counter(t, reg, "kerasgo_request_log_dropped_total", map[string]string{"reason": "queue_full"}) != 100 {
		t.Errorf("%v written, %v dropped for failed writes; want some of each, 100 in all", written, failed)
	}
	if logs := readLog(t, prefix); float64(len(logs)) != written {
		t.Errorf("%d records on disk, %v counted", len(logs), written)
	}
}

// TestTrafficFindings serves a version whose directory records the class
// mix it was validated on: traffic like the validation predictions is
// silent; traffic that collapses onto one class gets the finding, in
// kerasgo evaluate's words, at GET /kerasgo/findings and in the gauges.
func TestTrafficFindings(t *testing.T) {
	base, l := oneModel(t, 1)
	// The fake answers [1, s, 2s]: class "a" for s = 0, "c" for s = 1.
	mix := evaluation.ClassMix{Classes: []string{"a", "b", "c"}, Rows: 1000, Labels: []int{400, 200, 400}, Predicted: []int{500, 0, 500}, Source: "test"}
	if err := mix.Write(filepath.Join(base, "1")); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	_, ts := newServer(t, serving.Config{Registry: reg, TrafficWindow: 200, Models: []serving.ModelConfig{{Name: "m", BasePath: base}}}, l)
	findings := func() []evaluation.Finding {
		resp, err := http.Get(ts.URL + "/kerasgo/findings?model=m")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Versions []serving.VersionFindings `json:"versions"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || len(body.Versions) != 1 {
			t.Fatalf("%+v, %v", body, err)
		}
		return body.Versions[0].Findings
	}
	send := func(rows string) {
		if code, out := do(t, "POST", ts.URL+"/v1/models/m:predict", `{"instances": [`+rows+`]}`); code != 200 {
			t.Fatalf("%d %v", code, out)
		}
	}
	for range 100 {
		send("[0], [1]")
	}
	if f := findings(); len(f) != 0 {
		t.Fatalf("traffic like the validation rows: %v", f)
	}
	for range 200 {
		send("[1]")
	}
	f := findings()
	if len(f) != 3 || f[0].Kind != evaluation.KindPredictionCollapse ||
		!strings.Contains(f[0].Text, `"c" receives 100.0% of the predictions (200 of 200 rows) but received 50.0% of them on the validation rows (500 of 1000), where it holds 40.0% of the labels (400)`) ||
		f[1].Kind != evaluation.KindNeverPredicted || f[2].Kind != evaluation.KindClassMixShift {
		t.Fatalf("collapsed traffic: %+v", f)
	}
	if got := gauge(t, reg, "kerasgo_traffic_class_mix_distance"); got != 0.5 {
		t.Errorf("kerasgo_traffic_class_mix_distance %v, want 0.5", got)
	}
	if got := gauge(t, reg, "kerasgo_traffic_finding"); got != 3 {
		t.Errorf("kerasgo_traffic_finding sums to %v, want 3 kinds on", got)
	}
}
