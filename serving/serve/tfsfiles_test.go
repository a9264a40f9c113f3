package serve_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/serving/serve"
)

// TestBatchingParameters reads TF Serving's batching parameters files: the
// one its model server tests pass (testdata/serving/batching_config.txt,
// also the example of its serving_config.md), fields left out, and the
// files TF Serving refuses.
func TestBatchingParameters(t *testing.T) {
	tfServing, err := os.ReadFile(filepath.Join("..", "..", "testdata", "serving", "batching_config.txt"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, text string
		want       serving.BatchOptions
		wantErr    string
	}{
		{"TF Serving's test file", string(tfServing),
			serving.BatchOptions{MaxBatchSize: 128, Policy: serving.BatchFixed, MaxEnqueued: 1 << 16, Threads: 8}, ""},
		{"defaults", "",
			serving.BatchOptions{MaxBatchSize: 1000, Policy: serving.BatchFixed, MaxEnqueued: 10000, Threads: runtime.NumCPU()}, ""},
		{"a timeout, allowed sizes", "max_batch_size { value: 32 } batch_timeout_micros { value: 2500 } allowed_batch_sizes: 8 allowed_batch_sizes: 32 pad_variable_length_inputs: true",
			serving.BatchOptions{MaxBatchSize: 32, Policy: serving.BatchFixed, BatchTimeout: 2500 * time.Microsecond, MaxEnqueued: 320, Threads: runtime.NumCPU()}, ""},
		{"large batch splitting", "max_batch_size { value: 256 } enable_large_batch_splitting { value: true } max_execution_batch_size { value: 64 } num_batch_threads { value: 2 } max_enqueued_batches { value: 4 }",
			serving.BatchOptions{MaxBatchSize: 64, Policy: serving.BatchFixed, MaxEnqueued: 1024, Threads: 2}, ""},
		{"allowed sizes not ending at the maximum", "max_batch_size { value: 32 } allowed_batch_sizes: 8 allowed_batch_sizes: 16", serving.BatchOptions{}, "last entry must equal max_batch_size (32)"},
		{"allowed sizes not increasing", "max_batch_size { value: 8 } allowed_batch_sizes: 8 allowed_batch_sizes: 8", serving.BatchOptions{}, "monotonically increasing"},
		{"no threads", "num_batch_threads { value: 0 }", serving.BatchOptions{}, "num_batch_threads must be positive"},
		{"an unknown field", "max_batch_size: 3", serving.BatchOptions{}, "text format"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := serve.ParseBatchingParameters([]byte(c.text))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %+v (%v), want %+v", got, err, c.want)
			}
		})
	}
}

// TestMonitoringConfig reads TF Serving's monitoring config files: its
// model server tests' (testdata/serving/monitoring_config.txt) and others.
func TestMonitoringConfig(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, file, text string
		want, wantErr    string
	}{
		{"TF Serving's test file", filepath.Join("..", "..", "testdata", "serving", "monitoring_config.txt"), "", "/monitoring/prometheus/metrics", ""},
		{"its own path", "", `prometheus_config { enable: true path: "/metrics/tfs" }`, "/metrics/tfs", ""},
		{"enabled, no path", "", `prometheus_config { enable: true }`, "/monitoring/prometheus/metrics", ""},
		{"disabled", "", `prometheus_config { enable: false path: "/x" }`, "", ""},
		{"a relative path", "", `prometheus_config { enable: true path: "metrics" }`, "", "must start with /"},
		{"not a text proto", "", `{"enable": true}`, "", "text format"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := c.file
			if file == "" {
				file = filepath.Join(dir, strings.Repeat("m", i+1)+".txt")
				if err := os.WriteFile(file, []byte(c.text), 0o666); err != nil {
					t.Fatal(err)
				}
			}
			got, err := serve.ReadMonitoringConfig(file)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), file) {
					t.Fatalf("error %v, want one naming %s and containing %q", err, file, c.wantErr)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %q (%v), want %q", got, err, c.want)
			}
		})
	}
}

