package serving

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fastjson"

	"github.com/kerasgo/kerasgo/serving/requestlog"
)

// Config configures a Server.
type Config struct {
	Models []ModelConfig
	Batch  BatchOptions
	// PollInterval is how often base paths are checked for new versions;
	// 0 disables polling.
	PollInterval time.Duration
	// RequestTimeout bounds each predict request (504 past it). Default 30 s.
	RequestTimeout time.Duration
	// MaxBodyBytes bounds request bodies (413 past it). Default 16 MiB.
	MaxBodyBytes int64
	// MaxInflightBytes bounds the memory all requests in flight hold
	// together, as estimated from their bodies (docs/serving.md gives the estimate); a
	// request that does not fit is answered 503 at once. Default 256 MiB.
	MaxInflightBytes int64
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Registry receives the Prometheus metrics and is exposed at /metrics
	// and /monitoring/prometheus/metrics; nil makes a private one.
	Registry *prometheus.Registry
	// MetricsPath is one more path the metrics are served on, as TF
	// Serving's monitoring config names it (serve.ReadMonitoringConfig).
	MetricsPath string
	// RequestLog bounds the files, disk and memory of every model's request
	// log (ModelConfig.Logging says which models log, and where).
	RequestLog requestlog.Options
	// RequestLogDir, if set, logs the requests of every model without a
	// ModelConfig.Logging of its own, as DIR/NAME-TIME.tfrecord, sampled at
	// RequestLogSampling (0 to 1). It applies to models a Reload adds too.
	RequestLogDir      string
	RequestLogSampling float64
	// TrafficWindow is how many of a version's latest answered rows are
	// compared with the class mix it was validated on (GET
	// /kerasgo/findings, the kerasgo_traffic_* gauges), for versions whose
	// model recorded one (evaluation.ClassMix). Default 1,000; negative
	// turns it off.
	TrafficWindow int
	// Warmup, if set, runs on each newly loaded version, from its
	// directory, before the version takes requests (grpcapi.Warmup replays
	// TF Serving's warmup records); it returns how many requests it ran. A
	// failure fails the version's load.
	Warmup func(ctx context.Context, mv *ModelVersion, dir string) (int, error)
}

// Server serves models over TF Serving's REST API. It is safe for
// concurrent use.
type Server struct {
	cfg    Config
	loader Loader
	log    *slog.Logger
	// modelsMu guards the models map, which Reload replaces; refreshing
	// serializes the poller's and Reload's loading.
	modelsMu   sync.RWMutex
	models     map[string]*servable
	refreshing sync.Mutex
	metrics    *serverMetrics
	cancel     context.CancelFunc
	polling    sync.WaitGroup
	unloading  sync.WaitGroup
	parsers    fastjson.ParserPool
	admission  *admission
	// logsMu guards logs, the open request logs by filename prefix.
	logsMu sync.Mutex
	logs   map[string]*sharedWriter
}

