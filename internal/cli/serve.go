package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/pflag"

	"github.com/kerasgo/kerasgo/serving"
	"github.com/kerasgo/kerasgo/serving/grpcapi"
	"github.com/kerasgo/kerasgo/serving/requestlog"
	"github.com/kerasgo/kerasgo/serving/serve"
	"github.com/kerasgo/kerasgo/servingmodel"
)

type serveFlags struct {
	models         []string
	modelConfig    string
	host           string
	port           int
	grpcPort       int
	grpcMaxMessage int
	maxBatch       int
	batchTimeout   batchTimeoutFlag
	maxEnqueued    int
	batchThreads   int
	poll           time.Duration
	requestTimeout time.Duration
	maxBody        int64
	maxInflight    int64
	maxHeader      int
	maxConns       int
	headerTimeout  time.Duration
	idleTimeout    time.Duration
	logJSON        bool
	reloadRoots    []string
	reloadToken    string
	batchingFile   string
	monitoringFile string
	configPoll     time.Duration
	sslFile        string
	warmup         bool
	logDir         string
	logSampling    float64
	logFileBytes   int64
	logFileAge     time.Duration
	logTotalBytes  int64
	trafficWindow  int
	fs             *pflag.FlagSet
}

func serveCommand() *Command {
	return &Command{
		Name:      "serve",
		UsageLine: "kerasgo serve (--model NAME=DIR ... | --model-config FILE) [flags]",
		Short:     "serve models over TensorFlow Serving's REST and gRPC APIs, with dynamic batching",
		Long: `Serve answers TensorFlow Serving's REST API (--rest-port, 8501) and gRPC API
(--grpc-port, 8500), so clients written for TF Serving work unchanged:

  GET  /v1/models/NAME[/versions/V|/labels/L]            status
  GET  /v1/models/NAME[/versions/V|/labels/L]/metadata   signatures
  POST /v1/models/NAME[/versions/V|/labels/L]:predict    {"instances": [...]} or {"inputs": ...}

  gRPC tensorflow.serving.PredictionService: Predict, Classify, Regress,
       MultiInference, GetModelMetadata
  gRPC tensorflow.serving.ModelService: GetModelStatus,
       HandleReloadConfigRequest (serves exactly the new model_config_list;
       off unless --allow-reload-under DIR and --reload-token-file FILE:
       PERMISSION_DENIED, UNAUTHENTICATED without the token, PERMISSION_DENIED
       for a base path outside the DIRs)
  gRPC grpc.health.v1.Health

plus /metrics and /monitoring/prometheus/metrics (Prometheus), /healthz and
/readyz. Both APIs share the models, versions, batching, limits and metrics. DIR is a SavedModel (served as version 1) or a TF Serving base path of
numbered version directories: the highest complete one is served, new ones are
picked up every --poll-interval and swapped in without failing requests, and
the old one is unloaded once its requests finish. --model-config names a file
that can also pin a set of versions and give them labels: TF Serving's own
--model_config_file (model_config_list in protobuf text), or JSON:
  {"models": [{"name": "m", "base_path": "/models/m", "versions": [1, 2],
               "labels": {"stable": 1, "canary": 2}}]}

--max-batch-size merges concurrent requests into one model call. By default
a batch goes as soon as no other batch is in the model (or once it is full),
with every request waiting then; one smaller than the batch before it waits
up to that batch's duration for the rest of its clients: a lone request runs
at once, and batches grow with the load (docs/serving.md). --batch-timeout D switches to TF Serving's fixed
policy: a batch's first request waits up to D for others. Past
--max-enqueued waiting requests the server answers 503. A request of more rows than
--max-batch-size runs as chunks of that size. SIGINT/SIGTERM stop accepting
connections, drain in-flight requests and exit 0. Binds 127.0.0.1 unless
told otherwise.

Limits, so that hostile or unlucky traffic is refused instead of growing the
process (docs/serving.md has the memory bound they give):
  --max-body-bytes      a body larger than this is answered 413
  --max-inflight-bytes  memory all requests in flight may hold together, as
                        estimated from their bodies (3x the body for models
                        that take rows or texts, ~600 bytes a JSON value for
                        the others); a request that does not fit is answered
                        503 at once, one that never fits 413
  --max-connections     connections open at once; more wait to be accepted
  --max-header-bytes    request line and headers
  --read-header-timeout a client must send its headers within this
  --request-timeout     each request's deadline (504 past it); a client must
                        send its body, and read the answer, within it plus 10s
  --idle-timeout        keep-alive connections idle longer are closed
  --max-grpc-message-bytes  largest gRPC message either way (default 128 MiB;
                        TF Serving's is 2 GiB); a gRPC call is charged 3x the
                        length its message declares before the message is
                        read (refused unread: UNAVAILABLE, or
                        RESOURCE_EXHAUSTED if it could never fit), plus its
                        decoded tensors
Request logs: --request-log-dir DIR (or logging_config in --model-config)
writes each model's requests and answers as TF Serving's PredictionLog
TFRecords, DIR/NAME-TIME.tfrecord, rotated and bounded on disk, never slowing a
request; answers carry the request's id (X-Request-Id, gRPC x-request-id). A
version whose model recorded the class mix it was validated on (kerasgo train
with validation data) has its latest --traffic-window answers compared with it:
GET /kerasgo/findings says what is wrong in kerasgo evaluate's words, and the
kerasgo_traffic_* gauges carry the numbers (docs/serving.md).

Every error is answered with its status and a JSON {"error": ...}: the rest of
the body is read and discarded first (up to 4x --max-body-bytes), so a client
still sending sees the answer, not a reset connection.`,
		Setup: func(fs *pflag.FlagSet) func(context.Context, *Env, []string) error {
			f := &serveFlags{}
			fs.StringArrayVar(&f.models, "model", nil, "NAME=DIR; repeat for several models")
			fs.StringVar(&f.modelConfig, "model-config", "", `JSON file {"models": [{"name", "base_path", "versions": [...], "labels": {...}}]}, or TF Serving's model_config_list text file`)
			fs.StringVar(&f.host, "host", "127.0.0.1", "address to listen on")
			fs.IntVar(&f.port, "rest-port", 8501, "REST port (0 picks a free one)")
			fs.IntVar(&f.grpcPort, "grpc-port", 8500, "gRPC port, TF Serving's --port (0 picks a free one, -1 turns gRPC off)")
			fs.IntVar(&f.grpcMaxMessage, "max-grpc-message-bytes", 128<<20, "largest gRPC request or response message")
			fs.IntVar(&f.maxBatch, "max-batch-size", 64, "most rows merged into one model call (1: no batching)")
			fs.Var(&f.batchTimeout, "batch-timeout", "TF Serving's fixed batching: how long a batch waits for more requests (default: adaptive, no waiting)")
			fs.IntVar(&f.maxEnqueued, "max-enqueued", 1000, "waiting requests before the server answers 503")
			fs.IntVar(&f.batchThreads, "num-batch-threads", 2, "model calls of batched rows run at once")
			fs.DurationVar(&f.poll, "poll-interval", 5*time.Second, "how often base paths are checked for new versions (0: never)")
			fs.DurationVar(&f.requestTimeout, "request-timeout", 30*time.Second, "per-request deadline (504 past it)")
			fs.Int64Var(&f.maxBody, "max-body-bytes", 16<<20, "largest request body (413 past it)")
			fs.Int64Var(&f.maxInflight, "max-inflight-bytes", 256<<20, "memory all requests in flight may hold (503 past it)")
			fs.IntVar(&f.maxConns, "max-connections", 1024, "connections open at once (more wait to be accepted)")
			fs.IntVar(&f.maxHeader, "max-header-bytes", 64<<10, "largest request line and headers (431 past it)")
			fs.DurationVar(&f.headerTimeout, "read-header-timeout", 10*time.Second, "time a client has to send its headers")
			fs.DurationVar(&f.idleTimeout, "idle-timeout", 2*time.Minute, "keep-alive connections idle longer are closed")
			fs.BoolVar(&f.logJSON, "log-json", false, "log JSON lines instead of text")
			fs.StringArrayVar(&f.reloadRoots, "allow-reload-under", nil, "allow gRPC's HandleReloadConfigRequest, for base paths under DIR only (repeat for several; needs --reload-token-file)")
			fs.StringVar(&f.reloadToken, "reload-token-file", "", `file holding the bearer token a reloading client must send ("authorization: Bearer TOKEN")`)
			fs.StringVar(&f.batchingFile, "batching-parameters-file", "", "TF Serving's batching parameters text file (BatchingParameters): its fixed batching policy, in place of the batching flags")
			fs.StringVar(&f.monitoringFile, "monitoring-config-file", "", "TF Serving's monitoring config text file (MonitoringConfig): one more path the Prometheus metrics are served on")
			fs.DurationVar(&f.configPoll, "model-config-poll", 0, "how often --model-config is read again and its models served, as TF Serving's --model_config_file_poll_wait_seconds (0: never)")
			fs.StringVar(&f.sslFile, "ssl-config-file", "", "TF Serving's SSL config text file (SSLConfig: PEM key, certificate, client CA, client_verify): TLS on gRPC, and on REST with the same material")
			fs.BoolVar(&f.warmup, "enable-model-warmup", true, "replay a version's assets.extra/tf_serving_warmup_requests (TF Serving's warmup records) before it takes traffic")
			fs.StringVar(&f.logDir, "request-log-dir", "", "log requests and responses of every model without a logging_config of its own to DIR/NAME-TIME.tfrecord (TF Serving's PredictionLog TFRecords)")
			fs.Float64Var(&f.logSampling, "request-log-sampling", 1, "share of requests --request-log-dir logs, 0 to 1")
			fs.Int64Var(&f.logFileBytes, "request-log-max-file-bytes", 64<<20, "a request log file is closed and the next begun past this size")
			fs.DurationVar(&f.logFileAge, "request-log-max-file-age", time.Hour, "a request log file is closed and the next begun past this age")
			fs.Int64Var(&f.logTotalBytes, "request-log-max-bytes", 1<<30, "each model's request log files together; the oldest are removed past it")
			fs.IntVar(&f.trafficWindow, "traffic-window", 1000, "latest answered rows of each version compared with the class mix it was validated on (GET /kerasgo/findings; 0: off)")
			f.fs = fs
			return f.run
		},
	}
}

