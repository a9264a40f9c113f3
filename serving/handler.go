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
)

// Handler returns the HTTP API:
//
//	GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            version status
//	GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata   signatures
//	POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict    predictions
//	GET  /metrics, /monitoring/prometheus/metrics                Prometheus
//	GET  /healthz, /readyz                                       liveness, readiness
//
// It is an ordinary http.Handler, so a Go service can mount it in its own mux.
func (srv *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	metrics := promhttp.HandlerFor(srv.cfg.Registry, promhttp.HandlerOpts{})
	mux.Handle("GET /metrics", metrics)
	mux.Handle("GET /monitoring/prometheus/metrics", metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		for name, s := range srv.models {
			s.mu.RLock()
			n := len(s.versions)
			s.mu.RUnlock()
			if n == 0 {
				http.Error(w, fmt.Sprintf("model %q has no version loaded", name), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ready")
	})
	// The standard mux cannot match TF Serving's "{name}:predict" (a wildcard
	// fills a whole segment), so /v1/models/ is routed here by hand.
	mux.Handle("/v1/", http.MaxBytesHandler(http.HandlerFunc(srv.serveModels), srv.cfg.MaxBodyBytes))
	return mux
}

// apiError is an error with the HTTP status TF Serving maps it to.
type apiError struct {
	status int
	err    error
}

func (e *apiError) Error() string { return e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

func badRequest(format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, err: fmt.Errorf(format, args...)}
}

// statusOf maps errors to HTTP status codes in one place.
func statusOf(err error) int {
	var ae *apiError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae.status
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrUnknownModel), errors.Is(err, ErrUnknownVersion):
		return http.StatusNotFound
	case errors.Is(err, ErrInvalidInput):
		return http.StatusBadRequest
	case errors.Is(err, ErrOverloaded):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, context.Canceled):
		return 499 // client closed the request
	}
	return http.StatusInternalServerError
}

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
	defer func() {
		code := http.StatusOK
		if errors.Is(err, errMalformed) {
			err = badRequest("Malformed request: %s %s", req.Method, req.URL.Path)
		}
		if err != nil {
			code = statusOf(err)
			writeJSON(w, code, map[string]string{"error": err.Error()})
		}
		srv.metrics.requests.WithLabelValues(r.name, versionLabel, api, strconv.Itoa(code)).Inc()
		srv.metrics.latency.WithLabelValues(r.name, api).Observe(time.Since(start).Seconds())
	}()
	if err != nil {
		return
	}
	s, ok := srv.models[r.name]
	if !ok {
		request := fmt.Sprintf("Latest(%s)", r.name)
		if r.version != 0 {
			request = fmt.Sprintf("Specific(%s, %d)", r.name, r.version)
		}
		err = notFoundError{msg: "Servable not found for request: " + request, kind: ErrUnknownModel}
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
		err = srv.predict(w, req, v)
	case "classify", "regress":
		if req.Method != http.MethodPost {
			err = errMalformed
			return
		}
		ctx, cancel := context.WithTimeout(req.Context(), srv.cfg.RequestTimeout)
		defer cancel()
		err = srv.classifyOrRegress(ctx, w, req, v, r.tail)
	default:
		err = &apiError{status: http.StatusNotFound, err: fmt.Errorf("unknown method %q", r.tail)}
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

func (srv *Server) predict(w http.ResponseWriter, req *http.Request, v *version) error {
	doc, done, err := srv.readJSON(req)
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
	if tm, ok := v.model.(TensorModel); ok && !(v.spec.TextInput && sigName == v.spec.Signature) && (!v.spec.Rows || sigName != v.spec.Signature) {
		return srv.predictTensors(ctx, w, tm, v, sigName, raw, columnar)
	}
	if sigName != v.spec.Signature {
		return badRequest("Serving signature name: %q not found in signature def", sigName)
	}
	var y dense.Matrix
	if tm, ok := v.model.(TextModel); ok && v.spec.TextInput {
		var texts []string
		if texts, err = decodeTexts(raw, v.spec, columnar); err != nil {
			return err
		}
		y, err = tm.PredictText(ctx, texts)
	} else {
		var x dense.Matrix
		if x, err = decodeRows(raw, v.spec, columnar); err != nil {
			return err
		}
		y, err = v.batcher.Predict(ctx, x)
	}
	if err != nil {
		return err // statusOf: 400 for ErrInvalidInput, 500 for a runtime failure
	}
	t := Tensor{DType: "float32", Shape: []int64{int64(y.Rows), int64(y.Cols)}, Data: y.Data}
	if v.spec.ScalarOutput && y.Cols == 1 {
		t.Shape = t.Shape[:1]
	}
	out, err := encodeTensors(nil, map[string]Tensor{v.spec.OutputKey: t}, columnar)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(out)
	return err
}

// readJSON reads a request body up to the server's limit (*http.MaxBytesError
// past it: 413) and parses it as a JSON object, with TF Serving's errors. The
// value lives in a pooled parser: call done once it is no longer read.
// Request bodies are mostly long lists of numbers, which encoding/json
// decodes at ~11 MB/s; fastjson parses them several times faster.
func (srv *Server) readJSON(req *http.Request) (doc *fastjson.Value, done func(), err error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, nil, err
	}
	p := srv.parsers.Get()
	if doc, err = parseBody(p, body); err != nil {
		srv.parsers.Put(p)
		return nil, nil, err
	}
	return doc, func() { srv.parsers.Put(p) }, nil
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
func (srv *Server) predictTensors(ctx context.Context, w http.ResponseWriter, tm TensorModel, v *version, sigName string, raw *fastjson.Value, columnar bool) error {
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
		return &apiError{status: http.StatusBadRequest, err: err}
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(body)
	return err
}

// instanceList returns the non-empty list of instances of a request body's
// "instances" (row format) or "inputs" (columnar format, columnar set): a
// list, or for columnar inputs also an object holding one under the input key
// and nothing else.
func instanceList(raw *fastjson.Value, spec Spec, columnar bool) ([]*fastjson.Value, error) {
	if columnar && raw.Type() == fastjson.TypeObject {
		named := raw.GetObject()
		rows := named.Get(spec.InputKey)
		if rows == nil || named.Len() != 1 {
			return nil, badRequest("inputs must hold exactly the input %q", spec.InputKey)
		}
		raw = rows
	}
	items, err := raw.Array()
	if err != nil {
		return nil, badRequest("expected a list of instances: %v", err)
	}
	if len(items) == 0 {
		return nil, badRequest("no instances")
	}
	return items, nil
}

// decodeTexts reads string instances (or columnar string inputs) for a
// model that takes raw text.
func decodeTexts(raw *fastjson.Value, spec Spec, columnar bool) ([]string, error) {
	items, err := instanceList(raw, spec, columnar)
	if err != nil {
		return nil, err
	}
	texts := make([]string, len(items))
	for i, item := range items {
		if item.Type() == fastjson.TypeObject {
			if v := item.GetObject().Get(spec.InputKey); v != nil {
				item = v
			}
		}
		if item.Type() == fastjson.TypeArray { // a [text] row of a rank-2 string input
			if a, _ := item.Array(); len(a) == 1 {
				item = a[0]
			}
		}
		b, err := item.StringBytes()
		if err != nil {
			return nil, badRequest("instance %d: model input %q takes a string: %v", i, spec.InputKey, err)
		}
		texts[i] = string(b)
	}
	return texts, nil
}

// decodeRows reads instances (or columnar inputs) into a feature matrix.
// An instance is a list of numbers (or a bare number when the input takes one
// feature), or an object holding one under the input key; columnar inputs are
// a list of rows, or an object holding one.
func decodeRows(raw *fastjson.Value, spec Spec, columnar bool) (dense.Matrix, error) {
	items, err := instanceList(raw, spec, columnar)
	if err != nil {
		return dense.Matrix{}, err
	}
	var x dense.Matrix
	for i, item := range items {
		if !columnar && item.Type() == fastjson.TypeObject {
			named := item.GetObject()
			if named.Get("b64") != nil && named.Len() == 1 {
				return dense.Matrix{}, badRequest("instance %d: {\"b64\": …} strings need a string input; input %q takes float32 features", i, spec.InputKey)
			}
			v := named.Get(spec.InputKey)
			if v == nil || named.Len() != 1 {
				return dense.Matrix{}, badRequest("instance %d must hold exactly the input %q", i, spec.InputKey)
			}
			item = v
		}
		if i == 0 {
			x.Cols = -1
		}
		start := len(x.Data)
		switch {
		case item.Type() == fastjson.TypeString && spec.Vectorize != nil:
			text, _ := item.StringBytes()
			x.Data = append(x.Data, spec.Vectorize(string(text))...)
		case item.Type() == fastjson.TypeString:
			return dense.Matrix{}, badRequest("instance %d is text, and model input %q takes numbers (the model has no vectorizer)", i, spec.InputKey)
		case item.Type() == fastjson.TypeNumber && spec.InputDim == 1:
			x.Data = append(x.Data, float32(item.GetFloat64()))
		case item.Type() == fastjson.TypeArray:
			values, _ := item.Array()
			if i == 0 {
				x.Data = make([]float32, 0, len(items)*len(values))
			}
			for j, e := range values {
				f, err := e.Float64()
				if err != nil {
					return dense.Matrix{}, badRequest("instance %d, feature %d: want a number: %v", i, j, err)
				}
				x.Data = append(x.Data, float32(f))
			}
		default:
			return dense.Matrix{}, badRequest("instance %d: want a list of numbers, got %s", i, item.Type())
		}
		width := len(x.Data) - start
		if spec.InputDim >= 0 && width != spec.InputDim {
			return dense.Matrix{}, badRequest("instance %d has %d features, input %q takes %d", i, width, spec.InputKey, spec.InputDim)
		}
		if x.Cols < 0 {
			x.Cols = width
		} else if width != x.Cols {
			return dense.Matrix{}, badRequest("instance %d has %d features, instance 0 has %d", i, width, x.Cols)
		}
		x.Rows++
	}
	return x, nil
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
