package serve

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/prototext"

	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/serving/tfservingpb"
)

// TF Serving's operational files, read as TF Serving reads them: text
// protos of the messages its flags name.

// maxEnqueuedRequests caps the batching queue a batching parameters file
// asks for: TF Serving counts queued batches (its own example file allows
// 1,000,000 of them), kerasgo counts requests in a channel it allocates up
// front. Past the cap requests still wait, on the memory bound
// (--max-inflight-bytes).
const maxEnqueuedRequests = 1 << 16

// ReadBatchingParameters reads TF Serving's --batching_parameters_file.
func ReadBatchingParameters(path string) (serving.BatchOptions, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return serving.BatchOptions{}, fmt.Errorf("reading batching parameters: %w", err)
	}
	opts, err := ParseBatchingParameters(data)
	if err != nil {
		return serving.BatchOptions{}, fmt.Errorf("%s: %w", path, err)
	}
	return opts, nil
}

// ParseBatchingParameters reads a BatchingParameters text proto into
// batching options with TF Serving's meaning: its fixed policy
// (serving.BatchFixed) waiting batch_timeout_micros, at most max_batch_size
// rows a batch, num_batch_threads batches at once, and room for
// max_enqueued_batches full batches of single-row requests (capped at
// 65,536 requests). A field left out takes TF Serving's default: 1,000 rows,
// no wait, 10 batches, a thread per CPU. With enable_large_batch_splitting,
// batches run at most max_execution_batch_size rows. allowed_batch_sizes is
// checked as TF Serving checks it (increasing, ending at max_batch_size) but
// batches are not padded to those sizes, and pad_variable_length_inputs
// changes nothing: kerasgo's rows all have the model's width.
func ParseBatchingParameters(data []byte) (serving.BatchOptions, error) {
	var bp tfservingpb.BatchingParameters
	if err := prototext.Unmarshal(data, &bp); err != nil {
		return serving.BatchOptions{}, fmt.Errorf("batching parameters (TF Serving's text format): %w", err)
	}
	value := func(v interface{ GetValue() int64 }, isSet bool, def int64) int64 {
		if isSet {
			return v.GetValue()
		}
		return def
	}
	maxBatch := value(bp.GetMaxBatchSize(), bp.MaxBatchSize != nil, 1000)
	timeout := value(bp.GetBatchTimeoutMicros(), bp.BatchTimeoutMicros != nil, 0)
	batches := value(bp.GetMaxEnqueuedBatches(), bp.MaxEnqueuedBatches != nil, 10)
	threads := value(bp.GetNumBatchThreads(), bp.NumBatchThreads != nil, int64(runtime.NumCPU()))
	switch {
	case maxBatch < 1:
		return serving.BatchOptions{}, fmt.Errorf("max_batch_size must be positive; was %d", maxBatch)
	case timeout < 0:
		return serving.BatchOptions{}, fmt.Errorf("batch_timeout_micros must be non-negative; was %d", timeout)
	case batches < 1:
		return serving.BatchOptions{}, fmt.Errorf("max_enqueued_batches must be positive; was %d", batches)
	case threads < 1:
		return serving.BatchOptions{}, fmt.Errorf("num_batch_threads must be positive; was %d", threads)
	}
	if sizes := bp.GetAllowedBatchSizes(); len(sizes) > 0 {
		for i, s := range sizes {
			if s < 1 || (i > 0 && s <= sizes[i-1]) {
				return serving.BatchOptions{}, fmt.Errorf("allowed_batch_sizes entries must be positive and monotonically increasing; got %v", sizes)
			}
		}
		if last := sizes[len(sizes)-1]; last != maxBatch {
			return serving.BatchOptions{}, fmt.Errorf("allowed_batch_sizes's last entry must equal max_batch_size (%d); got %v", maxBatch, sizes)
		}
	}
	rows := maxBatch
	if bp.GetEnableLargeBatchSplitting().GetValue() && bp.MaxExecutionBatchSize != nil {
		if rows = bp.GetMaxExecutionBatchSize().GetValue(); rows < 1 || rows > maxBatch {
			return serving.BatchOptions{}, fmt.Errorf("max_execution_batch_size must be between 1 and max_batch_size (%d); was %d", maxBatch, rows)
		}
	}
	return serving.BatchOptions{
		MaxBatchSize: int(rows),
		Policy:       serving.BatchFixed,
		BatchTimeout: time.Duration(timeout) * time.Microsecond,
		MaxEnqueued:  int(min(batches*maxBatch, maxEnqueuedRequests)),
		Threads:      int(threads),
	}, nil
}