// config returns the server's configuration and the listeners' options
// from the flags.
func (f *serveFlags) config(env *Env) (serving.Config, serve.Options, error) {
	cfg := serving.Config{
		Batch:            serving.BatchOptions{MaxBatchSize: f.maxBatch, BatchTimeout: f.batchTimeout.d, MaxEnqueued: f.maxEnqueued, Threads: f.batchThreads},
		PollInterval:     f.poll,
		RequestTimeout:   f.requestTimeout,
		MaxBodyBytes:     f.maxBody,
		MaxInflightBytes: f.maxInflight,
		Registry:         prometheus.NewRegistry(),
	}
	if len(f.models) == 0 && f.modelConfig == "" {
		return cfg, serve.Options{}, usagef("--model NAME=DIR or --model-config FILE is required")
	}
	if f.modelConfig != "" {
		var err error
		if cfg.Models, err = serve.ReadModelConfig(f.modelConfig); err != nil {
			return cfg, serve.Options{}, fmt.Errorf("--model-config: %w", err)
		}
	}
	for _, spec := range f.models {
		name, dir, ok := strings.Cut(spec, "=")
		if !ok || name == "" || dir == "" {
			return cfg, serve.Options{}, usagef("--model %q: want NAME=DIR", spec)
		}
		cfg.Models = append(cfg.Models, serving.ModelConfig{Name: name, BasePath: dir})
	}
	if f.batchTimeout.set {
		cfg.Batch.Policy = serving.BatchFixed
	}
	if err := f.requestLogging(&cfg); err != nil {
		return cfg, serve.Options{}, err
	}
	if f.batchingFile != "" {
		for _, name := range []string{"max-batch-size", "batch-timeout", "max-enqueued", "num-batch-threads"} {
			if f.fs != nil && f.fs.Changed(name) {
				return cfg, serve.Options{}, usagef("--batching-parameters-file and --%s both set how requests are batched: give one", name)
			}
		}
		var err error
		if cfg.Batch, err = serve.ReadBatchingParameters(f.batchingFile); err != nil {
			return cfg, serve.Options{}, fmt.Errorf("--batching-parameters-file: %w", err)
		}
		f.maxBatch, f.maxEnqueued, f.batchThreads = cfg.Batch.MaxBatchSize, cfg.Batch.MaxEnqueued, cfg.Batch.Threads
	}
	if f.warmup {
		cfg.Warmup = grpcapi.Warmup
	}
	if f.monitoringFile != "" {
		var err error
		if cfg.MetricsPath, err = serve.ReadMonitoringConfig(f.monitoringFile); err != nil {
			return cfg, serve.Options{}, fmt.Errorf("--monitoring-config-file: %w", err)
		}
	}
	var tlsConfig *tls.Config
	if f.sslFile != "" {
		var err error
		if tlsConfig, err = serve.ReadSSLConfig(f.sslFile); err != nil {
			return cfg, serve.Options{}, fmt.Errorf("--ssl-config-file: %w", err)
		}
	}
	if f.configPoll < 0 || (f.configPoll > 0 && f.modelConfig == "") {
		return cfg, serve.Options{}, usagef("--model-config-poll needs --model-config and a duration of 0 (never) or more")
	}
	switch {
	case f.maxBatch < 1:
		return cfg, serve.Options{}, usagef("--max-batch-size must be at least 1 (1: no batching)")
	case f.batchThreads < 1:
		return cfg, serve.Options{}, usagef("--num-batch-threads must be at least 1")
	case f.maxEnqueued < 1:
		return cfg, serve.Options{}, usagef("--max-enqueued must be at least 1")
	case f.maxBody < 1:
		return cfg, serve.Options{}, usagef("--max-body-bytes must be at least 1")
	case f.maxInflight < 1<<20:
		return cfg, serve.Options{}, usagef("--max-inflight-bytes must be at least 1 MiB")
	case f.maxConns < 1:
		return cfg, serve.Options{}, usagef("--max-connections must be at least 1")
	case f.maxHeader < 1<<10:
		return cfg, serve.Options{}, usagef("--max-header-bytes must be at least 1 KiB")
	case f.headerTimeout <= 0 || f.idleTimeout <= 0:
		return cfg, serve.Options{}, usagef("--read-header-timeout and --idle-timeout must be longer than 0")
	case f.requestTimeout <= 0:
		return cfg, serve.Options{}, usagef("--request-timeout must be longer than 0")
	case f.batchTimeout.d < 0:
		return cfg, serve.Options{}, usagef("--batch-timeout must be 0 (no waiting) or longer")
	case f.poll < 0:
		return cfg, serve.Options{}, usagef("--poll-interval must be 0 (never poll) or longer")
	case f.port < 0 || f.port > 65535:
		return cfg, serve.Options{}, usagef("--rest-port must be 0 (any free port) to 65535")
	case f.grpcPort < -1 || f.grpcPort > 65535:
		return cfg, serve.Options{}, usagef("--grpc-port must be -1 (no gRPC), 0 (any free port) or up to 65535")
	case f.grpcMaxMessage < 1<<10:
		return cfg, serve.Options{}, usagef("--max-grpc-message-bytes must be at least 1 KiB")
	}
	var h slog.Handler = slog.NewTextHandler(env.Stderr, nil)
	if f.logJSON {
		h = slog.NewJSONHandler(env.Stderr, nil)
	}
	cfg.Logger = slog.New(h)
	cfg.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if (len(f.reloadRoots) > 0) != (f.reloadToken != "") {
		return cfg, serve.Options{}, usagef("--allow-reload-under and --reload-token-file go together: reloading over gRPC needs both the directories it may load from and a token")
	}
	var reload grpcapi.ReloadPolicy
	if f.reloadToken != "" {
		token, err := os.ReadFile(f.reloadToken)
		if err != nil {
			return cfg, serve.Options{}, fmt.Errorf("--reload-token-file: %w", err)
		}
		reload = grpcapi.ReloadPolicy{Roots: f.reloadRoots, Token: strings.TrimSpace(string(token))}
		if reload.Token == "" {
			return cfg, serve.Options{}, usagef("--reload-token-file %s is empty", f.reloadToken)
		}
		if reload, err = reload.Validate(); err != nil {
			return cfg, serve.Options{}, usagef("--allow-reload-under: %v", err)
		}
	}
	opts := serve.Options{Reload: reload,
		Host: f.host, RESTPort: f.port, GRPCPort: f.grpcPort, MaxGRPCMessageBytes: f.grpcMaxMessage,
		MaxConnections: f.maxConns, MaxHeaderBytes: f.maxHeader, ReadHeaderTimeout: f.headerTimeout,
		IdleTimeout: f.idleTimeout, Logger: cfg.Logger, TLS: tlsConfig,
	}
	cfg.Logger.Info("configured", "models", len(cfg.Models), "max_batch_size", f.maxBatch, "batching", cfg.Batch.Policy.String(), "batch_timeout", cfg.Batch.BatchTimeout.String())
	return cfg, opts, nil
}