// New loads the latest version of every configured model and, with a
// PollInterval, starts watching the base paths for new ones.
func New(ctx context.Context, cfg Config, load Loader) (*Server, error) {
	if len(cfg.Models) == 0 {
		return nil, errors.New("serving: no models configured")
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 16 << 20
	}
	if cfg.MaxInflightBytes == 0 {
		cfg.MaxInflightBytes = 256 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.TrafficWindow == 0 {
		cfg.TrafficWindow = 1000
	}
	m, err := newServerMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	if err := cfg.checkLogging(cfg.Models); err != nil {
		return nil, fmt.Errorf("serving: %w", err)
	}
	srv := &Server{cfg: cfg, loader: load, log: cfg.Logger, models: map[string]*servable{}, metrics: m,
		admission: &admission{limit: cfg.MaxInflightBytes, gauge: m.inflightBytes}, logs: map[string]*sharedWriter{}}
	if err := cfg.Registry.Register(newTrafficCollector(srv)); err != nil {
		return nil, fmt.Errorf("serving: registering metrics: %w", err)
	}
	for _, mc := range cfg.Models {
		if mc.Name == "" || mc.BasePath == "" {
			srv.Close()
			return nil, fmt.Errorf("serving: model %q needs a name and a base path", mc.Name)
		}
		if _, dup := srv.models[mc.Name]; dup {
			srv.Close()
			return nil, fmt.Errorf("serving: model %q configured twice", mc.Name)
		}
		s, err := srv.newServable(mc)
		if err != nil {
			srv.Close()
			return nil, fmt.Errorf("serving: %w", err)
		}
		srv.models[mc.Name] = s
		if _, err := srv.refresh(ctx, s, true); err != nil {
			srv.Close()
			return nil, fmt.Errorf("serving: %w", err)
		}
	}
	pollCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	srv.cancel = cancel
	if cfg.PollInterval > 0 {
		srv.polling.Go(func() { srv.poll(pollCtx, cfg.PollInterval) })
	}
	return srv, nil
}

// Close stops polling and unloads every model once its requests finish.
func (srv *Server) Close() error {
	if srv.cancel != nil {
		srv.cancel()
	}
	srv.polling.Wait()
	for _, s := range srv.snapshot() {
		srv.drop(s)
	}
	srv.unloading.Wait()
	return nil
}

type serverMetrics struct {
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	batchSize  *prometheus.HistogramVec
	queueDepth *prometheus.GaugeVec
	// inflightBytes is the memory requests in flight have reserved.
	inflightBytes prometheus.Gauge
	// warmupRecords and warmupSeconds describe each version's warmup.
	warmupRecords *prometheus.GaugeVec
	warmupSeconds *prometheus.GaugeVec
	// logRecords, logBytes and logDropped count each model's request log.
	logRecords *prometheus.CounterVec
	logBytes   *prometheus.CounterVec
	logDropped *prometheus.CounterVec
}

func newServerMetrics(reg prometheus.Registerer) (*serverMetrics, error) {
	m := &serverMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kerasgo_requests_total", Help: "Requests by model, version, API (REST: predict; gRPC: grpc_Predict) and status (HTTP or gRPC code).",
		}, []string{"model", "version", "api", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kerasgo_request_duration_seconds", Help: "Request latency by model and API.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"model", "api"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kerasgo_batch_rows", Help: "Rows per model call after dynamic batching.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}, []string{"model"}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kerasgo_batch_queue_depth", Help: "Requests waiting for the model: queued, or in a batch that has not gone to it yet.",
		}, []string{"model"}),
		inflightBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kerasgo_inflight_bytes", Help: "Memory reserved by requests in flight (bounded by --max-inflight-bytes).",
		}),
		warmupRecords: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kerasgo_warmup_records", Help: "Warmup requests a version ran before it took traffic (TF Serving's assets.extra/tf_serving_warmup_requests).",
		}, []string{"model", "version"}),
		warmupSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kerasgo_warmup_seconds", Help: "How long a version's warmup took.",
		}, []string{"model", "version"}),
		logRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kerasgo_request_log_records_total", Help: "Requests written to the model's request log (PredictionLog TFRecords).",
		}, []string{"model"}),
		logBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kerasgo_request_log_bytes_total", Help: "Bytes of PredictionLog records written to the model's request log.",
		}, []string{"model"}),
		logDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kerasgo_request_log_dropped_total", Help: "Sampled requests not logged, by reason: queue_full (the disk is slow), write_failed (full or gone), too_large (past --request-log-max-file-bytes alone), closed, unencodable.",
		}, []string{"model", "reason"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.batchSize, m.queueDepth, m.inflightBytes, m.warmupRecords, m.warmupSeconds, m.logRecords, m.logBytes, m.logDropped} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("serving: registering metrics: %w", err)
		}
	}
	return m, nil
}
