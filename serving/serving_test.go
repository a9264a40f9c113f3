package serving_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/tensor"
)

// fake is a model whose output row i is [version, sum(x_i), 2*sum(x_i)].
// halfPlusTwo instead computes 0.5x+2 on a scalar (TF Serving's example).
type fake struct {
	version     float32
	dim         int
	delay       time.Duration
	halfPlusTwo bool
	// started, if set, receives a value as each Predict call begins; release,
	// if set, holds every call until it is closed or the call's context ends.
	// Tests use them to know, not guess, what the server is doing.
	started chan struct{}
	release chan struct{}
	mu      sync.Mutex
	batches []int // rows of each Predict call, in call order
	closed  atomic.Bool
}

func (f *fake) Predict(ctx context.Context, x dense.Matrix) (dense.Matrix, error) {
	if f.closed.Load() {
		return dense.Matrix{}, errors.New("predict on a closed model")
	}
	f.mu.Lock()
	f.batches = append(f.batches, x.Rows)
	f.mu.Unlock()
	if f.started != nil {
		f.started <- struct{}{}
	}
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return dense.Matrix{}, ctx.Err()
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

// batchRows returns the rows of each Predict call so far.
func (f *fake) batchRows() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.batches)
}

func (f *fake) Spec() serving.Spec {
	return serving.Spec{Signature: "serving_default", InputKey: "features", OutputKey: "probabilities", InputDim: f.dim,
		ScalarOutput: f.halfPlusTwo, Signatures: map[string]tensor.Signature{"serving_default": {MethodName: "tensorflow/serving/predict"}}}
}

func (f *fake) Close() error { f.closed.Store(true); return nil }

// loader makes fakes whose version is the directory's base name, with the
// template's settings (and channels).
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
	f := &fake{version: v, dim: l.tmpl.dim, delay: l.tmpl.delay, halfPlusTwo: l.tmpl.halfPlusTwo,
		started: l.tmpl.started, release: l.tmpl.release}
	if l.loaded == nil {
		l.loaded = map[string]*fake{}
	}
	l.loaded[dir] = f
	return f, nil
}

