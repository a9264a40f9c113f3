package serving_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/serving"
)

// fake is a model whose output row i is [version, sum(x_i), 2*sum(x_i)].
// halfPlusTwo instead computes 0.5x+2 on a scalar (TF Serving's example).
type fake struct {
	version     float32
	dim         int
	delay       time.Duration
	halfPlusTwo bool
	calls       atomic.Int64
	maxRows     atomic.Int64
	closed      atomic.Bool
}

func (f *fake) Predict(ctx context.Context, x dense.Matrix) (dense.Matrix, error) {
	if f.closed.Load() {
		return dense.Matrix{}, errors.New("predict on a closed model")
	}
	f.calls.Add(1)
	for {
		m := f.maxRows.Load()
		if int64(x.Rows) <= m || f.maxRows.CompareAndSwap(m, int64(x.Rows)) {
			break
		}
	}
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	if f.halfPlusTwo {
		y := dense.New(x.Rows, 1)
		for i := range x.Rows {
			y.Data[i] = 0.5*x.At(i, 0) + 2
		}
		return y, nil
	}
	y := dense.New(x.Rows, 3)
	for i := range x.Rows {
		var s float32
		for _, v := range x.Row(i) {
			s += v
		}
		copy(y.Row(i), []float32{f.version, s, 2 * s})
	}
	return y, nil
}

func (f *fake) Spec() serving.Spec {
	return serving.Spec{Signature: "serving_default", InputKey: "features", OutputKey: "probabilities", InputDim: f.dim,
		ScalarOutput: f.halfPlusTwo, SignatureDefs: json.RawMessage(`{"serving_default":{"method_name":"tensorflow/serving/predict"}}`)}
}

func (f *fake) Close() error { f.closed.Store(true); return nil }

// loader makes fakes whose version is the directory's base name.
type loader struct {
	mu     sync.Mutex
	loaded map[string]*fake
	tmpl   fake
}

func (l *loader) load(ctx context.Context, dir string) (serving.Model, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var v float32
	fmt.Sscan(filepath.Base(dir), &v)
	f := &fake{version: v, dim: l.tmpl.dim, delay: l.tmpl.delay, halfPlusTwo: l.tmpl.halfPlusTwo}
	if l.loaded == nil {
		l.loaded = map[string]*fake{}
	}
	l.loaded[dir] = f
	return f, nil
}