// TestWatchModelConfig rewrites a model config file while it is watched:
// the models it lists are served, and a file that does not parse leaves
// them as they were.
func TestWatchModelConfig(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a", "b"} {
		for _, f := range []string{"1/saved_model.pb", "1/variables/variables.index"} {
			p := filepath.Join(dir, name, f)
			if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, nil, 0o666); err != nil {
				t.Fatal(err)
			}
		}
	}
	config := filepath.Join(dir, "models.config")
	write := func(text string) {
		// Write and rename, so the watcher never reads half a file.
		tmp := config + ".tmp"
		if err := os.WriteFile(tmp, []byte(text), 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, config); err != nil {
			t.Fatal(err)
		}
	}
	listing := func(name string) string {
		return `model_config_list { config { name: "` + name + `" base_path: "` + filepath.Join(dir, name) + `" } }`
	}
	write(listing("a"))
	models, err := serve.ReadModelConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := serving.New(ctx, serving.Config{Models: models}, func(context.Context, string) (serving.Model, error) { return &holding{}, nil })
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		serve.WatchModelConfig(ctx, srv, config, 10*time.Millisecond, slog.New(slog.NewTextHandler(t.Output(), nil)))
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	served := func(name string) bool {
		mv, err := srv.Acquire(name, 0, "")
		if err != nil {
			return false
		}
		mv.Release()
		return true
	}
	wait := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting: %s", what)
			}
		}
	}
	write(listing("b"))
	wait("b served and a not", func() bool { return served("b") && !served("a") })
	write("model_config_list { config { name: ") // does not parse
	time.Sleep(50 * time.Millisecond)            // five polls
	if !served("b") {
		t.Fatal("a file that does not parse changed the served models")
	}
	write(listing("a"))
	wait("a served again", func() bool { return served("a") && !served("b") })
}

// TestModelConfigLogging reads TF Serving's logging_config from a
// model_config_list file: what kerasgo's TFRecord collector takes, and a
// clear refusal of what it does not.
func TestModelConfigLogging(t *testing.T) {
	for _, c := range []struct {
		name, logging string
		want          serving.LoggingConfig
		wantErr       string
	}{
		{"collector and rate", `log_collector_config { filename_prefix: "/logs/m" } sampling_config { sampling_rate: 0.5 }`, serving.LoggingConfig{FilenamePrefix: "/logs/m", SamplingRate: 0.5}, ""},
		{"tfrecord type, no rate", `log_collector_config { type: "tfrecord" filename_prefix: "/logs/m" }`, serving.LoggingConfig{FilenamePrefix: "/logs/m"}, ""},
		{"another collector", `log_collector_config { type: "bigquery" filename_prefix: "/logs/m" }`, serving.LoggingConfig{}, `type "bigquery" is not a collector kerasgo has`},
		{"no prefix", `sampling_config { sampling_rate: 0.5 }`, serving.LoggingConfig{}, "needs a filename_prefix"},
		{"rate past 1", `log_collector_config { filename_prefix: "/logs/m" } sampling_config { sampling_rate: 1.5 }`, serving.LoggingConfig{}, "sampling_rate 1.5"},
		{"attributes", `log_collector_config { filename_prefix: "/logs/m" } sampling_config { sampling_rate: 1 attributes: 1 }`, serving.LoggingConfig{}, "not supported"},
	} {
		t.Run(c.name, func(t *testing.T) {
			config := filepath.Join(t.TempDir(), "models.config")
			text := `model_config_list { config { name: "m" base_path: "/models/m" logging_config { ` + c.logging + ` } } }`
			if err := os.WriteFile(config, []byte(text), 0o666); err != nil {
				t.Fatal(err)
			}
			models, err := serve.ReadModelConfig(config)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want one saying %q", err, c.wantErr)
				}
				return
			}
			if err != nil || len(models) != 1 || models[0].Logging != c.want {
				t.Fatalf("%+v, %v; want logging %+v", models, err, c.want)
			}
		})
	}
}