// ReadMonitoringConfig reads TF Serving's --monitoring_config_file: the
// path Prometheus metrics are served on over REST, or "" when the file
// turns them off. An empty path is TF Serving's default,
// /monitoring/prometheus/metrics.
func ReadMonitoringConfig(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading monitoring config: %w", err)
	}
	var mc tfservingpb.MonitoringConfig
	if err := prototext.Unmarshal(data, &mc); err != nil {
		return "", fmt.Errorf("%s: monitoring config (TF Serving's text format): %w", path, err)
	}
	p := mc.GetPrometheusConfig()
	switch {
	case !p.GetEnable():
		return "", nil
	case p.GetPath() == "":
		return "/monitoring/prometheus/metrics", nil
	case p.GetPath()[0] != '/' || strings.ContainsAny(p.GetPath(), "{} \t\n"):
		return "", fmt.Errorf("%s: prometheus_config.path %q must start with / and hold no braces or spaces", path, p.GetPath())
	}
	return p.GetPath(), nil
}

// WatchModelConfig reads the model config file at path every interval
// (TF Serving's --model_config_file_poll_wait_seconds) and, when its models
// changed, serves exactly those (serving.Server.Reload). A file that does
// not read or parse, or a reload that fails, is logged and the models
// served stay as they are. It returns when ctx ends.
func WatchModelConfig(ctx context.Context, srv *serving.Server, path string, interval time.Duration, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The first poll reloads whatever the file says: the file may have
	// changed between the server's start and this call, and a reload of
	// unchanged models keeps their loaded versions.
	var last []byte
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		data, err := os.ReadFile(path)
		if err != nil {
			log.Error("model config poll: keeping the served models", "file", path, "error", err)
			continue
		}
		if bytes.Equal(data, last) {
			continue
		}
		models, err := ParseModelConfig(data)
		if err != nil {
			log.Error("model config poll: keeping the served models", "file", path, "error", err)
			continue
		}
		if err := srv.Reload(ctx, models); err != nil {
			log.Error("model config poll: reload failed", "file", path, "error", err)
			continue
		}
		last = data
		names := make([]string, len(models))
		for i, m := range models {
			names[i] = m.Name
		}
		slices.Sort(names)
		log.Info("model config reloaded", "file", path, "models", names)
	}
}

// ReadSSLConfig reads TF Serving's --ssl_config_file (an SSLConfig text
// proto, whose fields hold PEM text, not file names) into a TLS
// configuration for both APIs: the server's key and certificate, and with
// client_verify, client certificates required and verified against
// custom_ca. TF Serving applies the file to gRPC only; kerasgo serves REST
// with the same material.
func ReadSSLConfig(path string) (*tls.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading SSL config: %w", err)
	}
	var sc tfservingpb.SSLConfig
	if err := prototext.Unmarshal(data, &sc); err != nil {
		return nil, fmt.Errorf("%s: SSL config (TF Serving's text format): %w", path, err)
	}
	cert, err := tls.X509KeyPair([]byte(sc.GetServerCert()), []byte(sc.GetServerKey()))
	if err != nil {
		return nil, fmt.Errorf("%s: server_cert and server_key: %w", path, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if sc.GetCustomCa() != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(sc.GetCustomCa())) {
			return nil, fmt.Errorf("%s: custom_ca holds no PEM certificate", path)
		}
		cfg.ClientCAs = pool
	}
	if sc.GetClientVerify() {
		if cfg.ClientCAs == nil {
			return nil, fmt.Errorf("%s: client_verify needs custom_ca, the authority client certificates are verified against", path)
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