// get returns the fake loaded from dir, or nil; the server's poller may be
// loading another version meanwhile.
func (l *loader) get(dir string) *fake {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.loaded[dir]
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

// do sends a request and returns the status and the decoded JSON body. It
// reports failures with Errorf and status 0, never Fatal, so that client
// goroutines may call it.
func do(tb testing.TB, method, url, body string) (int, map[string]any) {
	tb.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		tb.Errorf("%s %s: %v", method, url, err)
		return 0, nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Errorf("%s %s: %v", method, url, err)
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil && resp.Header.Get("Content-Type") == "application/json" {
		tb.Errorf("%s %s: not JSON: %q", method, url, b)
		return 0, nil
	}
	return resp.StatusCode, out
}

// waitFor polls cond until it holds, or fails saying what it waited for.
// Each state these tests wait for comes within milliseconds, but how long a
// loaded machine (or the race detector) takes is not what they check: the
// bound is a generous 30 s, so a rule that never reaches the state fails in
// seconds rather than at the test binary's -timeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	giveUp := time.Now().Add(30 * time.Second)
	if deadline, ok := t.Deadline(); ok && deadline.Add(-5*time.Second).Before(giveUp) {
		giveUp = deadline.Add(-5 * time.Second)
	}
	for !cond() {
		if time.Now().After(giveUp) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gauge reads the value of the gauge name from reg (0 if absent).
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			var sum float64
			for _, m := range f.GetMetric() {
				sum += m.GetGauge().GetValue()
			}
			return sum
		}
	}
	return 0
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
		"predict rows":       {"POST", "/v1/models/m:predict", `{"instances": [[1, 2, 3], [0, 0, 1]]}`, 200, `{"predictions":[[1.0,6.0,12.0],[1.0,1.0,2.0]]}`},
		"predict named rows": {"POST", "/v1/models/m/versions/1:predict", `{"signature_name": "serving_default", "instances": [{"features": [1, 1, 1]}]}`, 200, `{"predictions":[[1.0,3.0,6.0]]}`},
		"predict columnar":   {"POST", "/v1/models/m/labels/stable:predict", `{"inputs": {"features": [[1, 2, 3]]}}`, 200, `{"outputs":[[1.0,6.0,12.0]]}`},
		"columnar list":      {"POST", "/v1/models/m:predict", `{"inputs": [[2, 2, 2]]}`, 200, `{"outputs":[[1.0,6.0,12.0]]}`},
		"malformed JSON":     {"POST", "/v1/models/m:predict", `{"instances": [[1, 2`, 400, `"error":"JSON Parse error: `},
		"wrong width":        {"POST", "/v1/models/m:predict", `{"instances": [[1, 2]]}`, 400, `instance 0 has 2 features, input \"features\" takes 3`},
		"ragged":             {"POST", "/v1/models/m:predict", `{"instances": [[1, 2, 3], [1]]}`, 400, `"error"`},
		"both formats":       {"POST", "/v1/models/m:predict", `{"instances": [[1,2,3]], "inputs": [[1,2,3]]}`, 400, `expecting only one of 'inputs' or 'instances'`},
		"no instances":       {"POST", "/v1/models/m:predict", `{"instances": []}`, 400, `no instances`},
		"b64 to a float":     {"POST", "/v1/models/m:predict", `{"instances": [{"b64": "aGVsbG8="}]}`, 400, `b64`},
		"unknown signature":  {"POST", "/v1/models/m:predict", `{"signature_name": "nope", "instances": [[1,2,3]]}`, 400, `nope\" not found`},
		"unknown model":      {"POST", "/v1/models/other:predict", `{"instances": [[1,2,3]]}`, 404, `Servable not found for request: Latest(other)`},
		"unknown version":    {"GET", "/v1/models/m/versions/7", "", 404, `Servable not found for request: Specific(m, 7)`},
		"unknown label":      {"GET", "/v1/models/m/labels/canary", "", 400, `Unrecognized servable version label: canary`},
		"classify":           {"POST", "/v1/models/m:classify", `{"examples": []}`, 400, `use :predict`},
		"GET predict":        {"GET", "/v1/models/m:predict", "", 400, `Malformed request: GET /v1/models/m:predict`},
		"bad version":        {"GET", "/v1/models/m/versions/x", "", 400, `Malformed request: GET /v1/models/m/versions/x`},
		"huge version":       {"GET", "/v1/models/m/versions/18446744073709551615", "", 400, `Failed to convert version: 18446744073709551615 to numeric.`},
		"unknown verb":       {"POST", "/v1/models/m:explain", "{}", 400, `Malformed request: POST /v1/models/m:explain`},
		"malformed path":     {"GET", "/v1/models/m/foo/bar/baz", "", 400, `Malformed request: GET /v1/models/m/foo/bar/baz`},
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
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != `{"predictions":[2.5,3.0,4.5]}` {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	code, out := do(t, "GET", ts.URL+"/v1/models/half_plus_two", "")
	if code != 200 || fmt.Sprint(out["model_version_status"]) != "[map[state:AVAILABLE status:map[error_code:OK error_message:] version:123]]" {
		t.Fatalf("status %d %v", code, out)
	}
}

// TestBatching checks that concurrent requests are merged into model calls
// and that each request gets its own rows back. With one batching thread and
// the fixed policy's BatchTimeout an hour, a batch closes only when full, so
// how many rows each call gets does not depend on when the requests happen
// to arrive.
func TestBatching(t *testing.T) {
	tests := map[string]struct {
		requests, rowsPer int
		batch             serving.BatchOptions
		wantBatches       []int // rows of each model call; nil: any, as long as all rows are scored
	}{
		"full batches of single rows": {requests: 64, rowsPer: 1,
			batch: serving.BatchOptions{MaxBatchSize: 8, Policy: serving.BatchFixed, BatchTimeout: time.Hour, Threads: 1}, wantBatches: slices.Repeat([]int{8}, 8)},
		"full batches of two-row requests": {requests: 32, rowsPer: 2,
			batch: serving.BatchOptions{MaxBatchSize: 8, Policy: serving.BatchFixed, BatchTimeout: time.Hour, Threads: 1}, wantBatches: slices.Repeat([]int{8}, 8)},
		// Too few requests to fill a batch: BatchTimeout sends what there is.
		"partial batch at the timeout": {requests: 3, rowsPer: 1,
			batch: serving.BatchOptions{MaxBatchSize: 32, Policy: serving.BatchFixed, BatchTimeout: time.Millisecond}},
		"adaptive": {requests: 64, rowsPer: 3,
			batch: serving.BatchOptions{MaxBatchSize: 8}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			base, l := oneModel(t, 4)
			_, ts := newServer(t, serving.Config{Models: []serving.ModelConfig{{Name: "m", BasePath: base}}, Batch: tc.batch}, l)
			var wg sync.WaitGroup
			for i := range tc.requests {
				wg.Go(func() {
					var rows, want []string
					for r := range tc.rowsPer {
						a, b := float32(i%17), float32((i+r)%5)
						rows = append(rows, fmt.Sprintf("[%v, %v, 0, 0]", a, b))
						want = append(want, fmt.Sprint([]any{1.0, float64(a + b), float64(2 * (a + b))}))
					}
					code, out := do(t, "POST", ts.URL+"/v1/models/m:predict", `{"instances": [`+strings.Join(rows, ", ")+`]}`)
					if got := fmt.Sprint(out["predictions"]); code != 200 || got != "["+strings.Join(want, " ")+"]" {
						t.Errorf("request %d: %d %v, want [%s]", i, code, out, strings.Join(want, " "))
					}
				})
			}
			wg.Wait()
			got := l.get(filepath.Join(base, "1")).batchRows()
			total := 0
			for _, n := range got {
				total += n
			}
			if total != tc.requests*tc.rowsPer {
				t.Errorf("model calls of %v rows, %d in all; want %d", got, total, tc.requests*tc.rowsPer)
			}
			if tc.wantBatches != nil && !slices.Equal(got, tc.wantBatches) {
				t.Errorf("model calls of %v rows, want %v", got, tc.wantBatches)
			}
		})
	}
}