func (f *serveFlags) run(ctx context.Context, env *Env, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected arguments %q (models are given with --model NAME=DIR)", args)
	}
	cfg, opts, err := f.config(env)
	if err != nil {
		return err
	}
	srv, err := serving.New(ctx, cfg, servingmodel.Load)
	if err != nil {
		return err
	}
	defer srv.Close()
	if f.configPoll > 0 {
		watch, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { serve.WatchModelConfig(watch, srv, f.modelConfig, f.configPoll, cfg.Logger) })
		defer func() { stop(); wg.Wait() }() // before srv.Close
	}
	return serve.Run(ctx, srv, opts)
}

// requestLogging applies the --request-log flags: the bounds of every
// request log, and --request-log-dir's logging for the models that have
// none of their own.
func (f *serveFlags) requestLogging(cfg *serving.Config) error {
	switch {
	case f.logSampling < 0 || f.logSampling > 1:
		return usagef("--request-log-sampling must be 0 to 1")
	case f.logFileBytes < 1<<10 || f.logTotalBytes < f.logFileBytes:
		return usagef("--request-log-max-file-bytes must be at least 1 KiB and at most --request-log-max-bytes")
	case f.logFileAge <= 0:
		return usagef("--request-log-max-file-age must be longer than 0")
	}
	cfg.RequestLog = requestlog.Options{MaxFileBytes: f.logFileBytes, MaxFileAge: f.logFileAge, MaxTotalBytes: f.logTotalBytes}
	cfg.RequestLogDir, cfg.RequestLogSampling = f.logDir, f.logSampling
	switch {
	case f.trafficWindow < 0:
		return usagef("--traffic-window must be 0 (off) or more")
	case f.trafficWindow == 0:
		cfg.TrafficWindow = -1
	default:
		cfg.TrafficWindow = f.trafficWindow
	}
	return nil
}

// batchTimeoutFlag is --batch-timeout: a duration, and whether it was given,
// which selects TF Serving's fixed batching policy.
type batchTimeoutFlag struct {
	d   time.Duration
	set bool
}

func (b *batchTimeoutFlag) String() string {
	if !b.set {
		return ""
	}
	return b.d.String()
}

func (b *batchTimeoutFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	b.d, b.set = d, true
	return nil
}

func (b *batchTimeoutFlag) Type() string { return "duration" }