// versionDir makes a complete-looking SavedModel directory.
func versionDir(tb testing.TB, base string, n int) {
	tb.Helper()
	dir := filepath.Join(base, fmt.Sprint(n))
	if err := os.MkdirAll(filepath.Join(dir, "variables"), 0o755); err != nil {
		tb.Fatal(err)
	}
	for _, f := range []string{"saved_model.pb", "variables/variables.index"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

func newServer(tb testing.TB, cfg serving.Config, l *loader) (*serving.Server, *httptest.Server) {
	tb.Helper()
	srv, err := serving.New(context.Background(), cfg, l.load)
	if err != nil {
		tb.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	tb.Cleanup(func() {
		ts.Close()
		srv.Close()
	})
	return srv, ts
}

func do(tb testing.TB, method, url, body string) (int, map[string]any) {
	tb.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil && resp.Header.Get("Content-Type") == "application/json" {
		tb.Fatalf("%s %s: not JSON: %q", method, url, b)
	}
	return resp.StatusCode, out
}

func oneModel(tb testing.TB, dim int) (string, *loader) {
	base := tb.TempDir()
	versionDir(tb, base, 1)
	return base, &loader{tmpl: fake{dim: dim}}
}

func TestEndpoints(t *testing.T) {
	base, l := oneModel(t, 3)
	_, ts := newServer(t, serving.Config{Models: []serving.ModelConfig{{Name: "m", BasePath: base, Labels: map[string]int64{"stable": 1}}}}, l)
	tests := map[string]struct {
		method, path, body string
		wantCode           int
		want               string // JSON fragment of the response
	}{
		"status":             {"GET", "/v1/models/m", "", 200, `{"model_version_status":[{"version":"1","state":"AVAILABLE","status":{"error_code":"OK","error_message":""}}]}`},
		"status of version":  {"GET", "/v1/models/m/versions/1", "", 200, `"version":"1"`},
		"status of label":    {"GET", "/v1/models/m/labels/stable", "", 200, `"version":"1"`},
		"metadata":           {"GET", "/v1/models/m/metadata", "", 200, `"model_spec":{"name":"m","signature_name":"","version":"1"}`},
		"metadata signature": {"GET", "/v1/models/m/versions/1/metadata", "", 200, `"signature_def":{"serving_default"`},
		"predict rows":       {"POST", "/v1/models/m:predict", `{"instances": [[1, 2, 3], [0, 0, 1]]}`, 200, `{"predictions":[[1,6,12],[1,1,2]]}`},
		"predict named rows": {"POST", "/v1/models/m/versions/1:predict", `{"signature_name": "serving_default", "instances": [{"features": [1, 1, 1]}]}`, 200, `{"predictions":[[1,3,6]]}`},
		"predict columnar":   {"POST", "/v1/models/m/labels/stable:predict", `{"inputs": {"features": [[1, 2, 3]]}}`, 200, `{"outputs":[[1,6,12]]}`},
		"columnar list":      {"POST", "/v1/models/m:predict", `{"inputs": [[2, 2, 2]]}`, 200, `{"outputs":[[1,6,12]]}`},
		"malformed JSON":     {"POST", "/v1/models/m:predict", `{"instances": [[1, 2`, 400, `"error":"malformed JSON body`},
		"wrong width":        {"POST", "/v1/models/m:predict", `{"instances": [[1, 2]]}`, 400, `instance 0 has 2 features, input \"features\" takes 3`},
		"ragged":             {"POST", "/v1/models/m:predict", `{"instances": [[1, 2, 3], [1]]}`, 400, `"error"`},
		"both formats":       {"POST", "/v1/models/m:predict", `{"instances": [[1,2,3]], "inputs": [[1,2,3]]}`, 400, `exactly one of`},
		"no instances":       {"POST", "/v1/models/m:predict", `{"instances": []}`, 400, `no instances`},
		"b64 to a float":     {"POST", "/v1/models/m:predict", `{"instances": [{"b64": "aGVsbG8="}]}`, 400, `b64`},
		"unknown signature":  {"POST", "/v1/models/m:predict", `{"signature_name": "nope", "instances": [[1,2,3]]}`, 400, `nope\" not found`},
		"unknown model":      {"POST", "/v1/models/other:predict", `{"instances": [[1,2,3]]}`, 404, `model \"other\": model not found`},
		"unknown version":    {"GET", "/v1/models/m/versions/7", "", 404, `version 7 is not loaded`},
		"unknown label":      {"GET", "/v1/models/m/labels/canary", "", 404, `no version label`},
		"classify":           {"POST", "/v1/models/m:classify", `{"examples": []}`, 400, `no classify signature`},
		"GET predict":        {"GET", "/v1/models/m:predict", "", 405, `not allowed`},
		"bad version":        {"GET", "/v1/models/m/versions/x", "", 400, `not a positive integer`},
		"malformed path":     {"GET", "/v1/models/m/foo/bar/baz", "", 404, `malformed`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, ts.URL+tc.path, strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantCode || !strings.Contains(string(b), tc.want) {
				t.Fatalf("%d %s; want %d containing %s", resp.StatusCode, b, tc.wantCode, tc.want)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("content type %q", ct)
			}
		})
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/monitoring/prometheus/metrics"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", path, resp.StatusCode, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(path, "metrics") && !strings.Contains(string(b), `kerasgo_requests_total{api="predict",code="200",model="m",version="1"}`) {
			t.Fatalf("%s lacks the request counter:\n%s", path, b)
		}
	}
}

// TestTFServingDocExample sends the half_plus_two request of TF Serving's
// REST documentation as written and checks the documented response.
func TestTFServingDocExample(t *testing.T) {
	base := t.TempDir()
	versionDir(t, base, 123)
	l := &loader{tmpl: fake{dim: 1, halfPlusTwo: true}}
	_, ts := newServer(t, serving.Config{Models: []serving.ModelConfig{{Name: "half_plus_two", BasePath: base}}}, l)
	resp, err := http.Post(ts.URL+"/v1/models/half_plus_two:predict", "application/json", strings.NewReader(`{"instances": [1.0, 2.0, 5.0]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != `{"predictions":[2.5,3,4.5]}` {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	code, out := do(t, "GET", ts.URL+"/v1/models/half_plus_two", "")
	if code != 200 || fmt.Sprint(out["model_version_status"]) != "[map[state:AVAILABLE status:map[error_code:OK error_message:] version:123]]" {
		t.Fatalf("status %d %v", code, out)
	}
}

func TestBatchingMergesAndMatches(t *testing.T) {
	base, l := oneModel(t, 4)
	l.tmpl.delay = 2 * time.Millisecond
	_, ts := newServer(t, serving.Config{Models: []serving.ModelConfig{{Name: "m", BasePath: base}},
		Batch: serving.BatchOptions{MaxBatchSize: 32, BatchTimeout: 5 * time.Millisecond}}, l)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range 300 {
		wg.Go(func() {
			a, b := float32(i%17), float32(i%5)
			body := fmt.Sprintf(`{"instances": [[%v, %v, 0, 0]]}`, a, b)
			code, out := do(t, "POST", ts.URL+"/v1/models/m:predict", body)
			want := fmt.Sprint([]any{[]any{1.0, float64(a + b), float64(2 * (a + b))}})
			if code != 200 || fmt.Sprint(out["predictions"]) != want {
				failed.Add(1)
				t.Errorf("request %d: %d %v, want %s", i, code, out, want)
			}
		})
	}
	wg.Wait()
	f := l.loaded[filepath.Join(base, "1")]
	if failed.Load() > 0 {
		return
	}
	if f.maxRows.Load() < 2 || f.calls.Load() >= 300 {
		t.Fatalf("batching never merged requests: %d calls, largest batch %d rows", f.calls.Load(), f.maxRows.Load())
	}
}

func TestOverloadAnswers503(t *testing.T) {
	base, l := oneModel(t, 1)
	l.tmpl.delay = 50 * time.Millisecond
	_, ts := newServer(t, serving.Config{Models: []serving.ModelConfig{{Name: "m", BasePath: base}},
		Batch: serving.BatchOptions{MaxBatchSize: 2, BatchTimeout: time.Millisecond, MaxEnqueued: 2, Threads: 1}}, l)
	var wg sync.WaitGroup
	codes := make(chan int, 100)
	for range 100 {
		wg.Go(func() {
			code, _ := do(t, "POST", ts.URL+"/v1/models/m:predict", `{"instances": [[1]]}`)
			codes <- code
		})
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[503] == 0 || count[200] == 0 || count[200]+count[503] != 100 {
		t.Fatalf("status counts %v: want some 200s, some 503s, nothing else", count)
	}
}

func TestTimeoutAnswers504(t *testing.T) {
	base, l := oneModel(t, 1)
	l.tmpl.delay = 200 * time.Millisecond
	_, ts := newServer(t, serving.Config{Models: []serving.ModelConfig{{Name: "m", BasePath: base}}, RequestTimeout: 20 * time.Millisecond,
		Batch: serving.BatchOptions{MaxBatchSize: 8, BatchTimeout: time.Millisecond}}, l)
	code, out := do(t, "POST", ts.URL+"/v1/models/m:predict", `{"instances": [[1]]}`)
	if code != 504 || out["error"] == nil {
		t.Fatalf("%d %v", code, out)
	}
}

func TestBodyLimit(t *testing.T) {
	base, l := oneModel(t, 1)
	_, ts := newServer(t, serving.Config{Models: []serving.ModelConfig{{Name: "m", BasePath: base}}, MaxBodyBytes: 100}, l)
	body := `{"instances": [` + strings.Repeat("[1],", 100) + `[1]]}`
	code, _ := do(t, "POST", ts.URL+"/v1/models/m:predict", body)
	if code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d", code)
	}
}

// TestVersionSwapUnderLoad publishes version 2 while requests run: no
// request fails, answers move to version 2, and version 1 is closed after
// its requests drain.
func TestVersionSwapUnderLoad(t *testing.T) {
	base, l := oneModel(t, 2)
	l.tmpl.delay = time.Millisecond
	_, ts := newServer(t, serving.Config{Models: []serving.ModelConfig{{Name: "m", BasePath: base}}, PollInterval: 10 * time.Millisecond,
		Batch: serving.BatchOptions{MaxBatchSize: 8, BatchTimeout: time.Millisecond}}, l)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var failed, sawV2 atomic.Int64
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, out := do(t, "POST", ts.URL+"/v1/models/m:predict", `{"instances": [[1, 2]]}`)
				if code != 200 {
					failed.Add(1)
					t.Errorf("during the swap: %d %v", code, out)
					return
				}
				if fmt.Sprint(out["predictions"]) == "[[2 3 6]]" {
					sawV2.Add(1)
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	// A version being written: only saved_model.pb so far. It must not load.
	if err := os.MkdirAll(filepath.Join(base, "3"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(base, "3", "saved_model.pb"), []byte("partial"), 0o644)
	versionDir(t, base, 2)
	deadline := time.Now().Add(5 * time.Second)
	for sawV2.Load() < 20 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if failed.Load() > 0 || sawV2.Load() < 20 {
		t.Fatalf("%d failed requests, %d answered by version 2", failed.Load(), sawV2.Load())
	}
	code, out := do(t, "GET", ts.URL+"/v1/models/m", "")
	if code != 200 || !strings.Contains(fmt.Sprint(out), "version:2") || strings.Contains(fmt.Sprint(out), "version:3") {
		t.Fatalf("status after the swap: %v", out)
	}
	deadline = time.Now().Add(2 * time.Second)
	for !l.loaded[filepath.Join(base, "1")].closed.Load() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !l.loaded[filepath.Join(base, "1")].closed.Load() {
		t.Fatal("version 1 was never unloaded")
	}
	if _, loaded := l.loaded[filepath.Join(base, "3")]; loaded {
		t.Fatal("the half-written version 3 was loaded")
	}
}

func TestNewErrors(t *testing.T) {
	l := &loader{}
	empty := t.TempDir()
	for name, cfg := range map[string]serving.Config{
		"no models":    {},
		"no version":   {Models: []serving.ModelConfig{{Name: "m", BasePath: empty}}},
		"missing base": {Models: []serving.ModelConfig{{Name: "m", BasePath: filepath.Join(empty, "nope")}}},
		"no name":      {Models: []serving.ModelConfig{{BasePath: empty}}},
	} {
		if _, err := serving.New(context.Background(), cfg, l.load); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

func TestPinnedVersionsAndLabels(t *testing.T) {
	base := t.TempDir()
	for _, n := range []int{1, 2, 3} {
		versionDir(t, base, n)
	}
	cfgs, err := serving.ParseFileConfig([]byte(fmt.Sprintf(`{"models": [{"name": "m", "base_path": %q, "versions": [1, 3, 4], "labels": {"stable": 1, "canary": 3}}]}`, base)))
	if err != nil {
		t.Fatal(err)
	}
	l := &loader{tmpl: fake{dim: 1}}
	_, ts := newServer(t, serving.Config{Models: cfgs, PollInterval: 10 * time.Millisecond}, l)
	code, out := do(t, "GET", ts.URL+"/v1/models/m", "")
	status := fmt.Sprint(out)
	if code != 200 || !strings.Contains(status, "version:1") || !strings.Contains(status, "version:3") || strings.Contains(status, "version:2") {
		t.Fatalf("status %d %v", code, out)
	}
	for path, want := range map[string]string{
		"/v1/models/m:predict":               "[[3 1 2]]", // latest pinned
		"/v1/models/m/versions/1:predict":    "[[1 1 2]]",
		"/v1/models/m/labels/stable:predict": "[[1 1 2]]",
		"/v1/models/m/labels/canary:predict": "[[3 1 2]]",
	} {
		code, out := do(t, "POST", ts.URL+path, `{"instances": [[1]]}`)
		if code != 200 || fmt.Sprint(out["predictions"]) != want {
			t.Errorf("%s: %d %v, want %s", path, code, out, want)
		}
	}
	if code, _ := do(t, "POST", ts.URL+"/v1/models/m/versions/2:predict", `{"instances": [[1]]}`); code != 404 {
		t.Errorf("unpinned version 2 answered %d", code)
	}
	// Pinned version 4 appears later: polling loads it once it is stable.
	versionDir(t, base, 4)
	deadline := time.Now().Add(3 * time.Second)
	for {
		code, out := do(t, "POST", ts.URL+"/v1/models/m/versions/4:predict", `{"instances": [[1]]}`)
		if code == 200 && fmt.Sprint(out["predictions"]) == "[[4 1 2]]" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pinned version 4 never loaded: %d %v", code, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestParseFileConfig(t *testing.T) {
	for name, tc := range map[string]struct {
		json    string
		wantErr bool
	}{
		"ok":               {json: `{"models": [{"name": "a", "base_path": "/m/a"}, {"name": "b", "base_path": "/m/b", "versions": [2]}]}`},
		"unknown field":    {json: `{"models": [{"name": "a", "base_path": "/m/a", "policy": "all"}]}`, wantErr: true},
		"no base path":     {json: `{"models": [{"name": "a"}]}`, wantErr: true},
		"label off pinned": {json: `{"models": [{"name": "a", "base_path": "/m", "versions": [1], "labels": {"x": 2}}]}`, wantErr: true},
		"not JSON":         {json: `models: [a]`, wantErr: true},
	} {
		t.Run(name, func(t *testing.T) {
			cfgs, err := serving.ParseFileConfig([]byte(tc.json))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, wantErr %v (%+v)", err, tc.wantErr, cfgs)
			}
		})
	}
}