// TestAdaptiveLinger: after a batch of three rows, a request that finds
// the model free waits, for at most that batch's duration, for the rows
// the batch answered to come back, and goes with them; a lone client's
// request (its previous batch was one row too) never waits.
func TestAdaptiveLinger(t *testing.T) {
	base, l := oneModel(t, 1)
	l.tmpl.delay = 300 * time.Millisecond // every model call
	_, ts := newServer(t, serving.Config{Models: []serving.ModelConfig{{Name: "m", BasePath: base}},
		Batch: serving.BatchOptions{MaxBatchSize: 8, Threads: 1}}, l)
	send := func(wg *sync.WaitGroup) {
		wg.Go(func() {
			if code, out := do(t, "POST", ts.URL+"/v1/models/m:predict", `{"instances": [[1]]}`); code != 200 {
				t.Errorf("%d %v", code, out)
			}
		})
	}
	var first sync.WaitGroup
	start := time.Now()
	send(&first) // alone: runs at once
	waitFor(t, "the first call", func() bool { return len(l.get(filepath.Join(base, "1")).batchRows()) == 1 })
	for range 3 {
		send(&first) // queued behind it: one batch of 3
	}
	first.Wait()
	if took := time.Since(start); took > 2*time.Second {
		t.Skipf("the machine is too loaded to time this (the first batches took %v)", took)
	}
	var second sync.WaitGroup
	send(&second)
	time.Sleep(50 * time.Millisecond) // well within the 300 ms the batch of 3 took
	send(&second)
	send(&second)
	second.Wait()
	if got, want := l.get(filepath.Join(base, "1")).batchRows(), []int{1, 3, 3}; !slices.Equal(got, want) {
		t.Errorf("model calls of %v rows, want %v", got, want)
	}
}

