package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kerasgo/kerasgo"
	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/rowio"
	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/servingmodel"
)

// TestPromoteUnderLoad is the loop of keeping a served model fresh: a
// server on BASE under concurrent clients, train --into BASE on new rows
// publishes version 2 only because it beats version 1 on the validation
// rows, the server switches to it with no failed request, and its answers
// then equal the new model's own predictions; a worse training is not
// promoted (exit status 3) and the server keeps answering with version 2.
func TestPromoteUnderLoad(t *testing.T) {
	base := t.TempDir()
	if err := os.CopyFS(filepath.Join(base, "1"), os.DirFS(filepath.Join(testdata, "models", "fortunes"))); err != nil {
		t.Fatal(err)
	}
	x, err := rowio.ReadNPYFile(filepath.Join(testdata, "golden", "fortunes_inputs.npy"))
	if err != nil {
		t.Fatal(err)
	}
	x = x.Slice(0, 8)
	srv, err := serving.New(context.Background(), serving.Config{
		Models:       []serving.ModelConfig{{Name: "f", BasePath: base}},
		Batch:        serving.BatchOptions{MaxBatchSize: 16, BatchTimeout: time.Millisecond},
		PollInterval: 50 * time.Millisecond,
	}, servingmodel.Load)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	// Clients: every answer is kept by the time it came, failures counted.
	var requests, failures atomic.Int64
	var mu sync.Mutex
	var last [][]float64 // the newest answer
	stop := make(chan struct{})
	var clients sync.WaitGroup
	body, _ := json.Marshal(map[string]any{"instances": rows(x)})
	for range 8 {
		clients.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Post(ts.URL+"/v1/models/f:predict", "application/json", bytes.NewReader(body))
				requests.Add(1)
				if err != nil {
					failures.Add(1)
					continue
				}
				var out struct{ Predictions [][]float64 }
				err = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					failures.Add(1)
					continue
				}
				mu.Lock()
				last = out.Predictions
				mu.Unlock()
			}
		})
	}
	defer func() {
		close(stop)
		clients.Wait()
		if n := failures.Load(); n != 0 {
			t.Errorf("%d of %d requests failed", n, requests.Load())
		}
		t.Logf("%d requests, %d failed", requests.Load(), failures.Load())
	}()

	train := func(extra ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		args := append([]string{"train", "--into", base,
			"--data", filepath.Join(testdata, "features", "fortunes", "train.libsvm"),
			"--validation-data", filepath.Join(testdata, "features", "fortunes", "test.libsvm"),
			"--epochs", "1"}, extra...)
		code := Main(context.Background(), args, &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	// servedEquals waits until the clients' answers equal want.
	servedEquals := func(want dense.Matrix) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			got := last
			mu.Unlock()
			d := maxDiff(got, want)
			if d <= 1e-6 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("served answers differ from the model's own by %g after 20 s", d)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	direct := func(dir string) dense.Matrix {
		t.Helper()
		m, err := kerasgo.Open(context.Background(), dir, kerasgo.DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		p, err := m.Predict(context.Background(), x)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	servedEquals(direct(filepath.Join(base, "1")))

	code, out := train()
	if code != ExitOK || !strings.Contains(out, "promoted: "+filepath.Join(base, "2")) {
		t.Fatalf("train --into: exit %d\n%s", code, out)
	}
	v2 := direct(filepath.Join(base, "2"))
	if maxDiff(rowsOf(v2), direct(filepath.Join(base, "1"))) < 1e-4 {
		t.Fatal("version 2 predicts what version 1 does: nothing was learned")
	}
	servedEquals(v2)

	// An improvement smaller than asked for: not promoted, and the trained
	// model stays in its staging directory for a look.
	code, out = train("--min-improvement", "1")
	if code != ExitNotPromoted || !strings.Contains(out, "--min-improvement asks 1.0000") {
		t.Fatalf("--min-improvement 1: exit %d, want %d\n%s", code, ExitNotPromoted, out)
	}
	if staged, _ := filepath.Glob(filepath.Join(base, ".staging-*", "saved_model.pb")); len(staged) != 1 {
		t.Errorf("staging directories with a model: %v, want the one not promoted", staged)
	}

	// A learning rate far too high: no epoch beats version 2.
	code, out = train("--learning-rate", "0.05")
	if code != ExitNotPromoted || !strings.Contains(out, "not promoted") {
		t.Fatalf("worse training: exit %d, want %d\n%s", code, ExitNotPromoted, out)
	}
	if _, err := os.Stat(filepath.Join(base, "3")); err == nil {
		t.Fatal("the worse model was published as version 3")
	}
	time.Sleep(200 * time.Millisecond) // a few polls: nothing must change
	servedEquals(v2)
}

func rows(m dense.Matrix) [][]float32 {
	out := make([][]float32, m.Rows)
	for i := range out {
		out[i] = m.Row(i)
	}
	return out
}

func rowsOf(m dense.Matrix) [][]float64 {
	out := make([][]float64, m.Rows)
	for i := range out {
		for _, v := range m.Row(i) {
			out[i] = append(out[i], float64(v))
		}
	}
	return out
}

// maxDiff is the largest |got - want|, +Inf when the shapes differ.
func maxDiff(got [][]float64, want dense.Matrix) float64 {
	if len(got) != want.Rows {
		return math.Inf(1)
	}
	d := 0.0
	for i, row := range got {
		if len(row) != want.Cols {
			return math.Inf(1)
		}
		for j, v := range row {
			d = max(d, math.Abs(v-float64(want.At(i, j))))
		}
	}
	return d
}

// TestIntoErrors: what train --into refuses, leaving BASE as it was.
func TestIntoErrors(t *testing.T) {
	single := filepath.Join(testdata, "models", "fortunes")
	data := filepath.Join(testdata, "features", "fortunes", "train.libsvm")
	val := filepath.Join(testdata, "features", "fortunes", "test.libsvm")
	badVal := filepath.Join(t.TempDir(), "bad.libsvm")
	if err := os.WriteFile(badVal, []byte("0 1:1\n99 2:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	if err := os.CopyFS(filepath.Join(base, "1"), os.DirFS(single)); err != nil {
		t.Fatal(err)
	}
	otherConfig := filepath.Join(t.TempDir(), "models.config")
	if err := os.WriteFile(otherConfig, []byte(`model_config_list { config { name: "f" base_path: "/elsewhere" model_platform: "tensorflow" } }`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"a SavedModel, not a base path", []string{"--into", single, "--data", data, "--validation-data", val}, ExitFailure, "not a base path"},
		{"an empty directory", []string{"--into", t.TempDir(), "--data", data, "--validation-data", val}, ExitFailure, "not a TF Serving base path"},
		{"no validation data", []string{"--into", base, "--data", data}, ExitUsage, "needs validation data"},
		{"with --out", []string{"--into", base, "--data", data, "--validation-data", val, "--out", "x"}, ExitUsage, "exclude each other"},
		{"unknown metric", []string{"--into", base, "--data", data, "--validation-data", val, "--promote-if", "accuracy"}, ExitUsage, "--promote-if"},
		{"another --monitor", []string{"--into", base, "--data", data, "--validation-data", val, "--monitor", "val_macro_f1"}, ExitUsage, "drop --monitor"},
		{"a model config without BASE", []string{"--into", base, "--data", data, "--validation-data", val, "--keep", "1", "--model-config", otherConfig}, ExitUsage, "protects nothing"},
		{"a class the model does not know", []string{"--into", base, "--data", data, "--validation-data", badVal}, ExitFailure, "99"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			code := Main(context.Background(), append([]string{"train"}, tc.args...), io.Discard, &out)
			if code != tc.code || !strings.Contains(out.String(), tc.want) {
				t.Fatalf("exit %d, want %d; output:\n%s\nwant it to mention %q", code, tc.code, out.String(), tc.want)
			}
			entries, _ := os.ReadDir(base)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if got := fmt.Sprint(names); got != "[1]" && got != "[.kerasgo-promote.lock 1]" {
				t.Errorf("BASE holds %v afterwards, want only version 1", names)
			}
		})
	}
}
