package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kerasgo/kerasgo/convert"
	"github.com/kerasgo/kerasgo/serving"
)

// TestServeMatchesKeras serves the real fortunes model with batching on and
// checks 64 concurrent single-row requests against Keras' golden outputs.
func TestServeMatchesKeras(t *testing.T) {
	x, err := convert.ReadNPYFile(filepath.Join(testdata, "golden", "fortunes_inputs.npy"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := convert.ReadNPYFile(filepath.Join(testdata, "golden", "fortunes_probabilities.npy"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := serving.New(context.Background(), serving.Config{
		Models: []serving.ModelConfig{{Name: "fortunes", BasePath: filepath.Join(testdata, "models", "fortunes")}},
		Batch:  serving.BatchOptions{MaxBatchSize: 16, BatchTimeout: 2 * time.Millisecond},
	}, loadServed)
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

// syncBuffer is a bytes.Buffer safe for the server's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeGracefulShutdown runs `kerasgo serve`, sends a request, and
// stops it as SIGTERM does: it drains and returns exit 0.
func TestServeGracefulShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &syncBuffer{}, Stderr: &stderr, Getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, env, []string{"serve", "--model", "m=" + filepath.Join(testdata, "models", "fortunes"), "--rest-port", fmt.Sprint(port)})
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("server never became ready: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	body := `{"instances": [[` + strings.TrimSuffix(strings.Repeat("0,", 256), ",") + `]]}`
	resp, err := http.Post(base+"/v1/models/m:predict", "application/json", strings.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("predict: %v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop")
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
	for name, tc := range map[string]struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		"no model":        {args: []string{"serve"}, wantCode: ExitUsage, wantErr: "--model-config FILE is required"},
		"bad model flag":  {args: []string{"serve", "--model", "nodir"}, wantCode: ExitUsage, wantErr: "want NAME=DIR"},
		"bad config file": {args: []string{"serve", "--model-config", bad}, wantCode: ExitFailure, wantErr: "needs a name and a base_path"},
		"missing model":   {args: []string{"serve", "--model", "m=" + filepath.Join(dir, "nope")}, wantCode: ExitFailure, wantErr: "listing versions"},
	} {
		t.Run(name, func(t *testing.T) {
			code, _, errOut := runCLI(t, "", tc.args...)
			if code != tc.wantCode || !strings.Contains(errOut, tc.wantErr) {
				t.Fatalf("exit %d, %q", code, errOut)
			}
		})
	}
}