// TestAdaptiveBatching holds the first request in the model while more
// arrive: under the adaptive policy the lone one ran at once (an hour's
// BatchTimeout would have held it under the fixed policy), and the others
// go in batches of up to MaxBatchSize. One batch gathers at a time: a full
// one goes beside the first when another model call is allowed, and the
// rest wait for the model together, not split between the idle threads;
// with one thread the full batch waits too.
func TestAdaptiveBatching(t *testing.T) {
	for _, c := range []struct {
		threads, maxBatch, sends int
		// calls is how many model calls are held once the requests are in;
		// queued, how many of them wait for the model then.
		calls, queued int
		want          []int // rows of each model call
	}{
		{threads: 1, maxBatch: 4, sends: 6, calls: 1, queued: 6, want: []int{1, 4, 2}},
		{threads: 2, maxBatch: 4, sends: 6, calls: 2, queued: 2, want: []int{1, 4, 2}},
		{threads: 3, maxBatch: 8, sends: 5, calls: 1, queued: 5, want: []int{1, 5}},
	} {
		t.Run(fmt.Sprintf("threads=%d,sends=%d", c.threads, c.sends), func(t *testing.T) {
			base, l := oneModel(t, 1)
			l.tmpl.started, l.tmpl.release = make(chan struct{}, 8), make(chan struct{})
			reg := prometheus.NewRegistry()
			_, ts := newServer(t, serving.Config{Models: []serving.ModelConfig{{Name: "m", BasePath: base}}, Registry: reg,
				Batch: serving.BatchOptions{MaxBatchSize: c.maxBatch, Threads: c.threads, BatchTimeout: time.Hour}}, l)
			released := false
			release := func() {
				if !released {
					released = true
					close(l.tmpl.release)
				}
			}
			t.Cleanup(release)
			var wg sync.WaitGroup
			send := func() {
				if code, out := do(t, "POST", ts.URL+"/v1/models/m:predict", `{"instances": [[1]]}`); code != 200 {
					t.Errorf("%d %v", code, out)
				}
			}
			wg.Go(send)
			<-l.tmpl.started // the lone request is in the model, with no other to wait for
			for range c.sends {
				wg.Go(send)
			}
			for range c.calls - 1 {
				select {
				case <-l.tmpl.started:
				case <-time.After(30 * time.Second):
					t.Fatalf("gave up waiting for %d model calls at once", c.calls)
				}
			}
			waitFor(t, fmt.Sprintf("%d requests waiting", c.queued), func() bool {
				return gauge(t, reg, "kerasgo_batch_queue_depth") == float64(c.queued)
			})
			release()
			wg.Wait()
			if got := l.get(filepath.Join(base, "1")).batchRows(); !slices.Equal(got, c.want) {
				t.Errorf("model calls of %v rows, want %v", got, c.want)
			}
		})
	}
}

// TestOverloadAnswers503 fills the batching queue while the only batching
// thread is held in a model call: the next request is refused with 503, and
// the held and queued ones are answered once the call returns.
func TestOverloadAnswers503(t *testing.T) {
	base, l := oneModel(t, 1)
	l.tmpl.started, l.tmpl.release = make(chan struct{}, 8), make(chan struct{})
	reg := prometheus.NewRegistry()
	_, ts := newServer(t, serving.Config{Models: []serving.ModelConfig{{Name: "m", BasePath: base}}, Registry: reg,
		Batch: serving.BatchOptions{MaxBatchSize: 2, BatchTimeout: time.Millisecond, MaxEnqueued: 2, Threads: 1}}, l)
	released := false
	release := func() {
		if !released {
			released = true
			close(l.tmpl.release)
		}
	}
	t.Cleanup(release) // before the server closes (cleanups run last-in first-out)

	codes := make(chan int, 3)
	send := func() {
		code, _ := do(t, "POST", ts.URL+"/v1/models/m:predict", `{"instances": [[1]]}`)
		codes <- code
	}
	var wg sync.WaitGroup
	wg.Go(send)
	<-l.tmpl.started // the batching thread is in the model call, and stays there
	wg.Go(send)
	wg.Go(send)
	waitFor(t, "two requests queued", func() bool { return gauge(t, reg, "kerasgo_batch_queue_depth") == 2 })
	if code, out := do(t, "POST", ts.URL+"/v1/models/m:predict", `{"instances": [[1]]}`); code != http.StatusServiceUnavailable {
		t.Errorf("request beyond MaxEnqueued: %d %v, want 503", code, out)
	}
	release()
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != 200 {
			t.Errorf("held or queued request answered %d, want 200", code)
		}
	}
}

