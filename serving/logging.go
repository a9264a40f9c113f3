package serving

import (
	cryptorand "crypto/rand"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	tensorpb "github.com/galeone/tensorflow/tensorflow/go/core/framework/tensor_go_proto"

	"github.com/kerasgo/kerasgo/serving/requestlog"
	"github.com/kerasgo/kerasgo/serving/tensorproto"
	"github.com/kerasgo/kerasgo/serving/tfservingpb"
	"github.com/kerasgo/kerasgo/tensor"
)

// LoggingConfig is a model's request logging, as TF Serving's
// logging_config gives it: which share of the requests are logged, and
// where. The zero value logs nothing.
type LoggingConfig struct {
	// FilenamePrefix is where (TF Serving's
	// log_collector_config.filename_prefix): records go to files
	// PREFIX-TIME.tfrecord (package requestlog).
	FilenamePrefix string
	// SamplingRate is the share of requests logged, 0 to 1 (TF Serving's
	// sampling_config.sampling_rate).
	SamplingRate float64
}

// RequestIDHeader is the HTTP header a request's id comes in and goes back
// in; over gRPC it is the metadata key "x-request-id". The Open Inference
// Protocol's requests carry theirs in their "id" field.
const RequestIDHeader = "X-Request-Id"

// RequestID returns the id a client gave, when it is one (1 to 128
// printable ASCII characters), or a new random one.
func RequestID(given string) string {
	if len(given) > 0 && len(given) <= 128 {
		printable := true
		for i := range len(given) {
			if given[i] < 0x21 || given[i] > 0x7e {
				printable = false
				break
			}
		}
		if printable {
			return given
		}
	}
	return cryptorand.Text()
}

// modelLog is a model's request log: its sampling rate and its prefix's
// writer.
type modelLog struct {
	cfg LoggingConfig
	w   *sharedWriter
	// unencodable counts records dropped because they had no PredictionLog
	// form (a tensor of a dtype TensorProto lacks, a name not UTF-8).
	unencodable prometheus.Counter
}

// sharedWriter is a prefix's writer, shared by the servables of one model
// across a reload (the old one still answering, the new one loading), so
// that one prefix never has two writers. refs is guarded by Server.logsMu.
type sharedWriter struct {
	*requestlog.Writer
	refs int
}

// logging is a model's request logging: its own, or RequestLogDir's.
func (c Config) logging(mc ModelConfig) LoggingConfig {
	if mc.Logging.FilenamePrefix == "" && c.RequestLogDir != "" {
		return LoggingConfig{FilenamePrefix: filepath.Join(c.RequestLogDir, mc.Name), SamplingRate: c.RequestLogSampling}
	}
	return mc.Logging
}

// checkLogging refuses a set of models two of which log to one prefix, or
// a sampling rate outside 0 to 1.
func (c Config) checkLogging(models []ModelConfig) error {
	byPrefix := map[string]string{}
	for _, mc := range models {
		l := c.logging(mc)
		if l.FilenamePrefix == "" {
			continue
		}
		if l.SamplingRate < 0 || l.SamplingRate > 1 {
			return fmt.Errorf("model %q: request log sampling rate %g; want 0 to 1", mc.Name, l.SamplingRate)
		}
		if other, ok := byPrefix[l.FilenamePrefix]; ok {
			return fmt.Errorf("models %q and %q both log to %s: give each its own filename prefix", other, mc.Name, l.FilenamePrefix)
		}
		byPrefix[l.FilenamePrefix] = mc.Name
	}
	return nil
}

// openModelLog opens the request log of a model whose config asks for
// one, sharing the prefix's writer if it is open (a reload of the same
// model), and counting its records in the server's metrics.
func (srv *Server) openModelLog(model string, cfg LoggingConfig) (*modelLog, error) {
	if cfg.FilenamePrefix == "" {
		return nil, nil
	}
	srv.logsMu.Lock()
	defer srv.logsMu.Unlock()
	sw, ok := srv.logs[cfg.FilenamePrefix]
	if !ok {
		opts := srv.cfg.RequestLog
		written := srv.metrics.logRecords.WithLabelValues(model)
		bytes := srv.metrics.logBytes.WithLabelValues(model)
		dropped := map[requestlog.DropReason]prometheus.Counter{}
		for _, r := range []requestlog.DropReason{requestlog.DropQueueFull, requestlog.DropWriteFailed, requestlog.DropClosed, requestlog.DropTooLarge} {
			dropped[r] = srv.metrics.logDropped.WithLabelValues(model, r.String())
		}
		opts.Written = func(n int) { written.Inc(); bytes.Add(float64(n)) }
		opts.Dropped = func(r requestlog.DropReason) { dropped[r].Inc() }
		opts.Logger = srv.log.With("model", model)
		w, err := requestlog.Open(cfg.FilenamePrefix, opts)
		if err != nil {
			return nil, fmt.Errorf("model %q: %w", model, err)
		}
		sw = &sharedWriter{Writer: w}
		srv.logs[cfg.FilenamePrefix] = sw
	}
	sw.refs++
	return &modelLog{cfg: cfg, w: sw, unencodable: srv.metrics.logDropped.WithLabelValues(model, "unencodable")}, nil
}

