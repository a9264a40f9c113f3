package serving

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fastjson"

	"github.com/kerasgo/kerasgo/dense"
	"github.com/kerasgo/kerasgo/errkind"
	"github.com/kerasgo/kerasgo/tensor"
)

// Handler returns the HTTP API:
//
//	GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            version status
//	GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata   signatures
//	POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict    predictions
//	GET  /metrics, /monitoring/prometheus/metrics, MetricsPath   Prometheus
//	GET  /healthz, /readyz                                       liveness, readiness
//	/v2/...                                                      the Open Inference Protocol (v2.go)
//
// It is an ordinary http.Handler, so a Go service can mount it in its own mux.
func (srv *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	metrics := promhttp.HandlerFor(srv.cfg.Registry, promhttp.HandlerOpts{})
	mux.Handle("GET /metrics", metrics)
	mux.Handle("GET /monitoring/prometheus/metrics", metrics)
	if p := srv.cfg.MetricsPath; p != "" && p != "/metrics" && p != "/monitoring/prometheus/metrics" {
		mux.Handle("GET "+p, metrics)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if name, ready := srv.Ready(); !ready {
			http.Error(w, fmt.Sprintf("model %q has no version loaded", name), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	// The standard mux cannot match TF Serving's "{name}:predict" (a wildcard
	// fills a whole segment), so /v1/models/ is routed here by hand.
	mux.HandleFunc("/v1/", srv.serveModels)
	// What the versions' traffic shows against their validation rows
	// (traffic.go).
	mux.HandleFunc("GET /kerasgo/findings", srv.serveFindings)
	// The Open Inference Protocol (v2.go).
	mux.HandleFunc("/v2", srv.serveV2)
	mux.HandleFunc("/v2/", srv.serveV2)
	return mux
}

func badRequest(format string, args ...any) error {
	return errkind.New(errkind.InvalidInput, format, args...)
}

// statusOf is the HTTP status of an error: its kind's (errkind.Kind.HTTPStatus).
func statusOf(err error) int { return errkind.Of(err).HTTPStatus() }

// route is a parsed /v1/models/... path.
type route struct {
	name    string
	version int64
	label   string
	tail    string // "", "metadata", or the verb after ':' (predict, classify, regress)
}

func parseRoute(path string) (route, error) {
	var r route
	if path == "/v1/models" || path == "/v1/models/" {
		return r, badRequest("Missing model name in request.")
	}
	rest, ok := strings.CutPrefix(path, "/v1/models/")
	if !ok {
		return r, errMalformed
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		rest, r.tail = rest[:i], rest[i+1:]
	} else if strings.HasSuffix(rest, "/metadata") {
		rest, r.tail = strings.TrimSuffix(rest, "/metadata"), "metadata"
	}
	parts := strings.Split(rest, "/")
	r.name = parts[0]
	switch {
	case r.name == "":
		return r, badRequest("Missing model name in request.")
	case len(parts) == 1:
	case len(parts) == 3 && parts[1] == "versions" && allDigits(parts[2]):
		v, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil {
			return r, badRequest("Failed to convert version: %s to numeric.", parts[2])
		}
		r.version = v
	case len(parts) == 3 && parts[1] == "labels" && parts[2] != "":
		r.label = parts[2]
	default:
		return r, errMalformed
	}
	switch r.tail {
	case "", "metadata", "predict", "classify", "regress":
	default:
		return r, errMalformed
	}
	return r, nil
}

// errMalformed is a /v1/ path or method TF Serving does not route: it answers
// 400 "Malformed request: METHOD PATH".
var errMalformed = errors.New("malformed request")

func (srv *Server) serveModels(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	r, err := parseRoute(req.URL.Path)
	api := "status"
	if r.tail != "" {
		api = r.tail
	}
	versionLabel := "unknown"
	res := srv.admission.reservation()
	defer func() {
		res.release()
		code := http.StatusOK
		if errors.Is(err, errMalformed) {
			err = badRequest("Malformed request: %s %s", req.Method, req.URL.Path)
		}
		if err != nil {
			code = statusOf(err)
			srv.drain(w, req)
			writeJSON(w, code, map[string]string{"error": err.Error()})
		}
		srv.metrics.requests.WithLabelValues(r.name, versionLabel, api, strconv.Itoa(code)).Inc()
		srv.metrics.latency.WithLabelValues(r.name, api).Observe(time.Since(start).Seconds())
	}()
	if err != nil {
		return
	}
	if err = res.grow(requestOverhead); err != nil {
		return
	}
	s, err := srv.servable(r.name, r.version)
	if err != nil {
		return
	}
	switch {
	case r.tail == "" && req.Method == http.MethodGet:
		err = srv.status(w, s, r)
		return
	case r.tail == "" || (r.tail == "metadata" && req.Method != http.MethodGet):
		err = errMalformed
		return
	}
	v, release, aerr := s.acquire(r.version, r.label)
	if aerr != nil {
		err = aerr
		return
	}
	defer release()
	versionLabel = strconv.FormatInt(v.number, 10)
	var lg restLog
	if l := s.requestLog(); l != nil {
		lg = restLog{mv: &ModelVersion{name: r.name, v: v, release: func() {}, log: l}, id: RequestID(req.Header.Get(RequestIDHeader))}
		w.Header().Set(RequestIDHeader, lg.id)
	}
	switch r.tail {
	case "metadata":
		writeJSON(w, http.StatusOK, map[string]any{
			"model_spec": map[string]string{"name": r.name, "signature_name": "", "version": versionLabel},
			"metadata":   map[string]any{"signature_def": SignatureDefMap(v.spec.Signatures)},
		})
	case "predict":
		if req.Method != http.MethodPost {
			err = errMalformed
			return
		}
		err = srv.predict(w, req, v, res, lg)
	case "classify", "regress":
		if req.Method != http.MethodPost {
			err = errMalformed
			return
		}
		ctx, cancel := context.WithTimeout(req.Context(), srv.cfg.RequestTimeout)
		defer cancel()
		err = srv.classifyOrRegress(ctx, w, req, v, r.tail, res, lg)
	default:
		err = errkind.New(errkind.NotFound, "unknown method %q", r.tail)
	}
}

// status answers TF Serving's GetModelStatus.
func (srv *Server) status(w http.ResponseWriter, s *servable, r route) error {
	type st struct {
		Version string `json:"version"`
		State   string `json:"state"`
		Status  struct {
			ErrorCode    string `json:"error_code"`
			ErrorMessage string `json:"error_message"`
		} `json:"status"`
	}
	var out []st
	if r.version != 0 || r.label != "" {
		v, release, err := s.acquire(r.version, r.label)
		if err != nil {
			return err
		}
		release()
		out = append(out, st{Version: strconv.FormatInt(v.number, 10), State: "AVAILABLE"})
	} else {
		s.mu.RLock()
		for n := range s.versions {
			out = append(out, st{Version: strconv.FormatInt(n, 10), State: "AVAILABLE"})
		}
		s.mu.RUnlock()
	}
	for i := range out {
		out[i].Status.ErrorCode = "OK"
	}
	writeJSON(w, http.StatusOK, map[string]any{"model_version_status": out})
	return nil
}

// predict answers :predict. Models that take rows of numbers or raw texts
// (exporter models, text models, InputMatrix models, Models that are not
// TensorModels) have their bodies streamed into rows; the others, requests
// naming another signature, and an InputMatrix model's requests that are
// not exactly its declared rows or that hold rows the model refuses, are
// read as TF Serving's tensors.
func (srv *Server) predict(w http.ResponseWriter, req *http.Request, v *version, res *reservation, lg restLog) error {
	tm, isTensorModel := v.model.(TensorModel)
	if isTensorModel && !v.spec.Input.rows() && v.spec.Input != InputText {
		body, err := srv.readBody(req, res, 1)
		if err != nil {
			return err
		}
		return srv.predictTree(w, req, v, tm, body, res, lg)
	}
	body, err := srv.readBody(req, res, rowsPathFactor)
	if err != nil {
		return err
	}
	rb, err := decodeRowBody(body, v.spec)
	matrix := isTensorModel && v.spec.Input == InputMatrix
	if matrix && (err != nil || rb.err != nil) {
		return srv.predictTree(w, req, v, tm, body, res, lg) // not the declared rows: TF Serving's rules
	}
	if err != nil {
		return err
	}
	if rb.signature != "" && rb.signature != v.spec.Signature {
		if !isTensorModel {
			return badRequest("Serving signature name: %q not found in signature def", rb.signature)
		}
		return srv.predictTree(w, req, v, tm, body, res, lg)
	}
	if rb.err != nil {
		return rb.err
	}
	rows := rb.x.Rows + len(rb.texts)
	if err := res.grow(int64(rows) * int64(v.spec.outputWidth()) * outputBytesPerValue); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(req.Context(), srv.cfg.RequestTimeout)
	defer cancel()
	var y dense.Matrix
	if len(rb.texts) > 0 {
		text, ok := v.model.(TextModel)
		if !ok {
			return badRequest("model input %q takes numbers, not texts", v.spec.InputKey)
		}
		y, err = v.predictText(ctx, text, rb.texts)
	} else {
		y, err = v.batcher.Predict(ctx, rb.x)
		if matrix && errkind.Of(err) == errkind.InvalidInput {
			// Rows the model refuses (non-finite values): TF Serving's
			// path passes them on to it.
			return srv.predictTree(w, req, v, tm, body, res, lg)
		}
	}
	if err != nil {
		return err // statusOf: 400 for ErrInvalidInput, 500 for a runtime failure
	}
	t := tensor.Tensor{DType: tensor.Float32, Shape: []int64{int64(y.Rows), int64(y.Cols)}, Data: y.Data}
	if v.spec.ScalarOutput && y.Cols == 1 {
		t.Shape = t.Shape[:1]
	}
	outputs := map[string]tensor.Tensor{v.spec.OutputKey: t}
	out, err := encodeTensors(nil, outputs, rb.columnar)
	if err != nil {
		return err
	}
	lg.predict(v.spec.Signature, func() map[string]tensor.Tensor {
		in := tensor.Tensor{DType: tensor.Float32, Shape: []int64{int64(rb.x.Rows), int64(rb.x.Cols)}, Data: rb.x.Data}
		if len(rb.texts) > 0 {
			in = textTensor(rb.texts)
		}
		return map[string]tensor.Tensor{v.spec.InputKey: in}
	}, outputs)
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(out)
	return err
}

// predictTree answers :predict by TF Serving's tensor rules, from the
// body's parse tree.
func (srv *Server) predictTree(w http.ResponseWriter, req *http.Request, v *version, tm TensorModel, body []byte, res *reservation, lg restLog) error {
	doc, done, err := srv.parseJSON(body, res)
	if err != nil {
		return err
	}
	defer done()
	sigName := v.spec.Signature
	if name := doc.Get("signature_name"); name != nil {
		sig, err := name.StringBytes()
		if err != nil {
			return badRequest("'signature_name' key must be a string value.")
		}
		if len(sig) > 0 {
			sigName = string(sig)
		}
	}
	instances, inputs := doc.Get("instances"), doc.Get("inputs")
	switch {
	case instances != nil && inputs != nil:
		return badRequest("Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist ")
	case instances == nil && inputs == nil:
		return badRequest("Missing 'inputs' or 'instances' key")
	}
	columnar := inputs != nil
	raw := instances
	if columnar {
		raw = inputs
	}
	ctx, cancel := context.WithTimeout(req.Context(), srv.cfg.RequestTimeout)
	defer cancel()
	return srv.predictTensors(ctx, w, tm, v, sigName, raw, columnar, lg)
}

// readBody reads a request body of at most MaxBodyBytes (413 past it),
// first reserving factor times its length: all of it at once when the
// length is declared, as it arrives when it is not.
func (srv *Server) readBody(req *http.Request, res *reservation, factor int64) ([]byte, error) {
	limit := srv.cfg.MaxBodyBytes
	tooLarge := errkind.New(errkind.TooLarge, "the request body is larger than %d bytes (--max-body-bytes)", limit)
	if n := req.ContentLength; n >= 0 {
		if n > limit {
			return nil, tooLarge
		}
		if err := res.grow(n * factor); err != nil {
			return nil, err
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(req.Body, body); err != nil {
			return nil, badRequest("reading the request body: %v", err)
		}
		return body, nil
	}
	var body []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := req.Body.Read(buf)
		if n > 0 {
			if int64(len(body)+n) > limit {
				return nil, tooLarge
			}
			if err := res.grow(int64(n) * factor); err != nil {
				return nil, err
			}
			body = append(body, buf[:n]...)
		}
		switch {
		case err == io.EOF:
			return body, nil
		case err != nil:
			return nil, badRequest("reading the request body: %v", err)
		}
	}
}

// drainFactor times MaxBodyBytes is the most of a body read and discarded
// before an error is answered.
const drainFactor = 4

// drain reads and discards the rest of a request body, so that a client
// still sending it gets the error instead of a reset connection. Past
// drainFactor × MaxBodyBytes it gives up and closes the connection.
func (srv *Server) drain(w http.ResponseWriter, req *http.Request) {
	limit := drainFactor * srv.cfg.MaxBodyBytes
	if n, err := io.CopyN(io.Discard, req.Body, limit); err == nil && n == limit {
		w.Header().Set("Connection", "close")
	}
}

// readJSON reads a request body and parses it as a JSON object (see
// parseJSON).
func (srv *Server) readJSON(req *http.Request, res *reservation) (doc *fastjson.Value, done func(), err error) {
	body, err := srv.readBody(req, res, 1)
	if err != nil {
		return nil, nil, err
	}
	return srv.parseJSON(body, res)
}

// pooledParserBytes is the largest body whose parser goes back to the pool:
// a parser keeps the tree of its last body, so one that parsed a large body
// would hold that memory outside any reservation.
const pooledParserBytes = 64 << 10

// parseJSON parses a body as a JSON object, with TF Serving's errors, once
// the reservation covers its tree. The value lives in a parser: call done
// once it is no longer read.
// Request bodies are mostly long lists of numbers, which encoding/json
// decodes at ~11 MB/s; fastjson parses them several times faster.
func (srv *Server) parseJSON(body []byte, res *reservation) (doc *fastjson.Value, done func(), err error) {
	values := bytes.Count(body, []byte{','}) + bytes.Count(body, []byte{'['}) + bytes.Count(body, []byte{'{'}) + 1
	// fastjson copies the body, and keeps treeBytesPerValue a value.
	if err := res.grow(int64(len(body)) + int64(values)*treeBytesPerValue); err != nil {
		return nil, nil, err
	}
	p := srv.parsers.Get()
	done = func() {
		if len(body) <= pooledParserBytes {
			srv.parsers.Put(p)
		}
	}
	if doc, err = parseBody(p, body); err != nil {
		done()
		return nil, nil, err
	}
	return doc, done, nil
}

// parseBody parses a request body as a JSON object, with TF Serving's errors.
func parseBody(p *fastjson.Parser, body []byte) (*fastjson.Value, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, badRequest("JSON Parse error: The document is empty")
	}
	doc, err := p.ParseBytes(body)
	if err != nil {
		// TF Serving's parser says "Invalid value." with an offset; fastjson
		// says where in its own words.
		return nil, badRequest("JSON Parse error: Invalid value: %v", err)
	}
	if doc.Type() != fastjson.TypeObject {
		return nil, badRequest("JSON Parse error: the body must be a JSON object")
	}
	return doc, nil
}

// predictTensors answers a predict request on any signature of a
// TensorModel: tensors shaped by the JSON, as TF Serving feeds them; not
// batched.
func (srv *Server) predictTensors(ctx context.Context, w http.ResponseWriter, tm TensorModel, v *version, sigName string, raw *fastjson.Value, columnar bool, lg restLog) error {
	sig, ok := v.spec.Signatures[sigName]
	if !ok {
		return badRequest("Serving signature name: %q not found in signature def", sigName)
	}
	inputs, err := decodeTensors(raw, sig, columnar)
	if err != nil {
		return err
	}
	outputs, err := tm.Run(ctx, sigName, inputs)
	if err != nil {
		return err
	}
	body, err := encodeTensors(nil, outputs, columnar)
	if err != nil {
		return &errkind.Error{Kind: errkind.InvalidInput, Err: err}
	}
	lg.predict(sigName, func() map[string]tensor.Tensor { return inputs }, outputs)
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(body)
	return err
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(map[string]string{"error": "encoding the response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