// TestTimeoutAnswers504 holds the model call until the test ends: the only
// answer the server can give is the RequestTimeout's 504, with batching
// (the request stops waiting for its batch) and without (the model call's
// context ends).
func TestTimeoutAnswers504(t *testing.T) {
	for name, batch := range map[string]serving.BatchOptions{
		"batching":    {MaxBatchSize: 8, BatchTimeout: time.Millisecond},
		"no batching": {},
	} {
		t.Run(name, func(t *testing.T) {
			base, l := oneModel(t, 1)
			l.tmpl.release = make(chan struct{})
			_, ts := newServer(t, serving.Config{Models: []serving.ModelConfig{{Name: "m", BasePath: base}}, RequestTimeout: 20 * time.Millisecond,
				Batch: batch}, l)
			t.Cleanup(func() { close(l.tmpl.release) }) // before the server closes
			code, out := do(t, "POST", ts.URL+"/v1/models/m:predict", `{"instances": [[1]]}`)
			if code != http.StatusGatewayTimeout || out["error"] == nil {
				t.Fatalf("%d %v, want 504 with an error", code, out)
			}
		})
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
	var failed, sawV1, sawV2 atomic.Int64
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
				switch fmt.Sprint(out["predictions"]) {
				case "[[1 3 6]]":
					sawV1.Add(1)
				case "[[2 3 6]]":
					sawV2.Add(1)
				default:
					failed.Add(1)
					t.Errorf("during the swap: %v", out)
					return
				}
			}
		})
	}
	// Publish while the clients are running.
	waitFor(t, "version 1 answering the clients", func() bool { return sawV1.Load() >= 8 || failed.Load() > 0 })
	// A version being written: only saved_model.pb so far. It must not load.
	if err := os.MkdirAll(filepath.Join(base, "3"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "3", "saved_model.pb"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	versionDir(t, base, 2)
	waitFor(t, "20 answers from version 2", func() bool { return sawV2.Load() >= 20 || failed.Load() > 0 })
	close(stop)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d failed requests, %d answered by version 2", failed.Load(), sawV2.Load())
	}
	code, out := do(t, "GET", ts.URL+"/v1/models/m", "")
	if code != 200 || !strings.Contains(fmt.Sprint(out), "version:2") || strings.Contains(fmt.Sprint(out), "version:3") {
		t.Fatalf("status after the swap: %v", out)
	}
	v1 := l.get(filepath.Join(base, "1"))
	waitFor(t, "version 1 unloaded", v1.closed.Load)
	if l.get(filepath.Join(base, "3")) != nil {
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
	waitFor(t, "pinned version 4 answering", func() bool {
		code, out := do(t, "POST", ts.URL+"/v1/models/m/versions/4:predict", `{"instances": [[1]]}`)
		switch {
		case code == 404: // not loaded yet
			return false
		case code != 200 || fmt.Sprint(out["predictions"]) != "[[4 1 2]]":
			t.Fatalf("version 4: %d %v", code, out)
		}
		return true
	})
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
		"logging":          {json: `{"models": [{"name": "a", "base_path": "/m", "logging": {"filename_prefix": "/l/a", "sampling_rate": 0.25}}]}`},
		"logging, no rate": {json: `{"models": [{"name": "a", "base_path": "/m", "logging": {"filename_prefix": "/l/a"}}]}`, wantErr: true},
		"logging, rate 2":  {json: `{"models": [{"name": "a", "base_path": "/m", "logging": {"filename_prefix": "/l/a", "sampling_rate": 2}}]}`, wantErr: true},
		"logging, no path": {json: `{"models": [{"name": "a", "base_path": "/m", "logging": {"sampling_rate": 1}}]}`, wantErr: true},
	} {
		t.Run(name, func(t *testing.T) {
			cfgs, err := serving.ParseFileConfig([]byte(tc.json))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, wantErr %v (%+v)", err, tc.wantErr, cfgs)
			}
			if want := (serving.LoggingConfig{FilenamePrefix: "/l/a", SamplingRate: 0.25}); name == "logging" && cfgs[0].Logging != want {
				t.Errorf("logging %+v, want %+v", cfgs[0].Logging, want)
			}
		})
	}
}