// requestLog returns the model's request log, nil when it logs nothing.
func (s *servable) requestLog() *modelLog {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.log
}

// closeModelLog lets go of a servable's request log: the prefix's writer
// closes, writing what it holds, once no servable uses it.
func (srv *Server) closeModelLog(l *modelLog) {
	if l == nil {
		return
	}
	srv.logsMu.Lock()
	l.w.refs--
	last := l.w.refs == 0
	if last {
		delete(srv.logs, l.cfg.FilenamePrefix)
	}
	srv.logsMu.Unlock()
	if last {
		l.w.Close()
	}
}

// Logs reports whether the version's model logs requests: its responses
// then carry their request id (RequestIDHeader).
func (mv *ModelVersion) Logs() bool { return mv.log != nil }

// Log writes a request and its response to the model's request log, when
// its sampling rate draws this request: record builds them (a
// PredictionLog of one of TF Serving's kinds), only when drawn; a record
// it cannot build, or that does not encode, is dropped and counted. Log fills
// in its LogMetadata: the model spec with the version that answered and
// the signature, the time, the sampling rate, and id, in request_origin
// (TF Serving's LogMetadata has no field for a request id; docs/serving.md
// says why this one). It never blocks: a record the log cannot take now is
// dropped and counted.
func (mv *ModelVersion) Log(id, signature string, record func() (*tfservingpb.PredictionLog, error)) {
	l := mv.log
	if l == nil || rand.Float64() >= l.cfg.SamplingRate {
		return
	}
	rec, err := record()
	if err != nil {
		l.unencodable.Inc()
		return
	}
	rec.LogMetadata = &tfservingpb.LogMetadata{
		ModelSpec: &tfservingpb.ModelSpec{
			Name:          mv.name,
			VersionChoice: &tfservingpb.ModelSpec_Version{Version: wrapperspb.Int64(mv.v.number)},
			SignatureName: signature,
		},
		SamplingConfig: &tfservingpb.SamplingConfig{SamplingRate: l.cfg.SamplingRate},
		SavedModelTags: []string{"serve"},
		TimestampSecs:  time.Now().Unix(),
		RequestOrigin:  id,
	}
	b, err := proto.Marshal(rec)
	if err != nil {
		l.unencodable.Inc()
		return
	}
	l.w.Write(b)
}

// PredictLog is the PredictionLog of a Predict request and its answer,
// its tensors converted as TF Serving's gRPC API carries them.
func PredictLog(inputs, outputs map[string]tensor.Tensor) (*tfservingpb.PredictionLog, error) {
	req := &tfservingpb.PredictRequest{Inputs: make(map[string]*tensorpb.TensorProto, len(inputs))}
	resp := &tfservingpb.PredictResponse{Outputs: make(map[string]*tensorpb.TensorProto, len(outputs))}
	for name, t := range inputs {
		tp, err := tensorproto.ToProto(t)
		if err != nil {
			return nil, err
		}
		req.Inputs[name] = tp
	}
	for name, t := range outputs {
		tp, err := tensorproto.ToProto(t)
		if err != nil {
			return nil, err
		}
		resp.Outputs[name] = tp
	}
	return &tfservingpb.PredictionLog{LogType: &tfservingpb.PredictionLog_PredictLog{
		PredictLog: &tfservingpb.PredictLog{Request: req, Response: resp},
	}}, nil
}

// restLog is a REST request's place in its model's request log: the
// version answering it and the request's id. The zero value, for a model
// that logs nothing, logs nothing.
type restLog struct {
	mv *ModelVersion
	id string
}

// log is Log for the request, when its model logs.
func (l restLog) log(signature string, record func() (*tfservingpb.PredictionLog, error)) {
	if l.mv != nil {
		l.mv.Log(l.id, signature, record)
	}
}

// predict logs a Predict request and its answer, if sampled: inputs gives
// the request's tensors, built only then.
func (l restLog) predict(signature string, inputs func() map[string]tensor.Tensor, outputs map[string]tensor.Tensor) {
	l.log(signature, func() (*tfservingpb.PredictionLog, error) { return PredictLog(inputs(), outputs) })
}

// textTensor is texts as the string tensor a text model's signature takes.
func textTensor(texts []string) tensor.Tensor {
	data := make([][]byte, len(texts))
	for i, t := range texts {
		data[i] = []byte(t)
	}
	return tensor.Tensor{DType: tensor.String, Shape: []int64{int64(len(texts))}, Data: data}
}