// TestInflightBytesBound holds one request in a model call while it holds
// its share of MaxInflightBytes: a request that does not fit beside it is
// refused with 503, one that could never fit with 413, and once the held
// request is answered the bound is free again.
func TestInflightBytesBound(t *testing.T) {
	base, l := oneModel(t, 1)
	l.tmpl.started, l.tmpl.release = make(chan struct{}, 1), make(chan struct{})
	reg := prometheus.NewRegistry()
	const limit = 1 << 20
	_, ts := newServer(t, serving.Config{Models: []serving.ModelConfig{{Name: "m", BasePath: base}}, Registry: reg, MaxInflightBytes: limit}, l)
	released := false
	release := func() {
		if !released {
			released = true
			close(l.tmpl.release)
		}
	}
	t.Cleanup(release)
	rows := func(n int) string {
		return `{"instances": [` + strings.TrimSuffix(strings.Repeat("[1],", n), ",") + `]}`
	}
	held := rows(50000) // 200 KB: charged three times over, more than half the bound
	var wg sync.WaitGroup
	wg.Go(func() {
		if code, out := do(t, "POST", ts.URL+"/v1/models/m:predict", held); code != 200 {
			t.Errorf("held request: %d %v", code, out)
		}
	})
	<-l.tmpl.started
	if got := gauge(t, reg, "kerasgo_inflight_bytes"); got < 3*float64(len(held)) {
		t.Errorf("kerasgo_inflight_bytes %v while a %d-byte body is held, want at least 3x that", got, len(held))
	}
	tests := []struct {
		name, body string
		want       int
		wantErr    string
	}{
		{"does not fit beside the held one", held, http.StatusServiceUnavailable, "server overloaded"},
		{"could never fit", rows(100000), http.StatusRequestEntityTooLarge, "send fewer instances"},
	}
	for _, tc := range tests {
		code, out := do(t, "POST", ts.URL+"/v1/models/m:predict", tc.body)
		if msg, _ := out["error"].(string); code != tc.want || !strings.Contains(msg, tc.wantErr) {
			t.Errorf("%s: %d %v, want %d with %q", tc.name, code, out, tc.want, tc.wantErr)
		}
	}
	release()
	wg.Wait()
	if code, out := do(t, "POST", ts.URL+"/v1/models/m:predict", held); code != 200 {
		t.Errorf("after the held request: %d %v, want 200", code, out)
	}
	if got := gauge(t, reg, "kerasgo_inflight_bytes"); got != 0 {
		t.Errorf("kerasgo_inflight_bytes %v with no request in flight", got)
	}
}

// TestErrorsReachClientsStillSending writes whole requests whose bodies the
// server has no use for (an API the model lacks, an unknown model, a body
// over the limit) on a raw connection, as clients that send before they
// read do, then reads the answer: each must be the error, not a reset
// connection, and the connection stays usable.
func TestErrorsReachClientsStillSending(t *testing.T) {
	base, l := oneModel(t, 4)
	_, ts := newServer(t, serving.Config{Models: []serving.ModelConfig{{Name: "m", BasePath: base}}, MaxBodyBytes: 4 << 20}, l)
	large := `{"instances": [` + strings.TrimSuffix(strings.Repeat("[0.25, 0.5, 0.75, 1.0],", 200000), ",") + `]}` // 4.8 MB
	tests := []struct {
		name, path, body string
		want             int
	}{
		{":classify on a model without it", "/v1/models/m:classify", large[:3<<20], http.StatusBadRequest},
		{"unknown model", "/v1/models/nosuch:predict", large[:3<<20], http.StatusNotFound},
		{"body over the limit", "/v1/models/m:predict", large, http.StatusRequestEntityTooLarge},
		{"malformed path", "/v1/models/m/bad:predict", large[:3<<20], http.StatusBadRequest},
	}
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for _, tc := range tests {
		conn.SetDeadline(time.Now().Add(time.Minute))
		req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", tc.path, len(tc.body), tc.body)
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatalf("%s: sending the request: %v", tc.name, err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: reading the answer: %v", tc.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var out map[string]string
		if resp.StatusCode != tc.want || json.Unmarshal(b, &out) != nil || out["error"] == "" {
			t.Errorf("%s: %d %s, want %d with a JSON error", tc.name, resp.StatusCode, b, tc.want)
		}
	}
}

// TestLargeRequestsRunInChunks sends a request of more rows than
// MaxBatchSize: the model never sees more than MaxBatchSize rows at once,
// and the answer holds every row in order.
func TestLargeRequestsRunInChunks(t *testing.T) {
	base, l := oneModel(t, 1)
	_, ts := newServer(t, serving.Config{Models: []serving.ModelConfig{{Name: "m", BasePath: base}},
		Batch: serving.BatchOptions{MaxBatchSize: 16, BatchTimeout: time.Millisecond}}, l)
	var rows, want []string
	for i := range 150 {
		rows = append(rows, fmt.Sprintf("[%d]", i))
		want = append(want, fmt.Sprint([]any{1.0, float64(i), float64(2 * i)}))
	}
	code, out := do(t, "POST", ts.URL+"/v1/models/m:predict", `{"instances": [`+strings.Join(rows, ",")+`]}`)
	if got := fmt.Sprint(out["predictions"]); code != 200 || got != "["+strings.Join(want, " ")+"]" {
		t.Fatalf("%d %v, want rows 0..149 in order", code, got)
	}
	calls := l.get(filepath.Join(base, "1")).batchRows()
	if len(calls) != 10 || slices.Max(calls) > 16 {
		t.Errorf("model calls of %v rows, want 10 calls of at most 16", calls)
	}
}
